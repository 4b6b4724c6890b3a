//! An emulator of the AWS Lambda Runtime API (`/2018-06-01/runtime/...`), so the real function
//! binaries run exactly as on Lambda: they poll `invocation/next`, get an event with the
//! runtime's headers, and post their result to `invocation/{id}/response` (or `/error`).
//! Tests and the Lambda bench hand events to [`RuntimeApi::invoke`] and get the function's reply.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Lambda's limit on a synchronous invocation's event (the function never runs beyond it).
pub const INVOKE_REQUEST_LIMIT: usize = shared::http::error::LAMBDA_INVOKE_LIMIT;
/// Lambda's limit on a synchronous invocation's response (100 bytes above the request's).
pub const INVOKE_RESPONSE_LIMIT: usize = INVOKE_REQUEST_LIMIT + 100;

/// What a function answered for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The body posted to `invocation/{id}/response`.
    Response(Vec<u8>),
    /// The body posted to `invocation/{id}/error`.
    Error(Vec<u8>),
}

struct Pending {
    request_id: String,
    event: Vec<u8>,
    /// The function's timeout for this invocation.
    timeout: Duration,
}

#[derive(Clone)]
struct Shared {
    events: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>,
    replies: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>,
    init_error: Arc<Mutex<Option<String>>>,
    /// When the function first asked for an event: the end of its init phase.
    first_poll: Arc<std::sync::OnceLock<std::time::Instant>>,
}

/// A running Runtime API on `127.0.0.1:<free port>`; stops when dropped.
pub struct RuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API` for the function process.
    pub address: SocketAddr,
    sender: mpsc::UnboundedSender<Pending>,
    shared: Shared,
    counter: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Shared {
            events: Arc::new(Mutex::new(receiver)),
            replies: Arc::new(Mutex::new(HashMap::new())),
            init_error: Arc::new(Mutex::new(None)),
            first_poll: Arc::new(std::sync::OnceLock::new()),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port for the Runtime API");
        let address = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("runtime API emulator stopped: {e}");
            }
        });
        RuntimeApi {
            address,
            sender,
            shared,
            counter: AtomicU64::new(0),
            server,
        }
    }

    /// The environment a function process needs besides its own configuration: the Runtime
    /// API address and the variables `lambda_runtime` requires.
    pub fn lambda_env(&self, function_name: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// When the function first polled for an event (Lambda's end of init), if it has.
    pub fn first_poll(&self) -> Option<std::time::Instant> {
        self.shared.first_poll.get().copied()
    }

    /// Hands `event` to the function, with `timeout` as the function's timeout (its deadline is
    /// now + `timeout` when the function picks it up), and waits that long for its answer.
    pub async fn invoke(
        &self,
        event: &serde_json::Value,
        timeout: Duration,
    ) -> Result<Outcome, String> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("00000000-0000-4000-8000-{n:012}");
        let (tx, rx) = oneshot::channel();
        self.shared
            .replies
            .lock()
            .await
            .insert(request_id.clone(), tx);
        let event = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        if event.len() > INVOKE_REQUEST_LIMIT {
            self.shared.replies.lock().await.remove(&request_id);
            return Err(format!(
                "RequestEntityTooLargeException: the event has {} bytes, over Lambda's {} \
                 for a synchronous invocation",
                event.len(),
                INVOKE_REQUEST_LIMIT
            ));
        }
        self.sender
            .send(Pending {
                request_id: request_id.clone(),
                event,
                timeout,
            })
            .map_err(|_| "the runtime API emulator stopped".to_owned())?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err("the invocation was dropped".to_owned()),
            Err(_) => {
                let init = self.shared.init_error.lock().await.clone();
                Err(format!(
                    "no answer within {timeout:?} for {request_id}; init error: {}",
                    init.unwrap_or_else(|| "none reported".to_owned())
                ))
            }
        }
    }
}

async fn next_invocation(State(shared): State<Shared>) -> Response {
    shared.first_poll.get_or_init(std::time::Instant::now);
    let next = shared.events.lock().await.recv().await;
    let Some(pending) = next else {
        return StatusCode::GONE.into_response();
    };
    // The function's timeout is the invocation's: its deadline is now + the invoke's timeout.
    let deadline_ms = SystemTime::now()
        .checked_add(pending.timeout)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut headers = HeaderMap::new();
    let pairs = [
        ("lambda-runtime-aws-request-id", pending.request_id),
        ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:test".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-5e9f0c65-1de4d666d4dd26aced652b6c;Sampled=0".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (StatusCode::OK, headers, pending.event).into_response()
}

async fn reply(shared: &Shared, request_id: &str, outcome: Outcome) -> StatusCode {
    match shared.replies.lock().await.remove(request_id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn invocation_response(
    State(shared): State<Shared>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    if body.len() > INVOKE_RESPONSE_LIMIT {
        // Lambda refuses the response and the invocation fails.
        let error = format!(
            "{{\"errorType\":\"Function.ResponseSizeTooLarge\",\"errorMessage\":\"Response \
             payload size ({} bytes) exceeded maximum allowed payload size ({} bytes).\"}}",
            body.len(),
            INVOKE_RESPONSE_LIMIT
        );
        reply(&shared, &request_id, Outcome::Error(error.into_bytes())).await;
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    reply(&shared, &request_id, Outcome::Response(body.to_vec())).await
}

async fn invocation_error(
    State(shared): State<Shared>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    reply(&shared, &request_id, Outcome::Error(body.to_vec())).await
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    *shared.init_error.lock().await = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

/// An API Gateway HTTP API (payload 2.0) event for `method path?query` with `headers` and an
/// optional body, shaped like the events API Gateway sends (see `tests/fixtures/lambda/`).
pub fn http_api_event(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> serde_json::Value {
    use base64::Engine as _;
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    };
    let mut header_map = serde_json::Map::new();
    header_map.insert("host".into(), "api.example.test".into());
    header_map.insert("x-forwarded-proto".into(), "https".into());
    for (name, value) in headers {
        header_map.insert(name.to_ascii_lowercase(), (*value).into());
    }
    let mut query_map = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query_map.insert(k.to_owned(), v.into());
    }
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.test",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "plexe-tests"
            },
            "requestId": "test-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795435200000u64
        },
        "isBase64Encoded": false
    });
    if !query_map.is_empty() {
        event["queryStringParameters"] = query_map.into();
    }
    if let Some(body) = body {
        event["body"] = base64::engine::general_purpose::STANDARD
            .encode(body)
            .into();
        event["isBase64Encoded"] = true.into();
    }
    event
}

/// The parts of an API Gateway HTTP API response a test looks at.
#[derive(Debug)]
pub struct HttpApiResponse {
    pub status: u16,
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub body: Vec<u8>,
}

impl HttpApiResponse {
    /// Decodes the function's response document (`statusCode`, `headers`, `body`,
    /// `isBase64Encoded`).
    pub fn parse(bytes: &[u8]) -> Result<HttpApiResponse, String> {
        use base64::Engine as _;
        let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "the response is not JSON ({e}): {}",
                String::from_utf8_lossy(bytes)
            )
        })?;
        let status = doc["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| format!("no statusCode in {doc}"))?;
        let headers = doc["headers"].as_object().cloned().unwrap_or_default();
        let raw = doc["body"].as_str().unwrap_or("");
        let body = if doc["isBase64Encoded"].as_bool() == Some(true) {
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|e| format!("body is not base64: {e}"))?
        } else {
            raw.as_bytes().to_vec()
        };
        Ok(HttpApiResponse {
            status,
            headers,
            body,
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.as_str())
    }
}
