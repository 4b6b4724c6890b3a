//! Bench: the six Lambda functions as Lambda runs them.
//!
//! For each function binary (`keys`, `datasets`, `models`, `inference`, `trainer`, `tasks`): its size on
//! disk, and the time from process start to its first response, driven through an emulator of
//! the Lambda Runtime API (tests/support/runtime_api.rs) with the event already waiting, exactly
//! as a cold start on Lambda (minus the sandbox). Storage is DynamoDB/S3/SQS on moto. For
//! `inference` the first request is a real prediction, so its time includes loading the ONNX
//! model from S3-on-moto and optimizing the tract plan; then warm latency and the process's peak
//! RSS (`VmHWM`) with that model loaded. The model is built first (titanic, from its intent) by
//! the in-process trainer on the same moto resources and deployed over HTTP.
//!
//! Run (release binaries, moto from the test venv; keys, datasets and models built in their
//! package alone, as Lambda gets them, without the model runtime):
//! `cargo build --release -p api-functions && cargo build --release -p functions -p
//! integration-tests --bin inference --bin trainer --bin tasks --bin bench-lambda &&
//! target/release/bench-lambda --out lambda.json`
//! with `PLEXE_TEST_MOTO_ENDPOINT` set, or without it when `./.venv/bin/moto_server` exists
//! (`tests/run.sh` creates it): the bench then starts moto itself. `--bin-dir DIR` picks the
//! function binaries (default: beside this binary), `--starts N` the cold starts per function.
//!
//! `--upload-mb N` adds a large upload: an N MB CSV (8 numeric columns) through an upload
//! session on moto with a task queue, completed by the `tasks` binary (the templates' 3 GB,
//! 900 s function) after the `datasets` function queued it: the PUT's time, the `complete`
//! answer's (202) time, the time until the session is completed, and the tasks process's peak
//! RSS.

