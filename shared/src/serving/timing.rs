//! Inference timings in the form the AutoML benchmark reports them (`tract_batch1_us`,
//! `tract_rows_per_s`), measured the same way `tests/ort/time_ort.py` measures onnxruntime.

use super::input::Batch;
use super::model::{OnnxModel, RunError};
use serde::Serialize;
use std::time::Instant;

/// Timed runs of the large batch. A run of 10,000 rows takes 5 to 250 ms, and on a shared
/// two-core machine a median of 5 moved by up to a fifth from one call to the next (titanic:
/// 788k to 1.02M rows/s over five calls). `tests/ort/time_ort.py` takes the median of as many.
pub const BATCH_RUNS: usize = 21;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    /// Median of `runs` single-row runs, microseconds.
    pub batch1_us: f64,
    /// Rows per second on one run of `batch_rows` rows (median of BATCH_RUNS runs).
    pub rows_per_s: f64,
    pub batch_rows: usize,
}

/// Times `model` on rows of `batch`: single rows cycling through the batch, then a batch of
/// `batch_rows` rows made by repeating it. `batch` must not be empty.
pub fn measure(
    model: &OnnxModel,
    batch: &Batch,
    runs: usize,
    batch_rows: usize,
) -> Result<Timing, RunError> {
    let n = batch.n_rows.max(1);
    let singles: Vec<Batch> = (0..runs.min(n)).map(|i| batch.rows(i..i + 1)).collect();
    for single in singles.iter().take(50) {
        model.run(single)?;
    }
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let single = &singles[i % singles.len().max(1)];
        let start = Instant::now();
        model.run(single)?;
        times.push(start.elapsed().as_secs_f64());
    }
    let big = batch.repeat_to(batch_rows);
    model.run(&big)?;
    let mut batch_times = Vec::with_capacity(BATCH_RUNS);
    for _ in 0..BATCH_RUNS {
        let start = Instant::now();
        model.run(&big)?;
        batch_times.push(start.elapsed().as_secs_f64());
    }
    Ok(Timing {
        batch1_us: median(&mut times) * 1e6,
        rows_per_s: batch_rows as f64 / median(&mut batch_times),
        batch_rows,
    })
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
