//! Feature binning as LightGBM's `BinMapper` does it: numeric features get quantile-like bins
//! (greedy over distinct values, at least `min_data_in_bin` values a bin, zero in a bin of its
//! own) plus a last bin for NaN when NaN occurs; categorical features get one bin per frequent
//! category, bin 0 holding NaN and the rare/unseen categories (never sent left by a split).

use super::FeatureMatrix;
use crate::automl::pipeline::category_index;
use crate::automl::random::SplitMix64;
use rayon::prelude::*;

/// LightGBM's `kZeroThreshold`: values this close to zero count as zero.
const ZERO_THRESHOLD: f64 = 1e-35;
/// Rows sampled to find bin bounds (LightGBM's `bin_construct_sample_cnt`).
const BIN_SAMPLE_ROWS: usize = 200_000;

#[derive(Debug, Clone)]
pub(crate) enum BinMapper {
    /// Bin `i` holds values `v` with `upper[i-1] < v <= upper[i]` (compared in `f64`); when
    /// `nan_bin`, the last bin holds NaN and `upper` has one entry fewer than the bins.
    Numeric { upper: Vec<f64>, nan_bin: bool },
    /// `bin_to_cat[b]` for bins `1..`; bin 0 is NaN and every category without a bin.
    Categorical {
        bin_to_cat: Vec<u32>,
        cat_to_bin: Vec<u32>,
    },
}

impl BinMapper {
    pub(crate) fn num_bin(&self) -> usize {
        match self {
            BinMapper::Numeric { upper, nan_bin } => upper.len() + usize::from(*nan_bin),
            BinMapper::Categorical { bin_to_cat, .. } => bin_to_cat.len(),
        }
    }

    pub(crate) fn bin(&self, v: f32) -> u32 {
        match self {
            BinMapper::Numeric { upper, nan_bin } => {
                if v.is_nan() {
                    if *nan_bin {
                        return upper.len() as u32;
                    }
                    // Without a NaN bin LightGBM reads a missing value as zero.
                    return numeric_bin(upper, 0.0);
                }
                numeric_bin(upper, f64::from(v))
            }
            BinMapper::Categorical { cat_to_bin, .. } => category_index(v)
                .and_then(|c| cat_to_bin.get(c as usize).copied())
                .unwrap_or(0),
        }
    }
}

/// First bin whose upper bound is >= v (the last bound is +inf).
fn numeric_bin(upper: &[f64], v: f64) -> u32 {
    upper.partition_point(|&u| u < v).min(upper.len() - 1) as u32
}

