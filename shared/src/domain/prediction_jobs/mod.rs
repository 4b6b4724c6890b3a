//! Batch prediction jobs: predictions over a CSV too large for one request (over the body
//! limit, or over [`crate::api::predictions::MAX_BATCH_ROWS`] rows). The client PUTs the file to an upload session (or
//! names a dataset it uploaded), creates a job for a deployed version, polls it, and downloads
//! the CSV with the prediction columns appended (as `POST .../predictions` answers a CSV).
//!
//! The job runs on the task worker ([`super::tasks`]): the task function on AWS (900 s, 3 GB),
//! a worker inside `plexe serve` locally. It reads the input in batches of
//! [`crate::api::predictions::MAX_BATCH_ROWS`] rows, so memory does not grow with the file, and writes the result to
//! [`prediction_result_key`], kept [`RESULT_DAYS`] days. A job whose worker died is taken
//! over when its message comes back (the queue's visibility timeout); one that can no longer
//! come back reads `FAILED` once its lease has lapsed, so a job is never stuck.

use super::layout::{
    ModelName, PREDICTION_JOB_PREFIX, account_pk, prediction_job_sk, prediction_result_key,
};
use super::tasks::TaskMessage;
use super::uploads::{self, MAX_UPLOAD_BYTES};
use super::{DomainError, Tally, count_records, decode, encode};
use crate::ids::{new_id, now_epoch, now_rfc3339};
use crate::ingest::DataFormat;
use crate::ports::{Blobs, Condition, Item, Queue, Store};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Running a job needs the model runtime (tract), which only the task worker links.
#[cfg(feature = "serving")]
mod run;
#[cfg(feature = "serving")]
pub use run::{JobRun, JobRunError, MAX_RESULT_BYTES, run_job};

/// The most rows one job predicts.
pub const MAX_JOB_ROWS: u64 = 10_000_000;
/// Jobs an account may have queued or running at once: each can hold a task worker for up to
/// [`MAX_JOB_ROWS`] rows, so this bounds what one account puts in the task queue.
pub const MAX_ACTIVE_JOBS: usize = 10;
/// Days a job's result can be downloaded (the blob's lifecycle:
/// [`super::layout::EXPIRING_PREFIXES`]).
pub const RESULT_DAYS: u32 = 7;
/// How long a job's item lives: a day longer than its result.
const JOB_TTL_SECONDS: i64 = (RESULT_DAYS as i64 + 1) * 24 * 3600;
/// How long a worker's claim on a running job holds: the task function's timeout. A job
/// running longer than this has lost its worker.
pub const JOB_LEASE_SECONDS: i64 = 15 * 60;
/// A job not finished this long after its creation is failed (see [`PredictionJob::as_seen`]).
const ABANDONED_AFTER_SECONDS: i64 = 24 * 3600;
/// Attempts a job gets before it is failed for good (below the task queues' receive limits,
/// 5 on AWS and [`super::tasks::EMBEDDED_TASK_MAX_RECEIVES`] locally, so the queue never drops
/// a job's message before the job records its end).
pub const MAX_JOB_ATTEMPTS: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PredictionJobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl PredictionJobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PredictionJobStatus::Queued => "QUEUED",
            PredictionJobStatus::Running => "RUNNING",
            PredictionJobStatus::Succeeded => "SUCCEEDED",
            PredictionJobStatus::Failed => "FAILED",
        }
    }
}

/// What a job predicts over: exactly one of an upload session's staged file or a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JobInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<String>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionJob {
    pub job_id: String,
    pub account_id: String,
    pub model_name: ModelName,
    pub model_version: String,
    /// The deployed version's artifact (fixed when the job is created).
    pub artifact_key: String,
    pub input: JobInput,
    /// The blob the input is read from.
    pub input_key: String,
    pub input_bytes: u64,
    pub status: PredictionJobStatus,
    pub attempts: u32,
    /// Since when the current worker holds it (epoch seconds), while `Running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl PredictionJob {
    pub fn result_key(&self) -> String {
        prediction_result_key(&self.account_id, &self.job_id)
    }

    /// As the client sees it. A running job whose worker is gone (its lease lapsed) reads as
    /// queued: its message comes back and another worker takes it over. A job not finished a
    /// day after it was created has outlived every redelivery (the queue gives up after a few
    /// visibility timeouts) and reads as failed.
    pub fn as_seen(mut self) -> PredictionJob {
        let finished = matches!(
            self.status,
            PredictionJobStatus::Succeeded | PredictionJobStatus::Failed
        );
        let abandoned = time_of(&self.created_at)
            .is_some_and(|created| now_epoch() - created > ABANDONED_AFTER_SECONDS);
        if !finished && abandoned {
            self.status = PredictionJobStatus::Failed;
            self.running_since = None;
            self.error = Some(
                "the job's worker stopped before it finished and it was not retried; create \
                 the job again"
                    .to_owned(),
            );
        } else if self.status == PredictionJobStatus::Running
            && self
                .running_since
                .is_some_and(|since| now_epoch() - since > JOB_LEASE_SECONDS)
        {
            self.status = PredictionJobStatus::Queued;
            self.running_since = None;
        }
        self
    }
}

