//! Bench: builds through the API reach the engine's holdout scores (SPEC: same code path).
//!
//! For each shared dataset (`manifest.json`), the train rows (all not in `NAME.split.json`'s
//! `test_indices`) are uploaded to the local app (embedded backend, in-process trainer), a model
//! is built from an intent written as a user would, deployed, and the test rows are sent as CSV
//! to `predictions`; the predictions are scored against the true values. The engine is also run
//! directly on the same train rows with the same request, its ONNX export served by tract on the
//! same rows, and the two score sets are compared. Prints one JSON object (and writes `--out`).
//!
//! Run: `nice -n 19 cargo run -p integration-tests --bin bench-api-builds -- [--only a,b]
//! [--budget 60] [--out f.json]` (datasets from `PLEXE_DATASETS_DIR`, default
//! `<repo>/../shared/datasets`).

use integration_tests::{Backend, http_client, start_app};
use serde_json::{Map, Value, json};
use shared::automl::{BuildRequest, SilentObserver, build, metrics};
use shared::domain::accounts::Tier;
use shared::serving::{BatchOutput, OnnxModel};
use shared::trainer::Trainer;
use shared::trainer::worker::{self, WorkerOptions};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What a user would say for each dataset.
fn intent(name: &str) -> Option<&'static str> {
    Some(match name {
        "breast_cancer" => "predict the diagnosis of a breast tumour",
        "titanic" => "predict whether a passenger survived",
        "telco_churn" => "predict which customers will churn",
        "wine" => "predict the cultivar of a wine",
        "penguins" => "predict the species of a penguin",
        "loan_grade" => "predict the grade of a loan",
        "diabetes" => "estimate disease progression",
        "ames_housing" => "estimate the sale price of a house",
        "diamonds" => "estimate the price of a diamond",
        _ => return None,
    })
}

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
    let only: Vec<String> = arg(&args, "--only")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let budget: f64 = arg(&args, "--budget")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60.0);
    match run(&only, budget).await {
        Ok(report) => {
            let text = serde_json::to_string_pretty(&report).unwrap_or_default();
            println!("{text}");
            if let Some(out) = arg(&args, "--out")
                && let Err(e) = std::fs::write(&out, &text)
            {
                eprintln!("bench-api-builds: writing {out}: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-api-builds: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Split {
    headers: csv::StringRecord,
    train_csv: String,
    test: Vec<csv::StringRecord>,
}

fn split(dir: &std::path::Path, name: &str) -> Result<Split, String> {
    let text =
        std::fs::read_to_string(dir.join(format!("{name}.csv"))).map_err(|e| e.to_string())?;
    let split: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.split.json")))
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let test_rows: HashSet<usize> = split["test_indices"]
        .as_array()
        .ok_or("no test_indices")?
        .iter()
        .filter_map(|v| v.as_u64().map(|v| v as usize))
        .collect();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let mut train = csv::Writer::from_writer(Vec::new());
    train.write_record(&headers).map_err(|e| e.to_string())?;
    let mut test = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| e.to_string())?;
        if test_rows.contains(&i) {
            test.push(record);
        } else {
            train.write_record(&record).map_err(|e| e.to_string())?;
        }
    }
    let train_csv = String::from_utf8(train.into_inner().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok(Split {
        headers,
        train_csv,
        test,
    })
}

/// Scores predictions (label text or numbers as text) against the true cells.
fn score(
    truth: &[String],
    predicted: &[String],
    positive_probability: &[f64],
    positive: Option<&str>,
) -> Value {
    let numeric: Option<Vec<(f64, f64)>> = truth
        .iter()
        .zip(predicted)
        .map(|(t, p)| Some((t.parse::<f64>().ok()?, p.parse::<f64>().ok()?)))
        .collect();
    if positive_probability.is_empty()
        && let Some(pairs) = numeric
    {
        let (y, p): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        return json!({"rmse": metrics::rmse(&y, &p), "mae": metrics::mae(&y, &p), "r2": metrics::r2(&y, &p)});
    }
    let labels: Vec<String> = truth
        .iter()
        .chain(predicted)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index = |l: &String| labels.iter().position(|x| x == l).unwrap_or(0);
    let y: Vec<usize> = truth.iter().map(index).collect();
    let p: Vec<usize> = predicted.iter().map(index).collect();
    let mut out = json!({
        "accuracy": metrics::accuracy(&y, &p),
        "macro_f1": metrics::macro_f1(&y, &p, labels.len()),
    });
    if let Some(positive) = positive
        && !positive_probability.is_empty()
    {
        // The manifest's convention: the positive class is the second label in sorted order.
        let mut sorted: Vec<&String> = truth.iter().collect::<BTreeSet<_>>().into_iter().collect();
        sorted.sort();
        if let Some(second) = sorted.get(1) {
            let scores: Vec<f64> = positive_probability
                .iter()
                .map(|&q| {
                    if second.as_str() == positive {
                        q
                    } else {
                        1.0 - q
                    }
                })
                .collect();
            out["roc_auc"] = json!(metrics::roc_auc(&y, &scores, index(second)));
        }
    }
    out
}

async fn run(only: &[String], budget: f64) -> Result<Value, String> {
    let dir = datasets_dir();
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let app = start_app(Backend::Embedded, "bench-api-builds")
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
    let key: &str = &key;
    let client = http_client();
    let mut results = BTreeMap::new();
    for dataset in manifest["datasets"].as_array().ok_or("no datasets")? {
        let name = dataset["name"].as_str().unwrap_or_default();
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let Some(intent) = intent(name) else { continue };
        eprintln!("bench-api-builds: {name}");
        let data = split(&dir, name)?;
        let target = dataset["target"].as_str().unwrap_or_default();
        let target_at = data
            .headers
            .iter()
            .position(|h| h == target)
            .ok_or("target not in header")?;
        let truth: Vec<String> = data
            .test
            .iter()
            .map(|r| r.get(target_at).unwrap_or("").to_string())
            .collect();

        // Through the API.
        let send = |req: reqwest::RequestBuilder| async move {
            let r = req
                .bearer_auth(key)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = r.status();
            let text = r.text().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("{status}: {text}"));
            }
            Ok::<String, String>(text)
        };
        let uploaded: Value = serde_json::from_str(
            &send(
                client
                    .post(app.at(&format!("/datasets?name={name}")))
                    .header("content-type", "text/csv")
                    .body(data.train_csv.clone()),
            )
            .await?,
        )
        .map_err(|e| e.to_string())?;
        let started = Instant::now();
        send(client.post(app.at(&format!("/models/{}", name.replace('_', "-")))).json(
            &json!({"intent": intent, "dataset_id": uploaded["dataset_id"], "time_budget_s": budget}),
        ))
        .await?;
        let model = name.replace('_', "-");
        let status = loop {
            let s: Value = serde_json::from_str(
                &send(client.get(app.at(&format!("/models/{model}/v1.0/status")))).await?,
            )
            .map_err(|e| e.to_string())?;
            if s["status"] == "READY" || s["status"] == "ERROR" {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let api_seconds = started.elapsed().as_secs_f64();
        if status["status"] != "READY" {
            results.insert(name.to_string(), json!({"error": status}));
            continue;
        }
        send(
            client
                .post(app.at(&format!("/models/{model}/deploy")))
                .json(&json!({})),
        )
        .await?;
        let described: Value = serde_json::from_str(
            &send(client.get(app.at(&format!("/models/{model}/v1.0/describe")))).await?,
        )
        .map_err(|e| e.to_string())?;
        let positive = described["positive_class"].as_str().map(str::to_string);
        let resolved_target = described["target"].as_str().unwrap_or_default().to_string();
        let mut api_pred = Vec::new();
        let mut api_prob = Vec::new();
        for chunk in data.test.chunks(10_000) {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(&data.headers).map_err(|e| e.to_string())?;
            for r in chunk {
                w.write_record(r).map_err(|e| e.to_string())?;
            }
            let body = w.into_inner().map_err(|e| e.to_string())?;
            let out = send(
                client
                    .post(app.at(&format!("/models/{model}/v1.0/predictions")))
                    .header("content-type", "text/csv")
                    .body(body),
            )
            .await?;
            let mut reader = csv::Reader::from_reader(out.as_bytes());
            let headers = reader.headers().map_err(|e| e.to_string())?.clone();
            let pred_at = headers
                .iter()
                .position(|h| {
                    h == format!("predicted_{resolved_target}")
                        || h == resolved_target && !data.headers.iter().any(|x| x == h)
                })
                .ok_or("no prediction column")?;
            let prob_at = headers
                .iter()
                .position(|h| h.ends_with(&format!("{resolved_target}_probability")));
            for r in reader.records() {
                let r = r.map_err(|e| e.to_string())?;
                api_pred.push(r.get(pred_at).unwrap_or("").to_string());
                if let Some(i) = prob_at {
                    api_prob.push(r.get(i).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN));
                }
            }
        }
        let api_scores = score(&truth, &api_pred, &api_prob, positive.as_deref());

        // The engine directly, same rows and request, served by tract from its ONNX export.
        let train_table =
            shared::ingest::read_csv(std::io::Cursor::new(data.train_csv.clone().into_bytes()))
                .map_err(|e| e.to_string())?;
        let mut request = BuildRequest::new(intent);
        request.time_budget_s = budget;
        let engine_started = Instant::now();
        let output =
            tokio::task::spawn_blocking(move || build(&train_table, &request, &SilentObserver))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        let engine_seconds = engine_started.elapsed().as_secs_f64();
        let onnx = shared::onnx::export(&output.pipeline, &[]).map_err(|e| e.to_string())?;
        let served = OnnxModel::load(&onnx).map_err(|e| e.to_string())?;
        let rows: Vec<Value> = data
            .test
            .iter()
            .map(|r| {
                let mut o = Map::new();
                for f in served.input_schema() {
                    let cell = data
                        .headers
                        .iter()
                        .position(|h| h == f.name)
                        .and_then(|i| r.get(i))
                        .unwrap_or("")
                        .trim();
                    let missing = cell.is_empty() || shared::ingest::cell::is_missing(cell);
                    o.insert(
                        f.name.clone(),
                        if missing { Value::Null } else { json!(cell) },
                    );
                }
                Value::Object(o)
            })
            .collect();
        let out = served.predict_json(&rows).map_err(|e| e.to_string())?;
        let (engine_pred, engine_prob): (Vec<String>, Vec<f64>) = match &out {
            BatchOutput::Regression { values } => {
                (values.iter().map(|v| v.to_string()).collect(), Vec::new())
            }
            BatchOutput::Classification {
                labels,
                predicted,
                probabilities,
            } => {
                let k = labels.len();
                let prob = if k == 2 {
                    probabilities.chunks(k).map(|p| f64::from(p[1])).collect()
                } else {
                    Vec::new()
                };
                (predicted.clone(), prob)
            }
        };
        let engine_scores = score(&truth, &engine_pred, &engine_prob, positive.as_deref());
        let same_predictions = api_pred == engine_pred;
        results.insert(
            name.to_string(),
            json!({
                "intent": intent,
                "target": resolved_target,
                "expected_target": target,
                "algorithm": described["training_info"]["algorithm"],
                "api": {"metrics": api_scores, "build_seconds": api_seconds},
                "engine": {"metrics": engine_scores, "build_seconds": engine_seconds},
                "same_predictions": same_predictions,
                "lightgbm_baseline": dataset["baselines"]["lightgbm"]["metrics"],
            }),
        );
    }
    let all_same = results.values().all(|r| r["same_predictions"] == true);
    Ok(json!({
        "bench": "api-builds",
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
        "time_budget_s": budget,
        "all_same_as_engine": all_same,
        "datasets": results,
    }))
}
