//! `ai.onnx.ml.TreeEnsembleRegressor`, which tract 0.23 does not register, parsed into our own
//! tract operator. The evaluation is a flat node array walked per row, rows split across
//! threads for large batches.
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

const MODE_LEAF: u32 = 0;
const MODE_LEQ: u32 = 1;
const MODE_LT: u32 = 2;
const MODE_GTE: u32 = 3;
const MODE_GT: u32 = 4;
const MODE_EQ: u32 = 5;
const MODE_NEQ: u32 = 6;
const FEATURE_MASK: u32 = 0x00FF_FFFF;
const MODE_SHIFT: u32 = 24;
const NAN_TRUE: u32 = 1 << 31;

/// One node in 16 bytes. Branch: `packed` = feature | mode << 24 | NaN-goes-true << 31,
/// `value` the threshold, `a`/`b` the true/false children (global indices). Leaf: mode 0,
/// `a..b` the range of its votes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FlatNode {
    packed: u32,
    value: f32,
    a: u32,
    b: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forest {
    nodes: Vec<FlatNode>,
    roots: Vec<u32>,
    vote_targets: Vec<u32>,
    vote_weights: Vec<f32>,
    base: Vec<f32>,
    n_targets: usize,
    /// Highest feature index read, plus one.
    n_features: usize,
    /// Whether every branch is `BRANCH_LEQ` (the common case, a tighter loop).
    all_leq: bool,
    max_depth: usize,
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

        // Global index of each (tree, node id), in (tree, node id) order.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (tree_ids[i], node_ids[i]));
        let mut index = std::collections::HashMap::with_capacity(n);
        for (global, &i) in order.iter().enumerate() {
            if index
                .insert((tree_ids[i], node_ids[i]), global as u32)
                .is_some()
            {
                bail!(
                    "TreeEnsembleRegressor: node {} of tree {} appears twice",
                    node_ids[i],
                    tree_ids[i]
                );
            }
        }
        let mut votes_by_node: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        for v in 0..n_votes {
            let Some(&at) = index.get(&(vote_trees[v], vote_nodes[v])) else {
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
        let mut targets = Vec::with_capacity(n_votes);
        let mut weights = Vec::with_capacity(n_votes);
        let mut n_features = 0usize;
        let mut all_leq = true;
        let mut previous_tree = None;
        for (global, &i) in order.iter().enumerate() {
            if previous_tree != Some(tree_ids[i]) {
                // The lowest node id of a tree is its root.
                roots.push(global as u32);
                previous_tree = Some(tree_ids[i]);
            }
            let mode = match modes[i] {
                "LEAF" => MODE_LEAF,
                "BRANCH_LEQ" => MODE_LEQ,
                "BRANCH_LT" => MODE_LT,
                "BRANCH_GTE" => MODE_GTE,
                "BRANCH_GT" => MODE_GT,
                "BRANCH_EQ" => MODE_EQ,
                "BRANCH_NEQ" => MODE_NEQ,
                other => bail!("TreeEnsembleRegressor: unsupported node mode {other}"),
            };
            if mode == MODE_LEAF {
                let start = targets.len() as u32;
                for &(t, w) in &votes_by_node[global] {
                    targets.push(t);
                    weights.push(w);
                }
                nodes.push(FlatNode {
                    packed: MODE_LEAF,
                    value: 0.0,
                    a: start,
                    b: targets.len() as u32,
                });
                continue;
            }
            all_leq &= mode == MODE_LEQ;
            let feature = usize::try_from(feature_ids[i])
                .ok()
                .filter(|&f| f <= FEATURE_MASK as usize);
            let Some(feature) = feature else {
                bail!(
                    "TreeEnsembleRegressor: feature id {} out of range",
                    feature_ids[i]
                )
            };
            n_features = n_features.max(feature + 1);
            let child = |id: i64| {
                index.get(&(tree_ids[i], id)).copied().ok_or_else(|| {
                    format_err!(
                        "TreeEnsembleRegressor: node {} of tree {} points to missing node {id}",
                        node_ids[i],
                        tree_ids[i]
                    )
                })
            };
            let packed =
                feature as u32 | (mode << MODE_SHIFT) | if missing[i] != 0 { NAN_TRUE } else { 0 };
            nodes.push(FlatNode {
                packed,
                value: values[i],
                a: child(true_ids[i])?,
                b: child(false_ids[i])?,
            });
        }
        let max_depth = max_depth(&nodes, &roots)?;
        Ok(Forest {
            nodes,
            roots,
            vote_targets: targets,
            vote_weights: weights,
            base,
            n_targets,
            n_features,
            all_leq,
            max_depth,
        })
    }

    pub fn n_targets(&self) -> usize {
        self.n_targets
    }

    /// Scores of `rows` consecutive rows of a row-major `[rows, n_cols]` matrix into `out`
    /// (`rows × n_targets` values, overwritten). Tree-major: each tree scores every row of the
    /// block before the next tree starts, so its nodes stay in cache; every row still adds the
    /// trees in the same order, so the sums are the same as row by row.
    fn eval_block(&self, x: &[f32], n_cols: usize, out: &mut [f32]) {
        for o in out.chunks_mut(self.n_targets.max(1)) {
            o.copy_from_slice(&self.base);
        }
        if self.all_leq {
            self.eval_block_with(x, n_cols, out, |_, xv, v| xv <= v)
        } else {
            self.eval_block_with(x, n_cols, out, |mode, xv, v| match mode {
                MODE_LEQ => xv <= v,
                MODE_LT => xv < v,
                MODE_GTE => xv >= v,
                MODE_GT => xv > v,
                MODE_EQ => xv == v,
                _ => xv != v,
            })
        }
    }

    #[inline(always)]
    fn eval_block_with(
        &self,
        x: &[f32],
        n_cols: usize,
        out: &mut [f32],
        cmp: impl Fn(u32, f32, f32) -> bool,
    ) {
        let k = self.n_targets.max(1);
        let nodes = &self.nodes[..];
        for &root in &self.roots {
            for (row, o) in out.chunks_mut(k).enumerate() {
                let x = &x[row * n_cols..(row + 1) * n_cols];
                let mut node = nodes[root as usize];
                // Bounded by the depth checked at load time (trees may share subtrees, not cycle).
                for _ in 0..self.max_depth {
                    let mode = (node.packed >> MODE_SHIFT) & 0x7F;
                    if mode == MODE_LEAF {
                        break;
                    }
                    let xv = x[(node.packed & FEATURE_MASK) as usize];
                    let go_true = if xv.is_nan() {
                        node.packed & NAN_TRUE != 0
                    } else {
                        cmp(mode, xv, node.value)
                    };
                    node = nodes[if go_true { node.a } else { node.b } as usize];
                }
                for v in node.a as usize..node.b as usize {
                    o[self.vote_targets[v] as usize] += self.vote_weights[v];
                }
            }
        }
    }

    /// Scores of a row-major `[n, n_cols]` matrix into `[n, n_targets]`.
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
                self.eval_block(&x[start..], n_cols, block);
            }
        };
        if n >= 2 * ROWS_PER_TASK && rayon::current_num_threads() > 1 {
            out.par_chunks_mut(ROWS_PER_TASK * k)
                .enumerate()
                .for_each(|(c, chunk)| score(c * ROWS_PER_TASK, chunk));
        } else {
            score(0, out);
        }
    }
}

/// Longest root-to-leaf path (in nodes), refusing cycles.
fn max_depth(nodes: &[FlatNode], roots: &[u32]) -> TractResult<usize> {
    let mut depth = vec![0usize; nodes.len()]; // 0 = not computed
    let mut on_path = vec![false; nodes.len()];
    let mut deepest = 1;
    for &root in roots {
        let mut stack = vec![(root as usize, false)];
        while let Some((at, leaving)) = stack.pop() {
            let node = nodes[at];
            let is_leaf = (node.packed >> MODE_SHIFT) & 0x7F == MODE_LEAF;
            if leaving {
                on_path[at] = false;
                depth[at] = if is_leaf {
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
            if !is_leaf {
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
        deepest = deepest.max(depth[root as usize]);
    }
    Ok(deepest)
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
