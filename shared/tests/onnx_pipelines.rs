//! Hand-built pipelines → ONNX export → tract (and onnxruntime) results equal native prediction.
//!
//! The onnxruntime check runs `tests/ort/run_ort.py` with `PLEXE_TEST_PYTHON` (set by
//! `tests/run.sh`); without it the test fails, unless `PLEXE_TEST_SKIP_ORT=1`.

use serde_json::{Value, json};
use shared::automl::Predictions;
use shared::automl::pipeline::{
    CategoricalTerm, DatetimePart, Feature, InputSpec, LinearModel, Model, Node, NumericTerm,
    Pipeline, SplitRule, Task, Tree, TreeEnsemble,
};
use shared::ingest::ColumnType;
use shared::onnx::export;
use shared::serving::{Batch, BatchOutput, InputColumn, OnnxModel};
use std::path::PathBuf;

fn leaf(value: f64) -> Node {
    Node::Leaf { value }
}

fn split(feature: usize, rule: SplitRule, missing_left: bool, left: u32, right: u32) -> Node {
    Node::Split {
        feature,
        rule,
        missing_left,
        left,
        right,
    }
}

fn inputs() -> Vec<InputSpec> {
    vec![
        InputSpec {
            name: "x".into(),
            kind: ColumnType::Float,
        },
        InputSpec {
            name: "city".into(),
            kind: ColumnType::String,
        },
        InputSpec {
            name: "member".into(),
            kind: ColumnType::Boolean,
        },
        InputSpec {
            name: "joined".into(),
            kind: ColumnType::Datetime,
        },
        InputSpec {
            name: "count".into(),
            kind: ColumnType::Integer,
        },
        InputSpec {
            name: "review".into(),
            kind: ColumnType::String,
        },
    ]
}

/// The review's vocabulary: features 9, 10, 11.
const WORDS: [&str; 3] = ["good", "bad", "movie"];

const CITIES: [&str; 4] = ["paris", "lyon", "nice", "lille"];

fn features() -> Vec<Feature> {
    vec![
        Feature::Numeric { input: 0 },
        Feature::CategoryIndex {
            input: 1,
            levels: CITIES.iter().map(|s| s.to_string()).collect(),
        },
        Feature::Numeric { input: 2 },
        Feature::DatetimePart {
            input: 3,
            part: DatetimePart::Month,
        },
        Feature::DatetimePart {
            input: 3,
            part: DatetimePart::DayOfWeek,
        },
        Feature::DatetimePart {
            input: 3,
            part: DatetimePart::Hour,
        },
        Feature::DatetimePart {
            input: 3,
            part: DatetimePart::Year,
        },
        Feature::DatetimePart {
            input: 3,
            part: DatetimePart::Day,
        },
        Feature::Numeric { input: 4 },
        Feature::WordCount {
            input: 5,
            word: WORDS[0].into(),
        },
        Feature::WordCount {
            input: 5,
            word: WORDS[1].into(),
        },
        Feature::WordCount {
            input: 5,
            word: WORDS[2].into(),
        },
    ]
}

