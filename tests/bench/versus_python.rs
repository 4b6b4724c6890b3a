//! Bench: single-row predictions of `plexe serve` against the server a Python user would write
//! for the same job (FastAPI + uvicorn[standard] + onnxruntime, one worker, no key, serving
//! the very ONNX file plexe trained: `bench/versus_python/server.py`).
//!
//! Starts `plexe serve` (the binary from `--plexe`, default beside this one) on a temporary data
//! dir, makes an enterprise account (unmetered: the Python server has no limits either), uploads
//! the shared titanic table, builds from the intent, deploys, downloads the artifact and starts
//! the Python server on it. Then, for each of `--runs` rounds (default 3), at 1 and at 64
//! connections, it drives each server in turn for `--seconds` (default 10, after 2 s of
//! warm-up) with the same row, from keep-alive HTTP/1.1 connections on one client thread
//! (a wrk-like client: the request formatted once, each answer parsed in place with httparse,
//! so the client costs little of the two cores), and records requests/s, p50 and p99.
//!
//! The CPU plexe spends per keyed request is its process's user + system time over a run at 64
//! connections divided by its requests (at one connection the runtime's idle workers also spin
//! between requests); the model's own share is the same row through the same plan in-process
//! ([`shared::serving::OnnxModel`]), so what is left is the request's cost outside the model. Prints one JSON object (and writes it to `--out`).
//!
//! Run (release binaries): `cargo build --release -p functions --bin plexe -p integration-tests
//! --bin bench-versus-python && target/release/bench-versus-python --out versus.json`. The
//! Python server's packages (`bench/versus_python/requirements.txt`) are installed into the
//! test venv (`./.venv`, which `tests/run.sh` creates) when missing.

