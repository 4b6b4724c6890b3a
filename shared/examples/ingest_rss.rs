//! Time and peak memory of reading + profiling one CSV or Parquet file; prints one JSON object.
//!
//! `cargo run -p shared --example ingest_rss -- FILE` (peak RSS comes from the kernel's
//! high-water mark, VmHWM; `/usr/bin/time -v` on the built binary gives the same figure).

use std::path::PathBuf;
use std::time::Instant;

use shared::ingest::{profile, read_csv_path, read_parquet_path};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = PathBuf::from(std::env::args().nth(1).ok_or("usage: ingest_rss FILE.csv|FILE.parquet")?);
    let size_bytes = std::fs::metadata(&path)?.len();
    let started = Instant::now();
    let table = if path.extension().is_some_and(|e| e == "parquet") {
        read_parquet_path(&path)?
    } else {
        read_csv_path(&path)?
    };
    let read_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let columns = profile(&table);
    let profile_seconds = started.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "file": path.display().to_string(),
        "size_bytes": size_bytes,
        "rows": table.n_rows,
        "columns": columns.len(),
        "read_seconds": read_seconds,
        "profile_seconds": profile_seconds,
        "peak_rss_kib": peak_rss_kib(),
        "build_profile": if cfg!(debug_assertions) { "dev" } else { "release" },
    });
    println!("{report}");
    Ok(())
}
