//! Build jobs and their claim protocol. A job is claimed with a compare-and-set on its revision,
//! so of two deliveries of one queue message only one trains; the claim is a lease kept alive by
//! the worker's heartbeat, so a job whose worker died is claimed again once the lease lapses.

use super::MAX_LISTED;
use crate::domain::layout::{JOB_PREFIX, ModelName, account_pk, build_slot_sk, job_sk, version_sk};
use crate::domain::{DomainError, decode, encode};
use crate::ids::{now_epoch, now_rfc3339};
use crate::ports::{Condition, Item, Store, StoreError, WriteOp};
use serde::{Deserialize, Serialize};

/// A version item larger than this keeps its build record's bulky parts in the metadata blob
/// only (DynamoDB refuses items over 400 KB).
pub const VERSION_ITEM_MAX_BYTES: usize = 300 * 1024;

fn encoded_size(data: &serde_json::Value) -> usize {
    serde_json::to_vec(data).map_or(usize::MAX, |v| v.len())
}

/// Records how an attempt ended: the job's new state and the version, in one transaction
/// conditional on the claim at `rev`. `Ok(false)`: the claim is gone (the model was deleted or
/// another worker took the job over), and nothing was written.
pub async fn commit_attempt(
    store: &dyn Store,
    job: &Job,
    rev: u64,
    version: &super::ModelVersion,
) -> Result<bool, DomainError> {
    let mut data = encode(version)?;
    if encoded_size(&data) > VERSION_ITEM_MAX_BYTES
        && let Some(trained) = &version.trained
    {
        // The metadata blob holds the whole record; the item keeps what listings show.
        let mut slim = version.clone();
        slim.trained = Some(trained.without_detail());
        data = encode(&slim)?;
    }
    let mut ops = transition_ops(job, rev)?;
    ops.push(WriteOp::Put {
        item: Item::new(
            account_pk(&job.account_id),
            version_sk(&version.model_name, version.number),
            data,
        ),
        condition: Condition::Exists,
    });
    match store.transact(ops).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A build in flight whose job nobody touched for this long is abandoned: its worker died and
/// no delivery of its message is coming back (SQS dead-lettered it, say). Longer than the job
/// queue's visibility timeout (90 minutes in the SAM template), so a redelivery always comes
/// first when there is one.
pub const ABANDONED_AFTER_SECONDS: i64 = 3 * 3600;

/// Claims per job: the attempt after this many is not run; the version becomes ERROR.
pub const MAX_ATTEMPTS: u32 = 3;
/// How long a claim holds without a heartbeat.
pub const LEASE_SECONDS: i64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub account_id: String,
    pub model_name: ModelName,
    pub version_number: u32,
    pub state: JobState,
    /// Claims so far (the running attempt included).
    pub attempts: u32,
    /// Epoch seconds until which the current claim holds.
    #[serde(default)]
    pub lease_until: i64,
    /// Which worker holds the claim.
    #[serde(default)]
    pub worker: Option<String>,
    /// The concurrent-build slot this job holds until it ends.
    pub slot: u32,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Epoch seconds of the last write by the API or a worker (0: unknown).
    #[serde(default)]
    pub touched_at: i64,
}

impl Job {
    /// Records that the job was written just now.
    pub fn touch(&mut self) {
        self.updated_at = now_rfc3339();
        self.touched_at = now_epoch();
    }
}

/// The body of a job's queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub account_id: String,
    pub job_id: String,
}

/// The item that marks a concurrent-build slot as taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSlot {
    pub job_id: String,
}

pub fn job_item(job: &Job) -> Result<Item, DomainError> {
    Ok(Item::new(
        account_pk(&job.account_id),
        job_sk(&job.job_id),
        encode(job)?,
    ))
}

pub async fn get_job(
    store: &dyn Store,
    account_id: &str,
    job_id: &str,
) -> Result<Option<(Job, u64)>, DomainError> {
    match store.get(&account_pk(account_id), &job_sk(job_id)).await? {
        Some(item) => Ok(Some((decode(&item)?, item.rev))),
        None => Ok(None),
    }
}

/// What a delivery of a job message found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This worker now runs the job (`rev` is the claimed item's revision).
    Claimed { job: Job, rev: u64 },
    /// The job ended already (or was cancelled): nothing to do.
    Finished(JobState),
    /// Another worker holds a live claim until `lease_until`.
    Busy { lease_until: i64 },
    /// The job used all its attempts; the caller records the failure.
    Exhausted { job: Job, rev: u64 },
    /// No such job (its model was deleted).
    Missing,
}

