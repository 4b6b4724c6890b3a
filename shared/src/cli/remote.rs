//! Where the client commands send their requests and with which key: `--url` / `PLEXE_URL`,
//! `PLEXE_API_KEY`, else the config file (`--config` / `PLEXE_CONFIG`, default
//! `$XDG_CONFIG_HOME/plexe/config.json` or `~/.config/plexe/config.json`):
//! `{"url": "https://…", "api_key": "plx_…"}`. The key is never taken from a flag, so it does
//! not land in shell history or `ps`.

use super::CliError;
use crate::client::Client;
use clap::Args;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Used when neither a flag, the environment nor the config file names a URL.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// The options every client command takes.
#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// The API's base URL: a local `plexe serve` or the deployed API Gateway URL
    /// [default: the config file's, else http://127.0.0.1:8080].
    #[arg(long, env = "PLEXE_URL", global = true)]
    pub url: Option<String>,
    /// The config file (JSON: {"url": "…", "api_key": "…"})
    /// [default: $XDG_CONFIG_HOME/plexe/config.json or ~/.config/plexe/config.json].
    #[arg(long, env = "PLEXE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Print JSON (the API's answers as they are) instead of tables; errors print the
    /// API's envelope on stderr.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    url: Option<String>,
    api_key: Option<String>,
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("plexe").join("config.json"))
}

/// The config file: a named one must exist; the default one may not.
fn read_config(named: Option<&Path>) -> Result<ConfigFile, CliError> {
    let (path, must_exist) = match named {
        Some(p) => (p.to_path_buf(), true),
        None => match default_config_path() {
            Some(p) => (p, false),
            None => return Ok(ConfigFile::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
            return Ok(ConfigFile::default());
        }
        Err(e) => {
            return Err(CliError::Usage(format!(
                "cannot read the config file {}: {e}",
                path.display()
            )));
        }
    };
    serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "the config file {} is not {{\"url\": \"…\", \"api_key\": \"…\"}}: {e}",
            path.display()
        ))
    })
}

impl RemoteArgs {
    /// A client for the URL and key these options and the environment name.
    pub fn client(&self) -> Result<Client, CliError> {
        let file = read_config(self.config.as_deref())?;
        let url = self
            .url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .or(file.url)
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        let key = std::env::var("PLEXE_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .or(file.api_key)
            .ok_or_else(|| {
                CliError::Usage(
                    "no API key: set PLEXE_API_KEY (for `plexe serve`, the key is in \
                     plexe-data/admin.key) or put {\"api_key\": \"…\"} in the config file"
                        .into(),
                )
            })?;
        Ok(Client::new(&url, &key)?)
    }
}
