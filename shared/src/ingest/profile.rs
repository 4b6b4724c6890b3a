//! Per-column summary shown with a dataset (SPEC §3): `{name, type, missing, unique, min?,
//! max?, mean?, top_values?}`. Integer and float columns get min/max/mean; datetime columns
//! min/max as RFC 3339; string and boolean columns the (up to) five most frequent values with
//! their counts, ties broken by value so the same data always gives the same profile.

use serde::{Deserialize, Serialize};

use super::cell::format_rfc3339;
use super::table::{Column, ColumnData, ColumnType, MISSING_CODE, Table};

/// How many most frequent values a profile lists.
pub const TOP_VALUES: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    pub missing: usize,
    /// Distinct non-missing values.
    pub unique: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_values: Option<Vec<ValueCount>>,
}

/// One value as it appears in JSON: integers as integers, datetimes as RFC 3339 text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueCount {
    pub value: Scalar,
    pub count: usize,
}

pub fn profile(table: &Table) -> Vec<ColumnProfile> {
    table.columns.iter().map(profile_column).collect()
}

fn profile_column(column: &Column) -> ColumnProfile {
    let mut p = ColumnProfile {
        name: column.name.clone(),
        kind: column.kind,
        missing: 0,
        unique: 0,
        min: None,
        max: None,
        mean: None,
        top_values: None,
    };
    match &column.data {
        ColumnData::Numeric(values) => {
            let mut present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
            p.missing = values.len() - present.len();
            let min = present.iter().copied().reduce(f64::min);
            let max = present.iter().copied().reduce(f64::max);
            // Before sorting: the mean sums in row order, as pandas does.
            let mean_value = (!present.is_empty()).then(|| mean(&present));
            // Distinct values as runs of the sorted copy, not a hash map: the copy exists anyway
            // and a map of a unique-per-row column would take twice the column again (this runs
            // on every upload, with the whole table in memory). `==` makes -0.0 and 0.0 one value.
            present.sort_unstable_by(f64::total_cmp);
            let is_boolean = column.kind == ColumnType::Boolean;
            // Only booleans list their values (with counts); other columns just count runs.
            let mut counts: Vec<(f64, usize)> = Vec::new();
            let mut previous: Option<f64> = None;
            for &v in &present {
                if previous != Some(v) {
                    p.unique += 1;
                    previous = Some(v);
                    if is_boolean {
                        counts.push((v, 0));
                    }
                }
                if let Some((_, n)) = counts.last_mut() {
                    *n += 1;
                }
            }
            drop(present);
            let scalar = |v: f64| match column.kind {
                ColumnType::Integer => Scalar::Integer(v as i64),
                ColumnType::Datetime => Scalar::Text(format_rfc3339(v)),
                _ => Scalar::Float(v),
            };
            match column.kind {
                ColumnType::Integer | ColumnType::Float => {
                    p.min = min.map(scalar);
                    p.max = max.map(scalar);
                    p.mean = mean_value;
                }
                ColumnType::Datetime => {
                    p.min = min.map(scalar);
                    p.max = max.map(scalar);
                }
                ColumnType::Boolean => {
                    let mut top: Vec<ValueCount> = counts
                        .iter()
                        .map(|&(v, count)| ValueCount {
                            value: Scalar::Boolean(v != 0.0),
                            count,
                        })
                        .collect();
                    top.sort_by(|a, b| {
                        b.count
                            .cmp(&a.count)
                            .then_with(|| bool_of(&a.value).cmp(&bool_of(&b.value)))
                    });
                    p.top_values = Some(top);
                }
                // Text never has numeric storage.
                ColumnType::String => {}
            }
        }
        ColumnData::Categorical { codes, levels } => {
            let mut counts = vec![0usize; levels.len()];
            for &c in codes {
                if c == MISSING_CODE {
                    p.missing += 1;
                } else if let Some(n) = counts.get_mut(c as usize) {
                    *n += 1;
                }
            }
            // Levels may outnumber the values in use (a subset of rows shares the levels).
            let mut used: Vec<(usize, &str)> = counts
                .iter()
                .zip(levels)
                .filter(|(n, _)| **n > 0)
                .map(|(&n, l)| (n, l.as_str()))
                .collect();
            p.unique = used.len();
            used.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            p.top_values = Some(
                used.into_iter()
                    .take(TOP_VALUES)
                    .map(|(count, v)| ValueCount {
                        value: Scalar::Text(v.to_owned()),
                        count,
                    })
                    .collect(),
            );
        }
    }
    p
}

fn bool_of(s: &Scalar) -> bool {
    matches!(s, Scalar::Boolean(true))
}

