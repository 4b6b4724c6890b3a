//! Batch prediction jobs: predictions over a CSV too large for one request (over the body
//! limit, or over [`crate::serving::MAX_BATCH_ROWS`] rows). The client PUTs the file to an upload session (or
//! names a dataset it uploaded), creates a job for a deployed version, polls it, and downloads
//! the CSV with the prediction columns appended (as `POST .../predictions` answers a CSV).
//!
//! The job runs on the task worker ([`super::tasks`]): the task function on AWS (900 s, 3 GB),
//! a worker inside `plexe serve` locally. It reads the input in batches of
//! [`crate::serving::MAX_BATCH_ROWS`] rows, so memory does not grow with the file, and writes the result to
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
use crate::ports::{Blobs, Condition, Item, Queue, Store, StoreError};
use crate::serving::{CsvBatchError, CsvChunks, OnnxModel};
use serde::{Deserialize, Serialize};
use std::time::Duration;

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

/// Why a delivery of a job's message is not done: it must come back (never be deleted), or
/// the job could be left unfinished with nothing to run it.
#[derive(Debug, thiserror::Error)]
pub enum JobRunError {
    /// The store or blobs failed: the message should come back.
    #[error("prediction job failed for now: {0}")]
    Transient(#[from] DomainError),
    /// Another worker holds the job's lease: come back once it may have lapsed (the holder
    /// finishes the job, or has died and the job is taken over then).
    #[error("prediction job is held by another worker for {retry_after:?}")]
    Busy { retry_after: Duration },
}

impl JobRunError {
    /// When the message should be delivered again.
    pub fn retry_after(&self) -> Duration {
        match self {
            JobRunError::Transient(_) => Duration::from_secs(30),
            JobRunError::Busy { retry_after } => *retry_after,
        }
    }
}

/// What became of one delivery of a job's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobRun {
    /// Predicted and stored, or failed for good (the job says why).
    Finished(PredictionJobStatus),
    /// Already finished (a redelivery after the end), or gone.
    Nothing,
}

