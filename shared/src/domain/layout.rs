//! The storage layout: every key of the single table and of the blob store is built here, and
//! nowhere else. Names that go into keys arrive as typed values ([`ModelName`],
//! [`EnvironmentName`]) that cannot hold the `#` separator, so a prefix query for one model can
//! never match another's items.
//!
//! Table items (`pk` / `sk`):
//!
//! | item | pk | sk | module |
//! |---|---|---|---|
//! | account | `ACCT#<account>` | `ACCOUNT` | [`accounts`](super::accounts) |
//! | the default account's marker | `SYSTEM` | `DEFAULT_ACCOUNT` | [`accounts`](super::accounts) |
//! | API key, listing | `ACCT#<account>` | `KEY#<key_id>` | [`api_keys`](super::api_keys) |
//! | API key, lookup by id | `APIKEY#<key_id>` | `APIKEY` | [`api_keys`](super::api_keys) |
//! | dataset | `ACCT#<account>` | `DATASET#<dataset_id>` | [`datasets`](super::datasets) |
//! | upload session | `ACCT#<account>` | `UPLOAD#<upload_id>` | [`uploads`](super::uploads) |
//! | model | `ACCT#<account>` | `MODEL#<model_name>` | [`models`](super::models) |
//! | model version | `ACCT#<account>` | `VER#<model_name>#<number:06>` | [`models`](super::models) |
//! | build job | `ACCT#<account>` | `JOB#<job_id>` | [`jobs`](super::models::jobs) |
//! | build slot (one per build in flight) | `ACCT#<account>` | `BUILDSLOT#<index:03>` | [`builds`](super::models::builds) |
//! | build log line | `ACCT#<account>` | `LOG#<job_id>#<seq:010>` | [`logs`](super::models::logs) |
//! | deployment | `ACCT#<account>` | `DEP#<model_name>#<deployment_id>` | [`deployments`](super::deployments) |
//! | active deployment of an environment | `ACCT#<account>` | `DEPENV#<model_name>#<environment>` | [`deployments`](super::deployments) |
//! | batch prediction job (TTL) | `ACCT#<account>` | `PREDJOB#<job_id>` | [`prediction_jobs`](super::prediction_jobs) |
//! | idempotency record (TTL) | `ACCT#<account>` | `IDEM#<sha256 of the key>` | [`idempotency`](crate::http::middleware::idempotency) |
//! | request-rate window (TTL) | `RATE#<account>` | `<window start>` | [`rate_limit`](crate::http::middleware::rate_limit) |
//! | build-rate window (TTL) | `BUILDRATE#<account>` | `<window start>` | [`builds`](super::models::builds) |
//!
//! Everything an account owns lives in its partition, so a query can only ever see the caller's
//! own items; the lookups that start from a bare id (authenticating a key) have their own
//! partition holding the owner's account id, written in one transaction with the listing item.
//!
//! Blobs:
//!
//! | blob | key |
//! |---|---|
//! | a dataset's file, as uploaded | `datasets/<account>/<dataset_id>/data.<csv\|parquet>` |
//! | its preview rows and full profile | `datasets/<account>/<dataset_id>/{preview,profile}.json` |
//! | an upload session's staged file | `uploads/<account>/<upload_id>/data` (expires: [`EXPIRING_PREFIXES`]) |
//! | a version's ONNX file and metadata | `models/<account>/<model_name>/<version_id>/{model.onnx,metadata.json}` |
//! | a batch prediction job's result | `predictions/<account>/<job_id>/result.csv` (expires) |
//! | an idempotent answer too large for its item | `idempotency/<account>/<sha256 of the key>` (expires) |

use super::DomainError;

// ------------------------------------------------------------------------------ typed names

/// Words that cannot be model names because they are path segments of their own.
pub const RESERVED_MODEL_NAMES: [&str; 4] = ["build-logs", "latest", "versions", "deployments"];

/// A model's name: `^[a-z0-9][a-z0-9_-]{0,62}$`, not a reserved word. Stored and sent as a
/// plain string; a stored record whose name breaks the rule does not decode.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ModelName(String);

