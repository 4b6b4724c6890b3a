//! An emulator of API Gateway's HTTP API in front of the real function binaries, so an HTTP
//! client (the published Plexe Python client, say) can talk to the Lambda-shaped stack as it
//! would to AWS:
//!
//! - HTTPS with a certificate the test makes ([`crate::tls`]), served by the same accept loop
//!   as `plexe serve` (`shared::runtime::server`);
//! - route selection as API Gateway documents it (what `tests/infra/routes.py` checks the
//!   templates against): a full match of path and method first (static segments before
//!   variables, a route's own method before `ANY`), then the greedy route with the longest
//!   prefix, then `$default`; nothing matching is API Gateway's own 404
//!   `{"message":"Not Found"}`;
//! - each request handed to its function's Runtime API ([`crate::runtime_api`]) as a payload
//!   format 2.0 event: `rawPath`, `rawQueryString`, lowercase headers (repeated ones joined
//!   with commas), cookies, `routeKey`, `pathParameters`, and the body base64-encoded unless its
//!   content type is text (JSON, `text/*`, XML, form-urlencoded), as API Gateway does;
//! - the function's response document (`statusCode`, `headers`, `cookies`, `body`,
//!   `isBase64Encoded`) turned back into the HTTP response; an invocation error or no answer
//!   within 30 s is API Gateway's 500 / 503 `{"message": …}`; a body over 10 MB, or one whose
//!   event is over Lambda's 6 MB invoke limit, its 413; a response over Lambda's limit its 500.
//!
//! [`SqsTrigger`] is the event source mapping of a queue-triggered function: it receives from
//! SQS (moto) and invokes the function with the batch, deleting what succeeded and leaving the
//! `batchItemFailures` for redelivery.

use crate::runtime_api::{HttpApiResponse, INVOKE_REQUEST_LIMIT, Outcome, RuntimeApi};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// API Gateway's own limit on a request body.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;
/// API Gateway's integration timeout for HTTP APIs.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// One route: `"METHOD /path"` (`ANY` for every method; `{name}` and a trailing `{proxy+}`
/// variables) or `$default`, and the function it reaches.
pub struct Integration {
    pub route_key: String,
    pub function: Arc<RuntimeApi>,
}

struct Routes {
    routes: Vec<Integration>,
}

