//! Configuration: one [`Config`] per process, read once at start from flags and the environment
//! (clap), then carried in the state. Nothing else in the code reads the environment, except the
//! AWS SDK's own chain (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials) and the Lambda runtime's
//! variables, which their crates read.
//!
//! | variable (flag) | default | meaning |
//! |---|---|---|
//! | `PLEXE_BACKEND` (`--backend`) | `embedded` | `embedded` (SQLite file + blob folder + SQLite queue under the data dir) or `aws` |
//! | `PLEXE_DATA_DIR` (`--data-dir`) | `./plexe-data` | the embedded backend's folder |
//! | `PLEXE_PUBLIC_URL` (`--public-url`) | the listening address | the URL clients reach the server at (upload URLs start with it) |
//! | `PLEXE_TABLE`, `PLEXE_BUCKET` | none (required on AWS) | the DynamoDB table (`pk`/`sk`, TTL `expires_at`) and the S3 bucket |
//! | `PLEXE_QUEUE_URL`, `PLEXE_DLQ_URL` | none (required on AWS) | the SQS build-job queue and its dead-letter queue |
//! | `PLEXE_RATE_LIMIT_BASIC`, `PLEXE_RATE_LIMIT_PRO` | 100, 500 | requests per minute per tier (enterprise: unlimited unless the account overrides) |
//! | `PLEXE_BUILD_RATE_LIMIT` | 5 | builds an account on a metered tier may start per minute |
//! | `PLEXE_CONCURRENT_BUILDS_BASIC`, `_PRO`, `_ENTERPRISE` | 2, 10, 50 | builds in flight per account |
//! | `RUST_LOG` | `info` | the log filter |
//! | `AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT` | set by Lambda | on Lambda: the function's log level (used when `RUST_LOG` is unset) and `JSON` or `Text` |
//!
//! A value that does not parse (a limit of 0, a backend name with a typo) stops the process at
//! start with a message naming the variable, rather than running with a limit switched off.