fn time_of(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// A job to create, for a deployed version whose artifact is `artifact_key`.
pub struct NewPredictionJob<'a> {
    pub account_id: &'a str,
    pub model_name: &'a ModelName,
    pub model_version: String,
    pub artifact_key: String,
    pub input: JobInput,
}

/// Checks the input, stores the job and queues it. The input must be a CSV: an upload session
/// whose file was PUT (completed or not), or a dataset.
pub async fn create_job(
    store: &dyn Store,
    blobs: &dyn Blobs,
    tasks: &dyn Queue,
    new: NewPredictionJob<'_>,
) -> Result<PredictionJob, DomainError> {
    let account_id = new.account_id;
    for (id, prefix, what) in [
        (&new.input.upload_id, "upl", "upload session"),
        (&new.input.dataset_id, "ds", "dataset"),
    ] {
        if let Some(id) = id
            && !is_id(id, prefix)
        {
            return Err(DomainError::not_found(format!(
                "{what} {:?} not found in this account",
                id.chars().take(64).collect::<String>()
            )));
        }
    }
    let (format, input_key) = match (&new.input.upload_id, &new.input.dataset_id) {
        (Some(upload_id), None) => {
            let (session, _) = uploads::get_upload(store, account_id, upload_id).await?;
            match (session.status, session.dataset_id.clone()) {
                // Completed: its file is the dataset's now.
                (_, Some(dataset_id)) => dataset_input(store, account_id, &dataset_id).await?,
                // Being completed: its file is about to move into a dataset.
                (uploads::UploadStatus::Queued | uploads::UploadStatus::Completing, None) => {
                    return Err(DomainError::Conflict {
                        message: format!(
                            "upload session {upload_id} is being completed: poll GET \
                             /datasets/uploads/{upload_id} and create the job with its \
                             dataset_id once it is completed"
                        ),
                    });
                }
                (_, None) => (session.format, session.staging_key()),
            }
        }
        (None, Some(dataset_id)) => dataset_input(store, account_id, dataset_id).await?,
        _ => {
            return Err(DomainError::validation(
                "Name the input of the job: exactly one of upload_id (an upload session whose \
                 CSV was PUT) or dataset_id.",
                "upload_id",
            ));
        }
    };
    if format != DataFormat::Csv {
        return Err(DomainError::validation(
            "Batch prediction jobs read CSV files; this input is Parquet. Upload the rows as a \
             CSV.",
            if new.input.upload_id.is_some() {
                "upload_id"
            } else {
                "dataset_id"
            },
        ));
    }
    let field = if new.input.upload_id.is_some() {
        "upload_id"
    } else {
        "dataset_id"
    };
    let Some(input_bytes) = blobs.size(&input_key).await? else {
        return Err(DomainError::Conflict {
            message: if field == "upload_id" {
                "The upload session has no file yet: PUT the CSV to its upload_url first.".into()
            } else {
                "The dataset's file is gone; upload it again.".into()
            },
        });
    };
    if input_bytes > MAX_UPLOAD_BYTES {
        return Err(DomainError::validation(
            format!(
                "The input has {input_bytes} bytes, over the limit of {MAX_UPLOAD_BYTES}: split \
                 it into smaller files and create a job for each."
            ),
            field,
        ));
    }
    let active = count_active_jobs(store, account_id).await?;
    if active >= MAX_ACTIVE_JOBS {
        return Err(DomainError::Conflict {
            message: format!(
                "This account has {active} prediction jobs queued or running, the most it may \
                 have: wait for one to finish (poll GET \
                 /models/{{name}}/{{version}}/prediction-jobs/{{job_id}}) before creating another."
            ),
        });
    }
    let job = PredictionJob {
        job_id: new_id("job"),
        account_id: account_id.to_owned(),
        model_name: new.model_name.clone(),
        model_version: new.model_version,
        artifact_key: new.artifact_key,
        input: new.input,
        input_key,
        input_bytes,
        status: PredictionJobStatus::Queued,
        attempts: 0,
        running_since: None,
        rows: None,
        result_bytes: None,
        error: None,
        created_at: now_rfc3339(),
        started_at: None,
        finished_at: None,
    };
    let item = Item::new(
        account_pk(account_id),
        prediction_job_sk(&job.job_id),
        encode(&job)?,
    )
    .with_ttl(now_epoch() + JOB_TTL_SECONDS);
    store.put(item, Condition::Absent).await?;
    let message = TaskMessage::PredictBatch {
        account_id: account_id.to_owned(),
        job_id: job.job_id.clone(),
    };
    if let Err(e) = tasks.send(&message.to_body()).await {
        // Not queued: nothing will run it, so it is not kept.
        let _ = store
            .delete(
                &account_pk(account_id),
                &prediction_job_sk(&job.job_id),
                Condition::None,
            )
            .await;
        return Err(e.into());
    }
    Ok(job)
}