/// A running emulator; stops when dropped.
pub struct ApiGateway {
    /// `https://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ApiGateway {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ApiGateway {
    /// Serves `routes` over HTTPS with the PEM certificate and key at these paths.
    pub async fn start(routes: Vec<Integration>, cert: &Path, key: &Path) -> ApiGateway {
        let tls =
            shared::runtime::server::tls_acceptor(cert, key).expect("loading the test certificate");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port for the API Gateway emulator");
        let url = format!(
            "https://{}",
            listener.local_addr().expect("the emulator's address")
        );
        let app = Router::new()
            .fallback(forward)
            .with_state(Arc::new(Routes { routes }));
        let server = tokio::spawn(shared::runtime::server::serve(
            listener,
            app,
            Some(tls),
            shared::runtime::server::ServerLimits::default(),
            std::future::pending(),
        ));
        ApiGateway { url, server }
    }
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

fn is_variable(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

/// How specifically `route_path` matches `path` (lower ranks first), with its path
/// parameters; `None` when it does not match.
/// (greedy?, minus the length before a greedy variable, variables): lower is more specific.
type Rank = (u8, i64, usize);

/// A route's path parameters: name → value.
type Params = Map<String, Value>;

fn rank(route_path: &str, path: &str) -> Option<(Rank, Params)> {
    let route = segments(route_path);
    let request = segments(path);
    let greedy = route.last().is_some_and(|s| s.ends_with("+}"));
    let fixed = if greedy {
        &route[..route.len() - 1]
    } else {
        &route[..]
    };
    if (greedy && request.len() <= fixed.len()) || (!greedy && request.len() != fixed.len()) {
        return None;
    }
    let mut params = Map::new();
    let mut variables = 0;
    for (want, got) in fixed.iter().zip(&request) {
        if is_variable(want) {
            variables += 1;
            params.insert(want[1..want.len() - 1].to_owned(), (*got).into());
        } else if want != got {
            return None;
        }
    }
    if greedy {
        let name = route[route.len() - 1].trim_start_matches('{');
        let name = name.trim_end_matches("+}");
        params.insert(name.to_owned(), request[fixed.len()..].join("/").into());
    }
    let length = i64::try_from(fixed.len()).unwrap_or(i64::MAX);
    Some(((u8::from(greedy), -length, variables), params))
}

/// The index of the route key (`"METHOD /path"` or `$default`) that takes `method path`, with
/// its path parameters.
fn select<'a>(
    route_keys: impl IntoIterator<Item = &'a str>,
    method: &str,
    path: &str,
) -> Option<(usize, Map<String, Value>)> {
    // The rank, then `ANY` after a route's own method.
    let mut best: Option<((Rank, u8), usize, Params)> = None;
    let mut default = None;
    for (index, key) in route_keys.into_iter().enumerate() {
        if key == "$default" {
            default = Some(index);
            continue;
        }
        let Some((route_method, route_path)) = key.split_once(' ') else {
            continue;
        };
        if route_method != "ANY" && route_method != method {
            continue;
        }
        let Some((rank, params)) = rank(route_path, path) else {
            continue;
        };
        let rank = (rank, u8::from(route_method == "ANY"));
        if best.as_ref().is_none_or(|(b, _, _)| rank < *b) {
            best = Some((rank, index, params));
        }
    }
    match best {
        Some((_, index, params)) => Some((index, params)),
        None => default.map(|index| (index, Map::new())),
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({ "message": text }).to_string(),
    )
        .into_response()
}

/// Whether API Gateway passes a body of this content type as text (else base64).
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime.starts_with("text/")
        || mime == "application/json"
        || mime.ends_with("+json")
        || mime == "application/xml"
        || mime.ends_with("+xml")
        || mime == "application/x-www-form-urlencoded"
}

/// The payload format 2.0 event of a request.
fn event(
    request: &axum::http::request::Parts,
    body: &[u8],
    route_key: &str,
    params: Map<String, Value>,
) -> Value {
    let path = request.uri.path();
    let query = request.uri.query().unwrap_or("");
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &request.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| Value::from(c.trim())));
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), value.into());
            }
        }
    }
    headers.insert("x-forwarded-proto".into(), "https".into());
    let mut query_map = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match query_map.get_mut(k) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(v);
            }
            _ => {
                query_map.insert(k.to_owned(), v.into());
            }
        }
    }
    let host = request
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "emulated",
            "domainName": host,
            "domainPrefix": "emulated",
            "http": {
                "method": request.method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": request.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("")
            },
            "requestId": ulid_like(),
            "routeKey": route_key,
            "stage": "$default",
            "time": "06/Dec/2026:12:00:00 +0000",
            "timeEpoch": 1796558400000u64
        },
        "isBase64Encoded": false
    });
    if !cookies.is_empty() {
        event["cookies"] = cookies.into();
    }
    if !query_map.is_empty() {
        event["queryStringParameters"] = query_map.into();
    }
    if !params.is_empty() {
        event["pathParameters"] = params.into();
    }
    if !body.is_empty() {
        let content_type = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        match std::str::from_utf8(body) {
            Ok(text) if is_text(content_type) => event["body"] = text.into(),
            _ => {
                event["body"] = base64::engine::general_purpose::STANDARD
                    .encode(body)
                    .into();
                event["isBase64Encoded"] = true.into();
            }
        }
    }
    event
}

/// A request id unique within the process.
fn ulid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("apigw-{}", N.fetch_add(1, Ordering::Relaxed))
}

