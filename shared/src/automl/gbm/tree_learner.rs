//! Leaf-wise (best-first) growth of one tree on gradient/hessian histograms, as LightGBM's
//! `SerialTreeLearner`: the leaf with the largest split gain is split next; the smaller child's
//! histogram is built from its rows and the larger child's is the parent's minus it. Rows live in
//! one index buffer, each leaf a contiguous range of it, partitioned stably in place. Symmetric
//! trees ([`TreeLearner::grow_symmetric`]) grow level by level on the same buffers.

use super::binning::{BinMapper, BinnedDataset, f32_at_or_below};
use super::histogram::{self, Bin};
use super::split::{self, SplitCandidate, SplitDecision, SplitParams};
use crate::automl::pipeline::{Node, SplitRule};
use rayon::prelude::*;

/// The histogram slot of a symmetric tree's last-level leaf, which has none.
const NO_HISTOGRAM: usize = usize::MAX;

/// Below this many (rows x features), split finding stays on the calling thread.
const PARALLEL_SPLIT_WORK: usize = 65_536;

pub(crate) struct GrowthParams {
    pub num_leaves: usize,
    /// `None` = unlimited.
    pub max_depth: Option<usize>,
    pub split: SplitParams,
}

/// A grown tree: pipeline nodes (leaf values unshrunk), and where each leaf's rows are.
pub(crate) struct GrownTree {
    pub nodes: Vec<Node>,
    /// Per node, the rows of the bag that reached it (see [`crate::automl::pipeline::Tree`]).
    pub covers: Vec<f64>,
    /// Per leaf: its node index, output, and `start..end` in [`TreeLearner::rows`].
    pub leaves: Vec<GrownLeaf>,
    /// `(original feature, gain)` of every split.
    pub split_gains: Vec<(usize, f64)>,
}

pub(crate) struct GrownLeaf {
    pub node: usize,
    pub output: f64,
    pub start: usize,
    pub end: usize,
}

struct Leaf {
    start: usize,
    end: usize,
    sum_grad: f64,
    sum_hess: f64,
    depth: usize,
    node: usize,
    output: f64,
    /// Histogram slot in the pool.
    hist: usize,
    /// Features still worth trying below this leaf.
    usable: Vec<bool>,
    best: Option<SplitCandidate>,
}

pub(crate) struct TreeLearner<'a> {
    data: &'a BinnedDataset,
    params: &'a GrowthParams,
    /// Row indices, partitioned so each leaf is a contiguous range.
    pub rows: Vec<u32>,
    scratch: Vec<u32>,
    og: Vec<f32>,
    oh: Vec<f32>,
    hist_pool: Vec<Vec<Bin>>,
}

impl<'a> TreeLearner<'a> {
    pub(crate) fn new(data: &'a BinnedDataset, params: &'a GrowthParams) -> Self {
        TreeLearner {
            data,
            params,
            rows: Vec::new(),
            scratch: Vec::new(),
            og: Vec::new(),
            oh: Vec::new(),
            hist_pool: Vec::new(),
        }
    }

    fn take_hist(&mut self, free: &mut Vec<usize>) -> usize {
        if let Some(slot) = free.pop() {
            return slot;
        }
        self.hist_pool.push(vec![[0.0, 0.0]; self.data.total_bins]);
        self.hist_pool.len() - 1
    }

    /// Gathers the leaf's gradients in row order and builds its histogram into `slot`.
    fn build_hist(
        &mut self,
        g: &[f32],
        h: &[f32],
        start: usize,
        end: usize,
        used: &[bool],
        slot: usize,
    ) {
        let rows = &self.rows[start..end];
        self.og.clear();
        self.oh.clear();
        self.og.extend(rows.iter().map(|&r| g[r as usize]));
        self.oh.extend(rows.iter().map(|&r| h[r as usize]));
        histogram::build(
            self.data,
            used,
            rows,
            &self.og,
            &self.oh,
            &mut self.hist_pool[slot],
        );
    }

    fn find_best(&self, leaf: &mut Leaf) {
        leaf.best = None;
        let num_data = (leaf.end - leaf.start) as i64;
        let p = &self.params.split;
        let depth_ok = self.params.max_depth.is_none_or(|d| leaf.depth < d);
        if !depth_ok || num_data < 2 * p.min_data_in_leaf {
            return;
        }
        let hist = &self.hist_pool[leaf.hist];
        let feats: Vec<usize> = (0..self.data.features.len())
            .filter(|&f| leaf.usable[f])
            .collect();
        let one = |&f: &usize| {
            let feat = &self.data.features[f];
            let fh = &hist[feat.hist_offset..feat.hist_offset + feat.num_bin];
            split::best_split(f, feat, fh, leaf.sum_grad, leaf.sum_hess, num_data, p)
        };
        let work = feats.len() * (leaf.end - leaf.start);
        let found: Vec<Option<SplitCandidate>> =
            if work >= PARALLEL_SPLIT_WORK && rayon::current_num_threads() > 1 {
                feats.par_iter().map(one).collect()
            } else {
                feats.iter().map(one).collect()
            };
        let mut best: Option<SplitCandidate> = None;
        for (f, c) in feats.iter().zip(found) {
            match c {
                None => leaf.usable[*f] = false,
                Some(c) => {
                    if best.as_ref().is_none_or(|b| c.better_than(b)) {
                        best = Some(c);
                    }
                }
            }
        }
        leaf.best = best;
    }