/// Trees using every feature kind, categorical sets, both missing directions. Leaf values are
/// dyadic so that `f32` leaf weights are exact.
fn trees(output: usize, scale: f64) -> Vec<Tree> {
    vec![
        Tree {
            output,
            nodes: vec![
                split(0, SplitRule::LessOrEqual(0.5), true, 1, 2),
                split(1, SplitRule::InSet(vec![0, 2]), false, 3, 4),
                split(3, SplitRule::LessOrEqual(6.5), false, 5, 6),
                leaf(0.75 * scale),
                leaf(-0.5 * scale),
                leaf(0.25 * scale),
                leaf(-1.25 * scale),
            ],
            covers: Vec::new(),
        },
        Tree {
            output,
            nodes: vec![
                split(1, SplitRule::InSet(vec![1]), true, 1, 2),
                leaf(0.375 * scale),
                split(4, SplitRule::LessOrEqual(4.5), true, 3, 4),
                split(5, SplitRule::LessOrEqual(11.5), false, 5, 6),
                leaf(-0.625 * scale),
                leaf(0.125 * scale),
                split(2, SplitRule::LessOrEqual(0.5), false, 7, 8),
                leaf(-0.25 * scale),
                leaf(0.5 * scale),
            ],
            covers: Vec::new(),
        },
        Tree {
            output,
            nodes: vec![
                split(6, SplitRule::LessOrEqual(2015.5), true, 1, 2),
                split(8, SplitRule::LessOrEqual(3.0), true, 3, 4),
                split(7, SplitRule::LessOrEqual(15.5), false, 5, 6),
                leaf(0.0625 * scale),
                leaf(-0.1875 * scale),
                leaf(0.3125 * scale),
                leaf(-0.4375 * scale),
            ],
            covers: Vec::new(),
        },
        Tree {
            output,
            nodes: vec![
                split(9, SplitRule::LessOrEqual(0.5), true, 1, 2),
                split(10, SplitRule::LessOrEqual(1.5), true, 3, 4),
                split(11, SplitRule::LessOrEqual(0.5), true, 5, 6),
                leaf(0.5 * scale),
                leaf(-0.75 * scale),
                leaf(0.125 * scale),
                leaf(0.625 * scale),
            ],
            covers: Vec::new(),
        },
    ]
}

fn linear(n_out: usize) -> LinearModel {
    let w = |k: usize, base: f64| {
        (0..n_out)
            .map(|o| base * (1.0 + k as f64) * if o % 2 == 0 { 1.0 } else { -0.7 })
            .collect()
    };
    LinearModel {
        intercept: (0..n_out).map(|o| 0.1 * o as f64 - 0.05).collect(),
        numeric: vec![
            NumericTerm {
                feature: 0,
                fill: 0.3,
                weights: w(0, 0.8),
                mean: 0.0,
            },
            NumericTerm {
                feature: 8,
                fill: 2.0,
                weights: w(1, -0.05),
                mean: 0.0,
            },
            NumericTerm {
                feature: 3,
                fill: 6.0,
                weights: w(2, 0.02),
                mean: 0.0,
            },
            NumericTerm {
                feature: 10,
                fill: 0.0,
                weights: w(1, -0.25),
                mean: 0.0,
            },
        ],
        categorical: vec![CategoricalTerm {
            feature: 1,
            weights: (0..CITIES.len())
                .map(|l| w(l, 0.15 - 0.1 * l as f64))
                .collect(),
            mean: Vec::new(),
        }],
    }
}

fn pipeline(task: Task) -> Pipeline {
    let n_out = task.n_outputs();
    let mut all_trees = Vec::new();
    for o in 0..n_out {
        all_trees.extend(trees(o, 1.0 + o as f64 * 0.5));
    }
    let base = (0..n_out).map(|o| 0.25 - 0.125 * o as f64).collect();
    Pipeline {
        target: "outcome".into(),
        task,
        inputs: inputs(),
        features: features(),
        models: vec![
            Model::Trees(TreeEnsemble {
                base,
                trees: all_trees,
            }),
            Model::Linear(linear(n_out)),
        ],
        weights: vec![0.7, 0.3],
    }
}

fn binary() -> Pipeline {
    pipeline(Task::Binary {
        labels: ["no".into(), "yes".into()],
    })
}

fn multiclass() -> Pipeline {
    pipeline(Task::Multiclass {
        labels: vec!["bronze".into(), "gold".into(), "silver".into()],
    })
}

fn regression() -> Pipeline {
    let mut p = pipeline(Task::Regression);
    p.target = "price".into();
    p
}

/// A regression blend whose trees were fit to the log of the target: they answer `exp` of
/// their margin, blended with a linear model on the raw scale.
fn log_target_regression() -> Pipeline {
    let mut p = regression();
    p.models[0] = Model::LogTarget(Box::new(p.models[0].clone()));
    p
}