use bytes::Bytes;
use integration_tests::serve_process::{
    ServeProcess, arg, datasets_dir, free_port, json_call, memory_mb, plexe_binary, repo_root,
};
use serde_json::{Map, Value, json};
use shared::serving::OnnxModel;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONNECTIONS: [usize; 2] = [1, 64];
const WARMUP: Duration = Duration::from_secs(2);
const TARGET_RATIO: f64 = 2.0;
const TARGET_OUTSIDE_MODEL_US: f64 = 100.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = arg(&args, "--runs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seconds: u64 = arg(&args, "--seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // One client thread: the load generator takes at most one of the machine's cores.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench-versus-python: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = plexe_binary(arg(&args, "--plexe")).and_then(|plexe| {
        runtime.block_on(run(
            &plexe,
            runs.max(1),
            Duration::from_secs(seconds.max(1)),
        ))
    });
    match outcome {
        Ok(report) => {
            let text = serde_json::to_string_pretty(&report).unwrap_or_default();
            println!("{text}");
            if let Some(out) = arg(&args, "--out")
                && let Err(e) = std::fs::write(&out, &text)
            {
                eprintln!("bench-versus-python: writing {out}: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-versus-python: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The Python server, killed on drop.
struct PythonServer(Child);

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test venv's python with the FastAPI server's packages (installed when missing).
fn python_with_fastapi() -> Result<PathBuf, String> {
    let python = repo_root().join(".venv/bin/python");
    if !python.is_file() {
        return Err(format!(
            "no test venv at {} (tests/run.sh creates it)",
            python.display()
        ));
    }
    let has = Command::new(&python)
        .args([
            "-c",
            "import fastapi, uvicorn, uvloop, httptools, onnxruntime",
        ])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("running {}: {e}", python.display()))?;
    if !has.success() {
        let requirements = repo_root().join("tests/bench/versus_python/requirements.txt");
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements)
            .status()
            .map_err(|e| format!("pip: {e}"))?;
        if !status.success() {
            return Err(format!("pip install -r {} failed", requirements.display()));
        }
    }
    Ok(python)
}

async fn start_python(model: &Path) -> Result<(PythonServer, String), String> {
    let python = python_with_fastapi()?;
    let port = free_port()?;
    let child = Command::new(python)
        .arg(repo_root().join("tests/bench/versus_python/server.py"))
        .arg(model)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting the Python server: {e}"))?;
    let server = PythonServer(child);
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(&address).await.is_err() {
        if Instant::now() > deadline {
            return Err("the Python server did not start listening in 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((server, address))
}

/// user + system CPU time of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64, String> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("unexpected /proc/{pid}/stat"))
    };
    // utime and stime are fields 14 and 15 of stat(5), 11 and 12 after the name and state.
    let hz = 100.0; // USER_HZ on Linux
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// One POST of the row (or a GET when the body is empty), as both servers take it.
struct Target {
    address: String,
    path: String,
    authorization: Option<String>,
    body: Bytes,
}

impl Target {
    /// The request's bytes, formatted once: every request on a connection is the same.
    fn request_bytes(&self) -> Vec<u8> {
        let method = if self.body.is_empty() { "GET" } else { "POST" };
        let mut head = format!(
            "{method} {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n",
            self.path,
            self.address,
            self.body.len()
        );
        if let Some(auth) = &self.authorization {
            head.push_str(&format!("authorization: {auth}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

#[derive(Default)]
struct Sample {
    latencies_us: Vec<u32>,
    errors: u64,
}

/// Reads one answer from `stream` into `buf` (cleared first): its status and body. The answer
/// must carry a Content-Length, as both servers' do for a JSON body.
async fn read_answer(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> Result<(u16, std::ops::Range<usize>), String> {
    buf.clear();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut answer = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = answer
            .parse(buf)
            .map_err(|e| format!("unreadable answer: {e}"))?
        {
            let status = answer.code.unwrap_or(0);
            let length = answer
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| {
                    std::str::from_utf8(h.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .ok_or("the answer has no Content-Length")?;
            let end = head_len + length;
            while buf.len() < end {
                read_more(stream, buf).await?;
            }
            return Ok((status, head_len..end));
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 8192];
    let n = stream
        .read(&mut chunk)
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    if n == 0 {
        return Err("the server closed the connection".into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// One keep-alive connection sending the same request until `until`, one at a time, like wrk:
/// the request is formatted once and each answer is parsed in place, so the client's own cost
/// per request is a write, a read and a scan (hyper's client, with its connection task and a
/// request built each time, cost about as much CPU per request as the server under test).
async fn drive_connection(
    target: &Target,
    measure_from: Instant,
    until: Instant,
) -> Result<Sample, String> {
    let mut stream = tokio::net::TcpStream::connect(&target.address)
        .await
        .map_err(|e| format!("connect {}: {e}", target.address))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let request = target.request_bytes();
    let mut buf = Vec::with_capacity(8192);
    let mut sample = Sample::default();
    loop {
        let started = Instant::now();
        if started >= until {
            return Ok(sample);
        }
        stream
            .write_all(&request)
            .await
            .map_err(|e| format!("sending the request: {e}"))?;
        let (status, body) = read_answer(&mut stream, &mut buf).await?;
        if started >= measure_from {
            if status == 200 {
                let us = started.elapsed().as_micros();
                sample
                    .latencies_us
                    .push(u32::try_from(us).unwrap_or(u32::MAX));
            } else {
                if sample.errors == 0 {
                    eprintln!(
                        "bench-versus-python: {} answered {status}: {}",
                        target.address,
                        String::from_utf8_lossy(&buf[body])
                    );
                }
                sample.errors += 1;
            }
        }
    }
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted_us.len() - 1) as f64).round() as usize;
    f64::from(sorted_us[rank.min(sorted_us.len() - 1)]) / 1000.0
}

/// `connections` keep-alive connections sending the row for `length` after the warm-up.
async fn load(target: &Target, connections: usize, length: Duration) -> Result<Value, String> {
    let measure_from = Instant::now() + WARMUP;
    let until = measure_from + length;
    let tasks = (0..connections).map(|_| drive_connection(target, measure_from, until));
    let samples = futures::future::join_all(tasks).await;
    let mut latencies = Vec::new();
    let mut errors = 0;
    for sample in samples {
        let sample = sample?;
        latencies.extend(sample.latencies_us);
        errors += sample.errors;
    }
    latencies.sort_unstable();
    let requests = latencies.len() as f64;
    Ok(json!({
        "connections": connections,
        "requests": latencies.len(),
        "errors": errors,
        "requests_per_s": requests / length.as_secs_f64(),
        "p50_ms": percentile_ms(&latencies, 50.0),
        "p99_ms": percentile_ms(&latencies, 99.0),
    }))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The row's input fields from the first data line of the table (its target left out), typed
/// by the model's input schema.
fn titanic_row(describe: &Value, csv_path: &Path) -> Result<Value, String> {
    let mut reader = csv::Reader::from_path(csv_path).map_err(|e| e.to_string())?;
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let record = reader
        .records()
        .next()
        .ok_or("the table has no rows")?
        .map_err(|e| e.to_string())?;
    let fields = describe["input_schema"]
        .as_array()
        .ok_or_else(|| format!("describe has no input_schema: {describe}"))?;
    let mut row = Map::new();
    for (name, cell) in headers.iter().zip(record.iter()) {
        let Some(field) = fields.iter().find(|f| f["name"] == name) else {
            continue;
        };
        let numeric = matches!(field["type"].as_str(), Some("integer" | "float"));
        let value = match cell.parse::<f64>() {
            Ok(n) if numeric => json!(n),
            _ => json!(cell),
        };
        row.insert(name.to_string(), value);
    }
    Ok(Value::Object(row))
}

/// The mean time of one row through the plan in-process (the model's share of a request).
fn model_us(artifact: &[u8], row: &Value) -> Result<f64, String> {
    let model = OnnxModel::load(artifact).map_err(|e| format!("loading the artifact: {e}"))?;
    let rows = std::slice::from_ref(row);
    for _ in 0..1_000 {
        model.predict_json(rows).map_err(|e| format!("{e:?}"))?;
    }
    let n = 20_000;
    let started = Instant::now();
    for _ in 0..n {
        model.predict_json(rows).map_err(|e| format!("{e:?}"))?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(n))
}

async fn run(plexe: &Path, runs: usize, length: Duration) -> Result<Value, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server = ServeProcess::start(plexe, work.path(), &[])?;
    let key = server.account_key("versus", "enterprise")?;
    let base = server.base_url.clone();
    let client = reqwest::Client::new();
    let csv_path = datasets_dir().join("titanic.csv");
    let csv = std::fs::read(&csv_path).map_err(|e| format!("{}: {e}", csv_path.display()))?;
    let dataset = json_call(
        client
            .post(format!("{base}/datasets?name=titanic"))
            .bearer_auth(&key)
            .header("content-type", "text/csv")
            .body(csv),
    )
    .await?;
    json_call(
        client
            .post(format!("{base}/models/titanic"))
            .bearer_auth(&key)
            .json(&json!({"intent": "predict whether a passenger survived",
                          "dataset_id": dataset["dataset_id"], "time_budget_s": 30})),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let status = json_call(
            client
                .get(format!("{base}/models/titanic/v1.0/status"))
                .bearer_auth(&key),
        )
        .await?;
        match status["status"].as_str() {
            Some("READY") => break,
            Some("ERROR") => return Err(format!("the build failed: {status}")),
            _ if Instant::now() > deadline => return Err("the build took over 600 s".into()),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    json_call(
        client
            .post(format!("{base}/models/titanic/deploy"))
            .bearer_auth(&key)
            .json(&json!({})),
    )
    .await?;
    let describe = json_call(
        client
            .get(format!("{base}/models/titanic/v1.0/describe"))
            .bearer_auth(&key),
    )
    .await?;
    let artifact = client
        .get(format!("{base}/models/titanic/v1.0/artifact"))
        .bearer_auth(&key)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("downloading the artifact: {e}"))?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let model_path = work.path().join("titanic.onnx");
    std::fs::write(&model_path, &artifact).map_err(|e| e.to_string())?;
    let row = titanic_row(&describe, &csv_path)?;
    let body = Bytes::from(serde_json::to_vec(&row).map_err(|e| e.to_string())?);
    let model_us = model_us(&artifact, &row)?;

    let (python, python_address) = start_python(&model_path).await?;
    let plexe_target = Target {
        address: base.trim_start_matches("http://").to_string(),
        path: "/models/titanic/v1.0/infer".into(),
        authorization: Some(format!("Bearer {key}")),
        body: body.clone(),
    };
    let python_target = Target {
        address: python_address,
        path: "/infer".into(),
        authorization: None,
        body,
    };

    // The floor: plexe's unkeyed `/health` from the same client at one connection.
    let health = Target {
        address: plexe_target.address.clone(),
        path: "/health".into(),
        authorization: None,
        body: Bytes::new(),
    };
    let health_run = load(&health, 1, length).await?;
    // A keyed request without a model: GET /me (authentication, rate-limit layer, handler).
    let me = Target {
        address: plexe_target.address.clone(),
        path: "/me".into(),
        authorization: plexe_target.authorization.clone(),
        body: Bytes::new(),
    };
    let me_run = load(&me, 1, length).await?;

    let mut runs_out = Vec::new();
    let mut cpu_per_request_us = Vec::new();
    for round in 1..=runs {
        for connections in CONNECTIONS {
            let cpu_before = cpu_seconds(server.pid())?;
            let plexe_run = load(&plexe_target, connections, length).await?;
            let cpu = cpu_seconds(server.pid())? - cpu_before;
            // The warm-up's requests used CPU too; scale to the measured share of the time.
            let measured_share = length.as_secs_f64() / (length + WARMUP).as_secs_f64();
            let requests = plexe_run["requests"].as_f64().unwrap_or(0.0);
            let cpu_us = cpu * measured_share * 1e6 / requests.max(1.0);
            // Judged under load: at one connection the runtime's workers also spend CPU
            // looking for work between requests, which is not the request's cost.
            if connections == CONNECTIONS[CONNECTIONS.len() - 1] {
                cpu_per_request_us.push(cpu_us);
            }
            let python_run = load(&python_target, connections, length).await?;
            eprintln!(
                "round {round}, {connections} connection(s): plexe {:.0} req/s, python {:.0} req/s",
                plexe_run["requests_per_s"].as_f64().unwrap_or(0.0),
                python_run["requests_per_s"].as_f64().unwrap_or(0.0)
            );
            runs_out.push(json!({
                "round": round,
                "connections": connections,
                "plexe": plexe_run,
                "plexe_cpu_us_per_request": cpu_us,
                "python": python_run,
            }));
        }
    }

    let mut summary = Map::new();
    let mut all_met = true;
    for connections in CONNECTIONS {
        let at = |server: &str, field: &str| -> Vec<f64> {
            runs_out
                .iter()
                .filter(|r| r["connections"] == connections)
                .filter_map(|r| r[server][field].as_f64())
                .collect()
        };
        let plexe_rps = median(at("plexe", "requests_per_s"));
        let python_rps = median(at("python", "requests_per_s"));
        let plexe_p99 = median(at("plexe", "p99_ms"));
        let python_p99 = median(at("python", "p99_ms"));
        let ratio = plexe_rps / python_rps;
        let met = ratio >= TARGET_RATIO && plexe_p99 <= python_p99;
        all_met &= met;
        summary.insert(
            format!("{connections}_connections"),
            json!({
                "plexe_requests_per_s": plexe_rps,
                "python_requests_per_s": python_rps,
                "ratio": ratio,
                "plexe_p50_ms": median(at("plexe", "p50_ms")),
                "python_p50_ms": median(at("python", "p50_ms")),
                "plexe_p99_ms": plexe_p99,
                "python_p99_ms": python_p99,
                "meets_target": met,
            }),
        );
    }
    let cpu_us = median(cpu_per_request_us);
    let outside_model_us = cpu_us - model_us;
    all_met &= outside_model_us <= TARGET_OUTSIDE_MODEL_US;
    let (plexe_peak, _) = server.memory_mb()?;
    let (python_peak, _) = memory_mb(python.0.id())?;
    Ok(json!({
        "bench": "versus_python",
        "dataset": "titanic",
        "seconds_per_run": length.as_secs_f64(),
        "warmup_seconds": WARMUP.as_secs_f64(),
        "target": format!("plexe >= {TARGET_RATIO}x the Python server's requests/s at 1 and 64 connections, p99 no worse; <= {TARGET_OUTSIDE_MODEL_US} us CPU per keyed request outside the model"),
        "summary": summary,
        "plexe_cpu_us_per_request_at_64": cpu_us,
        "model_us_per_row": model_us,
        "plexe_cpu_us_outside_model": outside_model_us,
        "plexe_health_1_connection": health_run,
        "plexe_me_1_connection": me_run,
        "plexe_peak_rss_mb": plexe_peak,
        "python_peak_rss_mb": python_peak,
        "meets_targets": all_met,
        "runs": runs_out,
    }))
}
