//! Upload sessions: for files over the 6 MB direct limit. The client asks for a session, `PUT`s
//! the file to the returned URL (a presigned S3 URL on AWS; a signed URL served by `plexe serve`
//! locally), then completes the session, which checks size and SHA-256 when they were declared,
//! parses and profiles the file streaming from the blob store, and creates the dataset.
//!
//! On AWS an API function has 29 s, so a staged file over [`INLINE_COMPLETION_MAX_BYTES`] is
//! not completed inside the request: [`complete_or_queue`] marks the session `queued` and sends a
//! [`TaskMessage`](super::tasks::TaskMessage) to the task queue, whose function (900 s, 3 GB)
//! completes it; the client polls `GET /datasets/uploads/{upload_id}`. Without a task queue
//! (`plexe serve`, which has no request time limit) every completion runs in the request.
//!
//! Store layout: `ACCT#<account_id>` / `UPLOAD#<upload_id>` holds the [`UploadSession`], with a
//! TTL of [`SESSION_TTL_SECONDS`]. Blob layout: the client's bytes land at
//! `uploads/<account_id>/<upload_id>/data` (staging), which is deleted once the session completes
//! or is found unusable.

use super::datasets::{self, DataSource, Dataset, DatasetError};
use super::layout::{
    UPLOAD_PREFIX, account_pk, parse_upload_staging_key, upload_sk, upload_staging_key,
};
use super::tasks::TaskMessage;
use super::{DomainError, Tally, count_records, decode, encode};
use crate::ids::{new_id, now_epoch, now_rfc3339, rfc3339};
use crate::ingest::{DataFormat, IngestError};
use crate::ports::{Blobs, Condition, Item, Queue, Store, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

pub const UPLOAD_ID_PREFIX: &str = "upl";
/// Largest file an upload session takes (SPEC §1).
pub const MAX_UPLOAD_BYTES: u64 = 500 * 1024 * 1024;
/// How long the upload URL accepts the `PUT`.
pub const UPLOAD_URL_TTL_SECONDS: u64 = 3600;
/// How long a session can be completed (and an upload id resolved to its dataset).
pub const SESSION_TTL_SECONDS: i64 = 24 * 3600;
/// Largest staged file completed inside the request when a task queue is configured; larger
/// ones go to the task function (reading, parsing and profiling 16 MB takes a few seconds of
/// an API function's 29, 500 MB takes minutes).
pub const INLINE_COMPLETION_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Sessions an account may have open (not completed) at once: each can stage up to
/// [`MAX_UPLOAD_BYTES`], so this bounds an account's staged bytes (20 × 500 MB).
pub const MAX_OPEN_SESSIONS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    Pending,
    /// Waiting in the task queue to be completed (since `completing_since`).
    Queued,
    /// One request is checking and parsing the file (since `completing_since`); others get 409.
    Completing,
    Completed,
}

/// A completion claim older than this is taken to be from a request that died, and can be taken
/// over.
pub const COMPLETION_CLAIM_SECONDS: i64 = 15 * 60;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadSession {
    pub upload_id: String,
    pub account_id: String,
    pub name: String,
    pub format: DataFormat,
    #[serde(default)]
    pub size_bytes: Option<u64>,
    /// Lowercase hex.
    #[serde(default)]
    pub sha256: Option<String>,
    pub status: UploadStatus,
    /// When the current completion claim was taken (epoch seconds), while `Completing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completing_since: Option<i64>,
    #[serde(default)]
    pub dataset_id: Option<String>,
    /// Why the last completion failed (the file is unusable or does not match); cleared when
    /// the session is completed or queued again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub created_at: String,
    /// When the upload URL stops accepting the file (RFC 3339).
    pub url_expires_at: String,
}

impl UploadSession {
    pub fn staging_key(&self) -> String {
        upload_staging_key(&self.account_id, &self.upload_id)
    }
}

