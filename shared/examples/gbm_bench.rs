//! Trains the GBM with LightGBM's default parameters on the benchmark datasets' train splits and
//! scores the holdout, to compare with the LightGBM baseline in the manifest.
//!
//! `cargo run --release -p shared --example gbm_bench -- <datasets-dir> [--rounds N]
//!  [--threads N] [--out results.json] [NAME ...]`
//!
//! Columns are read the way the baseline protocol reads them: numbers as floats (empty = NaN),
//! anything else as a categorical whose vocabulary comes from the training rows only.

use serde_json::{Value, json};
use shared::automl::gbm::{self, FeatureColumn, FeatureMatrix, GbmParams, Objective};
use std::collections::BTreeMap;
use std::error::Error;
use std::time::Instant;

struct Args {
    dir: String,
    rounds: usize,
    threads: usize,
    out: Option<String>,
    names: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        dir: String::new(),
        rounds: 100,
        threads: 0,
        out: None,
        names: Vec::new(),
    };
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("{what} needs a value"));
        match a.as_str() {
            "--rounds" => parsed.rounds = value("--rounds")?.parse().map_err(|e| format!("{e}"))?,
            "--threads" => {
                parsed.threads = value("--threads")?.parse().map_err(|e| format!("{e}"))?
            }
            "--out" => parsed.out = Some(value("--out")?),
            _ if parsed.dir.is_empty() => parsed.dir = a,
            _ => parsed.names.push(a),
        }
    }
    if parsed.dir.is_empty() {
        return Err(
            "usage: gbm_bench <datasets-dir> [--rounds N] [--threads N] [--out F] [NAME ...]"
                .into(),
        );
    }
    Ok(parsed)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(format!(
        "{}/manifest.json",
        args.dir
    ))?)?;
    let datasets = manifest["datasets"]
        .as_array()
        .ok_or("manifest has no datasets")?;
    let mut results = BTreeMap::new();
    for d in datasets {
        let name = d["name"].as_str().ok_or("dataset without name")?;
        if !args.names.is_empty() && !args.names.iter().any(|n| n == name) {
            continue;
        }
        let r = run(&args, d)?;
        println!("{name}: {r}");
        results.insert(name.to_string(), r);
    }
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&results)?)?;
    }
    Ok(())
}

