//! Configuration from the environment (as SAM passes it) and the choice of backend.
//!
//! Environment variables read here:
//! - `PLEXE_BACKEND`: `embedded` (default: SQLite file + blob folder + SQLite queue under the
//!   data directory) or `aws` (DynamoDB + S3 + SQS, configured by the variables below).
//! - `PLEXE_TABLE`: the DynamoDB table (single-table design, TTL attribute `expires_at`).
//! - `PLEXE_BUCKET`: the S3 bucket for datasets, uploads and ONNX artifacts.
//! - `PLEXE_QUEUE_URL`: the SQS job queue's URL.
//! - `PLEXE_DLQ_URL`: its dead-letter queue's URL.
//! - `AWS_ENDPOINT_URL` (optional): one endpoint for every AWS service, e.g. moto's server;
//!   when set, S3 is addressed path-style (`{endpoint}/{bucket}/{key}`).
//! - Region and credentials come from the usual AWS sources (`AWS_REGION`, the Lambda role, …);
//!   the region defaults to `us-east-1`.

use crate::ports::{
    Blobs, DynamoStore, FolderBlobs, Queue, S3Blobs, SqliteQueue, SqliteStore, SqsQueue, Store,
};
use std::path::Path;
use std::sync::Arc;

/// Which backend `PLEXE_BACKEND` selects.
pub const ENV_BACKEND: &str = "PLEXE_BACKEND";
pub const ENV_TABLE: &str = "PLEXE_TABLE";
pub const ENV_BUCKET: &str = "PLEXE_BUCKET";
pub const ENV_QUEUE_URL: &str = "PLEXE_QUEUE_URL";
pub const ENV_DLQ_URL: &str = "PLEXE_DLQ_URL";
/// The region when none is configured in the environment.
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("invalid value for {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("cannot open the embedded backend: {0}")]
    Embedded(String),
}

/// The three ports, ready for the domain code, plus the concrete embedded adapters where the
/// caller needs more than the trait (the upload endpoint verifies tokens with [`FolderBlobs`],
/// server start calls [`SqliteQueue::recover_in_flight`]).
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn Blobs>,
    pub queue: Arc<dyn Queue>,
    /// Set on the embedded backend: the same object as `blobs`.
    pub folder_blobs: Option<Arc<FolderBlobs>>,
    /// Set on the embedded backend: the same object as `queue`.
    pub embedded_queue: Option<Arc<SqliteQueue>>,
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

impl Backends {
    /// The local backend under `data_dir` (created if absent): `plexe.db` (items and queue),
    /// `blobs/`, `upload.secret`. `public_base_url` is where clients reach `plexe serve`; upload
    /// URLs start with it.
    pub fn embedded(data_dir: &Path, public_base_url: &str) -> Result<Backends, ConfigError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| ConfigError::Embedded(format!("creating {}: {e}", data_dir.display())))?;
        let db = data_dir.join(SQLITE_FILE);
        let store =
            Arc::new(SqliteStore::open(&db).map_err(|e| ConfigError::Embedded(e.to_string()))?);
        let queue = Arc::new(
            SqliteQueue::open(&db, SqliteQueue::DEFAULT_MAX_RECEIVES)
                .map_err(|e| ConfigError::Embedded(e.to_string()))?,
        );
        let blobs = Arc::new(
            FolderBlobs::open(data_dir, public_base_url)
                .map_err(|e| ConfigError::Embedded(e.to_string()))?,
        );
        Ok(Backends {
            store,
            blobs: blobs.clone(),
            queue: queue.clone(),
            folder_blobs: Some(blobs),
            embedded_queue: Some(queue),
        })
    }
}

/// The AWS resources the adapters use (the names SAM passes in the environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsResources {
    pub table: String,
    pub bucket: String,
    pub queue_url: String,
    pub dlq_url: String,
}

fn required_env(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(ConfigError::Missing(name)),
    }
}

impl AwsResources {
    /// From `PLEXE_TABLE`, `PLEXE_BUCKET`, `PLEXE_QUEUE_URL`, `PLEXE_DLQ_URL`.
    pub fn from_env() -> Result<AwsResources, ConfigError> {
        Ok(AwsResources {
            table: required_env(ENV_TABLE)?,
            bucket: required_env(ENV_BUCKET)?,
            queue_url: required_env(ENV_QUEUE_URL)?,
            dlq_url: required_env(ENV_DLQ_URL)?,
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

impl Backends {
    /// The AWS adapters on `resources`, with clients built from `sdk`.
    pub fn aws(sdk: &aws_config::SdkConfig, resources: &AwsResources) -> Backends {
        Backends {
            store: Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(sdk),
                &resources.table,
            )),
            blobs: Arc::new(S3Blobs::new(s3_client(sdk), &resources.bucket)),
            queue: Arc::new(SqsQueue::new(
                aws_sdk_sqs::Client::new(sdk),
                &resources.queue_url,
                &resources.dlq_url,
            )),
            folder_blobs: None,
            embedded_queue: None,
        }
    }

    /// The AWS adapters configured from the environment (see the module documentation).
    pub async fn aws_from_env() -> Result<Backends, ConfigError> {
        let resources = AwsResources::from_env()?;
        // Reads AWS_ENDPOINT_URL, the region and credentials from the usual places; without a
        // configured region (a bare shell pointed at moto) us-east-1 is assumed.
        let region = aws_config::meta::region::RegionProviderChain::default_provider()
            .or_else(aws_config::Region::new(DEFAULT_REGION));
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(region)
            .load()
            .await;
        Ok(Backends::aws(&sdk, &resources))
    }

    /// The backend `PLEXE_BACKEND` selects: `embedded` (the default, under `data_dir`) or `aws`.
    pub async fn from_env(data_dir: &Path, public_base_url: &str) -> Result<Backends, ConfigError> {
        match std::env::var(ENV_BACKEND).as_deref().map(str::trim) {
            Err(_) | Ok("") | Ok("embedded") => Backends::embedded(data_dir, public_base_url),
            Ok("aws") => Backends::aws_from_env().await,
            Ok(other) => Err(ConfigError::Invalid {
                name: ENV_BACKEND,
                reason: format!("{other:?} is neither \"embedded\" nor \"aws\""),
            }),
        }
    }
}