/// Whether the session whose staging blob is `key` still takes its file: it exists (not
/// expired) and is pending. Once completed (or while a completion reads the file) a `PUT` to its
/// URL would only leave an orphan behind or swap the file under the reader, so it is refused.
pub async fn check_accepts_file(store: &dyn Store, key: &str) -> Result<(), DomainError> {
    let Some((account_id, upload_id)) = parse_upload_staging_key(key) else {
        return Err(DomainError::not_found(
            "this upload URL does not belong to an upload session",
        ));
    };
    let (session, _) = get_upload(store, account_id, upload_id).await?;
    match session.status {
        UploadStatus::Pending => Ok(()),
        UploadStatus::Queued | UploadStatus::Completing => Err(DomainError::Conflict {
            message: format!(
                "upload session {upload_id} is being completed: wait for the completion to \
                 answer before uploading again"
            ),
        }),
        UploadStatus::Completed => Err(DomainError::Conflict {
            message: format!(
                "upload session {upload_id} is already completed (dataset {}): start a new \
                 session to upload another file",
                session.dataset_id.unwrap_or_default()
            ),
        }),
    }
}

/// What `POST /datasets/uploads` asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    pub name: String,
    pub format: String,
    #[serde(default)]
    pub size_bytes: Option<u64>,
    #[serde(default)]
    pub sha256: Option<String>,
}

/// A created session and where to send the file.
#[derive(Debug, Clone)]
pub struct CreatedUpload {
    pub session: UploadSession,
    pub upload_url: String,
}

fn parse_format(format: &str) -> Result<DataFormat, DomainError> {
    match format.trim().to_ascii_lowercase().as_str() {
        "csv" => Ok(DataFormat::Csv),
        "parquet" => Ok(DataFormat::Parquet),
        other => Err(DomainError::validation(
            format!("format {other:?} is not supported: use \"csv\" or \"parquet\""),
            "format",
        )),
    }
}

fn parse_sha256(sha256: &str) -> Result<String, DomainError> {
    let s = sha256.trim().to_ascii_lowercase();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(DomainError::validation(
            "sha256 must be the file's SHA-256 digest as 64 hexadecimal characters",
            "sha256",
        ))
    }
}

/// Opens an upload session for `account_id` and returns the URL the file goes to.
pub async fn create_upload(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    new: NewUpload,
) -> Result<CreatedUpload, DomainError> {
    let name = datasets::validate_name(&new.name)?;
    let format = parse_format(&new.format)?;
    let sha256 = new.sha256.as_deref().map(parse_sha256).transpose()?;
    if let Some(size) = new.size_bytes {
        if size == 0 {
            return Err(DomainError::validation(
                "size_bytes must be above 0",
                "size_bytes",
            ));
        }
        if size > MAX_UPLOAD_BYTES {
            return Err(DomainError::validation(
                format!("size_bytes is over the upload limit of {MAX_UPLOAD_BYTES} bytes (500 MB)"),
                "size_bytes",
            ));
        }
    }
    let open = count_open_sessions(store, account_id).await?;
    if open >= MAX_OPEN_SESSIONS {
        return Err(DomainError::Conflict {
            message: format!(
                "This account has {open} upload sessions open, the most it may have: complete \
                 them (POST /datasets/uploads/{{upload_id}}/complete) or let them expire (24 \
                 hours) before opening another."
            ),
        });
    }
    let upload_id = new_id(UPLOAD_ID_PREFIX);
    let now = now_epoch();
    let session = UploadSession {
        upload_id: upload_id.clone(),
        account_id: account_id.to_string(),
        name,
        format,
        size_bytes: new.size_bytes,
        sha256,
        status: UploadStatus::Pending,
        completing_since: None,
        dataset_id: None,
        failure: None,
        created_at: now_rfc3339(),
        url_expires_at: rfc3339(now + UPLOAD_URL_TTL_SECONDS as i64),
    };
    let upload_url = blobs
        .presign_put(
            &session.staging_key(),
            Duration::from_secs(UPLOAD_URL_TTL_SECONDS),
            session.size_bytes,
        )
        .await?;
    let item = Item::new(
        account_pk(account_id),
        upload_sk(&upload_id),
        encode(&session)?,
    )
    .with_ttl(now + SESSION_TTL_SECONDS);
    store.put(item, Condition::Absent).await?;
    Ok(CreatedUpload {
        session,
        upload_url,
    })
}

