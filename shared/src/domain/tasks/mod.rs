//! Long work an API function hands to the task worker (on AWS the task function: its own
//! queue, 900 s, 3 GB; locally a worker inside `plexe serve`) instead of doing it within a
//! request: completing a large upload session on AWS ([`super::uploads::complete_or_queue`])
//! and batch prediction jobs ([`super::prediction_jobs`]). A message names the account and the
//! work; the work's own record (the upload session, the job) says how it went, so the client
//! polls that.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Running tasks (a prediction job needs the model runtime): only the task worker links it.
#[cfg(feature = "serving")]
mod worker;
#[cfg(feature = "serving")]
pub use worker::{TaskError, process_task, spawn_workers, work_queue};

/// The body of a task queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum TaskMessage {
    CompleteUpload {
        account_id: String,
        upload_id: String,
    },
    PredictBatch {
        account_id: String,
        job_id: String,
    },
}

impl TaskMessage {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// How long a received task message stays hidden from other workers: the longest a task runs
/// (the task function's timeout on AWS).
pub const TASK_VISIBILITY: Duration = Duration::from_secs(15 * 60);
/// Tasks `plexe serve` runs at once (each may use a core and a file's worth of disk).
pub const EMBEDDED_TASK_WORKERS: usize = 1;
/// Receives of a message on `plexe serve`'s task queue before it is dead-lettered: above a
/// prediction job's attempts, with room for the deliveries that find the job held by a worker
/// that died (a restart makes its message visible at once).
pub const EMBEDDED_TASK_MAX_RECEIVES: u32 = 10;
