//! plexe: a serverless ML platform. Every binary is a thin shell over this crate.
//!
//! The module tree reads like the architecture:
//! - [`api`]: the wire contract: every request and response body, with its OpenAPI schema;
//! - [`http`]: the HTTP surface (routers per endpoint group, extractors, the error envelope,
//!   middleware for request ids, auth, rate limits and idempotency);
//! - [`domain`]: accounts, API keys, datasets, models, versions, jobs, deployments;
//! - [`ports`]: the store, blob and queue ports, each a trait with an embedded and an AWS adapter;
//! - [`ingest`]: CSV/Parquet bytes to typed columns and a profile;
//! - [`automl`]: target/task inference, features, candidate models, search, metrics;
//! - [`onnx`]: export of a fitted pipeline to one standard ONNX file;
//! - [`serving`]: running such a file with tract;
//! - [`trainer`]: job messages to READY versions (the trainer Lambda and the local worker);
//! - [`client`]: a typed HTTP client of the API (what the command-line client uses);
//! - [`cli`]: the `plexe` command (`serve`, `admin`, and the client commands);
//! - [`runtime`]: log output and the Lambda entry points of the function binaries;
//! - [`config`]: every setting, read once at start.
//!
//! The `serving` feature (on by default) adds what exports or runs a model: [`onnx`],
//! [`serving`], [`trainer`], the inference group and the task worker, and [`cli`]. Without it
//! the crate is the keys, datasets and models groups, as their Lambda functions link it.

pub mod api;
pub mod automl;
#[cfg(feature = "serving")]
pub mod cli;
pub mod client;
pub mod config;
pub mod domain;
pub mod http;
pub mod ids;
pub mod ingest;
#[cfg(feature = "serving")]
pub mod onnx;
pub mod ports;
pub mod runtime;
#[cfg(feature = "serving")]
pub mod serving;
#[cfg(feature = "serving")]
pub mod trainer;