/// The account's sessions not completed yet (expired ones are invisible to reads), counted
/// up to [`MAX_OPEN_SESSIONS`].
async fn count_open_sessions(store: &dyn Store, account_id: &str) -> Result<usize, DomainError> {
    count_records(
        store,
        account_id,
        UPLOAD_PREFIX,
        false,
        MAX_OPEN_SESSIONS,
        |session: UploadSession| {
            if session.status == UploadStatus::Completed {
                Tally::Skips
            } else {
                Tally::Counts
            }
        },
    )
    .await
}

/// One of the account's sessions (another account's, or an expired one, is "not found").
pub async fn get_upload(
    store: &dyn Store,
    account_id: &str,
    upload_id: &str,
) -> Result<(UploadSession, Item), DomainError> {
    let item = store
        .get(&account_pk(account_id), &upload_sk(upload_id))
        .await?
        .ok_or_else(|| {
            DomainError::not_found(format!(
                "upload session {upload_id} not found in this account (sessions last 24 hours)"
            ))
        })?;
    Ok((decode(&item)?, item))
}

/// Why completing a session failed: a domain failure, or a file that does not match what was
/// declared or cannot be parsed (its staged copy is deleted in both cases).
#[derive(Debug, thiserror::Error)]
pub enum CompleteError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("{message}")]
    Mismatch { message: String, details: Value },
    #[error("{message}")]
    TooLarge { message: String },
}

impl CompleteError {
    /// What the user may read: the file's problem, or a plain phrase for a failure of our own
    /// (whose details stay in the logs).
    pub fn public_reason(&self) -> String {
        match self {
            CompleteError::Dataset(DatasetError::Domain(e)) => e.public_reason(),
            other => other.to_string(),
        }
    }

    /// Whether a retry may succeed with the same file (the store or blobs were unavailable).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CompleteError::Dataset(DatasetError::Domain(
                DomainError::Store(_) | DomainError::Blobs(_) | DomainError::Queue(_)
            ))
        )
    }
}

impl From<DomainError> for CompleteError {
    fn from(e: DomainError) -> Self {
        CompleteError::Dataset(DatasetError::Domain(e))
    }
}

impl From<IngestError> for CompleteError {
    fn from(e: IngestError) -> Self {
        CompleteError::Dataset(DatasetError::Ingest(e))
    }
}

