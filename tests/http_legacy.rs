//! The legacy `/v0` surface (SPEC §8) over HTTP on both backends, for what the Python client
//! flow (functions/tests/plexe_python_client.rs) cannot reach: a failed build reads `failed`
//! with its message, the routes sit behind the same key and scope checks, and they are served
//! under `/v0` only.

use integration_tests::{TestApp, http_client, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::domain::layout::ModelName;
use shared::domain::models::{self, VersionError, VersionStatus};

fn csv() -> String {
    let mut csv = String::from("size,rooms,price\n");
    for i in 0..60 {
        csv.push_str(&format!("{},{},{}\n", 40 + i, 1 + i % 4, 1000 + 25 * i));
    }
    csv
}

async fn upload(app: &TestApp, key: &str) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(csv().into_bytes())
        .file_name("houses.csv")
        .mime_str("text/csv")
        .expect("mime");
    http_client()
        .post(app.at("/v0/uploads"))
        .header("x-api-key", key)
        .multipart(reqwest::multipart::Form::new().part("files", part))
        .send()
        .await
        .expect("POST /v0/uploads")
}

async fn failed_builds_read_failed_with_their_message(app: &TestApp) {
    let (account_id, admin) = app
        .account(shared::domain::accounts::Tier::Enterprise)
        .await;
    let uploaded = upload(app, &admin).await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let upload_id = uploaded.json::<Value>().await.expect("json")["upload_id"]
        .as_str()
        .expect("upload_id")
        .to_owned();
    let client = http_client();
    // A refusal names the fields as this client sent them.
    for (body, field) in [
        (
            json!({"upload_id": upload_id, "goal": "g".repeat(2001)}),
            "goal",
        ),
        (
            json!({"upload_id": upload_id, "goal": "predict the price", "eval": "e".repeat(2001)}),
            "eval",
        ),
    ] {
        let refused = client
            .post(app.at("/v0/models/houses/create"))
            .header("x-api-key", &admin)
            .json(&body)
            .send()
            .await
            .expect("create");
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let refused: Value = refused.json().await.expect("json");
        assert_eq!(refused["error"]["details"]["field"], field, "{refused}");
        let message = refused["error"]["message"].as_str().unwrap_or("");
        assert!(message.starts_with(field), "{refused}");
    }
    let accepted = client
        .post(app.at("/v0/models/houses/create"))
        .header("x-api-key", &admin)
        .json(&json!({"upload_id": upload_id, "goal": "predict the price", "eval": "lowest mean absolute error"}))
        .send()
        .await
        .expect("create");
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let accepted: Value = accepted.json().await.expect("json");
    assert_eq!(accepted["status"], "pending", "{accepted}");
    assert_eq!(accepted["model_version"], "v1.0", "{accepted}");
    // No trainer runs here: the version is PENDING until the build's end is written.
    let store = app.state.store.as_ref();
    let name = ModelName::existing("houses").expect("name");
    let mut version = models::get_version(store, &account_id, &name, 1)
        .await
        .expect("read")
        .expect("version 1");
    assert_eq!(
        version.settings.metric.as_deref(),
        Some("mae"),
        "eval picks the metric"
    );
    version.status = VersionStatus::Error;
    version.error = Some(VersionError {
        code: "build_failed".into(),
        message: "the dataset was deleted during the build".into(),
    });
    models::put_version(store, &account_id, &version)
        .await
        .expect("write");
    let status: Value = client
        .get(app.at("/v0/models/houses/v1.0/status"))
        .header("x-api-key", &admin)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(
        status["error"], "the dataset was deleted during the build",
        "{status}"
    );
    assert!(status["result"].is_null(), "{status}");
    let infer = client
        .post(app.at("/v0/models/houses/v1.0/infer"))
        .header("x-api-key", &admin)
        .json(&json!({"size": 50, "rooms": 2}))
        .send()
        .await
        .expect("infer");
    assert_eq!(infer.status(), StatusCode::CONFLICT);
}

async fn legacy_routes_need_a_key_and_the_scope(app: &TestApp) {
    let (_, admin) = app
        .account(shared::domain::accounts::Tier::Enterprise)
        .await;
    let created: Value = http_client()
        .post(app.at("/api-keys"))
        .header("x-api-key", &admin)
        .json(&json!({"name": "reader", "scopes": ["read"]}))
        .send()
        .await
        .expect("POST /api-keys")
        .json()
        .await
        .expect("json");
    let reader = created["api_key"].as_str().expect("api_key").to_owned();
    let refused = upload(app, &reader).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    let anonymous = http_client()
        .get(app.at("/v0/models"))
        .send()
        .await
        .expect("GET /v0/models");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let listed = http_client()
        .get(app.at("/v0/models"))
        .header("authorization", format!("Bearer {reader}"))
        .send()
        .await
        .expect("GET /v0/models");
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(listed.json::<Value>().await.expect("json"), json!([]));
    // Served under /v0 only.
    for path in ["/v1/v0/models", "/uploads"] {
        let response = http_client()
            .get(app.at(path))
            .header("x-api-key", &admin)
            .send()
            .await
            .expect("GET");
        assert!(
            matches!(
                response.status(),
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            ),
            "{path}: {}",
            response.status()
        );
    }
}

/// Untyped parts (a form post of a file with no extension) are read as CSV, the legacy API's
/// format; an untyped part that is not CSV says why it is unusable.
async fn untyped_parts_are_read_as_csv(app: &TestApp) {
    let (_, key) = app
        .account(shared::domain::accounts::Tier::Enterprise)
        .await;
    let send = |bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new().part(
            "files",
            reqwest::multipart::Part::bytes(bytes).file_name("files"),
        );
        http_client()
            .post(app.at("/v0/uploads"))
            .header("x-api-key", &key)
            .multipart(form)
            .send()
    };
    let read = send(csv().into_bytes()).await.expect("POST /v0/uploads");
    assert_eq!(read.status(), StatusCode::CREATED);
    let body: Value = read.json().await.expect("json");
    assert_eq!(body["row_count"], 60, "{body}");
    assert_eq!(body["columns"], json!(["size", "rooms", "price"]), "{body}");
    let refused = send(vec![0xff, 0xfe, 0x00, 0x01])
        .await
        .expect("POST /v0/uploads");
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let misnamed = http_client()
        .post(app.at("/v0/uploads"))
        .header("x-api-key", &key)
        .multipart(reqwest::multipart::Form::new().text("file", csv()))
        .send()
        .await
        .expect("POST /v0/uploads");
    assert_eq!(misnamed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = misnamed.json().await.expect("json");
    assert_eq!(body["error"]["details"]["field"], "files", "{body}");
}

on_both_backends!(
    untyped_parts_are_read_as_csv,
    failed_builds_read_failed_with_their_message,
    legacy_routes_need_a_key_and_the_scope
);
