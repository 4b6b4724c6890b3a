//! Why a row got its score: each feature's contribution to the raw margins, plus a base value,
//! adding up to the margins exactly. Trees are explained by TreeSHAP (Lundberg, Erion & Lee,
//! "Consistent individualized feature attribution for tree ensembles", Algorithm 2, the
//! path-dependent form that `shap` and LightGBM's `pred_contrib` compute): the branches a row
//! did not take are weighed by the training rows that went down them ([`Tree::covers`]). A
//! linear term is credited with its weight times the value's distance from its training mean.
//! A blend's contributions are its members' averaged with the blend weights.
//!
//! A log-target member answers `exp(m)`, which is not additive in its features. Its log-scale
//! contributions are scaled by one factor, `(exp(m) - exp(b)) / (m - b)` for margin `m` and base
//! `b`, so they keep their signs and proportions and add up to `exp(m) - exp(b)`: the member's
//! base value is `exp(b)`.

use super::{Model, Node, Pipeline, Tree, TreeEnsemble, category_index};
use rayon::prelude::*;

/// One row's explanation on the margin scale: `base[k] + Σ_f per_feature[f][k] = margins[k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Contributions {
    /// Per output, the score of a row the model knows nothing about (the training average).
    pub base: Vec<f64>,
    /// Per pipeline feature, per output.
    pub per_feature: Vec<Vec<f64>>,
    /// Per output, the blended margins the contributions add up to (`Pipeline::predict_margins`).
    pub margins: Vec<f64>,
}

impl Contributions {
    fn zero(n_features: usize, n_out: usize) -> Contributions {
        Contributions {
            base: vec![0.0; n_out],
            per_feature: vec![vec![0.0; n_out]; n_features],
            margins: vec![0.0; n_out],
        }
    }

    /// Adds `weight` × `other`.
    fn add_scaled(&mut self, other: &Contributions, weight: f64) {
        for (a, b) in self.base.iter_mut().zip(&other.base) {
            *a += weight * b;
        }
        for (a, b) in self.margins.iter_mut().zip(&other.margins) {
            *a += weight * b;
        }
        for (fa, fb) in self.per_feature.iter_mut().zip(&other.per_feature) {
            for (a, b) in fa.iter_mut().zip(fb) {
                *a += weight * b;
            }
        }
    }
}

/// Why a pipeline cannot be explained.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct NotExplainable(pub String);

/// The deepest tree an explanation walks (training grows at most 63 leaves, so 62 levels, or
/// symmetric trees of 6):
/// TreeSHAP's time grows with the square of the depth and its recursion with the depth.
pub const MAX_EXPLAINED_DEPTH: usize = 128;

/// A tree's shape, as explanations need it: how many leaves, how deep.
struct Shape {
    leaves: u64,
    depth: usize,
}

/// The tree's shape if every node is reached from the root exactly once (no shared subtree, no
/// cycle, none out of range) and it is at most [`MAX_EXPLAINED_DEPTH`] deep.
fn shape(tree: &Tree) -> Result<Shape, NotExplainable> {
    let bad = |why: &str| Err(NotExplainable(format!("a tree {why}")));
    let mut seen = vec![false; tree.nodes.len()];
    let mut shape = Shape {
        leaves: 0,
        depth: 0,
    };
    let mut stack = vec![(0usize, 0usize)];
    while let Some((node, depth)) = stack.pop() {
        match seen.get_mut(node) {
            None => return bad("points outside itself"),
            Some(true) => return bad("reaches a node twice"),
            Some(s) => *s = true,
        }
        if depth > MAX_EXPLAINED_DEPTH {
            return bad(&format!("is deeper than {MAX_EXPLAINED_DEPTH} levels"));
        }
        shape.depth = shape.depth.max(depth);
        match &tree.nodes[node] {
            Node::Leaf { .. } => shape.leaves += 1,
            Node::Split { left, right, .. } => {
                stack.push((*left as usize, depth + 1));
                stack.push((*right as usize, depth + 1));
            }
        }
    }
    Ok(shape)
}