/// Deterministic rows covering missing values, unseen and empty categories, ISO and numeric
/// datetimes, negative epochs and values on split thresholds.
fn rows(n: usize) -> Vec<Value> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let r = next();
            let x = match r % 7 {
                0 => Value::Null,
                1 => json!(0.5),
                _ => json!(((r >> 8) % 2000) as f64 / 1000.0 - 0.5),
            };
            let city = match (r >> 20) % 8 {
                0 => Value::Null,
                1 => json!("berlin"),
                2 => json!(""),
                k => json!(CITIES[(k as usize) % 4]),
            };
            let member = match (r >> 24) % 3 {
                0 => Value::Null,
                k => json!(k == 1),
            };
            let seconds = ((r >> 28) % 1_600_000_000) as i64 - 200_000_000;
            let joined = match (r >> 40) % 5 {
                0 => Value::Null,
                1 => {
                    let t = time::OffsetDateTime::from_unix_timestamp(seconds)
                        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                    json!(
                        t.format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default()
                    )
                }
                _ => json!(seconds),
            };
            let count = if i % 11 == 0 {
                Value::Null
            } else {
                json!(((r >> 50) % 7) as i64)
            };
            // Case forms that count and one that does not, punctuation, non-ASCII letters
            // (separators in every runtime), repeats, empty and missing text.
            let review = match (r >> 56) % 10 {
                0 => Value::Null,
                1 => json!(""),
                2 => json!("Good movie, GOOD!"),
                3 => json!("gOOd bad BAD Bad movie"),
                4 => json!("İstanbul: bad\tbad\nbad… movies"),
                5 => json!("ünïcode mövie good-good"),
                6 => json!("not bad at all, a good movie"),
                7 => json!("MOVIE movie Movie mOvie"),
                k => json!(format!("{} {}", WORDS[(k as usize) % 3], WORDS[(i) % 3])),
            };
            json!({"x": x, "city": city, "member": member, "joined": joined, "count": count,
                "review": review})
        })
        .collect()
}

fn batch_of(model: &OnnxModel, rows: &[Value]) -> Batch {
    shared::serving::input::rows_to_batch(model.input_schema(), rows)
        .expect("generated rows are valid")
}

fn assert_tract_matches_native(pipeline: &Pipeline) -> (Vec<u8>, Batch, BatchOutput) {
    let bytes = export(pipeline, &[]).expect("export");
    let model = OnnxModel::load(&bytes).expect("tract loads the export");
    let rows = rows(500);
    let batch = batch_of(&model, &rows);
    let out = model.run(&batch).expect("tract runs");
    // The batch as a table: native prediction sees exactly the `f32` inputs tract sees.
    let native = pipeline
        .predict(&batch.to_table(model.input_schema()))
        .expect("native predict");
    assert_eq!(out.len(), rows.len());
    match (&out, &native) {
        (BatchOutput::Regression { values }, Predictions::Regression { values: expected }) => {
            for (i, (v, e)) in values.iter().zip(expected).enumerate() {
                let tolerance = 1e-4 * e.abs().max(1.0);
                assert!(
                    (*v as f64 - e).abs() <= tolerance,
                    "row {i}: tract {v}, native {e}"
                );
            }
        }
        (
            BatchOutput::Classification {
                labels,
                predicted,
                probabilities,
            },
            Predictions::Classification {
                labels: native_labels,
                predicted: native_predicted,
                probabilities: native_p,
            },
        ) => {
            assert_eq!(labels, native_labels);
            let k = labels.len();
            for i in 0..rows.len() {
                assert_eq!(
                    predicted[i], labels[native_predicted[i]],
                    "row {i}: {}",
                    rows[i]
                );
                for c in 0..k {
                    let (t, n) = (probabilities[i * k + c] as f64, native_p[i][c]);
                    assert!(
                        (t - n).abs() <= 1e-5,
                        "row {i} class {c}: tract {t}, native {n}"
                    );
                }
            }
            // The rows must exercise more than one class for the comparison to mean something.
            let mut seen: Vec<&String> = predicted.iter().collect();
            seen.sort();
            seen.dedup();
            assert!(seen.len() >= 2, "all rows predicted {:?}", seen);
        }
        (a, b) => panic!("output kinds differ: {a:?} vs {b:?}"),
    }
    (bytes, batch, out)
}

