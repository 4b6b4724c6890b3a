//! `ai.onnx.ml.TreeEnsembleRegressor`, which tract 0.23 does not register, parsed into our own
//! tract operator. The evaluation walks a flat node array, several rows (or trees) at once in
//! lock-step, eight rows read from one interleaved block; `BRANCH_EQ` chains are fused into set
//! nodes at load; a forest of comparisons and sets is walked in a one-test form
//! (`±x > threshold`, a set node by a branch); large batches spread rows over threads, small
//! batches against large forests spread chunks of trees.
//!
//! Supported: every node mode, `nodes_missing_value_tracks_true` (NaN goes to the true branch
//! when set, else to the false branch, as tract's own tree code does), several votes per leaf,
//! `base_values`, aggregate `SUM`, post-transform `NONE` (the export uses exactly that); other
//! aggregates or transforms are refused at load time rather than computed differently.

use rayon::prelude::*;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::pb_helpers::*;
use tract_onnx::tract_hir::internal::*;

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("TreeEnsembleRegressor", parse);
}

/// Which comparison outcomes send a row to the true branch: bit 0 = x < threshold, bit 1 =
/// x == threshold, bit 2 = x > threshold. Every ONNX branch mode is one such mask, so one
/// branch-free step serves them all.
const MASK_LEQ: u32 = 0b011;
const MASK_LT: u32 = 0b001;
const MASK_GTE: u32 = 0b110;
const MASK_GT: u32 = 0b100;
const MASK_EQ: u32 = 0b010;
const MASK_NEQ: u32 = 0b101;
const FEATURE_MASK: u32 = 0x00FF_FFFF;
/// Features a forest may read: a node holds its [`signed_offset`] in FEATURE_MASK's bits.
const MAX_FEATURES: usize = (FEATURE_MASK as usize + 1) / (2 * LANES);
const MASK_SHIFT: u32 = 24;
/// A set node: true when x is a whole number in the node's window of 32 codes
/// (`window × 32 ..`, window in bits 28..31) whose bit is set in the 32 bits of `value`.
const SET_FLAG: u32 = 1 << 27;
const WINDOW_SHIFT: u32 = 28;
const WINDOWS: u32 = 8;
const NAN_TRUE: u32 = 1 << 31;

/// Independent walks interleaved in one loop (rows of a block, or trees of a single row): a
/// walk is a chain of dependent loads, and several chains at once keep the core busy.
const LANES: usize = 8;
/// Trees per unit of work when one small batch is spread over threads (each unit sums its trees
/// apart, as onnxruntime's threads do), and per group sorted by depth for single rows.
const TREE_CHUNK: usize = 128;
/// Node steps per call below which a small batch stays on one thread. Handing a job to the
/// pool and waking it costs 50 µs or more when the calling thread shares two cores with the
/// pool (measured: a single row of loan_grade, 20,700 steps, 114 µs on one thread, 167 µs
/// spread; penguins at 16 rows, 71,000 steps, 337 → 215 µs spread).
const PARALLEL_MIN_STEPS: usize = 50_000;

/// One node in 16 bytes. `packed` = feature | outcome mask << 24 | set flag << 27 | set
/// window << 28 | NaN-goes-true << 31, `value` the threshold (a set node: its 32 bits), `a`/`b`
/// the true/false children (global indices). A leaf points to itself both ways (feature 0), so
/// a walk of fixed length parks on it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FlatNode {
    packed: u32,
    value: f32,
    a: u32,
    b: u32,
}

impl FlatNode {
    /// The child a row whose value of this node's feature is `xv` goes to (itself for a
    /// leaf). The comparison modes and the NaN rule are branch-free; with `SETS`, a set node
    /// takes its lookup instead (forests without set nodes never test for one).
    #[inline(always)]
    fn next<const SETS: bool>(&self, xv: f32) -> u32 {
        // 0 below, 1 equal, 2 above; NaN compares false both ways (0) and is handled apart.
        let rank = u32::from(xv >= self.value) + u32::from(xv > self.value);
        let mut decided = (self.packed >> (MASK_SHIFT + rank)) & 1;
        // A branch, not a blend: set nodes are few, so it is well predicted, and computing the
        // set lookup for every node cost more than the occasional miss (diamonds at 10k rows:
        // 28k → 50k rows/s).
        if SETS && (self.packed & SET_FLAG) != 0 {
            let first = ((self.packed >> WINDOW_SHIFT) & (WINDOWS - 1)) * 32;
            // Saturating: NaN and negatives give 0, caught by `whole` (or by the NaN rule).
            let code = (xv as u32).wrapping_sub(first);
            let whole = u32::from(code < 32 && (code + first) as f32 == xv);
            decided = (self.value.to_bits() >> (code & 31)) & whole;
        }
        let nan = u32::from(xv.is_nan());
        let go_true = (decided & (nan ^ 1)) | ((self.packed >> 31) & nan);
        self.b ^ ((self.a ^ self.b) & go_true.wrapping_neg())
    }
}

impl Reads for FlatNode {
    #[inline(always)]
    fn offset(&self) -> usize {
        signed_offset(self.packed & FEATURE_MASK, false)
    }
}

/// A node of a forest whose branches are comparisons (`<`, `<=`, `>=`, `>`) or sets: a
/// comparison is rewritten as one test `±x > threshold`, false for NaN, that picks `if_above`
/// or `otherwise`. `x <= v` becomes `-x > -next_up(v)`, and a node whose NaN goes true tests
/// the complement and swaps its children, so the NaN rule costs nothing. The walk reads `-x`
/// from the signed block ([`signed_offset`]), so the sign costs nothing either. A set node
/// (SET_FLAG and its window as in [`FlatNode`], NaN-goes-true in bit 31) reads `x` and picks
/// `if_above` for a member. A leaf points to itself both ways.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CompareNode {
    /// Where the walk reads the tested value ([`signed_offset`]) | a set node's flags.
    offset_flags: u32,
    /// The threshold, or a set node's 32 bits.
    threshold: f32,
    if_above: u32,
    otherwise: u32,
}

impl CompareNode {
    #[inline(always)]
    fn next<const SETS: bool>(&self, xv: f32) -> u32 {
        // A branch: it is well predicted (computing both tests and picking one without a
        // branch made titanic at 10,000 rows on one thread 610k → 400k rows/s).
        if SETS && self.offset_flags & SET_FLAG != 0 {
            return self.next_in_set(xv);
        }
        if xv > self.threshold {
            self.if_above
        } else {
            self.otherwise
        }
    }