impl Pipeline {
    /// Whether [`Pipeline::contributions`] can run: every tree that splits carries its covers,
    /// reaches each node once and is at most [`MAX_EXPLAINED_DEPTH`] deep.
    pub fn check_explainable(&self) -> Result<(), NotExplainable> {
        fn check(model: &Model) -> Result<(), NotExplainable> {
            match model {
                Model::Trees(ensemble) => {
                    for tree in &ensemble.trees {
                        let positive = tree.covers.iter().all(|c| *c > 0.0 && c.is_finite());
                        if tree.nodes.len() > 1
                            && (tree.covers.len() != tree.nodes.len() || !positive)
                        {
                            return Err(NotExplainable(
                                "its trees do not record how many training rows reached each \
                                 node"
                                    .into(),
                            ));
                        }
                        shape(tree)?;
                    }
                    Ok(())
                }
                Model::Linear(_) => Ok(()),
                Model::LogTarget(inner) => check(inner),
            }
        }
        self.models.iter().try_for_each(check)
    }

    /// The work of explaining one row, in steps of TreeSHAP's path arithmetic: per tree, its
    /// leaves × (depth + 1)²; per linear model, its terms × outputs. Requests are bounded by it.
    /// The pipeline must have passed [`Pipeline::check_explainable`].
    pub fn explanation_cost(&self) -> u64 {
        fn cost(model: &Model, n_out: u64) -> u64 {
            match model {
                Model::Trees(ensemble) => ensemble
                    .trees
                    .iter()
                    .map(|t| match shape(t) {
                        Ok(s) => s.leaves * (s.depth as u64 + 1).pow(2),
                        Err(_) => u64::MAX / 4,
                    })
                    .fold(0u64, u64::saturating_add),
                Model::Linear(l) => (l.numeric.len() + l.categorical.len()) as u64 * n_out,
                Model::LogTarget(inner) => cost(inner, n_out),
            }
        }
        let n_out = self.task.n_outputs() as u64;
        self.models
            .iter()
            .map(|m| cost(m, n_out))
            .fold(1u64, u64::saturating_add)
    }

    /// One row's contributions; `x` is the row's feature vector (as [`Pipeline::feature_matrix`]
    /// builds it). The pipeline must have passed [`Pipeline::check`] and
    /// [`Pipeline::check_explainable`].
    pub fn contributions(&self, x: &[f32]) -> Contributions {
        let n_out = self.task.n_outputs();
        let mut total = Contributions::zero(self.features.len(), n_out);
        let weight_sum: f64 = self.weights.iter().sum();
        for (model, weight) in self.models.iter().zip(&self.weights) {
            let member = model_contributions(model, x, self.features.len(), n_out);
            total.add_scaled(&member, weight / weight_sum);
        }
        total
    }
}

