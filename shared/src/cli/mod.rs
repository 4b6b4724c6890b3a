//! The `plexe` command: `serve` (the local all-in-one server) and `admin` (operator tasks that
//! talk to the store directly, also while a server runs on the same data directory).

pub mod admin;
pub mod serve;

use crate::config::ConfigError;
use crate::domain::DomainError;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "plexe",
    version,
    about = "plexe: tabular data in, a deployed ONNX model out"
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
}

/// Runs `plexe` with the process's arguments.
pub fn main() -> ExitCode {
    // Everything plexe writes (the data dir, the SQLite file, blobs, keys) is the service
    // user's alone: new files 0600, new folders 0700.
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
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
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plexe: error: {e}");
            ExitCode::FAILURE
        }
    }
}
