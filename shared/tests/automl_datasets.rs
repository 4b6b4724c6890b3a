//! The engine on the nine benchmark datasets, through the whole chain: build → ONNX export →
//! tract, and onnxruntime on the very same file and holdout rows.
//!
//! - every exported model agrees between tract and onnxruntime on the manifest's holdout rows
//!   (probabilities within 1e-5, regression values within 1e-4 relative);
//! - every holdout row's explanation adds up to its raw score (within 1e-5), which is what
//!   tract answered;
//! - two builds of the same dataset and request give byte-identical ONNX files.
//!
//! Debug builds are slow, so the builds here use the default candidate order cut to its first
//! candidates (the linear baseline, LightGBM's defaults and a bagged variant, plus the blend
//! step) and at most `MAX_TRAIN_ROWS` training rows. The time budget is set far above what they
//! need so that it never cuts a search short (which would make two builds differ).
//! onnxruntime runs `tests/ort/run_ort.py` with `PLEXE_TEST_PYTHON` (set by `tests/run.sh`);
//! without it the test fails, unless `PLEXE_TEST_SKIP_ORT=1`.

use serde_json::Value;
use shared::automl::{BuildRequest, SilentObserver, build};
use shared::ingest::{Table, read_csv_path};
use shared::onnx::export;
use shared::serving::{Batch, BatchOutput, Explainer, OnnxModel};
use std::path::PathBuf;

const MAX_TRAIN_ROWS: usize = 2500;
const CANDIDATES: usize = 3;

fn datasets_dir() -> PathBuf {
    // shared/ → repo → ../shared/datasets; PLEXE_DATASETS_DIR overrides it (e.g. a worktree).
    let dir = std::env::var_os("PLEXE_DATASETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets"));
    assert!(
        dir.join("manifest.json").is_file(),
        "datasets not found at {} (expected <repo>/../shared/datasets with manifest.json, or set \
         PLEXE_DATASETS_DIR)",
        dir.display()
    );
    dir
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(datasets_dir().join("manifest.json"))
        .expect("manifest.json readable");
    let m: Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    m["datasets"]
        .as_array()
        .expect("manifest lists datasets")
        .clone()
}

fn python() -> Option<String> {
    match std::env::var("PLEXE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var("PLEXE_TEST_SKIP_ORT").as_deref() == Ok("1") => None,
        _ => panic!(
            "PLEXE_TEST_PYTHON is not set: run tests/run.sh, or set PLEXE_TEST_SKIP_ORT=1 to skip onnxruntime"
        ),
    }
}

/// The dataset's train rows (thinned evenly to at most `MAX_TRAIN_ROWS`) and holdout rows.
fn split(dataset: &Value) -> (String, Table, Table) {
    let name = dataset["name"].as_str().expect("name").to_string();
    let dir = datasets_dir();
    let table = read_csv_path(&dir.join(dataset["file"].as_str().expect("file")))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let split: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(dataset["split_file"].as_str().expect("split_file")))
            .expect("split file"),
    )
    .expect("split JSON");
    let test: Vec<usize> = split["test_indices"]
        .as_array()
        .expect("test_indices")
        .iter()
        .map(|v| v.as_u64().expect("index") as usize)
        .collect();
    let mut is_test = vec![false; table.n_rows];
    for &i in &test {
        is_test[i] = true;
    }
    let train: Vec<usize> = (0..table.n_rows).filter(|&i| !is_test[i]).collect();
    let step = train.len().div_ceil(MAX_TRAIN_ROWS);
    let train: Vec<usize> = train.into_iter().step_by(step).collect();
    (name, table.take_rows(&train), table.take_rows(&test))
}

fn request(target: &str) -> BuildRequest {
    BuildRequest {
        max_iterations: Some(CANDIDATES),
        time_budget_s: 3600.0,
        ..BuildRequest::new(format!("predict {target}"))
    }
}