/// The account's jobs queued or running (as [`PredictionJob::as_seen`] reads them), counted up
/// to [`MAX_ACTIVE_JOBS`]. Newest first, and only back to a day ago: job ids are in creation
/// order, and an older job reads as finished whatever its record says.
async fn count_active_jobs(store: &dyn Store, account_id: &str) -> Result<usize, DomainError> {
    let now = now_epoch();
    count_records(
        store,
        account_id,
        PREDICTION_JOB_PREFIX,
        true,
        MAX_ACTIVE_JOBS,
        |job: PredictionJob| {
            if time_of(&job.created_at).is_some_and(|c| now - c > ABANDONED_AFTER_SECONDS) {
                return Tally::Ends;
            }
            match job.as_seen().status {
                PredictionJobStatus::Queued | PredictionJobStatus::Running => Tally::Counts,
                PredictionJobStatus::Succeeded | PredictionJobStatus::Failed => Tally::Skips,
            }
        },
    )
    .await
}

async fn dataset_input(
    store: &dyn Store,
    account_id: &str,
    dataset_id: &str,
) -> Result<(DataFormat, String), DomainError> {
    let item = store
        .get(
            &account_pk(account_id),
            &super::layout::dataset_sk(dataset_id),
        )
        .await?
        .ok_or_else(|| {
            DomainError::not_found(format!("dataset {dataset_id} not found in this account"))
        })?;
    let dataset: super::datasets::Dataset = decode(&item)?;
    Ok((dataset.format, dataset.data_key()))
}

/// The job as the client sees it ([`PredictionJob::as_seen`]), if it is this model's.
pub async fn get_job(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
    job_id: &str,
) -> Result<PredictionJob, DomainError> {
    let (job, _) = read_job(store, account_id, job_id).await?;
    if &job.model_name != model_name {
        return Err(not_found(job_id));
    }
    Ok(job.as_seen())
}

fn not_found(job_id: &str) -> DomainError {
    DomainError::not_found(format!(
        "prediction job {job_id} not found for this model (jobs are kept {} days)",
        RESULT_DAYS + 1
    ))
}

/// Whether `id` has the shape of one of our ids (`<prefix>_` and a lowercase ULID), so a
/// made-up string never reaches the store as a key (DynamoDB refuses keys over 1 KB).
fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|ulid| {
            ulid.len() == 26
                && ulid
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        })
}

async fn read_job(
    store: &dyn Store,
    account_id: &str,
    job_id: &str,
) -> Result<(PredictionJob, Item), DomainError> {
    if !is_id(job_id, "job") {
        return Err(not_found(&job_id.chars().take(64).collect::<String>()));
    }
    let item = store
        .get(&account_pk(account_id), &prediction_job_sk(job_id))
        .await?
        .ok_or_else(|| not_found(job_id))?;
    Ok((decode(&item)?, item))
}

/// How long the presigned URL of a result works.
pub const RESULT_LINK_TTL: Duration = Duration::from_secs(15 * 60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_ids_reach_the_store() {
        assert!(is_id(&new_id("job"), "job"));
        assert!(is_id(&new_id("upl"), "upl"));
        assert!(!is_id(&new_id("upl"), "ds"));
        assert!(!is_id("job_", "job"));
        assert!(!is_id(&format!("job_{}", "a".repeat(5000)), "job"));
        assert!(!is_id("job_01HZZZZZZZZZZZZZZZZZZZZZZZ", "job"), "uppercase");
    }
}
