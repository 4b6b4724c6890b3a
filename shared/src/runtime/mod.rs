//! How the binaries are hosted: log output ([`logging`]) and the Lambda entry points
//! ([`lambda`]) that each function binary calls.

pub mod lambda;
pub mod logging;