/// Claims job `job_id` for `worker` with a conditional write: only one of several concurrent
/// claims of the same job succeeds.
pub async fn claim_job(
    store: &dyn Store,
    account_id: &str,
    job_id: &str,
    worker: &str,
) -> Result<Claim, DomainError> {
    for _ in 0..5 {
        let Some((mut job, rev)) = get_job(store, account_id, job_id).await? else {
            return Ok(Claim::Missing);
        };
        let now = now_epoch();
        if job.state.is_terminal() {
            return Ok(Claim::Finished(job.state));
        }
        if job.state == JobState::Running && job.lease_until > now {
            return Ok(Claim::Busy {
                lease_until: job.lease_until,
            });
        }
        if job.attempts >= MAX_ATTEMPTS {
            return Ok(Claim::Exhausted { job, rev });
        }
        job.state = JobState::Running;
        job.attempts += 1;
        job.lease_until = now + LEASE_SECONDS;
        job.worker = Some(worker.to_string());
        job.touch();
        match store.put(job_item(&job)?, Condition::Revision(rev)).await {
            Ok(rev) => return Ok(Claim::Claimed { job, rev }),
            // Someone else claimed or changed it in between: look again.
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Claim::Busy {
        lease_until: now_epoch() + LEASE_SECONDS,
    })
}

/// Extends the claim; `Ok(None)` when the claim was lost (cancelled or taken over).
pub async fn renew_lease(
    store: &dyn Store,
    job: &mut Job,
    rev: u64,
) -> Result<Option<u64>, DomainError> {
    job.lease_until = now_epoch() + LEASE_SECONDS;
    job.touch();
    match store.put(job_item(job)?, Condition::Revision(rev)).await {
        Ok(rev) => Ok(Some(rev)),
        Err(StoreError::ConditionFailed) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The write that moves a claimed job to `state` (conditional on the claim still holding) and,
/// when the job ends, frees its build slot in the same transaction.
pub fn transition_ops(job: &Job, rev: u64) -> Result<Vec<WriteOp>, DomainError> {
    let mut ops = vec![WriteOp::Put {
        item: job_item(job)?,
        condition: Condition::Revision(rev),
    }];
    if job.state.is_terminal() {
        ops.push(WriteOp::Delete {
            pk: account_pk(&job.account_id),
            sk: build_slot_sk(job.slot),
            condition: Condition::None,
        });
    }
    Ok(ops)
}

/// The jobs of the account, newest first (bounded).
pub async fn list_jobs(
    store: &dyn Store,
    account_id: &str,
) -> Result<Vec<(Job, u64)>, DomainError> {
    let items = super::query_all(store, &account_pk(account_id), JOB_PREFIX, false).await?;
    items
        .iter()
        .take(MAX_LISTED)
        .map(|i| Ok((decode(i)?, i.rev)))
        .collect()
}

/// Ends a build that no worker will ever finish (see [`ABANDONED_AFTER_SECONDS`]): the version
/// becomes ERROR with the reason and the job FAILED, freeing its build slot. Called when a
/// version is read, so no version stays PENDING or BUILDING forever. Returns the version as it
/// now is.
pub async fn fail_if_abandoned(
    store: &dyn Store,
    account_id: &str,
    version: super::ModelVersion,
) -> Result<super::ModelVersion, DomainError> {
    if !version.status.is_in_flight() {
        return Ok(version);
    }
    let Some((mut job, rev)) = get_job(store, account_id, &version.job_id).await? else {
        return Ok(version);
    };
    let last_sign_of_life = job.lease_until.max(job.touched_at);
    if job.state.is_terminal()
        || job.touched_at == 0
        || now_epoch() - last_sign_of_life < ABANDONED_AFTER_SECONDS
    {
        return Ok(version);
    }
    let message = format!(
        "The build stopped: its worker was lost and the build was not resumed within {} hours. \
         Start it again with POST /models/{}/versions.",
        ABANDONED_AFTER_SECONDS / 3600,
        version.model_name
    );
    job.state = JobState::Failed;
    job.last_error = Some(message.clone());
    job.touch();
    let mut ended = version.clone();
    ended.status = super::VersionStatus::Error;
    ended.error = Some(super::VersionError {
        code: "build_interrupted".into(),
        message,
    });
    ended.build_finished_at = Some(now_rfc3339());
    ended.updated_at = now_rfc3339();
    let mut ops = transition_ops(&job, rev)?;
    ops.push(WriteOp::Put {
        item: Item::new(
            account_pk(account_id),
            version_sk(&ended.model_name, ended.number),
            encode(&ended)?,
        ),
        condition: Condition::Exists,
    });
    match store.transact(ops).await {
        Ok(()) => {
            tracing::warn!(job_id = %job.job_id, "abandoned build marked ERROR");
            Ok(ended)
        }
        // A worker woke up (or the model went) meanwhile: show what is there now.
        Err(StoreError::ConditionFailed) => {
            Ok(
                super::get_version(store, account_id, &version.model_name, version.number)
                    .await?
                    .unwrap_or(version),
            )
        }
        Err(e) => Err(e.into()),
    }
}
