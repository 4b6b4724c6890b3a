//! Best split of one feature from a leaf's histogram, as LightGBM's `FeatureHistogram` finds it:
//! numeric thresholds scanned in both directions so the missing bin goes to the better side;
//! categorical splits one-vs-rest for few categories, else categories sorted by
//! `sum_grad / (sum_hess + cat_smooth)` and scanned from both ends.
//!
//! Gains are LightGBM's (no 1/2 factor): `G^2 / (H + l2)` with `G` soft-thresholded by l1. Row
//! counts are estimated from hessians (`count ≈ hess * num_data / sum_hess`) as LightGBM does.

use super::binning::BinnedFeature;
use super::histogram::Bin;

/// LightGBM's `kEpsilon` (a float literal there).
pub(crate) const K_EPSILON: f64 = 1e-15f32 as f64;

#[derive(Debug, Clone)]
pub(crate) struct SplitParams {
    pub lambda_l1: f64,
    pub lambda_l2: f64,
    pub min_data_in_leaf: i64,
    pub min_sum_hessian_in_leaf: f64,
    pub min_gain_to_split: f64,
    pub max_cat_threshold: usize,
    pub cat_l2: f64,
    pub cat_smooth: f64,
    pub min_data_per_group: i64,
    pub max_cat_to_onehot: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SplitDecision {
    /// Left when `bin <= threshold_bin`; the NaN bin goes by `default_left`.
    Numeric {
        threshold_bin: u32,
        default_left: bool,
    },
    /// Left when the bin is one of these (sorted).
    Categorical { left_bins: Vec<u32> },
}

#[derive(Debug, Clone)]
pub(crate) struct SplitCandidate {
    /// Index into the dataset's features.
    pub feature: usize,
    /// Gain over not splitting, beyond `min_gain_to_split`.
    pub gain: f64,
    pub decision: SplitDecision,
    pub left_sum_grad: f64,
    pub left_sum_hess: f64,
    pub right_sum_grad: f64,
    pub right_sum_hess: f64,
    pub left_output: f64,
    pub right_output: f64,
}

impl SplitCandidate {
    /// LightGBM's order: larger gain, then smaller feature index.
    pub(crate) fn better_than(&self, other: &SplitCandidate) -> bool {
        self.gain > other.gain || (self.gain == other.gain && self.feature < other.feature)
    }
}

fn threshold_l1(s: f64, l1: f64) -> f64 {
    let reg = (s.abs() - l1).max(0.0);
    s.signum() * reg
}

pub(crate) fn leaf_output(g: f64, h: f64, l1: f64, l2: f64) -> f64 {
    -threshold_l1(g, l1) / (h + l2)
}

fn leaf_gain(g: f64, h: f64, l1: f64, l2: f64) -> f64 {
    let s = threshold_l1(g, l1);
    s * s / (h + l2)
}

#[inline]
fn round_int(x: f64) -> i64 {
    (x + 0.5) as i64
}

struct Best {
    gain: f64,
    threshold: u32,
    left_g: f64,
    left_h: f64,
}

/// The best split of `feat` for a leaf with these sums, and whether any split was valid (a
/// feature with no valid split is not tried again below this leaf, as in LightGBM).
pub(crate) fn best_split(
    feature: usize,
    feat: &BinnedFeature,
    hist: &[Bin],
    sum_grad: f64,
    sum_hess: f64,
    num_data: i64,
    p: &SplitParams,
) -> Option<SplitCandidate> {
    let sum_hess = sum_hess + 2.0 * K_EPSILON;
    if feat.is_categorical {
        categorical(feature, feat, hist, sum_grad, sum_hess, num_data, p)
    } else {
        numeric(feature, feat, hist, sum_grad, sum_hess, num_data, p)
    }
}

/// The order a threshold scan visits bins in, accumulating the gradient sums of the side it
/// has passed (LightGBM's `FindBestThresholdSequentially`, both directions).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scan {
    /// From the top bin down, accumulating the right side: what is not passed (the low bins,
    /// and missing values when `na_as_missing` leaves the NaN bin out) goes left.
    Reverse { na_as_missing: bool },
    /// From the bottom bin up, accumulating the left side: missing values go right.
    Forward,
}

