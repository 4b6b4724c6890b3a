//! Time and peak memory of reading + profiling one CSV or Parquet file; prints one JSON object.
//!
//! ```sh
//! cargo run --release -p shared --example ingest_rss -- FILE.csv|FILE.parquet
//! # or: build a bigger CSV first (in a temp dir) by repeating SOURCE's data rows up to ROWS rows,
//! # each prefixed with a unique row id, then measure that file:
//! cargo run --release -p shared --example ingest_rss -- --synthesize 330000 ../shared/datasets/diamonds.csv
//! ```
//!
//! Peak RSS is the kernel's high-water mark for this process (VmHWM). Synthesis streams line by
//! line, so it adds next to nothing; `rss_before_read_kib` shows the baseline anyway.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use shared::ingest::{preview_rows, profile, read_csv_path, read_parquet_path};

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Write `rows` data rows to `out`: SOURCE's header with a `row_id` column in front, then its
/// data rows repeated as often as needed, each with a unique id.
fn synthesize(source: &Path, rows: usize, out: &Path) -> std::io::Result<()> {
    let mut writer = BufWriter::new(File::create(out)?);
    let mut written = 0usize;
    let mut header_done = false;
    while written < rows {
        let mut lines = BufReader::new(File::open(source)?).lines();
        let header = lines.next().transpose()?.unwrap_or_default();
        if !header_done {
            writeln!(writer, "row_id,{header}")?;
            header_done = true;
        }
        let mut any = false;
        for line in lines {
            let line = line?;
            if written == rows {
                break;
            }
            writeln!(writer, "{written},{line}")?;
            written += 1;
            any = true;
        }
        if !any {
            return Err(std::io::Error::other("the source has no data rows"));
        }
    }
    writer.flush()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: ingest_rss FILE.csv|FILE.parquet | ingest_rss --synthesize ROWS SOURCE.csv";
    // Kept alive until the end so the synthesized file is deleted afterwards.
    let _temp_dir;
    let path = match args.as_slice() {
        [flag, rows, source] if flag == "--synthesize" => {
            let rows: usize = rows.parse().map_err(|_| usage)?;
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("synthesized.csv");
            synthesize(Path::new(source), rows, &path)?;
            _temp_dir = dir;
            path
        }
        [file] => PathBuf::from(file),
        _ => return Err(usage.into()),
    };
    let size_bytes = std::fs::metadata(&path)?.len();
    let rss_before_read_kib = status_kib("VmRSS:");
    let started = Instant::now();
    let table = if path.extension().is_some_and(|e| e == "parquet") {
        read_parquet_path(&path)?
    } else {
        read_csv_path(&path)?
    };
    let read_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let columns = profile(&table);
    let preview = preview_rows(&table, 20);
    let profile_seconds = started.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:");
    let report = serde_json::json!({
        "file": path.display().to_string(),
        "size_bytes": size_bytes,
        "rows": table.n_rows,
        "columns": columns.len(),
        "preview_rows": preview.len(),
        "column_types": columns.iter().map(|c| format!("{}:{:?}", c.name, c.kind)).collect::<Vec<_>>(),
        "read_seconds": read_seconds,
        "profile_seconds": profile_seconds,
        "rss_before_read_kib": rss_before_read_kib,
        "peak_rss_kib": peak,
        "peak_rss_over_file_size": peak.map(|kib| (kib * 1024) as f64 / size_bytes.max(1) as f64),
        "build_profile": if cfg!(debug_assertions) { "dev" } else { "release" },
    });
    println!("{report}");
    Ok(())
}