impl TryFrom<String> for ModelName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        if is_model_name(&name) {
            Ok(ModelName(name))
        } else {
            Err(format!("{name:?} is not a model name"))
        }
    }
}

impl From<ModelName> for String {
    fn from(name: ModelName) -> String {
        name.0
    }
}

impl PartialEq<str> for ModelName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

fn is_model_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
        && !RESERVED_MODEL_NAMES.contains(&name)
}

impl ModelName {
    /// The name of a model to create: a 422 naming the rule when it breaks it.
    pub fn new(name: &str) -> Result<ModelName, DomainError> {
        if is_model_name(name) {
            return Ok(ModelName(name.to_owned()));
        }
        let message = if RESERVED_MODEL_NAMES.contains(&name) {
            format!("model name {name:?} is a reserved word; choose another name")
        } else {
            format!(
                "model name {name:?} is not valid: use 1 to 63 lowercase letters, digits, '_' \
                 or '-', starting with a letter or digit"
            )
        };
        Err(DomainError::validation(message, "model_name"))
    }

    /// The name of a model to look up: a name no model can have names no model (404).
    pub fn existing(name: &str) -> Result<ModelName, DomainError> {
        if is_model_name(name) {
            Ok(ModelName(name.to_owned()))
        } else {
            Err(super::models::model_not_found(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ModelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ModelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A deployment environment's name (`production`, `staging`, …): 1 to 32 lowercase letters,
/// digits, `_` or `-`. Stored and sent as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvironmentName(String);

fn is_environment_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 32
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
}

impl EnvironmentName {
    pub fn new(name: &str) -> Result<EnvironmentName, DomainError> {
        if is_environment_name(name) {
            Ok(EnvironmentName(name.to_owned()))
        } else {
            Err(DomainError::validation(
                "environment must be 1 to 32 lowercase letters, digits, '_' or '-' (e.g. \
                 production)",
                "environment",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EnvironmentName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        if is_environment_name(&name) {
            Ok(EnvironmentName(name))
        } else {
            Err(format!("{name:?} is not an environment name"))
        }
    }
}

impl From<EnvironmentName> for String {
    fn from(name: EnvironmentName) -> String {
        name.0
    }
}

impl std::fmt::Display for EnvironmentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// ------------------------------------------------------------------------------ table keys

/// The partition of everything account `account_id` owns.
pub fn account_pk(account_id: &str) -> String {
    format!("ACCT#{account_id}")
}

pub const ACCOUNT_SK: &str = "ACCOUNT";
pub const SYSTEM_PK: &str = "SYSTEM";
pub const DEFAULT_ACCOUNT_SK: &str = "DEFAULT_ACCOUNT";

pub const API_KEY_LISTING_PREFIX: &str = "KEY#";

pub fn api_key_listing_sk(key_id: &str) -> String {
    format!("{API_KEY_LISTING_PREFIX}{key_id}")
}

pub fn api_key_lookup_pk(key_id: &str) -> String {
    format!("APIKEY#{key_id}")
}

pub const API_KEY_LOOKUP_SK: &str = "APIKEY";

pub const DATASET_PREFIX: &str = "DATASET#";

pub fn dataset_sk(dataset_id: &str) -> String {
    format!("{DATASET_PREFIX}{dataset_id}")
}

pub const UPLOAD_PREFIX: &str = "UPLOAD#";

pub fn upload_sk(upload_id: &str) -> String {
    format!("{UPLOAD_PREFIX}{upload_id}")
}

pub const MODEL_PREFIX: &str = "MODEL#";

pub fn model_sk(model: &ModelName) -> String {
    format!("{MODEL_PREFIX}{model}")
}

/// Every version of every model.
pub const VERSION_PREFIX: &str = "VER#";

/// The versions of `model` (no other model's: names hold no `#`).
pub fn version_prefix(model: &ModelName) -> String {
    format!("{VERSION_PREFIX}{model}#")
}

/// Zero-padded, so versions sort by number.
pub fn version_sk(model: &ModelName, number: u32) -> String {
    format!("{VERSION_PREFIX}{model}#{number:06}")
}

pub const JOB_PREFIX: &str = "JOB#";

pub fn job_sk(job_id: &str) -> String {
    format!("{JOB_PREFIX}{job_id}")
}

pub const BUILD_SLOT_PREFIX: &str = "BUILDSLOT#";

pub fn build_slot_sk(index: u32) -> String {
    format!("{BUILD_SLOT_PREFIX}{index:03}")
}

/// The slot index of a build-slot sort key.
pub fn build_slot_index(sk: &str) -> Option<u32> {
    sk.strip_prefix(BUILD_SLOT_PREFIX)?.parse().ok()
}

pub const LOG_PREFIX: &str = "LOG#";

/// The log lines of one job, or of every job.
pub fn log_prefix(job_id: Option<&str>) -> String {
    match job_id {
        Some(job_id) => format!("{LOG_PREFIX}{job_id}#"),
        None => LOG_PREFIX.to_string(),
    }
}

pub fn log_sk(job_id: &str, seq: u64) -> String {
    format!("{LOG_PREFIX}{job_id}#{seq:010}")
}

/// The deployments (active or not) of `model`.
pub fn deployment_prefix(model: &ModelName) -> String {
    format!("DEP#{model}#")
}

pub fn deployment_sk(model: &ModelName, deployment_id: &str) -> String {
    format!("DEP#{model}#{deployment_id}")
}

/// Every active-deployment pointer of the account.
pub const ACTIVE_DEPLOYMENT_PREFIX: &str = "DEPENV#";

/// The active-deployment pointers of `model`, one per environment.
pub fn active_deployment_prefix(model: &ModelName) -> String {
    format!("{ACTIVE_DEPLOYMENT_PREFIX}{model}#")
}

pub fn active_deployment_sk(model: &ModelName, environment: &EnvironmentName) -> String {
    format!("{ACTIVE_DEPLOYMENT_PREFIX}{model}#{environment}")
}

/// The idempotency record of a key, by the key's SHA-256 (hex): the key itself may hold
/// anything a header can.
pub fn idempotency_sk(key_digest: &str) -> String {
    format!("IDEM#{key_digest}")
}

/// The request-rate windows of an account (sort key: the window's start).
pub fn request_rate_pk(account_id: &str) -> String {
    format!("RATE#{account_id}")
}

/// The build-rate windows of an account (sort key: the window's start).
pub fn build_rate_pk(account_id: &str) -> String {
    format!("BUILDRATE#{account_id}")
}

// ------------------------------------------------------------------------------ blob keys

fn dataset_blob_prefix(account_id: &str, dataset_id: &str) -> String {
    format!("datasets/{account_id}/{dataset_id}")
}

/// A dataset's file as uploaded; `extension` is its format's (`csv`, `parquet`).
pub fn dataset_data_key(account_id: &str, dataset_id: &str, extension: &str) -> String {
    format!(
        "{}/data.{extension}",
        dataset_blob_prefix(account_id, dataset_id)
    )
}

pub fn dataset_preview_key(account_id: &str, dataset_id: &str) -> String {
    format!(
        "{}/preview.json",
        dataset_blob_prefix(account_id, dataset_id)
    )
}

pub fn dataset_profile_key(account_id: &str, dataset_id: &str) -> String {
    format!(
        "{}/profile.json",
        dataset_blob_prefix(account_id, dataset_id)
    )
}

/// Where upload sessions stage their files.
pub const UPLOADS_PREFIX: &str = "uploads/";

pub fn upload_staging_key(account_id: &str, upload_id: &str) -> String {
    format!("{UPLOADS_PREFIX}{account_id}/{upload_id}/data")
}

/// The (account, upload) a staging key names, if it is one.
pub fn parse_upload_staging_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(UPLOADS_PREFIX)?;
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(account), Some(upload), Some("data"), None)
            if !account.is_empty() && !upload.is_empty() =>
        {
            Some((account, upload))
        }
        _ => None,
    }
}

fn version_blob_prefix(account_id: &str, model: &ModelName, version_id: &str) -> String {
    format!("models/{account_id}/{model}/{version_id}")
}

pub fn artifact_key(account_id: &str, model: &ModelName, version_id: &str) -> String {
    format!(
        "{}/model.onnx",
        version_blob_prefix(account_id, model, version_id)
    )
}

/// The fitted pipeline as JSON, beside the ONNX file: what explanations read (the ONNX graph
/// does not keep how many training rows reached each tree node).
pub fn pipeline_key(account_id: &str, model: &ModelName, version_id: &str) -> String {
    format!(
        "{}/pipeline.json",
        version_blob_prefix(account_id, model, version_id)
    )
}

pub fn artifact_metadata_key(account_id: &str, model: &ModelName, version_id: &str) -> String {
    format!(
        "{}/metadata.json",
        version_blob_prefix(account_id, model, version_id)
    )
}

pub const PREDICTION_JOB_PREFIX: &str = "PREDJOB#";

pub fn prediction_job_sk(job_id: &str) -> String {
    format!("{PREDICTION_JOB_PREFIX}{job_id}")
}

/// Where batch prediction jobs write their results.
pub const PREDICTIONS_PREFIX: &str = "predictions/";

pub fn prediction_result_key(account_id: &str, job_id: &str) -> String {
    format!("{PREDICTIONS_PREFIX}{account_id}/{job_id}/result.csv")
}

/// Where the idempotency layer keeps answers too large for a table item.
pub const IDEMPOTENCY_PREFIX: &str = "idempotency/";

pub fn idempotency_blob_key(account_id: &str, key_digest: &str) -> String {
    format!("{IDEMPOTENCY_PREFIX}{account_id}/{key_digest}")
}

/// Blob prefixes whose blobs expire by themselves, with their age limit in days: the bucket's
/// lifecycle rules on AWS (`infra/template.yaml`, the CDK app, the test buckets) and the folder
/// sweep of `plexe serve`. S3 rounds an expiry up to the next midnight UTC, so a blob lives at
/// least this long, never less.
pub const EXPIRING_PREFIXES: &[(&str, u32)] = &[
    // Answers the idempotency layer keeps beside a record that lives 24 h.
    (IDEMPOTENCY_PREFIX, 1),
    // Staged upload-session files: deleted when the session completes, which it can for 24 h;
    // anything older was abandoned.
    (UPLOADS_PREFIX, 2),
    // Results of batch prediction jobs, downloadable for a week (the job's item lives a day
    // longer, so a job never points at a result that is gone without saying so).
    (PREDICTIONS_PREFIX, 7),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_follow_the_spec() {
        for ok in ["churn", "a", "m-1_x", &"a".repeat(63)] {
            assert!(ModelName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Churn",
            "-x",
            "a#b",
            "a/b",
            "a b",
            &"a".repeat(64),
            "latest",
            "build-logs",
        ] {
            assert!(ModelName::new(bad).is_err(), "{bad}");
            assert!(matches!(
                ModelName::existing(bad),
                Err(DomainError::NotFound { .. })
            ));
        }
    }

    #[test]
    fn environments_refuse_what_would_break_a_key() {
        assert!(EnvironmentName::new("production").is_ok());
        assert!(EnvironmentName::new(&"e".repeat(32)).is_ok());
        for bad in ["", "a#b", "Prod", "a/b", &"e".repeat(33)] {
            assert!(EnvironmentName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn version_keys_sort_by_number_and_stay_inside_their_model() {
        let a = ModelName::new("a").expect("name");
        let ab = ModelName::new("a-b").expect("name");
        assert!(version_sk(&a, 2) < version_sk(&a, 10));
        assert!(version_sk(&a, 1).starts_with(&version_prefix(&a)));
        assert!(!version_sk(&ab, 1).starts_with(&version_prefix(&a)));
        assert_eq!(build_slot_index(&build_slot_sk(7)), Some(7));
    }

    #[test]
    fn staging_keys_round_trip() {
        let key = upload_staging_key("acct_1", "upl_2");
        assert_eq!(parse_upload_staging_key(&key), Some(("acct_1", "upl_2")));
        assert_eq!(parse_upload_staging_key("uploads/a/b/c/data"), None);
        assert_eq!(parse_upload_staging_key("datasets/a/b/data"), None);
    }
}