fn model_contributions(model: &Model, x: &[f32], n_features: usize, n_out: usize) -> Contributions {
    let value_of = |f: usize| x.get(f).copied().unwrap_or(f32::NAN);
    let mut c = Contributions::zero(n_features, n_out);
    match model {
        Model::Trees(ensemble) => ensemble_contributions(ensemble, value_of, &mut c),
        Model::Linear(linear) => {
            for (k, b) in linear.intercept.iter().enumerate().take(n_out) {
                c.base[k] += b;
                c.margins[k] += b;
            }
            for term in &linear.numeric {
                let v = value_of(term.feature);
                let v = if v.is_nan() { term.fill } else { f64::from(v) };
                for (k, w) in term.weights.iter().enumerate().take(n_out) {
                    c.base[k] += w * term.mean;
                    c.margins[k] += w * v;
                    if let Some(f) = c.per_feature.get_mut(term.feature) {
                        f[k] += w * (v - term.mean);
                    }
                }
            }
            for term in &linear.categorical {
                let row = category_index(value_of(term.feature))
                    .and_then(|i| term.weights.get(i as usize));
                for k in 0..n_out {
                    let mean = term.mean.get(k).copied().unwrap_or(0.0);
                    let w = row.and_then(|r| r.get(k)).copied().unwrap_or(0.0);
                    c.base[k] += mean;
                    c.margins[k] += w;
                    if let Some(f) = c.per_feature.get_mut(term.feature) {
                        f[k] += w - mean;
                    }
                }
            }
        }
        Model::LogTarget(inner) => {
            c = model_contributions(inner, x, n_features, n_out);
            for k in 0..n_out {
                let (m, b) = (c.margins[k], c.base[k]);
                let (em, eb) = (m.exp(), b.exp());
                // The secant of exp between b and m; its tangent when they (nearly) meet.
                let scale = if (m - b).abs() > 1e-9 {
                    (em - eb) / (m - b)
                } else {
                    eb
                };
                c.margins[k] = em;
                c.base[k] = eb;
                for f in &mut c.per_feature {
                    f[k] *= scale;
                }
            }
        }
    }
    c
}

fn ensemble_contributions(
    ensemble: &TreeEnsemble,
    value_of: impl Fn(usize) -> f32 + Copy + Sync,
    c: &mut Contributions,
) {
    for (k, b) in ensemble.base.iter().enumerate() {
        if k < c.base.len() {
            c.base[k] += b;
            c.margins[k] += b;
        }
    }
    // A fixed number of blocks of trees in parallel (one row of a large forest is milliseconds
    // of work), summed in block order so that the result depends neither on the scheduling nor
    // on the number of cores, each block with one flat buffer.
    let n_out = c.base.len();
    let n_features = c.per_feature.len();
    let per_block = ensemble.trees.len().div_ceil(TREE_BLOCKS).max(1);
    let partials: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> = ensemble
        .trees
        .par_chunks(per_block)
        .map(|trees| {
            let (mut base, mut margins) = (vec![0.0; n_out], vec![0.0; n_out]);
            let mut phi = vec![0.0; n_features * n_out];
            let mut walk = TreeWalk {
                phi: vec![0.0; n_features],
                buf: Vec::new(),
                expected: 0.0,
            };
            let mut used = Vec::new();
            for tree in trees {
                let Some(k) = (tree.output < n_out).then_some(tree.output) else {
                    continue;
                };
                if tree.nodes.len() <= 1 {
                    if let Some(Node::Leaf { value }) = tree.nodes.first() {
                        base[k] += value;
                        margins[k] += value;
                    }
                    continue;
                }
                // Only the features the tree splits on get a contribution from it.
                used.clear();
                used.extend(tree.nodes.iter().filter_map(|n| match n {
                    Node::Split { feature, .. } if *feature < n_features => Some(*feature),
                    _ => None,
                }));
                used.sort_unstable();
                used.dedup();
                walk.run(tree, value_of, &used);
                base[k] += walk.expected;
                margins[k] += super::leaf_value(&tree.nodes, value_of);
                for &f in &used {
                    phi[f * n_out + k] += walk.phi[f];
                }
            }
            (base, margins, phi)
        })
        .collect();
    for (base, margins, phi) in &partials {
        for k in 0..n_out {
            c.base[k] += base[k];
            c.margins[k] += margins[k];
        }
        for (f, per_out) in c.per_feature.iter_mut().enumerate() {
            for (k, p) in per_out.iter_mut().enumerate() {
                *p += phi[f * n_out + k];
            }
        }
    }
}

/// Blocks of trees explained in parallel.
const TREE_BLOCKS: usize = 8;

/// One element of TreeSHAP's path of unique features.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    /// `usize::MAX` for the root's placeholder.
    feature: usize,
    /// The share of rows that reach this point along the path when the feature is not known.
    zero: f64,
    /// 1 if the row itself goes this way, else 0.
    one: f64,
    /// The permutation weight.
    weight: f64,
}