use crate::domain::accounts::Tier;
use crate::ports::absent::Absent;
use crate::ports::{
    Blobs, DynamoStore, FolderBlobs, Queue, S3Blobs, SqliteQueue, SqliteStore, SqsQueue, Store,
};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The embedded backend's folder when none is given.
pub const DEFAULT_DATA_DIR: &str = "./plexe-data";
/// The region when none is configured in the environment.
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing setting {0} (required with PLEXE_BACKEND=aws)")]
    Missing(&'static str),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("cannot open the embedded backend in {path}")]
    Embedded {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn embedded_error(
    path: &Path,
    source: impl std::error::Error + Send + Sync + 'static,
) -> ConfigError {
    ConfigError::Embedded {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

/// Which storage the process uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    Embedded,
    Aws,
}

/// Every setting of every binary (see the module table).
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Storage: `embedded` (SQLite + a folder, under --data-dir) or `aws`.
    #[arg(long, env = "PLEXE_BACKEND", value_enum, default_value_t = BackendKind::Embedded, help_heading = "Storage")]
    pub backend: BackendKind,
    /// Data directory of the embedded backend (SQLite file, blobs, admin.key).
    #[arg(long, env = "PLEXE_DATA_DIR", default_value = DEFAULT_DATA_DIR, help_heading = "Storage")]
    pub data_dir: PathBuf,
    /// The URL clients reach this server at (upload URLs start with it); default
    /// http://<host>:<port>.
    #[arg(long, env = "PLEXE_PUBLIC_URL", help_heading = "Storage")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub aws: AwsSettings,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub logs: LogSettings,
}

/// The AWS resources (`PLEXE_BACKEND=aws`); SAM and CDK pass them to every function.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AwsSettings {
    /// DynamoDB table (single-table design, `pk`/`sk`, TTL attribute `expires_at`).
    #[arg(long, env = "PLEXE_TABLE", help_heading = "AWS")]
    pub table: Option<String>,
    /// S3 bucket for datasets, uploads and ONNX artifacts.
    #[arg(long, env = "PLEXE_BUCKET", help_heading = "AWS")]
    pub bucket: Option<String>,
    /// SQS queue of build jobs.
    #[arg(long, env = "PLEXE_QUEUE_URL", help_heading = "AWS")]
    pub queue_url: Option<String>,
    /// Its dead-letter queue.
    #[arg(long, env = "PLEXE_DLQ_URL", help_heading = "AWS")]
    pub dlq_url: Option<String>,
    /// SQS queue of tasks (large upload completions) for the task function; without it they
    /// run in the request.
    #[arg(long, env = "PLEXE_TASK_QUEUE_URL", help_heading = "AWS")]
    pub task_queue_url: Option<String>,
    /// Its dead-letter queue.
    #[arg(long, env = "PLEXE_TASK_DLQ_URL", help_heading = "AWS")]
    pub task_dlq_url: Option<String>,
}

/// Requests and builds per account (per tier).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Limits {
    /// Requests per minute of a basic account.
    #[arg(long, env = "PLEXE_RATE_LIMIT_BASIC", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub rate_limit_basic: u32,
    /// Requests per minute of a pro account.
    #[arg(long, env = "PLEXE_RATE_LIMIT_PRO", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub rate_limit_pro: u32,
    /// Builds a basic or pro account may start per minute (enterprise: unmetered).
    #[arg(long, env = "PLEXE_BUILD_RATE_LIMIT", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub build_rate_limit: u32,
    /// Builds in flight at once for a basic account.
    #[arg(long, env = "PLEXE_CONCURRENT_BUILDS_BASIC", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub concurrent_builds_basic: u32,
    /// Builds in flight at once for a pro account.
    #[arg(long, env = "PLEXE_CONCURRENT_BUILDS_PRO", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub concurrent_builds_pro: u32,
    /// Builds in flight at once for an enterprise account.
    #[arg(long, env = "PLEXE_CONCURRENT_BUILDS_ENTERPRISE", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub concurrent_builds_enterprise: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rate_limit_basic: 100,
            rate_limit_pro: 500,
            build_rate_limit: 5,
            concurrent_builds_basic: 2,
            concurrent_builds_pro: 10,
            concurrent_builds_enterprise: 50,
        }
    }
}

impl Limits {
    /// Requests per minute of an account of `tier` without its own override; `None` is
    /// unlimited (enterprise).
    pub fn requests_per_minute(&self, tier: Tier) -> Option<u32> {
        match tier {
            Tier::Basic => Some(self.rate_limit_basic),
            Tier::Pro => Some(self.rate_limit_pro),
            Tier::Enterprise => None,
        }
    }

    /// Builds an account of `tier` may start per minute; `None` is unmetered (enterprise, like
    /// its requests).
    pub fn builds_per_minute(&self, tier: Tier) -> Option<u32> {
        match tier {
            Tier::Basic | Tier::Pro => Some(self.build_rate_limit),
            Tier::Enterprise => None,
        }
    }

    /// Builds in flight at once for an account of `tier`.
    pub fn concurrent_builds(&self, tier: Tier) -> u32 {
        match tier {
            Tier::Basic => self.concurrent_builds_basic,
            Tier::Pro => self.concurrent_builds_pro,
            Tier::Enterprise => self.concurrent_builds_enterprise,
        }
    }
}

/// Where and how logs go.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogSettings {
    /// Log filter (tracing's EnvFilter syntax, e.g. `info` or `shared=debug`).
    #[arg(long = "log", env = "RUST_LOG", help_heading = "Logging")]
    pub filter: Option<String>,
    /// Set by Lambda from the function's logging configuration.
    #[arg(long, env = "AWS_LAMBDA_LOG_LEVEL", hide = true)]
    pub lambda_log_level: Option<String>,
    /// Set by Lambda: `JSON` or `Text`.
    #[arg(long, env = "AWS_LAMBDA_LOG_FORMAT", hide = true)]
    pub lambda_log_format: Option<String>,
    /// Set by Lambda in every function: logs default to JSON there.
    #[arg(long, env = "AWS_LAMBDA_FUNCTION_NAME", hide = true)]
    pub lambda_function_name: Option<String>,
}

