//! Bench: what hostile inputs cost the local server in memory (issue: every request has a
//! bounded memory cost).
//!
//! Starts the real `plexe serve` (`--plexe PATH`, default: `plexe` beside this binary), builds
//! and deploys a small model, then sends, one at a time, with the server's peak RSS reset
//! before each (`/proc/<pid>/clear_refs`):
//! - a 6 MB batch-predictions body of `[{},{},…]` (about two million rows);
//! - a 6 MB batch of 10,000 rows with 76 unknown fields each;
//! - a Parquet file of a few MB whose footer declares 10^9 cells (`POST /datasets`);
//! - a 500 MB CSV through an upload session whose second line opens a quote it never closes.
//!
//! For each it records the status, the error code, the answer's size, the time and the peak
//! RSS, and checks the answer is a 4xx envelope, the peak at most 300 MB, and that the server
//! still answers `/health` and a valid prediction afterwards. Prints one JSON document (also
//! written to `--out FILE`); exits non-zero when a check fails.
//!
//! Run: `cargo build --release -p functions --bin plexe -p integration-tests --bin bench-hostile
//! && target/release/bench-hostile --out hostile.json`

use bytes::Bytes;
use integration_tests::serve_process::{ServeProcess, deploy_small_model, plexe_binary};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

const PEAK_RSS_LIMIT_MB: f64 = 300.0;
/// Bodies stay under the API's 6 MB request limit.
const BODY_BYTES: usize = 6_000_000;
const UPLOAD_BYTES: u64 = 500 * 1024 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
    let report = plexe_binary(flag("--plexe")).and_then(|plexe| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(run(&plexe))
    });
    match report {
        Ok(report) => {
            println!("{report:#}");
            if let Some(out) = flag("--out")
                && let Err(e) = std::fs::write(&out, format!("{report:#}\n"))
            {
                eprintln!("bench-hostile: writing {out}: {e}");
                return ExitCode::FAILURE;
            }
            if report["all_within_bounds"] == true {
                ExitCode::SUCCESS
            } else {
                eprintln!("bench-hostile: a case is out of bounds (see the report)");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("bench-hostile: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `[{},{},…]` of at most [`BODY_BYTES`].
fn empty_rows_body() -> Vec<u8> {
    let rows = (BODY_BYTES - 2) / 3;
    let mut body = Vec::with_capacity(BODY_BYTES);
    body.push(b'[');
    for i in 0..rows {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{}");
    }
    body.push(b']');
    body
}

/// 10,000 rows, each with the model's inputs missing and 76 fields it does not have.
fn unknown_fields_body() -> Vec<u8> {
    let row: Vec<String> = (0..76).map(|i| format!("\"u{i}\":1")).collect();
    let row = format!("{{{}}}", row.join(","));
    format!("[{}]", vec![row; 10_000].join(",")).into_bytes()
}

/// One Int32 column of 10^9 rows, all null: a few MB whose footer declares 10^9 cells.
fn billion_cell_parquet() -> Result<Vec<u8>, String> {
    use arrow_array::{Int32Array, RecordBatch};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    const CHUNK: usize = 10_000_000;
    let column: Arc<dyn arrow_array::Array> = Arc::new(Int32Array::new_null(CHUNK));
    let batch = RecordBatch::try_from_iter([("x", column)]).map_err(|e| e.to_string())?;
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(100_000_000))
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(properties))
        .map_err(|e| e.to_string())?;
    for _ in 0..1_000_000_000 / CHUNK {
        writer.write(&batch).map_err(|e| e.to_string())?;
    }
    writer.close().map_err(|e| e.to_string())?;
    Ok(out)
}

/// The 500 MB CSV, generated as it is sent: a header, a line that opens a quote, then rows.
fn unclosed_quote_stream() -> reqwest::Body {
    const CHUNK: usize = 1 << 20;
    let head = b"a,b\n1,\"never closed\n".to_vec();
    let total = UPLOAD_BYTES as usize;
    let row = b"2,3\n".repeat(CHUNK / 4);
    let stream = futures::stream::unfold(0usize, move |sent| {
        let head = head.clone();
        let row = row.clone();
        async move {
            if sent >= total {
                return None;
            }
            let mut chunk = if sent == 0 { head } else { Vec::new() };
            let rest = (total - sent - chunk.len()).min(CHUNK);
            chunk.extend_from_slice(&row[..rest]);
            let next = sent + chunk.len();
            Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), next))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

struct Case {
    name: &'static str,
    request_bytes: u64,
}

async fn measure(
    server: &ServeProcess,
    case: Case,
    send: impl std::future::Future<Output = Result<reqwest::Response, String>>,
) -> Result<Value, String> {
    server.reset_peak()?;
    let (_, rss_before) = server.memory_mb()?;
    let started = Instant::now();
    let response = send.await?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let (peak, rss_after) = server.memory_mb()?;
    let envelope: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let code = envelope["error"]["code"].as_str().map(str::to_owned);
    let is_envelope = code.is_some() && envelope["error"]["status"] == status;
    let within = (400..500).contains(&status) && is_envelope && peak <= PEAK_RSS_LIMIT_MB;
    Ok(json!({
        "case": case.name,
        "request_bytes": case.request_bytes,
        "status": status,
        "code": code,
        "message": envelope["error"]["message"],
        "answer_bytes": body.len(),
        "seconds": seconds,
        "server_rss_before_mb": rss_before,
        "server_peak_rss_mb": peak,
        "server_rss_after_mb": rss_after,
        "within_bounds": within,
    }))
}

async fn run(plexe: &std::path::Path) -> Result<Value, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut server = ServeProcess::start(plexe, work.path(), &[])?;
    let (base, key) = (server.base_url.clone(), server.admin_key.clone());
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(1800))
        .build()
        .map_err(|e| e.to_string())?;
    deploy_small_model(&client, &base, &key, "hostile").await?;
    let (_, rss_idle) = server.memory_mb()?;
    let predictions = format!("{base}/models/hostile/latest/predictions");
    let post_json = |url: String, body: Vec<u8>| {
        let request = client
            .post(url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body);
        async move { request.send().await.map_err(|e| e.to_string()) }
    };

    let mut cases = Vec::new();
    let body = empty_rows_body();
    let case = Case {
        name: "batch_of_empty_rows_6mb",
        request_bytes: body.len() as u64,
    };
    cases.push(measure(&server, case, post_json(predictions.clone(), body)).await?);

    let body = unknown_fields_body();
    let case = Case {
        name: "batch_10000_rows_76_unknown_fields",
        request_bytes: body.len() as u64,
    };
    cases.push(measure(&server, case, post_json(predictions.clone(), body)).await?);

    let parquet = billion_cell_parquet()?;
    let case = Case {
        name: "parquet_declaring_1e9_cells",
        request_bytes: parquet.len() as u64,
    };
    let request = client
        .post(format!("{base}/datasets?name=billion"))
        .bearer_auth(&key)
        .header("content-type", "application/vnd.apache.parquet")
        .body(parquet);
    cases.push(
        measure(&server, case, async {
            request.send().await.map_err(|e| e.to_string())
        })
        .await?,
    );

    let session: Value = client
        .post(format!("{base}/datasets/uploads"))
        .bearer_auth(&key)
        .json(&json!({"name": "unclosed", "format": "csv", "size_bytes": UPLOAD_BYTES}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let url = session["upload_url"]
        .as_str()
        .ok_or_else(|| format!("no upload_url in {session}"))?;
    let upload_id = session["upload_id"].as_str().unwrap_or_default();
    let put_started = Instant::now();
    let put = client
        .put(url)
        .header("content-length", UPLOAD_BYTES)
        .body(unclosed_quote_stream())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !put.status().is_success() {
        return Err(format!("the PUT answered {}", put.status()));
    }
    let put_seconds = put_started.elapsed().as_secs_f64();
    let case = Case {
        name: "upload_session_500mb_csv_unclosed_quote",
        request_bytes: UPLOAD_BYTES,
    };
    let request = client
        .post(format!("{base}/datasets/uploads/{upload_id}/complete"))
        .bearer_auth(&key);
    let mut measured = measure(&server, case, async {
        request.send().await.map_err(|e| e.to_string())
    })
    .await?;
    measured["put_seconds"] = json!(put_seconds);
    cases.push(measured);

    // Still serving: health, and a valid prediction.
    let health = client
        .get(format!("{base}/health"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .status()
        .as_u16();
    let predict = client
        .post(format!("{base}/models/hostile/latest/infer"))
        .bearer_auth(&key)
        .json(&json!({"a": 5.0, "b": 1.0, "plan": "basic"}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .status()
        .as_u16();
    let serving = server.is_running() && health == 200 && predict == 200;
    let all = serving && cases.iter().all(|c| c["within_bounds"] == true);
    Ok(json!({
        "bench": "hostile_inputs_local",
        "server": plexe.display().to_string(),
        "peak_rss_limit_mb": PEAK_RSS_LIMIT_MB,
        "server_rss_idle_mb": rss_idle,
        "cases": cases,
        "health_after": health,
        "infer_after": predict,
        "still_serving": serving,
        "all_within_bounds": all,
    }))
}
