//! Per-route guards: the scope check (`read` for GET, `write`, `predict`, `admin` implies all; a
//! key without the scope gets 403 `forbidden`), then, inside it, the body cap, the run to
//! completion and the idempotency layer. Idempotency sits inside the scope check so that a key
//! without the scope never reaches a replay of what a key with it did; the body is read only
//! after the scope check, so such a key is refused at once, whatever it sends.

use crate::domain::api_keys::{Scope, allows};
use crate::http::error::ApiError;
use crate::http::extract::Caller;
use crate::http::middleware::completion::Writes;
use crate::http::middleware::{body_limit, completion, idempotency};
use crate::http::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::MethodRouter;

async fn require_scope(
    State(needed): State<Scope>,
    caller: Caller,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !allows(&caller.key.scopes, needed) {
        return Err(ApiError::forbidden(format!(
            "This API key lacks the '{}' scope this operation needs. Ask an admin of the account \
             for a key with it (POST /api-keys).",
            needed.as_str()
        )));
    }
    Ok(next.run(req).await)
}

/// Wraps the routes of a group that need a key (it holds the state the idempotency layer
/// stores through, and the body limit of the runtime the group is served on).
#[derive(Clone)]
pub struct Guard {
    state: AppState,
    body_limit: usize,
}

impl Guard {
    pub fn new(state: &AppState, body_limit: usize) -> Self {
        Guard {
            state: state.clone(),
            body_limit,
        }
    }

    /// `route` guarded by `needed`: scope check → body cap → run to completion → idempotency →
    /// handler (the last `route_layer` added runs first).
    pub fn scoped(&self, needed: Scope, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
        self.layered(needed, Writes::State, route)
    }

    /// A prediction route: as [`Guard::scoped`] with the predict scope, but it writes nothing,
    /// so it stays on the connection's task (see [`completion`]).
    pub fn predicting(&self, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
        self.layered(Scope::Predict, Writes::OnlyIdempotencyClaims, route)
    }

    fn layered(
        &self,
        needed: Scope,
        writes: Writes,
        route: MethodRouter<AppState>,
    ) -> MethodRouter<AppState> {
        route
            .route_layer(from_fn_with_state(
                self.state.clone(),
                idempotency::apply_idempotency,
            ))
            .route_layer(from_fn_with_state(writes, completion::run_to_completion))
            .route_layer(from_fn_with_state(self.body_limit, body_limit::limit_body))
            .route_layer(from_fn_with_state(needed, require_scope))
    }
}