/// Completes a session: checks the staged file (present, size, SHA-256), parses and profiles it
/// streaming from a temporary file, stores the dataset and marks the session completed in the
/// same transaction. Memory holds the parsed table, never the file's bytes.
pub async fn complete_upload(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    upload_id: &str,
) -> Result<Dataset, CompleteError> {
    let (session, item) = get_upload(store, account_id, upload_id).await?;
    let in_progress = || -> CompleteError {
        DomainError::Conflict {
            message: format!(
                "upload session {upload_id} is being completed by another request: wait for it, \
                 then GET /datasets to find the dataset"
            ),
        }
        .into()
    };
    match session.status {
        UploadStatus::Completed => {
            let dataset_id = session.dataset_id.unwrap_or_default();
            return Err(DomainError::Conflict {
                message: format!(
                    "upload session {upload_id} is already completed: it created dataset \
                     {dataset_id}"
                ),
            }
            .into());
        }
        UploadStatus::Completing if claim_is_live(&session) => {
            return Err(in_progress());
        }
        _ => {}
    }
    let staging = session.staging_key();
    let Some(size) = blobs.size(&staging).await.map_err(DomainError::from)? else {
        return Err(DomainError::Conflict {
            message: format!(
                "nothing has been uploaded for {upload_id} yet: PUT the file to the session's \
                 upload_url first, then complete it"
            ),
        }
        .into());
    };
    // Claimed with a compare-and-set on the revision read above, so one request at a time reads
    // the staged file (and only it deletes it afterwards).
    let mut claimed = session.clone();
    claimed.status = UploadStatus::Completing;
    claimed.completing_since = Some(now_epoch());
    claimed.failure = None;
    let claim = Item {
        data: encode(&claimed)?,
        ..item.clone()
    };
    let claimed_rev = match store.put(claim, Condition::Revision(item.rev)).await {
        Ok(rev) => rev,
        Err(StoreError::ConditionFailed) => return Err(in_progress()),
        Err(e) => return Err(DomainError::from(e).into()),
    };
    let result = check_and_store(store, blobs, &claimed, &item, claimed_rev, size).await;
    if let Err(e) = &result {
        // Back to pending, so the session can be completed again (after a new PUT if the file
        // was bad), with the reason for `GET /datasets/uploads/{id}`. Best effort: an
        // unreleased claim lapses after COMPLETION_CLAIM_SECONDS.
        let mut released = session.clone();
        released.status = UploadStatus::Pending;
        released.completing_since = None;
        // A failure of our own (store or blobs unavailable) is not the file's: the task
        // function retries it, so the session does not read as failed meanwhile.
        released.failure = (!e.is_transient()).then(|| e.public_reason());
        if let Ok(data) = encode(&released)
            && let Err(e) = store
                .put(
                    Item {
                        data,
                        ..item.clone()
                    },
                    Condition::Revision(claimed_rev),
                )
                .await
        {
            tracing::warn!(%upload_id, error = %e, "could not release an upload completion claim");
        }
    }
    // The staged copy is not needed any more: on success the dataset has its own blob, on a bad
    // file the client has to upload again anyway. A failure of our own (store or blobs
    // unavailable) keeps it so a retry can succeed.
    let keep_staged = matches!(
        &result,
        Err(CompleteError::Dataset(DatasetError::Domain(e))) if !matches!(e, DomainError::Validation { .. })
    );
    if !keep_staged && let Err(e) = blobs.delete(&staging).await {
        tracing::warn!(key = %staging, error = %e, "could not delete a staged upload");
    }
    result
}

