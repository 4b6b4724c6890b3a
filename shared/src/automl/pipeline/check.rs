//! The structural check of a pipeline, which both of its readings rely on.

use super::{Feature, Model, Node, Pipeline, Task, Tree};
use crate::ingest::ColumnType;

/// What is wrong with a pipeline that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pipeline: {0}")]
pub struct InvalidPipeline(pub String);

impl Pipeline {
    /// Structural checks before either reading of the pipeline (native prediction, ONNX
    /// export): every index in range, kinds consistent, trees acyclic. A pipeline that passes
    /// cannot make either reading panic.
    pub fn check(&self) -> Result<(), InvalidPipeline> {
        let p = self;
        let bad = |msg: String| Err(InvalidPipeline(msg));
        let n_out = p.task.n_outputs();
        match &p.task {
            Task::Multiclass { labels } if labels.len() < 2 => {
                return bad("multiclass needs at least 2 labels".into());
            }
            _ => {}
        }
        if p.models.is_empty() || p.models.len() != p.weights.len() {
            return bad(format!(
                "{} models with {} blend weights",
                p.models.len(),
                p.weights.len()
            ));
        }
        let weight_sum: f64 = p.weights.iter().sum();
        if !weight_sum.is_finite() || weight_sum == 0.0 || p.weights.iter().any(|w| !w.is_finite())
        {
            return bad("blend weights must be finite with a non-zero sum".into());
        }
        // The word features of an input: consecutive, each word once (the graph counts them
        // as one block).
        let mut words_done: Vec<usize> = Vec::new();
        let mut words: std::collections::HashSet<(usize, &str)> = Default::default();
        let mut previous_words_of: Option<usize> = None;
        for (j, feature) in p.features.iter().enumerate() {
            let (input, wants_string) = match feature {
                Feature::Numeric { input } | Feature::DatetimePart { input, .. } => (*input, false),
                Feature::CategoryIndex { input, .. } | Feature::WordCount { input, .. } => {
                    (*input, true)
                }
            };
            let words_of = match feature {
                Feature::WordCount { input, word } => {
                    if !super::text::is_word(word) || !words.insert((*input, word.as_str())) {
                        return bad(format!(
                            "feature {j}: {word:?} is not a new vocabulary word"
                        ));
                    }
                    Some(*input)
                }
                _ => None,
            };
            if previous_words_of != words_of {
                if let Some(done) = previous_words_of {
                    words_done.push(done);
                }
                if words_of.is_some_and(|i| words_done.contains(&i)) {
                    return bad(format!(
                        "feature {j}: the words of an input are not consecutive"
                    ));
                }
                previous_words_of = words_of;
            }
            let Some(spec) = p.inputs.get(input) else {
                return bad(format!("feature {j} reads input {input}, out of range"));
            };
            if (spec.kind == ColumnType::String) != wants_string {
                return bad(format!(
                    "feature {j} does not fit the type of input `{}`",
                    spec.name
                ));
            }
        }
        let n_features = p.features.len();
        for model in &p.models {
            if let Model::LogTarget(inner) = model
                && (!matches!(p.task, Task::Regression) || matches!(**inner, Model::LogTarget(_)))
            {
                return bad(
                    "a log-target model needs a regression task and one model inside".into(),
                );
            }
            match model.inner() {
                Model::LogTarget(_) => unreachable!("inner() looks through log-target models"),
                Model::Trees(ensemble) => {
                    if ensemble.base.len() != n_out {
                        return bad(format!(
                            "tree base has {} values, the task {n_out}",
                            ensemble.base.len()
                        ));
                    }
                    for (t, tree) in ensemble.trees.iter().enumerate() {
                        check_tree(tree, n_features, n_out)
                            .map_err(|m| InvalidPipeline(format!("tree {t}: {m}")))?;
                    }
                }
                Model::Linear(linear) => {
                    if linear.intercept.len() != n_out {
                        return bad(format!(
                            "linear intercept has {} values, the task {n_out}",
                            linear.intercept.len()
                        ));
                    }
                    for term in &linear.numeric {
                        if term.feature >= n_features
                            || term.weights.len() != n_out
                            || !term.fill.is_finite()
                        {
                            return bad(format!(
                                "numeric term on feature {} is malformed",
                                term.feature
                            ));
                        }
                    }
                    for term in &linear.categorical {
                        if !matches!(
                            p.features.get(term.feature),
                            Some(Feature::CategoryIndex { .. })
                        ) {
                            return bad(format!(
                                "categorical term on feature {} which is not a category index",
                                term.feature
                            ));
                        }
                        if term.weights.iter().any(|w| w.len() != n_out) {
                            return bad(format!(
                                "categorical term on feature {} has rows of the wrong width",
                                term.feature
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_tree(tree: &Tree, n_features: usize, n_out: usize) -> Result<(), String> {
    if tree.output >= n_out {
        return Err(format!("output {} out of range", tree.output));
    }
    if tree.nodes.is_empty() {
        return Err("no nodes".into());
    }
    // Depth-first walk from the root; a node met twice on one path is a cycle. Shared subtrees
    // (a DAG) are fine for both readings.
    let n = tree.nodes.len();
    let mut state = vec![0u8; n]; // 0 new, 1 on the current path, 2 done
    let mut stack = vec![(0usize, false)];
    while let Some((at, leaving)) = stack.pop() {
        if leaving {
            state[at] = 2;
            continue;
        }
        match state[at] {
            1 => return Err(format!("cycle through node {at}")),
            2 => continue,
            _ => {}
        }
        state[at] = 1;
        stack.push((at, true));
        if let Node::Split {
            feature,
            left,
            right,
            ..
        } = &tree.nodes[at]
        {
            if *feature >= n_features {
                return Err(format!(
                    "node {at} splits on feature {feature}, out of range"
                ));
            }
            for child in [*left as usize, *right as usize] {
                if child >= n {
                    return Err(format!("node {at} points to node {child}, out of range"));
                }
                if state[child] == 1 {
                    return Err(format!("cycle through node {child}"));
                }
                stack.push((child, false));
            }
        }
    }
    Ok(())
}
