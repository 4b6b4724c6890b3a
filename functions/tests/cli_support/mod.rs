//! What the tests of the `plexe` client share: a real `plexe serve` and the shared datasets.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const PLEXE: &str = env!("CARGO_BIN_EXE_plexe");

/// A `plexe serve` on a free port with its own data dir, killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
    pub admin_key: String,
    _data: Option<tempfile::TempDir>,
}

impl Server {
    /// On a data dir of its own.
    pub fn start() -> Server {
        let data = tempfile::tempdir().expect("tempdir");
        let mut server = Server::start_in(data.path());
        server._data = Some(data);
        server
    }

    /// On `data_dir` (kept after the server stops).
    pub fn start_in(data_dir: &Path) -> Server {
        let dir = data_dir.to_str().expect("utf-8 temp path");
        let mut child = Command::new(PLEXE)
            .args(["serve", "--port", "0", "--data-dir", dir])
            .env_remove("PLEXE_BACKEND")
            .env_remove("PLEXE_DATA_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting plexe serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let url = loop {
            let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) else {
                let _ = child.kill();
                panic!("plexe serve did not print where it listens within 60 s");
            };
            if let Some(rest) = line.split("plexe listening on ").nth(1) {
                break rest.split_whitespace().next().expect("url").to_owned();
            }
        };
        let admin_key = std::fs::read_to_string(data_dir.join("admin.key"))
            .expect("admin.key")
            .trim()
            .to_owned();
        Server {
            child,
            url,
            admin_key,
            _data: None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `titanic.csv` of the shared datasets.
pub fn titanic() -> PathBuf {
    // functions/ → repo → ../shared/datasets; PLEXE_DATASETS_DIR overrides it.
    let dir = std::env::var_os("PLEXE_DATASETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets"));
    let path = dir.join("titanic.csv");
    assert!(
        path.is_file(),
        "{} not found (expected <repo>/../shared/datasets, or set PLEXE_DATASETS_DIR)",
        path.display()
    );
    path
}

/// The first fenced block of `language` under the README heading `heading` (as written, e.g.
/// "### Command-line client"), so the tests run the README's examples as they are.
pub fn readme_block(heading: &str, language: &str) -> String {
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&readme).expect("README.md");
    let section = text
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no {heading:?}"))
        .1;
    let fence = format!("```{language}\n");
    let block = section
        .split_once(&fence)
        .unwrap_or_else(|| panic!("no {language} block under {heading:?}"))
        .1;
    block
        .split_once("```\n")
        .unwrap_or_else(|| panic!("an unclosed block under {heading:?}"))
        .0
        .to_string()
}

/// The function binaries of this package, for the Lambda-shaped stack.
pub fn function_binaries() -> integration_tests::lambda_stack::FunctionBinaries {
    integration_tests::lambda_stack::FunctionBinaries {
        keys: integration_tests::lambda_stack::function_binary("keys"),
        datasets: integration_tests::lambda_stack::function_binary("datasets"),
        models: integration_tests::lambda_stack::function_binary("models"),
        inference: env!("CARGO_BIN_EXE_inference").to_owned(),
        trainer: env!("CARGO_BIN_EXE_trainer").to_owned(),
        tasks: env!("CARGO_BIN_EXE_tasks").to_owned(),
    }
}