async fn forward(State(routes): State<Arc<Routes>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, MAX_PAYLOAD).await {
        Ok(body) => body,
        Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
    };
    let keys = routes.routes.iter().map(|i| i.route_key.as_str());
    let Some((index, params)) = select(keys, parts.method.as_str(), parts.uri.path()) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let integration = &routes.routes[index];
    let event = event(&parts, &body, &integration.route_key, params);
    // A body API Gateway took but whose event (base64-encoded unless text) is over Lambda's
    // invoke limit never reaches the function: API Gateway answers itself.
    if serde_json::to_vec(&event).map_or(0, |e| e.len()) > INVOKE_REQUEST_LIMIT {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    }
    let outcome = integration
        .function
        .invoke(&event, INTEGRATION_TIMEOUT)
        .await;
    let bytes = match outcome {
        Ok(Outcome::Response(bytes)) => bytes,
        Ok(Outcome::Error(_)) => {
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
        Err(_) => return message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
    };
    let Ok(answer) = HttpApiResponse::parse(&bytes) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &answer.headers {
        let (Ok(name), Some(Ok(value))) = (
            HeaderName::from_bytes(name.as_bytes()),
            value.as_str().map(HeaderValue::from_str),
        ) else {
            continue;
        };
        response.headers_mut().insert(name, value);
    }
    let document: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    for cookie in document["cookies"].as_array().into_iter().flatten() {
        if let Some(Ok(value)) = cookie.as_str().map(HeaderValue::from_str) {
            response.headers_mut().append("set-cookie", value);
        }
    }
    response
}

/// The event source mapping of an SQS-triggered function: receives up to 10 messages at a
/// time from the queue and invokes the function with them; deletes the messages that
/// succeeded, leaves the reported `batchItemFailures` (or the whole batch, on an invocation
/// error) for SQS to redeliver after their visibility timeout. Stops when dropped.
pub struct SqsTrigger {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SqsTrigger {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SqsTrigger {
    pub fn start(sqs: aws_sdk_sqs::Client, queue_url: String, function: Arc<RuntimeApi>) -> Self {
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = poll_once(&sqs, &queue_url, &function).await {
                    eprintln!("SQS trigger: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        SqsTrigger { task }
    }
}

async fn poll_once(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    function: &RuntimeApi,
) -> Result<(), String> {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| format!("receiving: {e:?}"))?;
    let messages = received.messages();
    if messages.is_empty() {
        return Ok(());
    }
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), Value::from(v.as_str())))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id().unwrap_or_default(),
                "receiptHandle": m.receipt_handle().unwrap_or_default(),
                "body": m.body().unwrap_or_default(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:emulated",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    let outcome = function
        .invoke(&json!({ "Records": records }), Duration::from_secs(900))
        .await?;
    let Outcome::Response(bytes) = outcome else {
        return Err("the function reported an invocation error".into());
    };
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let failed: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    for m in messages {
        if failed.contains(&m.message_id().unwrap_or_default()) {
            continue;
        }
        if let Some(handle) = m.receipt_handle() {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .map_err(|e| format!("deleting: {e:?}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(routes: &[(&str, &'a str)], method: &str, path: &str) -> Option<&'a str> {
        select(routes.iter().map(|(k, _)| *k), method, path).map(|(i, _)| routes[i].1)
    }

    #[test]
    fn the_most_specific_route_wins() {
        let routes = [
            ("ANY /v0/models/{proxy+}", "models"),
            (
                "POST /v0/models/{model_name}/{model_version}/infer",
                "inference",
            ),
            ("ANY /v0/uploads", "datasets"),
        ];
        assert_eq!(
            target(&routes, "POST", "/v0/models/m/v1/infer"),
            Some("inference")
        );
        assert_eq!(
            target(&routes, "GET", "/v0/models/m/v1/infer"),
            Some("models")
        );
        assert_eq!(
            target(&routes, "GET", "/v0/models/m/v1/status"),
            Some("models")
        );
        assert_eq!(target(&routes, "POST", "/v0/uploads"), Some("datasets"));
        assert_eq!(target(&routes, "GET", "/v0/models"), None);
        let with_default = [("$default", "keys"), ("GET /health", "health")];
        assert_eq!(target(&with_default, "GET", "/v0/models"), Some("keys"));
        assert_eq!(target(&with_default, "GET", "/health"), Some("health"));
        let (_, params) = rank("/v0/models/{proxy+}", "/v0/models/a/b").expect("matches");
        assert_eq!(params["proxy"], "a/b");
    }
}