    #[inline(always)]
    fn next_in_set(&self, xv: f32) -> u32 {
        let first = ((self.offset_flags >> WINDOW_SHIFT) & (WINDOWS - 1)) * 32;
        // Saturating: NaN and negatives give 0, caught by `whole`.
        let code = (xv as u32).wrapping_sub(first);
        let whole = code < 32 && (code + first) as f32 == xv;
        let member = whole && (self.threshold.to_bits() >> (code & 31)) & 1 == 1;
        if member || (xv.is_nan() && self.offset_flags & NAN_TRUE != 0) {
            self.if_above
        } else {
            self.otherwise
        }
    }

    /// The comparison form of `node` (node `at`, a leaf when `leaf`), or `None` for an
    /// equality node, or a threshold whose neighbours are not finite.
    fn of(node: &FlatNode, at: u32, leaf: bool) -> Option<CompareNode> {
        if leaf {
            return Some(CompareNode {
                offset_flags: 0,
                threshold: 0.0,
                if_above: at,
                otherwise: at,
            });
        }
        if node.packed & SET_FLAG != 0 {
            // Same flags and window; NaN-goes-true stays in bit 31.
            let flags = node.packed & !(0b111 << MASK_SHIFT) & !FEATURE_MASK;
            return Some(CompareNode {
                offset_flags: flags | node.offset() as u32,
                threshold: node.value,
                if_above: node.a,
                otherwise: node.b,
            });
        }
        let v = node.value;
        if !(v.next_up().is_finite() && v.next_down().is_finite()) {
            return None;
        }
        let nan_true = node.packed & NAN_TRUE != 0;
        let mask = (node.packed >> MASK_SHIFT) & 0b111;
        // The test that is true exactly when the row goes to the true child (or, when NaN goes
        // true, to the false child), as (flip x's sign, threshold).
        let test = |mask: u32| match mask {
            MASK_GT => Some((false, v)),
            MASK_GTE => Some((false, v.next_down())),
            MASK_LT => Some((true, -v)),
            MASK_LEQ => Some((true, -v.next_up())),
            _ => None,
        };
        let (flip, threshold) = test(if nan_true { mask ^ 0b111 } else { mask })?;
        let offset = signed_offset(node.packed & FEATURE_MASK, flip) as u32;
        let (if_above, otherwise) = if nan_true {
            (node.b, node.a)
        } else {
            (node.a, node.b)
        };
        Some(CompareNode {
            offset_flags: offset,
            threshold,
            if_above,
            otherwise,
        })
    }
}

impl Reads for CompareNode {
    #[inline(always)]
    fn offset(&self) -> usize {
        (self.offset_flags & FEATURE_MASK) as usize
    }
}

/// Where a node finds the one value a step reads.
trait Reads {
    /// Its [`signed_offset`].
    fn offset(&self) -> usize;
}

/// Where lane 0 finds `x` (or `-x`, `negated`) of feature `feature` in a signed block: the
/// rows of a group as `[x₀ of LANES rows, -x₀ of LANES rows, x₁ …]`. Stored premultiplied, so
/// a step adds only its lane; a single row's walk divides by LANES.
#[inline(always)]
fn signed_offset(feature: u32, negated: bool) -> usize {
    (2 * feature as usize + usize::from(negated)) * LANES
}

