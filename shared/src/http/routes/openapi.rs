//! `GET /openapi.json` (no key needed): the OpenAPI 3 document, assembled from the route
//! annotations of every endpoint group, so it cannot drift from the handlers (a test also checks
//! that every routed path is in it).

use super::{
    console, datasets, deployments, health, inference, keys, legacy_v0, models, prediction_jobs,
    versions,
};
use crate::api::predictions::MAX_BATCH_ROWS;
use crate::api::{ErrorBody, ErrorEnvelope};
use crate::domain::models::bounds;
use crate::http::state::AppState;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response as DocResponse, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This document (no key needed)",
    security(()),
    responses((status = 200, description = "The OpenAPI 3 document", body = Object))
)]
async fn openapi_json() -> Response {
    let mut response = Json(document_json()).into_response();
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
                       for predictions. Every path is served as shown and under /v1, but the /v0 paths \
                       (the legacy surface of the published Plexe Python client), which are \
                       served as shown only. Send the API \
                       key as `Authorization: Bearer <key>` or `x-api-key: <key>`. Errors are \
                       {\"error\": {code, message, status, request_id, details}}; every response \
                       carries `x-request-id`, every keyed one the X-RateLimit headers."
    ),
    paths(openapi_json),
    components(schemas(ErrorEnvelope, ErrorBody))
)]
struct OperationsApi;

/// The /v0 group, its operation ids prefixed `legacy_`: its handlers share names with the
/// current API's (`infer`, `list_models`, …) and an id must be unique for generators to name
/// the functions and inline bodies they make.
fn legacy_openapi() -> utoipa::openapi::OpenApi {
    let mut legacy = legacy_v0::LegacyApi::openapi();
    for item in legacy.paths.paths.values_mut() {
        for operation in [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(id) = operation.operation_id.as_mut() {
                *id = format!("legacy_{id}");
            }
        }
    }
    legacy
}

/// The whole document: every group's paths, the two ways to send a key, and the answers every
/// operation can give besides its own (so a client sees each status with its schema).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = OperationsApi::openapi();
    doc.merge(health::HealthApi::openapi());
    doc.merge(keys::KeysApi::openapi());
    doc.merge(datasets::DatasetsApi::openapi());
    doc.merge(models::ModelsApi::openapi());
    doc.merge(versions::VersionsApi::openapi());
    doc.merge(deployments::DeploymentsApi::openapi());
    doc.merge(inference::InferenceApi::openapi());
    doc.merge(prediction_jobs::PredictionJobsApi::openapi());
    doc.merge(console::ConsoleApi::openapi());
    doc.merge(legacy_openapi());
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components.add_security_scheme(
        "api_key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
    );
    doc.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("api_key", Vec::<String>::new()),
    ]);
    for item in doc.paths.paths.values_mut() {
        for (method, operation) in [
            ("get", item.get.as_mut()),
            ("post", item.post.as_mut()),
            ("put", item.put.as_mut()),
            ("patch", item.patch.as_mut()),
            ("delete", item.delete.as_mut()),
        ] {
            if let Some(operation) = operation {
                add_common_answers(method, operation);
            }
        }
    }
    doc
}

/// The document as served: [`document`] with the constraints its derived schemas cannot say
/// (see [`refine`]).
pub fn document_json() -> Value {
    let mut json = serde_json::to_value(document()).unwrap_or(Value::Null);
    refine(&mut json);
    json
}