/// Sum divided by count, as pandas does; if the sum overflows (values near `f64::MAX`), a
/// running mean that divides each term first keeps the result finite.
fn mean(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let sum: f64 = values.iter().sum();
    if sum.is_finite() {
        return sum / n;
    }
    values.iter().enumerate().fold(0.0, |m, (i, &v)| {
        let k = (i + 1) as f64;
        m + (v / k - m / k)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top_values(p: &ColumnProfile) -> Vec<(Scalar, usize)> {
        p.top_values
            .iter()
            .flatten()
            .map(|v| (v.value.clone(), v.count))
            .collect()
    }

    fn col(name: &str, kind: ColumnType, data: ColumnData) -> Column {
        Column {
            name: name.into(),
            kind,
            data,
        }
    }

    #[test]
    fn numeric_profile_as_json() {
        let t = Table {
            n_rows: 4,
            columns: vec![
                col(
                    "n",
                    ColumnType::Integer,
                    ColumnData::Numeric(vec![3.0, f64::NAN, -1.0, 3.0]),
                ),
                col(
                    "when",
                    ColumnType::Datetime,
                    ColumnData::Numeric(vec![0.0, 86_400.0, f64::NAN, f64::NAN]),
                ),
            ],
        };
        let json = serde_json::to_value(profile(&t)).unwrap();
        let expected: serde_json::Value = serde_json::from_str(
            r#"[{"name":"n","type":"integer","missing":1,"unique":2,"min":-1,"max":3,"mean":1.6666666666666667},
                {"name":"when","type":"datetime","missing":2,"unique":2,"min":"1970-01-01T00:00:00Z","max":"1970-01-02T00:00:00Z"}]"#,
        )
        .unwrap();
        assert_eq!(json, expected);
    }

    #[test]
    fn top_values_break_ties_by_value() {
        let t = Table {
            n_rows: 7,
            columns: vec![
                col(
                    "s",
                    ColumnType::String,
                    ColumnData::Categorical {
                        codes: vec![0, 1, 1, 0, 2, MISSING_CODE, 3],
                        levels: vec![
                            "b".into(),
                            "a".into(),
                            "c".into(),
                            "unused-later".into(),
                            "never".into(),
                        ],
                    },
                ),
                col(
                    "flag",
                    ColumnType::Boolean,
                    ColumnData::Numeric(vec![1.0, 0.0, 1.0, 0.0, f64::NAN, 1.0, 0.0]),
                ),
            ],
        };
        let p = profile(&t);
        let top = top_values(&p[0]);
        let text = |s: &str| Scalar::Text(s.into());
        assert_eq!(
            top,
            vec![
                (text("a"), 2),
                (text("b"), 2),
                (text("c"), 1),
                (text("unused-later"), 1)
            ]
        );
        assert_eq!((p[0].missing, p[0].unique), (1, 4));
        let flags = top_values(&p[1]);
        assert_eq!(
            flags,
            vec![(Scalar::Boolean(false), 3), (Scalar::Boolean(true), 3)]
        );
        assert_eq!(p[1].mean, None);
    }

    #[test]
    fn distinct_numbers_count_zero_signs_as_one() {
        let t = Table {
            n_rows: 8,
            columns: vec![col(
                "x",
                ColumnType::Float,
                ColumnData::Numeric(vec![2.5, -0.0, 0.0, f64::NAN, 2.5, -3.0, 0.0, 7.0]),
            )],
        };
        let p = &profile(&t)[0];
        // {-3, 0, 2.5, 7}: -0.0 and 0.0 are one value, NaN is missing.
        assert_eq!((p.missing, p.unique), (1, 4));
        assert_eq!(p.min, Some(Scalar::Float(-3.0)));
        assert_eq!(p.max, Some(Scalar::Float(7.0)));
        assert_eq!(p.mean, Some(9.0 / 7.0));
    }

    #[test]
    fn mean_of_extreme_values_stays_finite() {
        let t = Table {
            n_rows: 3,
            columns: vec![col(
                "x",
                ColumnType::Float,
                ColumnData::Numeric(vec![f64::MAX, f64::MAX, -f64::MAX]),
            )],
        };
        let mean = profile(&t)[0].mean.expect("numeric columns have a mean");
        assert!(mean.is_finite() && mean > 0.0, "{mean}");
    }

    #[test]
    fn profile_round_trips_through_serde() {
        let t = Table {
            n_rows: 2,
            columns: vec![col(
                "x",
                ColumnType::Float,
                ColumnData::Numeric(vec![0.5, 2.0]),
            )],
        };
        let p = profile(&t);
        let back: Vec<ColumnProfile> =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
