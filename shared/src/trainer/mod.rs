//! The trainer: turns a job message into a READY (or ERROR) version.
//!
//! ```text
//! message {account_id, job_id} → claim_job (conditional write; a second delivery finds the
//!   job claimed or finished and trains nothing) → version BUILDING → load the dataset →
//!   automl::build within the budget (progress + log lines written as they come, the claim's
//!   lease renewed by a heartbeat) → ONNX + metadata to blobs → version READY and job
//!   SUCCEEDED in one transaction conditional on the claim (a cancelled build writes nothing)
//! ```
//!
//! Failures: a build the data cannot support is ERROR at once (retrying cannot help); anything
//! else fails the attempt, and the job is retried until [`MAX_ATTEMPTS`] claims, after which the
//! version is ERROR with the reason. The same [`Trainer::process`] runs in the `trainer` Lambda
//! (SQS event, partial batch failures) and in `plexe serve`'s in-process [`worker`].
//!
//! In a Lambda the invocation has a hard timeout. [`Trainer::process_before`] gets its deadline:
//! the engine's time budget is cut to what the invocation has left (less
//! [`FINISH_RESERVE`] to store the model and [`HANDBACK_MARGIN`]), and if the build is still
//! running [`HANDBACK_MARGIN`] before the deadline (the engine overshot, or loading took long),
//! the attempt ends as [`TrainerError::OutOfTime`] so the caller can hand the message back
//! instead of being killed with the job claimed and the version BUILDING.

pub mod worker;

use crate::automl::{self, BuildObserver, BuildRequest, LogLevel, Metric, Task};
use crate::domain::DomainError;
use crate::domain::datasets;
use crate::domain::models::jobs::{
    self, Claim, Job, JobMessage, JobState, LEASE_SECONDS, MAX_ATTEMPTS,
};
use crate::domain::models::logs::{self, ATTEMPT_STRIDE, LogLine};
use crate::domain::models::{self, ModelVersion, TrainedModel, VersionError, VersionStatus};
use crate::ids::{new_id, now_epoch, now_rfc3339};
use crate::ports::{Blobs, Store, StoreError};
use bytes::Bytes;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How often a running build renews its claim.
const HEARTBEAT: Duration = Duration::from_secs(4);
/// How long before an invocation's deadline the trainer stops waiting for the build and
/// records the attempt, so the answer (and the message's hand-back) gets out in time.
pub const HANDBACK_MARGIN: Duration = Duration::from_secs(5);
/// What an invocation keeps, after the engine's budget, for the export, storing the artifact
/// and the final write.
pub const FINISH_RESERVE: Duration = Duration::from_secs(10);
/// The shortest time budget worth starting the engine with; with less time left the message
/// is handed back to a fresh invocation at once.
const MIN_ENGINE_BUDGET: Duration = Duration::from_secs(2);

/// What processing a message did (the message can be acknowledged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// The version is READY.
    Built,
    /// The version is ERROR with a reason the user can act on (no retry can help).
    Refused,
    /// The job had ended already (a redelivery): nothing was trained.
    AlreadyFinished,
    /// The job or its model is gone (deleted): nothing was trained.
    Cancelled,
}

/// Why a message must not be acknowledged yet.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    #[error("not a job message: {0}")]
    BadMessage(String),
    /// Another worker holds a live claim; the message comes back later.
    #[error("job is being built by another worker (claim until {lease_until})")]
    Busy { lease_until: i64 },
    /// This attempt failed. When `final_attempt`, the version is already ERROR.
    #[error("build attempt failed: {reason}")]
    Attempt { reason: String, final_attempt: bool },
    /// The invocation's deadline came before the build could finish; the attempt is recorded
    /// (the version is back to PENDING, or ERROR when `final_attempt`) and a fresh invocation
    /// should get the message at once.
    #[error("the invocation ran out of time before the build finished")]
    OutOfTime { final_attempt: bool },
    #[error(transparent)]
    Domain(#[from] DomainError),
}

#[derive(Clone)]
pub struct Trainer {
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    worker_id: String,
    /// Set once an attempt was given up while its engine thread still ran (see
    /// [`Trainer::left_a_build_running`]).
    abandoned: Arc<AtomicBool>,
}

