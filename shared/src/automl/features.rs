//! From table columns to model features: which columns are used (id-like, constant and
//! free-text columns are dropped, with the reason), how each becomes numbers (numeric as is,
//! booleans 0/1, strings as category indices over the training levels, datetimes as calendar
//! parts plus the raw epoch value), and the column-major `f32` feature matrix models train on.

use super::pipeline::text::{tokens, word_blocks, word_of};
use super::pipeline::{self, DatetimePart, Feature, InputSpec};
use super::target::tokenize;
use super::task::format_number;
use crate::ingest::cell::{CellValue, read_cell};
use crate::ingest::table::MISSING_CODE;
use crate::ingest::{Column, ColumnData, ColumnType, Table};
use std::collections::HashMap;
use thiserror::Error;

/// Category levels kept per string column (the most frequent); rarer values are treated as
/// unseen (NaN), so free text cannot blow up the model.
pub const MAX_LEVELS: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    IdLike,
    RowNumber,
    Constant,
    AllMissing,
    /// Nearly every row has its own text: names, comments, keys.
    FreeText,
}

impl DropReason {
    pub fn explain(&self) -> &'static str {
        match self {
            DropReason::IdLike => "an identifier (unique per row)",
            DropReason::RowNumber => "a row number (increasing, unique per row)",
            DropReason::Constant => "constant",
            DropReason::AllMissing => "always missing",
            DropReason::FreeText => "free text (almost every value distinct)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedColumn {
    pub name: String,
    pub reason: DropReason,
}

/// What the pipeline reads and computes: `inputs` and `features` go into the `Pipeline` as is.
#[derive(Debug, Clone, PartialEq)]
pub struct FeaturePlan {
    pub inputs: Vec<InputSpec>,
    pub features: Vec<Feature>,
    pub dropped: Vec<DroppedColumn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FeatureError {
    #[error("input column `{0}` is missing from the data")]
    MissingColumn(String),
}

/// The input a feature reads.
pub fn feature_input(feature: &Feature) -> usize {
    feature.input()
}

/// Decides inputs and features from the training `rows` of `table` (the target excluded).
pub fn plan_features(table: &Table, target: &str, rows: &[usize]) -> FeaturePlan {
    let mut plan = FeaturePlan {
        inputs: Vec::new(),
        features: Vec::new(),
        dropped: Vec::new(),
    };
    for column in table.columns.iter().filter(|c| c.name != target) {
        let reason = drop_reason(column, rows, table.n_rows);
        let vocabulary = match reason {
            None | Some(DropReason::FreeText) => text_vocabulary(column, rows),
            Some(_) => None,
        };
        if let (Some(reason), None) = (reason, &vocabulary) {
            plan.dropped.push(DroppedColumn {
                name: column.name.clone(),
                reason,
            });
            continue;
        }
        let input = plan.inputs.len();
        let mut features = Vec::new();
        if let Some(words) = vocabulary {
            plan.inputs.push(InputSpec {
                name: column.name.clone(),
                kind: column.kind,
            });
            plan.features.extend(
                words
                    .into_iter()
                    .map(|word| Feature::WordCount { input, word }),
            );
            continue;
        }
        match (&column.data, column.kind) {
            (ColumnData::Categorical { .. }, _) => {
                features.push(Feature::CategoryIndex {
                    input,
                    levels: training_levels(column, rows),
                });
            }
            (ColumnData::Numeric(values), ColumnType::Datetime) => {
                features.push(Feature::Numeric { input });
                for part in [
                    DatetimePart::Year,
                    DatetimePart::Month,
                    DatetimePart::Day,
                    DatetimePart::DayOfWeek,
                    DatetimePart::Hour,
                ] {
                    let mut seen = rows.iter().filter_map(|&r| datetime_part(values[r], part));
                    if let Some(first) = seen.next()
                        && seen.any(|v| v != first)
                    {
                        features.push(Feature::DatetimePart { input, part });
                    }
                }
            }
            (ColumnData::Numeric(_), _) => features.push(Feature::Numeric { input }),
        }
        plan.inputs.push(InputSpec {
            name: column.name.clone(),
            kind: column.kind,
        });
        plan.features.extend(features);
    }
    plan
}

/// Words kept per text column (the most frequent): vocabulary size is most of what a linear
/// model of text gains (rotten_tomatoes with logistic regression: 500 words 0.68, 2,000 words
/// 0.74 accuracy), bounded so that the counts stay within [`MAX_WORD_CELLS`].
pub const MAX_WORDS: usize = 2_000;
/// The most word counts (training rows × words) one text column may add to the feature matrix
/// (`f32` each: 96 MB); larger tables keep fewer words, at least [`MIN_WORDS`].
pub const MAX_WORD_CELLS: usize = 24_000_000;
const MIN_WORDS: usize = 100;
/// A text column's words must be in at least this many training rows.
const MIN_WORD_ROWS: usize = 2;

/// The vocabulary of a free-text column (reviews, descriptions, titles: a string column whose
/// values are mostly distinct and run to three tokens or more on average), most frequent
/// first: the words in at least [`MIN_WORD_ROWS`] training rows, at most [`MAX_WORDS`] (fewer on
/// large tables, see [`MAX_WORD_CELLS`]).
/// `None` for any other column, or text with fewer than 2 such words.
fn text_vocabulary(column: &Column, rows: &[usize]) -> Option<Vec<String>> {
    let ColumnData::Categorical { codes, levels } = &column.data else {
        return None;
    };
    if column.kind != ColumnType::String {
        return None;
    }
    let mut distinct: Vec<u32> = rows
        .iter()
        .map(|&r| codes[r])
        .filter(|&c| c != MISSING_CODE)
        .collect();
    let present = distinct.len();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() * 2 <= present {
        return None;
    }
    let mut rows_of_word: HashMap<String, usize> = HashMap::new();
    let (mut texts, mut token_count) = (0usize, 0usize);
    let mut seen = std::collections::HashSet::new();
    for &r in rows {
        let Some(text) = levels.get(codes[r] as usize) else {
            continue;
        };
        texts += 1;
        seen.clear();
        for token in tokens(text) {
            token_count += 1;
            if let Some(word) = word_of(token)
                && seen.insert(word.clone())
            {
                *rows_of_word.entry(word).or_insert(0) += 1;
            }
        }
    }
    // Names and codes are one or two tokens; text runs to several.
    if texts == 0 || token_count < 3 * texts {
        return None;
    }
    let mut words: Vec<(String, usize)> = rows_of_word
        .into_iter()
        .filter(|(_, n)| *n >= MIN_WORD_ROWS)
        .collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    words.truncate((MAX_WORD_CELLS / rows.len().max(1)).clamp(MIN_WORDS, MAX_WORDS));
    (words.len() >= 2).then(|| words.into_iter().map(|(w, _)| w).collect())
}

fn drop_reason(column: &Column, rows: &[usize], table_rows: usize) -> Option<DropReason> {
    let present: Vec<usize> = rows
        .iter()
        .copied()
        .filter(|&r| !column.data.is_missing(r))
        .collect();
    if present.is_empty() {
        return Some(DropReason::AllMissing);
    }
    let distinct = match &column.data {
        ColumnData::Numeric(v) => {
            let mut xs: Vec<u64> = present.iter().map(|&r| v[r].to_bits()).collect();
            xs.sort_unstable();
            xs.dedup();
            xs.len()
        }
        ColumnData::Categorical { codes, .. } => {
            let mut xs: Vec<u32> = present.iter().map(|&r| codes[r]).collect();
            xs.sort_unstable();
            xs.dedup();
            xs.len()
        }
    };
    if distinct <= 1 {
        return Some(DropReason::Constant);
    }
    let unique_per_row = distinct == present.len() && present.len() == rows.len();
    let id_named = tokenize(&column.name).iter().any(|t| {
        matches!(
            t.as_str(),
            "id" | "ids"
                | "uuid"
                | "guid"
                | "key"
                | "index"
                | "idx"
                | "rownames"
                | "rowid"
                | "unnamed"
        )
    }) || column.name.trim().is_empty();
    match (&column.data, column.kind) {
        (ColumnData::Categorical { .. }, _) => {
            if unique_per_row && (id_named || rows.len() >= 20) {
                return Some(if id_named {
                    DropReason::IdLike
                } else {
                    DropReason::FreeText
                });
            }
            if rows.len() >= 20 && distinct > MAX_LEVELS && distinct * 2 > present.len() {
                return Some(DropReason::FreeText);
            }
        }
        (ColumnData::Numeric(v), ColumnType::Integer) if unique_per_row => {
            if id_named {
                return Some(DropReason::IdLike);
            }
            let increasing = present.windows(2).all(|w| v[w[1]] > v[w[0]]);
            let span = v[present[present.len() - 1]] - v[present[0]];
            if rows.len() >= 20 && increasing && span <= 2.0 * table_rows as f64 {
                return Some(DropReason::RowNumber);
            }
        }
        _ => {}
    }
    None
}

/// The levels of a string column over the training rows: most frequent first (ties by text, so
/// the order is deterministic), at most [`MAX_LEVELS`].
fn training_levels(column: &Column, rows: &[usize]) -> Vec<String> {
    let ColumnData::Categorical { codes, levels } = &column.data else {
        return Vec::new();
    };
    let mut counts = vec![0usize; levels.len()];
    for &r in rows {
        if codes[r] != MISSING_CODE {
            counts[codes[r] as usize] += 1;
        }
    }
    let mut order: Vec<usize> = (0..levels.len()).filter(|&i| counts[i] > 0).collect();
    order.sort_by(|&a, &b| {
        counts[b]
            .cmp(&counts[a])
            .then_with(|| levels[a].cmp(&levels[b]))
    });
    order.truncate(MAX_LEVELS);
    order.into_iter().map(|i| levels[i].clone()).collect()
}

/// A calendar part of epoch seconds (UTC), of the whole second (the value as training sees
/// it, before any cast to `f32`); `None` when missing.
pub fn datetime_part(epoch_seconds: f64, part: DatetimePart) -> Option<f64> {
    epoch_seconds
        .is_finite()
        .then(|| pipeline::datetime_part(epoch_seconds.floor(), part))
}

/// The feature values of `rows` of `table`, one `f32` column per feature (NaN = missing).
/// Inputs are found by name, so any table with those columns works (training or holdout).
pub fn feature_columns(
    inputs: &[InputSpec],
    features: &[Feature],
    table: &Table,
    rows: &[usize],
) -> Result<Vec<Vec<f32>>, FeatureError> {
    let columns: Vec<&Column> = inputs
        .iter()
        .map(|i| {
            table
                .column(&i.name)
                .ok_or_else(|| FeatureError::MissingColumn(i.name.clone()))
        })
        .collect::<Result<_, _>>()?;
    let mut out: Vec<Vec<f32>> = features
        .iter()
        .map(|f| match f {
            // Counted a block at a time, below.
            Feature::WordCount { .. } => Vec::new(),
            _ => feature_values(f, columns[feature_input(f)], rows),
        })
        .collect();
    for block in word_blocks(features) {
        let mut counts = vec![vec![0f32; rows.len()]; block.len()];
        let mut row_counts = vec![0f32; block.len()];
        let texts = |r: usize| match &columns[block.input].data {
            ColumnData::Categorical { codes, levels } => levels.get(codes[r] as usize),
            ColumnData::Numeric(_) => None,
        };
        for (i, &r) in rows.iter().enumerate() {
            row_counts.iter_mut().for_each(|c| *c = 0.0);
            if let Some(text) = texts(r) {
                block.count(text, &mut row_counts);
            }
            for (column, c) in counts.iter_mut().zip(&row_counts) {
                column[i] = *c;
            }
        }
        for (slot, column) in counts.into_iter().enumerate() {
            out[block.first + slot] = column;
        }
    }
    Ok(out)
}

fn feature_values(feature: &Feature, column: &Column, rows: &[usize]) -> Vec<f32> {
    match (feature, &column.data) {
        (Feature::Numeric { .. }, ColumnData::Numeric(v)) => {
            rows.iter().map(|&r| v[r] as f32).collect()
        }
        (Feature::Numeric { .. }, ColumnData::Categorical { codes, levels }) => {
            // A column typed as text where training saw numbers: read what parses, as a file's
            // cell would be read.
            let parsed: Vec<f32> = levels
                .iter()
                .map(|l| match read_cell(ColumnType::Float, l) {
                    Some(CellValue::Number(v)) => v as f32,
                    _ => f32::NAN,
                })
                .collect();
            values_of_codes(codes, rows, &parsed)
        }
        (Feature::CategoryIndex { levels, .. }, data) => {
            let index: HashMap<&str, usize> = levels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.as_str(), i))
                .collect();
            match data {
                ColumnData::Categorical {
                    codes,
                    levels: table_levels,
                } => {
                    let mapped: Vec<f32> = table_levels
                        .iter()
                        .map(|l| index.get(l.as_str()).map_or(f32::NAN, |&i| i as f32))
                        .collect();
                    values_of_codes(codes, rows, &mapped)
                }
                ColumnData::Numeric(v) => rows
                    .iter()
                    .map(|&r| {
                        if v[r].is_nan() {
                            f32::NAN
                        } else {
                            index
                                .get(format_number(v[r]).as_str())
                                .map_or(f32::NAN, |&i| i as f32)
                        }
                    })
                    .collect(),
            }
        }
        (Feature::DatetimePart { part, .. }, ColumnData::Numeric(v)) => rows
            .iter()
            .map(|&r| datetime_part(v[r], *part).map_or(f32::NAN, |x| x as f32))
            .collect(),
        (Feature::DatetimePart { .. }, ColumnData::Categorical { .. }) => {
            vec![f32::NAN; rows.len()]
        }
        (Feature::WordCount { .. }, _) => vec![0.0; rows.len()],
    }
}