async fn check_and_store(
    store: &dyn Store,
    blobs: &dyn Blobs,
    session: &UploadSession,
    item: &Item,
    claimed_rev: u64,
    size: u64,
) -> Result<Dataset, CompleteError> {
    if size > MAX_UPLOAD_BYTES {
        return Err(CompleteError::TooLarge {
            message: format!(
                "the uploaded file has {size} bytes, over the upload limit of {MAX_UPLOAD_BYTES} \
                 bytes (500 MB): split or sample it"
            ),
        });
    }
    if let Some(declared) = session.size_bytes
        && declared != size
    {
        return Err(CompleteError::Mismatch {
            message: format!(
                "the uploaded file has {size} bytes but the session declared size_bytes \
                 {declared}: upload the complete file again (start a new session if the URL \
                 has expired)"
            ),
            details: json!({ "field": "size_bytes", "expected": declared, "actual": size }),
        });
    }
    // Read in place on the embedded backend; a temporary copy on S3.
    let local = datasets::LocalBlob::fetch(
        blobs,
        &session.staging_key(),
        &format!("data.{}", session.format.as_str()),
    )
    .await?;
    let path = local.path().to_path_buf();
    let format = session.format;
    let blocking_path = path.clone();
    let expected_sha = session.sha256.clone();
    let _turn = datasets::parse_turn().await?;
    let parsed = tokio::task::spawn_blocking(move || -> Result<_, CompleteError> {
        let (sha256, size) = datasets::file_digest(&blocking_path).map_err(IngestError::from)?;
        if let Some(expected) = expected_sha
            && expected != sha256
        {
            return Err(CompleteError::Mismatch {
                message: format!(
                    "the uploaded file's SHA-256 is {sha256}, not the {expected} the session \
                     declared: the upload was corrupted or is another file; upload it again"
                ),
                details: json!({ "field": "sha256", "expected": expected, "actual": sha256 }),
            });
        }
        Ok(datasets::parse_file(&blocking_path, format, size, sha256)?)
    })
    .await
    .map_err(|e| DomainError::Corrupt(format!("parsing upload: {e}")))??;

    let dataset_id = datasets::new_dataset_id();
    let mut completed = session.clone();
    completed.status = UploadStatus::Completed;
    completed.completing_since = None;
    completed.failure = None;
    completed.dataset_id = Some(dataset_id.clone());
    // Marked completed in the same transaction as the dataset record, on the revision of our
    // claim: a completion whose claim was taken over cannot create a second dataset.
    let mark = WriteOp::Put {
        item: Item {
            data: encode(&completed)?,
            ..item.clone()
        },
        condition: Condition::Revision(claimed_rev),
    };
    let dataset = datasets::store_dataset(
        store,
        blobs,
        datasets::NewDataset {
            dataset_id,
            account_id: &session.account_id,
            name: &session.name,
            parsed,
            upload_id: Some(session.upload_id.clone()),
        },
        DataSource::File(&path),
        vec![mark],
    )
    .await
    .map_err(|e| match e {
        DomainError::Store(crate::ports::StoreError::ConditionFailed) => DomainError::Conflict {
            message: format!(
                "upload session {} was completed by another request at the same time",
                session.upload_id
            ),
        },
        e => e,
    })?;
    drop(local);
    Ok(dataset)
}