/// Build events, sent from the blocking build thread to the async writer.
enum Event {
    Progress(u8),
    Log(LogLevel, String),
}

struct ChannelObserver(mpsc::UnboundedSender<Event>);

impl BuildObserver for ChannelObserver {
    fn progress(&self, percent: u8) {
        let _ = self.0.send(Event::Progress(percent));
    }
    fn log(&self, level: LogLevel, message: &str) {
        let _ = self.0.send(Event::Log(level, message.to_string()));
    }
}

/// One claimed job being run: the claim, the version, and where log lines go.
struct Run {
    job: Job,
    rev: u64,
    version: ModelVersion,
    next_log: u64,
    /// Set when a heartbeat finds the claim gone (the model was deleted or the job taken over).
    lost: bool,
    /// When the attempt must be over (the invocation's deadline less [`HANDBACK_MARGIN`]).
    hand_back_at: Option<Instant>,
}

/// How an attempt ended, before it is recorded.
enum AttemptEnd {
    Built {
        trained: Box<TrainedModel>,
    },
    /// The data cannot support the build: ERROR now.
    Refused {
        code: &'static str,
        message: String,
    },
    /// Something failed that a retry may fix.
    Failed(String),
    /// The invocation's time ran out (see [`HANDBACK_MARGIN`]).
    OutOfTime(String),
}

