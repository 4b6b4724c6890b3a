//! A corpus of bad requests, each sent as raw bytes over a real connection to the local server's
//! accept loop (what `plexe serve` runs): malformed and duplicate-key JSON, wrong content types,
//! 100 KB headers, invalid UTF-8, path tricks in names, huge and negative pagination, deep
//! nesting, 1e400 and NaN, BOM/CRLF/ragged CSV, bodies over 6 MB, broken multipart bodies.
//! Each must get a 4xx answer in the SPEC's error envelope, and the server must stay healthy.

use integration_tests::embedded_backends;
use serde_json::Value;
use shared::http::AppState;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The local server (embedded backend, the accept loop of `plexe serve`) on a loopback port,
/// with its admin key.
struct Server {
    addr: std::net::SocketAddr,
    admin: String,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let addr = listener.local_addr().expect("local address");
    let embedded = embedded_backends(&format!("http://{addr}"));
    let config = shared::config::Config::embedded_defaults(embedded.dir.path());
    let state = AppState::new(embedded.backends, config);
    let (_, issued) = shared::domain::accounts::create_account_with_admin_key(
        state.store.as_ref(),
        shared::domain::accounts::NewAccount {
            name: "fuzz".to_owned(),
            tier: shared::domain::accounts::Tier::Enterprise,
            rate_limit_per_minute: None,
        },
    )
    .await
    .expect("creating an account");
    let app = shared::http::app(state);
    let task = tokio::spawn(shared::runtime::server::serve(
        listener,
        app,
        None,
        shared::runtime::server::ServerLimits::default(),
        std::future::pending(),
    ));
    Server {
        addr,
        admin: issued.secret,
        _dir: embedded.dir,
        task,
    }
}

/// An answer as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` (complete bytes, `Connection: close` among its headers) and reads the answer
/// to the end of the connection. The request is written while the answer is read, so a server
/// that answers before reading a large body all the way is still heard.
async fn exchange(server: &Server, request: Vec<u8>) -> Answer {
    let stream = TcpStream::connect(server.addr).await.expect("connecting");
    let (mut reader, mut writer) = stream.into_split();
    let write = tokio::spawn(async move {
        // The server may close early (a 413 before the whole body): that is not our failure.
        let _ = writer.write_all(&request).await;
        let _ = writer.flush().await;
        writer
    });
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), reader.read_to_end(&mut raw))
        .await
        .expect("the server answers within 60 s")
        .ok();
    drop(write.await);
    parse_answer(&raw)
}