/// One tree's TreeSHAP walk for one row, with its scratch kept between trees.
struct TreeWalk {
    /// Per feature, this tree's contributions.
    phi: Vec<f64>,
    /// The paths of every level of the recursion, one after the other.
    buf: Vec<PathElement>,
    /// The tree's cover-weighted average leaf value: its score of a row it knows nothing about.
    expected: f64,
}

impl TreeWalk {
    /// Walks `tree` for the row; `used` lists the features it splits on (the only ones whose
    /// `phi` it sets).
    fn run(&mut self, tree: &Tree, value_of: impl Fn(usize) -> f32 + Copy, used: &[usize]) {
        for &f in used {
            if let Some(p) = self.phi.get_mut(f) {
                *p = 0.0;
            }
        }
        self.expected = 0.0;
        let root = tree.covers.first().copied().unwrap_or(0.0);
        if root <= 0.0 {
            return;
        }
        self.recurse(tree, value_of, root, 0, 0, 0, 1.0, 1.0, usize::MAX, 0);
    }

    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &mut self,
        tree: &Tree,
        value_of: impl Fn(usize) -> f32 + Copy,
        root_cover: f64,
        node: usize,
        parent_start: usize,
        depth: usize,
        parent_zero: f64,
        parent_one: f64,
        parent_feature: usize,
        level: usize,
    ) {
        // The level bound only stops a cyclic tree (which `check` refuses).
        if level > tree.nodes.len() {
            return;
        }
        let start = parent_start + depth + 1;
        if self.buf.len() < start + depth + 1 {
            self.buf
                .resize(start + depth + 1 + 16, PathElement::default());
        }
        self.buf
            .copy_within(parent_start..parent_start + depth + 1, start);
        let cover = |n: usize| tree.covers.get(n).copied().unwrap_or(0.0);
        match tree.nodes.get(node) {
            Some(Node::Leaf { value }) => {
                let path = &mut self.buf[start..];
                extend(path, depth, parent_zero, parent_one, parent_feature);
                self.expected += cover(node) / root_cover * value;
                for i in 1..=depth {
                    let w = unwound_sum(path, depth, i);
                    let el = path[i];
                    if let Some(p) = self.phi.get_mut(el.feature) {
                        *p += w * (el.one - el.zero) * value;
                    }
                }
            }
            Some(Node::Split {
                feature,
                rule,
                missing_left,
                left,
                right,
            }) => {
                let path = &mut self.buf[start..];
                extend(path, depth, parent_zero, parent_one, parent_feature);
                let go_left = rule.row_goes_left(*missing_left, value_of(*feature));
                let (hot, cold) = if go_left {
                    (*left as usize, *right as usize)
                } else {
                    (*right as usize, *left as usize)
                };
                let here = cover(node);
                if here <= 0.0 {
                    return;
                }
                let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
                let mut depth = depth;
                // A feature already on the path is taken off and put back with this split's
                // shares.
                if let Some(i) = (0..=depth).find(|&i| path[i].feature == *feature) {
                    incoming_zero = path[i].zero;
                    incoming_one = path[i].one;
                    unwind(path, depth, i);
                    depth -= 1;
                }
                let hot_zero = cover(hot) / here * incoming_zero;
                let cold_zero = cover(cold) / here * incoming_zero;
                let f = *feature;
                self.recurse(
                    tree,
                    value_of,
                    root_cover,
                    hot,
                    start,
                    depth + 1,
                    hot_zero,
                    incoming_one,
                    f,
                    level + 1,
                );
                self.recurse(
                    tree,
                    value_of,
                    root_cover,
                    cold,
                    start,
                    depth + 1,
                    cold_zero,
                    0.0,
                    f,
                    level + 1,
                );
            }
            None => {}
        }
    }
}