/// A forest's nodes in the one form its walk reads.
#[derive(Debug, Clone, PartialEq)]
enum Nodes {
    /// Every branch is a comparison or a set; `has_sets` when some node is a set node.
    Compare {
        nodes: Vec<CompareNode>,
        has_sets: bool,
    },
    /// Any mode; `has_sets` when some node is a set node.
    General {
        nodes: Vec<FlatNode>,
        has_sets: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forest {
    nodes: Nodes,
    roots: Vec<u32>,
    /// Per tree: edges on its longest root-to-leaf path (the steps of a walk).
    steps: Vec<u32>,
    /// Tree indices, each chunk of TREE_CHUNK sorted by walk length.
    by_depth: Vec<u32>,
    /// Sum of `steps`: the work of one row.
    total_steps: usize,
    /// Votes of node `i` are `vote_start[i]..vote_start[i + 1]` (empty for branches).
    vote_start: Vec<u32>,
    vote_targets: Vec<u32>,
    vote_weights: Vec<f32>,
    /// When every leaf has exactly one vote (as our exports write them): per node, its
    /// target and weight, read without the indirection through `vote_start`.
    one_vote: Option<Vec<(u32, f32)>>,
    base: Vec<f32>,
    n_targets: usize,
    /// Highest feature index read, plus one.
    n_features: usize,
}

fn parse(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let forest = Forest::from_node(node)?;
    Ok((
        expand(TreeEnsembleExpansion {
            forest: Arc::new(forest),
        }),
        vec![],
    ))
}

fn vec_attr<'a, T: AttrTVecType<'a>>(
    node: &'a NodeProto,
    name: &str,
    n: usize,
) -> TractResult<Vec<T>> {
    let v: Vec<T> = node.get_attr_vec(name)?;
    node.expect_attr(name, v.len() == n, || {
        format!("{n} values, got {}", v.len())
    })?;
    Ok(v)
}

impl Forest {
    pub fn from_node(node: &NodeProto) -> TractResult<Forest> {
        let n_targets: usize = node.get_attr("n_targets")?;
        node.expect_attr("n_targets", n_targets > 0, "at least one target")?;
        let aggregate: Option<&str> = node.get_attr_opt("aggregate_function")?;
        node.expect_attr(
            "aggregate_function",
            matches!(aggregate, None | Some("SUM")),
            "SUM",
        )?;
        let post: Option<&str> = node.get_attr_opt("post_transform")?;
        node.expect_attr(
            "post_transform",
            matches!(post, None | Some("NONE")),
            "NONE",
        )?;

        let n = node.get_attr_slice::<i64>("nodes_nodeids")?.len();
        node.expect_attr("nodes_nodeids", n > 0, "at least one node")?;
        let tree_ids: Vec<i64> = vec_attr(node, "nodes_treeids", n)?;
        let node_ids: Vec<i64> = vec_attr(node, "nodes_nodeids", n)?;
        let feature_ids: Vec<i64> = vec_attr(node, "nodes_featureids", n)?;
        let values: Vec<f32> = vec_attr(node, "nodes_values", n)?;
        let true_ids: Vec<i64> = vec_attr(node, "nodes_truenodeids", n)?;
        let false_ids: Vec<i64> = vec_attr(node, "nodes_falsenodeids", n)?;
        let modes: Vec<&str> = vec_attr(node, "nodes_modes", n)?;
        let missing: Vec<i64> =
            match node.get_attr_opt_vec::<i64>("nodes_missing_value_tracks_true")? {
                Some(v) => {
                    node.expect_attr(
                        "nodes_missing_value_tracks_true",
                        v.len() == n,
                        "one per node",
                    )?;
                    v
                }
                None => vec![0; n],
            };
        let n_votes = node.get_attr_slice::<i64>("target_ids")?.len();
        let vote_trees: Vec<i64> = vec_attr(node, "target_treeids", n_votes)?;
        let vote_nodes: Vec<i64> = vec_attr(node, "target_nodeids", n_votes)?;
        let vote_ids: Vec<i64> = vec_attr(node, "target_ids", n_votes)?;
        let vote_weights: Vec<f32> = vec_attr(node, "target_weights", n_votes)?;
        let base: Vec<f32> = match node.get_attr_opt_vec::<f32>("base_values")? {
            Some(v) => {
                node.expect_attr("base_values", v.len() == n_targets, "one per target")?;
                v
            }
            None => vec![0.0; n_targets],
        };

        // Global index of each (tree, node id), in (tree, node id) order: a node's index is its
        // position in `keys`, found by binary search (no hashing, which dominated loading).
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (tree_ids[i], node_ids[i]));
        let keys: Vec<(i64, i64)> = order.iter().map(|&i| (tree_ids[i], node_ids[i])).collect();
        if let Some(pair) = keys.windows(2).find(|pair| pair[0] == pair[1]) {
            bail!(
                "TreeEnsembleRegressor: node {} of tree {} appears twice",
                pair[0].1,
                pair[0].0
            );
        }
        let global_of = |tree: i64, node: i64| {
            keys.binary_search(&(tree, node))
                .ok()
                .map(|global| global as u32)
        };
        let mut votes_by_node: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        for v in 0..n_votes {
            let Some(at) = global_of(vote_trees[v], vote_nodes[v]) else {
                bail!(
                    "TreeEnsembleRegressor: vote for missing node {} of tree {}",
                    vote_nodes[v],
                    vote_trees[v]
                );
            };
            let target = usize::try_from(vote_ids[v]).ok().filter(|&t| t < n_targets);
            let Some(target) = target else {
                bail!(
                    "TreeEnsembleRegressor: target id {} out of range",
                    vote_ids[v]
                )
            };
            votes_by_node[at as usize].push((target as u32, vote_weights[v]));
        }

        let mut nodes = Vec::with_capacity(n);
        let mut roots = Vec::new();
        let mut vote_start = Vec::with_capacity(n + 1);
        let mut is_leaf = Vec::with_capacity(n);
        let mut targets = Vec::with_capacity(n_votes);
        let mut weights = Vec::with_capacity(n_votes);
        let mut n_features = 0usize;
        let mut previous_tree = None;
        for (global, &i) in order.iter().enumerate() {
            if previous_tree != Some(tree_ids[i]) {
                // The lowest node id of a tree is its root.
                roots.push(global as u32);
                previous_tree = Some(tree_ids[i]);
            }
            vote_start.push(targets.len() as u32);
            let mask = match modes[i] {
                "LEAF" => None,
                "BRANCH_LEQ" => Some(MASK_LEQ),
                "BRANCH_LT" => Some(MASK_LT),
                "BRANCH_GTE" => Some(MASK_GTE),
                "BRANCH_GT" => Some(MASK_GT),
                "BRANCH_EQ" => Some(MASK_EQ),
                "BRANCH_NEQ" => Some(MASK_NEQ),
                other => bail!("TreeEnsembleRegressor: unsupported node mode {other}"),
            };
            is_leaf.push(mask.is_none());
            let Some(mask) = mask else {
                for &(t, w) in &votes_by_node[global] {
                    targets.push(t);
                    weights.push(w);
                }
                nodes.push(FlatNode {
                    packed: 0,
                    value: 0.0,
                    a: global as u32,
                    b: global as u32,
                });
                continue;
            };
            let feature = usize::try_from(feature_ids[i])
                .ok()
                .filter(|&f| f < MAX_FEATURES);
            let Some(feature) = feature else {
                bail!(
                    "TreeEnsembleRegressor: feature id {} out of range",
                    feature_ids[i]
                )
            };
            n_features = n_features.max(feature + 1);
            let child = |id: i64| {
                global_of(tree_ids[i], id).ok_or_else(|| {
                    format_err!(
                        "TreeEnsembleRegressor: node {} of tree {} points to missing node {id}",
                        node_ids[i],
                        tree_ids[i]
                    )
                })
            };
            let packed =
                feature as u32 | (mask << MASK_SHIFT) | if missing[i] != 0 { NAN_TRUE } else { 0 };
            nodes.push(FlatNode {
                packed,
                value: values[i],
                a: child(true_ids[i])?,
                b: child(false_ids[i])?,
            });
        }
        vote_start.push(targets.len() as u32);
        let has_sets = fuse_equality_chains(&mut nodes, &mut is_leaf);
        let steps = walk_lengths(&nodes, &is_leaf, &roots)?;
        // Trees of each chunk by walk length: a single row walks LANES trees at once, as long
        // as the longest of them, so trees of one group should be about as deep.
        let by_depth = tree_chunks(roots.len())
            .flat_map(|trees| {
                let mut chunk: Vec<u32> = trees.map(|t| t as u32).collect();
                chunk.sort_by_key(|&t| steps[t as usize]);
                chunk
            })
            .collect();
        let total_steps = steps.iter().map(|&s| s as usize).sum();
        let compare = nodes
            .iter()
            .zip(&is_leaf)
            .enumerate()
            .map(|(i, (n, &leaf))| CompareNode::of(n, i as u32, leaf))
            .collect::<Option<Vec<_>>>();
        let nodes = match compare {
            Some(nodes) => Nodes::Compare { nodes, has_sets },
            None => Nodes::General { nodes, has_sets },
        };
        let one_vote = is_leaf
            .iter()
            .enumerate()
            .map(|(i, &leaf)| match votes_by_node.get(i).map(Vec::as_slice) {
                Some(&[vote]) if leaf => Some(vote),
                _ if !leaf => Some((0, 0.0)),
                _ => None,
            })
            .collect();
        let forest = Forest {
            one_vote,
            nodes,
            by_depth,
            total_steps,
            roots,
            steps,
            vote_start,
            vote_targets: targets,
            vote_weights: weights,
            base,
            n_targets,
            // A leaf reads feature 0 too (and ignores it).
            n_features: n_features.max(1),
        };
        forest.check_walk_bounds()?;
        Ok(forest)
    }

    /// What the unchecked walk relies on: every root and child is a node of the forest, and
    /// every node reads a value of a feature below `n_features`.
    fn check_walk_bounds(&self) -> TractResult<()> {
        fn check<N: Reads>(
            nodes: &[N],
            children: impl Fn(&N) -> [u32; 2],
            forest: &Forest,
        ) -> TractResult<()> {
            let inside = |i: u32| (i as usize) < nodes.len();
            ensure!(
                forest.roots.iter().all(|&r| inside(r)),
                "TreeEnsembleRegressor: a root outside the forest"
            );
            for n in nodes {
                ensure!(
                    children(n).into_iter().all(inside)
                        && n.offset() < signed_offset(forest.n_features as u32, false),
                    "TreeEnsembleRegressor: a node points outside the forest"
                );
            }
            Ok(())
        }
        match &self.nodes {
            Nodes::Compare { nodes, .. } => check(nodes, |n| [n.if_above, n.otherwise], self),
            Nodes::General { nodes, .. } => check(nodes, |n| [n.a, n.b], self),
        }
    }

    /// Node steps to score one row: the longest walk of every tree, summed.
    pub fn steps_per_row(&self) -> usize {
        self.total_steps
    }

    pub fn n_targets(&self) -> usize {
        self.n_targets
    }

    #[inline(always)]
    fn add_votes(&self, leaf: u32, out: &mut [f32]) {
        let leaf = leaf as usize;
        if let Some(one_vote) = &self.one_vote {
            let (target, weight) = one_vote[leaf];
            out[target as usize] += weight;
            return;
        }
        for v in self.vote_start[leaf] as usize..self.vote_start[leaf + 1] as usize {
            out[self.vote_targets[v] as usize] += self.vote_weights[v];
        }
    }

    /// Adds the votes of trees `trees` for each row of a row-major `[rows, n_cols]` block to
    /// `out` (`rows × n_targets`). Tree-major: each tree walks every row of the block, LANES
    /// rows at a time, before the next tree starts, so its nodes stay in cache; rows left over
    /// walk LANES trees of like depth at a time. Either way each row adds the trees in order.
    fn add_trees(&self, trees: std::ops::Range<usize>, x: &[f32], n_cols: usize, out: &mut [f32]) {
        match &self.nodes {
            Nodes::Compare {
                nodes,
                has_sets: true,
            } => self.add_trees_with(nodes, CompareNode::next::<true>, trees, x, n_cols, out),
            Nodes::Compare {
                nodes,
                has_sets: false,
            } => self.add_trees_with(nodes, CompareNode::next::<false>, trees, x, n_cols, out),
            Nodes::General {
                nodes,
                has_sets: true,
            } => self.add_trees_with(nodes, FlatNode::next::<true>, trees, x, n_cols, out),
            Nodes::General {
                nodes,
                has_sets: false,
            } => self.add_trees_with(nodes, FlatNode::next::<false>, trees, x, n_cols, out),
        }
    }

    #[inline(always)]
    fn add_trees_with<N: Reads>(
        &self,
        nodes: &[N],
        next: impl Fn(&N, f32) -> u32 + Copy,
        trees: std::ops::Range<usize>,
        x: &[f32],
        n_cols: usize,
        out: &mut [f32],
    ) {
        // The walks read rows unchecked, up to feature n_features - 1.
        assert!(
            n_cols >= self.n_features,
            "rows narrower than the forest reads"
        );
        let k = self.n_targets.max(1);
        let n_rows = out.len() / k;
        let grouped = n_rows - n_rows % LANES;
        if grouped > 0 {
            // Each group of LANES rows interleaved feature by feature, so a lane finds its
            // value at a fixed offset from one base instead of through a row pointer of its own
            // (eight row pointers do not fit in registers beside eight walks); each value
            // beside its negation, so a comparison node needs no sign flip (one thread at
            // 10,000 rows: titanic 577k → 628k rows/s, breast_cancer 139k → 145k).
            let width = 2 * self.n_features * LANES;
            let mut interleaved = vec![0f32; grouped / LANES * width];
            for (g, group) in interleaved.chunks_exact_mut(width).enumerate() {
                for lane in 0..LANES {
                    let row = &x[(g * LANES + lane) * n_cols..][..self.n_features];
                    for (f, &v) in row.iter().enumerate() {
                        group[signed_offset(f as u32, false) + lane] = v;
                        group[signed_offset(f as u32, true) + lane] = -v;
                    }
                }
            }
            for t in trees.clone() {
                let (root, steps) = (self.roots[t], self.steps[t]);
                for (g, group) in interleaved.chunks_exact(width).enumerate() {
                    // SAFETY: checked at load (`check_walk_bounds`); `group` holds n_features
                    // signed values per lane.
                    let at = unsafe { walk(nodes, next, [root; LANES], steps, Interleaved(group)) };
                    for (lane, &leaf) in at.iter().enumerate() {
                        let row = g * LANES + lane;
                        self.add_votes(leaf, &mut out[row * k..(row + 1) * k]);
                    }
                }
            }
        }
        if grouped == n_rows {
            return;
        }
        let order = &self.by_depth[trees.clone()];
        let mut leaves = vec![0u32; trees.len()];
        let mut signed = vec![0f32; 2 * self.n_features];
        for row in grouped..n_rows {
            for (s, &v) in signed
                .chunks_exact_mut(2)
                .zip(&x[row * n_cols..][..self.n_features])
            {
                s[0] = v;
                s[1] = -v;
            }
            for group in order.chunks(LANES) {
                let mut start = [0u32; LANES];
                for (s, &t) in start.iter_mut().zip(group) {
                    *s = self.roots[t as usize];
                }
                // The group's deepest tree comes last (sorted); lanes past the group park on
                // a copy of its first root and are ignored.
                for s in start.iter_mut().skip(group.len()) {
                    *s = self.roots[group[0] as usize];
                }
                let longest = self.steps[*group.last().unwrap_or(&0) as usize];
                // SAFETY: checked at load (`check_walk_bounds`); `signed` holds n_features
                // signed values.
                let at = unsafe { walk(nodes, next, start, longest, OneRow(&signed)) };
                for (&t, &leaf) in group.iter().zip(&at) {
                    leaves[t as usize - trees.start] = leaf;
                }
            }
            let o = &mut out[row * k..(row + 1) * k];
            for &leaf in &leaves {
                self.add_votes(leaf, o);
            }
        }
    }

    fn tree_chunks(&self) -> impl Iterator<Item = std::ops::Range<usize>> {
        tree_chunks(self.roots.len())
    }

    /// The scores of a block of rows into `out`: every tree's vote in tree order, then the
    /// base values.
    fn eval_rows(&self, x: &[f32], n_cols: usize, out: &mut [f32]) {
        out.fill(0.0);
        self.add_trees(0..self.roots.len(), x, n_cols, out);
        self.add_base(out);
    }

    /// Sums run in f32 from zero in tree order and the base values join last, the order
    /// onnxruntime uses: when a regression's trees add up thousands to land near zero, the
    /// rounding of that order is part of the answer both runtimes must agree on.
    fn add_base(&self, out: &mut [f32]) {
        for o in out.chunks_mut(self.n_targets.max(1)) {
            for (o, b) in o.iter_mut().zip(&self.base) {
                *o += b;
            }
        }
    }

    /// Scores of a row-major `[n, n_cols]` matrix into `[n, n_targets]`. Large batches spread
    /// their rows over threads; small ones against a large forest spread its tree chunks.
    pub fn eval(&self, x: &[f32], n_cols: usize, out: &mut [f32]) {
        let k = self.n_targets.max(1);
        let n = out.len() / k;
        // Rows scored together by each tree: enough to reuse its nodes from cache, few enough
        // that their features stay in cache too.
        const BLOCK_ROWS: usize = 64;
        // Below this many rows per thread, spreading costs more than it saves.
        const ROWS_PER_TASK: usize = 256;
        let score = |first_row: usize, chunk: &mut [f32]| {
            for (b, block) in chunk.chunks_mut(BLOCK_ROWS * k).enumerate() {
                let start = (first_row + b * BLOCK_ROWS) * n_cols;
                self.eval_rows(&x[start..], n_cols, block);
            }
        };
        // In a part of a cut batch (`OnnxModel::run`), the other threads run the other
        // parts: its rows stay on this thread.
        let threads = if super::parts::in_part() {
            1
        } else {
            rayon::current_num_threads()
        };
        if threads > 1 && n >= 2 * ROWS_PER_TASK {
            out.par_chunks_mut(ROWS_PER_TASK * k)
                .enumerate()
                .for_each(|(c, chunk)| score(c * ROWS_PER_TASK, chunk));
        } else if threads > 1
            && self.roots.len() >= 2 * TREE_CHUNK
            && n * self.total_steps >= PARALLEL_MIN_STEPS
        {
            let chunks: Vec<std::ops::Range<usize>> = self.tree_chunks().collect();
            let partials: Vec<Vec<f32>> = chunks
                .into_par_iter()
                .map(|trees| {
                    let mut partial = vec![0f32; out.len()];
                    for (b, block) in partial.chunks_mut(BLOCK_ROWS * k).enumerate() {
                        let start = b * BLOCK_ROWS * n_cols;
                        self.add_trees(trees.clone(), &x[start..], n_cols, block);
                    }
                    partial
                })
                .collect();
            out.fill(0.0);
            for partial in &partials {
                for (o, p) in out.iter_mut().zip(partial) {
                    *o += p;
                }
            }
            self.add_base(out);
        } else {
            score(0, out);
        }
    }
}

/// Chains of `BRANCH_EQ` nodes on one feature that share their true child (how a categorical
/// split "category in {a, b, c}" is written in ONNX; onnxruntime fuses them the same way)
/// become set nodes, one per window of 32 codes the set touches, when the values are whole
/// numbers below 32 × WINDOWS: a step or two per split instead of one per category. Each chain
/// node becomes the head of the chain from it on, so a node entered from elsewhere keeps its
/// meaning; NaN goes true when any fused node sends it there (they all share the true child).
/// The last node of a chain (and any lone equality on a whole code) becomes a set of one, so
/// a forest of comparisons and categorical splits has no equality node left and can be walked
/// in the comparison form. Extra window nodes are appended. Returns whether any set node was
/// made.
fn fuse_equality_chains(nodes: &mut Vec<FlatNode>, is_leaf: &mut Vec<bool>) -> bool {
    let original = nodes.clone();
    let is_eq = |n: &FlatNode| (n.packed >> MASK_SHIFT) & 0b111 == MASK_EQ;
    let code = |n: &FlatNode| {
        let c = n.value as u32;
        (n.value >= 0.0 && c < 32 * WINDOWS && c as f32 == n.value).then_some(c)
    };
    let mut fused_any = false;
    for (i, head) in original.iter().enumerate() {
        if is_leaf[i] || !is_eq(head) || code(head).is_none() {
            continue;
        }
        let feature = head.packed & FEATURE_MASK;
        let mut bits = [0u32; WINDOWS as usize];
        let (mut nan_true, mut fused) = (0u32, 0usize);
        let mut at = i;
        // Bounded: a chain that loops stops here (and walk_lengths refuses the cycle).
        while fused < original.len() {
            let n = &original[at];
            let fits =
                !is_leaf[at] && is_eq(n) && n.packed & FEATURE_MASK == feature && n.a == head.a;
            let Some(c) = code(n).filter(|_| fits) else {
                break;
            };
            bits[(c / 32) as usize] |= 1 << (c % 32);
            nan_true |= n.packed & NAN_TRUE;
            fused += 1;
            at = n.b as usize;
        }
        if fused == 0 {
            continue;
        }
        fused_any = true;
        // One node per window that holds codes, in window order, each falling through to the
        // next; the head's slot takes the first.
        let windows: Vec<u32> = (0..WINDOWS).filter(|&w| bits[w as usize] != 0).collect();
        let mut slots = vec![i];
        for _ in 1..windows.len() {
            slots.push(nodes.len());
            nodes.push(original[i]);
            is_leaf.push(false);
        }
        for (j, (&w, &slot)) in windows.iter().zip(&slots).enumerate() {
            let fall_through = slots.get(j + 1).map_or(at, |&s| s);
            nodes[slot] = FlatNode {
                packed: feature | SET_FLAG | (w << WINDOW_SHIFT) | nan_true,
                value: f32::from_bits(bits[w as usize]),
                a: head.a,
                b: fall_through as u32,
            };
        }
    }
    fused_any
}

/// Where the lanes of a walk read their values.
trait LaneValues {
    /// # Safety
    /// `lane < LANES` and `offset` (a [`signed_offset`]) inside the features the values were
    /// made with.
    unsafe fn value(&self, lane: usize, offset: usize) -> f32;
}

/// LANES rows as a signed block ([`signed_offset`]): `2 × features × LANES` values.
struct Interleaved<'a>(&'a [f32]);