/// The best threshold found scanning `hist` in `direction`, if any split is valid.
#[allow(clippy::too_many_arguments)]
fn scan(
    hist: &[Bin],
    num_bin: usize,
    direction: Scan,
    sum_grad: f64,
    sum_hess: f64,
    num_data: i64,
    min_gain_shift: f64,
    p: &SplitParams,
) -> Option<Best> {
    let cnt_factor = num_data as f64 / sum_hess;
    // The passed side's sums (the right side in reverse, the left going forward).
    let mut passed_g = 0.0;
    let mut passed_h = K_EPSILON;
    let mut passed_c: i64 = 0;
    let (steps, top) = match direction {
        Scan::Reverse { na_as_missing } => {
            let top = num_bin - 1 - usize::from(na_as_missing);
            (top, top)
        }
        Scan::Forward => ((num_bin - 1).min(hist.len()), 0),
    };
    let mut best: Option<Best> = None;
    for step in 0..steps {
        let t = match direction {
            Scan::Reverse { .. } => top - step,
            Scan::Forward => step,
        };
        let [g, h] = hist[t];
        passed_g += g;
        passed_h += h;
        passed_c += round_int(h * cnt_factor);
        if passed_c < p.min_data_in_leaf || passed_h < p.min_sum_hessian_in_leaf {
            continue;
        }
        let other_c = num_data - passed_c;
        if other_c < p.min_data_in_leaf {
            break;
        }
        let other_h = sum_hess - passed_h;
        if other_h < p.min_sum_hessian_in_leaf {
            break;
        }
        let other_g = sum_grad - passed_g;
        // Reverse: the threshold is below bin t (bins up to t - 1 go left).
        let (lg, lh, rg, rh, threshold) = match direction {
            Scan::Reverse { .. } => (other_g, other_h, passed_g, passed_h, t - 1),
            Scan::Forward => (passed_g, passed_h, other_g, other_h, t),
        };
        let gain = leaf_gain(lg, lh, p.lambda_l1, p.lambda_l2)
            + leaf_gain(rg, rh, p.lambda_l1, p.lambda_l2);
        if gain <= min_gain_shift {
            continue;
        }
        if best.as_ref().is_none_or(|b| gain > b.gain) {
            best = Some(Best {
                gain,
                threshold: threshold as u32,
                left_g: lg,
                left_h: lh,
            });
        }
    }
    best
}

fn numeric(
    feature: usize,
    feat: &BinnedFeature,
    hist: &[Bin],
    sum_grad: f64,
    sum_hess: f64,
    num_data: i64,
    p: &SplitParams,
) -> Option<SplitCandidate> {
    let (l1, l2) = (p.lambda_l1, p.lambda_l2);
    let min_gain_shift = leaf_gain(sum_grad, sum_hess, l1, l2) + p.min_gain_to_split;
    let num_bin = feat.num_bin;
    let scan_in = |direction| {
        scan(
            hist,
            num_bin,
            direction,
            sum_grad,
            sum_hess,
            num_data,
            min_gain_shift,
            p,
        )
    };
    let chosen: Option<(Best, bool)> = if num_bin > 2 && feat.nan_bin {
        // Missing values tried on both sides: left (reverse scan) and right (forward scan).
        let reverse = scan_in(Scan::Reverse {
            na_as_missing: true,
        });
        let forward = scan_in(Scan::Forward);
        match (reverse, forward) {
            (Some(r), Some(f)) if f.gain > r.gain => Some((f, false)),
            (Some(r), _) => Some((r, true)),
            (None, f) => f.map(|f| (f, false)),
        }
    } else {
        // With only a value bin and the NaN bin, the split separates NaN, which goes right.
        scan_in(Scan::Reverse {
            na_as_missing: false,
        })
        .map(|b| (b, !feat.nan_bin))
    };
    let (b, default_left) = chosen?;
    Some(candidate(
        feature,
        b.gain - min_gain_shift,
        SplitDecision::Numeric {
            threshold_bin: b.threshold,
            default_left,
        },
        sum_grad,
        sum_hess,
        b.left_g,
        b.left_h,
        l1,
        l2,
    ))
}

