//! The `plexe` command: `serve` (the local all-in-one server), `admin` (operator tasks that
//! talk to the store directly, also while a server runs on the same data directory), and the
//! client commands (`datasets`, `models`, `predict`, `keys`) that talk HTTP to any plexe API
//! through [`crate::client`].
//!
//! Exit codes: 0 done; 1 the API answered with an error (its envelope's message is printed) or
//! a local file failed; 2 a usage error (bad flags, no API key); 3 the server could not be
//! reached; 4 a build followed with `--wait` ended in ERROR.

pub mod admin;
pub mod datasets;
pub mod keys;
pub mod models;
pub mod output;
pub mod predict;
pub mod remote;
pub mod serve;

use crate::client::ClientError;
use crate::config::ConfigError;
use crate::domain::DomainError;
use clap::{Parser, Subcommand};
use remote::RemoteArgs;
use std::process::ExitCode;

const CLIENT_HELP: &str = "\
Client commands talk HTTP to a plexe API: --url (or PLEXE_URL, default http://127.0.0.1:8080)
and the key in PLEXE_API_KEY, else both from the config file
(~/.config/plexe/config.json: {\"url\": \"…\", \"api_key\": \"…\"}).

Examples:
  plexe serve
  export PLEXE_API_KEY=$(cat plexe-data/admin.key)
  plexe datasets upload titanic.csv
  plexe models build titanic --dataset ds_… --intent \"predict whether a passenger survived\" --wait
  plexe models deploy titanic
  plexe predict titanic --file passengers.csv -o predicted.csv
  plexe models download titanic v1 -o titanic.onnx
  plexe keys create ci --scopes read,predict

Exit codes: 0 done, 1 an error answer from the API (its message is printed), 2 usage,
3 the server could not be reached, 4 a build followed with --wait ended in ERROR.";

#[derive(Debug, Parser)]
#[command(
    name = "plexe",
    version,
    about = "plexe: tabular data in, a deployed ONNX model out",
    after_help = CLIENT_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every route on one port with the embedded store (or AWS when PLEXE_BACKEND=aws).
    Serve(serve::ServeArgs),
    /// Operator tasks: accounts and keys.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Datasets: upload (with a progress bar), list, show, preview.
    Datasets {
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(subcommand)]
        command: datasets::DatasetsCommand,
    },
    /// Models: build (and follow), list, show, describe, logs, deploy, undeploy, download.
    Models {
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// Predict a CSV file with a deployed model (in batches of up to 10,000 rows).
    Predict {
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(flatten)]
        args: predict::PredictArgs,
    },
    /// API keys of the account (admin): list, create, revoke.
    Keys {
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    BuildFailed(String),
}

impl CliError {
    /// The process's exit code for this error (see the module doc).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Client(ClientError::Invalid(_)) => 2,
            CliError::Client(ClientError::Connection { .. }) => 3,
            CliError::BuildFailed(_) => 4,
            _ => 1,
        }
    }
}

/// Runs `plexe` with the process's arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve(_) | Command::Admin(_)) {
        // Everything the server and the operator tool write (the data dir, the SQLite file,
        // blobs, keys) is the service user's alone: new files 0600, new folders 0700.
        #[cfg(unix)]
        // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
        unsafe {
            libc::umask(0o077);
        }
    }
    let json_errors = match &cli.command {
        Command::Datasets { remote, .. }
        | Command::Models { remote, .. }
        | Command::Predict { remote, .. }
        | Command::Keys { remote, .. } => remote.json,
        Command::Serve(_) | Command::Admin(_) => false,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("plexe: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Admin(command) => admin::run(command).await,
            Command::Datasets { remote, command } => datasets::run(remote, command).await,
            Command::Models { remote, command } => models::run(remote, command).await,
            Command::Predict { remote, args } => predict::run(remote, args).await,
            Command::Keys { remote, command } => keys::run(remote, command).await,
        }
    });
    // Dropping the runtime would wait for every blocking task, a build in training among them
    // (minutes); builds resume at the next start, so the process ends now.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match &e {
                // Scripts get the API's envelope as it came.
                CliError::Client(ClientError::Api(body)) if json_errors => {
                    let envelope = crate::api::ErrorEnvelope {
                        error: body.clone(),
                    };
                    eprintln!(
                        "{}",
                        serde_json::to_string(&envelope).unwrap_or_else(|_| e.to_string())
                    );
                }
                _ => eprintln!("plexe: error: {}", output::printable(&e.to_string())),
            }
            ExitCode::from(e.exit_code())
        }
    }
}