/// One feature kept for training (features with a single useful bin are dropped).
#[derive(Debug, Clone)]
pub(crate) struct BinnedFeature {
    /// Column index in the input matrix.
    pub original: usize,
    pub mapper: BinMapper,
    pub num_bin: usize,
    /// Start of this feature's bins in a leaf histogram.
    pub hist_offset: usize,
    pub is_categorical: bool,
    /// Numeric feature whose last bin holds NaN.
    pub nan_bin: bool,
    /// The lowest bin holding a training value (not NaN). Bins below it are empty: LightGBM's
    /// binning keeps a bin for zero even when no value is zero.
    pub first_value_bin: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum BinColumn {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

impl BinColumn {
    #[inline]
    pub(crate) fn get(&self, row: usize) -> u32 {
        match self {
            BinColumn::U8(v) => u32::from(v[row]),
            BinColumn::U16(v) => u32::from(v[row]),
        }
    }
}

/// The training matrix as bin indices, column-major.
#[derive(Debug, Clone)]
pub(crate) struct BinnedDataset {
    pub features: Vec<BinnedFeature>,
    pub columns: Vec<BinColumn>,
    pub total_bins: usize,
}

pub(crate) struct BinningParams {
    pub max_bin: usize,
    pub min_data_in_bin: usize,
    /// Features that cannot put this many rows on each side of some split are dropped
    /// (LightGBM's `feature_pre_filter` with `min_data_in_leaf`).
    pub filter_cnt: usize,
    pub seed: u64,
}

impl BinnedDataset {
    pub(crate) fn build(x: &FeatureMatrix, p: &BinningParams) -> BinnedDataset {
        let sample: Option<Vec<usize>> = (x.n_rows > BIN_SAMPLE_ROWS).then(|| {
            let mut rng = SplitMix64::new(p.seed ^ 0x5eed_b1b5);
            let mut idx = rng.sample_indices(x.n_rows, BIN_SAMPLE_ROWS);
            idx.sort_unstable();
            idx
        });
        let mappers: Vec<Option<BinMapper>> = x
            .columns
            .par_iter()
            .map(|c| {
                let values: Vec<f32> = match &sample {
                    Some(idx) => idx.iter().map(|&i| c.values[i]).collect(),
                    None => c.values.clone(),
                };
                if c.categorical.is_some() {
                    categorical_mapper(&values, p)
                } else {
                    numeric_mapper(&values, p)
                }
            })
            .collect();
        let mut features = Vec::new();
        let mut total_bins = 0;
        for (original, m) in mappers.into_iter().enumerate() {
            if let Some(mapper) = m {
                let num_bin = mapper.num_bin();
                let nan_bin = matches!(mapper, BinMapper::Numeric { nan_bin: true, .. });
                let is_categorical = matches!(mapper, BinMapper::Categorical { .. });
                features.push(BinnedFeature {
                    original,
                    mapper,
                    num_bin,
                    hist_offset: total_bins,
                    is_categorical,
                    nan_bin,
                    first_value_bin: 0,
                });
                total_bins += num_bin;
            }
        }
        let binned: Vec<(BinColumn, u32)> = features
            .par_iter()
            .map(|f| {
                let values = &x.columns[f.original].values;
                let column = if f.num_bin <= 256 {
                    BinColumn::U8(values.iter().map(|&v| f.mapper.bin(v) as u8).collect())
                } else {
                    BinColumn::U16(values.iter().map(|&v| f.mapper.bin(v) as u16).collect())
                };
                let nan = f.nan_bin.then(|| f.num_bin as u32 - 1);
                let first_value_bin = (0..x.n_rows)
                    .map(|r| column.get(r))
                    .filter(|&b| Some(b) != nan)
                    .min();
                (column, first_value_bin.unwrap_or(0))
            })
            .collect();
        let mut columns = Vec::with_capacity(binned.len());
        for (f, (column, first_value_bin)) in features.iter_mut().zip(binned) {
            f.first_value_bin = first_value_bin;
            columns.push(column);
        }
        BinnedDataset {
            features,
            columns,
            total_bins,
        }
    }
}

fn next_up(a: f64) -> f64 {
    if a.is_nan() || a == f64::INFINITY {
        a
    } else {
        a.next_up()
    }
}

/// LightGBM's `GetDoubleUpperBound` of a midpoint.
fn upper_of_midpoint(a: f64, b: f64) -> f64 {
    next_up((a + b) / 2.0)
}

/// LightGBM's `CheckDoubleEqualOrdered`.
fn nearly_equal_ordered(a: f64, b: f64) -> bool {
    b <= next_up(a)
}

fn greedy_find_bin(
    distinct: &[f64],
    counts: &[usize],
    max_bin: usize,
    total_cnt: usize,
    min_data_in_bin: usize,
) -> Vec<f64> {
    let n = distinct.len();
    let mut bounds = Vec::new();
    if n <= max_bin {
        let mut cur = 0usize;
        for i in 0..n.saturating_sub(1) {
            cur += counts[i];
            if cur >= min_data_in_bin {
                let val = upper_of_midpoint(distinct[i], distinct[i + 1]);
                if bounds
                    .last()
                    .is_none_or(|&last| !nearly_equal_ordered(last, val))
                {
                    bounds.push(val);
                    cur = 0;
                }
            }
        }
        bounds.push(f64::INFINITY);
        return bounds;
    }
    let mut max_bin = max_bin;
    if let Some(cap) = total_cnt.checked_div(min_data_in_bin) {
        max_bin = max_bin.min(cap).max(1);
    }
    let mut mean_bin_size = total_cnt as f64 / max_bin as f64;
    let mut rest_bin_cnt = max_bin as i64;
    let mut rest_sample_cnt = total_cnt as i64;
    let is_big: Vec<bool> = counts.iter().map(|&c| c as f64 >= mean_bin_size).collect();
    for (i, &big) in is_big.iter().enumerate() {
        if big {
            rest_bin_cnt -= 1;
            rest_sample_cnt -= counts[i] as i64;
        }
    }
    mean_bin_size = rest_sample_cnt as f64 / rest_bin_cnt as f64;
    let mut upper_bounds = vec![f64::INFINITY; max_bin];
    let mut lower_bounds = vec![f64::INFINITY; max_bin];
    let mut bin_cnt = 0usize;
    lower_bounds[0] = distinct[0];
    let mut cur = 0usize;
    for i in 0..n - 1 {
        if !is_big[i] {
            rest_sample_cnt -= counts[i] as i64;
        }
        cur += counts[i];
        if is_big[i]
            || cur as f64 >= mean_bin_size
            || (is_big[i + 1] && cur as f64 >= (mean_bin_size * 0.5).max(1.0))
        {
            upper_bounds[bin_cnt] = distinct[i];
            bin_cnt += 1;
            lower_bounds[bin_cnt] = distinct[i + 1];
            if bin_cnt >= max_bin - 1 {
                break;
            }
            cur = 0;
            if !is_big[i] {
                rest_bin_cnt -= 1;
                mean_bin_size = rest_sample_cnt as f64 / rest_bin_cnt as f64;
            }
        }
    }
    bin_cnt += 1;
    for i in 0..bin_cnt - 1 {
        let val = upper_of_midpoint(upper_bounds[i], lower_bounds[i + 1]);
        if bounds
            .last()
            .is_none_or(|&last| !nearly_equal_ordered(last, val))
        {
            bounds.push(val);
        }
    }
    bounds.push(f64::INFINITY);
    bounds
}

/// LightGBM's `FindBinWithZeroAsOneBin`: negatives and positives binned separately, with the
/// bounds `-kZeroThreshold` / `kZeroThreshold` isolating zero.
fn find_bin_zero_as_one_bin(
    distinct: &[f64],
    counts: &[usize],
    max_bin: usize,
    total_cnt: usize,
    min_data_in_bin: usize,
) -> Vec<f64> {
    let mut left_cnt_data = 0usize;
    let mut cnt_zero = 0usize;
    let mut right_cnt_data = 0usize;
    for (&v, &c) in distinct.iter().zip(counts) {
        if v <= -ZERO_THRESHOLD {
            left_cnt_data += c;
        } else if v > ZERO_THRESHOLD {
            right_cnt_data += c;
        } else {
            cnt_zero += c;
        }
    }
    let left_cnt = distinct
        .iter()
        .position(|&v| v > -ZERO_THRESHOLD)
        .unwrap_or(distinct.len());
    let mut bounds = Vec::new();
    if left_cnt > 0 && max_bin > 1 {
        let left_max_bin = ((left_cnt_data as f64 / (total_cnt - cnt_zero) as f64)
            * (max_bin - 1) as f64) as usize;
        let left_max_bin = left_max_bin.max(1);
        bounds = greedy_find_bin(
            &distinct[..left_cnt],
            &counts[..left_cnt],
            left_max_bin,
            left_cnt_data,
            min_data_in_bin,
        );
        if let Some(last) = bounds.last_mut() {
            *last = -ZERO_THRESHOLD;
        }
    }
    let right_start = (left_cnt..distinct.len()).find(|&i| distinct[i] > ZERO_THRESHOLD);
    let right_max_bin = (max_bin as i64) - 1 - bounds.len() as i64;
    match right_start {
        Some(rs) if right_max_bin > 0 => {
            let right = greedy_find_bin(
                &distinct[rs..],
                &counts[rs..],
                right_max_bin as usize,
                right_cnt_data,
                min_data_in_bin,
            );
            bounds.push(ZERO_THRESHOLD);
            bounds.extend(right);
        }
        _ => bounds.push(f64::INFINITY),
    }
    bounds
}

fn numeric_mapper(values: &[f32], p: &BinningParams) -> Option<BinMapper> {
    let total = values.len();
    let mut vals: Vec<f64> = values
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| {
            let v = f64::from(v);
            if v.abs() <= ZERO_THRESHOLD { 0.0 } else { v }
        })
        .collect();
    let na_cnt = total - vals.len();
    vals.sort_by(f64::total_cmp);
    let mut distinct: Vec<f64> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for &v in &vals {
        match distinct.last_mut() {
            Some(last) if nearly_equal_ordered(*last, v) => {
                // LightGBM keeps the larger of nearly equal values.
                *last = v;
                if let Some(c) = counts.last_mut() {
                    *c += 1;
                }
            }
            _ => {
                distinct.push(v);
                counts.push(1);
            }
        }
    }
    if distinct.is_empty() {
        distinct.push(0.0);
        counts.push(0);
    }
    let nan_bin = na_cnt > 0;
    let mut upper = if nan_bin {
        find_bin_zero_as_one_bin(
            &distinct,
            &counts,
            p.max_bin - 1,
            total - na_cnt,
            p.min_data_in_bin,
        )
    } else {
        find_bin_zero_as_one_bin(&distinct, &counts, p.max_bin, total, p.min_data_in_bin)
    };
    // The last bound must be +inf so every value finds a bin.
    if let Some(last) = upper.last_mut() {
        *last = f64::INFINITY;
    }
    let num_bin = upper.len() + usize::from(nan_bin);
    let mut cnt_in_bin = vec![0usize; num_bin];
    let mut i_bin = 0;
    for (&v, &c) in distinct.iter().zip(&counts) {
        while i_bin < upper.len() - 1 && v > upper[i_bin] {
            i_bin += 1;
        }
        cnt_in_bin[i_bin] += c;
    }
    if nan_bin {
        cnt_in_bin[num_bin - 1] = na_cnt;
    }
    if num_bin <= 1 || needs_filter_numeric(&cnt_in_bin, total, p.filter_cnt) {
        return None;
    }
    upper.shrink_to_fit();
    Some(BinMapper::Numeric { upper, nan_bin })
}

fn needs_filter_numeric(cnt_in_bin: &[usize], total: usize, filter_cnt: usize) -> bool {
    let mut sum_left = 0;
    for &c in &cnt_in_bin[..cnt_in_bin.len() - 1] {
        sum_left += c;
        if sum_left >= filter_cnt && total - sum_left >= filter_cnt {
            return false;
        }
    }
    true
}

fn categorical_mapper(values: &[f32], p: &BinningParams) -> Option<BinMapper> {
    let total = values.len();
    let mut counts_by_cat: Vec<usize> = Vec::new();
    let mut na_cnt = 0usize;
    for &v in values {
        match category_index(v) {
            Some(c) => {
                let c = c as usize;
                if c >= counts_by_cat.len() {
                    counts_by_cat.resize(c + 1, 0);
                }
                counts_by_cat[c] += 1;
            }
            None => na_cnt += 1,
        }
    }
    let mut cats: Vec<(u32, usize)> = counts_by_cat
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, &c)| (i as u32, c))
        .collect();
    // Most frequent first; ties by category index (stable over the ascending order).
    cats.sort_by_key(|c| std::cmp::Reverse(c.1));
    // Computed in f32 as LightGBM does.
    let cut_cnt = ((total - na_cnt) as f32 * 0.99f32 + 0.5) as usize;
    let distinct_cnt = cats.len() + usize::from(na_cnt > 0);
    let max_bin = distinct_cnt.min(p.max_bin);
    let mut bin_to_cat = vec![u32::MAX];
    let mut cnt_in_bin = vec![0usize];
    let mut used_cnt = 0usize;
    for (cur, &(cat, cnt)) in cats.iter().enumerate() {
        if !(used_cnt < cut_cnt || bin_to_cat.len() < max_bin) {
            break;
        }
        if cnt < p.min_data_in_bin && cur > 1 {
            break;
        }
        bin_to_cat.push(cat);
        cnt_in_bin.push(cnt);
        used_cnt += cnt;
    }
    cnt_in_bin[0] = total - used_cnt;
    let num_bin = bin_to_cat.len();
    if num_bin <= 1 {
        return None;
    }
    if num_bin <= 2 {
        let keep = cnt_in_bin[..num_bin - 1]
            .iter()
            .any(|&c| c >= p.filter_cnt && total - c >= p.filter_cnt);
        if !keep {
            return None;
        }
    }
    let max_cat = bin_to_cat[1..].iter().copied().max().unwrap_or(0) as usize;
    let mut cat_to_bin = vec![0u32; max_cat + 1];
    for (b, &c) in bin_to_cat.iter().enumerate().skip(1) {
        cat_to_bin[c as usize] = b as u32;
    }
    Some(BinMapper::Categorical {
        bin_to_cat,
        cat_to_bin,
    })
}