/// The ONNX file, the pipeline as stored for explanations (JSON) and the algorithm's name.
fn build_onnx(name: &str, target: &str, train: &Table) -> (Vec<u8>, Vec<u8>, String) {
    let out = build(train, &request(target), &SilentObserver)
        .unwrap_or_else(|e| panic!("{name}: build failed: {e}"));
    let bytes = export(&out.pipeline, &[]).unwrap_or_else(|e| panic!("{name}: export: {e}"));
    let pipeline = serde_json::to_vec(&out.pipeline).expect("pipeline as JSON");
    (bytes, pipeline, out.algorithm)
}

/// Every holdout row's explanation adds up to its raw score within 1e-5 (relative above 1),
/// and the raw score is what tract answered: the value (regression, 1e-4 relative to the
/// target's scale, as the f32 graph sums), the probability through the sigmoid or softmax (1e-5).
fn assert_explanations_add_up(
    name: &str,
    explainer: &Explainer,
    batch: &Batch,
    tract: &BatchOutput,
) {
    let explanations = explainer
        .explain(batch)
        .unwrap_or_else(|e| panic!("{name}: explain: {e}"));
    assert_eq!(explanations.len(), batch.n_rows, "{name}");
    // The graph sums f32 leaf weights in f32: its error grows with the scale of the target, not
    // of one row's value.
    let scale = match tract {
        BatchOutput::Regression { values } => {
            values.iter().map(|v| f64::from(v.abs())).sum::<f64>() / values.len().max(1) as f64
        }
        BatchOutput::Classification { .. } => 1.0,
    };
    for (row, e) in explanations.iter().enumerate() {
        for s in &e.scores {
            let sum = s.base_value + s.contributions.values().sum::<f64>();
            assert!(
                (sum - s.raw_score).abs() <= 1e-5 * s.raw_score.abs().max(1.0),
                "{name} row {row}: base + contributions = {sum}, raw score {}",
                s.raw_score
            );
        }
        match tract {
            BatchOutput::Regression { values } => {
                let (raw, t) = (e.scores[0].raw_score, f64::from(values[row]));
                assert!(
                    (raw - t).abs() <= 1e-4 * t.abs().max(scale).max(1.0),
                    "{name} row {row}: explained {raw}, tract {t}"
                );
            }
            BatchOutput::Classification {
                labels,
                probabilities,
                ..
            } => {
                let k = labels.len();
                let p: Vec<f64> = if k == 2 {
                    let p1 = 1.0 / (1.0 + (-e.scores[0].raw_score).exp());
                    vec![1.0 - p1, p1]
                } else {
                    let max = e
                        .scores
                        .iter()
                        .map(|s| s.raw_score)
                        .fold(f64::MIN, f64::max);
                    let exp: Vec<f64> =
                        e.scores.iter().map(|s| (s.raw_score - max).exp()).collect();
                    let total: f64 = exp.iter().sum();
                    exp.iter().map(|x| x / total).collect()
                };
                for c in 0..k {
                    let t = f64::from(probabilities[row * k + c]);
                    assert!(
                        (p[c] - t).abs() <= 1e-5,
                        "{name} row {row} class {c}: explained {}, tract {t}",
                        p[c]
                    );
                }
            }
        }
    }
}

