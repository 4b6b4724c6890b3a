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
pub mod search;
pub mod split;
pub mod target;
pub mod task;

pub use build::{
    BuildError, BuildObserver, BuildOutput, BuildRequest, LogLevel, SilentObserver, build,
};
pub use metrics::Metric;
pub use pipeline::{Feature, Model, Pipeline, Task};