impl LaneValues for Interleaved<'_> {
    #[inline(always)]
    unsafe fn value(&self, lane: usize, offset: usize) -> f32 {
        // SAFETY: the caller keeps offset and lane inside the rows the buffer holds.
        unsafe { *self.0.get_unchecked(offset + lane) }
    }
}

/// One row that every lane reads (the lanes walk different trees), signed: `[x₀, -x₀, x₁, …]`.
struct OneRow<'a>(&'a [f32]);

impl LaneValues for OneRow<'_> {
    #[inline(always)]
    unsafe fn value(&self, _lane: usize, offset: usize) -> f32 {
        // SAFETY: the caller keeps offset inside the row.
        unsafe { *self.0.get_unchecked(offset / LANES) }
    }
}

/// LANES walks of at most `steps` steps from `start`, stopping early once every lane is parked
/// on a leaf. Returns where each lane ended.
///
/// # Safety
/// Every node reachable from `start` is in `nodes` and reads a feature that `values` holds for
/// every lane ([`Forest::check_walk_bounds`]). Unchecked because, with the bounds checks, the
/// eight walks did not fit in registers (diabetes at 10,000 rows: 1.08M → 1.39M rows/s without
/// them and with the parked check every other step).
#[inline(always)]
unsafe fn walk<N: Reads>(
    nodes: &[N],
    next: impl Fn(&N, f32) -> u32,
    start: [u32; LANES],
    steps: u32,
    values: impl LaneValues,
) -> [u32; LANES] {
    let mut at = start;
    // Whether every lane is parked is checked every other step, as "no lane moved" folded
    // into one register: comparing the arrays went through memory and stalled on the eight
    // stores just made (with the signed block, on one thread at 10,000 rows: diabetes 811k →
    // 891k rows/s, titanic 573k → 687k, breast_cancer 138k → 186k).
    // SAFETY (the three steps): see the function's contract.
    for _ in 0..steps / 2 {
        unsafe { step_lanes(nodes, &next, &mut at, &values) };
        let moved = unsafe { step_lanes(nodes, &next, &mut at, &values) };
        if moved == 0 {
            return at;
        }
    }
    if steps % 2 == 1 {
        unsafe { step_lanes(nodes, &next, &mut at, &values) };
    }
    at
}