/// Only the environment: how the Lambda functions, which take no arguments, read [`Config`].
#[derive(Debug, Parser)]
#[command(name = "plexe-function")]
struct FromEnvironment {
    #[command(flatten)]
    config: Config,
}

impl Config {
    /// The configuration from the environment alone (the Lambda functions).
    pub fn from_env() -> Result<Config, ConfigError> {
        FromEnvironment::try_parse_from(["plexe-function"])
            .map(|f| f.config)
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The documented defaults with the embedded backend in `data_dir`, whatever the
    /// environment says (for tests and tools that set up their own backends).
    pub fn embedded_defaults(data_dir: &Path) -> Config {
        Config {
            backend: BackendKind::Embedded,
            data_dir: data_dir.to_path_buf(),
            public_url: None,
            aws: AwsSettings::default(),
            limits: Limits::default(),
            logs: LogSettings::default(),
        }
    }
}

/// The three ports, ready for the domain code, plus the concrete embedded adapters where the
/// caller needs more than the trait (the upload endpoint verifies tokens with [`FolderBlobs`],
/// server start calls [`SqliteQueue::recover_in_flight`]).
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn Blobs>,
    pub queue: Arc<dyn Queue>,
    /// The task queue: on AWS when configured; on the embedded backend its own SQLite file,
    /// worked by `plexe serve`.
    pub tasks: Option<Arc<dyn Queue>>,
    /// Set on the embedded backend: the same object as `blobs`.
    pub folder_blobs: Option<Arc<FolderBlobs>>,
    /// Set on the embedded backend: the same object as `queue`.
    pub embedded_queue: Option<Arc<SqliteQueue>>,
    /// Set on the embedded backend: the same object as `tasks`.
    pub embedded_tasks: Option<Arc<SqliteQueue>>,
    /// Set on the embedded backend: the same object as `store` (expired items are purged by
    /// `plexe serve`'s sweep; DynamoDB's TTL does that on AWS).
    pub embedded_store: Option<Arc<SqliteStore>>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}

/// The SQLite file inside a data directory.
pub const SQLITE_FILE: &str = "plexe.db";
/// The task queue's SQLite file inside a data directory (the queue's table holds one queue per
/// file).
pub const TASKS_SQLITE_FILE: &str = "tasks.db";

impl Backends {
    /// The local backend under `data_dir` (created if absent): `plexe.db` (items and the build
    /// queue), `tasks.db` (the task queue), `blobs/`, `upload.secret`. `public_base_url` is where clients reach `plexe serve`; upload
    /// URLs start with it.
    pub fn embedded(data_dir: &Path, public_base_url: &str) -> Result<Backends, ConfigError> {
        private_dir(data_dir).map_err(|e| embedded_error(data_dir, e))?;
        let db = data_dir.join(SQLITE_FILE);
        private_file(&db).map_err(|e| embedded_error(data_dir, e))?;
        let store = Arc::new(SqliteStore::open(&db).map_err(|e| embedded_error(data_dir, e))?);
        let queue = Arc::new(
            SqliteQueue::open(&db, SqliteQueue::DEFAULT_MAX_RECEIVES)
                .map_err(|e| embedded_error(data_dir, e))?,
        );
        let tasks_db = data_dir.join(TASKS_SQLITE_FILE);
        private_file(&tasks_db).map_err(|e| embedded_error(data_dir, e))?;
        let tasks = Arc::new(
            SqliteQueue::open(&tasks_db, crate::domain::tasks::EMBEDDED_TASK_MAX_RECEIVES)
                .map_err(|e| embedded_error(data_dir, e))?,
        );
        let blobs = Arc::new(
            FolderBlobs::open(data_dir, public_base_url)
                .map_err(|e| embedded_error(data_dir, e))?,
        );
        Ok(Backends {
            store: store.clone(),
            blobs: blobs.clone(),
            queue: queue.clone(),
            tasks: Some(tasks.clone()),
            folder_blobs: Some(blobs),
            embedded_queue: Some(queue),
            embedded_tasks: Some(tasks),
            embedded_store: Some(store),
        })
    }
}

