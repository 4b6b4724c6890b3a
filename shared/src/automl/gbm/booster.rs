//! The boosting loop: gradients from the current scores, one tree per output per round, shrinkage,
//! bagging and feature fraction from one seeded generator, validation loss and early stopping.

use super::binning::{BinnedDataset, BinningParams};
use super::objective;
use super::split::SplitParams;
use super::tree_learner::{GrowthParams, TreeLearner};
use super::{FeatureMatrix, GbmFit, GbmParams, GrowPolicy, Objective};
use crate::automl::pipeline::{Node, Tree, TreeEnsemble, leaf_value};
use crate::automl::random::SplitMix64;
use rayon::prelude::*;
use std::time::Instant;

fn single_leaf(output: usize) -> Tree {
    Tree {
        output,
        nodes: vec![Node::Leaf { value: 0.0 }],
        covers: Vec::new(),
    }
}

/// LightGBM's count of features drawn per tree: round(n * fraction), at least min(2, n).
fn features_per_tree(n: usize, fraction: f64) -> usize {
    ((n as f64 * fraction + 0.5) as usize).max(n.min(2)).min(n)
}

pub(crate) fn boost(
    x: &FeatureMatrix,
    y: &[f64],
    w: Option<&[f64]>,
    obj: &Objective,
    params: &GbmParams,
    valid: Option<(&FeatureMatrix, &[f64])>,
    deadline: Option<Instant>,
) -> GbmFit {
    let k = obj.n_outputs();
    let n = x.n_rows;
    let data = BinnedDataset::build(
        x,
        &BinningParams {
            max_bin: params.max_bin,
            min_data_in_bin: params.min_data_in_bin.max(1),
            filter_cnt: params.min_data_in_leaf,
            seed: params.seed,
        },
    );
    let growth = GrowthParams {
        num_leaves: params.num_leaves,
        max_depth: (params.max_depth > 0).then_some(params.max_depth as usize),
        split: SplitParams {
            lambda_l1: params.lambda_l1,
            lambda_l2: params.lambda_l2,
            min_data_in_leaf: params.min_data_in_leaf as i64,
            min_sum_hessian_in_leaf: params.min_sum_hessian_in_leaf,
            min_gain_to_split: params.min_gain_to_split,
            max_cat_threshold: params.max_cat_threshold,
            cat_l2: params.cat_l2,
            cat_smooth: params.cat_smooth,
            min_data_per_group: params.min_data_per_group as i64,
            max_cat_to_onehot: params.max_cat_to_onehot,
        },
    };
    let mut learner = TreeLearner::new(&data, &growth);
    let base = objective::init_scores(obj, y, w);
    let mut scores: Vec<f64> = base.iter().copied().cycle().take(n * k).collect();
    let mut valid_margins: Vec<f64> = valid
        .map(|(vx, _)| base.iter().copied().cycle().take(vx.n_rows * k).collect())
        .unwrap_or_default();
    let mut grad = vec![vec![0.0f32; n]; k];
    let mut hess = vec![vec![0.0f32; n]; k];

    // A class that never (or always) occurs has nothing to learn (LightGBM's class_need_train).
    let trainable: Vec<bool> = match obj {
        Objective::Multiclass { n_classes } => {
            let mut cnt = vec![0usize; *n_classes];
            for v in y {
                cnt[*v as usize] += 1;
            }
            cnt.iter().map(|&c| c > 0 && c < n).collect()
        }
        _ => vec![true],
    };

    let mut rng = SplitMix64::new(params.seed);
    let bagging = params.bagging_freq > 0 && params.bagging_fraction < 1.0;
    let mut bag: Vec<u32> = (0..n as u32).collect();
    let mut in_bag: Vec<bool> = vec![true; n];
    let n_feat = data.features.len();
    let per_tree = features_per_tree(n_feat, params.feature_fraction);

    let mut trees: Vec<Tree> = Vec::new();
    let mut gains_per_round: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut valid_scores = Vec::new();
    let mut best_loss = f64::INFINITY;
    let mut best_rounds = 0usize;
    let mut out_of_time = false;

    for round in 0..params.n_estimators {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            out_of_time = true;
            break;
        }
        if bagging && round % params.bagging_freq == 0 {
            bag.clear();
            for (i, flag) in in_bag.iter_mut().enumerate() {
                *flag = rng.next_f64() < params.bagging_fraction;
                if *flag {
                    bag.push(i as u32);
                }
            }
            if bag.is_empty() {
                bag.push(0);
                in_bag[0] = true;
            }
        }
        objective::gradients(obj, y, w, &scores, &mut grad, &mut hess);

        let mut round_trees = Vec::with_capacity(k);
        let mut round_gains = Vec::new();
        let mut any_split = false;
        for c in 0..k {
            let mut features = vec![per_tree == n_feat; n_feat];
            if per_tree < n_feat {
                for f in rng.sample_indices(n_feat, per_tree) {
                    features[f] = true;
                }
            }
            if !trainable[c] {
                round_trees.push(single_leaf(c));
                continue;
            }
            let grown = match params.policy {
                GrowPolicy::LeafWise => learner.grow(&grad[c], &hess[c], &bag, &features),
                GrowPolicy::Symmetric => learner.grow_symmetric(
                    &grad[c],
                    &hess[c],
                    &bag,
                    &features,
                    params.max_depth.max(1) as usize,
                ),
            };
            if grown.leaves.len() <= 1 {
                round_trees.push(single_leaf(c));
                continue;
            }
            any_split = true;
            let mut nodes = grown.nodes;
            for leaf in &grown.leaves {
                let value = leaf.output * params.learning_rate;
                nodes[leaf.node] = Node::Leaf { value };
                for &r in &learner.rows[leaf.start..leaf.end] {
                    scores[r as usize * k + c] += value;
                }
            }
            if bagging {
                for (row, _) in in_bag.iter().enumerate().filter(|(_, b)| !**b) {
                    scores[row * k + c] += leaf_value(&nodes, |f| x.value(f, row));
                }
            }
            round_gains.extend(grown.split_gains);
            round_trees.push(Tree {
                output: c,
                nodes,
                covers: grown.covers,
            });
        }
        if !any_split {
            break;
        }
        if let Some((vx, vy)) = valid {
            valid_margins
                .par_chunks_mut(k)
                .enumerate()
                .for_each(|(row, m)| {
                    for t in &round_trees {
                        m[t.output] += leaf_value(&t.nodes, |f| vx.value(f, row));
                    }
                });
            let loss = objective::loss(obj, vy, &valid_margins);
            valid_scores.push(loss);
            let min_delta = params.early_stopping_min_delta.max(0.0) * valid_scores[0].abs();
            if loss < best_loss - min_delta {
                best_loss = loss;
                best_rounds = round + 1;
            }
        }
        trees.extend(round_trees);
        gains_per_round.push(round_gains);
        if valid.is_some()
            && params.early_stopping_rounds > 0
            && gains_per_round.len() - best_rounds >= params.early_stopping_rounds
        {
            break;
        }
    }

    let rounds = gains_per_round.len();
    let kept = if valid.is_some() && params.early_stopping_rounds > 0 {
        best_rounds
    } else {
        rounds
    };
    trees.truncate(kept * k);
    let mut feature_gain = vec![0.0; x.columns.len()];
    for round in &gains_per_round[..kept] {
        for &(f, g) in round {
            feature_gain[f] += g;
        }
    }
    GbmFit {
        ensemble: TreeEnsemble { base, trees },
        best_iteration: kept,
        valid_scores,
        feature_gain,
        out_of_time,
    }
}
