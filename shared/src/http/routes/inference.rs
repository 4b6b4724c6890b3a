//! The `inference` group's routes (one Lambda on AWS). Its handlers are added by the inference work; the
//! router exists so the group's function binary and the merged app are already wired.

use crate::http::state::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
