//! `plexe serve`: every route on one port. On first start it creates the `default` account and
//! writes its admin key to `<data-dir>/admin.key` (mode 0600). SIGINT/SIGTERM stop it gracefully:
//! requests in flight finish first.

use super::CliError;
use crate::config::{Backends, Config};
use crate::domain::{accounts, housekeeping, tasks};
use crate::http::{self, AppState};
use crate::ports::SqliteStore;
use crate::runtime::busy_poll;
use crate::runtime::logging;
use crate::runtime::server::{self, ServerLimits};
use crate::trainer::Trainer;
use crate::trainer::worker::{self, WorkerOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const ADMIN_KEY_FILE: &str = "admin.key";
/// Builds run at the same time by the in-process trainer (each uses every core).
const TRAINER_WORKERS: usize = 2;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[arg(long, env = "PLEXE_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// 0 picks a free port (printed at start).
    #[arg(long, env = "PLEXE_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "PLEXE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "PLEXE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a client has to send a request's headers (also how long an idle keep-alive
    /// connection and a TLS handshake may last).
    #[arg(long, env = "PLEXE_HEADER_TIMEOUT_S", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=30))]
    pub header_timeout_s: u64,
    /// Seconds a request body may send nothing before the request fails (a moving upload of
    /// any length is not cut).
    #[arg(long, env = "PLEXE_BODY_TIMEOUT_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub body_timeout_s: u64,
    /// Connections open at once; more wait to be accepted.
    #[arg(long, env = "PLEXE_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Microseconds a connection thread keeps polling its sockets after it last wrote before
    /// it sleeps, so a client's next request is picked up without a wake-up (0: never).
    #[arg(long, env = "PLEXE_BUSY_POLL_US", default_value_t = busy_poll::DEFAULT_WINDOW_US, value_parser = clap::value_parser!(u64).range(0..=busy_poll::MAX_WINDOW_US))]
    pub busy_poll_us: u64,
    #[command(flatten)]
    pub config: Config,
}

pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let config = args.config;
    logging::init(&config.logs);
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(server::tls_acceptor(cert, key).map_err(|e| CliError::Io(format!("TLS: {e}")))?)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|e| CliError::Io(format!("cannot listen on {}:{}: {e}", args.host, args.port)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Io(e.to_string()))?;
    let base_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let data_dir = config.data_dir.clone();
    let backends = Backends::open(&config, &base_url).await?;
    // Builds that were running when the last process stopped are picked up again now.
    if let Some(queue) = &backends.embedded_queue {
        match queue.recover_in_flight().await {
            Ok(0) => {}
            Ok(n) => println!("Resuming {n} build(s) interrupted by the last stop."),
            Err(e) => tracing::warn!(error = %e, "could not recover builds in flight"),
        }
    }
    // And so are tasks (batch prediction jobs).
    if let Some(tasks) = &backends.embedded_tasks
        && let Err(e) = tasks.recover_in_flight().await
    {
        tracing::warn!(error = %e, "could not recover tasks in flight");
    }
    let embedded = backends.embedded_queue.is_some();
    let embedded_store = backends.embedded_store.clone();
    let state = AppState::new(backends, config);
    // On AWS the trainer and task Lambdas consume the queues; locally this process does.
    let mut workers = if embedded {
        let trainer = Trainer::new(state.store.clone(), state.blobs.clone());
        worker::spawn(
            trainer,
            state.queue.clone(),
            WorkerOptions::embedded(),
            TRAINER_WORKERS,
        )
    } else {
        Vec::new()
    };
    if let (true, Some(tasks)) = (embedded, state.tasks.clone()) {
        workers.extend(tasks::spawn_workers(
            tasks,
            state.store.clone(),
            state.blobs.clone(),
            tasks::EMBEDDED_TASK_WORKERS,
        ));
    }

    let sweeper = embedded.then(|| tokio::spawn(sweep_periodically(state.clone(), embedded_store)));

    let key_path = data_dir.join(ADMIN_KEY_FILE);
    if let Some((account, issued)) = accounts::ensure_default_account(state.store.as_ref()).await? {
        write_secret_file(&key_path, &issued.secret).map_err(|e| {
            CliError::Io(format!(
                "created account {} but could not write {}: {e}; create a key with \
                 `plexe admin create-key --account {} --scopes admin`",
                account.account_id,
                key_path.display(),
                account.account_id
            ))
        })?;
        println!(
            "First start: created account \"{}\" ({}) and an admin API key.\n\
             The key is in {} (readable only by you). Use it as:\n  \
             curl -H \"Authorization: Bearer $(cat {})\" {base_url}/me",
            account.name,
            account.account_id,
            key_path.display(),
            key_path.display(),
        );
    } else if key_path.exists() {
        println!("Admin API key: {}", key_path.display());
    }
    println!(
        "plexe listening on {base_url} (store: {}, data dir: {})",
        state.store.backend(),
        data_dir.display()
    );
    tracing::info!(%addr, "listening");
    let limits = ServerLimits {
        max_connections: args.max_connections as usize,
        header_timeout: std::time::Duration::from_secs(args.header_timeout_s),
        body_idle_timeout: std::time::Duration::from_secs(args.body_timeout_s),
        busy_poll: std::time::Duration::from_micros(args.busy_poll_us),
        ..ServerLimits::default()
    };
    server::serve(listener, http::app(state), tls, limits, shutdown_signal()).await;
    for w in workers.into_iter().chain(sweeper) {
        w.abort();
    }
    println!("plexe stopped");
    Ok(())
}

/// Sweeps what the embedded backend has no lifecycle for, now and every
/// [`housekeeping::SWEEP_INTERVAL`].
async fn sweep_periodically(state: AppState, store: Option<Arc<SqliteStore>>) {
    let mut every = tokio::time::interval(housekeeping::SWEEP_INTERVAL);
    loop {
        every.tick().await;
        match housekeeping::sweep(state.blobs.as_ref(), store.as_deref()).await {
            Ok(report) => tracing::info!(
                expired_blobs = report.expired_blobs,
                expired_items = report.expired_items,
                "swept"
            ),
            Err(e) => tracing::warn!(error = %e, "sweep failed; trying again later"),
        }
    }
}

/// Writes `secret` to `path`, readable and writable only by the owner. The secret goes to a new
/// file beside it (created exclusively, 0600) that is then renamed over `path`: a symlink
/// planted at `path` is replaced, never written through.
fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut suffix = [0u8; 8];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut suffix);
    let temp = path.with_extension(format!("tmp-{}", hex::encode(suffix)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&temp)?;
        file.write_all(secret.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn secret_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("admin.key");
        std::fs::write(&path, "old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_secret_file(&path, "plx_secret").expect("write secret");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).expect("read").trim(),
            "plx_secret"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "untouched").expect("write");
        let path = dir.path().join("admin.key");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        write_secret_file(&path, "plx_secret").expect("write secret");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "untouched");
        assert!(!std::fs::symlink_metadata(&path).expect("meta").is_symlink());
        assert_eq!(
            std::fs::read_to_string(&path).expect("read").trim(),
            "plx_secret"
        );
    }
}