    /// Grows one tree on the rows `bag` (ascending) with gradients `g`, hessians `h`, trying only
    /// the features marked in `features`.
    pub(crate) fn grow(
        &mut self,
        g: &[f32],
        h: &[f32],
        bag: &[u32],
        features: &[bool],
    ) -> GrownTree {
        let p = self.params;
        self.rows.clear();
        self.rows.extend_from_slice(bag);
        self.scratch.resize(bag.len(), 0);
        let mut free: Vec<usize> = (0..self.hist_pool.len()).rev().collect();
        let (mut sg, mut sh) = (0.0f64, 0.0f64);
        for &r in bag {
            sg += f64::from(g[r as usize]);
            sh += f64::from(h[r as usize]);
        }
        let root_slot = self.take_hist(&mut free);
        self.build_hist(g, h, 0, bag.len(), features, root_slot);
        let mut root = Leaf {
            start: 0,
            end: bag.len(),
            sum_grad: sg,
            sum_hess: sh,
            depth: 0,
            node: 0,
            output: 0.0,
            hist: root_slot,
            usable: features.to_vec(),
            best: None,
        };
        self.find_best(&mut root);
        let mut leaves = vec![root];
        let mut nodes = vec![Node::Leaf { value: 0.0 }];
        let mut covers = vec![bag.len() as f64];
        let mut split_gains = Vec::new();

        while leaves.len() < p.num_leaves {
            let mut pick: Option<usize> = None;
            for (i, l) in leaves.iter().enumerate() {
                if let Some(b) = &l.best {
                    let better = match pick.and_then(|j| leaves[j].best.as_ref()) {
                        None => true,
                        Some(pb) => b.gain > pb.gain,
                    };
                    if better {
                        pick = Some(i);
                    }
                }
            }
            let Some(li) = pick else { break };
            let Some(best) = leaves[li].best.take() else {
                break;
            };
            if best.gain <= 0.0 {
                break;
            }
            let (start, end) = (leaves[li].start, leaves[li].end);
            let mid = self.partition(start, end, best.feature, &best.decision);
            let feat = &self.data.features[best.feature];
            split_gains.push((feat.original, best.gain));

            let left_node = nodes.len();
            let right_node = left_node + 1;
            nodes[leaves[li].node] =
                self.split_node(best.feature, &best.decision, left_node, right_node);
            nodes.push(Node::Leaf { value: 0.0 });
            nodes.push(Node::Leaf { value: 0.0 });
            covers.push((mid - start) as f64);
            covers.push((end - mid) as f64);

            let parent_slot = leaves[li].hist;
            let usable = leaves[li].usable.clone();
            let depth = leaves[li].depth + 1;
            let mut left = Leaf {
                start,
                end: mid,
                sum_grad: best.left_sum_grad,
                sum_hess: best.left_sum_hess,
                depth,
                node: left_node,
                output: best.left_output,
                hist: parent_slot,
                usable: usable.clone(),
                best: None,
            };
            let mut right = Leaf {
                start: mid,
                end,
                sum_grad: best.right_sum_grad,
                sum_hess: best.right_sum_hess,
                depth,
                node: right_node,
                output: best.right_output,
                hist: parent_slot,
                usable,
                best: None,
            };
            let used = left.usable.clone();
            (left.hist, right.hist) =
                self.child_hists(g, h, (start, mid, end), parent_slot, &used, &mut free);
            self.find_best(&mut left);
            self.find_best(&mut right);
            leaves[li] = left;
            leaves.push(right);
        }

        let grown_leaves = leaves
            .iter()
            .map(|l| GrownLeaf {
                node: l.node,
                output: l.output,
                start: l.start,
                end: l.end,
            })
            .collect();
        GrownTree {
            nodes,
            covers,
            leaves: grown_leaves,
            split_gains,
        }
    }