/// Runs a job's delivery: claims it, predicts the whole input in batches into a temporary
/// file, stores the result and records the outcome. A failure of the input (a bad row, a
/// missing column) fails the job with the reason; a failure of our own is an error, so the
/// message comes back, until the job's attempts are used up; then the job fails saying so.
pub async fn run_job(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    job_id: &str,
) -> Result<JobRun, JobRunError> {
    let (job, item) = match read_job(store, account_id, job_id).await {
        Ok(found) => found,
        Err(DomainError::NotFound { .. }) => return Ok(JobRun::Nothing),
        Err(e) => return Err(e.into()),
    };
    if matches!(
        job.status,
        PredictionJobStatus::Succeeded | PredictionJobStatus::Failed
    ) {
        return Ok(JobRun::Nothing);
    }
    // What the client was told (as_seen) is what happens: an abandoned job is not run late.
    if job.clone().as_seen().status == PredictionJobStatus::Failed {
        let reason = job.clone().as_seen().error.unwrap_or_default();
        let status = finish(store, job, item.rev, Err(reason)).await?;
        return Ok(JobRun::Finished(status));
    }
    if job.status == PredictionJobStatus::Running
        && let Some(since) = job.running_since
    {
        let left = JOB_LEASE_SECONDS - (now_epoch() - since);
        if left >= 0 {
            return Err(JobRunError::Busy {
                retry_after: Duration::from_secs(left.unsigned_abs() + 1),
            });
        }
    }
    if job.attempts >= MAX_JOB_ATTEMPTS {
        // Every earlier attempt was claimed and never finished: its worker ran out of time
        // or memory, or died.
        let attempts = job.attempts;
        let failed = finish(
            store,
            job,
            item.rev,
            Err(format!(
                "the job stopped {attempts} times before it finished (out of time or memory): \
                 split the input into smaller files and create a job for each"
            )),
        )
        .await?;
        return Ok(JobRun::Finished(failed));
    }
    let mut claimed = job.clone();
    claimed.status = PredictionJobStatus::Running;
    claimed.attempts += 1;
    claimed.running_since = Some(now_epoch());
    claimed.started_at = Some(now_rfc3339());
    let rev = match put_job(store, &claimed, item.rev, item.expires_at).await {
        Ok(rev) => rev,
        Err(DomainError::Store(StoreError::ConditionFailed)) => {
            return Err(JobRunError::Busy {
                retry_after: Duration::from_secs(JOB_LEASE_SECONDS.unsigned_abs()),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = match predict_file(blobs, &claimed).await {
        Ok(done) => Ok(done),
        Err(PredictError::Input(reason)) => Err(reason),
        Err(PredictError::Ours(e)) if claimed.attempts >= MAX_JOB_ATTEMPTS => {
            tracing::warn!(%job_id, error = %e, "prediction job failed for a reason of ours, finally");
            Err(
                "storage failed while the job ran, on every attempt; create the job again"
                    .to_owned(),
            )
        }
        Err(PredictError::Ours(e)) => {
            // Given back for the next delivery (kept RUNNING it would wait out the lease).
            let mut again = claimed.clone();
            again.status = PredictionJobStatus::Queued;
            again.running_since = None;
            if let Err(put) = put_job(store, &again, rev, item.expires_at).await {
                tracing::warn!(%job_id, error = %put, "could not give a prediction job back");
            }
            return Err(e.into());
        }
    };
    let status = finish(store, claimed, rev, outcome).await?;
    Ok(JobRun::Finished(status))
}

/// Records the end of a job whose item is at `rev`: the rows and result size, or why it failed.
async fn finish(
    store: &dyn Store,
    mut job: PredictionJob,
    rev: u64,
    outcome: Result<(u64, u64), String>,
) -> Result<PredictionJobStatus, DomainError> {
    match outcome {
        Ok((rows, result_bytes)) => {
            job.status = PredictionJobStatus::Succeeded;
            job.rows = Some(rows);
            job.result_bytes = Some(result_bytes);
        }
        Err(reason) => {
            job.status = PredictionJobStatus::Failed;
            job.error = Some(reason);
        }
    }
    job.running_since = None;
    job.finished_at = Some(now_rfc3339());
    let status = job.status;
    put_job(store, &job, rev, Some(now_epoch() + JOB_TTL_SECONDS)).await?;
    Ok(status)
}

async fn put_job(
    store: &dyn Store,
    job: &PredictionJob,
    rev: u64,
    expires_at: Option<i64>,
) -> Result<u64, DomainError> {
    let mut item = Item::new(
        account_pk(&job.account_id),
        prediction_job_sk(&job.job_id),
        encode(job)?,
    );
    item.expires_at = expires_at;
    Ok(store.put(item, Condition::Revision(rev)).await?)
}

enum PredictError {
    /// The input cannot be predicted (the job fails with this reason).
    Input(String),
    /// Storage or the machine failed (the delivery is retried).
    Ours(DomainError),
}

impl From<crate::ports::BlobError> for PredictError {
    fn from(e: crate::ports::BlobError) -> Self {
        PredictError::Ours(e.into())
    }
}

impl From<std::io::Error> for PredictError {
    fn from(e: std::io::Error) -> Self {
        PredictError::Ours(DomainError::Corrupt(format!("local file: {e}")))
    }
}

/// Predicts the job's input into its result blob; returns (rows, result bytes).
async fn predict_file(blobs: &dyn Blobs, job: &PredictionJob) -> Result<(u64, u64), PredictError> {
    let dir = tempfile::tempdir()?;
    let input_path = dir.path().join("input.csv");
    let output_path = dir.path().join("result.csv");
    match blobs.get_to_file(&job.input_key, &input_path).await {
        Ok(_) => {}
        Err(crate::ports::BlobError::NotFound(_)) => {
            return Err(PredictError::Input(
                "the input file is gone (an upload session's file lasts 2 days, and completing \
                 the session moves it into its dataset; a deleted dataset takes its file): \
                 create the job again naming a dataset that exists"
                    .to_owned(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let artifact = match blobs.get(&job.artifact_key).await {
        Ok(bytes) => bytes,
        Err(crate::ports::BlobError::NotFound(_)) => {
            return Err(PredictError::Input(
                "the model version was deleted before the job ran: deploy a version and create \
                 the job again"
                    .to_owned(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let (input, output) = (input_path.clone(), output_path.clone());
    let rows = tokio::task::spawn_blocking(move || -> Result<u64, PredictError> {
        let model = OnnxModel::load(&artifact).map_err(|e| {
            PredictError::Ours(DomainError::Corrupt(format!("loading the artifact: {e}")))
        })?;
        predict_csv(&model, &input, &output)
    })
    .await
    .map_err(|e| PredictError::Ours(DomainError::Corrupt(format!("prediction thread: {e}"))))??;
    let result_bytes = std::fs::metadata(&output_path)?.len();
    blobs.put_file(&job.result_key(), &output_path).await?;
    Ok((rows, result_bytes))
}

/// The largest result a job writes (S3 takes at most 5 GB in one PUT).
pub const MAX_RESULT_BYTES: u64 = 4 << 30;

/// Predicts the CSV at `input` batch by batch into `output`; returns the rows predicted. An
/// input error is worded for the client; a local file's error is ours.
fn predict_csv(
    model: &OnnxModel,
    input: &std::path::Path,
    output: &std::path::Path,
) -> Result<u64, PredictError> {
    let file = std::fs::File::open(input)?;
    let mut chunks = CsvChunks::new(std::io::BufReader::new(file))
        .map_err(|e| PredictError::Input(e.to_string()))?;
    let out = std::fs::File::create(output)?;
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(out));
    let mut first = true;
    loop {
        let start = chunks.rows_read();
        let batch = match chunks.next_batch() {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(e) => return Err(PredictError::Input(in_rows(start, start, &e))),
        };
        let end = chunks.rows_read();
        if end > MAX_JOB_ROWS {
            return Err(PredictError::Input(format!(
                "the input has more than {MAX_JOB_ROWS} rows: split it into smaller files and \
                 create a job for each"
            )));
        }
        let input = batch
            .to_batch(model)
            .map_err(|e| PredictError::Input(in_rows(start, end, &e)))?;
        let predicted = model
            .run(&input)
            .map_err(|e| PredictError::Input(format!("rows {}–{end}: {e}", start + 1)))?;
        batch
            .write_predictions(model, &predicted, None, &mut writer, first)
            .map_err(csv_write_error)?;
        first = false;
        writer.flush()?;
        if writer.get_ref().get_ref().metadata()?.len() > MAX_RESULT_BYTES {
            return Err(PredictError::Input(format!(
                "the result would be over {} GB: split the input into smaller files and create \
                 a job for each",
                MAX_RESULT_BYTES >> 30
            )));
        }
    }
    if first {
        return Err(PredictError::Input(
            "the input has no rows: send a CSV with a header and at least one row".to_owned(),
        ));
    }
    writer.flush()?;
    Ok(chunks.rows_read())
}

/// Writing the result failed: the local disk's fault (ours), never the input's.
fn csv_write_error(e: csv::Error) -> PredictError {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e.into(),
        other => PredictError::Ours(DomainError::Corrupt(format!(
            "writing the result: {other:?}"
        ))),
    }
}

/// An error of the batch of rows `start + 1 ..= end` of the file, naming where it is.
fn in_rows(start: u64, end: u64, e: &CsvBatchError) -> String {
    match e {
        CsvBatchError::Unreadable {
            line: Some(line), ..
        } => format!("{e} (line {line} of the file)"),
        CsvBatchError::Input(_) => format!("in rows {}–{end}: {e}", start + 1),
        _ => e.to_string(),
    }
}

/// How long the presigned URL of a result works.
pub const RESULT_LINK_TTL: Duration = Duration::from_secs(15 * 60);