#[test]
fn binary_blend_of_trees_and_linear_matches_native() {
    assert_tract_matches_native(&binary());
}

#[test]
fn multiclass_blend_matches_native() {
    assert_tract_matches_native(&multiclass());
}

#[test]
fn regression_blend_matches_native() {
    assert_tract_matches_native(&regression());
}

#[test]
fn log_target_regression_matches_native() {
    let (_, _, out) = assert_tract_matches_native(&log_target_regression());
    // exp keeps the trees' part positive and changes the answers.
    let (_, _, raw) = assert_tract_matches_native(&regression());
    match (out, raw) {
        (BatchOutput::Regression { values }, BatchOutput::Regression { values: raw }) => {
            assert!(values.iter().zip(&raw).any(|(a, b)| a != b));
        }
        _ => panic!("a regression pipeline answers values"),
    }
}

#[test]
fn trees_only_and_linear_only_pipelines_match_native() {
    for mut p in [binary(), multiclass(), regression()] {
        let (trees, linear) = (p.models[0].clone(), p.models[1].clone());
        p.models = vec![trees];
        p.weights = vec![1.0];
        assert_tract_matches_native(&p);
        p.models = vec![linear];
        assert_tract_matches_native(&p);
    }
}

#[test]
fn a_large_batch_cut_into_parts_gives_the_rows_of_small_batches() {
    // 5,000 rows of a light forest: `run` cuts the batch into parts that the caller and helper
    // threads run; in slices of 1,000 it runs each whole. Every row must come out the same, in
    // order (to float rounding: tract's kernels take other code paths for other batch sizes).
    let close = |a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-6 * y.abs().max(1.0),
                "value {i}: {x} vs {y}"
            );
        }
    };
    for p in [binary(), multiclass(), regression()] {
        let model = OnnxModel::load(&export(&p, &[]).expect("export")).expect("load");
        let batch = batch_of(&model, &rows(5000));
        let whole = model.run(&batch).expect("runs");
        assert_eq!(whole.len(), 5000);
        let slices: Vec<BatchOutput> = (0..5)
            .map(|i| {
                model
                    .run(&batch.rows(i * 1000..(i + 1) * 1000))
                    .expect("runs")
            })
            .collect();
        match (&whole, slices.as_slice()) {
            (BatchOutput::Regression { values }, slices) => {
                let mut expected = Vec::new();
                for s in slices {
                    let BatchOutput::Regression { values } = s else {
                        panic!("a regression slice")
                    };
                    expected.extend_from_slice(values);
                }
                close(values, &expected);
            }
            (
                BatchOutput::Classification {
                    predicted,
                    probabilities,
                    ..
                },
                slices,
            ) => {
                let (mut want_predicted, mut want_probabilities) = (Vec::new(), Vec::new());
                for s in slices {
                    let BatchOutput::Classification {
                        predicted,
                        probabilities,
                        ..
                    } = s
                    else {
                        panic!("a classification slice")
                    };
                    want_predicted.extend_from_slice(predicted);
                    want_probabilities.extend_from_slice(probabilities);
                }
                assert_eq!(predicted, &want_predicted);
                close(probabilities, &want_probabilities);
            }
        }
    }
}

#[test]
fn two_exports_are_byte_identical() {
    for p in [binary(), multiclass(), regression()] {
        let a = export(&p, &[("model_version".into(), "3".into())]).expect("export");
        let b = export(&p.clone(), &[("model_version".into(), "3".into())]).expect("export");
        assert_eq!(a, b);
        let other = export(&p, &[("model_version".into(), "4".into())]).expect("export");
        assert_ne!(a, other, "metadata must reach the file");
    }
}