/// Creates `dir` if needed and makes it the service user's alone (0700), whatever it was.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates the file at `path` if needed (empty) and makes it the service user's alone (0600).
/// SQLite gives its journal files the mode of the database file, so creating the database
/// this way keeps them private too.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The AWS resources the adapters use (the names SAM passes in the environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsResources {
    pub table: String,
    pub bucket: String,
    pub queue_url: String,
    pub dlq_url: String,
    /// The task queue and its dead-letter queue, when configured.
    pub task_queues: Option<(String, String)>,
}

fn required(value: &Option<String>, name: &'static str) -> Result<String, ConfigError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_owned()),
        _ => Err(ConfigError::Missing(name)),
    }
}

impl AwsSettings {
    /// The resources, each required.
    pub fn resources(&self) -> Result<AwsResources, ConfigError> {
        Ok(AwsResources {
            table: required(&self.table, "PLEXE_TABLE")?,
            bucket: required(&self.bucket, "PLEXE_BUCKET")?,
            queue_url: required(&self.queue_url, "PLEXE_QUEUE_URL")?,
            dlq_url: required(&self.dlq_url, "PLEXE_DLQ_URL")?,
            task_queues: match (&self.task_queue_url, &self.task_dlq_url) {
                (None, None) => None,
                _ => Some((
                    required(&self.task_queue_url, "PLEXE_TASK_QUEUE_URL")?,
                    required(&self.task_dlq_url, "PLEXE_TASK_DLQ_URL")?,
                )),
            },
        })
    }
}

/// S3 settings on top of the shared SDK configuration: path-style addressing whenever an
/// endpoint override is set (moto on localhost has no per-bucket host names).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The ports beyond the store that a process uses. A Lambda function builds only these, and
/// what it does not build its binary does not link: the keys function has no S3 or SQS client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsedPorts {
    pub blobs: bool,
    /// The build queue (the trainer's).
    pub build_queue: bool,
    /// The task queue, when the deployment has one.
    pub task_queue: bool,
}

impl UsedPorts {
    pub const ALL: UsedPorts = UsedPorts {
        blobs: true,
        build_queue: true,
        task_queue: true,
    };
}

/// What a process uses, as a type, so that each function's binary is compiled with its own
/// [`UsedPorts`] as a constant and the adapters it does not use are left out of it.
pub trait PortNeeds {
    const USED: UsedPorts;
}

/// A process that uses every port (the trainer, the task function, `plexe`, the tests).
pub struct EveryPort;

impl PortNeeds for EveryPort {
    const USED: UsedPorts = UsedPorts::ALL;
}

impl Backends {
    /// The AWS adapters on `resources`, with clients built from `sdk`.
    pub fn aws(sdk: &aws_config::SdkConfig, resources: &AwsResources) -> Backends {
        Backends::aws_for::<EveryPort>(sdk, resources)
    }