#[allow(clippy::too_many_arguments)]
fn candidate(
    feature: usize,
    gain: f64,
    decision: SplitDecision,
    sum_grad: f64,
    sum_hess: f64,
    left_g: f64,
    left_h: f64,
    l1: f64,
    l2: f64,
) -> SplitCandidate {
    let right_g = sum_grad - left_g;
    let right_h = sum_hess - left_h;
    SplitCandidate {
        feature,
        gain,
        decision,
        left_sum_grad: left_g,
        left_sum_hess: left_h - K_EPSILON,
        right_sum_grad: right_g,
        right_sum_hess: right_h - K_EPSILON,
        left_output: leaf_output(left_g, left_h, l1, l2),
        right_output: leaf_output(right_g, right_h, l1, l2),
    }
}

fn categorical(
    feature: usize,
    feat: &BinnedFeature,
    hist: &[Bin],
    sum_grad: f64,
    sum_hess: f64,
    num_data: i64,
    p: &SplitParams,
) -> Option<SplitCandidate> {
    let l1 = p.lambda_l1;
    let mut l2 = p.lambda_l2;
    let min_gain_shift = leaf_gain(sum_grad, sum_hess, l1, l2) + p.min_gain_to_split;
    let num_bin = feat.num_bin;
    let cnt_factor = num_data as f64 / sum_hess;
    let use_onehot = num_bin <= p.max_cat_to_onehot;
    let mut best_gain = f64::NEG_INFINITY;
    let mut best_left_g = 0.0;
    let mut best_left_h = 0.0;
    let mut best_bins: Vec<u32> = Vec::new();
    if use_onehot {
        for (t, &[g, h]) in hist.iter().enumerate().take(num_bin).skip(1) {
            let cnt = round_int(h * cnt_factor);
            if cnt < p.min_data_in_leaf || h < p.min_sum_hessian_in_leaf {
                continue;
            }
            let other_count = num_data - cnt;
            if other_count < p.min_data_in_leaf {
                continue;
            }
            let other_h = sum_hess - h - K_EPSILON;
            if other_h < p.min_sum_hessian_in_leaf {
                continue;
            }
            let other_g = sum_grad - g;
            let gain = leaf_gain(other_g, other_h, l1, l2) + leaf_gain(g, h + K_EPSILON, l1, l2);
            if gain <= min_gain_shift {
                continue;
            }
            if gain > best_gain {
                best_gain = gain;
                best_left_g = g;
                best_left_h = h + K_EPSILON;
                best_bins = vec![t as u32];
            }
        }
    } else {
        let mut sorted: Vec<usize> = (1..num_bin)
            .filter(|&i| round_int(hist[i][1] * cnt_factor) as f64 >= p.cat_smooth)
            .collect();
        let used_bin = sorted.len();
        l2 += p.cat_l2;
        let ctr = |i: usize| hist[i][0] / (hist[i][1] + p.cat_smooth);
        // Stable, as LightGBM's std::stable_sort.
        sorted.sort_by(|&a, &b| {
            ctr(a)
                .partial_cmp(&ctr(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let max_num_cat = p.max_cat_threshold.min(used_bin.div_ceil(2));
        let mut best_len = 0usize;
        let mut best_dir_forward = true;
        for forward in [true, false] {
            let mut cnt_cur_group: i64 = 0;
            let mut lg = 0.0;
            let mut lh = K_EPSILON;
            let mut lc: i64 = 0;
            for i in 0..used_bin.min(max_num_cat) {
                let t = if forward {
                    sorted[i]
                } else {
                    sorted[used_bin - 1 - i]
                };
                let [g, h] = hist[t];
                let cnt = round_int(h * cnt_factor);
                lg += g;
                lh += h;
                lc += cnt;
                cnt_cur_group += cnt;
                if lc < p.min_data_in_leaf || lh < p.min_sum_hessian_in_leaf {
                    continue;
                }
                let rc = num_data - lc;
                if rc < p.min_data_in_leaf || rc < p.min_data_per_group {
                    break;
                }
                let rh = sum_hess - lh;
                if rh < p.min_sum_hessian_in_leaf {
                    break;
                }
                if cnt_cur_group < p.min_data_per_group {
                    continue;
                }
                cnt_cur_group = 0;
                let rg = sum_grad - lg;
                let gain = leaf_gain(lg, lh, l1, l2) + leaf_gain(rg, rh, l1, l2);
                if gain <= min_gain_shift {
                    continue;
                }
                if gain > best_gain {
                    best_gain = gain;
                    best_left_g = lg;
                    best_left_h = lh;
                    best_len = i + 1;
                    best_dir_forward = forward;
                }
            }
        }
        if best_len > 0 {
            best_bins = if best_dir_forward {
                sorted[..best_len].iter().map(|&b| b as u32).collect()
            } else {
                sorted[used_bin - best_len..]
                    .iter()
                    .map(|&b| b as u32)
                    .collect()
            };
        }
    }
    if best_bins.is_empty() {
        return None;
    }
    best_bins.sort_unstable();
    Some(candidate(
        feature,
        best_gain - min_gain_shift,
        SplitDecision::Categorical {
            left_bins: best_bins,
        },
        sum_grad,
        sum_hess,
        best_left_g,
        best_left_h,
        l1,
        l2,
    ))
}

/// One leaf of a symmetric tree's level, as [`best_level_split`] reads it.
pub(crate) struct LevelLeaf<'h> {
    /// The feature's slice of the leaf's histogram.
    pub hist: &'h [Bin],
    pub sum_grad: f64,
    pub sum_hess: f64,
    pub num_data: i64,
}

/// The best split of `feat` shared by every leaf of a level, as CatBoost grows its symmetric
/// (oblivious) trees: per rule, the gains of all the leaves are summed. A leaf the rule leaves
/// with an empty side gains nothing (it is not split); `min_data_in_leaf` bounds the rows on
/// each side of the whole level instead of each leaf's. Numeric rules are thresholds with the
/// missing values on either side; categorical ones split one category off when there are few,
/// else a run of the categories ordered by the level's `sum_grad / (sum_hess + cat_smooth)` (as
/// [`best_split`] orders them in one leaf, with `cat_l2` added to their L2 as there). Of the other
/// parameters, `min_data_per_group`, `min_sum_hessian_in_leaf` and `num_leaves` do not apply
/// (`lambda_l2` > 0 keeps a leaf of few rows finite). Returns the summed gain over not
/// splitting, and the decision.
pub(crate) fn best_level_split(
    feat: &BinnedFeature,
    leaves: &[LevelLeaf],
    p: &SplitParams,
) -> Option<(f64, SplitDecision)> {
    let num_bin = feat.num_bin;
    // Each scan puts a growing prefix of `order` on the left, with `nan_left` (the NaN bin) too.
    struct LevelScan {
        order: Vec<usize>,
        nan_left: Option<usize>,
        max_len: usize,
        l2: f64,
    }
    let mut scans = Vec::new();
    if feat.is_categorical {
        let mut level = vec![[0.0f64; 3]; num_bin];
        for leaf in leaves.iter().filter(|l| l.num_data > 0) {
            let cnt_factor = leaf.num_data as f64 / leaf.sum_hess.max(K_EPSILON);
            for (t, &[g, h]) in leaf.hist.iter().enumerate().take(num_bin) {
                level[t][0] += g;
                level[t][1] += h;
                level[t][2] += (h * cnt_factor).round();
            }
        }
        // Bin 0 holds the missing and unseen categories: it stays right, as in `best_split`.
        if num_bin <= p.max_cat_to_onehot {
            scans.extend((1..num_bin).map(|b| LevelScan {
                order: vec![b],
                nan_left: None,
                max_len: 1,
                l2: p.lambda_l2,
            }));
        } else {
            let mut sorted: Vec<usize> = (1..num_bin)
                .filter(|&b| level[b][2] >= p.cat_smooth)
                .collect();
            let ctr = |b: usize| level[b][0] / (level[b][1] + p.cat_smooth);
            sorted.sort_by(|&a, &b| ctr(a).total_cmp(&ctr(b)));
            let max_len = p.max_cat_threshold.min(sorted.len().div_ceil(2));
            let reversed = sorted.iter().rev().copied().collect();
            scans.push(LevelScan {
                order: sorted,
                nan_left: None,
                max_len,
                l2: p.lambda_l2 + p.cat_l2,
            });
            scans.push(LevelScan {
                order: reversed,
                nan_left: None,
                max_len,
                l2: p.lambda_l2 + p.cat_l2,
            });
        }
    } else {
        let value_bins = num_bin - usize::from(feat.nan_bin);
        let order: Vec<usize> = (0..value_bins).collect();
        if feat.nan_bin {
            // All values left and the missing right is a rule too; all of them left is not.
            scans.push(LevelScan {
                order: order.clone(),
                nan_left: Some(num_bin - 1),
                max_len: value_bins - 1,
                l2: p.lambda_l2,
            });
            scans.push(LevelScan {
                order,
                nan_left: None,
                max_len: value_bins,
                l2: p.lambda_l2,
            });
        } else {
            scans.push(LevelScan {
                order,
                nan_left: None,
                max_len: value_bins - 1,
                l2: p.lambda_l2,
            });
        }
    }

    let gain_of = |g: f64, h: f64, l2: f64| {
        if h + l2 > 0.0 {
            leaf_gain(g, h, p.lambda_l1, l2)
        } else {
            0.0
        }
    };
    let level_rows: i64 = leaves.iter().map(|l| l.num_data).sum();
    // Per scan and prefix length: the summed gain and the rows on the left.
    let mut best: Option<(f64, usize, usize)> = None;
    let mut totals: Vec<[f64; 2]> = Vec::new();
    for (si, scan) in scans.iter().enumerate() {
        totals.clear();
        totals.resize(scan.max_len, [0.0; 2]);
        for leaf in leaves.iter().filter(|l| l.num_data > 0) {
            let cnt_factor = leaf.num_data as f64 / leaf.sum_hess.max(K_EPSILON);
            let parent = gain_of(leaf.sum_grad, leaf.sum_hess, scan.l2);
            let [mut lg, mut lh] = scan.nan_left.map_or([0.0, 0.0], |b| leaf.hist[b]);
            for (len, &b) in scan.order.iter().take(scan.max_len).enumerate() {
                let [g, h] = leaf.hist[b];
                lg += g;
                lh += h;
                let gain = gain_of(lg, lh, scan.l2)
                    + gain_of(leaf.sum_grad - lg, leaf.sum_hess - lh, scan.l2)
                    - parent;
                totals[len][0] += gain;
                totals[len][1] += (lh * cnt_factor).round();
            }
        }
        for (len, &[gain, left]) in totals.iter().enumerate() {
            let left = left as i64;
            if left < p.min_data_in_leaf || level_rows - left < p.min_data_in_leaf {
                continue;
            }
            if gain > p.min_gain_to_split && best.is_none_or(|(b, _, _)| gain > b) {
                best = Some((gain, si, len));
            }
        }
    }
    let (gain, si, len) = best?;
    let scan = &scans[si];
    let decision = if feat.is_categorical {
        let mut left_bins: Vec<u32> = scan.order[..=len].iter().map(|&b| b as u32).collect();
        left_bins.sort_unstable();
        SplitDecision::Categorical { left_bins }
    } else {
        SplitDecision::Numeric {
            threshold_bin: scan.order[len] as u32,
            default_left: scan.nan_left.is_some(),
        }
    };
    Some((gain - p.min_gain_to_split, decision))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automl::gbm::binning::BinMapper;

    fn params() -> SplitParams {
        SplitParams {
            lambda_l1: 0.0,
            lambda_l2: 3.0,
            min_data_in_leaf: 1,
            min_sum_hessian_in_leaf: 0.0,
            min_gain_to_split: 0.0,
            max_cat_threshold: 32,
            cat_l2: 10.0,
            cat_smooth: 10.0,
            min_data_per_group: 1,
            max_cat_to_onehot: 4,
        }
    }

    fn numeric(num_bin: usize) -> BinnedFeature {
        BinnedFeature {
            original: 0,
            mapper: BinMapper::Numeric {
                upper: (0..num_bin - 1).map(|b| b as f64).collect(),
                nan_bin: true,
            },
            num_bin,
            hist_offset: 0,
            is_categorical: false,
            nan_bin: true,
            first_value_bin: 0,
        }
    }

    /// One leaf's level split is the leaf's own best split: the same threshold, the same side
    /// for the missing values, the same gain.
    #[test]
    fn a_level_of_one_leaf_splits_as_the_leaf_would() {
        // Six value bins and the NaN bin (last); hessians of one row each.
        for (hist, (threshold_bin, missing_left)) in [
            // Missing rows look like the low values: they go left with them.
            (
                vec![
                    [-9.0, 10.0],
                    [-8.0, 10.0],
                    [-1.0, 10.0],
                    [4.0, 10.0],
                    [7.0, 10.0],
                    [8.0, 10.0],
                    [-10.0, 10.0],
                ],
                (1, true),
            ),
            // Missing rows look like the high values.
            (
                vec![
                    [-9.0, 10.0],
                    [-8.0, 10.0],
                    [-1.0, 10.0],
                    [4.0, 10.0],
                    [7.0, 10.0],
                    [8.0, 10.0],
                    [9.0, 10.0],
                ],
                (2, false),
            ),
        ] {
            let feat = numeric(hist.len());
            let (g, h) = hist
                .iter()
                .fold((0.0, 0.0), |(g, h), b| (g + b[0], h + b[1]));
            let p = params();
            let leaf = best_split(0, &feat, &hist, g, h, 70, &p).expect("a split");
            let level = best_level_split(
                &feat,
                &[LevelLeaf {
                    hist: &hist,
                    sum_grad: g,
                    sum_hess: h,
                    num_data: 70,
                }],
                &p,
            )
            .expect("a level split");
            assert_eq!(level.1, leaf.decision);
            assert_eq!(
                leaf.decision,
                SplitDecision::Numeric {
                    threshold_bin,
                    default_left: missing_left
                }
            );
            assert!(
                (level.0 - leaf.gain).abs() < 1e-9,
                "{} vs {}",
                level.0,
                leaf.gain
            );
        }
    }

    /// Over two leaves, the level takes the rule best for both together, which need not be
    /// either leaf's own best.
    #[test]
    fn a_level_sums_its_leaves_gains() {
        let feat = numeric(5);
        // Leaf a is best split at bin 0, leaf b at bin 2; at bin 1 both gain nearly as much,
        // which together is the most.
        let a = vec![
            [-10.0, 10.0],
            [0.0, 10.0],
            [5.0, 10.0],
            [5.0, 10.0],
            [0.0, 0.0],
        ];
        let b = vec![
            [-5.0, 10.0],
            [-5.0, 10.0],
            [0.0, 10.0],
            [10.0, 10.0],
            [0.0, 0.0],
        ];
        let leaves: Vec<LevelLeaf> = [&a, &b]
            .iter()
            .map(|hist| LevelLeaf {
                hist,
                sum_grad: hist.iter().map(|x| x[0]).sum(),
                sum_hess: hist.iter().map(|x| x[1]).sum(),
                num_data: 40,
            })
            .collect();
        let p = params();
        let gain_at = |t: usize| -> f64 {
            [&a, &b]
                .iter()
                .map(|hist| {
                    let (lg, lh) = hist[..=t]
                        .iter()
                        .fold((0.0, 0.0), |(g, h), x| (g + x[0], h + x[1]));
                    let (g, h) = hist
                        .iter()
                        .fold((0.0, 0.0), |(g, h), x| (g + x[0], h + x[1]));
                    leaf_gain(lg, lh, 0.0, 3.0) + leaf_gain(g - lg, h - lh, 0.0, 3.0)
                        - leaf_gain(g, h, 0.0, 3.0)
                })
                .sum()
        };
        let (gain, decision) = best_level_split(&feat, &leaves, &p).expect("a split");
        let SplitDecision::Numeric { threshold_bin, .. } = decision else {
            panic!("{decision:?}")
        };
        let best = (0..3)
            .max_by(|&x, &y| gain_at(x).total_cmp(&gain_at(y)))
            .expect("thresholds");
        assert_eq!(best, 1);
        assert_eq!(threshold_bin as usize, best);
        assert!((gain - gain_at(best)).abs() < 1e-9);
    }
}
