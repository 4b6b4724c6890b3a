//! The first rows of a table as JSON objects (`GET /datasets/{id}/preview`).

use serde_json::{Map, Number, Value};

use super::cell::format_rfc3339;
use super::table::{Column, ColumnData, ColumnType, MISSING_CODE, Table};

/// Up to `limit` rows as `{column: value}`: integers as JSON integers, floats as numbers,
/// booleans as `true`/`false`, datetimes as RFC 3339 strings, strings as strings, missing as
/// `null`. (Keys come out in `serde_json::Map` order, i.e. sorted, unless the workspace enables
/// serde_json's `preserve_order`; callers wanting column order use `table.columns`.)
pub fn preview_rows(table: &Table, limit: usize) -> Vec<Map<String, Value>> {
    (0..table.n_rows.min(limit))
        .map(|row| {
            table
                .columns
                .iter()
                .map(|c| (c.name.clone(), cell_json(c, row)))
                .collect()
        })
        .collect()
}

/// One cell as JSON (`null` when missing or out of range).
pub fn cell_json(column: &Column, row: usize) -> Value {
    match &column.data {
        ColumnData::Numeric(values) => match values.get(row).copied() {
            None => Value::Null,
            Some(v) if v.is_nan() => Value::Null,
            Some(v) => match column.kind {
                ColumnType::Integer => Value::from(v as i64),
                ColumnType::Boolean => Value::Bool(v != 0.0),
                ColumnType::Datetime => Value::String(format_rfc3339(v)),
                _ => Number::from_f64(v).map_or(Value::Null, Value::Number),
            },
        },
        ColumnData::Categorical { codes, levels } => match codes.get(row) {
            Some(&c) if c != MISSING_CODE => levels
                .get(c as usize)
                .map_or(Value::Null, |s| Value::String(s.clone())),
            _ => Value::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_as_typed_json() {
        let col = |name: &str, kind, data| Column {
            name: name.into(),
            kind,
            data,
        };
        let t = Table {
            n_rows: 2,
            columns: vec![
                col(
                    "i",
                    ColumnType::Integer,
                    ColumnData::Numeric(vec![7.0, f64::NAN]),
                ),
                col("f", ColumnType::Float, ColumnData::Numeric(vec![0.25, 1.0])),
                col(
                    "b",
                    ColumnType::Boolean,
                    ColumnData::Numeric(vec![1.0, 0.0]),
                ),
                col(
                    "d",
                    ColumnType::Datetime,
                    ColumnData::Numeric(vec![86_400.0, f64::NAN]),
                ),
                col(
                    "s",
                    ColumnType::String,
                    ColumnData::Categorical {
                        codes: vec![MISSING_CODE, 0],
                        levels: vec!["x".into()],
                    },
                ),
            ],
        };
        let rows = preview_rows(&t, 10);
        assert_eq!(
            Value::Array(rows.into_iter().map(Value::Object).collect()),
            json!([
                {"i": 7, "f": 0.25, "b": true, "d": "1970-01-02T00:00:00Z", "s": null},
                {"i": null, "f": 1.0, "b": false, "d": null, "s": "x"}
            ])
        );
        assert_eq!(preview_rows(&t, 1).len(), 1);
    }
}
