//! Bench: prediction latency of the local server over HTTP with keep-alive.
//!
//! Starts the merged app on the embedded backend (what `plexe serve` serves) with the
//! in-process trainer, uploads a shared dataset (titanic by default), builds a model from the
//! intent, deploys it, then measures from one keep-alive client: `infer` (one row, sequential
//! requests: p50/p90/p99/max) and `predictions` with a 10,000-row JSON batch (and the same rows
//! as CSV). Prints one JSON object (and writes it to `--out` when given).
//!
//! Run: `cargo run -p integration-tests --bin bench-inference [-- --requests 2000 --out f.json]`
//! (datasets from `PLEXE_DATASETS_DIR`, default `<repo>/../shared/datasets`).

use integration_tests::{Backend, http_client, start_app};
use serde_json::{Map, Value, json};
use shared::domain::accounts::Tier;
use shared::trainer::Trainer;
use shared::trainer::worker::{self, WorkerOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const TARGET_P50_MS: f64 = 1.0;
const TARGET_BATCH_MS: f64 = 100.0;
const BATCH_ROWS: usize = 10_000;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone())
}

fn datasets_dir() -> PathBuf {
    std::env::var_os("PLEXE_DATASETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets"))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let requests: usize = arg(&args, "--requests")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    match run(requests).await {
        Ok(report) => {
            let text = serde_json::to_string_pretty(&report).unwrap_or_default();
            println!("{text}");
            if let Some(out) = arg(&args, "--out")
                && let Err(e) = std::fs::write(&out, &text)
            {
                eprintln!("bench-inference: writing {out}: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-inference: {e}");
            ExitCode::FAILURE
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    json!({
        "n": ms.len(),
        "p50_ms": percentile(&ms, 50.0),
        "p90_ms": percentile(&ms, 90.0),
        "p99_ms": percentile(&ms, 99.0),
        "max_ms": ms.last().copied().unwrap_or(f64::NAN),
    })
}

async fn run(requests: usize) -> Result<Value, String> {
    let csv_path = datasets_dir().join("titanic.csv");
    let csv = std::fs::read_to_string(&csv_path)
        .map_err(|e| format!("reading {}: {e}", csv_path.display()))?;
    let app = start_app(Backend::Embedded, "bench-inference")
        .await
        .ok_or("no app")?;
    let trainer = Trainer::new(app.state.store.clone(), app.state.blobs.clone());
    let _workers = worker::spawn(
        trainer,
        app.state.queue.clone(),
        WorkerOptions::embedded(),
        1,
    );
    let (_, key) = app.account(Tier::Enterprise).await;
    let client = http_client();
    let call = |method: reqwest::Method, path: &str| {
        client.request(method, app.at(path)).bearer_auth(&key)
    };
    let json_of = |r: reqwest::Response| async move {
        let status = r.status();
        let body: Value = r.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    };

    let dataset = json_of(
        call(reqwest::Method::POST, "/datasets?name=titanic")
            .header("content-type", "text/csv")
            .body(csv.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?,
    )
    .await?;
    let build_started = Instant::now();
    json_of(
        call(reqwest::Method::POST, "/models/titanic")
            .json(&json!({"intent": "predict whether a passenger survived", "dataset_id": dataset["dataset_id"], "time_budget_s": 30}))
            .send()
            .await
            .map_err(|e| e.to_string())?,
    )
    .await?;
    loop {
        let s = json_of(
            call(reqwest::Method::GET, "/models/titanic/v1.0/status")
                .send()
                .await
                .map_err(|e| e.to_string())?,
        )
        .await?;
        match s["status"].as_str() {
            Some("READY") => break,
            Some("ERROR") => return Err(format!("build failed: {s}")),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
        if build_started.elapsed() > Duration::from_secs(600) {
            return Err("build did not finish in 10 minutes".into());
        }
    }
    let build_seconds = build_started.elapsed().as_secs_f64();
    json_of(
        call(reqwest::Method::POST, "/models/titanic/deploy")
            .json(&json!({}))
            .send()
            .await
            .map_err(|e| e.to_string())?,
    )
    .await?;
    let described = json_of(
        call(reqwest::Method::GET, "/models/titanic/v1.0/describe")
            .send()
            .await
            .map_err(|e| e.to_string())?,
    )
    .await?;
    let inputs: Vec<String> = described["input_schema"]
        .as_array()
        .ok_or("no input schema")?
        .iter()
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .collect();

    // Input rows from the file, as a user would send them (cells as text, empty = null).
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let mut rows: Vec<Value> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        let mut object = Map::new();
        for name in &inputs {
            let cell = headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .unwrap_or("");
            object.insert(
                name.clone(),
                if cell.is_empty() {
                    Value::Null
                } else {
                    Value::String(cell.to_string())
                },
            );
        }
        rows.push(Value::Object(object));
    }
    if rows.is_empty() {
        return Err("no rows".into());
    }

    // Single infer: warm up (loads and caches the plan), then sequential requests.
    for row in rows.iter().take(50) {
        json_of(
            call(reqwest::Method::POST, "/models/titanic/v1.0/infer")
                .json(row)
                .send()
                .await
                .map_err(|e| e.to_string())?,
        )
        .await?;
    }
    let mut single = Vec::with_capacity(requests);
    for i in 0..requests {
        let row = &rows[i % rows.len()];
        let started = Instant::now();
        let response = call(reqwest::Method::POST, "/models/titanic/v1.0/infer")
            .json(row)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let _ = response.bytes().await.map_err(|e| e.to_string())?;
        single.push(started.elapsed().as_secs_f64() * 1000.0);
        if !ok {
            return Err(format!("infer failed at request {i}"));
        }
    }

    // 10,000-row batches, JSON and CSV.
    let batch: Vec<Value> = rows.iter().cycle().take(BATCH_ROWS).cloned().collect();
    let batch_body = serde_json::to_vec(&batch).map_err(|e| e.to_string())?;
    let mut csv_batch = inputs.join(",");
    csv_batch.push('\n');
    for row in &batch {
        let cells: Vec<String> = inputs
            .iter()
            .map(|n| {
                row[n]
                    .as_str()
                    .map(|s| format!("\"{s}\""))
                    .unwrap_or_default()
            })
            .collect();
        csv_batch.push_str(&cells.join(","));
        csv_batch.push('\n');
    }
    let mut json_ms = Vec::new();
    let mut csv_ms = Vec::new();
    for _ in 0..12 {
        let started = Instant::now();
        let r = call(reqwest::Method::POST, "/models/titanic/v1.0/predictions")
            .header("content-type", "application/json")
            .body(batch_body.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let ok = r.status();
        let bytes = r.bytes().await.map_err(|e| e.to_string())?;
        json_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if !ok.is_success() {
            return Err(format!(
                "JSON batch failed: {ok} {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        let started = Instant::now();
        let r = call(reqwest::Method::POST, "/models/titanic/v1.0/predictions")
            .header("content-type", "text/csv")
            .body(csv_batch.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let ok = r.status();
        let bytes = r.bytes().await.map_err(|e| e.to_string())?;
        csv_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if !ok.is_success() {
            return Err(format!(
                "CSV batch failed: {ok} {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
    }
    // The first batch of each kind warms allocator and caches; report the rest.
    let single_summary = summary(single);
    let json_summary = summary(json_ms[2..].to_vec());
    let csv_summary = summary(csv_ms[2..].to_vec());
    let p50 = single_summary["p50_ms"].as_f64().unwrap_or(f64::NAN);
    let batch_p50 = json_summary["p50_ms"].as_f64().unwrap_or(f64::NAN);
    Ok(json!({
        "bench": "inference",
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "dataset": "titanic",
        "algorithm": described["training_info"]["algorithm"],
        "build_seconds": build_seconds,
        "infer_single": single_summary,
        "predictions_json_10k_rows": json_summary,
        "predictions_csv_10k_rows": csv_summary,
        "targets": {"infer_p50_ms": TARGET_P50_MS, "batch_10k_ms": TARGET_BATCH_MS},
        "meets_targets": p50 <= TARGET_P50_MS && batch_p50 <= TARGET_BATCH_MS,
        "note": "client and server share the machine's cores; HTTP/1.1 keep-alive, one connection",
    }))
}