use integration_tests::lambda_stack;
use integration_tests::runtime_api::{HttpApiResponse, Outcome, RuntimeApi, http_api_event};
use integration_tests::serve_process::{arg, datasets_dir, free_port, repo_root};
use integration_tests::{AwsBackends, ENV_MOTO_ENDPOINT, aws_backends, http_client};
use serde_json::{Map, Value, json};
use shared::domain::accounts::{NewAccount, Tier, create_account_with_admin_key};
use shared::http::AppState;
use shared::trainer::Trainer;
use shared::trainer::worker::{self, OnFailure, WorkerOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const FUNCTIONS: [&str; 6] = [
    "keys",
    "datasets",
    "models",
    "inference",
    "trainer",
    "tasks",
];
/// Start → first response (#16): the inference function loads its model from S3 first.
const TARGET_INFERENCE_INIT_MS: f64 = 30.0;
const TARGET_API_INIT_MS: f64 = 15.0;
/// An API function's stripped binary (#16).
const TARGET_API_BINARY_MB: f64 = 15.0;
const TARGET_INFERENCE_RSS_MB: f64 = 64.0;

/// moto's server from the test venv on a free port, stopped when dropped.
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_moto() -> Result<(Moto, String), String> {
    let server = repo_root().join(".venv/bin/moto_server");
    let port = free_port()?;
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {} (run tests/run.sh once): {e}", server.display()))?;
    let moto = Moto(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((moto, format!("http://127.0.0.1:{port}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("moto did not start within 10 s".into())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // Before any thread exists: point the test support at moto (starting it if need be).
    let _moto = if std::env::var_os(ENV_MOTO_ENDPOINT).is_none() {
        match start_moto() {
            Ok((moto, endpoint)) => {
                // SAFETY: single-threaded here; the async runtime is built below.
                unsafe { std::env::set_var(ENV_MOTO_ENDPOINT, endpoint) };
                Some(moto)
            }
            Err(e) => {
                eprintln!("bench-lambda: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-lambda: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            let text = serde_json::to_string_pretty(&report).unwrap_or_default();
            println!("{text}");
            if let Some(out) = arg(&args, "--out")
                && let Err(e) = std::fs::write(&out, &text)
            {
                eprintln!("bench-lambda: writing {out}: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-lambda: {e}");
            ExitCode::FAILURE
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A function process on its own Runtime API emulator; killed when dropped.
struct Function {
    runtime: RuntimeApi,
    child: Child,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    fn peak_rss_mb(&self) -> Option<f64> {
        peak_rss_mb(self.child.id())
    }
}

/// Peak resident memory of process `pid` so far, from `/proc/<pid>/status` (`VmHWM`), in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A cold start's times, in milliseconds from spawning the process.
struct ColdStart {
    /// To the first poll of the Runtime API (what Lambda reports as the init duration).
    init_ms: f64,
    /// To the first answer.
    first_response_ms: f64,
}

/// Starts `binary` with `event` already waiting; returns the process, its first answer and the
/// cold start's times.
async fn cold_start(
    binary: &Path,
    name: &str,
    aws: &AwsBackends,
    event: &Value,
) -> Result<(Function, Vec<u8>, ColdStart), String> {
    let runtime = RuntimeApi::start().await;
    let mut command = Command::new(binary);
    command
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in lambda_stack::function_env(aws)
        .into_iter()
        .chain(runtime.lambda_env(name))
    {
        command.env(k, v);
    }
    let started = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let function = Function { runtime, child };
    let outcome = function
        .runtime
        .invoke(event, Duration::from_secs(120))
        .await?;
    let times = ColdStart {
        first_response_ms: started.elapsed().as_secs_f64() * 1000.0,
        init_ms: function
            .runtime
            .first_poll()
            .ok_or("answered without polling")?
            .duration_since(started)
            .as_secs_f64()
            * 1000.0,
    };
    match outcome {
        Outcome::Response(bytes) => Ok((function, bytes, times)),
        Outcome::Error(bytes) => Err(format!(
            "{name} reported an error: {}",
            String::from_utf8_lossy(&bytes)
        )),
    }
}

fn expect_status(name: &str, bytes: &[u8], status: u16) -> Result<HttpApiResponse, String> {
    let response = HttpApiResponse::parse(bytes)?;
    if response.status != status {
        return Err(format!(
            "{name}: expected {status}, got {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        ));
    }
    Ok(response)
}

async fn run(args: &[String]) -> Result<Value, String> {
    let bin_dir = match arg(args, "--bin-dir") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .parent()
            .ok_or("no binary directory")?
            .to_path_buf(),
    };
    let starts: usize = arg(args, "--starts")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let aws = aws_backends("bench-lambda")
        .await
        .ok_or("moto is not configured")?;

    // The merged app and the in-process trainer on the same moto resources: build and deploy
    // the model the inference function will serve.
    let state = AppState::new(
        aws.backends.clone(),
        shared::config::Config::embedded_defaults(std::path::Path::new("unused")),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let app = shared::http::app(state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let _workers = worker::spawn(
        Trainer::new(state.store.clone(), state.blobs.clone()),
        state.queue.clone(),
        WorkerOptions {
            visibility: Duration::from_secs(600),
            on_failure: OnFailure::Redeliver,
            retry_delay: Duration::ZERO,
        },
        1,
    );
    let (_, issued) = create_account_with_admin_key(
        state.store.as_ref(),
        NewAccount {
            name: "bench".to_owned(),
            tier: Tier::Enterprise,
            rate_limit_per_minute: None,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let key = issued.secret;
    let bearer = format!("Bearer {key}");
    let client = http_client();
    let call = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{url}{path}"))
            .bearer_auth(&key)
    };
    async fn json_of(r: Result<reqwest::Response, reqwest::Error>) -> Result<Value, String> {
        let r = r.map_err(|e| e.to_string())?;
        let status = r.status();
        let body: Value = r.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    }
    let csv_path = datasets_dir().join("titanic.csv");
    let csv = std::fs::read_to_string(&csv_path)
        .map_err(|e| format!("reading {}: {e}", csv_path.display()))?;
    let dataset = json_of(
        call(reqwest::Method::POST, "/datasets?name=titanic")
            .header("content-type", "text/csv")
            .body(csv.clone())
            .send()
            .await,
    )
    .await?;
    json_of(
        call(reqwest::Method::POST, "/models/titanic")
            .json(&json!({"intent": "predict whether a passenger survived",
                          "dataset_id": dataset["dataset_id"]}))
            .send()
            .await,
    )
    .await?;
    let build_started = Instant::now();
    loop {
        let s = json_of(
            call(reqwest::Method::GET, "/models/titanic/v1.0/status")
                .send()
                .await,
        )
        .await?;
        match s["status"].as_str() {
            Some("READY") => break,
            Some("ERROR") => return Err(format!("build failed: {s}")),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
        if build_started.elapsed() > Duration::from_secs(600) {
            return Err("build did not finish in 10 minutes".into());
        }
    }
    json_of(
        call(reqwest::Method::POST, "/models/titanic/deploy")
            .json(&json!({}))
            .send()
            .await,
    )
    .await?;
    let described = json_of(
        call(reqwest::Method::GET, "/models/titanic/v1.0/describe")
            .send()
            .await,
    )
    .await?;
    server.abort();

    // One input row as a user sends it (cells as text, empty = null).
    let inputs: Vec<String> = described["input_schema"]
        .as_array()
        .ok_or("no input schema")?
        .iter()
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .collect();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let record = reader
        .records()
        .next()
        .ok_or("no rows")?
        .map_err(|e| e.to_string())?;
    let mut row = Map::new();
    for name in &inputs {
        let cell = headers
            .iter()
            .position(|h| h == name)
            .and_then(|i| record.get(i))
            .unwrap_or("");
        row.insert(
            name.clone(),
            if cell.is_empty() {
                Value::Null
            } else {
                Value::String(cell.to_owned())
            },
        );
    }
    let row = serde_json::to_vec(&Value::Object(row)).map_err(|e| e.to_string())?;

    let json_headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let auth = [("authorization", bearer.as_str())];
    let sqs_event = json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "h-1", "md5OfBody": "", "eventSource": "aws:sqs",
        "body": json!({"account_id": "acct_none", "job_id": "job_none"}).to_string(),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:plexe-jobs", "awsRegion": "us-east-1"
    }]});

    // A task for an upload session that does not exist: read, looked up, done.
    let task_event = json!({"Records": [{
        "messageId": "t-1", "receiptHandle": "h-1", "md5OfBody": "", "eventSource": "aws:sqs",
        "body": json!({"task": "complete_upload", "account_id": "acct_none",
                       "upload_id": "upl_none"}).to_string(),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:plexe-tasks", "awsRegion": "us-east-1"
    }]});

    let mut functions = Map::new();
    for name in FUNCTIONS {
        let binary = bin_dir.join(name);
        let size = std::fs::metadata(&binary)
            .map_err(|e| format!("{}: {e}", binary.display()))?
            .len();
        let (event, expected) = match name {
            "keys" => (http_api_event("GET", "/v1/me", &auth, None), 200),
            "datasets" => (http_api_event("GET", "/v1/datasets", &auth, None), 200),
            "models" => (
                http_api_event("GET", "/v1/models/titanic", &auth, None),
                200,
            ),
            "inference" => (
                http_api_event(
                    "POST",
                    "/v1/models/titanic/v1.0/infer",
                    &json_headers,
                    Some(&row),
                ),
                200,
            ),
            "tasks" => (task_event.clone(), 0),
            _ => (sqs_event.clone(), 0),
        };
        let mut first_response_ms = Vec::new();
        let mut init_ms = Vec::new();
        let mut entry = Map::new();
        for attempt in 0..starts {
            let (function, bytes, times) = cold_start(&binary, name, &aws, &event).await?;
            if expected != 0 {
                expect_status(name, &bytes, expected)?;
            } else {
                let reply: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                if reply.get("batchItemFailures").is_none() {
                    return Err(format!("{name}: not an SQS batch response: {reply}"));
                }
            }
            first_response_ms.push(times.first_response_ms);
            init_ms.push(times.init_ms);
            if name == "inference" && attempt == 0 {
                // Warm requests on the same process, then its peak memory with the model loaded.
                let mut warm = Vec::new();
                for _ in 0..200 {
                    let started = Instant::now();
                    let outcome = function
                        .runtime
                        .invoke(&event, Duration::from_secs(30))
                        .await?;
                    warm.push(started.elapsed().as_secs_f64() * 1000.0);
                    match outcome {
                        Outcome::Response(bytes) => {
                            expect_status(name, &bytes, 200)?;
                        }
                        Outcome::Error(bytes) => {
                            return Err(String::from_utf8_lossy(&bytes).into_owned());
                        }
                    }
                }
                let rss = function.peak_rss_mb().ok_or("no /proc status")?;
                entry.insert("warm_invoke_p50_ms".into(), json!(median(warm)));
                entry.insert("peak_rss_mb".into(), json!(rss));
                entry.insert("peak_rss_target_mb".into(), json!(TARGET_INFERENCE_RSS_MB));
            }
        }
        let best = first_response_ms
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        entry.insert("binary_bytes".into(), json!(size));
        entry.insert(
            "binary_mb".into(),
            json!((size as f64 / 1_048_576.0 * 10.0).round() / 10.0),
        );
        entry.insert(
            "init_to_first_response_ms_median".into(),
            json!(median(first_response_ms.clone())),
        );
        entry.insert("init_to_first_response_ms_min".into(), json!(best));
        entry.insert("init_ms_median".into(), json!(median(init_ms)));
        entry.insert("cold_starts".into(), json!(first_response_ms.len()));
        match name {
            "inference" => {
                entry.insert("init_target_ms".into(), json!(TARGET_INFERENCE_INIT_MS));
                entry.insert("binary_target_mb".into(), json!(TARGET_API_BINARY_MB));
            }
            "keys" | "datasets" | "models" => {
                entry.insert("init_target_ms".into(), json!(TARGET_API_INIT_MS));
                entry.insert("binary_target_mb".into(), json!(TARGET_API_BINARY_MB));
            }
            _ => {}
        }
        functions.insert(name.to_owned(), Value::Object(entry));
    }
    let upload_mb: u64 = arg(args, "--upload-mb")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let large_upload = if upload_mb > 0 {
        large_upload(&bin_dir, upload_mb).await?
    } else {
        Value::Null
    };
    Ok(json!({
        "bench": "lambda",
        "storage": "DynamoDB/S3/SQS on moto (loopback)",
        "model": "titanic, default build, loaded from S3 on the inference cold start",
        "bin_dir": bin_dir.display().to_string(),
        "functions": functions,
        "large_upload": large_upload,
    }))
}

async fn bearer_of_new_account(aws: &AwsBackends) -> Result<String, String> {
    let (_, issued) = create_account_with_admin_key(
        aws.backends.store.as_ref(),
        NewAccount {
            name: "bench-upload".to_owned(),
            tier: Tier::Enterprise,
            rate_limit_per_minute: None,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(format!("Bearer {}", issued.secret))
}

/// A CSV of about `bytes` bytes: 8 columns of 14-character numbers (under the 40 million cell
/// bound up to 500 MB), and its row count.
fn synthetic_csv(bytes: u64) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(bytes as usize + 256);
    out.extend_from_slice(b"a,b,c,d,e,f,g,h\n");
    let mut rows = 0u64;
    while (out.len() as u64) < bytes {
        use std::io::Write as _;
        let base = rows.wrapping_mul(2_654_435_761) % 1_000_000;
        let _ = writeln!(
            out,
            "{0}.1234567,{1}.2345678,{2}.3456789,{3}.4567890,{0}.5678901,{1}.6789012,{2}.7890123,{3}.8901234",
            100_000 + base,
            100_000 + (base * 7) % 900_000,
            100_000 + (base * 13) % 900_000,
            100_000 + rows % 900_000
        );
        rows += 1;
    }
    (out, rows)
}

/// The `--upload-mb` phase (see the module doc): the datasets and tasks functions on their own
/// moto resources with a task queue, its event source feeding the tasks function.
async fn large_upload(bin_dir: &Path, mb: u64) -> Result<Value, String> {
    let aws = integration_tests::aws_backends_with_tasks("bench-large-upload")
        .await
        .ok_or("moto is not configured")?;
    let bearer = bearer_of_new_account(&aws).await?;
    let env = lambda_stack::function_env(&aws);
    let path = |name: &str| bin_dir.join(name).display().to_string();
    let datasets = lambda_stack::start_function(&path("datasets"), "datasets", &env).await;
    let tasks = lambda_stack::start_function(&path("tasks"), "tasks", &env).await;
    let (task_queue, _) = aws.resources.task_queues.clone().ok_or("no task queue")?;
    let _trigger = integration_tests::apigw::SqsTrigger::start(
        aws_sdk_sqs::Client::new(&aws.sdk),
        task_queue,
        tasks.runtime.clone(),
    );
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let call = |method: &str, path: &str, body: Option<Vec<u8>>| {
        let event = http_api_event(method, path, &headers, body.as_deref());
        let runtime = datasets.runtime.clone();
        async move {
            match runtime.invoke(&event, Duration::from_secs(30)).await? {
                Outcome::Response(bytes) => HttpApiResponse::parse(&bytes),
                Outcome::Error(bytes) => Err(String::from_utf8_lossy(&bytes).into_owned()),
            }
        }
    };
    let (csv, rows) = synthetic_csv(mb * 1_000_000);
    let size = csv.len();
    let body = json!({"name": "large", "format": "csv", "size_bytes": size}).to_string();
    let session = call("POST", "/datasets/uploads", Some(body.into_bytes())).await?;
    if session.status != 201 {
        return Err(format!("creating the session: {}", session.json()));
    }
    let session = session.json();
    let upload_id = session["upload_id"]
        .as_str()
        .ok_or("no upload_id")?
        .to_owned();
    let upload_url = session["upload_url"]
        .as_str()
        .ok_or("no upload_url")?
        .to_owned();
    let started = Instant::now();
    let put = reqwest::Client::new()
        .put(&upload_url)
        .body(csv)
        .send()
        .await
        .map_err(|e| format!("PUT to moto: {e}"))?;
    if !put.status().is_success() {
        return Err(format!("PUT to moto: {}", put.status()));
    }
    let put_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let complete = call(
        "POST",
        &format!("/datasets/uploads/{upload_id}/complete"),
        None,
    )
    .await?;
    let complete_ms = started.elapsed().as_secs_f64() * 1000.0;
    if complete.status != 202 {
        return Err(format!("complete: {} {}", complete.status, complete.json()));
    }
    let status = loop {
        let status = call("GET", &format!("/datasets/uploads/{upload_id}"), None)
            .await?
            .json();
        match status["status"].as_str() {
            Some("completed") => break status,
            Some("failed") => return Err(format!("completion failed: {status}")),
            _ if started.elapsed() > Duration::from_secs(900) => {
                return Err(format!("not completed in 15 minutes: {status}"));
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let completion_s = started.elapsed().as_secs_f64();
    let dataset_id = status["dataset_id"].as_str().ok_or("no dataset_id")?;
    let dataset = call("GET", &format!("/datasets/{dataset_id}"), None)
        .await?
        .json();
    if dataset["row_count"] != json!(rows) {
        return Err(format!(
            "the dataset has {} rows, not {rows}",
            dataset["row_count"]
        ));
    }
    Ok(json!({
        "csv_bytes": size,
        "rows": rows,
        "put_to_s3_seconds": put_s,
        "complete_answer_ms": complete_ms,
        "complete_status": complete.status,
        "queued_to_completed_seconds": completion_s,
        "tasks_peak_rss_mb": peak_rss_mb(tasks.pid()),
        "tasks_memory_mb": 3008,
    }))
}