fn run(args: &Args, d: &Value) -> Result<Value, Box<dyn Error>> {
    let file = d["file"].as_str().ok_or("no file")?;
    let split_file = d["split_file"].as_str().ok_or("no split_file")?;
    let target = d["target"].as_str().ok_or("no target")?;
    let task = d["task"].as_str().ok_or("no task")?;
    let split: Value = serde_json::from_str(&std::fs::read_to_string(format!(
        "{}/{split_file}",
        args.dir
    ))?)?;
    let mut is_test = Vec::new();
    let mut reader = csv::Reader::from_path(format!("{}/{file}", args.dir))?;
    let headers: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for rec in reader.records() {
        let rec = rec?;
        for (c, v) in rec.iter().enumerate() {
            cells[c].push(v.to_string());
        }
    }
    let n = cells[0].len();
    is_test.resize(n, false);
    for i in split["test_indices"].as_array().ok_or("no test_indices")? {
        is_test[i.as_u64().ok_or("bad index")? as usize] = true;
    }
    let train_rows: Vec<usize> = (0..n).filter(|&r| !is_test[r]).collect();
    let test_rows: Vec<usize> = (0..n).filter(|&r| is_test[r]).collect();
    let t = headers
        .iter()
        .position(|h| h == target)
        .ok_or("target not found")?;

    let mut train_cols = Vec::new();
    let mut test_cols = Vec::new();
    for (c, col) in cells.iter().enumerate() {
        if c == t {
            continue;
        }
        let numeric = col.iter().all(|v| v.is_empty() || v.parse::<f32>().is_ok());
        let (a, b) = if numeric {
            let f = |rows: &[usize]| {
                FeatureColumn::numeric(
                    rows.iter()
                        .map(|&r| col[r].parse::<f32>().unwrap_or(f32::NAN))
                        .collect(),
                )
            };
            (f(&train_rows), f(&test_rows))
        } else {
            let mut vocab: Vec<&str> = train_rows
                .iter()
                .map(|&r| col[r].as_str())
                .filter(|v| !v.is_empty())
                .collect();
            vocab.sort_unstable();
            vocab.dedup();
            let f = |rows: &[usize]| {
                FeatureColumn::categorical(
                    rows.iter()
                        .map(|&r| match vocab.binary_search(&col[r].as_str()) {
                            Ok(i) if !col[r].is_empty() => i as f32,
                            _ => f32::NAN,
                        })
                        .collect(),
                    vocab.len() as u32,
                )
            };
            (f(&train_rows), f(&test_rows))
        };
        train_cols.push(a);
        test_cols.push(b);
    }
    let xt = FeatureMatrix {
        n_rows: train_rows.len(),
        columns: train_cols,
    };
    let xv = FeatureMatrix {
        n_rows: test_rows.len(),
        columns: test_cols,
    };
    let ycol = &cells[t];
    let (objective, labels) = if task == "regression" {
        (Objective::Regression, Vec::new())
    } else {
        let mut labels: Vec<&str> = ycol.iter().map(String::as_str).collect();
        labels.sort_unstable();
        labels.dedup();
        let obj = if labels.len() == 2 {
            Objective::Binary
        } else {
            Objective::Multiclass {
                n_classes: labels.len(),
            }
        };
        (obj, labels)
    };
    let y_of = |r: usize| -> Result<f64, Box<dyn Error>> {
        Ok(if labels.is_empty() {
            ycol[r].parse::<f64>()?
        } else {
            labels
                .binary_search(&ycol[r].as_str())
                .map_err(|_| "label")? as f64
        })
    };
    let yt = train_rows
        .iter()
        .map(|&r| y_of(r))
        .collect::<Result<Vec<_>, _>>()?;
    let yv = test_rows
        .iter()
        .map(|&r| y_of(r))
        .collect::<Result<Vec<_>, _>>()?;
    let params = GbmParams {
        n_estimators: args.rounds,
        n_threads: args.threads,
        ..GbmParams::default()
    };
    let start = Instant::now();
    let fit = gbm::train(&xt, &yt, None, &objective, &params, None, None)?;
    let train_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let m = gbm::predict_margins(&fit.ensemble, &xv);
    let predict_seconds = start.elapsed().as_secs_f64();
    let metrics = match objective {
        Objective::Regression => {
            let mse = m
                .iter()
                .zip(&yv)
                .map(|(p, t)| (p[0] - t).powi(2))
                .sum::<f64>()
                / yv.len() as f64;
            json!({ "rmse": mse.sqrt() })
        }
        _ => {
            let correct = m
                .iter()
                .zip(&yv)
                .filter(|(p, t)| {
                    let pred = if p.len() == 1 {
                        usize::from(p[0] > 0.0)
                    } else {
                        let mut best = 0;
                        for (i, v) in p.iter().enumerate() {
                            if *v > p[best] {
                                best = i;
                            }
                        }
                        best
                    };
                    pred as f64 == **t
                })
                .count();
            json!({ "accuracy": correct as f64 / yv.len() as f64 })
        }
    };
    Ok(json!({
        "metrics": metrics,
        "lightgbm": d["baselines"]["lightgbm"]["metrics"],
        "lightgbm_train_seconds": d["baselines"]["lightgbm"]["train_seconds"],
        "train_seconds": train_seconds,
        "predict_seconds": predict_seconds,
        "rounds": fit.best_iteration,
        "trees": fit.ensemble.trees.len(),
        "train_rows": xt.n_rows,
    }))
}
