//! Feature importance per raw input column: model-level importances per feature (split gain for
//! trees, |standardized coefficient| for linear models) normalized per model, blended with the
//! models' weights, summed back onto the input each feature reads, and normalized to sum to 1.

use super::features::feature_input;
use super::pipeline::{Feature, InputSpec};

/// `(input name, share)` sorted by share, largest first (ties by name); shares sum to 1.
/// `per_model` holds, per model of the pipeline, its weight and its per-feature importance.
pub fn input_importance(
    inputs: &[InputSpec],
    features: &[Feature],
    per_model: &[(f64, Vec<f64>)],
) -> Vec<(String, f64)> {
    let mut by_input = vec![0.0; inputs.len()];
    for (weight, importance) in per_model {
        let total: f64 = importance.iter().filter(|v| v.is_finite()).sum();
        if total <= 0.0 {
            continue;
        }
        for (f, v) in features.iter().zip(importance) {
            if v.is_finite() {
                by_input[feature_input(f)] += weight * v / total;
            }
        }
    }
    let total: f64 = by_input.iter().sum();
    if total <= 0.0 {
        // No model used any feature (e.g. a constant prediction): nothing stands out.
        let share = 1.0 / inputs.len().max(1) as f64;
        by_input.iter_mut().for_each(|v| *v = share);
    } else {
        by_input.iter_mut().for_each(|v| *v /= total);
    }
    let mut out: Vec<(String, f64)> = inputs
        .iter()
        .map(|i| i.name.clone())
        .zip(by_input)
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automl::pipeline::DatetimePart;
    use crate::ingest::ColumnType;

    #[test]
    fn importance_is_aggregated_per_input_and_sums_to_one() {
        let inputs = vec![
            InputSpec {
                name: "when".into(),
                kind: ColumnType::Datetime,
            },
            InputSpec {
                name: "size".into(),
                kind: ColumnType::Float,
            },
        ];
        let features = vec![
            Feature::Numeric { input: 0 },
            Feature::DatetimePart {
                input: 0,
                part: DatetimePart::Month,
            },
            Feature::Numeric { input: 1 },
        ];
        // Trees: gains 1, 1, 2 → when .5, size .5; linear: only size. Blend 50/50.
        let got = input_importance(
            &inputs,
            &features,
            &[(0.5, vec![1.0, 1.0, 2.0]), (0.5, vec![0.0, 0.0, 3.0])],
        );
        assert_eq!(got[0].0, "size");
        assert!((got[0].1 - 0.75).abs() < 1e-12);
        assert!((got[1].1 - 0.25).abs() < 1e-12);
        let none = input_importance(&inputs, &features, &[(1.0, vec![0.0; 3])]);
        assert!((none.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