    /// The histograms of a split leaf's children `start..mid` and `mid..end`: the smaller is
    /// built from its rows, the larger is the parent's (`parent_slot`) minus it.
    fn child_hists(
        &mut self,
        g: &[f32],
        h: &[f32],
        (start, mid, end): (usize, usize, usize),
        parent_slot: usize,
        used: &[bool],
        free: &mut Vec<usize>,
    ) -> (usize, usize) {
        let small_slot = self.take_hist(free);
        let left_smaller = (mid - start) < (end - mid);
        let (s, e) = if left_smaller {
            (start, mid)
        } else {
            (mid, end)
        };
        self.build_hist(g, h, s, e, used, small_slot);
        let (a, b) = if parent_slot < small_slot {
            let (lo, hi) = self.hist_pool.split_at_mut(small_slot);
            (&mut lo[parent_slot], &hi[0])
        } else {
            let (lo, hi) = self.hist_pool.split_at_mut(parent_slot);
            (&mut hi[0], &lo[small_slot])
        };
        histogram::subtract(self.data, used, a, b);
        if left_smaller {
            (small_slot, parent_slot)
        } else {
            (parent_slot, small_slot)
        }
    }

    /// Grows one symmetric (oblivious) tree of `depth` levels, as CatBoost does: every node of
    /// a level splits on the same rule, the one whose gains summed over the level are largest
    /// ([`split::best_level_split`]), except a node the rule would leave with an empty side: it
    /// stays whole and takes the next level's rule, so a tree is symmetric by level of growth,
    /// not always by depth. Fewer levels when no rule gains.
    pub(crate) fn grow_symmetric(
        &mut self,
        g: &[f32],
        h: &[f32],
        bag: &[u32],
        features: &[bool],
        depth: usize,
    ) -> GrownTree {
        struct LevelNode {
            start: usize,
            end: usize,
            sum_grad: f64,
            sum_hess: f64,
            node: usize,
            hist: usize,
        }
        let params = self.params;
        let p = &params.split;
        self.rows.clear();
        self.rows.extend_from_slice(bag);
        self.scratch.resize(bag.len(), 0);
        let mut free: Vec<usize> = (0..self.hist_pool.len()).rev().collect();
        let sums = |rows: &[u32]| {
            rows.iter().fold((0.0f64, 0.0f64), |(sg, sh), &r| {
                (sg + f64::from(g[r as usize]), sh + f64::from(h[r as usize]))
            })
        };
        let (sg, sh) = sums(bag);
        let root_slot = self.take_hist(&mut free);
        self.build_hist(g, h, 0, bag.len(), features, root_slot);
        let mut level = vec![LevelNode {
            start: 0,
            end: bag.len(),
            sum_grad: sg,
            sum_hess: sh,
            node: 0,
            hist: root_slot,
        }];
        let mut nodes = vec![Node::Leaf { value: 0.0 }];
        let mut covers = vec![bag.len() as f64];
        let mut split_gains = Vec::new();
        let feats: Vec<usize> = (0..self.data.features.len())
            .filter(|&f| features[f])
            .collect();
        for d in 0..depth {
            let one = |&f: &usize| {
                let feat = &self.data.features[f];
                let leaves: Vec<split::LevelLeaf> = level
                    .iter()
                    .map(|n| split::LevelLeaf {
                        hist: &self.hist_pool[n.hist]
                            [feat.hist_offset..feat.hist_offset + feat.num_bin],
                        sum_grad: n.sum_grad,
                        sum_hess: n.sum_hess,
                        num_data: (n.end - n.start) as i64,
                    })
                    .collect();
                split::best_level_split(feat, &leaves, p)
            };
            let work = feats.len() * bag.len();
            let found: Vec<Option<(f64, SplitDecision)>> =
                if work >= PARALLEL_SPLIT_WORK && rayon::current_num_threads() > 1 {
                    feats.par_iter().map(one).collect()
                } else {
                    feats.iter().map(one).collect()
                };
            // Larger gain, then the smaller feature index (as `SplitCandidate::better_than`).
            let mut best: Option<(usize, f64, SplitDecision)> = None;
            for (&f, c) in feats.iter().zip(found) {
                if let Some((gain, decision)) = c
                    && best.as_ref().is_none_or(|(_, b, _)| gain > *b)
                {
                    best = Some((f, gain, decision));
                }
            }
            let Some((feature, gain, decision)) = best else {
                break;
            };
            let last = d + 1 == depth;
            let level_len = level.len();
            let mut next = Vec::with_capacity(2 * level_len);
            for parent in level {
                let (start, end) = (parent.start, parent.end);
                let mid = self.partition(start, end, feature, &decision);
                // A node whose rows all take one side is not split: an empty side would
                // predict nothing for the rows that reach it later, and count no rows for
                // explanations. It goes on to the next level whole.
                if mid == start || mid == end {
                    next.push(parent);
                    continue;
                }
                let (lg, lh) = sums(&self.rows[start..mid]);
                let (left_node, right_node) = (nodes.len(), nodes.len() + 1);
                nodes[parent.node] = self.split_node(feature, &decision, left_node, right_node);
                nodes.push(Node::Leaf { value: 0.0 });
                nodes.push(Node::Leaf { value: 0.0 });
                covers.push((mid - start) as f64);
                covers.push((end - mid) as f64);
                // The last level's leaves need no histograms.
                let (left_hist, right_hist) = if last {
                    (NO_HISTOGRAM, NO_HISTOGRAM)
                } else {
                    self.child_hists(g, h, (start, mid, end), parent.hist, features, &mut free)
                };
                next.push(LevelNode {
                    start,
                    end: mid,
                    sum_grad: lg,
                    sum_hess: lh,
                    node: left_node,
                    hist: left_hist,
                });
                next.push(LevelNode {
                    start: mid,
                    end,
                    sum_grad: parent.sum_grad - lg,
                    sum_hess: parent.sum_hess - lh,
                    node: right_node,
                    hist: right_hist,
                });
            }
            // A rule that split no node (its gain was rounding noise) ends the tree.
            if next.len() == level_len {
                level = next;
                break;
            }
            split_gains.push((self.data.features[feature].original, gain));
            level = next;
        }
        let leaves = level
            .iter()
            .map(|n| GrownLeaf {
                node: n.node,
                output: split::leaf_output(n.sum_grad, n.sum_hess, p.lambda_l1, p.lambda_l2),
                start: n.start,
                end: n.end,
            })
            .collect();
        GrownTree {
            nodes,
            covers,
            leaves,
            split_gains,
        }
    }