/// Tightens what the derived schemas leave loose, so the document says exactly what the server
/// takes: the metrics by name, target and tag bounds, that a new model needs a `dataset_id` or
/// an `upload_id`, that declared schemas are objects or arrays, that files are bytes, and that a
/// batch has 1 to 10,000 rows.
fn refine(doc: &mut Value) {
    let metric = json!({
        "type": ["string", "null"],
        "enum": ["accuracy", "f1", "f1_score", "precision", "recall", "roc_auc", "log_loss",
                 "rmse", "mae", "r2", null],
        "description": "accuracy, f1, precision, recall, roc_auc, log_loss (classification); \
                        rmse, mae, r2 (regression)"
    });
    let target = json!({
        "type": ["string", "null"],
        "maxLength": bounds::TARGET_CHARS,
        "description": "The column to predict, when the intent should not decide."
    });
    let tags = json!({
        "description": "An array of strings or an object of string values",
        "oneOf": [
            {"type": "null"},
            {"type": "array", "maxItems": bounds::TAGS,
             "items": {"type": "string", "maxLength": bounds::TAG_CHARS}},
            {"type": "object", "maxProperties": bounds::TAGS,
             "propertyNames": {"maxLength": bounds::TAG_KEY_CHARS},
             "additionalProperties": {"type": "string", "maxLength": bounds::TAG_CHARS}}
        ]
    });
    // One schema per type (not a type list): generators need an array's `items`.
    let declared_schema = json!({
        "description": "`{\"field\": \"type\", …}`, an array of fields, or a JSON Schema object \
                        (at most 64 KB as JSON)",
        "oneOf": [
            {"type": "null"},
            {"type": "array", "items": {}},
            {"type": "object", "additionalProperties": true}
        ]
    });
    let schemas = &mut doc["components"]["schemas"];
    for name in [
        "CreateModelRequest",
        "CreateVersionRequest",
        "RetrainRequest",
        "PatchModelRequest",
    ] {
        let Some(properties) = schemas[name]["properties"].as_object_mut() else {
            continue;
        };
        for (field, schema) in [
            ("metric", &metric),
            ("target", &target),
            ("tags", &tags),
            ("input_schema", &declared_schema),
            ("output_schema", &declared_schema),
        ] {
            if let Some(property) = properties.get_mut(field) {
                *property = schema.clone();
            }
        }
    }
    // "dataset_id or upload_id" is said in words, not as an `anyOf`: generators turn a schema
    // with `anyOf` into one class per branch, and the model of the request is lost.
    if let Some(create) = schemas["CreateModelRequest"].as_object_mut() {
        create.insert(
            "description".into(),
            json!(
                "`POST /models/{model_name}`: what to build. Give `dataset_id` or \
                   `upload_id`; without either the answer is a 422."
            ),
        );
    }
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (_, operation) in item.iter_mut() {
            if let Some(content) = operation.pointer_mut("/requestBody/content") {
                binary_files(content);
            }
            if let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            {
                for response in responses.values_mut() {
                    if let Some(content) = response.get_mut("content") {
                        binary_files(content);
                    }
                }
            }
            if path == "/v0/uploads"
                && let Some(body) =
                    operation.pointer_mut("/requestBody/content/multipart~1form-data")
            {
                body["schema"] = json!({
                    "type": "object",
                    "required": ["files"],
                    "additionalProperties": false,
                    "properties": {"files": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "format": "binary"}
                    }}
                });
                body["encoding"] = json!({"files": {"contentType": "text/csv"}});
            }
            if path.ends_with("/predictions")
                && let Some(body) = operation.pointer_mut("/requestBody/content/application~1json")
            {
                body["schema"] = json!({
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH_ROWS,
                    "items": {"type": "object"}
                });
            }
        }
    }
}

/// Files are bytes: `string`/`binary` for every octet-stream or Parquet body of `content`.
fn binary_files(content: &mut Value) {
    let Some(content) = content.as_object_mut() else {
        return;
    };
    for (media, body) in content.iter_mut() {
        if media == "application/octet-stream" || media == "application/vnd.apache.parquet" {
            body["schema"] = json!({"type": "string", "format": "binary"});
        }
    }
}

/// An error answer with the envelope's schema.
fn error_answer(description: &str) -> RefOr<DocResponse> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                    .build(),
            )
            .build(),
    )
}

