//! The keys function as Lambda runs it (the Lambda-shaped tests of the other functions are in
//! functions/tests/lambda_functions.rs): its real binary on an emulator of the Lambda Runtime
//! API, API Gateway HTTP API events, DynamoDB on moto.

use integration_tests::aws_backends;
use integration_tests::lambda_stack::{admin_key, assert_envelope, function_env, start_function};

#[tokio::test]
async fn keys_function_serves_health_me_and_keys() {
    let Some(aws) = aws_backends("lambda-keys").await else {
        return;
    };
    let key = admin_key(&aws).await;
    let bearer = format!("Bearer {key}");
    let function = start_function(env!("CARGO_BIN_EXE_keys"), "keys", &function_env(&aws)).await;

    let health = function.http("GET", "/health", &[], None).await;
    assert_eq!(health.status, 200);
    assert!(
        health
            .header("x-request-id")
            .is_some_and(|id| id.starts_with("req_"))
    );

    let me = function
        .http("GET", "/v1/me", &[("authorization", &bearer)], None)
        .await;
    assert_eq!(me.status, 200, "{}", String::from_utf8_lossy(&me.body));
    assert!(
        me.json()["account_id"]
            .as_str()
            .is_some_and(|a| a.starts_with("acct_"))
    );
    assert_eq!(me.header("x-ratelimit-limit"), Some("100"));

    let created = function
        .http(
            "POST",
            "/api-keys",
            &[("x-api-key", &key), ("content-type", "application/json")],
            Some(br#"{"name": "reader", "scopes": ["read"]}"#),
        )
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let reader = created.json()["api_key"]
        .as_str()
        .expect("the new key is shown once")
        .to_owned();

    let listed = function
        .http(
            "GET",
            "/api-keys?limit=10",
            &[("authorization", &bearer)],
            None,
        )
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["pagination"]["total"], 2, "{}", listed.json());

    // The new read key may not manage keys; a missing key and unknown routes use the envelope.
    let forbidden = function
        .http(
            "POST",
            "/api-keys",
            &[("x-api-key", &reader), ("content-type", "application/json")],
            Some(br#"{"name": "x", "scopes": ["read"]}"#),
        )
        .await;
    assert_envelope(&forbidden, 403, "forbidden");
    let missing = function.http("GET", "/me", &[], None).await;
    assert_envelope(&missing, 401, "missing_api_key");
    let unknown = function
        .http("GET", "/no-such-route", &[("authorization", &bearer)], None)
        .await;
    assert_envelope(&unknown, 404, "not_found");
}