/// Records why a completion failed on a pending session (the task function gave up retrying
/// a failure of our own); the client polling the session then sees `failed`.
pub async fn record_failure(
    store: &dyn Store,
    account_id: &str,
    upload_id: &str,
    reason: &str,
) -> Result<(), DomainError> {
    let (mut session, item) = get_upload(store, account_id, upload_id).await?;
    if session.status != UploadStatus::Pending {
        return Ok(());
    }
    session.failure = Some(reason.to_owned());
    let rev = item.rev;
    let item = Item {
        data: encode(&session)?,
        ..item
    };
    match store.put(item, Condition::Revision(rev)).await {
        Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether the session's completion claim (or queueing) was taken less than
/// [`COMPLETION_CLAIM_SECONDS`] ago, so its worker is taken to be alive.
fn claim_is_live(session: &UploadSession) -> bool {
    session
        .completing_since
        .is_some_and(|since| now_epoch() - since < COMPLETION_CLAIM_SECONDS)
}

/// Whether a queued or started completion's claim has lapsed: its worker died, and the
/// session can be completed again.
pub fn claim_lapsed(session: &UploadSession) -> bool {
    matches!(
        session.status,
        UploadStatus::Queued | UploadStatus::Completing
    ) && !claim_is_live(session)
}

/// How a `complete` request ended: the dataset, or the session queued for the task function.
pub enum Completion {
    Done(Box<Dataset>),
    Queued(Box<UploadSession>),
}

/// Completes a session in the request, or, when `tasks` is set and the staged file is over
/// [`INLINE_COMPLETION_MAX_BYTES`], queues its completion (see the module doc). Completing a
/// session that is already queued answers its state again.
pub async fn complete_or_queue(
    store: &dyn Store,
    blobs: &dyn Blobs,
    tasks: Option<&dyn Queue>,
    account_id: &str,
    upload_id: &str,
) -> Result<Completion, CompleteError> {
    let inline = || async {
        complete_upload(store, blobs, account_id, upload_id)
            .await
            .map(|d| Completion::Done(Box::new(d)))
    };
    let Some(tasks) = tasks else {
        return inline().await;
    };
    let (session, item) = get_upload(store, account_id, upload_id).await?;
    let fresh = claim_is_live(&session);
    match session.status {
        UploadStatus::Queued if fresh => return Ok(Completion::Queued(Box::new(session))),
        // Completed, or being completed now: the inline path answers the 409.
        UploadStatus::Completed => return inline().await,
        UploadStatus::Completing if fresh => return inline().await,
        // Pending, or a queued or started completion whose worker died (its claim lapsed):
        // queued (again) if large, so a dead task is never retried inside an API function.
        UploadStatus::Pending | UploadStatus::Queued | UploadStatus::Completing => {}
    }
    let size = blobs
        .size(&session.staging_key())
        .await
        .map_err(DomainError::from)?;
    // Nothing staged (409), small enough, or over the limit (413 before anything is read):
    // answered in the request.
    if size.is_none_or(|size| size <= INLINE_COMPLETION_MAX_BYTES || size > MAX_UPLOAD_BYTES) {
        return inline().await;
    }
    let mut queued = session.clone();
    queued.status = UploadStatus::Queued;
    queued.completing_since = Some(now_epoch());
    queued.failure = None;
    let rev = match store
        .put(
            Item {
                data: encode(&queued)?,
                ..item.clone()
            },
            Condition::Revision(item.rev),
        )
        .await
    {
        Ok(rev) => rev,
        Err(StoreError::ConditionFailed) => {
            return Err(DomainError::Conflict {
                message: format!(
                    "upload session {upload_id} is being completed by another request: poll \
                     GET /datasets/uploads/{upload_id}"
                ),
            }
            .into());
        }
        Err(e) => return Err(DomainError::from(e).into()),
    };
    let message = TaskMessage::CompleteUpload {
        account_id: account_id.to_owned(),
        upload_id: upload_id.to_owned(),
    };
    if let Err(e) = tasks.send(&message.to_body()).await {
        // Not queued after all: back to pending so a retry can queue it.
        let reverted = Item {
            data: encode(&session)?,
            ..item
        };
        if let Err(revert) = store.put(reverted, Condition::Revision(rev)).await {
            tracing::warn!(%upload_id, error = %revert, "could not un-queue an upload completion");
        }
        return Err(DomainError::from(e).into());
    }
    Ok(Completion::Queued(Box::new(queued)))
}

/// The dataset an upload session created, if it has been completed.
pub async fn dataset_of_upload(
    store: &dyn Store,
    account_id: &str,
    upload_id: &str,
) -> Result<Option<String>, DomainError> {
    let (session, _) = get_upload(store, account_id, upload_id).await?;
    Ok(session.dataset_id)
}

/// The dataset behind an upload session, completing the session first if the file was uploaded
/// but the session not yet completed (`POST /models` accepts an `upload_id` in place of a
/// `dataset_id`). A completion that goes to the task queue ([`complete_or_queue`]) is a
/// conflict that says to build once it is done. Another account's session is "not found".
pub async fn dataset_for_upload(
    store: &dyn Store,
    blobs: &dyn Blobs,
    tasks: Option<&dyn Queue>,
    account_id: &str,
    upload_id: &str,
) -> Result<Dataset, CompleteError> {
    let (session, _) = get_upload(store, account_id, upload_id).await?;
    if let Some(dataset_id) = session.dataset_id {
        return Ok(datasets::get_dataset(store, blobs, account_id, &dataset_id).await?);
    }
    match complete_or_queue(store, blobs, tasks, account_id, upload_id).await? {
        Completion::Done(dataset) => Ok(*dataset),
        Completion::Queued(_) => Err(DomainError::Conflict {
            message: format!(
                "upload session {upload_id} is large, so it is being completed in the \
                 background: poll GET /datasets/uploads/{upload_id} until its status is \
                 completed, then start the build again"
            ),
        }
        .into()),
    }
}
