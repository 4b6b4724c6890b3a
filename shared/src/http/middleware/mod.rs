//! The layers every request passes, one module each, outermost first:
//! [`request_id`] (id, tracing span, error envelope) → [`header_limit`] → [`auth`] → [`rate_limit`] →
//! [`body_limit`] → per route [`scope`] → [`completion`] → [`idempotency`] → handler.

pub mod auth;
pub mod body_limit;
pub mod completion;
pub mod header_limit;
pub mod idempotency;
pub mod rate_limit;
pub mod request_id;
pub mod scope;
