//! The AutoML engine: from a [`Table`](crate::ingest::Table) and an intent to a fitted
//! [`Pipeline`] (preprocessing + model) with metrics, feature importance and a leaderboard.

pub mod gbm;
pub mod pipeline;

pub use pipeline::{Feature, Model, Pipeline, Task};