/// One step of every lane. Returns 0 when no lane moved (all are parked on leaves).
///
/// # Safety
/// As for [`walk`].
#[inline(always)]
unsafe fn step_lanes<N: Reads>(
    nodes: &[N],
    next: &impl Fn(&N, f32) -> u32,
    at: &mut [u32; LANES],
    values: &impl LaneValues,
) -> u32 {
    let mut moved = 0;
    for (lane, node) in at.iter_mut().enumerate() {
        // SAFETY: see the function's contract.
        let n = unsafe { nodes.get_unchecked(*node as usize) };
        let to = next(n, unsafe { values.value(lane, n.offset()) });
        moved |= to ^ *node;
        *node = to;
    }
    moved
}

/// Trees `0..n_trees` in chunks of TREE_CHUNK.
fn tree_chunks(n_trees: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..n_trees)
        .step_by(TREE_CHUNK)
        .map(move |start| start..(start + TREE_CHUNK).min(n_trees))
}

/// Per tree, the edges on its longest root-to-leaf path, refusing cycles.
fn walk_lengths(nodes: &[FlatNode], is_leaf: &[bool], roots: &[u32]) -> TractResult<Vec<u32>> {
    let mut depth = vec![0u32; nodes.len()]; // nodes on the longest path down; 0 = not computed
    let mut on_path = vec![false; nodes.len()];
    let mut lengths = Vec::with_capacity(roots.len());
    for &root in roots {
        let mut stack = vec![(root as usize, false)];
        while let Some((at, leaving)) = stack.pop() {
            let node = nodes[at];
            if leaving {
                on_path[at] = false;
                depth[at] = if is_leaf[at] {
                    1
                } else {
                    1 + depth[node.a as usize].max(depth[node.b as usize])
                };
                continue;
            }
            if depth[at] != 0 {
                continue;
            }
            if on_path[at] {
                bail!("TreeEnsembleRegressor: a tree has a cycle");
            }
            on_path[at] = true;
            stack.push((at, true));
            if !is_leaf[at] {
                for child in [node.a as usize, node.b as usize] {
                    if on_path[child] {
                        bail!("TreeEnsembleRegressor: a tree has a cycle");
                    }
                    if depth[child] == 0 {
                        stack.push((child, false));
                    }
                }
            }
        }
        lengths.push(depth[root as usize] - 1);
    }
    Ok(lengths)
}

