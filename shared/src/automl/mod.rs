//! The AutoML engine: from a [`Table`](crate::ingest::Table) and an intent to a fitted
//! [`Pipeline`] (preprocessing + model) with metrics, feature importance and a leaderboard.
//!
//! # The entry
//!
//! Everything outside the engine goes through two calls and their types, all exported here:
//!
//! - [`plan_build`]`(`[`PlanInput`]`, &`[`BuildRequest`]`) -> Result<`[`BuildPlan`]`, `[`PlanError`]`>`:
//!   the check a build request gets before anything is written (the domain's `POST /models`):
//!   the resolved target, task, selection metric and budget, or a refusal naming the request
//!   field at fault and the columns to choose from. It runs on the table or, for a table too
//!   large to read then, on its column profiles.
//! - [`build`]`(&Table, &`[`BuildRequest`]`, &dyn `[`BuildObserver`]`) -> Result<`[`BuildOutput`]`, `[`BuildError`]`>`:
//!   the build itself, telling the observer its progress and log lines. Its first phase is the
//!   same plan, so a build refuses exactly what `plan_build` refuses.
//!
//! [`pipeline`] is the engine's output format (what `crate::onnx` exports and
//! `Pipeline::predict` reads natively), [`metrics`] the scores benchmarks report; [`gbm`] is
//! public only for its own benchmark (`examples/gbm_bench.rs`). Every other module is private.
//!
//! # The phases of a build, in order
//!
//! 1. plan (`plan`, with `target` and `task`): the target column from the request (explicit,
//!    output schema, or the intent's words), the task its values ask for (binary, multiclass,
//!    regression) with the labels, the selection metric, the rows with a target value;
//! 2. split (`split`): a seeded holdout, stratified by class;
//! 3. prepare features (`features`): which columns become which features (ids, constants and
//!    free text dropped), decided on the training rows, as `f32` columns;
//! 4. search candidates (`search`, with `linear` and `gbm`): linear models and gradient-boosted
//!    tree configurations in a fixed order, scored on cross-validation or a validation split of
//!    the training rows within the time budget;
//! 5. select (`select`): the best candidate, a trees + linear blend or a greedy ensemble;
//! 6. evaluate on the holdout (`refit`, `metrics`): the winner refit on the training rows and
//!    scored on the held-out rows;
//! 7. refit on every row (`refit`): the delivered [`Pipeline`];
//! 8. importance (`importance`): per input column, from the delivered models;
//! 9. describe (`describe`, `output`): the schemas, the plain-language description and the
//!    [`BuildOutput`].
//!
//! `build.rs` is that sequence and nothing else. Shared by the phases: one seeded generator
//! (`random`), the margin → probability functions (`probability`), and the pipeline's own
//! reading rules (`pipeline`: tree walk, linear sum, calendar parts, structural check), which
//! native prediction (`predict`) and the ONNX export both follow.

mod build;
mod describe;
mod features;
pub mod gbm;
mod importance;
mod linear;
pub mod metrics;
mod output;
pub mod pipeline;
mod plan;
mod predict;
mod probability;
mod random;
mod refit;
mod request;
mod search;
mod select;
mod split;
mod target;
mod task;

pub use build::{BuildError, BuildObserver, LogLevel, SilentObserver, build};
pub use features::FeatureError;
pub use metrics::Metric;
pub use output::{
    ActualPredicted, BuildOutput, FeatureImportance, HistogramBin, HoldoutEvaluation, SchemaField,
};
pub use pipeline::{Feature, Model, Pipeline, Task};
pub use plan::{BuildPlan, PlanError, PlanInput, plan_build};
pub use predict::{PredictError, Predictions};
pub use request::BuildRequest;
pub use search::{LeaderboardEntry, SearchError};
pub use target::TargetError;
pub use task::{TaskError, label_of, sort_labels};
