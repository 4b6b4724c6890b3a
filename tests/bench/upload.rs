//! Bench: a large CSV through an upload session on the local server, and the server's peak
//! memory while it takes it.
//!
//! Starts the real `plexe serve` binary (`--plexe PATH`, default: `plexe` beside this binary in
//! the same target directory) on a temporary data directory, generates a synthetic CSV (numeric and
//! string columns, 100 MB by default) in a temporary directory, creates an upload session with
//! the file's size and SHA-256, PUTs the file to the returned URL (streamed from disk),
//! completes the session, and prints one JSON line with the timings and the server process's
//! peak RSS (`VmHWM` from `/proc/<pid>/status`), also written to `--out FILE` when given.
//!
//! Run: `cargo build --workspace --bins && target/debug/bench-upload --mb 100 --out upload.json`
//! (`--release` for representative timings; memory is the same).

use integration_tests::serve_process::{ServeProcess, memory_mb, plexe_binary};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

const TARGET_PEAK_RSS_MB: f64 = 300.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
    let mb: u64 = flag("--mb").and_then(|v| v.parse().ok()).unwrap_or(100);
    match plexe_binary(flag("--plexe")).and_then(|plexe| run(mb, &plexe)) {
        Ok(report) => {
            println!("{report}");
            if let Some(out) = flag("--out")
                && let Err(e) = std::fs::write(&out, format!("{report:#}\n"))
            {
                eprintln!("bench-upload: writing {out}: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-upload: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes a CSV of at least `target_bytes` and returns (rows, bytes, sha256 hex).
fn generate_csv(path: &Path, target_bytes: u64) -> Result<(u64, u64, String), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("creating the CSV: {e}"))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut rows = 0u64;
    let mut line = String::with_capacity(256);
    let header = "id,amount,ratio,score,temperature,region,segment,active,comment\n";
    fn emit(
        text: &str,
        out: &mut std::io::BufWriter<std::fs::File>,
        hasher: &mut Sha256,
        written: &mut u64,
    ) -> Result<(), String> {
        hasher.update(text.as_bytes());
        *written += text.len() as u64;
        out.write_all(text.as_bytes()).map_err(|e| e.to_string())
    }
    emit(header, &mut out, &mut hasher, &mut written)?;
    const REGIONS: [&str; 5] = ["north", "south", "east", "west", "central"];
    const SEGMENTS: [&str; 4] = ["retail", "wholesale", "online", "partner"];
    // A small linear congruential generator: deterministic and dependency-free.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 11
    };
    while written < target_bytes {
        let r = next();
        line.clear();
        use std::fmt::Write as _;
        let _ = writeln!(
            line,
            "{rows},{:.2},{:.4},{},{:.1},{},{},{},note {}",
            (r % 1_000_000) as f64 / 100.0,
            (next() % 10_000) as f64 / 10_000.0,
            next() % 1000,
            (next() % 800) as f64 / 10.0 - 20.0,
            REGIONS[(r % 5) as usize],
            SEGMENTS[(r % 4) as usize],
            if r % 3 == 0 { "true" } else { "false" },
            r % 50,
        );
        emit(&line, &mut out, &mut hasher, &mut written)?;
        rows += 1;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok((rows, written, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run(mb: u64, plexe: &Path) -> Result<serde_json::Value, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let csv_path = work.path().join("big.csv");

    let t0 = Instant::now();
    let (rows, bytes, sha256) = generate_csv(&csv_path, mb * 1024 * 1024)?;
    let generate_s = t0.elapsed().as_secs_f64();

    let server = ServeProcess::start(plexe, work.path(), &[])?;
    let pid = server.pid();
    let (base_url, key) = (server.base_url.clone(), server.admin_key.clone());
    let (_, rss_idle_mb) = memory_mb(pid)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (put_s, peak_after_put_mb, complete_s, dataset) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(1800))
            .build()
            .map_err(|e| e.to_string())?;
        let session: serde_json::Value = client
            .post(format!("{base_url}/datasets/uploads"))
            .bearer_auth(&key)
            .json(&serde_json::json!({
                "name": "bench", "format": "csv", "size_bytes": bytes, "sha256": sha256
            }))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let url = session["upload_url"]
            .as_str()
            .ok_or_else(|| format!("no upload_url in {session}"))?
            .to_owned();
        let upload_id = session["upload_id"].as_str().unwrap_or_default().to_owned();

        let t = Instant::now();
        let file = tokio::fs::File::open(&csv_path)
            .await
            .map_err(|e| e.to_string())?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            256 * 1024,
        ));
        let put = client
            .put(&url)
            .header("content-length", bytes)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !put.status().is_success() {
            return Err(format!("PUT answered {}", put.status()));
        }
        let put_s = t.elapsed().as_secs_f64();
        // The PUT alone: streaming means this stays near the idle figure.
        let (peak_after_put_mb, _) = memory_mb(pid)?;

        let t = Instant::now();
        let response = client
            .post(format!("{base_url}/datasets/uploads/{upload_id}/complete"))
            .bearer_auth(&key)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let dataset: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        if status.as_u16() != 201 {
            return Err(format!("complete answered {status}: {dataset}"));
        }
        Ok::<_, String>((put_s, peak_after_put_mb, t.elapsed().as_secs_f64(), dataset))
    })?;
    let (peak_mb, rss_after_mb) = memory_mb(pid)?;
    drop(server);
    let row_count = dataset["row_count"].as_u64().unwrap_or(0);
    // What one in-memory copy of the parsed table takes (ingest's layout: f64 per numeric cell,
    // u32 code per string cell, plus the distinct strings): peak minus idle against this says
    // how many copies completion holds at once.
    let table_mb = dataset["columns"]
        .as_array()
        .map(|columns| {
            columns
                .iter()
                .map(|c| match c["type"].as_str() {
                    Some("string") => 4.0 * row_count as f64,
                    _ => 8.0 * row_count as f64,
                })
                .sum::<f64>()
        })
        .unwrap_or(0.0)
        / (1024.0 * 1024.0);
    Ok(serde_json::json!({
        "bench": "upload_session_local",
        "server": plexe.display().to_string(),
        "file_mb": bytes as f64 / (1024.0 * 1024.0),
        "file_bytes": bytes,
        "rows": rows,
        "columns": dataset["columns"].as_array().map(Vec::len),
        "row_count_matches": row_count == rows,
        "sha256_matches": dataset["sha256"] == sha256.as_str(),
        "generate_seconds": generate_s,
        "put_seconds": put_s,
        "complete_seconds": complete_s,
        "upload_total_seconds": put_s + complete_s,
        "server_rss_idle_mb": rss_idle_mb,
        "server_rss_after_mb": rss_after_mb,
        "server_peak_rss_after_put_mb": peak_after_put_mb,
        "server_peak_rss_mb": peak_mb,
        "table_in_memory_mb": table_mb,
        "target_peak_rss_mb": TARGET_PEAK_RSS_MB,
        "under_target": peak_mb < TARGET_PEAK_RSS_MB,
    }))
}