#[derive(Debug, Clone)]
struct TreeEnsembleExpansion {
    forest: Arc<Forest>,
}

impl Expansion for TreeEnsembleExpansion {
    fn name(&self) -> StaticName {
        "TreeEnsembleRegressor".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[0].shape[1], self.forest.n_targets.to_dim())?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(
            prefix,
            TreeEnsembleOp {
                forest: self.forest.clone(),
            },
            inputs,
        )
    }
}

/// The typed operator: `[N, F]` features (any float type, cast to f32) → `[N, n_targets]` f32.
#[derive(Debug, Clone)]
pub struct TreeEnsembleOp {
    pub forest: Arc<Forest>,
}

impl PartialEq for TreeEnsembleOp {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.forest, &other.forest) || self.forest == other.forest
    }
}
impl Eq for TreeEnsembleOp {}

impl Op for TreeEnsembleOp {
    fn name(&self) -> StaticName {
        "TreeEnsembleRegressor".into()
    }

    op_as_typed_op!();
}

impl EvalOp for TreeEnsembleOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let input = input.cast_to::<f32>()?;
        let shape = input.shape();
        ensure!(
            shape.len() == 2,
            "TreeEnsembleRegressor expects [N, F] features, got {shape:?}"
        );
        let (n, cols) = (shape[0], shape[1]);
        ensure!(
            cols >= self.forest.n_features,
            "TreeEnsembleRegressor reads feature {} of {cols}",
            self.forest.n_features.saturating_sub(1)
        );
        let plain = input.try_as_plain_ram()?;
        let x = plain.as_slice::<f32>()?;
        let mut out = vec![0f32; n * self.forest.n_targets];
        self.forest.eval(x, cols, &mut out);
        Ok(tvec!(
            Tensor::from_shape(&[n, self.forest.n_targets], &out)?.into_tvalue()
        ))
    }
}

