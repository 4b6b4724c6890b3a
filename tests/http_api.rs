//! The HTTP conventions of SPEC sections 1–2 over real HTTP, on both backends: the error
//! envelope on every error path, request ids, authentication and scopes, the key routes,
//! pagination, rate limits and idempotency.

use futures::future::join_all;
use integration_tests::{TestApp, http_client, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::domain::accounts::Tier;

on_both_backends!(
    health_needs_no_key_and_names_the_backend,
    missing_key_is_401_missing_api_key,
    bad_keys_are_401_invalid_api_key,
    revoked_key_is_refused_at_once,
    read_key_cannot_manage_keys,
    another_accounts_key_is_not_found,
    framework_errors_use_the_envelope,
    json_errors_are_400_or_422,
    oversized_body_is_413,
    key_routes_round_trip_under_both_prefixes,
    pagination_bounds_and_shape,
    basic_tier_gets_exactly_100_per_minute,
    idempotent_post_is_replayed_not_repeated,
    idempotent_replay_needs_the_scope_and_the_same_key,
    no_secret_is_stored_by_an_idempotent_key_creation,
    only_deterministic_answers_are_replayed,
    a_client_that_hangs_up_leaves_no_claim,
    the_last_admin_key_cannot_be_revoked,
);

/// Asserts the SPEC's error envelope, its status and code, and that its request id is the
/// response's `x-request-id`; returns the body.
async fn assert_envelope(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("x-request-id on an error response");
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json")),
        "error bodies are JSON"
    );
    let body: Value = response.json().await.expect("an error body that is JSON");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["status"], status.as_u16(), "{body}");
    assert_eq!(error["request_id"], request_id.as_str(), "{body}");
    assert!(request_id.starts_with("req_"), "{request_id}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["details"].is_object(), "{body}");
    body
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

async fn create_key(app: &TestApp, admin: &str, name: &str, scopes: &[&str]) -> Value {
    let response = http_client()
        .post(app.at("/api-keys"))
        .header("authorization", bearer(admin))
        .json(&json!({ "name": name, "scopes": scopes }))
        .send()
        .await
        .expect("POST /api-keys");
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.expect("key JSON")
}

async fn health_needs_no_key_and_names_the_backend(app: &TestApp) {
    let client = http_client();
    for path in ["/health", "/v1/health"] {
        let response = client.get(app.at(path)).send().await.expect("GET /health");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["backend"], app.state.store.backend());
    }
}

async fn missing_key_is_401_missing_api_key(app: &TestApp) {
    let client = http_client();
    for path in ["/me", "/v1/me", "/api-keys"] {
        let response = client.get(app.at(path)).send().await.expect("request");
        assert_envelope(response, StatusCode::UNAUTHORIZED, "missing_api_key").await;
    }
}