    /// The AWS adapters `P` uses (the store always); the others are [`Absent`].
    pub fn aws_for<P: PortNeeds>(
        sdk: &aws_config::SdkConfig,
        resources: &AwsResources,
    ) -> Backends {
        let blobs: Arc<dyn Blobs> = if P::USED.blobs {
            Arc::new(S3Blobs::new(s3_client(sdk), &resources.bucket))
        } else {
            Arc::new(Absent { port: "blob store" })
        };
        let queue: Arc<dyn Queue> = if P::USED.build_queue {
            Arc::new(SqsQueue::new(
                aws_sdk_sqs::Client::new(sdk),
                &resources.queue_url,
                &resources.dlq_url,
            ))
        } else {
            Arc::new(Absent {
                port: "build queue",
            })
        };
        let tasks = match &resources.task_queues {
            Some((url, dlq)) if P::USED.task_queue => Some(Arc::new(SqsQueue::new(
                aws_sdk_sqs::Client::new(sdk),
                url,
                dlq,
            )) as Arc<dyn Queue>),
            _ => None,
        };
        Backends {
            store: Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(sdk),
                &resources.table,
            )),
            blobs,
            queue,
            tasks,
            folder_blobs: None,
            embedded_queue: None,
            embedded_tasks: None,
            embedded_store: None,
        }
    }

    /// The backends `config` names. `public_base_url` is where clients reach the process
    /// (embedded upload URLs start with it).
    pub async fn open(config: &Config, public_base_url: &str) -> Result<Backends, ConfigError> {
        match config.backend {
            BackendKind::Embedded => Backends::embedded(&config.data_dir, public_base_url),
            BackendKind::Aws => Backends::open_aws::<EveryPort>(config).await,
        }
    }

    /// The AWS backends `config` names, those `P` uses.
    pub async fn open_aws<P: PortNeeds>(config: &Config) -> Result<Backends, ConfigError> {
        let resources = config.aws.resources()?;
        // The SDK reads AWS_ENDPOINT_URL, the region and credentials from the usual places;
        // without a configured region (a bare shell pointed at moto) us-east-1 is assumed.
        let region = aws_config::meta::region::RegionProviderChain::default_provider()
            .or_else(aws_config::Region::new(DEFAULT_REGION));
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(region)
            .load()
            .await;
        Ok(Backends::aws_for::<P>(&sdk, &resources))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let mut argv = vec!["plexe-function"];
        argv.extend_from_slice(args);
        FromEnvironment::try_parse_from(argv).map(|f| f.config)
    }

    #[test]
    fn flags_set_what_the_variables_set() {
        let config = parse(&[
            "--backend",
            "aws",
            "--table",
            "t",
            "--bucket",
            "b",
            "--queue-url",
            "q",
            "--dlq-url",
            "d",
            "--build-rate-limit",
            "1",
            "--concurrent-builds-basic",
            "3",
        ])
        .expect("parses");
        assert_eq!(config.backend, BackendKind::Aws);
        assert_eq!(config.limits.builds_per_minute(Tier::Basic), Some(1));
        assert_eq!(config.limits.builds_per_minute(Tier::Enterprise), None);
        assert_eq!(config.limits.concurrent_builds(Tier::Basic), 3);
        assert_eq!(config.aws.resources().expect("all four").table, "t");
    }

    #[test]
    fn a_limit_of_zero_or_a_misspelt_backend_stops_the_start() {
        assert!(parse(&["--rate-limit-basic", "0"]).is_err());
        assert!(parse(&["--concurrent-builds-pro", "-1"]).is_err());
        assert!(parse(&["--backend", "dynamo"]).is_err());
    }

    #[test]
    fn aws_needs_every_resource() {
        let settings = AwsSettings {
            table: Some("t".into()),
            bucket: Some(" ".into()),
            ..AwsSettings::default()
        };
        assert!(matches!(
            settings.resources(),
            Err(ConfigError::Missing("PLEXE_BUCKET"))
        ));
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let config = Config::embedded_defaults(Path::new(DEFAULT_DATA_DIR));
        assert_eq!(config.limits.requests_per_minute(Tier::Basic), Some(100));
        assert_eq!(config.limits.requests_per_minute(Tier::Pro), Some(500));
        assert_eq!(config.limits.requests_per_minute(Tier::Enterprise), None);
        assert_eq!(config.limits.concurrent_builds(Tier::Pro), 10);
        assert_eq!(config.limits.concurrent_builds(Tier::Enterprise), 50);
        assert_eq!(config.limits.builds_per_minute(Tier::Pro), Some(5));
    }
}