impl Trainer {
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn Blobs>) -> Trainer {
        Trainer {
            store,
            blobs,
            worker_id: new_id("wrk"),
            abandoned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether an attempt was given up at the deadline while its engine thread still ran. The
    /// engine cannot be stopped from outside; it ends at its own (cut) budget, but holds its
    /// data and a core until then. The Lambda ends the process after answering instead of
    /// letting that thread share the next invocation.
    pub fn left_a_build_running(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// Processes one delivery of a job message, with no deadline (`plexe serve`).
    pub async fn process(&self, body: &str) -> Result<Processed, TrainerError> {
        self.process_before(body, None).await
    }

    /// Processes one delivery of a job message within an invocation that ends at `deadline`
    /// (see the module doc).
    pub async fn process_before(
        &self,
        body: &str,
        deadline: Option<Instant>,
    ) -> Result<Processed, TrainerError> {
        let hand_back_at = deadline.map(|d| d.checked_sub(HANDBACK_MARGIN).unwrap_or(d));
        let message: JobMessage =
            serde_json::from_str(body).map_err(|e| TrainerError::BadMessage(e.to_string()))?;
        let store = self.store.as_ref();
        // A claim held by a worker that died lapses within one lease: wait that long for it
        // rather than bounce the message (a live worker keeps renewing, so this gives up).
        let mut waits = 0;
        let claim = loop {
            match jobs::claim_job(store, &message.account_id, &message.job_id, &self.worker_id)
                .await?
            {
                Claim::Busy { lease_until } if waits < 3 => {
                    waits += 1;
                    let wait = (lease_until - now_epoch() + 1).clamp(1, LEASE_SECONDS + 1);
                    let wake = Instant::now() + Duration::from_secs(wait as u64);
                    if hand_back_at.is_some_and(|at| wake > at) {
                        // No time to wait for the claim to lapse: give up on this delivery (the
                        // live worker acknowledges the message when its build ends).
                        return Err(TrainerError::Busy { lease_until });
                    }
                    tokio::time::sleep_until(wake).await;
                }
                other => break other,
            }
        };
        match claim {
            Claim::Missing => Ok(Processed::Cancelled),
            Claim::Finished(JobState::Succeeded | JobState::Failed) => {
                Ok(Processed::AlreadyFinished)
            }
            Claim::Finished(_) => Ok(Processed::Cancelled),
            Claim::Busy { lease_until } => Err(TrainerError::Busy { lease_until }),
            Claim::Exhausted { job, rev } => {
                let reason = job
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the build was interrupted".to_string());
                let Some(version) = self.version_of(&job).await? else {
                    return Ok(Processed::Cancelled);
                };
                let mut run = Run {
                    next_log: u64::from(job.attempts + 1) * ATTEMPT_STRIDE,
                    job,
                    rev,
                    version,
                    lost: false,
                    hand_back_at,
                };
                self.finish_failed(&mut run, &reason, true).await?;
                Err(TrainerError::Attempt {
                    reason,
                    final_attempt: true,
                })
            }
            Claim::Claimed { job, rev } => {
                let Some(version) = self.version_of(&job).await? else {
                    // The model is gone; the job item may linger only if deletion raced us.
                    return Ok(Processed::Cancelled);
                };
                let run = Run {
                    next_log: u64::from(job.attempts) * ATTEMPT_STRIDE,
                    job,
                    rev,
                    version,
                    lost: false,
                    hand_back_at,
                };
                self.run(run).await
            }
        }
    }

    async fn version_of(&self, job: &Job) -> Result<Option<ModelVersion>, DomainError> {
        models::get_version(
            self.store.as_ref(),
            &job.account_id,
            &job.model_name,
            job.version_number,
        )
        .await
    }

    async fn log(&self, run: &mut Run, level: &str, message: &str) {
        if run.lost {
            return;
        }
        let line = LogLine {
            job_id: run.job.job_id.clone(),
            model_name: run.job.model_name.clone(),
            timestamp: now_rfc3339(),
            level: level.to_string(),
            message: message.to_string(),
        };
        let seq = run.next_log;
        run.next_log += 1;
        if let Err(e) = logs::append(self.store.as_ref(), &run.job.account_id, seq, &line).await {
            tracing::warn!(job_id = %run.job.job_id, error = %e, "could not write a build log line");
        }
    }

    async fn set_progress(&self, run: &mut Run, percent: u8) {
        let percent = percent.min(99);
        if run.lost || percent <= run.version.build_progress {
            return;
        }
        run.version.build_progress = percent;
        run.version.updated_at = now_rfc3339();
        match models::put_version(self.store.as_ref(), &run.job.account_id, &run.version).await {
            Ok(()) => {}
            Err(DomainError::Store(StoreError::ConditionFailed)) => run.lost = true,
            Err(e) => {
                tracing::warn!(job_id = %run.job.job_id, error = %e, "could not record progress")
            }
        }
    }

    async fn heartbeat(&self, run: &mut Run) {
        if run.lost {
            return;
        }
        match jobs::renew_lease(self.store.as_ref(), &mut run.job, run.rev).await {
            Ok(Some(rev)) => run.rev = rev,
            Ok(None) => {
                tracing::info!(job_id = %run.job.job_id, "claim lost (build cancelled); the result will be discarded");
                run.lost = true;
            }
            Err(e) => tracing::warn!(job_id = %run.job.job_id, error = %e, "heartbeat failed"),
        }
    }

    async fn run(&self, mut run: Run) -> Result<Processed, TrainerError> {
        let attempt = run.job.attempts;
        run.version.status = VersionStatus::Building;
        run.version.build_progress = 0;
        run.version.error = None;
        run.version.build_started_at = Some(now_rfc3339());
        run.version.updated_at = now_rfc3339();
        match models::put_version(self.store.as_ref(), &run.job.account_id, &run.version).await {
            Ok(()) => {}
            Err(DomainError::Store(StoreError::ConditionFailed)) => {
                return Ok(Processed::Cancelled);
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(job_id = %run.job.job_id, attempt, "build started");
        let started = format!(
            "build of {} {} started (attempt {attempt} of {MAX_ATTEMPTS}), time budget {}s",
            run.job.model_name,
            run.version.label(),
            run.version.settings.time_budget_s
        );
        self.log(&mut run, "info", &started).await;

        let end = self.attempt(&mut run).await;
        if run.lost {
            if let AttemptEnd::Built { trained } = &end {
                self.discard(trained).await;
            }
            return Ok(Processed::Cancelled);
        }
        match end {
            AttemptEnd::Built { trained } => self.finish_built(&mut run, *trained).await,
            AttemptEnd::Refused { code, message } => {
                self.log(&mut run, "error", &format!("build refused: {message}"))
                    .await;
                self.finish_error(&mut run, code, &message).await?;
                Ok(Processed::Refused)
            }
            AttemptEnd::Failed(reason) => {
                let final_attempt = attempt >= MAX_ATTEMPTS;
                self.finish_failed(&mut run, &reason, final_attempt).await?;
                Err(TrainerError::Attempt {
                    reason,
                    final_attempt,
                })
            }
            AttemptEnd::OutOfTime(reason) => {
                let final_attempt = attempt >= MAX_ATTEMPTS;
                self.finish_failed(&mut run, &reason, final_attempt).await?;
                Err(TrainerError::OutOfTime { final_attempt })
            }
        }
    }

    /// The engine's time budget: the requested one, cut to what the invocation has left after
    /// the finish reserve and the hand-back margin; `Err` (a reason) when that is too short to
    /// start.
    fn engine_budget(run: &Run, requested_s: f64) -> Result<f64, String> {
        let Some(at) = run.hand_back_at else {
            return Ok(requested_s);
        };
        let until_hand_back = at.saturating_duration_since(Instant::now());
        let left = until_hand_back.saturating_sub(FINISH_RESERVE);
        if left < MIN_ENGINE_BUDGET {
            return Err(format!(
                "the trainer's invocation had too little time left to build ({:.1} s before its \
                 timeout); the message goes back to the queue for a fresh invocation",
                (until_hand_back + HANDBACK_MARGIN).as_secs_f64()
            ));
        }
        Ok(requested_s.min(left.as_secs_f64()))
    }

    /// Loads the data, builds, exports and stores the artifact.
    async fn attempt(&self, run: &mut Run) -> AttemptEnd {
        let account_id = run.job.account_id.clone();
        let dataset_id = run.version.dataset_id.clone();
        let loaded = datasets::load_table(
            self.store.as_ref(),
            self.blobs.as_ref(),
            &account_id,
            &dataset_id,
        )
        .await;
        let (_, table) = match loaded {
            Ok(ok) => ok,
            Err(DomainError::NotFound { .. }) => {
                return AttemptEnd::Refused {
                    code: "dataset_not_found",
                    message: format!(
                        "Dataset {dataset_id} was deleted before the build could read it; \
                         upload the data again and start a new version."
                    ),
                };
            }
            Err(e) => {
                // The store's own words go to the log; the build's record says what happened.
                tracing::warn!(%dataset_id, error = %e, "loading a dataset failed");
                return AttemptEnd::Failed(format!(
                    "could not read dataset {dataset_id} ({})",
                    e.public_reason()
                ));
            }
        };
        self.log(
            run,
            "info",
            &format!(
                "dataset {dataset_id} loaded: {} rows, {} columns",
                table.n_rows,
                table.columns.len()
            ),
        )
        .await;
        self.set_progress(run, 2).await;

        let settings = run.version.settings.clone();
        let time_budget_s = match Self::engine_budget(run, settings.time_budget_s) {
            Ok(budget) => budget,
            Err(reason) => return AttemptEnd::OutOfTime(reason),
        };
        if time_budget_s < settings.time_budget_s {
            let cut = format!(
                "time budget cut from {}s to {time_budget_s:.0}s: the trainer's invocation ends \
                 before the full budget could run",
                settings.time_budget_s
            );
            self.log(run, "warn", &cut).await;
        }
        let request = BuildRequest {
            intent: run.version.intent.clone(),
            target: settings.target.clone(),
            output_schema: settings.output_schema.clone(),
            metric: settings.metric.as_deref().and_then(Metric::parse),
            time_budget_s,
            max_iterations: settings.max_iterations,
            seed: settings.seed,
        };
        let metadata = vec![
            (
                "plexe_model_name".to_string(),
                run.job.model_name.to_string(),
            ),
            ("plexe_model_version".to_string(), run.version.label()),
            (
                "plexe_version_id".to_string(),
                run.version.version_id.clone(),
            ),
        ];
        let (tx, mut rx) = mpsc::unbounded_channel();
        let dataset_size = table.n_rows;
        let mut handle = tokio::task::spawn_blocking(move || {
            let observer = ChannelObserver(tx);
            let output = automl::build(&table, &request, &observer)?;
            drop(table);
            let onnx = crate::onnx::export(&output.pipeline, &metadata);
            let pipeline = serde_json::to_vec(&output.pipeline);
            Ok::<_, automl::BuildError>((output, onnx, pipeline))
        });
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.tick().await;
        let hand_back_at = run.hand_back_at;
        let out_of_time = async move {
            match hand_back_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(out_of_time);
        let joined = loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => self.on_event(run, event).await,
                    None => break (&mut handle).await,
                },
                _ = tick.tick() => self.heartbeat(run).await,
                () = &mut out_of_time => {
                    // The engine thread stops at its own (cut) budget; what it makes is dropped.
                    self.abandoned.store(true, Ordering::Relaxed);
                    return AttemptEnd::OutOfTime(
                        "the build was still running when the trainer's invocation was about to \
                         time out; the message goes back to the queue for a fresh invocation"
                            .into(),
                    );
                }
            }
        };
        let (output, onnx, pipeline) = match joined {
            Ok(Ok(done)) => done,
            Ok(Err(e)) if e.is_user_error() => {
                return AttemptEnd::Refused {
                    code: "validation_error",
                    message: format!(
                        "{e}. Check the intent, target and dataset, then start a new version."
                    ),
                };
            }
            Ok(Err(e)) => return AttemptEnd::Failed(format!("the engine failed: {e}")),
            Err(e) => return AttemptEnd::Failed(format!("the build crashed: {e}")),
        };
        let onnx = match onnx {
            Ok(bytes) => bytes,
            Err(e) => return AttemptEnd::Failed(format!("ONNX export failed: {e}")),
        };
        let pipeline = match pipeline {
            Ok(bytes) => bytes,
            Err(e) => return AttemptEnd::Failed(format!("writing the pipeline failed: {e}")),
        };
        if run.lost {
            return AttemptEnd::Failed("cancelled".into());
        }
        let keys = models::artifact_keys(&account_id, &run.version);
        let artifact_bytes = onnx.len() as u64;
        let trained = trained_model(&output, dataset_size, keys, artifact_bytes);
        let store = models::store_artifacts(
            self.blobs.as_ref(),
            &trained,
            Bytes::from(onnx),
            Bytes::from(pipeline),
        );
        let stored = match run.hand_back_at {
            Some(at) => match tokio::time::timeout_at(at, store).await {
                Ok(stored) => stored,
                Err(_) => {
                    self.discard(&trained).await;
                    return AttemptEnd::OutOfTime(
                        "storing the model did not finish before the trainer's invocation was \
                         about to time out; the message goes back to the queue"
                            .into(),
                    );
                }
            },
            None => store.await,
        };
        if let Err(e) = stored {
            // The cause (the store's own words) goes to the log, not to the user's record.
            tracing::warn!(error = %e, cause = %e.source, "storing the build's files failed");
            return AttemptEnd::Failed(format!(
                "{e} (storage was unavailable); the build will be retried"
            ));
        }
        self.log(
            run,
            "info",
            &format!("artifact written: model.onnx ({artifact_bytes} bytes), runnable in any ONNX runtime"),
        )
        .await;
        AttemptEnd::Built {
            trained: Box::new(trained),
        }
    }

    async fn on_event(&self, run: &mut Run, event: Event) {
        match event {
            Event::Progress(p) => self.set_progress(run, p).await,
            Event::Log(level, message) => {
                let level = match level {
                    LogLevel::Info => "info",
                    LogLevel::Warn => "warn",
                };
                self.log(run, level, &message).await;
            }
        }
    }

    async fn discard(&self, trained: &TrainedModel) {
        models::discard_artifacts(self.blobs.as_ref(), trained).await;
    }

    /// Writes the job's new state and the version in one transaction, conditional on the claim.
    async fn commit(&self, run: &mut Run) -> Result<bool, DomainError> {
        let committed =
            jobs::commit_attempt(self.store.as_ref(), &run.job, run.rev, &run.version).await?;
        if !committed {
            run.lost = true;
        }
        Ok(committed)
    }

    async fn finish_built(
        &self,
        run: &mut Run,
        trained: TrainedModel,
    ) -> Result<Processed, TrainerError> {
        self.log(
            run,
            "info",
            &format!(
                "version {} READY: {} = {:.4} on the holdout",
                run.version.label(),
                trained.metric_name,
                trained.metric_value
            ),
        )
        .await;
        run.job.state = JobState::Succeeded;
        run.job.touch();
        run.version.status = VersionStatus::Ready;
        run.version.build_progress = 100;
        run.version.build_finished_at = Some(now_rfc3339());
        run.version.updated_at = now_rfc3339();
        run.version.trained = Some(trained.clone());
        if self.commit(run).await? {
            tracing::info!(job_id = %run.job.job_id, "build READY");
            Ok(Processed::Built)
        } else {
            self.discard(&trained).await;
            Ok(Processed::Cancelled)
        }
    }

    async fn finish_error(
        &self,
        run: &mut Run,
        code: &str,
        message: &str,
    ) -> Result<(), DomainError> {
        run.job.state = JobState::Failed;
        run.job.last_error = Some(message.to_string());
        run.job.touch();
        run.version.status = VersionStatus::Error;
        run.version.error = Some(VersionError {
            code: code.to_string(),
            message: message.to_string(),
        });
        run.version.build_finished_at = Some(now_rfc3339());
        run.version.updated_at = now_rfc3339();
        self.commit(run).await?;
        tracing::info!(job_id = %run.job.job_id, code, "build ERROR");
        Ok(())
    }

    /// Records a failed attempt: back to PENDING for a retry, or ERROR after the last one.
    async fn finish_failed(
        &self,
        run: &mut Run,
        reason: &str,
        final_attempt: bool,
    ) -> Result<(), DomainError> {
        tracing::warn!(job_id = %run.job.job_id, attempt = run.job.attempts, reason, "build attempt failed");
        if final_attempt {
            let message = format!(
                "The build failed {} times; last error: {reason}. Start a new version to try \
                 again; if it keeps failing, upload the dataset again.",
                run.job.attempts.max(1)
            );
            self.log(run, "error", &message).await;
            return self.finish_error(run, "build_failed", &message).await;
        }
        self.log(
            run,
            "warn",
            &format!(
                "attempt {} failed: {reason}; the build will be retried",
                run.job.attempts
            ),
        )
        .await;
        run.job.state = JobState::Queued;
        run.job.lease_until = 0;
        run.job.last_error = Some(reason.to_string());
        run.job.touch();
        run.version.status = VersionStatus::Pending;
        run.version.build_progress = 0;
        run.version.updated_at = now_rfc3339();
        self.commit(run).await?;
        Ok(())
    }
}

/// The record of a finished build.
fn trained_model(
    output: &automl::BuildOutput,
    dataset_size: usize,
    keys: models::ArtifactKeys,
    artifact_bytes: u64,
) -> TrainedModel {
    let metric_name = match output.metric {
        "f1" => "f1_score",
        other => other,
    }
    .to_string();
    let metric_value = output
        .holdout_metrics
        .get(&metric_name)
        .copied()
        .unwrap_or(output.validation_score);
    let (labels, positive_class) = match &output.task {
        Task::Regression => (Vec::new(), None),
        Task::Binary { labels } => (labels.to_vec(), Some(labels[1].clone())),
        Task::Multiclass { labels } => (labels.clone(), None),
    };
    let dropped: Vec<serde_json::Value> = output
        .dropped_columns
        .iter()
        .map(|(name, reason)| json!({"column": name, "reason": reason}))
        .collect();
    TrainedModel {
        target: output.target.clone(),
        task: output.task_kind.to_string(),
        labels,
        positive_class,
        metric_name,
        metric_value,
        validation_score: output.validation_score,
        performance_metrics: json!(output.holdout_metrics),
        algorithm: output.algorithm.clone(),
        description: output.description.clone(),
        feature_importance: json!(output.feature_importance),
        leaderboard: json!(output.leaderboard),
        evaluation: json!(output.evaluation),
        input_schema: json!(output.input_schema),
        output_schema: json!(output.output_schema),
        dropped_columns: json!(dropped),
        dataset_size,
        train_rows: output.train_rows,
        holdout_rows: output.holdout_rows,
        training_seconds: output.build_seconds,
        artifact_key: keys.onnx,
        artifact_bytes,
        metadata_key: keys.metadata,
        pipeline_key: Some(keys.pipeline),
        detail_in_blob: false,
    }
}
