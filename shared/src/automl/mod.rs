//! The AutoML engine: from a [`Table`](crate::ingest::Table) and an intent to a fitted
//! [`Pipeline`] (preprocessing + model) with metrics, feature importance and a leaderboard.

pub mod gbm;
pub mod pipeline;
pub mod predict;
mod probability;
mod random;

pub mod build;
pub mod describe;
pub mod features;
pub mod importance;
pub mod linear;
pub mod metrics;
mod output;
mod plan;
mod refit;
mod request;
pub mod search;
mod select;
pub mod split;
pub mod target;
pub mod task;

pub use build::{BuildError, BuildObserver, LogLevel, SilentObserver, build};
pub use metrics::Metric;
pub use output::{BuildOutput, FeatureImportance, SchemaField};
pub use pipeline::{Feature, Model, Pipeline, Task};
pub use plan::{BuildPlan, PlanError, PlanInput, plan_build};
pub use request::BuildRequest;
