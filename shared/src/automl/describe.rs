//! The plain-language summary of a built model (SPEC: `describe` → `description`): what it
//! predicts, how, from what, what matters most and how well it did on rows it never saw.

use super::features::DroppedColumn;
use super::output::FeatureImportance;
use super::pipeline::{Model, Pipeline, Task};
use std::collections::BTreeMap;

/// What the description is written from.
pub struct Summary<'a> {
    pub target: &'a str,
    pub task: &'a Task,
    pub algorithm: &'a str,
    pub pipeline: &'a Pipeline,
    pub importance: &'a [FeatureImportance],
    pub holdout_metrics: &'a BTreeMap<String, f64>,
    /// The rows the model scored on the holdout learned from.
    pub train_rows: usize,
    pub holdout_rows: usize,
    /// Whether the delivered model was then refit on every labelled row.
    pub refit_on_every_row: bool,
    pub dropped: &'a [DroppedColumn],
}

/// `a yes/no prediction (positive: "Yes")`, `a choice among 3 classes (…)`, `a number`.
pub fn task_phrase(task: &Task) -> String {
    match task {
        Task::Regression => "regression (predicts a number)".to_string(),
        Task::Binary { labels } => {
            format!(
                "binary classification ({} or {}; probability reported for {:?})",
                labels[0], labels[1], labels[1]
            )
        }
        Task::Multiclass { labels } => {
            let shown: Vec<&str> = labels.iter().take(8).map(String::as_str).collect();
            let more = if labels.len() > 8 { ", …" } else { "" };
            format!(
                "multiclass classification ({} classes: {}{more})",
                labels.len(),
                shown.join(", ")
            )
        }
    }
}

fn model_phrase(model: &Model) -> String {
    match model {
        Model::Trees(e) => format!("{} gradient-boosted decision trees", e.trees.len()),
        Model::Linear(m) => format!(
            "a linear model with {} terms",
            m.numeric.len() + m.categorical.len()
        ),
        Model::LogTarget(inner) => format!("{} fit to the log of the target", model_phrase(inner)),
    }
}

pub fn describe(s: &Summary) -> String {
    let mut out = String::new();
    let what = match s.task {
        Task::Regression => format!("Predicts the number `{}`", s.target),
        Task::Binary { labels } => format!(
            "Predicts whether `{}` is {:?} or {:?}, with the probability of {:?}",
            s.target, labels[1], labels[0], labels[1]
        ),
        Task::Multiclass { labels } => {
            format!(
                "Predicts which of {} classes `{}` falls in, with a probability for each",
                labels.len(),
                s.target
            )
        }
    };
    out.push_str(&what);
    let inputs = s.pipeline.inputs.len();
    out.push_str(&format!(
        " from {inputs} input column{}.",
        if inputs == 1 { "" } else { "s" }
    ));
    let models: Vec<String> = s.pipeline.models.iter().map(model_phrase).collect();
    if models.len() == 1 {
        out.push_str(&format!(" The model is {} ({}).", models[0], s.algorithm));
    } else {
        let parts: Vec<String> = s
            .pipeline
            .weights
            .iter()
            .zip(&models)
            .map(|(w, m)| format!("{m} (weight {:.0}%)", w * 100.0))
            .collect();
        out.push_str(&format!(" The model averages {}.", parts.join(" and ")));
    }
    let top: Vec<String> = s
        .importance
        .iter()
        .take(3)
        .filter(|f| f.importance > 0.0)
        .map(|f| format!("{} ({:.0}%)", f.feature, f.importance * 100.0))
        .collect();
    if !top.is_empty() {
        out.push_str(&format!(
            " The most influential inputs are {}.",
            top.join(", ")
        ));
    }
    let headline: &[&str] = match s.task {
        Task::Regression => &["rmse", "mae", "r2"],
        Task::Binary { .. } => &["accuracy", "f1_score", "roc_auc"],
        Task::Multiclass { .. } => &["accuracy", "f1_score"],
    };
    let scores: Vec<String> = headline
        .iter()
        .filter_map(|m| {
            s.holdout_metrics
                .get(*m)
                .filter(|v| v.is_finite())
                .map(|v| format!("{m} {}", round_sig(*v)))
        })
        .collect();
    if !scores.is_empty() {
        out.push_str(&format!(
            " Trained on {} rows; on {} rows held out from training it scored {}.",
            s.train_rows,
            s.holdout_rows,
            scores.join(", ")
        ));
        out.push_str(if s.refit_on_every_row {
            " The delivered model was then refit on every labelled row."
        } else {
            " Refitting it on every row would not have ended within the time budget, so it is delivered as scored."
        });
    }
    if !s.dropped.is_empty() {
        let names: Vec<String> = s
            .dropped
            .iter()
            .take(5)
            .map(|d| format!("`{}`", d.name))
            .collect();
        let more = if s.dropped.len() > 5 {
            format!(" and {} more", s.dropped.len() - 5)
        } else {
            String::new()
        };
        out.push_str(&format!(
            " Ignored columns: {}{more} (identifiers, constants or free text).",
            names.join(", ")
        ));
    }
    out
}

/// Four significant digits: `0.8123`, `26440`, `54.85`.
fn round_sig(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.digits$}")
}
