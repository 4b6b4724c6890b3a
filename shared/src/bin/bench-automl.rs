//! The AutoML benchmark:
//! `bench-automl <datasets-dir> [--out results.json] [--onnx-dir DIR] [--only a,b] [--ort-python PY]
//! [--time-budget SECONDS]`.
//!
//! Reads `<datasets-dir>/manifest.json` (the format of `shared/datasets/manifest.json`), and for
//! each dataset builds a model from its train split (all rows not in `NAME.split.json`'s
//! `test_indices`) with the default request (intent "predict <target>", default budget, or
//! `--time-budget`),
//! exports it to `<onnx-dir>/NAME.onnx`, scores the holdout with tract running that file, times
//! tract (median of 1,000 single-row runs; rows/s on a batch of 10,000) and writes one JSON
//! object keyed by dataset name. Each dataset runs in a child process of this binary so that
//! `peak_rss_mb` is that build's own peak.
//!
//! Beside each `NAME.onnx` it leaves `NAME.holdout.json` (the holdout rows as the inputs of
//! `tests/ort/run_ort.py` / `time_ort.py`) and `NAME.tract.json` (tract's outputs on them).
//! With `--ort-python PY` (a Python with onnxruntime and numpy), it also runs onnxruntime on the
//! same files: the agreement with tract on every holdout row and `time_ort.py`'s timings.
//!
//! The budget is a wall clock: a search that runs out of it stops at a candidate that depends
//! on the machine's speed and load. A budget far above what the builds need (say
//! `--time-budget 86400`) makes the ONNX files a function of the data and the code alone, which
//! is what comparing two versions of the engine byte for byte needs.

use serde_json::{Value, json};
use shared::automl::{
    BuildObserver, BuildRequest, LogLevel, SilentObserver, build, label_of, metrics, sort_labels,
};
use shared::ingest::{Column, read_csv_path, read_parquet_path};
use shared::serving::{Batch, BatchOutput, Explainer, OnnxModel, measure};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Single-row runs timed per model, and the rows of the throughput batch.
const SINGLE_RUNS: usize = 1000;
const BATCH_ROWS: usize = 10_000;
/// Agreement bounds between tract and onnxruntime (issue #3).
const PROBABILITY_TOLERANCE: f64 = 1e-5;
const REGRESSION_RELATIVE_TOLERANCE: f64 = 1e-4;