fn parse_answer(raw: &[u8]) -> Answer {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete answer head in {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return body;
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
        rest = &rest[line_end + 2..];
        if size == 0 || rest.len() < size {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[(size + 2).min(rest.len())..];
    }
}

/// A request's bytes: `method target`, the key (when given), `headers`, and `body` with its
/// length.
fn request(
    method: &str,
    target: &[u8],
    key: Option<&str>,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(key) = key {
        out.extend_from_slice(format!("Authorization: Bearer {key}\r\n").as_bytes());
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || method == "POST" || method == "PUT" || method == "PATCH" {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Asserts a 4xx answer whose body is the SPEC's envelope, naming the case on failure; returns
/// the envelope's `error`.
fn assert_envelope(case: &str, answer: &Answer) -> Value {
    assert!(
        (400..500).contains(&answer.status),
        "{case}: expected a 4xx, got {} {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    assert!(
        answer
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{case}: the error is not JSON: {:?}",
        answer.headers
    );
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|e| {
        panic!(
            "{case}: the body is not JSON ({e}): {}",
            String::from_utf8_lossy(&answer.body)
        )
    });
    let error = &body["error"];
    assert!(
        error["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{case}: {body}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{case}: {body}"
    );
    assert_eq!(error["status"], answer.status, "{case}: {body}");
    let request_id = answer.header("x-request-id").unwrap_or_default();
    assert!(request_id.starts_with("req_"), "{case}: x-request-id");
    assert_eq!(error["request_id"], request_id, "{case}: {body}");
    assert!(error["details"].is_object(), "{case}: {body}");
    error.clone()
}

/// Sends one bad request and asserts a 4xx envelope with `status` (when given); returns the
/// envelope's `error`.
async fn bad(server: &Server, case: &str, status: Option<u16>, bytes: Vec<u8>) -> Value {
    let answer = exchange(server, bytes).await;
    let error = assert_envelope(case, &answer);
    if let Some(status) = status {
        assert_eq!(
            answer.status,
            status,
            "{case}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    error
}

async fn assert_healthy(server: &Server, after: &str) {
    let answer = exchange(server, request("GET", b"/health", None, &[], b"")).await;
    assert_eq!(answer.status, 200, "/health after {after}");
    let body: Value = serde_json::from_slice(&answer.body).expect("health JSON");
    assert_eq!(body["status"], "ok", "/health after {after}: {body}");
}

const JSON: (&str, &[u8]) = ("Content-Type", b"application/json");
const CSV: (&str, &[u8]) = ("Content-Type", b"text/csv");

fn post_json(server: &Server, target: &str, body: &[u8]) -> Vec<u8> {
    request(
        "POST",
        target.as_bytes(),
        Some(&server.admin),
        &[JSON],
        body,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_and_duplicate_key_json() {
    let server = start().await;
    for (case, body) in [
        (
            "truncated JSON",
            &br#"{"name": "ci", "scopes": ["read""#[..],
        ),
        (
            "a trailing comma",
            br#"{"name": "ci", "scopes": ["read"],}"#,
        ),
        ("single quotes", br#"{'name': 'ci'}"#),
        ("two documents", br#"{"name": "a", "scopes": ["read"]} {}"#),
        ("an empty body", b""),
        ("a bare NUL", b"\0"),
    ] {
        let error = bad(
            &server,
            case,
            Some(400),
            post_json(&server, "/api-keys", body),
        )
        .await;
        assert_eq!(error["code"], "invalid_request", "{case}");
    }
    for (case, target, body) in [
        (
            "a duplicate top-level key",
            "/api-keys",
            &br#"{"name": "a", "name": "b", "scopes": ["read"]}"#[..],
        ),
        (
            "a duplicate key inside tags",
            "/models/dup-tags",
            br#"{"intent": "x", "dataset_id": "ds_1", "tags": {"k": "1", "k": "2"}}"#,
        ),
        (
            "a duplicate key in an infer row",
            "/models/m/v1/infer",
            br#"{"a": 1, "a": 2}"#,
        ),
        (
            "a duplicate key in a batch row",
            "/models/m/v1/predictions",
            br#"[{"a": 1}, {"b": 1, "b": 2}]"#,
        ),
    ] {
        let error = bad(&server, case, Some(400), post_json(&server, target, body)).await;
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("twice")),
            "{case}: {error}"
        );
    }
    // Nothing was created by any of them.
    let answer = exchange(
        &server,
        request("GET", b"/api-keys", Some(&server.admin), &[], b""),
    )
    .await;
    let keys: Value = serde_json::from_slice(&answer.body).expect("key list");
    assert_eq!(keys["pagination"]["total"], 1, "{keys}");
    assert_healthy(&server, "malformed JSON").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_content_types() {
    let server = start().await;
    let key = Some(server.admin.as_str());
    let body = br#"{"name": "ci", "scopes": ["read"]}"#;
    for (case, target, content_type, body, status) in [
        (
            "text/plain JSON",
            "/api-keys",
            &b"text/plain"[..],
            &body[..],
            415,
        ),
        (
            "form-encoded keys",
            "/api-keys",
            b"application/x-www-form-urlencoded",
            b"name=ci",
            415,
        ),
        ("XML keys", "/api-keys", b"application/xml", b"<key/>", 415),
        (
            "a content type of invalid UTF-8",
            "/api-keys",
            b"application/\xff\xfe",
            body,
            415,
        ),
        (
            "an image as a dataset",
            "/datasets",
            b"image/png",
            b"\x89PNG\r\n\x1a\n",
            415,
        ),
        (
            "a JSON dataset",
            "/datasets",
            b"application/json",
            br#"{"a": 1}"#,
            415,
        ),
        (
            "a JSON upload session as CSV",
            "/datasets/uploads",
            b"text/csv",
            b"a,b\n1,2\n",
            415,
        ),
        (
            "XML predictions",
            "/models/m/v1/predictions",
            b"application/xml",
            b"<rows/>",
            415,
        ),
        (
            "multipart without a boundary",
            "/datasets",
            b"multipart/form-data",
            b"--x\r\n",
            400,
        ),
    ] {
        bad(
            &server,
            case,
            Some(status),
            request(
                "POST",
                target.as_bytes(),
                key,
                &[("Content-Type", content_type)],
                body,
            ),
        )
        .await;
    }
    assert_healthy(&server, "wrong content types").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn headers_of_100_kb() {
    let server = start().await;
    let big = vec![b'a'; 100 * 1024];
    let key = Some(server.admin.as_str());
    for (case, method, target, headers) in [
        (
            "a 100 KB custom header",
            "GET",
            "/me",
            vec![("X-Padding", &big[..])],
        ),
        (
            "a 100 KB API key",
            "GET",
            "/me",
            vec![("X-Api-Key", &big[..])],
        ),
        (
            "a 100 KB Idempotency-Key",
            "POST",
            "/api-keys",
            vec![("Idempotency-Key", &big[..]), JSON],
        ),
        (
            "a 100 KB header on /health",
            "GET",
            "/health",
            vec![("X-Padding", &big[..])],
        ),
    ] {
        let key = if case.contains("API key") { None } else { key };
        let error = bad(
            &server,
            case,
            Some(400),
            request(method, target.as_bytes(), key, &headers, b"{}"),
        )
        .await;
        assert_eq!(
            error["details"]["limit_bytes"],
            16 * 1024,
            "{case}: {error}"
        );
    }
    // The document's pattern is visible ASCII; a space or a tab inside is not, whatever HTTP allows.
    for (case, value) in [
        ("an Idempotency-Key with a space", &b"two words"[..]),
        ("an Idempotency-Key with a tab", &b"two\twords"[..]),
    ] {
        let error = bad(
            &server,
            case,
            Some(400),
            request(
                "POST",
                b"/api-keys",
                key,
                &[("Idempotency-Key", value), JSON],
                br#"{"name": "k", "scopes": ["read"]}"#,
            ),
        )
        .await;
        assert_eq!(error["details"]["field"], "Idempotency-Key", "{case}");
    }
    // Many headers adding up to 100 KB (fewer than the 100 headers the HTTP server parses).
    let value = vec![b'b'; 1700];
    let names: Vec<String> = (0..60).map(|i| format!("X-Pad-{i}")).collect();
    let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &value[..])).collect();
    bad(
        &server,
        "60 headers of 1.7 KB",
        Some(400),
        request("GET", b"/me", key, &many, b""),
    )
    .await;
    assert_healthy(&server, "100 KB headers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_utf8() {
    let server = start().await;
    let key = Some(server.admin.as_str());
    bad(
        &server,
        "invalid UTF-8 in a JSON string",
        Some(400),
        post_json(
            &server,
            "/api-keys",
            b"{\"name\": \"\xff\xfe\", \"scopes\": [\"read\"]}",
        ),
    )
    .await;
    bad(
        &server,
        "a lone surrogate escape",
        None,
        post_json(
            &server,
            "/api-keys",
            br#"{"name": "\udc00", "scopes": ["read"]}"#,
        ),
    )
    .await;
    bad(
        &server,
        "a CSV dataset that is not UTF-8",
        Some(422),
        request("POST", b"/datasets", key, &[CSV], b"a,b\n1,\xff\xfe\n2,3\n"),
    )
    .await;
    bad(
        &server,
        "percent-encoded invalid UTF-8 in a path",
        None,
        request("GET", b"/models/%FF%FE", key, &[], b""),
    )
    .await;
    bad(
        &server,
        "percent-encoded invalid UTF-8 in a query",
        Some(400),
        request("GET", b"/datasets?limit=%FF", key, &[], b""),
    )
    .await;
    bad(
        &server,
        "invalid UTF-8 in a dataset name",
        None,
        request(
            "POST",
            b"/datasets?name=%C3%28",
            key,
            &[CSV],
            b"a,b\n1,2\n3,4\n",
        ),
    )
    .await;
    bad(
        &server,
        "an API key of invalid UTF-8",
        Some(401),
        request("GET", b"/me", None, &[("X-Api-Key", b"\xff\xfe\xfd")], b""),
    )
    .await;
    assert_healthy(&server, "invalid UTF-8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path_tricks_in_names() {
    let server = start().await;
    let key = Some(server.admin.as_str());
    let create = br#"{"intent": "predict y", "dataset_id": "ds_nothing"}"#;
    for target in [
        "/models/..%2F..%2Fadmin.key",
        "/models/%2e%2e",
        "/models/a%2Fb",
        "/models/a%00b",
        "/models/a%0D%0AX-Injected:%201",
        "/models/%20leading-space",
        "/models/UPPER",
        "/models/build-logs",
    ] {
        bad(
            &server,
            &format!("POST {target}"),
            None,
            post_json(&server, target, create),
        )
        .await;
        if target == "/models/build-logs" {
            // A route of its own for GET; POST is what names a new model.
            continue;
        }
        bad(
            &server,
            &format!("GET {target}"),
            None,
            request("GET", target.as_bytes(), key, &[], b""),
        )
        .await;
    }
    for target in [
        &b"/datasets/..%2F..%2Fadmin.key"[..],
        b"/datasets/../../admin.key",
        b"/v1/../../admin.key",
        b"/datasets/%2e%2e%2f%2e%2e%2fadmin.key/preview",
        b"/uploads/..%2F..%2Fadmin.key",
        b"/console/..%2F..%2F/admin.key",
        b"/console/x/..%2F..%2Fadmin.key",
        b"/models/m/..%2F..%2Fadmin.key/artifact",
        b"/api-keys/..%2Fkey_1",
    ] {
        let method = if target.starts_with(b"/uploads") {
            "PUT"
        } else if target.starts_with(b"/api-keys") {
            "DELETE"
        } else {
            "GET"
        };
        let answer = exchange(&server, request(method, target, key, &[], b"")).await;
        let case = String::from_utf8_lossy(target).to_string();
        assert_envelope(&case, &answer);
        assert!(
            !String::from_utf8_lossy(&answer.body).contains(&server.admin),
            "{case} leaked the admin key"
        );
    }
    bad(
        &server,
        "a dataset named with a path and control characters",
        Some(422),
        request(
            "POST",
            b"/datasets?name=..%2F..%2Fetc%2Fpasswd%00",
            key,
            &[CSV],
            b"a,b\n1,2\n3,4\n",
        ),
    )
    .await;
    assert_healthy(&server, "path tricks").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn huge_and_negative_pagination() {
    let server = start().await;
    let key = Some(server.admin.as_str());
    for list in ["/datasets", "/models", "/api-keys", "/models/build-logs"] {
        for query in [
            "limit=-1",
            "limit=0",
            "limit=101",
            "limit=99999999999999999999999999",
            "limit=1e2",
            "limit=%2B5",
            "limit=",
            "offset=-1",
            "offset=99999999999999999999999999",
            "offset=1000000001",
            "offset=1.5",
            "limit=10&limit=abc",
        ] {
            let target = format!("{list}?{query}");
            let error = bad(
                &server,
                &target,
                Some(400),
                request("GET", target.as_bytes(), key, &[], b""),
            )
            .await;
            assert_eq!(error["code"], "invalid_request", "{target}");
        }
    }
    // The bounds themselves are taken.
    for target in ["/datasets?limit=100&offset=1000000000", "/api-keys?limit=1"] {
        let answer = exchange(&server, request("GET", target.as_bytes(), key, &[], b"")).await;
        assert_eq!(answer.status, 200, "{target}");
    }
    assert_healthy(&server, "pagination").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deep_nesting_and_numbers_out_of_range() {
    let server = start().await;
    let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_tags = format!(
        r#"{{"intent": "x", "dataset_id": "ds_1", "tags": {}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(50_000), "}".repeat(50_000));
    for (case, target, body) in [
        ("100,000 nested arrays", "/api-keys", deep_array.as_bytes()),
        (
            "100,000 nested arrays to infer",
            "/models/m/v1/infer",
            deep_array.as_bytes(),
        ),
        (
            "100,000 nested arrays to predictions",
            "/models/m/v1/predictions",
            deep_array.as_bytes(),
        ),
        (
            "10,000 nested arrays in tags",
            "/models/deep",
            deep_tags.as_bytes(),
        ),
        (
            "50,000 nested objects",
            "/datasets/uploads",
            deep_object.as_bytes(),
        ),
    ] {
        bad(&server, case, Some(400), post_json(&server, target, body)).await;
    }
    for (case, target, body) in [
        (
            "1e400 as a time budget",
            "/models/big",
            &br#"{"intent": "x", "dataset_id": "ds_1", "time_budget_s": 1e400}"#[..],
        ),
        (
            "-1e400 as a size",
            "/datasets/uploads",
            br#"{"name": "x", "format": "csv", "size_bytes": -1e400}"#,
        ),
        (
            "NaN as a time budget",
            "/models/nan",
            br#"{"intent": "x", "dataset_id": "ds_1", "time_budget_s": NaN}"#,
        ),
        (
            "Infinity as replicas",
            "/models/m/deploy",
            br#"{"replicas": Infinity}"#,
        ),
        (
            "1e400 in an infer row",
            "/models/m/v1/infer",
            br#"{"x": 1e400}"#,
        ),
        (
            "NaN in a batch row",
            "/models/m/v1/predictions",
            br#"[{"x": NaN}]"#,
        ),
    ] {
        let error = bad(&server, case, Some(400), post_json(&server, target, body)).await;
        assert_eq!(error["code"], "invalid_request", "{case}");
    }
    // Well-formed numbers out of the documented bounds are 422.
    for (case, target, body) in [
        (
            "a time budget of 1e300",
            "/models/huge",
            &br#"{"intent": "x", "dataset_id": "ds_1", "time_budget_s": 1e300}"#[..],
        ),
        (
            "a negative size",
            "/datasets/uploads",
            br#"{"name": "x", "format": "csv", "size_bytes": -1}"#,
        ),
        (
            "a size of 2^64",
            "/datasets/uploads",
            br#"{"name": "x", "format": "csv", "size_bytes": 18446744073709551616}"#,
        ),
        (
            "a million replicas",
            "/models/m/deploy",
            br#"{"replicas": 1000000}"#,
        ),
        (
            "a fractional size",
            "/datasets/uploads",
            br#"{"name": "x", "format": "csv", "size_bytes": 84.5}"#,
        ),
    ] {
        bad(&server, case, None, post_json(&server, target, body)).await;
    }
    // JSON has one number type: a whole number written as a float is that number.
    let answer = exchange(
        &server,
        post_json(
            &server,
            "/datasets/uploads",
            br#"{"name": "x", "format": "csv", "size_bytes": 84.0}"#,
        ),
    )
    .await;
    assert_eq!(
        answer.status,
        201,
        "size_bytes 84.0: {}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_healthy(&server, "deep nesting and big numbers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bom_crlf_and_ragged_csv() {
    let server = start().await;
    let key = Some(server.admin.as_str());
    for (case, csv) in [
        ("a ragged row", &b"a,b,c\n1,2,3\n4,5\n6,7,8\n"[..]),
        ("a ragged row with CRLF", b"a,b\r\n1,2\r\n3,4,5\r\n"),
        ("a BOM and nothing else", b"\xef\xbb\xbf"),
        ("a BOM and a header only, CRLF", b"\xef\xbb\xbfa,b\r\n"),
        ("a BOM before a ragged file", b"\xef\xbb\xbfa,b\r\n1\r\n"),
        ("CR-only line ends and a ragged row", b"a,b\r1,2\r3\r"),
        (
            "a duplicate column behind a BOM",
            b"\xef\xbb\xbfa,a\r\n1,2\r\n",
        ),
        ("an empty column name", b"a,,c\r\n1,2,3\r\n"),
        ("an unclosed quote", b"a,b\n\"1,2\n3,4\n"),
        ("an empty file", b""),
        ("blank lines only", b"\r\n\r\n\r\n"),
    ] {
        let error = bad(
            &server,
            case,
            Some(422),
            request("POST", b"/datasets", key, &[CSV], csv),
        )
        .await;
        assert_eq!(error["code"], "validation_error", "{case}");
    }
    // A good file with a BOM and CRLF line ends is taken, its first column named without the BOM.
    let answer = exchange(
        &server,
        request(
            "POST",
            b"/datasets",
            key,
            &[CSV],
            b"\xef\xbb\xbfa,b\r\n1,x\r\n2,y\r\n",
        ),
    )
    .await;
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let dataset: Value = serde_json::from_slice(&answer.body).expect("dataset JSON");
    assert_eq!(dataset["columns"][0]["name"], "a", "{dataset}");
    assert_eq!(dataset["columns"][1]["name"], "b", "{dataset}");
    assert_eq!(dataset["row_count"], 2, "{dataset}");
    assert_healthy(&server, "BOM/CRLF/ragged CSV").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_over_6_mb() {
    let server = start().await;
    let key = Some(server.admin.as_str());
    let mut csv = b"a,b\n".to_vec();
    while csv.len() <= 6 * 1024 * 1024 + 10 {
        csv.extend_from_slice(b"12345,67890\n");
    }
    let json = format!(
        r#"{{"name": "{}", "scopes": ["read"]}}"#,
        "x".repeat(7 * 1024 * 1024)
    );
    for (case, target, headers, body) in [
        ("a 6 MB CSV", "/datasets", vec![CSV], csv.clone()),
        (
            "a 7 MB JSON body",
            "/api-keys",
            vec![JSON],
            json.clone().into_bytes(),
        ),
        (
            "a 7 MB infer body",
            "/models/m/v1/infer",
            vec![JSON],
            json.clone().into_bytes(),
        ),
        (
            "a 6 MB CSV batch",
            "/models/m/v1/predictions",
            vec![CSV],
            csv.clone(),
        ),
    ] {
        let error = bad(
            &server,
            case,
            Some(413),
            request("POST", target.as_bytes(), key, &headers, &body),
        )
        .await;
        assert_eq!(error["code"], "payload_too_large", "{case}");
    }
    // The same CSV sent chunked, without a declared length.
    let mut chunked = b"POST /datasets HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n".to_vec();
    chunked.extend_from_slice(format!("Authorization: Bearer {}\r\n\r\n", server.admin).as_bytes());
    for piece in csv.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    bad(&server, "a chunked 6 MB CSV", Some(413), chunked).await;
    // A declared length far beyond what is sent or allowed.
    let mut lying = request("POST", b"/api-keys", key, &[JSON], b"");
    let at = lying.len() - 2;
    lying.splice(at..at, b"Content-Length: 99999999999\r\n".iter().copied());
    let lying: Vec<u8> = String::from_utf8_lossy(&lying)
        .replacen("Content-Length: 0\r\n", "", 1)
        .into_bytes();
    bad(&server, "a declared length of 100 GB", Some(413), lying).await;

    // A key without the scope is refused before its body is read: 403, not 413.
    let created = exchange(
        &server,
        post_json(
            &server,
            "/api-keys",
            br#"{"name": "reader", "scopes": ["read"]}"#,
        ),
    )
    .await;
    assert_eq!(created.status, 201);
    let created: Value = serde_json::from_slice(&created.body).expect("a created key");
    let reader = created["api_key"].as_str().expect("the secret");
    let error = bad(
        &server,
        "a read key's 6 MB CSV",
        Some(403),
        request("POST", b"/datasets", Some(reader), &[CSV], &csv),
    )
    .await;
    assert_eq!(error["code"], "forbidden");
    assert_healthy(&server, "bodies over 6 MB").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_and_broken_multipart_parts() {
    let server = start().await;
    let key = Some(server.admin.as_str());
    let multipart = |boundary: &str| {
        let value = format!("multipart/form-data; boundary={boundary}");
        ("Content-Type", value)
    };
    let (name, value) = multipart("XyZ");
    let content_type = [(name, value.as_bytes())];
    for (case, target, body) in [
        (
            "no file part",
            "/datasets",
            &b"--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nsales\r\n--XyZ--\r\n"[..],
        ),
        ("no parts at all", "/datasets", b"--XyZ--\r\n"),
        ("an empty body", "/datasets", b""),
        (
            "a file part cut off (no closing boundary)",
            "/datasets",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\na,b\n1,2\n",
        ),
        (
            "a part without headers",
            "/datasets",
            b"--XyZ\r\n\r\na,b\n--XyZ--\r\n",
        ),
        (
            "another boundary than declared",
            "/datasets",
            b"--Other\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\na,b\n1,2\n--Other--\r\n",
        ),
        (
            "an empty file part",
            "/datasets",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\n\r\n--XyZ--\r\n",
        ),
        (
            "a batch without a file part",
            "/models/m/v1/predictions",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--XyZ--\r\n",
        ),
    ] {
        bad(
            &server,
            case,
            None,
            request("POST", target.as_bytes(), key, &content_type, body),
        )
        .await;
    }
    assert_healthy(&server, "broken multipart bodies").await;
}