async fn bad_keys_are_401_invalid_api_key(app: &TestApp) {
    let (_, admin) = app.account(Tier::Basic).await;
    // Same shape as a real key, with the last secret character changed.
    let mut tampered = admin.clone();
    let last = tampered.pop().expect("non-empty key");
    tampered.push(if last == '0' { '1' } else { '0' });
    let unknown = "plx_01hzzzzzzzzzzzzzzzzzzzzzzz_0000000000000000000000000000000000000000000000000000000000000000";
    let client = http_client();
    for (name, value) in [
        ("authorization", bearer("not-a-key")),
        ("authorization", bearer(&tampered)),
        ("authorization", bearer(unknown)),
        ("authorization", format!("Basic {admin}")),
        ("x-api-key", tampered.clone()),
    ] {
        let response = client
            .get(app.at("/me"))
            .header(name, value)
            .send()
            .await
            .expect("request");
        assert_envelope(response, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
    }
    // And the real key works through either header.
    for (name, value) in [
        ("authorization", bearer(&admin)),
        ("x-api-key", admin.clone()),
    ] {
        let response = client
            .get(app.at("/me"))
            .header(name, value)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
    }
}

async fn revoked_key_is_refused_at_once(app: &TestApp) {
    let (_, admin) = app.account(Tier::Pro).await;
    let key = create_key(app, &admin, "temp", &["read"]).await;
    let secret = key["api_key"].as_str().expect("api_key");
    let client = http_client();
    let me = client
        .get(app.at("/me"))
        .header("x-api-key", secret)
        .send()
        .await
        .expect("GET /me");
    assert_eq!(me.status(), StatusCode::OK);

    let key_id = key["key_id"].as_str().expect("key_id");
    let revoked = client
        .delete(app.at(&format!("/api-keys/{key_id}")))
        .header("authorization", bearer(&admin))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(revoked.status(), StatusCode::OK);
    let revoked: Value = revoked.json().await.expect("json");
    assert_eq!(revoked["revoked"], true);

    let me = client
        .get(app.at("/me"))
        .header("x-api-key", secret)
        .send()
        .await
        .expect("GET /me");
    assert_envelope(me, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
}

async fn read_key_cannot_manage_keys(app: &TestApp) {
    let (_, admin) = app.account(Tier::Pro).await;
    let key = create_key(app, &admin, "reader", &["read", "predict"]).await;
    let reader = key["api_key"].as_str().expect("api_key");
    let client = http_client();

    let post = client
        .post(app.at("/api-keys"))
        .header("authorization", bearer(reader))
        .json(&json!({ "name": "escalate", "scopes": ["admin"] }))
        .send()
        .await
        .expect("POST");
    assert_envelope(post, StatusCode::FORBIDDEN, "forbidden").await;
    let list = client
        .get(app.at("/v1/api-keys"))
        .header("authorization", bearer(reader))
        .send()
        .await
        .expect("GET");
    assert_envelope(list, StatusCode::FORBIDDEN, "forbidden").await;

    // Any valid key may read itself.
    let me: Value = client
        .get(app.at("/me"))
        .header("authorization", bearer(reader))
        .send()
        .await
        .expect("GET /me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["scopes"], json!(["read", "predict"]));
    assert_eq!(me["tier"], "pro");
    assert_eq!(me["key_id"], key["key_id"]);
}

async fn another_accounts_key_is_not_found(app: &TestApp) {
    let (_, admin_a) = app.account(Tier::Pro).await;
    let (_, admin_b) = app.account(Tier::Pro).await;
    let key_a = create_key(app, &admin_a, "a's key", &["read"]).await;
    let key_id = key_a["key_id"].as_str().expect("key_id");
    let client = http_client();

    for id in [key_id, "key_01hzzzzzzzzzzzzzzzzzzzzzzz", "nonsense"] {
        let response = client
            .delete(app.at(&format!("/api-keys/{id}")))
            .header("authorization", bearer(&admin_b))
            .send()
            .await
            .expect("DELETE");
        assert_envelope(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    // B's listing does not show it and A's key still works.
    let list: Value = client
        .get(app.at("/api-keys"))
        .header("authorization", bearer(&admin_b))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert!(
        !list.to_string().contains(key_id),
        "another account's key is listed: {list}"
    );
    let me = client
        .get(app.at("/me"))
        .header(
            "authorization",
            bearer(key_a["api_key"].as_str().expect("secret")),
        )
        .send()
        .await
        .expect("GET /me");
    assert_eq!(me.status(), StatusCode::OK);
}

async fn framework_errors_use_the_envelope(app: &TestApp) {
    let (_, admin) = app.account(Tier::Pro).await;
    let client = http_client();
    // Unknown routes, with and without a key, bare and versioned.
    for path in ["/nope", "/v1/nope", "/v2/me", "/api-keys/a/b"] {
        let response = client.get(app.at(path)).send().await.expect("GET");
        assert_envelope(response, StatusCode::NOT_FOUND, "not_found").await;
        let response = client
            .get(app.at(path))
            .header("authorization", bearer(&admin))
            .send()
            .await
            .expect("GET");
        assert_envelope(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    // Known paths, wrong methods.
    for (method, path) in [
        (reqwest::Method::PUT, "/me"),
        (reqwest::Method::DELETE, "/api-keys"),
        (reqwest::Method::POST, "/v1/health"),
        (reqwest::Method::GET, "/api-keys/key_x"),
    ] {
        let response = client
            .request(method, app.at(path))
            .header("authorization", bearer(&admin))
            .send()
            .await
            .expect("request");
        assert_envelope(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
    }
}

async fn json_errors_are_400_or_422(app: &TestApp) {
    let (_, admin) = app.account(Tier::Pro).await;
    let client = http_client();
    let post = |body: &'static str| {
        client
            .post(app.at("/api-keys"))
            .header("authorization", bearer(&admin))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for malformed in ["{\"name\": ", "not json", "", "{\"scopes\": [\"read\"]}"] {
        let response = post(malformed).await.expect("POST");
        assert_envelope(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    for wrong_shape in [
        "{\"name\": \"x\", \"scopes\": \"read\"}",
        "{\"name\": 5, \"scopes\": [\"read\"]}",
        "{\"name\": \"x\", \"scopes\": [\"root\"]}",
        "{\"name\": \"x\", \"scopes\": []}",
    ] {
        let response = post(wrong_shape).await.expect("POST");
        assert_envelope(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        )
        .await;
    }
    let text = client
        .post(app.at("/api-keys"))
        .header("authorization", bearer(&admin))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_envelope(
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // Nothing was created by any of them.
    let list: Value = client
        .get(app.at("/api-keys"))
        .header("authorization", bearer(&admin))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(list["pagination"]["total"], 1);
}

async fn oversized_body_is_413(app: &TestApp) {
    let (_, admin) = app.account(Tier::Pro).await;
    let client = http_client();
    let seven_mb = format!(
        "{{\"name\": \"{}\", \"scopes\": [\"read\"]}}",
        "x".repeat(7 * 1024 * 1024)
    );
    // Declared length.
    let response = client
        .post(app.at("/api-keys"))
        .header("authorization", bearer(&admin))
        .header("content-type", "application/json")
        .body(seven_mb.clone())
        .send()
        .await
        .expect("POST");
    let body = assert_envelope(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("6 MB") && message.contains("/datasets/uploads"),
        "{message}"
    );
    // Chunked, without a declared length, and through the idempotency layer.
    let stream = futures::stream::iter(
        seven_mb
            .into_bytes()
            .chunks(256 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let response = client
        .post(app.at("/v1/api-keys"))
        .header("authorization", bearer(&admin))
        .header("content-type", "application/json")
        .header("idempotency-key", "big-1")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("POST");
    assert_envelope(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

async fn key_routes_round_trip_under_both_prefixes(app: &TestApp) {
    let (account_id, admin) = app.account(Tier::Basic).await;
    let client = http_client();
    let created = client
        .post(app.at("/v1/api-keys"))
        .header("x-api-key", &admin)
        .json(&json!({ "name": "ci", "scopes": ["predict", "read"] }))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), StatusCode::CREATED);
    assert!(created.headers().contains_key("x-request-id"));
    let created: Value = created.json().await.expect("json");
    let secret = created["api_key"].as_str().expect("api_key");
    assert!(secret.starts_with("plx_"));
    assert!(
        created["key_id"]
            .as_str()
            .is_some_and(|k| k.starts_with("key_"))
    );
    assert_eq!(created["name"], "ci");
    assert_eq!(created["scopes"], json!(["read", "predict"]));
    assert!(
        created["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let me = client
        .get(app.at("/me"))
        .header("authorization", bearer(secret))
        .send()
        .await
        .expect("GET /me");
    assert_eq!(me.status(), StatusCode::OK);
    for header in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(me.headers().contains_key(header), "{header}");
    }
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["account_id"], account_id.as_str());
    assert_eq!(me["key_id"], created["key_id"]);
    assert_eq!(me["tier"], "basic");
    assert_eq!(me["rate_limit"]["limit"], 100);

    // Listed without secrets or hashes.
    let list = client
        .get(app.at("/api-keys"))
        .header("authorization", bearer(&admin))
        .send()
        .await
        .expect("GET");
    assert_eq!(list.status(), StatusCode::OK);
    let text = list.text().await.expect("text");
    assert!(!text.contains(secret), "a listing shows a secret");
    assert!(!text.contains("hash"), "a listing shows a hash: {text}");
    let list: Value = serde_json::from_str(&text).expect("json");
    let keys = list["api_keys"].as_array().expect("api_keys");
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k["key_id"] == created["key_id"]));
}

async fn pagination_bounds_and_shape(app: &TestApp) {
    let (_, admin) = app.account(Tier::Pro).await;
    for i in 0..4 {
        create_key(app, &admin, &format!("k{i}"), &["read"]).await;
    }
    let client = http_client();
    let get = |query: &str| {
        client
            .get(app.at(&format!("/api-keys{query}")))
            .header("authorization", bearer(&admin))
            .send()
    };
    let page: Value = get("?limit=2&offset=1")
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(page["api_keys"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        page["pagination"],
        json!({ "total": 5, "limit": 2, "offset": 1, "has_more": true })
    );
    let last: Value = get("?limit=2&offset=4")
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(last["api_keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(last["pagination"]["has_more"], false);
    let default: Value = get("").await.expect("GET").json().await.expect("json");
    assert_eq!(default["pagination"]["limit"], 20);
    assert_eq!(default["pagination"]["offset"], 0);
    // Pages do not overlap and cover everything.
    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let p: Value = get(&format!("?limit=2&offset={offset}"))
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        for k in p["api_keys"].as_array().expect("api_keys") {
            seen.push(k["key_id"].as_str().expect("key_id").to_owned());
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);

    for bad in [
        "?limit=0",
        "?limit=101",
        "?limit=-1",
        "?limit=ten",
        "?offset=-1",
        "?offset=x",
    ] {
        let response = get(bad).await.expect("GET");
        assert_envelope(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

async fn basic_tier_gets_exactly_100_per_minute(app: &TestApp) {
    let (_, admin) = app.account(Tier::Basic).await;
    // The window is a fixed calendar minute: start well inside one so all 110 land in it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    if now % 60 > 40 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - now % 60)).await;
    }
    let client = http_client();
    let requests = (0..110).map(|_| {
        client
            .get(app.at("/me"))
            .header("authorization", bearer(&admin))
            .send()
    });
    let responses = join_all(requests).await;
    let mut ok = 0;
    let mut limited = 0;
    let mut remaining_seen = Vec::new();
    for response in responses {
        let response = response.expect("request");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        assert_eq!(header("x-ratelimit-limit"), Some(100));
        assert!(header("x-ratelimit-reset").is_some_and(|r| r > now));
        match response.status() {
            StatusCode::OK => {
                ok += 1;
                remaining_seen.push(header("x-ratelimit-remaining").expect("remaining"));
            }
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                let retry_after = header("retry-after").expect("Retry-After on a 429");
                assert!((1..=60).contains(&retry_after), "{retry_after}");
                assert_eq!(header("x-ratelimit-remaining"), Some(0));
                assert_envelope(
                    response,
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_exceeded",
                )
                .await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, limited), (100, 10));
    // Each admitted request saw its own count. Only checked on SQLite: moto applies DynamoDB's
    // `ADD` atomically but reads the returned `UPDATED_NEW` value back after other writers may
    // have added too (DynamoDB itself returns the value its own update produced).
    if app.backend == integration_tests::Backend::Embedded {
        remaining_seen.sort();
        assert_eq!(remaining_seen, (0..100).collect::<Vec<u64>>());
    }
}

async fn idempotent_post_is_replayed_not_repeated(app: &TestApp) {
    let (_, admin) = app.account(Tier::Pro).await;
    let client = http_client();
    let post = |key: &'static str, body: Value| {
        client
            .post(app.at("/api-keys"))
            .header("authorization", bearer(&admin))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let body = json!({ "name": "deploy", "scopes": ["write"] });
    let first = post("retry-1", body.clone()).await.expect("POST");
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let first_body = first.bytes().await.expect("body");

    let again = post("retry-1", body.clone()).await.expect("POST");
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(again.bytes().await.expect("body"), first_body);

    // The same key with another body is refused, and creates nothing either.
    let other = post("retry-1", json!({ "name": "deploy", "scopes": ["read"] }))
        .await
        .expect("POST");
    assert_envelope(other, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;

    // A failed request is replayed as the same error.
    let bad = post("retry-2", json!({ "name": "x", "scopes": ["root"] }))
        .await
        .expect("POST");
    let bad_body = assert_envelope(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    let bad_again = post("retry-2", json!({ "name": "x", "scopes": ["root"] }))
        .await
        .expect("POST");
    assert_eq!(
        bad_again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let bad_again_body = assert_envelope(
        bad_again,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert_eq!(
        bad_body["error"]["message"],
        bad_again_body["error"]["message"]
    );

    // Keys are per account: another account's identical request is its own.
    let (_, other_admin) = app.account(Tier::Pro).await;
    let theirs = client
        .post(app.at("/api-keys"))
        .header("authorization", bearer(&other_admin))
        .header("idempotency-key", "retry-1")
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert_eq!(theirs.status(), StatusCode::CREATED);
    assert!(!theirs.headers().contains_key("idempotent-replayed"));

    // Exactly one key was created by the three "retry-1" requests.
    let list: Value = client
        .get(app.at("/api-keys"))
        .header("authorization", bearer(&admin))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = list["api_keys"]
        .as_array()
        .expect("api_keys")
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert_eq!(
        names.iter().filter(|n| **n == "deploy").count(),
        1,
        "{names:?}"
    );
    assert_eq!(list["pagination"]["total"], 2);
}

async fn idempotent_replay_needs_the_scope_and_the_same_key(app: &TestApp) {
    let (_, admin) = app.account(Tier::Pro).await;
    let reader = create_key(app, &admin, "reader", &["read"]).await;
    let reader = reader["api_key"].as_str().expect("secret").to_owned();
    let other_admin = create_key(app, &admin, "second admin", &["admin"]).await;
    let other_admin = other_admin["api_key"].as_str().expect("secret").to_owned();
    let body = json!({ "name": "ops", "scopes": ["admin"] });
    let post = |secret: &str| {
        http_client()
            .post(app.at("/api-keys"))
            .header("authorization", bearer(secret))
            .header("idempotency-key", "escalate-1")
            .json(&body)
            .send()
    };
    let first = post(&admin).await.expect("POST");
    assert_eq!(first.status(), StatusCode::CREATED);
    let issued: Value = first.json().await.expect("key JSON");
    let secret = issued["api_key"].as_str().expect("secret").to_owned();

    // A key without the scope is refused before any replay, whatever it sends.
    for path in ["/api-keys", "/v1/api-keys"] {
        let response = http_client()
            .post(app.at(path))
            .header("x-api-key", &reader)
            .header("idempotency-key", "escalate-1")
            .json(&body)
            .send()
            .await
            .expect("POST");
        assert!(!response.headers().contains_key("idempotent-replayed"));
        let text = assert_envelope(response, StatusCode::FORBIDDEN, "forbidden")
            .await
            .to_string();
        assert!(!text.contains(&secret), "{text}");
    }

    // Another key with the scope may not replay what this one did either.
    let response = post(&other_admin).await.expect("POST");
    assert!(!response.headers().contains_key("idempotent-replayed"));
    let refused = assert_envelope(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert!(!refused.to_string().contains(&secret));
    assert_eq!(refused["error"]["details"]["field"], "Idempotency-Key");

    // The key that made the request gets its answer back, secret included.
    let again = post(&admin).await.expect("POST");
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let replayed: Value = again.json().await.expect("key JSON");
    assert_eq!(replayed, issued);
}

async fn no_secret_is_stored_by_an_idempotent_key_creation(app: &TestApp) {
    let (_, admin) = app.account(Tier::Pro).await;
    let post = || {
        http_client()
            .post(app.at("/api-keys"))
            .header("authorization", bearer(&admin))
            .header("idempotency-key", "store-check-1")
            .json(&json!({ "name": "ci", "scopes": ["read", "predict"] }))
            .send()
    };
    let first = post().await.expect("POST");
    assert_eq!(first.status(), StatusCode::CREATED);
    let issued: Value = first.json().await.expect("key JSON");
    let secret = issued["api_key"].as_str().expect("secret").to_owned();
    // The secret's random part, which no encoding of the store could hide by quoting.
    let random_part = secret.rsplit('_').next().expect("secret parts").to_owned();
    assert_eq!(random_part.len(), 64, "{secret}");
    let replayed = post().await.expect("POST");
    assert_eq!(
        replayed
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(replayed.json::<Value>().await.expect("JSON"), issued);

    let stored = app.stored_bytes().await;
    assert!(!stored.is_empty(), "nothing was read from the backend");
    for (place, bytes) in &stored {
        let found = bytes
            .windows(random_part.len())
            .any(|w| w == random_part.as_bytes());
        assert!(!found, "the new key's secret is stored in {place}");
    }
    // The key itself works: the replayed secret is the real one.
    let me = http_client()
        .get(app.at("/me"))
        .header("authorization", bearer(&secret))
        .send()
        .await
        .expect("GET /me");
    assert_eq!(me.status(), StatusCode::OK);
}

async fn only_deterministic_answers_are_replayed(app: &TestApp) {
    let (_, admin) = app.account(Tier::Pro).await;
    let client = http_client();
    // Completing a session before its file is PUT is a 409: not kept, so the same
    // Idempotency-Key completes it once the file is there.
    let session: Value = client
        .post(app.at("/datasets/uploads"))
        .header("authorization", bearer(&admin))
        .json(&json!({ "name": "late", "format": "csv" }))
        .send()
        .await
        .expect("POST /datasets/uploads")
        .json()
        .await
        .expect("session JSON");
    let upload_id = session["upload_id"].as_str().expect("upload_id");
    let complete = || {
        client
            .post(app.at(&format!("/datasets/uploads/{upload_id}/complete")))
            .header("authorization", bearer(&admin))
            .header("idempotency-key", "complete-1")
            .send()
    };
    let early = complete().await.expect("POST complete");
    assert!(!early.headers().contains_key("idempotent-replayed"));
    assert_envelope(early, StatusCode::CONFLICT, "conflict").await;
    let put = client
        .put(session["upload_url"].as_str().expect("upload_url"))
        .body("a,b\n1,2\n3,4\n")
        .send()
        .await
        .expect("PUT");
    assert!(put.status().is_success(), "{}", put.status());
    let done = complete().await.expect("POST complete");
    assert!(!done.headers().contains_key("idempotent-replayed"));
    assert_eq!(done.status(), StatusCode::CREATED);
    let dataset: Value = done.json().await.expect("dataset JSON");
    // From now on the 201 is what this key answers.
    let replayed = complete().await.expect("POST complete");
    assert_eq!(
        replayed
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(replayed.json::<Value>().await.expect("JSON"), dataset);

    // A 403 leaves no record either: the key with the scope then runs the same request
    // afresh (a record would make it "used by another API key").
    let reader = create_key(app, &admin, "reader", &["read"]).await;
    let reader = reader["api_key"].as_str().expect("secret").to_owned();
    let upload = |secret: String| {
        client
            .post(app.at("/datasets"))
            .header("authorization", bearer(&secret))
            .header("idempotency-key", "upload-1")
            .header("content-type", "text/csv")
            .body("a,b\n1,2\n")
            .send()
    };
    let refused = upload(reader).await.expect("POST /datasets");
    assert_envelope(refused, StatusCode::FORBIDDEN, "forbidden").await;
    let created = upload(admin.clone()).await.expect("POST /datasets");
    assert_eq!(created.status(), StatusCode::CREATED);
    assert!(!created.headers().contains_key("idempotent-replayed"));
}

/// A client that sends a request that changes state and hangs up at once leaves neither a
/// claim on its Idempotency-Key (a retry would be 409 for 15 minutes) nor half a request: the
/// retry gets the one answer, and exactly one dataset exists.
async fn a_client_that_hangs_up_leaves_no_claim(app: &TestApp) {
    use tokio::io::AsyncWriteExt;
    let (_, admin) = app.account(Tier::Pro).await;
    // Near the 6 MB limit, so parsing and profiling take a while after the body is in.
    let mut csv = String::from("id,x,y,label,note\n");
    for i in 0..150_000 {
        csv.push_str(&format!(
            "{i},{},{},{},n{}\n",
            i % 97,
            (i * 7) % 13,
            i % 3,
            i % 1000
        ));
    }
    assert!(csv.len() < 6 * 1024 * 1024, "{}", csv.len());
    let addr = app.url.trim_start_matches("http://");
    let request = format!(
        "POST /datasets?name=hangup HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {admin}\r\n\
         idempotency-key: hangup-1\r\ncontent-type: text/csv\r\ncontent-length: {}\r\n\r\n",
        csv.len()
    );
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("send headers");
    socket.write_all(csv.as_bytes()).await.expect("send body");
    socket.flush().await.expect("flush");
    drop(socket);

    let retry = || {
        http_client()
            .post(app.at("/datasets?name=hangup"))
            .header("authorization", bearer(&admin))
            .header("idempotency-key", "hangup-1")
            .header("content-type", "text/csv")
            .body(csv.clone())
            .send()
    };
    let started = std::time::Instant::now();
    let answer = loop {
        let response = retry().await.expect("POST /datasets");
        if response.status() != StatusCode::CONFLICT {
            break response;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the Idempotency-Key is still claimed a minute after the client hung up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(answer.status(), StatusCode::CREATED);
    let list: Value = http_client()
        .get(app.at("/datasets?limit=100"))
        .header("authorization", bearer(&admin))
        .send()
        .await
        .expect("GET /datasets")
        .json()
        .await
        .expect("JSON");
    let named: Vec<&Value> = list["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .filter(|d| d["name"] == "hangup")
        .collect();
    assert_eq!(named.len(), 1, "{list}");
}

async fn the_last_admin_key_cannot_be_revoked(app: &TestApp) {
    let (_, admin) = app.account(Tier::Pro).await;
    let client = http_client();
    let me = |secret: String| {
        let client = client.clone();
        let url = app.at("/me");
        async move {
            client
                .get(url)
                .header("authorization", bearer(&secret))
                .send()
                .await
                .expect("GET /me")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let revoke = |secret: String, key_id: String| {
        let client = client.clone();
        let url = app.at(&format!("/api-keys/{key_id}"));
        async move {
            client
                .delete(url)
                .header("authorization", bearer(&secret))
                .send()
                .await
                .expect("DELETE /api-keys")
        }
    };
    let first_id = me(admin.clone()).await["key_id"]
        .as_str()
        .expect("key_id")
        .to_owned();
    // Alone, the admin key cannot revoke itself; a key without admin may be revoked any time.
    let refused = revoke(admin.clone(), first_id.clone()).await;
    let body = assert_envelope(refused, StatusCode::CONFLICT, "conflict").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("last active admin key")),
        "{body}"
    );
    let reader = create_key(app, &admin, "reader", &["read"]).await;
    let done = revoke(
        admin.clone(),
        reader["key_id"].as_str().expect("id").to_owned(),
    )
    .await;
    assert_eq!(done.status(), StatusCode::OK);

    // With a second admin key, either may go, but not both, even at the same time.
    let second = create_key(app, &admin, "second", &["admin"]).await;
    let second_secret = second["api_key"].as_str().expect("secret").to_owned();
    let second_id = second["key_id"].as_str().expect("id").to_owned();
    let (a, b) = tokio::join!(
        revoke(admin.clone(), second_id.clone()),
        revoke(second_secret.clone(), first_id.clone())
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    // One revocation wins; the other is refused (409), or finds its key already revoked (401).
    assert_eq!(statuses[0], StatusCode::OK, "{statuses:?}");
    assert!(
        matches!(statuses[1], StatusCode::CONFLICT | StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    let list: Value = client
        .get(app.at("/api-keys?limit=100"))
        .header(
            "authorization",
            bearer(if a.status() == StatusCode::OK {
                &admin
            } else {
                &second_secret
            }),
        )
        .send()
        .await
        .expect("GET /api-keys")
        .json()
        .await
        .expect("JSON");
    let active_admins = list["api_keys"]
        .as_array()
        .expect("api_keys")
        .iter()
        .filter(|k| k["revoked"] == false && k["scopes"] == json!(["admin"]))
        .count();
    assert_eq!(active_admins, 1, "{list}");
}
