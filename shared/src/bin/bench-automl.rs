//! The AutoML benchmark: `bench-automl <datasets-dir> [--out results.json]`.
//!
//! Reads `<datasets-dir>/manifest.json` (the format of `shared/datasets/manifest.json`), and for
//! each dataset builds a model from its train split (all rows not in `NAME.split.json`'s
//! `test_indices`) with the default budget and the intent "predict <target>", scores the
//! holdout, and writes one JSON object keyed by dataset name. Each dataset runs in a child
//! process of this binary so that `peak_rss_mb` is that build's own peak.

use serde_json::{Value, json};
use shared::automl::build::blended_margins;
use shared::automl::features::feature_columns;
use shared::automl::metrics::{self, margins_to_predictions};
use shared::automl::{BuildRequest, Model, SilentObserver, Task, build};
use shared::ingest::table::{Column, ColumnData, ColumnType, MISSING_CODE, Table};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--one") if args.len() == 3 => {
            run_one(Path::new(&args[1]), &args[2]).map(|v| println!("{v}"))
        }
        Some(dir) if !dir.starts_with("--") => {
            let out = args
                .iter()
                .position(|a| a == "--out")
                .and_then(|i| args.get(i + 1))
                .map(PathBuf::from);
            let only: Vec<String> = args
                .iter()
                .position(|a| a == "--only")
                .and_then(|i| args.get(i + 1))
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            run_all(Path::new(dir), out.as_deref(), &only)
        }
        _ => Err(
            "usage: bench-automl <datasets-dir> [--out results.json] [--only name,name]"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-automl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read_manifest(dir: &Path) -> Result<Vec<Value>, String> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let manifest: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    manifest
        .get("datasets")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| format!("{}: no `datasets` array", path.display()))
}

fn run_all(dir: &Path, out: Option<&Path>, only: &[String]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut results = serde_json::Map::new();
    for dataset in read_manifest(dir)? {
        let Some(name) = dataset.get("name").and_then(Value::as_str) else {
            continue;
        };
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("bench-automl: {name} …");
        let child = std::process::Command::new(&exe)
            .arg("--one")
            .arg(dir)
            .arg(name)
            .output()
            .map_err(|e| format!("{name}: cannot start the child process: {e}"))?;
        let value = if child.status.success() {
            serde_json::from_slice(&child.stdout)
                .unwrap_or_else(|e| json!({ "error": format!("bad child output: {e}") }))
        } else {
            json!({ "error": String::from_utf8_lossy(&child.stderr).trim().to_string() })
        };
        eprintln!("bench-automl: {name}: {value}");
        results.insert(name.to_string(), value);
    }
    let text = serde_json::to_string_pretty(&Value::Object(results)).map_err(|e| e.to_string())?;
    match out {
        Some(path) => {
            std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
        }
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

fn run_one(dir: &Path, name: &str) -> Result<Value, String> {
    let datasets = read_manifest(dir)?;
    let dataset = datasets
        .iter()
        .find(|d| d.get("name").and_then(Value::as_str) == Some(name))
        .ok_or_else(|| format!("no dataset `{name}` in the manifest"))?;
    let field = |k: &str| {
        dataset
            .get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name}: no `{k}`"))
    };
    let target = field("target")?;
    let table = load_csv(&dir.join(field("file")?))?;
    let split: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(field("split_file")?))
            .map_err(|e| format!("{name}: split file: {e}"))?,
    )
    .map_err(|e| format!("{name}: split file: {e}"))?;
    let test: Vec<usize> = split
        .get("test_indices")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{name}: no test_indices"))?
        .iter()
        .filter_map(|v| v.as_u64().map(|i| i as usize))
        .filter(|&i| i < table.n_rows)
        .collect();
    let is_test: std::collections::HashSet<usize> = test.iter().copied().collect();
    let train: Vec<usize> = (0..table.n_rows).filter(|i| !is_test.contains(i)).collect();
    let train_table = table.take_rows(&train);

    let request = BuildRequest::new(format!("predict {target}"));
    let started = Instant::now();
    let output = build(&train_table, &request, &SilentObserver)
        .map_err(|e| format!("{name}: build failed: {e}"))?;
    let build_seconds = started.elapsed().as_secs_f64();

    let pipeline = &output.pipeline;
    let cols = feature_columns(&pipeline.inputs, &pipeline.features, &table, &test)
        .map_err(|e| e.to_string())?;
    let models: Vec<(f64, &Model)> = pipeline
        .weights
        .iter()
        .copied()
        .zip(&pipeline.models)
        .collect();
    let margins = blended_margins(
        &models,
        &pipeline.features,
        &cols,
        test.len(),
        pipeline.task.n_outputs(),
    );
    let preds = margins_to_predictions(&pipeline.task, &margins);
    let target_col = table
        .column(target)
        .ok_or_else(|| format!("{name}: no column {target}"))?;
    let metrics = score_holdout(&pipeline.task, target_col, &test, &preds);

    Ok(json!({
        "metrics": metrics,
        "build_seconds": round3(build_seconds),
        "peak_rss_mb": peak_rss_mb(),
        "algorithm": output.algorithm,
        "tract_batch1_us": null,
        "tract_rows_per_s": null,
        "validation_score": output.validation_score,
        "leaderboard": output.leaderboard,
    }))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Manifest metric names: accuracy, macro_f1, roc_auc (binary; positive = second label in
/// sorted order) / rmse, mae, r2.
fn score_holdout(
    task: &Task,
    target: &Column,
    rows: &[usize],
    preds: &[f64],
) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    let truth: Vec<Option<String>> = rows.iter().map(|&r| cell_text(target, r)).collect();
    match task {
        Task::Regression => {
            let (y, p): (Vec<f64>, Vec<f64>) = truth
                .iter()
                .zip(preds)
                .filter_map(|(t, &p)| {
                    t.as_ref()
                        .and_then(|t| t.parse::<f64>().ok())
                        .map(|y| (y, p))
                })
                .unzip();
            out.insert("rmse", metrics::rmse(&y, &p));
            out.insert("mae", metrics::mae(&y, &p));
            out.insert("r2", metrics::r2(&y, &p));
        }
        Task::Binary { .. } | Task::Multiclass { .. } => {
            let labels: Vec<String> = match task {
                Task::Binary { labels } => labels.to_vec(),
                Task::Multiclass { labels } => labels.clone(),
                Task::Regression => Vec::new(),
            };
            let k = labels.len();
            let index: HashMap<&str, usize> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.as_str(), i))
                .collect();
            let mut y = Vec::new();
            let mut probs = Vec::new();
            for (t, p) in truth.iter().zip(preds.chunks(k)) {
                // A test label never seen in training counts as a miss (class index k).
                let Some(t) = t else { continue };
                y.push(index.get(t.as_str()).copied().unwrap_or(k));
                probs.extend_from_slice(p);
            }
            let pred = metrics::predicted_classes(&probs, k);
            out.insert("accuracy", metrics::accuracy(&y, &pred));
            out.insert("macro_f1", metrics::macro_f1(&y, &pred, k));
            if k == 2 {
                let mut sorted = labels.clone();
                sorted.sort();
                let positive = index.get(sorted[1].as_str()).copied().unwrap_or(1);
                let scores: Vec<f64> = probs.chunks(2).map(|p| p[positive]).collect();
                out.insert("roc_auc", metrics::roc_auc(&y, &scores, positive));
            }
        }
    }
    out
}

