//! What API Gateway and Lambda can carry, through the Lambda-shaped stack on moto (the real
//! function binaries behind the API Gateway emulator over HTTPS, which base64-encodes bodies
//! that are not text and enforces Lambda's 6 MB invoke limits).

mod cli_support;

use cli_support::function_binaries;
use integration_tests::lambda_stack::{self, LambdaStack};
use serde_json::Value;
use shared::http::error::LAMBDA_BODY_LIMIT;

const BOUNDARY: &str = "plexe-test-boundary";

/// A multipart body of exactly `total` bytes whose `file` part is a CSV (padded in its last
/// row), as a browser or `curl -F` sends it.
fn multipart_csv(total: usize) -> Vec<u8> {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let csv_len = total - head.len() - tail.len();
    let mut csv = String::from("size,rooms,label\n");
    let row = |i: usize| {
        format!(
            "{},{},{}\n",
            40 + i % 500,
            1 + i % 4,
            if i.is_multiple_of(2) { "a" } else { "b" }
        )
    };
    let mut i = 0;
    while csv.len() + row(i).len() + 16 < csv_len {
        csv.push_str(&row(i));
        i += 1;
    }
    // The last row's label takes up the rest.
    let last = format!("1,1,{}\n", "c".repeat(csv_len - csv.len() - 5));
    csv.push_str(&last);
    assert_eq!(csv.len(), csv_len);
    let mut body = head.into_bytes();
    body.extend_from_slice(csv.as_bytes());
    body.extend_from_slice(tail.as_bytes());
    assert_eq!(body.len(), total);
    body
}

async fn post_dataset(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = client
        .post(format!("{url}/datasets"))
        .bearer_auth(key)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A direct upload up to the Lambda body limit reaches the function although API Gateway
/// base64-encodes it; one byte more is the envelope's 413 pointing to upload sessions; a body
/// whose event is over Lambda's invoke limit never reaches the function (API Gateway's own 413),
/// which is why the limit sits below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn direct_uploads_over_what_lambda_carries_get_a_413_naming_upload_sessions() {
    let Ok(python) = std::env::var("PLEXE_TEST_PYTHON") else {
        panic!("PLEXE_TEST_PYTHON is not set: run tests/run.sh (the routes come from tests/infra)");
    };
    let Some(aws) = integration_tests::aws_backends("lambda-payloads").await else {
        return;
    };
    let secret =
        lambda_stack::account_key(&aws, "payloads", shared::domain::accounts::Tier::Enterprise)
            .await;
    let stack = LambdaStack::start(&aws, &function_binaries(), &python).await;
    let pem = std::fs::read(&stack.ca).expect("the CA file");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM CA"))
        .build()
        .expect("an HTTPS client");
    let (url, key) = (stack.url.as_str(), secret.as_str());

    let (status, body) = post_dataset(&client, url, key, multipart_csv(LAMBDA_BODY_LIMIT)).await;
    assert_eq!(status, 201, "a body of exactly the limit is taken: {body}");
    assert!(
        body["row_count"].as_u64().is_some_and(|n| n > 100_000),
        "{body}"
    );

    let (status, body) =
        post_dataset(&client, url, key, multipart_csv(LAMBDA_BODY_LIMIT + 1)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert_eq!(
        body["error"]["details"]["limit_bytes"], LAMBDA_BODY_LIMIT,
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("POST /datasets/uploads") && message.contains("4 MB"),
        "{message}"
    );

    let (status, body) = post_dataset(
        &client,
        url,
        key,
        multipart_csv(LAMBDA_BODY_LIMIT + 1024 * 1024),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body.get("error").is_none() && body["message"].is_string(),
        "API Gateway answers an event Lambda cannot take itself: {body}"
    );
}
