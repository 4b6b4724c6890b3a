//! tract's side of `tests/ort/time_ort.py`: times an exported ONNX file on the rows of an
//! inputs JSON file (the format `run_ort.py` reads; bench-automl writes `NAME.holdout.json`).
//!
//! `cargo run --release -p shared --example time_tract -- MODEL.onnx INPUTS.json [--runs 1000]
//!  [--batch 10000]` prints `{"tract_batch1_us": …, "tract_rows_per_s": …}`.

use serde_json::{Value, json};
use shared::serving::{Batch, InputColumn, OnnxModel, measure};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(model_path), Some(inputs_path)) = (args.first(), args.get(1)) else {
        return Err("usage: time_tract MODEL.onnx INPUTS.json [--runs N] [--batch N]".into());
    };
    let flag = |name: &str, default: usize| -> Result<usize, String> {
        match args.iter().position(|a| a == name) {
            Some(i) => args
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number")),
            None => Ok(default),
        }
    };
    let runs = flag("--runs", 1000)?;
    let batch_rows = flag("--batch", 10_000)?;
    let bytes = std::fs::read(model_path).map_err(|e| format!("{model_path}: {e}"))?;
    let model = OnnxModel::load(&bytes).map_err(|e| e.to_string())?;
    let inputs: Value = serde_json::from_str(
        &std::fs::read_to_string(inputs_path).map_err(|e| format!("{inputs_path}: {e}"))?,
    )
    .map_err(|e| format!("{inputs_path}: {e}"))?;
    let mut columns = Vec::new();
    let mut n_rows = 0;
    for field in model.input_schema() {
        let entry = &inputs[&field.input];
        let values = entry["values"]
            .as_array()
            .ok_or(format!("{inputs_path}: no values for {}", field.input))?;
        n_rows = values.len();
        columns.push(if entry["type"] == "string" {
            InputColumn::Text(
                values
                    .iter()
                    .map(|v| v.as_str().unwrap_or_default().to_string())
                    .collect(),
            )
        } else {
            InputColumn::Float(
                values
                    .iter()
                    .map(|v| v.as_f64().map_or(f32::NAN, |x| x as f32))
                    .collect(),
            )
        });
    }
    let batch = Batch { n_rows, columns };
    let timing = measure(&model, &batch, runs, batch_rows).map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({
            "tract_batch1_us": timing.batch1_us,
            "tract_rows_per_s": timing.rows_per_s,
            "batch": batch_rows,
        })
    );
    Ok(())
}
