//! What kind of prediction the target asks for (binary, multiclass, regression), its class
//! labels, and the target encoded per row.

use super::pipeline::Task;
use super::target::{stem, tokenize};
use crate::ingest::table::MISSING_CODE;
use crate::ingest::{Column, ColumnData, ColumnType};
use thiserror::Error;

/// More distinct labels than this in a string target is not a classification we can learn.
pub const MAX_CLASSES: usize = 50;
/// An integer target with at most this many distinct values is a class when the intent says so.
const MAX_INTEGER_CLASSES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TaskError {
    #[error("target `{column}` is a datetime column; predicting dates is not supported")]
    DatetimeTarget { column: String },
    #[error(
        "target `{column}` has {n} distinct text values; at most {MAX_CLASSES} classes are supported"
    )]
    TooManyClasses { column: String, n: usize },
    #[error("target `{column}` has a single value ({label}); there is nothing to predict")]
    SingleClass { column: String, label: String },
    #[error("target `{column}` has no values")]
    Empty { column: String },
    /// Known from the column's profile, which counts distinct values without naming them.
    #[error("target `{column}` has a single value; there is nothing to predict")]
    AtMostOneValue { column: String },
}

/// The label text of a target cell, as served (`true`, `3`, `2.5`, `yes`); `None` when missing.
pub fn label_of(column: &Column, row: usize) -> Option<String> {
    match &column.data {
        ColumnData::Categorical { codes, levels } => {
            let code = codes[row];
            (code != MISSING_CODE).then(|| levels[code as usize].clone())
        }
        ColumnData::Numeric(v) => {
            let x = v[row];
            if x.is_nan() {
                None
            } else if column.kind == ColumnType::Boolean {
                Some(if x != 0.0 { "true" } else { "false" }.to_string())
            } else {
                Some(format_number(x))
            }
        }
    }
}

pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Labels in sorted order: numerically when all labels are numbers, else as text.
pub fn sort_labels(labels: &mut [String]) {
    let numeric: Option<Vec<f64>> = labels.iter().map(|l| l.parse::<f64>().ok()).collect();
    if numeric.is_some() {
        labels.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            x.total_cmp(&y).then_with(|| a.cmp(b))
        });
    } else {
        labels.sort();
    }
}

/// Decides the task from the target's values (over `rows`) and the intent's wording.
pub fn infer_task(column: &Column, rows: &[usize], intent: &str) -> Result<Task, TaskError> {
    let name = column.name.clone();
    if column.kind == ColumnType::Datetime {
        return Err(TaskError::DatetimeTarget { column: name });
    }
    let mut distinct = std::collections::BTreeSet::new();
    let mut all_whole = true;
    for &r in rows {
        if let Some(l) = label_of(column, r) {
            if let ColumnData::Numeric(v) = &column.data {
                all_whole &= v[r].fract() == 0.0;
            }
            distinct.insert(l);
            if distinct.len() > 10_000 {
                break;
            }
        }
    }
    let mut labels: Vec<String> = distinct.into_iter().collect();
    sort_labels(&mut labels);
    match labels.len() {
        0 => return Err(TaskError::Empty { column: name }),
        1 => {
            return Err(TaskError::SingleClass {
                column: name,
                label: labels.remove(0),
            });
        }
        2 => return Ok(binary_task(labels)),
        _ => {}
    }
    let textual =
        matches!(column.data, ColumnData::Categorical { .. }) || column.kind == ColumnType::Boolean;
    if textual {
        if labels.len() > MAX_CLASSES {
            return Err(TaskError::TooManyClasses {
                column: name,
                n: labels.len(),
            });
        }
        return Ok(Task::Multiclass { labels });
    }
    if all_whole && labels.len() <= MAX_INTEGER_CLASSES && intent_asks_for_class(intent) {
        return Ok(Task::Multiclass { labels });
    }
    Ok(Task::Regression)
}

fn binary_task(labels: Vec<String>) -> Task {
    const POSITIVE: &[&str] = &["true", "1", "yes", "y", "t"];
    let is_pos = |l: &String| POSITIVE.contains(&l.trim().to_lowercase().as_str());
    let [a, b]: [String; 2] = match labels.try_into() {
        Ok(pair) => pair,
        Err(_) => unreachable!("binary_task is called with exactly two labels"),
    };
    if is_pos(&a) && !is_pos(&b) {
        Task::Binary { labels: [b, a] }
    } else {
        Task::Binary { labels: [a, b] }
    }
}

fn intent_asks_for_class(intent: &str) -> bool {
    const WORDS: &[&str] = &[
        "class",
        "classify",
        "category",
        "categorize",
        "type",
        "grade",
        "which",
        "kind",
        "level",
        "group",
        "label",
        "tier",
        "rating",
        "stage",
        "bucket",
        "segment",
    ];
    tokenize(intent)
        .iter()
        .any(|w| WORDS.iter().any(|k| stem(w) == stem(k)))
}