#[test]
fn one_row_gives_the_spec_output_fields() {
    let model = OnnxModel::load(&export(&binary(), &[]).expect("export")).expect("load");
    let fields = model
        .predict_one(&json!({"x": 0.1, "city": "nice", "member": true, "joined": "2020-05-01T10:00:00Z", "count": 2, "review": "A good movie"}))
        .expect("predict");
    assert!(matches!(fields.get("outcome"), Some(Value::String(s)) if s == "yes" || s == "no"));
    let p = fields
        .get("outcome_probability")
        .and_then(Value::as_f64)
        .expect("probability");
    assert!((0.0..=1.0).contains(&p));

    let model = OnnxModel::load(&export(&multiclass(), &[]).expect("export")).expect("load");
    let row = json!({"x": null, "city": "mars", "member": null, "joined": null, "count": null, "review": null});
    let fields = model.predict_one(&row).expect("predict");
    let ps = fields
        .get("outcome_probabilities")
        .and_then(Value::as_object)
        .expect("probabilities");
    assert_eq!(ps.len(), 3);
    let total: f64 = ps.values().filter_map(Value::as_f64).sum();
    assert!((total - 1.0).abs() < 1e-5);

    let err = model
        .predict_json(&[row.clone(), json!({"x": "high"})])
        .expect_err("invalid rows");
    let msg = format!("{err}");
    assert!(msg.contains("x"), "{msg}");
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

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("ort")
        .join(name)
}

/// The batch as the JSON inputs file of `run_ort.py` (NaN → null).
fn inputs_json(model: &OnnxModel, batch: &Batch) -> Value {
    let mut map = serde_json::Map::new();
    for (field, column) in model.input_schema().iter().zip(&batch.columns) {
        let entry = match column {
            InputColumn::Float(v) => json!({"type": "float", "values": v
                .iter()
                .map(|x| if x.is_nan() { Value::Null } else { json!(*x as f64) })
                .collect::<Vec<_>>()}),
            InputColumn::Text(v) => json!({"type": "string", "values": v}),
        };
        map.insert(field.input.clone(), entry);
    }
    Value::Object(map)
}

#[test]
fn onnxruntime_agrees_with_tract() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, p) in [
        ("binary", binary()),
        ("multiclass", multiclass()),
        ("regression", regression()),
        ("log_target", log_target_regression()),
    ] {
        let (bytes, batch, out) = assert_tract_matches_native(&p);
        let model = OnnxModel::load(&bytes).expect("load");
        let model_path = dir.path().join(format!("{name}.onnx"));
        let inputs_path = dir.path().join(format!("{name}.json"));
        std::fs::write(&model_path, &bytes).expect("write model");
        std::fs::write(&inputs_path, inputs_json(&model, &batch).to_string())
            .expect("write inputs");
        let run = std::process::Command::new(&python)
            .arg(script("run_ort.py"))
            .arg(&model_path)
            .arg(&inputs_path)
            .output()
            .unwrap_or_else(|e| panic!("PLEXE_TEST_PYTHON={python} cannot be run: {e}"));
        assert!(
            run.status.success(),
            "{name}: run_ort.py failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let ort: Value = serde_json::from_slice(&run.stdout).expect("run_ort.py prints JSON");
        match out {
            BatchOutput::Regression { values } => {
                let ort_values = ort["prediction"].as_array().expect("prediction");
                assert_eq!(ort_values.len(), values.len());
                for (i, (t, o)) in values.iter().zip(ort_values).enumerate() {
                    let o = o.as_f64().expect("number");
                    assert!(
                        (*t as f64 - o).abs() <= 1e-4 * o.abs().max(1.0),
                        "{name} row {i}: tract {t}, ort {o}"
                    );
                }
            }
            BatchOutput::Classification {
                labels,
                predicted,
                probabilities,
            } => {
                let ort_labels = ort["prediction"].as_array().expect("prediction");
                let ort_p = ort["probabilities"].as_array().expect("probabilities");
                let k = labels.len();
                for i in 0..predicted.len() {
                    assert_eq!(
                        ort_labels[i].as_str(),
                        Some(predicted[i].as_str()),
                        "{name} row {i}"
                    );
                    for c in 0..k {
                        let o = ort_p[i][c].as_f64().expect("number");
                        let t = probabilities[i * k + c] as f64;
                        assert!(
                            (t - o).abs() <= 1e-5,
                            "{name} row {i} class {c}: tract {t}, ort {o}"
                        );
                    }
                }
            }
        }
    }
}