struct Options {
    dir: PathBuf,
    out: Option<PathBuf>,
    onnx_dir: PathBuf,
    only: Vec<String>,
    ort_python: Option<String>,
    /// `None` = the request's default.
    time_budget_s: Option<f64>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--one") if args.len() == 4 || args.len() == 5 => {
            let budget = match args.get(4).map(|b| b.parse::<f64>()) {
                None => Ok(None),
                Some(Ok(b)) => Ok(Some(b)),
                Some(Err(e)) => Err(format!("bad time budget: {e}")),
            };
            budget.and_then(|budget| {
                run_one(Path::new(&args[1]), &args[2], Path::new(&args[3]), budget)
                    .map(|v| println!("{v}"))
            })
        }
        Some(dir) if !dir.starts_with("--") => {
            let value = |flag: &str| {
                args.iter()
                    .position(|a| a == flag)
                    .and_then(|i| args.get(i + 1))
                    .cloned()
            };
            let out = value("--out").map(PathBuf::from);
            let onnx_dir = value("--onnx-dir").map(PathBuf::from).unwrap_or_else(|| {
                out.as_deref()
                    .and_then(Path::parent)
                    .unwrap_or(Path::new("."))
                    .join("bench-onnx")
            });
            let time_budget_s = match value("--time-budget").map(|b| b.parse::<f64>()) {
                None => Ok(None),
                Some(Ok(b)) if b.is_finite() && b >= 1.0 => Ok(Some(b)),
                Some(_) => Err("--time-budget takes a number of seconds, at least 1".to_string()),
            };
            time_budget_s.and_then(|time_budget_s| {
                run_all(&Options {
                    dir: PathBuf::from(dir),
                    out,
                    onnx_dir,
                    only: value("--only")
                        .map(|s| s.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                    ort_python: value("--ort-python"),
                    time_budget_s,
                })
            })
        }
        _ => Err(
            "usage: bench-automl <datasets-dir> [--out results.json] [--onnx-dir DIR] \
                  [--only name,name] [--ort-python PYTHON] [--time-budget SECONDS]"
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

fn run_all(options: &Options) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&options.onnx_dir)
        .map_err(|e| format!("{}: {e}", options.onnx_dir.display()))?;
    let mut results = serde_json::Map::new();
    for dataset in read_manifest(&options.dir)? {
        let Some(name) = dataset.get("name").and_then(Value::as_str) else {
            continue;
        };
        if !options.only.is_empty() && !options.only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("bench-automl: {name} …");
        let mut command = std::process::Command::new(&exe);
        command
            .arg("--one")
            .arg(&options.dir)
            .arg(name)
            .arg(&options.onnx_dir);
        if let Some(budget) = options.time_budget_s {
            command.arg(budget.to_string());
        }
        let child = command
            .output()
            .map_err(|e| format!("{name}: cannot start the child process: {e}"))?;
        let mut value = if child.status.success() {
            serde_json::from_slice(&child.stdout)
                .unwrap_or_else(|e| json!({ "error": format!("bad child output: {e}") }))
        } else {
            json!({ "error": String::from_utf8_lossy(&child.stderr).trim().to_string() })
        };
        if let (Some(python), Some(object)) = (&options.ort_python, value.as_object_mut())
            && !object.contains_key("error")
        {
            let ort = onnxruntime_report(python, &options.onnx_dir, name)
                .unwrap_or_else(|e| json!({ "error": e }));
            object.insert("onnxruntime".into(), ort);
        }
        eprintln!("bench-automl: {name}: {}", summary_line(&value));
        results.insert(name.to_string(), value);
    }
    let text = serde_json::to_string_pretty(&Value::Object(results)).map_err(|e| e.to_string())?;
    match &options.out {
        Some(path) => {
            std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
        }
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

/// The headline figures of one result, for the progress output.
fn summary_line(value: &Value) -> String {
    let mut v = value.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("leaderboard");
    }
    v.to_string()
}

/// The build's log on stderr with the seconds since the build started (`PLEXE_BENCH_LOG=1`):
/// where a build's time goes.
struct StderrObserver {
    started: Instant,
}

impl BuildObserver for StderrObserver {
    fn progress(&self, _percent: u8) {}
    fn log(&self, _level: LogLevel, message: &str) {
        eprintln!("[{:7.2}s] {message}", self.started.elapsed().as_secs_f64());
    }
}

fn run_one(
    dir: &Path,
    name: &str,
    onnx_dir: &Path,
    time_budget_s: Option<f64>,
) -> Result<Value, String> {
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
    let path = dir.join(field("file")?);
    let table = if path.extension().is_some_and(|e| e == "parquet") {
        read_parquet_path(&path)
    } else {
        read_csv_path(&path)
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
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
    let is_test: HashSet<usize> = test.iter().copied().collect();
    let train: Vec<usize> = (0..table.n_rows).filter(|i| !is_test.contains(i)).collect();
    let train_table = table.take_rows(&train);
    let test_table = table.take_rows(&test);
    drop(table);

    let mut request = BuildRequest::new(format!("predict {target}"));
    if let Some(budget) = time_budget_s {
        request.time_budget_s = budget;
    }
    let started = Instant::now();
    let logged = StderrObserver { started };
    let observer: &dyn BuildObserver = if std::env::var_os("PLEXE_BENCH_LOG").is_some() {
        &logged
    } else {
        &SilentObserver
    };
    let output = build(&train_table, &request, observer)
        .map_err(|e| format!("{name}: build failed: {e}"))?;
    let build_seconds = started.elapsed().as_secs_f64();

    let bytes = shared::onnx::export(&output.pipeline, &[])
        .map_err(|e| format!("{name}: export failed: {e}"))?;
    let onnx_path = onnx_dir.join(format!("{name}.onnx"));
    std::fs::write(&onnx_path, &bytes).map_err(|e| format!("{}: {e}", onnx_path.display()))?;
    let model = OnnxModel::load(&bytes).map_err(|e| format!("{name}: tract load: {e}"))?;
    let batch = Batch::from_table(model.input_schema(), &test_table)
        .map_err(|e| format!("{name}: holdout inputs: {e:?}"))?;
    write_json(
        &onnx_dir.join(format!("{name}.holdout.json")),
        &batch.to_ort_json(model.input_schema()),
    )?;
    let served = model
        .run(&batch)
        .map_err(|e| format!("{name}: tract run: {e}"))?;
    write_json(
        &onnx_dir.join(format!("{name}.tract.json")),
        &outputs_json(&served),
    )?;
    let target_column = test_table
        .column(&output.target)
        .ok_or_else(|| format!("{name}: no column {}", output.target))?;
    let metrics = score_holdout(target_column, &served);
    let timing = measure(&model, &batch, SINGLE_RUNS, BATCH_ROWS)
        .map_err(|e| format!("{name}: tract timing: {e}"))?;
    let explained = explanation_cost(&output.pipeline, &model, &batch)
        .map_err(|e| format!("{name}: explanations: {e}"))?;

    Ok(json!({
        "metrics": metrics,
        "build_seconds": round3(build_seconds),
        "time_budget_s": request.budget_s(),
        // #19: a build ends within its budget + 5%.
        "budget_held": build_seconds <= request.budget_s() * 1.05,
        "peak_rss_mb": peak_rss_mb(),
        "algorithm": output.algorithm,
        "tract_batch1_us": round3(timing.batch1_us),
        "tract_rows_per_s": timing.rows_per_s.round(),
        "explain": explained,
        "onnx_file": onnx_path.display().to_string(),
        "onnx_bytes": bytes.len(),
        "train_rows": train.len(),
        "test_rows": test.len(),
        "validation_score": output.validation_score,
        "build_holdout_metrics": output.holdout_metrics,
        "selection_metric": output.metric,
        "leaderboard": output.leaderboard,
    }))
}

/// Holdout rows explained for the batch rate and the additivity gap.
const EXPLAINED_ROWS: usize = 2_000;

/// What `?explain=true` costs on this model: the stored pipeline's size, reading it, one row
/// explained alone (as `infer` does: its trees in parallel), up to [`EXPLAINED_ROWS`] of the
/// holdout (rows in parallel), the model's cost per row in explanation steps and the rows one request may
/// have explained; and the largest gap between a row's base value plus contributions and its
/// raw score.
fn explanation_cost(
    pipeline: &shared::automl::pipeline::Pipeline,
    model: &OnnxModel,
    batch: &Batch,
) -> Result<Value, String> {
    let json = serde_json::to_vec(pipeline).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let explainer = Explainer::load(&json, model).map_err(|e| e.to_string())?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let singles = batch.n_rows.min(200);
    let started = Instant::now();
    for row in 0..singles {
        std::hint::black_box(
            explainer
                .explain(&batch.rows(row..row + 1))
                .map_err(|e| e.to_string())?,
        );
    }
    let row_us = started.elapsed().as_secs_f64() * 1e6 / singles.max(1) as f64;
    // At most EXPLAINED_ROWS of the holdout: a large forest explains a few hundred rows a
    // second, and the largest holdouts have 100,000.
    let some = batch.rows(0..batch.n_rows.min(EXPLAINED_ROWS));
    let started = Instant::now();
    let all = explainer.explain(&some).map_err(|e| e.to_string())?;
    let rows_per_s = some.n_rows as f64 / started.elapsed().as_secs_f64();
    let gap = all
        .iter()
        .flat_map(|e| &e.scores)
        .map(|s| (s.base_value + s.contributions.values().sum::<f64>() - s.raw_score).abs())
        .fold(0.0, f64::max);
    Ok(json!({
        "pipeline_json_bytes": json.len(),
        "load_ms": round3(load_ms),
        "row_us": round3(row_us),
        "rows_per_s": rows_per_s.round(),
        "cost_per_row": explainer.cost_per_row(),
        "max_rows_per_request": explainer.max_rows(),
        "max_sum_gap": gap,
    }))
}

fn write_json(path: &Path, value: &Value) -> Result<(), String> {
    std::fs::write(path, value.to_string()).map_err(|e| format!("{}: {e}", path.display()))
}

/// tract's outputs in the shape `run_ort.py` prints onnxruntime's.
fn outputs_json(out: &BatchOutput) -> Value {
    match out {
        BatchOutput::Regression { values } => json!({ "prediction": values }),
        BatchOutput::Classification {
            labels,
            predicted,
            probabilities,
        } => json!({
            "prediction": predicted,
            "probabilities": probabilities
                .chunks(labels.len().max(1))
                .collect::<Vec<_>>(),
        }),
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Manifest metric names, from what tract returned: accuracy, macro_f1, roc_auc (binary;
/// positive = second label in sorted order) / rmse, mae, r2. Rows without a target are skipped;
/// a test label never seen in training counts as a miss.
fn score_holdout(target: &Column, out: &BatchOutput) -> BTreeMap<&'static str, f64> {
    let mut scores = BTreeMap::new();
    let truth: Vec<Option<String>> = (0..out.len()).map(|r| label_of(target, r)).collect();
    match out {
        BatchOutput::Regression { values } => {
            let (y, p): (Vec<f64>, Vec<f64>) = truth
                .iter()
                .zip(values)
                .filter_map(|(t, &p)| {
                    t.as_ref()
                        .and_then(|t| t.parse::<f64>().ok())
                        .map(|y| (y, f64::from(p)))
                })
                .unzip();
            scores.insert("rmse", metrics::rmse(&y, &p));
            scores.insert("mae", metrics::mae(&y, &p));
            scores.insert("r2", metrics::r2(&y, &p));
        }
        BatchOutput::Classification {
            labels,
            predicted,
            probabilities,
        } => {
            let k = labels.len();
            let index: HashMap<&str, usize> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.as_str(), i))
                .collect();
            let (mut y, mut pred, mut probs) = (Vec::new(), Vec::new(), Vec::new());
            for (r, t) in truth.iter().enumerate() {
                let Some(t) = t else { continue };
                y.push(index.get(t.as_str()).copied().unwrap_or(k));
                pred.push(index.get(predicted[r].as_str()).copied().unwrap_or(k));
                probs.extend(
                    probabilities[r * k..(r + 1) * k]
                        .iter()
                        .map(|&p| f64::from(p)),
                );
            }
            scores.insert("accuracy", metrics::accuracy(&y, &pred));
            scores.insert("macro_f1", metrics::macro_f1(&y, &pred, k));
            if k == 2 {
                let mut sorted = labels.clone();
                sort_labels(&mut sorted);
                let positive = index.get(sorted[1].as_str()).copied().unwrap_or(1);
                let p: Vec<f64> = probs.chunks(2).map(|c| c[positive]).collect();
                scores.insert("roc_auc", metrics::roc_auc(&y, &p, positive));
            }
        }
    }
    scores
}

/// Peak resident set of this process (Linux `VmHWM`), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

/// `tests/ort/<name>` in the source tree this binary was built from.
fn ort_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("ort")
        .join(name)
}

/// onnxruntime on the exported file: agreement with tract on every holdout row, and timings.
fn onnxruntime_report(python: &str, onnx_dir: &Path, name: &str) -> Result<Value, String> {
    let model = onnx_dir.join(format!("{name}.onnx"));
    let inputs = onnx_dir.join(format!("{name}.holdout.json"));
    let run = |script: &str, extra: &[&str]| -> Result<Value, String> {
        let out = std::process::Command::new(python)
            .arg(ort_script(script))
            .arg(&model)
            .arg(&inputs)
            .args(extra)
            .output()
            .map_err(|e| format!("{python}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{script} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{script}: bad output: {e}"))
    };
    let ort = run("run_ort.py", &[])?;
    let tract: Value = serde_json::from_str(
        &std::fs::read_to_string(onnx_dir.join(format!("{name}.tract.json")))
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let agreement = compare_outputs(&tract, &ort);
    let timing = run("time_ort.py", &["--threads", "2"])?;
    Ok(json!({
        "ort_batch1_us": timing.get("ort_batch1_us").and_then(Value::as_f64).map(round3),
        "ort_rows_per_s": timing.get("ort_rows_per_s").and_then(Value::as_f64).map(f64::round),
        "ort_version": timing.get("ort_version"),
        "agreement": agreement,
    }))
}

/// Largest differences between tract's and onnxruntime's outputs on the same rows.
fn compare_outputs(tract: &Value, ort: &Value) -> Value {
    let numbers = |v: &Value| -> Vec<f64> {
        fn walk(v: &Value, out: &mut Vec<f64>) {
            match v {
                Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                Value::Number(n) => out.push(n.as_f64().unwrap_or(f64::NAN)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(v, &mut out);
        out
    };
    if tract.get("probabilities").is_some() {
        let t = numbers(&tract["probabilities"]);
        let o = numbers(&ort["probabilities"]);
        let max_abs = t
            .iter()
            .zip(&o)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let labels_equal = tract["prediction"] == ort["prediction"];
        json!({
            "rows": tract["prediction"].as_array().map_or(0, Vec::len),
            "max_abs_probability_diff": max_abs,
            "labels_equal": labels_equal,
            "ok": t.len() == o.len() && labels_equal && max_abs <= PROBABILITY_TOLERANCE,
        })
    } else {
        let t = numbers(&tract["prediction"]);
        let o = numbers(&ort["prediction"]);
        let max_rel = t
            .iter()
            .zip(&o)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0.0, f64::max);
        json!({
            "rows": t.len(),
            "max_relative_diff": max_rel,
            "ok": t.len() == o.len() && max_rel <= REGRESSION_RELATIVE_TOLERANCE,
        })
    }
}