/// The answers the layers give on top of what the handler documents: any operation can be 400
/// (headers over 16 KB, an unreadable request), 500 or 503; a keyed operation can be 401 (no or bad key), 403 (scope; all but `/me`) and 429 (rate limit); one with a body 400
/// (unreadable), 413 and 415; a POST also takes `Idempotency-Key` (400 malformed, 409 in
/// flight, 422 reused); a path parameter can name nothing (404).
fn add_common_answers(method: &str, operation: &mut Operation) {
    let keyed = match &operation.security {
        // `security(())` on the operation: no key needed.
        Some(requirements) => !requirements.iter().all(|r| {
            serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
        }),
        None => true,
    };
    let has_body = operation.request_body.is_some();
    let has_path = operation.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p.parameter_in, ParameterIn::Path))
    });
    let has_query = operation.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p.parameter_in, ParameterIn::Query))
    });
    let is_me = operation.operation_id.as_deref() == Some("me");
    let mut answers: Vec<(&str, &str)> = vec![
        (
            "400",
            "A request the server cannot read: headers over 16 KB, a body that is not valid \
             JSON (or names a key twice), or a query parameter out of range",
        ),
        ("500", "A bug: logged with the request id"),
        ("503", "A backing service is unavailable; retry"),
    ];
    if keyed {
        answers.push((
            "401",
            "No key (missing_api_key) or a malformed, unknown or revoked one (invalid_api_key)",
        ));
        answers.push((
            "429",
            "Over the account's request rate (Retry-After says when to retry)",
        ));
        if !is_me {
            answers.push(("403", "The key lacks the scope this operation needs"));
        }
    }
    if has_body || method == "post" || method == "put" {
        answers.push(("400", "The body could not be read, or is not valid JSON"));
        answers.push(("413", "The body is over the limit"));
        answers.push((
            "415",
            "The body's content type is not one this operation takes",
        ));
        answers.push(("422", "The body is well-formed but not valid"));
    }
    if method == "post" && keyed {
        answers.push((
            "409",
            "A request with the same Idempotency-Key is still running",
        ));
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(idempotency_key_parameter());
    }
    if has_path {
        answers.push(("404", "Nothing of that name in this account"));
    }
    if has_query {
        answers.push(("400", "A query parameter is out of range or not understood"));
    }
    for (status, description) in answers {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_answer(description));
    }
}

fn idempotency_key_parameter() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retry safe: the first answer is kept for 24 h and given again, with \
             `Idempotent-Replayed: true`, to the same API key sending the same request.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[\\x21-\\x7e]+$")),
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.route("…")` literal in the route modules (and their submodules), read from their
    /// source.
    fn routed_paths() -> Vec<String> {
        let mut dirs =
            vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/routes")];
        let mut files = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("routes dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        let mut paths = Vec::new();
        for path in files {
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
        assert!(json["components"]["securitySchemes"]["bearer"].is_object());
    }

    /// Generators name functions and inline bodies after operation ids: each is used once.
    #[test]
    fn operation_ids_are_unique() {
        let json = document_json();
        let mut seen = std::collections::HashMap::new();
        for (path, item) in json["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                if let Some(id) = op["operationId"].as_str() {
                    let here = format!("{method} {path}");
                    if let Some(first) = seen.insert(id.to_owned(), here.clone()) {
                        panic!("operationId {id:?} of {here} is also {first}'s");
                    }
                }
            }
        }
        assert!(seen.contains_key("legacy_infer") && seen.contains_key("infer"));
    }

    /// Every answer of every operation has a body with a schema (a redirect its Location
    /// instead), and every operation that
    /// needs a key documents 401 and 429, every POST its Idempotency-Key header.
    #[test]
    fn every_answer_has_a_schema() {
        let json = document_json();
        let mut seen = 0;
        for (path, item) in json["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let Some(responses) = op["responses"].as_object() else {
                    continue;
                };
                for (status, response) in responses {
                    seen += 1;
                    // A redirect has no body: it must say where it leads instead.
                    if status.starts_with('3') {
                        assert!(
                            response["headers"]["Location"].is_object(),
                            "{method} {path} {status}: no Location header"
                        );
                        continue;
                    }
                    let content = response["content"]
                        .as_object()
                        .unwrap_or_else(|| panic!("{method} {path} {status}: no content"));
                    assert!(!content.is_empty(), "{method} {path} {status}: no content");
                    for (media, body) in content {
                        assert!(
                            body["schema"].is_object(),
                            "{method} {path} {status} {media}: no schema"
                        );
                    }
                }
                let public = op["security"].as_array().is_some_and(|s| {
                    s.iter()
                        .all(|r| r.as_object().is_some_and(|o| o.is_empty()))
                });
                if !public {
                    for status in ["401", "429", "500"] {
                        assert!(
                            responses.contains_key(status),
                            "{method} {path}: no {status}"
                        );
                    }
                }
                if method == "post" && !public {
                    let header = op["parameters"].as_array().is_some_and(|ps| {
                        ps.iter()
                            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
                    });
                    assert!(header, "{method} {path}: no Idempotency-Key parameter");
                }
            }
        }
        assert!(seen > 100, "only {seen} answers documented");
    }
}