/// Per row, the value its dictionary code maps to in `by_code` (one per level of the column);
/// NaN for a missing value.
fn values_of_codes(codes: &[u32], rows: &[usize], by_code: &[f32]) -> Vec<f32> {
    rows.iter()
        .map(|&r| by_code.get(codes[r] as usize).copied().unwrap_or(f32::NAN))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn text_column(name: &str, values: &[&str]) -> Column {
        let mut levels: Vec<String> = Vec::new();
        let codes = values
            .iter()
            .map(|v| {
                if v.is_empty() {
                    return MISSING_CODE;
                }
                match levels.iter().position(|l| l == v) {
                    Some(i) => i as u32,
                    None => {
                        levels.push(v.to_string());
                        (levels.len() - 1) as u32
                    }
                }
            })
            .collect();
        Column {
            name: name.into(),
            kind: ColumnType::String,
            data: ColumnData::Categorical { codes, levels },
        }
    }

    pub(crate) fn numeric_column(name: &str, kind: ColumnType, values: Vec<f64>) -> Column {
        Column {
            name: name.into(),
            kind,
            data: ColumnData::Numeric(values),
        }
    }

    fn table(columns: Vec<Column>) -> Table {
        let n_rows = columns[0].data.len();
        Table { columns, n_rows }
    }

    #[test]
    fn ids_row_numbers_constants_and_free_text_are_dropped() {
        let n = 40;
        let cities = ["Paris", "Lyon", "Nice"];
        let t = table(vec![
            numeric_column(
                "customer_id",
                ColumnType::Integer,
                (0..n).map(|i| (i * 7 % n + 1000) as f64).collect(),
            ),
            numeric_column(
                "row",
                ColumnType::Integer,
                (1..=n).map(|i| i as f64).collect(),
            ),
            numeric_column("const", ColumnType::Float, vec![2.5; n]),
            numeric_column("empty", ColumnType::Float, vec![f64::NAN; n]),
            text_column(
                "comment",
                &(0..n)
                    .map(|i| format!("note {i}"))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ),
            text_column("city", &(0..n).map(|i| cities[i % 3]).collect::<Vec<_>>()),
            numeric_column(
                "score",
                ColumnType::Float,
                (0..n).map(|i| (i % 5) as f64 * 0.5).collect(),
            ),
            numeric_column(
                "count",
                ColumnType::Integer,
                (0..n).map(|i| ((i * 13) % 97) as f64).collect(),
            ),
            numeric_column("y", ColumnType::Float, (0..n).map(|i| i as f64).collect()),
        ]);
        let rows: Vec<usize> = (0..n).collect();
        let plan = plan_features(&t, "y", &rows);
        let dropped: Vec<(&str, DropReason)> = plan
            .dropped
            .iter()
            .map(|d| (d.name.as_str(), d.reason.clone()))
            .collect();
        assert_eq!(
            dropped,
            vec![
                ("customer_id", DropReason::IdLike),
                ("row", DropReason::RowNumber),
                ("const", DropReason::Constant),
                ("empty", DropReason::AllMissing),
                ("comment", DropReason::FreeText),
            ]
        );
        let names: Vec<&str> = plan.inputs.iter().map(|i| i.name.as_str()).collect();
        // `count` is unique per row but neither named like an id nor increasing: a real feature.
        assert_eq!(names, vec!["city", "score", "count"]);
        assert!(
            matches!(&plan.features[0], Feature::CategoryIndex { input: 0, levels } if levels.len() == 3)
        );
    }

    #[test]
    fn free_text_of_several_words_becomes_word_counts_and_names_stay_dropped() {
        let n = 40;
        let reviews: Vec<String> = (0..n)
            .map(|i| format!("Review {i}: a GOOD read, good value (#{})", i % 3))
            .collect();
        let names: Vec<String> = (0..n).map(|i| format!("Person{i} Smith")).collect();
        fn as_strs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let t = table(vec![
            text_column("review", &as_strs(&reviews)),
            text_column("name", &as_strs(&names)),
            numeric_column("y", ColumnType::Float, (0..n).map(|i| i as f64).collect()),
        ]);
        let rows: Vec<usize> = (0..n).collect();
        let plan = plan_features(&t, "y", &rows);
        assert_eq!(plan.inputs.len(), 1);
        assert_eq!(plan.inputs[0].name, "review");
        assert_eq!(plan.dropped.len(), 1);
        assert_eq!(plan.dropped[0].name, "name");
        let words: Vec<&str> = plan
            .features
            .iter()
            .map(|f| match f {
                Feature::WordCount { input: 0, word } => word.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        // In at least two rows, most frequent first; the row numbers are in one row each.
        assert_eq!(
            words,
            ["a", "good", "read", "review", "value", "0", "1", "2"]
        );
        let columns = feature_columns(&plan.inputs, &plan.features, &t, &[0, 1]).unwrap();
        assert_eq!(columns[1], [2.0, 2.0], "good and GOOD count, twice a row");
        assert_eq!(columns[5], [2.0, 0.0], "row 0 has `0` twice");
    }

    #[test]
    fn category_levels_come_from_training_rows_and_unseen_is_nan() {
        let t = table(vec![text_column("c", &["b", "a", "b", "z", "", "a", "b"])]);
        let plan = plan_features(&t, "none", &[0, 1, 2, 4, 5, 6]);
        let Feature::CategoryIndex { levels, .. } = &plan.features[0] else {
            panic!("expected a category")
        };
        // Most frequent first; `z` appears only outside the training rows.
        assert_eq!(levels, &vec!["b".to_string(), "a".to_string()]);
        let cols =
            feature_columns(&plan.inputs, &plan.features, &t, &[0, 1, 3, 4]).unwrap_or_default();
        assert_eq!(cols[0][..2], [0.0, 1.0]);
        assert!(cols[0][2].is_nan() && cols[0][3].is_nan());
    }

    #[test]
    fn datetimes_become_calendar_parts() {
        // 2024-02-29T13:45:00Z was a Thursday; 1969-12-31T23:00:00Z a Wednesday.
        let t = 1_709_214_300.0;
        assert_eq!(datetime_part(t, DatetimePart::Year), Some(2024.0));
        assert_eq!(datetime_part(t, DatetimePart::Month), Some(2.0));
        assert_eq!(datetime_part(t, DatetimePart::Day), Some(29.0));
        assert_eq!(datetime_part(t, DatetimePart::DayOfWeek), Some(3.0));
        assert_eq!(datetime_part(t, DatetimePart::Hour), Some(13.0));
        assert_eq!(datetime_part(-3600.0, DatetimePart::Year), Some(1969.0));
        assert_eq!(datetime_part(-3600.0, DatetimePart::DayOfWeek), Some(2.0));
        assert_eq!(datetime_part(f64::NAN, DatetimePart::Hour), None);
        let tab = table(vec![numeric_column(
            "when",
            ColumnType::Datetime,
            vec![t, t + 86_400.0 * 40.0, t + 86_400.0 * 400.0],
        )]);
        let plan = plan_features(&tab, "y", &[0, 1, 2]);
        // Hours are all equal: no hour feature.
        assert_eq!(plan.features.len(), 5);
        assert!(!plan.features.contains(&Feature::DatetimePart {
            input: 0,
            part: DatetimePart::Hour
        }));
    }
}
