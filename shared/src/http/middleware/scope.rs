//! Per-route scope checks: `read` for GET, `write`, `predict`, `admin` (implies all). A key
//! without the scope gets 403 `forbidden`.

use crate::domain::api_keys::{Scope, allows};
use crate::http::error::ApiError;
use crate::http::extract::Caller;
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

/// `route` guarded by `needed`.
pub fn scoped(needed: Scope, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.route_layer(from_fn_with_state(needed, require_scope))
}
