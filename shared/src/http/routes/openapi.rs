//! `GET /openapi.json` (no key needed): the OpenAPI 3 document, assembled from the route
//! annotations of every endpoint group, so it cannot drift from the handlers (a test also checks
//! that every routed path is in it).

use super::{datasets, deployments, health, inference, keys, models, versions};
use crate::http::state::AppState;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This document (no key needed)",
    security(()),
    responses((status = 200, description = "The OpenAPI 3 document"))
)]
async fn openapi_json() -> Response {
    let mut response = Json(document()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "plexe",
        description = "Upload tabular data, ask in plain words for a model, deploy it and call it \
                       for predictions. Every path is served as shown and under /v1. Send the API \
                       key as `Authorization: Bearer <key>` or `x-api-key: <key>`. Errors are \
                       {\"error\": {code, message, status, request_id, details}}."
    ),
    paths(openapi_json)
)]
struct OperationsApi;

/// The whole document: every group's paths, the bearer-key scheme required by default.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = OperationsApi::openapi();
    doc.merge(health::HealthApi::openapi());
    doc.merge(keys::KeysApi::openapi());
    doc.merge(datasets::DatasetsApi::openapi());
    doc.merge(models::ModelsApi::openapi());
    doc.merge(versions::VersionsApi::openapi());
    doc.merge(deployments::DeploymentsApi::openapi());
    doc.merge(inference::InferenceApi::openapi());
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc.security = Some(vec![SecurityRequirement::new(
        "api_key",
        Vec::<String>::new(),
    )]);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.route("…")` literal in the route modules, read from their source.
    fn routed_paths() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/routes");
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("routes dir") {
            let path = entry.expect("entry").path();
            let source = std::fs::read_to_string(&path).expect("route source");
            let mut rest = source.as_str();
            while let Some(at) = rest.find(".route(") {
                rest = &rest[at + ".route(".len()..];
                let Some(open) = rest.find('"') else { break };
                let literal = &rest[open + 1..];
                let Some(close) = literal.find('"') else {
                    break;
                };
                // Only path literals (this scanner's own code mentions `.route(` too).
                if literal.starts_with('/') {
                    paths.push(literal[..close].to_string());
                }
            }
        }
        paths.sort();
        paths.dedup();
        paths
    }

    #[test]
    fn every_routed_path_is_documented() {
        let doc = document();
        let routed = routed_paths();
        assert!(routed.len() > 20, "found only {routed:?}");
        let missing: Vec<&String> = routed
            .iter()
            .filter(|p| !doc.paths.paths.contains_key(p.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "routes missing from /openapi.json: {missing:?}"
        );
        let extra: Vec<&String> = doc
            .paths
            .paths
            .keys()
            .filter(|p| !routed.contains(p))
            .collect();
        assert!(
            extra.is_empty(),
            "documented paths that are not routed: {extra:?}"
        );
    }

    #[test]
    fn the_document_serializes_as_openapi_3() {
        let json = serde_json::to_value(document()).expect("serializes");
        assert!(
            json["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3."))
        );
        assert!(json["components"]["securitySchemes"]["api_key"].is_object());
    }
}
