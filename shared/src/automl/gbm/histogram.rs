//! Gradient/hessian histograms of one leaf: `[sum_grad, sum_hess]` per bin, all features in one
//! flat buffer. Built per feature in parallel (each feature's sums run in row order on one
//! thread, so the result does not depend on scheduling).

use super::binning::{BinColumn, BinnedDataset};
use rayon::prelude::*;

pub(crate) type Bin = [f64; 2];

/// Below this many (rows x features) a histogram is built on the calling thread: spreading it
/// costs more than it saves.
const PARALLEL_WORK: usize = 32_768;

/// Splits `hist` into the slices of the features marked in `used`.
fn feature_slices<'h>(
    data: &BinnedDataset,
    used: &[bool],
    hist: &'h mut [Bin],
) -> Vec<(usize, &'h mut [Bin])> {
    let mut out = Vec::with_capacity(data.features.len());
    let mut rest = hist;
    for (f, feat) in data.features.iter().enumerate() {
        let (mine, tail) = rest.split_at_mut(feat.num_bin);
        rest = tail;
        if used[f] {
            out.push((f, mine));
        }
    }
    out
}

/// Builds the histogram of the rows `rows`, whose gradients/hessians are `og`/`oh` in the same
/// order, for the features marked in `used`.
pub(crate) fn build(
    data: &BinnedDataset,
    used: &[bool],
    rows: &[u32],
    og: &[f32],
    oh: &[f32],
    hist: &mut [Bin],
) {
    let slices = feature_slices(data, used, hist);
    let work = rows.len() * slices.len();
    let one = |(f, out): (usize, &mut [Bin])| {
        out.fill([0.0, 0.0]);
        match &data.columns[f] {
            BinColumn::U8(col) => accumulate(col, rows, og, oh, out),
            BinColumn::U16(col) => accumulate(col, rows, og, oh, out),
        }
    };
    if work >= PARALLEL_WORK && rayon::current_num_threads() > 1 {
        slices.into_par_iter().for_each(one);
    } else {
        slices.into_iter().for_each(one);
    }
}

#[inline]
fn accumulate<T: Copy + Into<u32>>(
    col: &[T],
    rows: &[u32],
    og: &[f32],
    oh: &[f32],
    out: &mut [Bin],
) {
    for ((&r, &g), &h) in rows.iter().zip(og).zip(oh) {
        let b = col[r as usize].into() as usize;
        let e = &mut out[b];
        e[0] += f64::from(g);
        e[1] += f64::from(h);
    }
}

/// `parent -= child` over the features marked in `used`: the parent's buffer becomes the
/// histogram of its other child.
pub(crate) fn subtract(data: &BinnedDataset, used: &[bool], parent: &mut [Bin], child: &[Bin]) {
    for (f, feat) in data.features.iter().enumerate() {
        if !used[f] {
            continue;
        }
        let range = feat.hist_offset..feat.hist_offset + feat.num_bin;
        for (p, c) in parent[range.clone()].iter_mut().zip(&child[range]) {
            p[0] -= c[0];
            p[1] -= c[1];
        }
    }
}