/// The largest `f32` not above `u`: `x_f32 <= result` exactly when `f64(x) <= u`.
pub(crate) fn f32_at_or_below(u: f64) -> f32 {
    if u >= f64::from(f32::MAX) {
        return f32::MAX;
    }
    let t = u as f32;
    if f64::from(t) > u { t.next_down() } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BinningParams {
        BinningParams {
            max_bin: 255,
            min_data_in_bin: 3,
            filter_cnt: 1,
            seed: 0,
        }
    }

    #[test]
    fn few_distinct_values_get_midpoint_bounds() {
        let v: Vec<f32> = (0..30).map(|i| (i % 3) as f32 + 1.0).collect();
        let m = numeric_mapper(&v, &params()).expect("not trivial");
        // As in LightGBM, zero keeps a bin of its own even when no value is zero.
        assert_eq!(m.num_bin(), 4);
        assert_eq!(m.bin(0.0), 0);
        assert_eq!(m.bin(1.0), 1);
        assert_eq!(m.bin(1.6), 2);
        assert_eq!(m.bin(3.0), 3);
        assert_eq!(m.bin(f32::NAN), m.bin(0.0));
    }

    #[test]
    fn nan_gets_the_last_bin() {
        let mut v: Vec<f32> = (0..100).map(|i| i as f32).collect();
        v.extend([f32::NAN; 10]);
        let m = numeric_mapper(&v, &params()).expect("not trivial");
        assert_eq!(m.bin(f32::NAN) as usize, m.num_bin() - 1);
        assert!((m.bin(99.0) as usize) < m.num_bin() - 1);
    }

    #[test]
    fn many_values_are_capped_at_max_bin() {
        let v: Vec<f32> = (0..10_000).map(|i| (i as f32).sin() * 1000.0).collect();
        let m = numeric_mapper(&v, &params()).expect("not trivial");
        assert!(m.num_bin() <= 255 && m.num_bin() > 200, "{}", m.num_bin());
        let mut prev = 0;
        let mut sorted = v.clone();
        sorted.sort_by(f32::total_cmp);
        for x in sorted {
            let b = m.bin(x);
            assert!(b >= prev);
            prev = b;
        }
    }

    #[test]
    fn threshold_rounding_matches_f64_comparison() {
        for u in [0.1f64, -0.3, 1e-36, -1e-35, 12_345.678_9, 3.4e38, 1e300] {
            let t = f32_at_or_below(u);
            for x in [t, t.next_up(), t.next_down()] {
                assert_eq!(x <= t, f64::from(x) <= u, "u={u} x={x}");
            }
        }
    }

    #[test]
    fn rare_categories_share_bin_zero() {
        let mut v: Vec<f32> = Vec::new();
        for c in 0..5u32 {
            v.extend(std::iter::repeat_n(c as f32, 50));
        }
        v.push(7.0);
        let m = categorical_mapper(&v, &params()).expect("not trivial");
        assert_eq!(m.bin(7.0), 0);
        assert_eq!(m.bin(f32::NAN), 0);
        assert_ne!(m.bin(3.0), 0);
    }
}
