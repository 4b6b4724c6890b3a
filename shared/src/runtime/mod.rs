//! How the binaries are hosted: log output ([`logging`]), the Lambda entry points ([`lambda`])
//! that each function binary calls, and the local server's accept loop ([`server`]).

pub mod busy_poll;
pub mod lambda;
pub mod logging;
pub mod server;
