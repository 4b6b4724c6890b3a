//! Raw margins → probabilities: the logistic function for one margin, softmax for several. The
//! GBM's gradients, the linear models' fit, the metrics and native prediction all read margins
//! with these; the ONNX graph spells the same functions as its `Sigmoid` and `Softmax` ops.

/// The logistic function `1 / (1 + e^-m)`.
pub fn sigmoid(m: f64) -> f64 {
    1.0 / (1.0 + (-m).exp())
}

/// Softmax of `m` into `out` (same length), shifted by the maximum so no `exp` overflows.
pub fn softmax_into(m: &[f64], out: &mut [f64]) {
    let max = m.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for (o, &v) in out.iter_mut().zip(m) {
        *o = (v - max).exp();
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

/// Softmax of `m`.
pub fn softmax(m: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; m.len()];
    softmax_into(m, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_of_known_margins() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(2.0) + sigmoid(-2.0) - 1.0).abs() < 1e-15);
        let p = softmax(&[1.0, 1.0, 1.0, 1.0]);
        assert!(p.iter().all(|&v| v == 0.25));
        // Large margins do not overflow.
        let p = softmax(&[1000.0, 0.0]);
        assert_eq!(p, vec![1.0, 0.0]);
    }
}