#[test]
fn onnxruntime_agrees_with_tract_on_every_dataset_holdout() {
    let python = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut algorithms = Vec::new();
    for dataset in manifest() {
        let (name, train, test) = split(&dataset);
        let target = dataset["target"].as_str().expect("target");
        let (bytes, pipeline, algorithm) = build_onnx(&name, target, &train);
        algorithms.push(format!("{name}: {algorithm}"));
        let model = OnnxModel::load(&bytes).unwrap_or_else(|e| panic!("{name}: load: {e}"));
        let batch = Batch::from_table(model.input_schema(), &test)
            .unwrap_or_else(|e| panic!("{name}: holdout inputs: {e:?}"));
        let tract = model
            .run(&batch)
            .unwrap_or_else(|e| panic!("{name}: tract: {e}"));
        assert_eq!(tract.len(), test.n_rows, "{name}");
        let explainer =
            Explainer::load(&pipeline, &model).unwrap_or_else(|e| panic!("{name}: explainer: {e}"));
        assert_explanations_add_up(&name, &explainer, &batch, &tract);
        let Some(python) = &python else { continue };

        let model_path = dir.path().join(format!("{name}.onnx"));
        let inputs_path = dir.path().join(format!("{name}.json"));
        std::fs::write(&model_path, &bytes).expect("write model");
        std::fs::write(
            &inputs_path,
            batch.to_ort_json(model.input_schema()).to_string(),
        )
        .expect("write inputs");
        let run = std::process::Command::new(python)
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/ort/run_ort.py"))
            .arg(&model_path)
            .arg(&inputs_path)
            .output()
            .unwrap_or_else(|e| panic!("PLEXE_TEST_PYTHON={python} cannot be run: {e}"));
        assert!(
            run.status.success(),
            "{name}: run_ort.py failed (PLEXE_TEST_PYTHON={python}): {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let ort: Value = serde_json::from_slice(&run.stdout).expect("run_ort.py prints JSON");
        assert_agree(&name, &tract, &ort);
    }
    eprintln!("{}", algorithms.join("\n"));
}

fn assert_agree(name: &str, tract: &BatchOutput, ort: &Value) {
    let ort_prediction = ort["prediction"].as_array().expect("prediction");
    assert_eq!(ort_prediction.len(), tract.len(), "{name}: row count");
    match tract {
        BatchOutput::Regression { values } => {
            for (i, (t, o)) in values.iter().zip(ort_prediction).enumerate() {
                let t = f64::from(*t);
                let o = o.as_f64().expect("number");
                assert!(
                    (t - o).abs() <= 1e-4 * o.abs().max(1.0),
                    "{name} row {i}: tract {t}, onnxruntime {o}"
                );
            }
        }
        BatchOutput::Classification {
            labels,
            predicted,
            probabilities,
        } => {
            let ort_p = ort["probabilities"].as_array().expect("probabilities");
            let k = labels.len();
            for (i, label) in predicted.iter().enumerate() {
                for c in 0..k {
                    let t = f64::from(probabilities[i * k + c]);
                    let o = ort_p[i][c].as_f64().expect("number");
                    assert!(
                        (t - o).abs() <= 1e-5,
                        "{name} row {i} class {c}: tract {t}, onnxruntime {o}"
                    );
                }
                // A label may differ only on an exact tie, which the bound above already allows.
                let tied = k == 2 && (f64::from(probabilities[i * k + 1]) - 0.5).abs() <= 1e-5;
                assert!(
                    tied || ort_prediction[i].as_str() == Some(label.as_str()),
                    "{name} row {i}: tract {label}, onnxruntime {}",
                    ort_prediction[i]
                );
            }
        }
    }
}

#[test]
fn two_builds_of_a_dataset_give_byte_identical_onnx() {
    let wanted = ["titanic", "penguins", "diabetes"];
    for dataset in manifest()
        .iter()
        .filter(|d| wanted.contains(&d["name"].as_str().unwrap_or("")))
    {
        let (name, train, _) = split(dataset);
        let target = dataset["target"].as_str().expect("target");
        let (a, _, _) = build_onnx(&name, target, &train);
        let (b, _, _) = build_onnx(&name, target, &train);
        assert!(!a.is_empty());
        assert!(a == b, "{name}: two builds gave different ONNX files");
        // And the file depends on the data: one training row fewer gives another model.
        let fewer: Vec<usize> = (1..train.n_rows).collect();
        let (c, _, _) = build_onnx(&name, target, &train.take_rows(&fewer));
        assert!(a != c, "{name}: the ONNX file ignores its training data");
    }
}
