//! How a fitted model turns one row's feature values into raw margins: the tree walk and the
//! linear sum. Training (validation and out-of-bag scores), holdout scores and native prediction
//! all read models through these, and the ONNX export spells the same rules as operators.

use super::{LinearModel, Node, SplitRule};

/// A category index held as `f32`, if it is one (a non-negative whole number).
pub fn category_index(v: f32) -> Option<u32> {
    if v >= 0.0 && v.fract() == 0.0 && v < u32::MAX as f32 {
        Some(v as u32)
    } else {
        None
    }
}

impl SplitRule {
    /// Whether a row whose feature value is `v` goes to the left child: a missing (NaN) value
    /// as `missing_left` says, a present one by the rule.
    pub fn row_goes_left(&self, missing_left: bool, v: f32) -> bool {
        if v.is_nan() {
            missing_left
        } else {
            self.goes_left(v)
        }
    }

    /// Whether a present (not NaN) feature value goes to the left child.
    pub fn goes_left(&self, v: f32) -> bool {
        match self {
            SplitRule::LessOrEqual(t) => v <= *t,
            // Membership, whatever the order of the set (ONNX compares with each member).
            SplitRule::InSet(set) => category_index(v).is_some_and(|c| set.contains(&c)),
        }
    }
}

/// The leaf value one row reaches in a tree's `nodes`; `value_of(feature)` is the row's `f32`
/// feature value, NaN = missing (which follows `missing_left`). A malformed tree (an index out
/// of range, a cycle) ends the walk with 0.
pub fn leaf_value(nodes: &[Node], value_of: impl Fn(usize) -> f32) -> f64 {
    let mut at = 0usize;
    // An acyclic path visits each node at most once; the bound only stops a cyclic tree.
    for _ in 0..=nodes.len() {
        match nodes.get(at) {
            Some(Node::Leaf { value }) => return *value,
            Some(Node::Split {
                feature,
                rule,
                missing_left,
                left,
                right,
            }) => {
                let go_left = rule.row_goes_left(*missing_left, value_of(*feature));
                at = if go_left { *left } else { *right } as usize;
            }
            None => return 0.0,
        }
    }
    0.0
}

impl LinearModel {
    /// Adds this model's margins for one row to `out` (one per output): the intercept, each
    /// numeric term on its value (its fill when missing), and the weight row of each category
    /// (nothing for missing or unseen ones).
    pub fn add_margins(&self, value_of: impl Fn(usize) -> f32, out: &mut [f64]) {
        for (o, b) in out.iter_mut().zip(&self.intercept) {
            *o += b;
        }
        for term in &self.numeric {
            let v = value_of(term.feature);
            let v = if v.is_nan() { term.fill } else { f64::from(v) };
            for (o, w) in out.iter_mut().zip(&term.weights) {
                *o += w * v;
            }
        }
        for term in &self.categorical {
            let row =
                category_index(value_of(term.feature)).and_then(|i| term.weights.get(i as usize));
            if let Some(weights) = row {
                for (o, w) in out.iter_mut().zip(weights) {
                    *o += w;
                }
            }
        }
    }
}