/// The target per row: the class index for classification, the value for regression; `None`
/// when missing (or a label outside the task's classes).
pub fn encode_target(column: &Column, task: &Task, rows: &[usize]) -> Vec<Option<f64>> {
    match task {
        Task::Regression => rows
            .iter()
            .map(|&r| match &column.data {
                ColumnData::Numeric(v) => Some(v[r]).filter(|x| x.is_finite()),
                ColumnData::Categorical { .. } => None,
            })
            .collect(),
        Task::Binary { labels } => encode_labels(column, labels, rows),
        Task::Multiclass { labels } => encode_labels(column, labels, rows),
    }
}

fn encode_labels(column: &Column, labels: &[String], rows: &[usize]) -> Vec<Option<f64>> {
    let index: std::collections::HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    rows.iter()
        .map(|&r| label_of(column, r).and_then(|l| index.get(l.as_str()).map(|&i| i as f64)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automl::features::tests::text_column as text;

    fn numbers(name: &str, kind: ColumnType, values: &[f64]) -> Column {
        Column {
            name: name.into(),
            kind,
            data: ColumnData::Numeric(values.to_vec()),
        }
    }

    fn all(c: &Column) -> Vec<usize> {
        (0..c.data.len()).collect()
    }

    #[test]
    fn two_text_labels_are_binary_with_the_positive_second() {
        let c = text("churn", &["No", "Yes", "No", ""]);
        assert_eq!(
            infer_task(&c, &all(&c), "predict churn"),
            Ok(Task::Binary {
                labels: ["No".into(), "Yes".into()]
            })
        );
        let c = text("ok", &["yes", "no"]);
        assert_eq!(
            infer_task(&c, &all(&c), ""),
            Ok(Task::Binary {
                labels: ["no".into(), "yes".into()]
            })
        );
        let c = text("s", &["survived", "died"]);
        assert_eq!(
            infer_task(&c, &all(&c), ""),
            Ok(Task::Binary {
                labels: ["died".into(), "survived".into()]
            })
        );
        // `true` is positive even where sorting would put it first.
        let c = text("s", &["True", "zzz"]);
        assert_eq!(
            infer_task(&c, &all(&c), ""),
            Ok(Task::Binary {
                labels: ["zzz".into(), "True".into()]
            })
        );
        let c = numbers("b", ColumnType::Boolean, &[1.0, 0.0, 1.0]);
        assert_eq!(
            infer_task(&c, &all(&c), ""),
            Ok(Task::Binary {
                labels: ["false".into(), "true".into()]
            })
        );
        let c = numbers("n", ColumnType::Integer, &[0.0, 1.0, 1.0, f64::NAN]);
        assert_eq!(
            infer_task(&c, &all(&c), ""),
            Ok(Task::Binary {
                labels: ["0".into(), "1".into()]
            })
        );
    }

    #[test]
    fn text_targets_with_several_labels_are_multiclass() {
        let c = text("species", &["Adelie", "Gentoo", "Chinstrap", "Adelie"]);
        let task = infer_task(&c, &all(&c), "predict species");
        assert_eq!(
            task,
            Ok(Task::Multiclass {
                labels: vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()]
            })
        );
        assert_eq!(
            encode_target(&c, &task.unwrap_or(Task::Regression), &[0, 1, 2]),
            vec![Some(0.0), Some(2.0), Some(1.0)]
        );
        let many: Vec<String> = (0..60).map(|i| format!("v{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let c = text("code", &refs);
        assert!(matches!(
            infer_task(&c, &all(&c), ""),
            Err(TaskError::TooManyClasses { n: 60, .. })
        ));
    }

    #[test]
    fn integer_targets_are_classes_only_when_the_intent_says_so() {
        let c = numbers(
            "quality",
            ColumnType::Integer,
            &[3.0, 5.0, 6.0, 7.0, 5.0, 10.0],
        );
        assert_eq!(
            infer_task(&c, &all(&c), "predict quality"),
            Ok(Task::Regression)
        );
        let task = infer_task(&c, &all(&c), "predict the quality grade");
        assert_eq!(
            task,
            Ok(Task::Multiclass {
                labels: vec!["3".into(), "5".into(), "6".into(), "7".into(), "10".into()]
            })
        );
        assert_eq!(infer_task(&c, &all(&c), "which quality class"), task);
        let f = numbers("y", ColumnType::Float, &[0.5, 1.5, 2.5]);
        assert_eq!(
            infer_task(&f, &all(&f), "which class"),
            Ok(Task::Regression)
        );
    }

    #[test]
    fn degenerate_targets_are_refused() {
        let c = text("t", &["a", "a", ""]);
        assert!(matches!(
            infer_task(&c, &all(&c), ""),
            Err(TaskError::SingleClass { .. })
        ));
        let c = text("t", &["", ""]);
        assert!(matches!(
            infer_task(&c, &all(&c), ""),
            Err(TaskError::Empty { .. })
        ));
        let c = numbers("d", ColumnType::Datetime, &[1.0, 2.0]);
        assert!(matches!(
            infer_task(&c, &all(&c), ""),
            Err(TaskError::DatetimeTarget { .. })
        ));
    }
}