impl TypedOp for TreeEnsembleOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs[0].rank() == 2,
            "TreeEnsembleRegressor expects rank-2 features"
        );
        let n = inputs[0].shape[0].clone();
        Ok(tvec!(f32::fact([n, self.forest.n_targets.to_dim()])))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::graph::{Attr, attribute};

    /// A small deterministic generator (xorshift), so the test needs no extra crate.
    struct Draw(u64);
    impl Draw {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The ONNX attributes of a forest, as plain arrays.
    #[derive(Default, Clone)]
    struct Raw {
        tree: Vec<i64>,
        id: Vec<i64>,
        feature: Vec<i64>,
        value: Vec<f32>,
        yes: Vec<i64>,
        no: Vec<i64>,
        mode: Vec<&'static str>,
        nan_true: Vec<i64>,
        vote_tree: Vec<i64>,
        vote_node: Vec<i64>,
        vote_target: Vec<i64>,
        vote_weight: Vec<f32>,
    }

    const THRESHOLDS: [f32; 4] = [-1.0, 0.0, 0.5, 2.0];
    const MODES: [&str; 6] = [
        "BRANCH_LEQ",
        "BRANCH_LT",
        "BRANCH_GTE",
        "BRANCH_GT",
        "BRANCH_EQ",
        "BRANCH_NEQ",
    ];

    /// Adds a random subtree of tree `t` under node id `id` (ids grow depth-first, so the root
    /// has the lowest id); returns the next free id.
    fn grow(raw: &mut Raw, d: &mut Draw, t: i64, id: i64, depth: usize, k: usize) -> i64 {
        let at = raw.id.len();
        raw.tree.push(t);
        raw.id.push(id);
        raw.feature.push(d.below(5) as i64);
        raw.value.push(THRESHOLDS[d.below(4)]);
        raw.nan_true.push(d.below(2) as i64);
        raw.yes.push(0);
        raw.no.push(0);
        if depth == 0 || d.below(4) == 0 {
            raw.mode.push("LEAF");
            for _ in 0..1 + d.below(2) {
                raw.vote_tree.push(t);
                raw.vote_node.push(id);
                raw.vote_target.push(d.below(k) as i64);
                raw.vote_weight.push(d.below(1000) as f32 / 37.0 - 13.0);
            }
            return id + 1;
        }
        if d.below(3) == 0 {
            // A categorical split as exporters write it: a chain of BRANCH_EQ nodes on one
            // feature, all true branches to one subtree (codes past 63 and repeats included).
            let links = 2 + d.below(5);
            raw.mode.push("BRANCH_EQ");
            raw.value[at] = d.below(70) as f32;
            let shared = id + links as i64;
            let mut chain = vec![at];
            for l in 1..links {
                raw.tree.push(t);
                raw.id.push(id + l as i64);
                raw.feature.push(raw.feature[at]);
                raw.value.push(d.below(70) as f32);
                raw.nan_true.push(d.below(2) as i64);
                raw.mode.push("BRANCH_EQ");
                raw.yes.push(shared);
                raw.no.push(0);
                chain.push(raw.id.len() - 1);
            }
            raw.yes[at] = shared;
            for w in chain.windows(2) {
                raw.no[w[0]] = raw.id[w[1]];
            }
            let next = grow(raw, d, t, shared, depth - 1, k);
            raw.no[*chain.last().expect("a chain")] = next;
            return grow(raw, d, t, next, depth - 1, k);
        }
        raw.mode.push(MODES[d.below(6)]);
        raw.yes[at] = id + 1;
        let next = grow(raw, d, t, id + 1, depth - 1, k);
        raw.no[at] = next;
        grow(raw, d, t, next, depth - 1, k)
    }

    fn node(raw: &Raw, k: usize, base: &[f32]) -> NodeProto {
        NodeProto {
            op_type: "TreeEnsembleRegressor".into(),
            attribute: vec![
                attribute("n_targets", Attr::Int(k as i64)),
                attribute("nodes_treeids", Attr::Ints(raw.tree.clone())),
                attribute("nodes_nodeids", Attr::Ints(raw.id.clone())),
                attribute("nodes_featureids", Attr::Ints(raw.feature.clone())),
                attribute("nodes_values", Attr::Floats(raw.value.clone())),
                attribute("nodes_truenodeids", Attr::Ints(raw.yes.clone())),
                attribute("nodes_falsenodeids", Attr::Ints(raw.no.clone())),
                attribute(
                    "nodes_modes",
                    Attr::Strs(raw.mode.iter().map(|m| m.to_string()).collect()),
                ),
                attribute(
                    "nodes_missing_value_tracks_true",
                    Attr::Ints(raw.nan_true.clone()),
                ),
                attribute("target_treeids", Attr::Ints(raw.vote_tree.clone())),
                attribute("target_nodeids", Attr::Ints(raw.vote_node.clone())),
                attribute("target_ids", Attr::Ints(raw.vote_target.clone())),
                attribute("target_weights", Attr::Floats(raw.vote_weight.clone())),
                attribute("base_values", Attr::Floats(base.to_vec())),
            ],
            ..Default::default()
        }
    }

    /// ONNX's semantics walked node by node on the raw arrays, trees in id order.
    fn reference(raw: &Raw, base: &[f32], x: &[f32], n_cols: usize) -> Vec<f32> {
        let index: std::collections::HashMap<(i64, i64), usize> = (0..raw.id.len())
            .map(|i| ((raw.tree[i], raw.id[i]), i))
            .collect();
        let find = |t: i64, id: i64| index[&(t, id)];
        let mut votes: std::collections::HashMap<(i64, i64), Vec<usize>> = Default::default();
        for v in 0..raw.vote_tree.len() {
            votes
                .entry((raw.vote_tree[v], raw.vote_node[v]))
                .or_default()
                .push(v);
        }
        let mut trees: Vec<i64> = raw.tree.clone();
        trees.dedup();
        let mut out = Vec::new();
        for row in x.chunks(n_cols) {
            // Trees in order from zero, the base last (what a sequential sum gives).
            let mut o = vec![0f32; base.len()];
            for &t in &trees {
                let root = raw.id.iter().zip(&raw.tree).filter(|(_, tt)| **tt == t);
                let mut at = find(t, root.map(|(id, _)| *id).min().expect("root"));
                while raw.mode[at] != "LEAF" {
                    let (xv, v) = (row[raw.feature[at] as usize], raw.value[at]);
                    let yes = if xv.is_nan() {
                        raw.nan_true[at] != 0
                    } else {
                        match raw.mode[at] {
                            "BRANCH_LEQ" => xv <= v,
                            "BRANCH_LT" => xv < v,
                            "BRANCH_GTE" => xv >= v,
                            "BRANCH_GT" => xv > v,
                            "BRANCH_EQ" => xv == v,
                            _ => xv != v,
                        }
                    };
                    at = find(t, if yes { raw.yes[at] } else { raw.no[at] });
                }
                for &v in votes.get(&(t, raw.id[at])).into_iter().flatten() {
                    o[raw.vote_target[v] as usize] += raw.vote_weight[v];
                }
            }
            out.extend(o.iter().zip(base).map(|(t, b)| t + b));
        }
        out
    }

    /// `n_trees` random trees of depth up to `depth` with `k` targets, and their base values.
    fn random_forest(d: &mut Draw, k: usize, n_trees: i64, depth: usize) -> (Raw, Vec<f32>) {
        let mut raw = Raw::default();
        for t in 0..n_trees {
            grow(&mut raw, d, t, 0, depth, k);
        }
        (raw, (0..k).map(|i| i as f32 * 0.25).collect())
    }

    /// Scores random rows of several batch sizes (NaN, thresholds exactly, whole codes, other
    /// values, and any of `special`) and checks them against the node-by-node reference walk.
    fn assert_scores_like_reference(
        forest: &Forest,
        (raw, base): (&Raw, &[f32]),
        d: &mut Draw,
        special: &[f32],
    ) {
        let k = base.len();
        let n_cols = 6;
        let kinds = 7 + usize::from(!special.is_empty());
        for n in [1, 5, 8, 9, 64, 67, 600] {
            let x: Vec<f32> = (0..n * n_cols)
                .map(|_| match d.below(kinds) {
                    0 => f32::NAN,
                    1 => THRESHOLDS[d.below(4)],
                    2 => d.below(70) as f32,
                    3 if !special.is_empty() => special[d.below(special.len())],
                    _ => d.below(400) as f32 / 100.0 - 2.0,
                })
                .collect();
            let mut out = vec![f32::NAN; n * k];
            forest.eval(&x, n_cols, &mut out);
            let want = reference(raw, base, &x, n_cols);
            // Threads sum their share of the trees apart, so rounding may differ (by far less
            // than 1e-3 here); a wrong leaf is off by a multiple of 1/37.
            for (i, (o, w)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (o - w).abs() <= 1e-3,
                    "k={k} trees={} rows={n} value {i}: {o} vs {w}",
                    forest.roots.len()
                );
            }
        }
    }

    #[test]
    fn interleaved_walks_score_every_mode_and_missing_value_as_onnx_defines() {
        let mut d = Draw(0x9E37_79B9_7F4A_7C15);
        for (k, n_trees, depth) in [(1, 1, 0), (1, 23, 6), (3, 40, 4), (1, 300, 5)] {
            let (raw, base) = random_forest(&mut d, k, n_trees, depth);
            let forest = Forest::from_node(&node(&raw, k, &base)).expect("forest");
            if depth > 0 {
                assert!(
                    matches!(forest.nodes, Nodes::General { has_sets: true, .. }),
                    "no equality chain was fused"
                );
            }
            assert_scores_like_reference(&forest, (&raw, &base), &mut d, &[]);
        }
    }

    #[test]
    fn comparison_forests_walk_in_compare_form_as_onnx_defines() {
        let mut d = Draw(0x2545_F491_4F6C_DD1D);
        for (k, n_trees, depth) in [(1, 1, 0), (1, 23, 6), (3, 40, 4), (1, 300, 5)] {
            let (mut raw, base) = random_forest(&mut d, k, n_trees, depth);
            // Equality chains become comparison chains (still a valid forest), so every branch
            // is a comparison with its NaN going either way.
            for mode in &mut raw.mode {
                *mode = match *mode {
                    "BRANCH_EQ" => "BRANCH_LEQ",
                    "BRANCH_NEQ" => "BRANCH_GT",
                    other => other,
                };
            }
            let forest = Forest::from_node(&node(&raw, k, &base)).expect("forest");
            assert!(
                matches!(
                    forest.nodes,
                    Nodes::Compare {
                        has_sets: false,
                        ..
                    }
                ),
                "compare form not used"
            );
            let special = [-0.0, f32::INFINITY, f32::NEG_INFINITY, 1e-45];
            assert_scores_like_reference(&forest, (&raw, &base), &mut d, &special);
            // A threshold with no finite neighbour keeps the general form.
            if let Some(i) = raw.mode.iter().position(|m| *m != "LEAF") {
                raw.value[i] = f32::MAX;
                let forest = Forest::from_node(&node(&raw, k, &base)).expect("forest");
                assert!(matches!(forest.nodes, Nodes::General { .. }));
            }
        }
    }

    #[test]
    fn categorical_forests_walk_in_compare_form_with_sets_as_onnx_defines() {
        let mut d = Draw(0x1234_5678_9ABC_DEF1);
        for (k, n_trees, depth) in [(1, 23, 6), (3, 40, 4), (1, 300, 5)] {
            let (mut raw, base) = random_forest(&mut d, k, n_trees, depth);
            // Equality chains stay (they become set nodes), lone equalities on whole codes
            // become sets of one; the other equalities become comparisons.
            for (mode, &value) in raw.mode.iter_mut().zip(&raw.value) {
                let code = value >= 0.0 && value.fract() == 0.0;
                *mode = match *mode {
                    "BRANCH_EQ" if !code => "BRANCH_LEQ",
                    "BRANCH_NEQ" => "BRANCH_GT",
                    other => other,
                };
            }
            let forest = Forest::from_node(&node(&raw, k, &base)).expect("forest");
            assert!(
                matches!(forest.nodes, Nodes::Compare { has_sets: true, .. }),
                "compare form with sets not used"
            );
            let special = [-0.0, f32::INFINITY, f32::NEG_INFINITY, 1e-45, 33.5, 300.0];
            assert_scores_like_reference(&forest, (&raw, &base), &mut d, &special);
        }
    }

    #[test]
    fn a_tree_that_loops_is_refused() {
        let mut raw = Raw::default();
        let mut d = Draw(7);
        grow(&mut raw, &mut d, 0, 0, 3, 1);
        let branch = raw
            .mode
            .iter()
            .position(|m| *m != "LEAF")
            .expect("a branch");
        raw.no[branch] = raw.id[branch];
        let err = Forest::from_node(&node(&raw, 1, &[0.0])).expect_err("a cycle");
        assert!(err.to_string().contains("cycle"), "{err}");
    }

    #[test]
    fn node_references_that_resolve_to_nothing_are_refused() {
        let mut d = Draw(11);
        let (raw, base) = random_forest(&mut d, 1, 3, 3);
        let refused = |raw: &Raw, what: &str| {
            let err = Forest::from_node(&node(raw, 1, &base)).expect_err(what);
            assert!(err.to_string().contains(what), "{what}: {err}");
        };
        let branch = raw
            .mode
            .iter()
            .position(|m| *m != "LEAF")
            .expect("a branch");

        let mut twice = raw.clone();
        twice.id[branch + 1] = twice.id[branch];
        refused(&twice, "appears twice");

        let mut dangling = raw.clone();
        dangling.no[branch] = 10_000;
        refused(&dangling, "points to missing node 10000");

        let mut stray_vote = raw.clone();
        stray_vote.vote_node[0] = 10_000;
        refused(&stray_vote, "vote for missing node 10000");
    }
}