    /// Whether a row with bin `b` of the split's feature goes left.
    fn goes_left(
        &self,
        feature: usize,
        decision: &SplitDecision,
        b: u32,
        left_set: &[bool],
    ) -> bool {
        match decision {
            SplitDecision::Numeric {
                threshold_bin,
                default_left,
            } => {
                let feat = &self.data.features[feature];
                if feat.nan_bin && b as usize == feat.num_bin - 1 {
                    *default_left
                } else {
                    b <= *threshold_bin
                }
            }
            SplitDecision::Categorical { .. } => left_set[b as usize],
        }
    }

    /// Stable partition of `rows[start..end]` by the split of `feature`; returns where the right
    /// part starts.
    fn partition(
        &mut self,
        start: usize,
        end: usize,
        feature: usize,
        decision: &SplitDecision,
    ) -> usize {
        let feat = &self.data.features[feature];
        let mut left_set = Vec::new();
        if let SplitDecision::Categorical { left_bins } = decision {
            left_set = vec![false; feat.num_bin];
            for &b in left_bins {
                left_set[b as usize] = true;
            }
        }
        let col = &self.data.columns[feature];
        let mut nl = start;
        let mut nr = 0;
        for i in start..end {
            let r = self.rows[i];
            if self.goes_left(feature, decision, col.get(r as usize), &left_set) {
                self.rows[nl] = r;
                nl += 1;
            } else {
                self.scratch[nr] = r;
                nr += 1;
            }
        }
        self.rows[nl..end].copy_from_slice(&self.scratch[..nr]);
        nl
    }

    /// The pipeline node of a split of `feature`: bins turned into an `f32` threshold or a
    /// category set.
    fn split_node(
        &self,
        feature: usize,
        decision: &SplitDecision,
        left: usize,
        right: usize,
    ) -> Node {
        let feat = &self.data.features[feature];
        let (rule, missing_left) = match (decision, &feat.mapper) {
            (
                SplitDecision::Numeric {
                    threshold_bin,
                    default_left,
                },
                BinMapper::Numeric { upper, nan_bin },
            ) => {
                let u = upper[*threshold_bin as usize];
                // Without a NaN bin, training read NaN as zero; keep that at prediction.
                let missing_left = if *nan_bin { *default_left } else { 0.0 <= u };
                // A rule that sends only the missing values left (no training value is at or
                // below the threshold) sends every value right, zero included: the empty zero
                // bin's bound would have sent a zero never seen in training with the missing.
                let threshold = if *nan_bin && *threshold_bin < feat.first_value_bin {
                    f32::MIN
                } else {
                    f32_at_or_below(u)
                };
                (SplitRule::LessOrEqual(threshold), missing_left)
            }
            (
                SplitDecision::Categorical { left_bins },
                BinMapper::Categorical { bin_to_cat, .. },
            ) => {
                let mut cats: Vec<u32> =
                    left_bins.iter().map(|&b| bin_to_cat[b as usize]).collect();
                cats.sort_unstable();
                (SplitRule::InSet(cats), false)
            }
            // A feature's decision always matches its mapper kind.
            _ => (SplitRule::InSet(Vec::new()), false),
        };
        Node::Split {
            feature: feat.original,
            rule,
            missing_left,
            left: left as u32,
            right: right as u32,
        }
    }
}