/// `1 / k` for the small whole numbers the path arithmetic divides by (no division in the
/// innermost loops).
static RECIPROCALS: std::sync::LazyLock<Vec<f64>> =
    std::sync::LazyLock::new(|| (0..=256).map(|k| 1.0 / k as f64).collect());

fn recip(k: usize) -> f64 {
    RECIPROCALS
        .get(k)
        .copied()
        .unwrap_or_else(|| 1.0 / k as f64)
}

fn extend(path: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: usize) {
    path[depth] = PathElement {
        feature,
        zero,
        one,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let inv_d1 = recip(depth + 1);
    for i in (0..depth).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 * inv_d1;
        path[i].weight = zero * path[i].weight * (depth - i) as f64 * inv_d1;
    }
}

fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
    let (one, zero) = (path[index].one, path[index].zero);
    let d1 = (depth + 1) as f64;
    let inv_d1 = recip(depth + 1);
    let mut next = path[depth].weight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let kept = path[i].weight;
            path[i].weight = next * d1 * recip(i + 1) / one;
            next = kept - path[i].weight * zero * (depth - i) as f64 * inv_d1;
        } else if zero != 0.0 {
            path[i].weight = path[i].weight * d1 * recip(depth - i) / zero;
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
}

fn unwound_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let (one, zero) = (path[index].one, path[index].zero);
    let d1 = (depth + 1) as f64;
    let inv_d1 = recip(depth + 1);
    let mut next = path[depth].weight;
    let mut total = 0.0;
    if one != 0.0 {
        let scale = d1 / one;
        for i in (0..depth).rev() {
            let share = next * scale * recip(i + 1);
            total += share;
            next = path[i].weight - share * zero * (depth - i) as f64 * inv_d1;
        }
    } else if zero != 0.0 {
        let scale = d1 / zero;
        for i in (0..depth).rev() {
            total += path[i].weight * scale * recip(depth - i);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automl::pipeline::{
        CategoricalTerm, Feature, InputSpec, LinearModel, NumericTerm, SplitRule, Task,
    };
    use crate::automl::random::SplitMix64;
    use crate::ingest::ColumnType;

    /// A random tree on `n_features` features: splits reuse features (so paths repeat them),
    /// take both missing directions and both rule kinds; covers are consistent.
    fn random_tree(rng: &mut SplitMix64, n_features: usize, n_splits: usize) -> Tree {
        let mut nodes = vec![Node::Leaf { value: 0.0 }];
        let mut covers = vec![1000.0];
        let mut leaves = vec![0usize];
        for _ in 0..n_splits {
            let at = leaves.swap_remove(rng.below(leaves.len()));
            let feature = rng.below(n_features);
            let rule = if rng.below(4) == 0 {
                SplitRule::InSet(vec![0, 2])
            } else {
                SplitRule::LessOrEqual((rng.next_f64() * 4.0) as f32)
            };
            let left = nodes.len();
            // Shares down to 1e-4, as rare words split: the path arithmetic divides by them.
            let share = match rng.below(3) {
                0 => 1e-4 + 1e-3 * rng.next_f64(),
                1 => 1.0 - 1e-4 - 1e-3 * rng.next_f64(),
                _ => 0.1 + 0.8 * rng.next_f64(),
            };
            let (cl, cr) = (covers[at] * share, covers[at] * (1.0 - share));
            nodes[at] = Node::Split {
                feature,
                rule,
                missing_left: rng.below(2) == 0,
                left: left as u32,
                right: left as u32 + 1,
            };
            nodes.push(Node::Leaf { value: 0.0 });
            nodes.push(Node::Leaf { value: 0.0 });
            covers.push(cl);
            covers.push(cr);
            leaves.push(left);
            leaves.push(left + 1);
        }
        for &l in &leaves {
            nodes[l] = Node::Leaf {
                value: rng.next_f64() * 2.0 - 1.0,
            };
        }
        Tree {
            output: 0,
            nodes,
            covers,
        }
    }

    /// The tree's expected score when only the features in `known` are known: known features
    /// follow the row, the others split by cover (the value TreeSHAP's Shapley values are of).
    fn conditional(tree: &Tree, x: &[f32], known: u32, node: usize) -> f64 {
        match &tree.nodes[node] {
            Node::Leaf { value } => *value,
            Node::Split {
                feature,
                rule,
                missing_left,
                left,
                right,
            } => {
                let (l, r) = (*left as usize, *right as usize);
                if known & (1 << feature) != 0 {
                    let go_left = rule.row_goes_left(*missing_left, x[*feature]);
                    conditional(tree, x, known, if go_left { l } else { r })
                } else {
                    (tree.covers[l] * conditional(tree, x, known, l)
                        + tree.covers[r] * conditional(tree, x, known, r))
                        / tree.covers[node]
                }
            }
        }
    }

    /// Shapley values by enumerating every coalition.
    fn brute_force(tree: &Tree, x: &[f32], n: usize) -> Vec<f64> {
        let factorial = |k: usize| (1..=k).map(|i| i as f64).product::<f64>();
        let mut phi = vec![0.0; n];
        for (i, p) in phi.iter_mut().enumerate() {
            for set in 0u32..(1 << n) {
                if set & (1 << i) != 0 {
                    continue;
                }
                let s = set.count_ones() as usize;
                let weight = factorial(s) * factorial(n - s - 1) / factorial(n);
                *p += weight
                    * (conditional(tree, x, set | (1 << i), 0) - conditional(tree, x, set, 0));
            }
        }
        phi
    }

    #[test]
    fn tree_shap_equals_the_shapley_values_by_enumeration() {
        let mut rng = SplitMix64::new(7);
        let n = 5;
        for case in 0..200 {
            let tree = random_tree(&mut rng, n, 1 + case % 14);
            let x: Vec<f32> = (0..n)
                .map(|_| {
                    if rng.below(6) == 0 {
                        f32::NAN
                    } else {
                        (rng.next_f64() * 4.0).floor() as f32
                    }
                })
                .collect();
            let mut walk = TreeWalk {
                phi: vec![0.0; n],
                buf: Vec::new(),
                expected: 0.0,
            };
            walk.run(&tree, |f| x[f], &(0..n).collect::<Vec<_>>());
            let phi = &walk.phi;
            let want = brute_force(&tree, &x, n);
            for f in 0..n {
                assert!(
                    (phi[f] - want[f]).abs() < 1e-9,
                    "case {case}, feature {f}: TreeSHAP {} vs enumeration {}",
                    phi[f],
                    want[f]
                );
            }
            let total: f64 = phi.iter().sum::<f64>() + walk.expected;
            let score = crate::automl::pipeline::leaf_value(&tree.nodes, |f| x[f]);
            assert!(
                (total - score).abs() < 1e-9,
                "case {case}: {total} vs {score}"
            );
        }
    }

    fn pipeline(models: Vec<Model>, weights: Vec<f64>) -> Pipeline {
        Pipeline {
            target: "y".into(),
            task: Task::Regression,
            inputs: (0..3)
                .map(|i| InputSpec {
                    name: format!("x{i}"),
                    kind: ColumnType::Float,
                })
                .collect(),
            features: (0..3).map(|input| Feature::Numeric { input }).collect(),
            models,
            weights,
        }
    }

    #[test]
    fn a_blend_of_trees_linear_and_log_target_members_adds_up_to_its_margin() {
        let mut rng = SplitMix64::new(11);
        let trees = |rng: &mut SplitMix64, scale: f64| {
            let mut trees: Vec<Tree> = (0..6).map(|_| random_tree(rng, 3, 6)).collect();
            for t in &mut trees {
                for n in &mut t.nodes {
                    if let Node::Leaf { value } = n {
                        *value *= scale;
                    }
                }
            }
            Model::Trees(TreeEnsemble {
                base: vec![0.5],
                trees,
            })
        };
        let linear = Model::Linear(LinearModel {
            intercept: vec![1.5],
            numeric: vec![NumericTerm {
                feature: 2,
                fill: 1.0,
                weights: vec![0.3],
                mean: 1.7,
            }],
            categorical: Vec::<CategoricalTerm>::new(),
        });
        let log_trees = Model::LogTarget(Box::new(trees(&mut rng, 0.2)));
        let p = pipeline(
            vec![trees(&mut rng, 1.0), linear, log_trees],
            vec![2.0, 1.0, 1.0],
        );
        p.check_explainable().unwrap();
        for _ in 0..100 {
            let x: Vec<f32> = (0..3)
                .map(|_| {
                    if rng.below(5) == 0 {
                        f32::NAN
                    } else {
                        (rng.next_f64() * 4.0) as f32
                    }
                })
                .collect();
            let c = p.contributions(&x);
            let sum = c.base[0] + c.per_feature.iter().map(|f| f[0]).sum::<f64>();
            assert!(
                (sum - c.margins[0]).abs() < 1e-12,
                "{sum} vs {}",
                c.margins[0]
            );
            let mut native = [0.0];
            let weight_sum = 4.0;
            for (m, w) in p.models.iter().zip(&p.weights) {
                let mut one = vec![0.0];
                crate::automl::predict::add_model_margin(m, |f| x[f], &mut one);
                native[0] += w * one[0] / weight_sum;
            }
            assert!((c.margins[0] - native[0]).abs() < 1e-12);
        }
        // The linear term is credited against its training mean.
        let c = pipeline(vec![p.models[1].clone()], vec![1.0]).contributions(&[0.0, 0.0, 2.5]);
        assert!((c.per_feature[2][0] - 0.3 * 0.8).abs() < 1e-12);
        assert!((c.base[0] - (1.5 + 0.3 * 1.7)).abs() < 1e-12);
    }

    #[test]
    fn trees_without_covers_cannot_be_explained() {
        let mut rng = SplitMix64::new(3);
        let mut tree = random_tree(&mut rng, 3, 4);
        tree.covers.clear();
        let p = pipeline(
            vec![Model::Trees(TreeEnsemble {
                base: vec![0.0],
                trees: vec![tree],
            })],
            vec![1.0],
        );
        assert!(p.check_explainable().is_err());
    }

    /// A stored pipeline could be tampered with: a subtree reached twice (exponential work for
    /// TreeSHAP) or a chain deeper than the bound (cubic work, deep recursion) is refused.
    #[test]
    fn shared_subtrees_and_deep_chains_cannot_be_explained() {
        let chain = |depth: usize, shared: bool| {
            let mut nodes = Vec::new();
            for d in 0..depth {
                let next = (d + 1) as u32;
                nodes.push(Node::Split {
                    feature: d % 3,
                    rule: SplitRule::LessOrEqual(0.5),
                    missing_left: true,
                    left: next,
                    right: if shared { next } else { (depth + 1 + d) as u32 },
                });
            }
            nodes.push(Node::Leaf { value: 1.0 });
            if !shared {
                nodes.extend((0..depth).map(|_| Node::Leaf { value: -1.0 }));
            }
            let covers = vec![1.0; nodes.len()];
            pipeline(
                vec![Model::Trees(TreeEnsemble {
                    base: vec![0.0],
                    trees: vec![Tree {
                        output: 0,
                        nodes,
                        covers,
                    }],
                })],
                vec![1.0],
            )
        };
        assert!(chain(20, false).check_explainable().is_ok());
        let shared = chain(20, true).check_explainable().unwrap_err();
        assert!(shared.0.contains("twice"), "{shared}");
        let deep = chain(MAX_EXPLAINED_DEPTH + 1, false)
            .check_explainable()
            .unwrap_err();
        assert!(deep.0.contains("deeper"), "{deep}");
        assert!(chain(20, false).explanation_cost() > 20 * 21 * 21);
    }
}
