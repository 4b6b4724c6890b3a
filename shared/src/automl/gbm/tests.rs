//! Behaviour of the whole trainer on synthetic problems whose answer is known.

use super::*;
use crate::automl::pipeline::{Node, SplitRule, Tree};
use crate::automl::random::SplitMix64;

/// `n` rows of `d` uniform features in [0, 1).
fn uniform(n: usize, d: usize, seed: u64) -> FeatureMatrix {
    let mut rng = SplitMix64::new(seed);
    let columns = (0..d)
        .map(|_| FeatureColumn::numeric((0..n).map(|_| rng.next_f64() as f32).collect()))
        .collect();
    FeatureMatrix { n_rows: n, columns }
}

fn rows_of(x: &FeatureMatrix, range: std::ops::Range<usize>) -> FeatureMatrix {
    FeatureMatrix {
        n_rows: range.len(),
        columns: x
            .columns
            .iter()
            .map(|c| FeatureColumn {
                values: c.values[range.clone()].to_vec(),
                categorical: c.categorical,
            })
            .collect(),
    }
}

fn rmse(pred: &[Vec<f64>], y: &[f64]) -> f64 {
    let s: f64 = pred.iter().zip(y).map(|(p, t)| (p[0] - t).powi(2)).sum();
    (s / y.len() as f64).sqrt()
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// How many rows of `x` a binary ensemble classifies as `y` (0/1) says.
fn binary_correct(ensemble: &TreeEnsemble, x: &FeatureMatrix, y: &[f64]) -> usize {
    predict_margins(ensemble, x)
        .iter()
        .zip(y)
        .filter(|(p, t)| f64::from(p[0] > 0.0) == **t)
        .count()
}

fn std_dev(y: &[f64]) -> f64 {
    let m = y.iter().sum::<f64>() / y.len() as f64;
    (y.iter().map(|v| (v - m).powi(2)).sum::<f64>() / y.len() as f64).sqrt()
}

fn value(x: &FeatureMatrix, f: usize, r: usize) -> f64 {
    f64::from(x.columns[f].values[r])
}

#[test]
fn regression_learns_a_smooth_function() {
    let x = uniform(4000, 4, 1);
    let mut noise = SplitMix64::new(2);
    let y: Vec<f64> = (0..4000)
        .map(|r| {
            10.0 * (3.0 * value(&x, 0, r)).sin()
                + 5.0 * value(&x, 1, r) * value(&x, 2, r)
                + (noise.next_f64() - 0.5)
        })
        .collect();
    let (xt, yt) = (rows_of(&x, 0..3000), &y[..3000]);
    let (xv, yv) = (rows_of(&x, 3000..4000), &y[3000..]);
    let params = GbmParams {
        n_estimators: 300,
        ..GbmParams::default()
    };
    let fit = train(&xt, yt, None, &Objective::Regression, &params, None, None).expect("trains");
    let err = rmse(&predict_margins(&fit.ensemble, &xv), yv);
    // Noise alone has rmse ~0.29 and the target's spread is ~3: the fit is near the noise floor.
    assert!(err < 0.45, "rmse {err}, std {}", std_dev(yv));
    assert_eq!(fit.ensemble.trees.len(), 300);
    // The irrelevant feature 3 carries far less gain than the one driving the target.
    assert!(fit.feature_gain[3] < 0.05 * fit.feature_gain[0]);
}

#[test]
fn binary_and_multiclass_separate_their_classes() {
    let x = uniform(3000, 3, 3);
    let yb: Vec<f64> = (0..3000)
        .map(|r| f64::from(value(&x, 0, r) + value(&x, 1, r) > 1.0))
        .collect();
    let ym: Vec<f64> = (0..3000)
        .map(|r| (value(&x, 2, r) * 3.0).floor().min(2.0))
        .collect();
    let (xt, xv) = (rows_of(&x, 0..2000), rows_of(&x, 2000..3000));
    let params = GbmParams::default();

    let fit = train(
        &xt,
        &yb[..2000],
        None,
        &Objective::Binary,
        &params,
        None,
        None,
    )
    .expect("binary");
    let correct = binary_correct(&fit.ensemble, &xv, &yb[2000..]);
    assert!(correct >= 960, "binary accuracy {correct}/1000");

    let obj = Objective::Multiclass { n_classes: 3 };
    let fit = train(&xt, &ym[..2000], None, &obj, &params, None, None).expect("multiclass");
    // One tree per class per round, in class order.
    assert_eq!(fit.ensemble.trees.len(), 3 * params.n_estimators);
    let outputs: Vec<usize> = fit.ensemble.trees[..6].iter().map(|t| t.output).collect();
    assert_eq!(outputs, vec![0, 1, 2, 0, 1, 2]);
    let m = predict_margins(&fit.ensemble, &xv);
    let correct = m
        .iter()
        .zip(&ym[2000..])
        .filter(|(p, t)| argmax(p) as f64 == **t)
        .count();
    assert!(correct >= 980, "multiclass accuracy {correct}/1000");
}

/// Rows whose feature is missing behave like the high values in one data set and like the low
/// values in the other: a fixed default direction would get one of them wrong.
#[test]
fn missing_values_follow_the_learned_direction() {
    for nan_like_high in [true, false] {
        let mut x = uniform(2000, 1, 4);
        let mut y = Vec::new();
        for r in 0..2000 {
            let high = value(&x, 0, r) > 0.5;
            if r % 4 == 0 {
                x.columns[0].values[r] = f32::NAN;
                y.push(if nan_like_high { 5.0 } else { 0.0 });
            } else {
                y.push(if high { 5.0 } else { 0.0 });
            }
        }
        let params = GbmParams {
            n_estimators: 50,
            ..GbmParams::default()
        };
        let fit = train(&x, &y, None, &Objective::Regression, &params, None, None).expect("trains");
        let probe = FeatureMatrix {
            n_rows: 3,
            columns: vec![FeatureColumn::numeric(vec![f32::NAN, 0.1, 0.9])],
        };
        let p = predict_margins(&fit.ensemble, &probe);
        let want_nan = if nan_like_high { 5.0 } else { 0.0 };
        assert!((p[0][0] - want_nan).abs() < 0.1, "{nan_like_high}: {p:?}");
        assert!(p[1][0].abs() < 0.1 && (p[2][0] - 5.0).abs() < 0.1, "{p:?}");
        match &fit.ensemble.trees[0].nodes[0] {
            Node::Split { missing_left, .. } => assert_eq!(*missing_left, !nan_like_high),
            leaf => panic!("root is not a split: {leaf:?}"),
        }
    }
}

/// A target driven by which of 40 categories a row has: one categorical split can group the
/// categories by effect, one-hot columns need a split per category.
#[test]
fn categorical_splits_beat_one_hot() {
    let n_cat = 40u32;
    let n = 8000;
    let mut rng = SplitMix64::new(5);
    let effect: Vec<f64> = (0..n_cat).map(|_| rng.next_f64() * 10.0).collect();
    let cats: Vec<u32> = (0..n).map(|_| rng.below(n_cat as usize) as u32).collect();
    let y: Vec<f64> = cats
        .iter()
        .map(|&c| effect[c as usize] + rng.next_f64() - 0.5)
        .collect();
    let native = FeatureMatrix {
        n_rows: n,
        columns: vec![FeatureColumn::categorical(
            cats.iter().map(|&c| c as f32).collect(),
            n_cat,
        )],
    };
    let one_hot = FeatureMatrix {
        n_rows: n,
        columns: (0..n_cat)
            .map(|k| FeatureColumn::numeric(cats.iter().map(|&c| f32::from(c == k)).collect()))
            .collect(),
    };
    let params = GbmParams {
        num_leaves: 4,
        n_estimators: 20,
        ..GbmParams::default()
    };
    let split = 6000;
    let score = |x: &FeatureMatrix| {
        let fit = train(
            &rows_of(x, 0..split),
            &y[..split],
            None,
            &Objective::Regression,
            &params,
            None,
            None,
        )
        .expect("trains");
        rmse(
            &predict_margins(&fit.ensemble, &rows_of(x, split..n)),
            &y[split..],
        )
    };
    let (cat_err, hot_err) = (score(&native), score(&one_hot));
    assert!(
        cat_err < 0.6 * hot_err,
        "categorical {cat_err}, one-hot {hot_err}"
    );
    assert!(cat_err < 1.0, "categorical {cat_err}");
}

#[test]
fn unseen_and_missing_categories_go_right_unless_learned() {
    let n = 1000;
    let cats: Vec<f32> = (0..n).map(|r| (r % 10) as f32).collect();
    let y: Vec<f64> = (0..n).map(|r| f64::from(r % 10 < 3) * 4.0).collect();
    let x = FeatureMatrix {
        n_rows: n,
        columns: vec![FeatureColumn::categorical(cats, 10)],
    };
    let params = GbmParams {
        min_data_per_group: 10,
        ..GbmParams::default()
    };
    let fit = train(&x, &y, None, &Objective::Regression, &params, None, None).expect("trains");
    let probe = FeatureMatrix {
        n_rows: 4,
        columns: vec![FeatureColumn::categorical(
            vec![1.0, 7.0, 25.0, f32::NAN],
            10,
        )],
    };
    let p = predict_margins(&fit.ensemble, &probe);
    assert!((p[0][0] - 4.0).abs() < 0.1 && p[1][0].abs() < 0.1, "{p:?}");
    // Unseen and missing categories are not members of any set: they take the same path.
    assert_eq!(p[2][0].to_bits(), p[3][0].to_bits());
    let mut categorical_splits = 0;
    for t in &fit.ensemble.trees {
        for node in &t.nodes {
            if let Node::Split {
                rule: SplitRule::InSet(set),
                missing_left,
                ..
            } = node
            {
                categorical_splits += 1;
                assert!(!missing_left);
                assert!(set.windows(2).all(|w| w[0] < w[1]) && !set.contains(&25));
            }
        }
    }
    assert!(categorical_splits > 0);
}

fn bits(trees: &[Tree]) -> Vec<u64> {
    let mut out = Vec::new();
    for t in trees {
        out.push(t.output as u64);
        for node in &t.nodes {
            match node {
                Node::Leaf { value } => out.push(value.to_bits()),
                Node::Split {
                    feature,
                    rule,
                    missing_left,
                    left,
                    right,
                } => {
                    out.extend([*feature as u64, u64::from(*missing_left)]);
                    out.extend([u64::from(*left), u64::from(*right)]);
                    match rule {
                        SplitRule::LessOrEqual(t) => out.push(u64::from(t.to_bits())),
                        SplitRule::InSet(s) => out.extend(s.iter().map(|&c| u64::from(c))),
                    }
                }
            }
        }
    }
    out
}

#[test]
fn same_input_and_seed_give_bit_identical_trees() {
    let mut x = uniform(20_000, 6, 6);
    for r in (0..20_000).step_by(7) {
        x.columns[1].values[r] = f32::NAN;
    }
    x.columns[5] = FeatureColumn::categorical((0..20_000).map(|r| (r % 13) as f32).collect(), 13);
    let y: Vec<f64> = (0..20_000)
        .map(|r| (r % 3) as f64 + value(&x, 0, r) * 2.0)
        .map(|v| v.floor().min(2.0))
        .collect();
    let params = GbmParams {
        n_estimators: 15,
        bagging_fraction: 0.7,
        bagging_freq: 1,
        feature_fraction: 0.6,
        seed: 11,
        ..GbmParams::default()
    };
    let obj = Objective::Multiclass { n_classes: 3 };
    let run = |p: &GbmParams| train(&x, &y, None, &obj, p, None, None).expect("trains");
    let a = run(&params);
    let b = run(&params);
    let single = run(&GbmParams {
        n_threads: 1,
        ..params.clone()
    });
    assert_eq!(bits(&a.ensemble.trees), bits(&b.ensemble.trees));
    assert_eq!(bits(&a.ensemble.trees), bits(&single.ensemble.trees));
    assert_eq!(a, b);
    let other_seed = run(&GbmParams {
        seed: 12,
        ..params.clone()
    });
    assert_ne!(bits(&a.ensemble.trees), bits(&other_seed.ensemble.trees));
}

#[test]
fn early_stopping_keeps_the_best_round() {
    // A target that is pure noise: validation loss stops improving within a few rounds.
    let x = uniform(2000, 3, 7);
    let mut rng = SplitMix64::new(8);
    let y: Vec<f64> = (0..2000).map(|_| rng.next_f64()).collect();
    let params = GbmParams {
        n_estimators: 500,
        early_stopping_rounds: 10,
        ..GbmParams::default()
    };
    let xv = rows_of(&x, 1500..2000);
    let fit = train(
        &rows_of(&x, 0..1500),
        &y[..1500],
        None,
        &Objective::Regression,
        &params,
        Some((&xv, &y[1500..])),
        None,
    )
    .expect("trains");
    assert!(fit.best_iteration < 100, "best {}", fit.best_iteration);
    assert_eq!(fit.valid_scores.len(), fit.best_iteration + 10);
    assert_eq!(fit.ensemble.trees.len(), fit.best_iteration);
    let best = fit.valid_scores[..fit.best_iteration]
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    assert_eq!(fit.valid_scores[fit.best_iteration - 1], best);
    assert!(
        fit.valid_scores[fit.best_iteration..]
            .iter()
            .all(|&s| s >= best)
    );
}

#[test]
fn a_passed_deadline_keeps_only_the_base_score() {
    let x = uniform(500, 2, 9);
    let y: Vec<f64> = (0..500).map(|r| value(&x, 0, r)).collect();
    let fit = train(
        &x,
        &y,
        None,
        &Objective::Regression,
        &GbmParams::default(),
        None,
        Some(Instant::now()),
    )
    .expect("trains");
    assert!(fit.ensemble.trees.is_empty());
    let mean = y.iter().sum::<f64>() / 500.0;
    assert!((fit.ensemble.base[0] - mean).abs() < 1e-12);
}

#[test]
fn weights_pull_the_fit_towards_heavy_rows() {
    let x = FeatureMatrix {
        n_rows: 100,
        columns: vec![FeatureColumn::numeric(vec![1.0; 100])],
    };
    let y: Vec<f64> = (0..100).map(|r| f64::from(r < 50)).collect();
    let w: Vec<f64> = (0..100).map(|r| if r < 50 { 3.0 } else { 1.0 }).collect();
    let fit = train(
        &x,
        &y,
        Some(&w),
        &Objective::Regression,
        &GbmParams::default(),
        None,
        None,
    )
    .expect("trains");
    assert!((fit.ensemble.base[0] - 0.75).abs() < 1e-12);
}

#[test]
fn bad_input_is_a_typed_error() {
    let x = uniform(10, 2, 10);
    let y = vec![0.0; 10];
    let p = GbmParams::default();
    let empty = FeatureMatrix {
        n_rows: 0,
        columns: vec![],
    };
    assert_eq!(
        train(&empty, &[], None, &Objective::Regression, &p, None, None),
        Err(GbmError::Empty)
    );
    let mut bad_y = y.clone();
    bad_y[3] = 2.0;
    assert_eq!(
        train(&x, &bad_y, None, &Objective::Binary, &p, None, None),
        Err(GbmError::InvalidLabel { row: 3, value: 2.0 })
    );
    bad_y[3] = f64::NAN;
    assert_eq!(
        train(&x, &bad_y, None, &Objective::Regression, &p, None, None),
        Err(GbmError::NonFiniteTarget { row: 3 })
    );
    let w = vec![-1.0; 10];
    assert_eq!(
        train(&x, &y, Some(&w), &Objective::Regression, &p, None, None),
        Err(GbmError::InvalidWeight { row: 0 })
    );
    let bad = GbmParams {
        num_leaves: 1,
        ..p.clone()
    };
    assert!(matches!(
        train(&x, &y, None, &Objective::Regression, &bad, None, None),
        Err(GbmError::InvalidParams(_))
    ));
    let narrow = uniform(5, 1, 11);
    assert_eq!(
        train(
            &x,
            &y,
            None,
            &Objective::Regression,
            &p,
            Some((&narrow, &y[..5])),
            None
        ),
        Err(GbmError::ValidColumns {
            got: 1,
            expected: 2
        })
    );
}

#[test]
fn early_stopping_min_delta_ignores_crumbs_of_improvement() {
    // Separable classes: the validation log loss creeps towards 0 for a very long time.
    let x = uniform(1200, 2, 11);
    let y: Vec<f64> = (0..1200)
        .map(|r| f64::from(u8::from(x.columns[0].values[r] > 0.5)))
        .collect();
    let xt = rows_of(&x, 0..900);
    let xv = rows_of(&x, 900..1200);
    let fit = |min_delta: f64| {
        let params = GbmParams {
            n_estimators: 5000,
            learning_rate: 0.02,
            early_stopping_rounds: 20,
            early_stopping_min_delta: min_delta,
            ..GbmParams::default()
        };
        train(
            &xt,
            &y[..900],
            None,
            &Objective::Binary,
            &params,
            Some((&xv, &y[900..])),
            None,
        )
        .expect("trains")
    };
    let crumbs = fit(0.0);
    let coarse = fit(1e-3);
    assert!(
        coarse.best_iteration * 2 < crumbs.best_iteration,
        "min_delta kept {} rounds, none kept {}",
        coarse.best_iteration,
        crumbs.best_iteration
    );
    // No round after the kept one beat it by more than the threshold.
    let first = coarse.valid_scores[0];
    let kept = coarse.valid_scores[coarse.best_iteration - 1];
    assert!(
        coarse.valid_scores[coarse.best_iteration..]
            .iter()
            .all(|&s| s >= kept - 1e-3 * first)
    );
    assert_eq!(coarse.valid_scores.len(), coarse.best_iteration + 20);
}

/// The rules (feature, rule, missing side) met on each path from the root to a leaf.
fn rule_paths(nodes: &[Node]) -> Vec<Vec<(usize, SplitRule, bool)>> {
    fn walk(
        nodes: &[Node],
        at: usize,
        path: &mut Vec<(usize, SplitRule, bool)>,
        out: &mut Vec<Vec<(usize, SplitRule, bool)>>,
    ) {
        match &nodes[at] {
            Node::Leaf { .. } => out.push(path.clone()),
            Node::Split {
                feature,
                rule,
                missing_left,
                left,
                right,
            } => {
                path.push((*feature, rule.clone(), *missing_left));
                walk(nodes, *left as usize, path, out);
                walk(nodes, *right as usize, path, out);
                path.pop();
            }
        }
    }
    let mut out = Vec::new();
    walk(nodes, 0, &mut Vec::new(), &mut out);
    out
}

#[test]
fn symmetric_trees_split_each_level_by_one_rule_and_learn() {
    // A smooth target, a missing-value effect and a category effect.
    let n = 3000;
    let mut x = uniform(n, 3, 11);
    let mut rng = SplitMix64::new(12);
    let cats: Vec<f32> = (0..n)
        .map(|_| (rng.next_f64() * 6.0).floor() as f32)
        .collect();
    x.columns.push(FeatureColumn::categorical(cats, 6));
    let mut y = Vec::new();
    for r in 0..n {
        let missing = r % 5 == 0;
        if missing {
            x.columns[1].values[r] = f32::NAN;
        }
        let cat = x.columns[3].values[r] as usize;
        y.push(
            10.0 * (3.0 * value(&x, 0, r)).sin()
                + if missing { 4.0 } else { 2.0 * value(&x, 1, r) }
                + if cat == 4 { 3.0 } else { 0.0 }
                + (rng.next_f64() - 0.5),
        );
    }
    let (xt, yt) = (rows_of(&x, 0..2400), &y[..2400]);
    let (xv, yv) = (rows_of(&x, 2400..n), &y[2400..]);
    let params = GbmParams {
        policy: GrowPolicy::Symmetric,
        max_depth: 4,
        lambda_l2: 3.0,
        min_data_in_leaf: 1,
        n_estimators: 400,
        ..GbmParams::default()
    };
    let fit = train(&xt, yt, None, &Objective::Regression, &params, None, None).expect("trains");
    let mut many_leaves = 0;
    for tree in &fit.ensemble.trees {
        // A tree is made of at most 4 rules, one per level of growth: no path meets a rule
        // twice, and every path meets them in the same order (a node a rule would leave with an
        // empty side skips that rule, so paths may be shorter).
        let paths = rule_paths(&tree.nodes);
        let mut rules: Vec<(usize, SplitRule, bool)> = Vec::new();
        let mut before: Vec<(usize, usize)> = Vec::new();
        for path in &paths {
            let at: Vec<usize> = path
                .iter()
                .map(|r| match rules.iter().position(|k| k == r) {
                    Some(i) => i,
                    None => {
                        rules.push(r.clone());
                        rules.len() - 1
                    }
                })
                .collect();
            for (i, a) in at.iter().enumerate() {
                for b in &at[i + 1..] {
                    assert_ne!(a, b, "a path meets a rule twice: {path:?}");
                    before.push((*a, *b));
                }
            }
        }
        assert!(rules.len() <= 4, "{} rules: {rules:?}", rules.len());
        for (a, b) in &before {
            assert!(
                !before.contains(&(*b, *a)),
                "rules in two orders: {rules:?}"
            );
        }
        // Nodes are left whole only where the rule would empty a side: every node has rows.
        assert_eq!(tree.covers.len(), tree.nodes.len());
        assert!(tree.covers.iter().all(|c| *c >= 1.0), "{:?}", tree.covers);
        // One node split per rule would make at most 5 leaves.
        if paths.len() > 5 {
            many_leaves += 1;
        }
    }
    assert!(
        many_leaves * 10 >= fit.ensemble.trees.len(),
        "only {many_leaves} trees split several nodes by one rule"
    );
    // The rule kinds the level search makes: a category set of one, and missing sent both ways.
    let splits: Vec<&Node> = fit
        .ensemble
        .trees
        .iter()
        .flat_map(|t| &t.nodes)
        .filter(|n| matches!(n, Node::Split { .. }))
        .collect();
    assert!(splits.iter().any(|n| matches!(n,
        Node::Split { feature: 3, rule: SplitRule::InSet(set), .. } if *set == [4])));
    assert!(splits.iter().any(|n| matches!(
        n,
        Node::Split {
            feature: 1,
            missing_left: false,
            ..
        }
    )));
    let err = rmse(&predict_margins(&fit.ensemble, &xv), yv);
    // Noise alone is ~0.29; the target's spread is ~4.
    assert!(err < 0.6, "rmse {err}, std {}", std_dev(yv));
    let probe = FeatureMatrix {
        n_rows: 2,
        columns: vec![
            FeatureColumn::numeric(vec![0.5, 0.5]),
            FeatureColumn::numeric(vec![f32::NAN, 0.25]),
            FeatureColumn::numeric(vec![0.5, 0.5]),
            FeatureColumn::categorical(vec![4.0, 1.0], 6),
        ],
    };
    let p = predict_margins(&fit.ensemble, &probe);
    let truth = 10.0 * 1.5f64.sin();
    assert!((p[0][0] - (truth + 7.0)).abs() < 0.6, "{p:?}");
    assert!((p[1][0] - (truth + 0.5)).abs() < 0.6, "{p:?}");

    let bad = GbmParams {
        max_depth: -1,
        ..params
    };
    assert!(matches!(
        train(&xt, yt, None, &Objective::Regression, &bad, None, None),
        Err(GbmError::InvalidParams(_))
    ));
}

#[test]
fn symmetric_binary_trees_with_bagging_separate_the_classes() {
    let x = uniform(3000, 3, 21);
    let y: Vec<f64> = (0..3000)
        .map(|r| f64::from(value(&x, 0, r) + value(&x, 1, r) > 1.0))
        .collect();
    let (xt, xv) = (rows_of(&x, 0..2000), rows_of(&x, 2000..3000));
    let params = GbmParams {
        policy: GrowPolicy::Symmetric,
        max_depth: 6,
        lambda_l2: 3.0,
        min_data_in_leaf: 1,
        bagging_fraction: 0.8,
        bagging_freq: 1,
        n_estimators: 200,
        ..GbmParams::default()
    };
    let fit = train(
        &xt,
        &y[..2000],
        None,
        &Objective::Binary,
        &params,
        None,
        None,
    )
    .expect("binary");
    let correct = binary_correct(&fit.ensemble, &xv, &y[2000..]);
    assert!(correct >= 950, "binary accuracy {correct}/1000");
    // The noise feature carries little of the gain.
    assert!(fit.feature_gain[2] < 0.05 * fit.feature_gain[0]);
    // Bagged rows count as covers: every node has some.
    assert!(
        fit.ensemble
            .trees
            .iter()
            .all(|t| t.covers.iter().all(|c| *c >= 1.0))
    );
}

/// A feature whose training values are all positive, missing in some rows: a split that
/// separates the missing rows sends a zero (never seen in training) with the values, for the
/// leaf-wise and the symmetric trees alike.
#[test]
fn a_zero_never_seen_in_training_goes_with_the_values_not_the_missing() {
    let n = 2000;
    let mut rng = SplitMix64::new(31);
    let mut values = Vec::new();
    let mut y = Vec::new();
    for r in 0..n {
        if r % 4 == 0 {
            values.push(f32::NAN);
            y.push(5.0);
        } else {
            values.push(1.0 + rng.next_f64() as f32);
            y.push(0.0);
        }
    }
    let x = FeatureMatrix {
        n_rows: n,
        columns: vec![FeatureColumn::numeric(values)],
    };
    let probe = FeatureMatrix {
        n_rows: 3,
        columns: vec![FeatureColumn::numeric(vec![f32::NAN, 0.0, 1.5])],
    };
    for policy in [GrowPolicy::LeafWise, GrowPolicy::Symmetric] {
        let params = GbmParams {
            policy,
            max_depth: if policy == GrowPolicy::Symmetric {
                2
            } else {
                -1
            },
            lambda_l2: 1.0,
            n_estimators: 50,
            ..GbmParams::default()
        };
        let fit = train(&x, &y, None, &Objective::Regression, &params, None, None).expect("trains");
        let p = predict_margins(&fit.ensemble, &probe);
        assert!((p[0][0] - 5.0).abs() < 0.1, "{policy:?}: {p:?}");
        assert!(
            p[1][0].abs() < 0.1,
            "{policy:?}: zero read as missing: {p:?}"
        );
        assert!(p[2][0].abs() < 0.1, "{policy:?}: {p:?}");
    }
}