fn cell_text(column: &Column, row: usize) -> Option<String> {
    shared::automl::task::label_of(column, row)
}

/// Peak resident set of this process (Linux `VmHWM`), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

/// A plain CSV reader for the bench (header row, empty field = missing): a column is numeric
/// when every present value parses as a number, else text.
fn load_csv(path: &Path) -> Result<Table, String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for record in reader.records() {
        let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
        for (i, column) in cells.iter_mut().enumerate() {
            column.push(record.get(i).unwrap_or("").trim().to_string());
        }
    }
    let n_rows = cells.first().map_or(0, Vec::len);
    let columns = headers
        .into_iter()
        .zip(cells)
        .map(|(name, values)| {
            let parsed: Option<Vec<f64>> = values
                .iter()
                .map(|v| {
                    if v.is_empty() {
                        Some(f64::NAN)
                    } else {
                        v.parse::<f64>().ok().filter(|x| x.is_finite())
                    }
                })
                .collect();
            match parsed {
                Some(nums) => {
                    let whole = nums.iter().all(|x| x.is_nan() || x.fract() == 0.0);
                    let kind = if whole {
                        ColumnType::Integer
                    } else {
                        ColumnType::Float
                    };
                    Column {
                        name,
                        kind,
                        data: ColumnData::Numeric(nums),
                    }
                }
                None => {
                    let mut levels: Vec<String> = Vec::new();
                    let mut index: HashMap<String, u32> = HashMap::new();
                    let codes = values
                        .into_iter()
                        .map(|v| {
                            if v.is_empty() {
                                return MISSING_CODE;
                            }
                            *index.entry(v.clone()).or_insert_with(|| {
                                levels.push(v);
                                (levels.len() - 1) as u32
                            })
                        })
                        .collect();
                    Column {
                        name,
                        kind: ColumnType::String,
                        data: ColumnData::Categorical { codes, levels },
                    }
                }
            }
        })
        .collect();
    Ok(Table { columns, n_rows })
}
