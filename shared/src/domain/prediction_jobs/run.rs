//! Running a batch prediction job's delivery on the task worker: claim, predict in batches,
//! store the result, record the outcome.

use super::{
    JOB_LEASE_SECONDS, JOB_TTL_SECONDS, MAX_JOB_ATTEMPTS, MAX_JOB_ROWS, PredictionJob,
    PredictionJobStatus, read_job,
};
use crate::domain::layout::{account_pk, prediction_job_sk};
use crate::domain::{DomainError, encode};
use crate::ids::{now_epoch, now_rfc3339};
use crate::ports::{Blobs, Condition, Item, Store, StoreError};
use crate::serving::{CsvBatchError, CsvChunks, OnnxModel};
use std::time::Duration;

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
