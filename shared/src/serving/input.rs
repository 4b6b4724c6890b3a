//! JSON rows → the model's input tensors, checked against the input schema (SPEC section 5):
//! `null` is a missing value; an omitted field, a wrong type, a non-finite number or an unknown
//! field is an error naming the field (and the row, in a batch). Numeric strings are accepted
//! for numeric fields, numbers and booleans for string fields (as their text).

use crate::ingest::{ColumnData, ColumnType, Table};
use crate::onnx::InputField;
use serde::Serialize;
use serde_json::Value;
use tract_onnx::prelude::*;

/// One problem with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The row's position in the batch; `None` for a single-row request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
    /// The field's name; empty when the row itself is not an object.
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} invalid field(s); first: {}", errors.len(), errors.first().map(|e| format!("{}: {}", e.field, e.message)).unwrap_or_default())]
pub struct InputError {
    pub errors: Vec<FieldError>,
}

/// One input column of a batch, in the tensor type its ONNX input expects.
#[derive(Debug, Clone, PartialEq)]
pub enum InputColumn {
    /// NaN = missing.
    Float(Vec<f32>),
    /// The empty string = missing.
    Text(Vec<String>),
}

impl InputColumn {
    pub fn to_tensor(&self, n_rows: usize) -> TractResult<Tensor> {
        match self {
            InputColumn::Float(v) => Tensor::from_shape(&[n_rows, 1], v),
            InputColumn::Text(v) => {
                Ok(tract_ndarray::Array2::from_shape_vec((n_rows, 1), v.clone())?.into_tensor())
            }
        }
    }
}

/// A batch of rows in columnar form, one column per schema field, in schema order.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub n_rows: usize,
    pub columns: Vec<InputColumn>,
}

impl Batch {
    /// The columns of `table` the schema names, converted the way the exported graph reads
    /// them (numbers to `f32`, string codes to their text, missing to NaN / "").
    pub fn from_table(schema: &[InputField], table: &Table) -> Result<Batch, InputError> {
        let mut errors = Vec::new();
        let mut columns = Vec::with_capacity(schema.len());
        for field in schema {
            let Some(column) = table.column(&field.name) else {
                errors.push(FieldError {
                    row: None,
                    field: field.name.clone(),
                    message: "is required".into(),
                });
                continue;
            };
            match (&column.data, field.kind) {
                (ColumnData::Categorical { codes, levels }, ColumnType::String) => {
                    columns.push(InputColumn::Text(
                        codes
                            .iter()
                            .map(|&c| levels.get(c as usize).cloned().unwrap_or_default())
                            .collect(),
                    ))
                }
                (ColumnData::Numeric(values), kind) if kind != ColumnType::String => columns.push(
                    InputColumn::Float(values.iter().map(|&v| v as f32).collect()),
                ),
                _ => errors.push(FieldError {
                    row: None,
                    field: field.name.clone(),
                    message: format!("has the wrong type for a {:?} input", field.kind),
                }),
            }
        }
        if errors.is_empty() {
            Ok(Batch {
                n_rows: table.n_rows,
                columns,
            })
        } else {
            Err(InputError { errors })
        }
    }

    /// `n` rows: this batch's rows cycled (for throughput runs on a small holdout).
    pub fn repeat_to(&self, n: usize) -> Batch {
        let m = self.n_rows;
        let columns = self
            .columns
            .iter()
            .map(|c| match c {
                InputColumn::Float(v) if m > 0 => {
                    InputColumn::Float((0..n).map(|i| v[i % m]).collect())
                }
                InputColumn::Text(v) if m > 0 => {
                    InputColumn::Text((0..n).map(|i| v[i % m].clone()).collect())
                }
                InputColumn::Float(_) => InputColumn::Float(Vec::new()),
                InputColumn::Text(_) => InputColumn::Text(Vec::new()),
            })
            .collect();
        Batch {
            n_rows: if m > 0 { n } else { 0 },
            columns,
        }
    }

    /// The batch in the JSON form `tests/ort/run_ort.py` and `time_ort.py` read:
    /// `{"<onnx input>": {"type": "float" | "string", "values": [...]}}`, NaN as `null`.
    pub fn to_ort_json(&self, schema: &[InputField]) -> Value {
        let mut map = serde_json::Map::new();
        for (field, column) in schema.iter().zip(&self.columns) {
            let entry = match column {
                InputColumn::Float(v) => serde_json::json!({
                    "type": "float",
                    "values": v
                        .iter()
                        .map(|x| if x.is_nan() { Value::Null } else { serde_json::json!(*x as f64) })
                        .collect::<Vec<_>>(),
                }),
                InputColumn::Text(v) => serde_json::json!({"type": "string", "values": v}),
            };
            map.insert(field.input.clone(), entry);
        }
        Value::Object(map)
    }

    /// Rows `range` of the batch (for single-row timing and chunked runs).
    pub fn rows(&self, range: std::ops::Range<usize>) -> Batch {
        let range = range.start.min(self.n_rows)
            ..range.end.min(self.n_rows).max(range.start.min(self.n_rows));
        let columns = self
            .columns
            .iter()
            .map(|c| match c {
                InputColumn::Float(v) => InputColumn::Float(v[range.clone()].to_vec()),
                InputColumn::Text(v) => InputColumn::Text(v[range.clone()].to_vec()),
            })
            .collect();
        Batch {
            n_rows: range.len(),
            columns,
        }
    }
}

/// Builds a batch from JSON objects. A single row's errors carry no row number.
pub fn rows_to_batch(schema: &[InputField], rows: &[Value]) -> Result<Batch, InputError> {
    let single = rows.len() == 1;
    let mut columns: Vec<InputColumn> = schema
        .iter()
        .map(|f| match f.kind {
            ColumnType::String => InputColumn::Text(Vec::with_capacity(rows.len())),
            _ => InputColumn::Float(Vec::with_capacity(rows.len())),
        })
        .collect();
    let mut errors = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let at = (!single).then_some(r);
        let mut error = |field: &str, message: String| {
            errors.push(FieldError {
                row: at,
                field: field.to_string(),
                message,
            });
        };
        let Value::Object(object) = row else {
            error(
                "",
                format!("a row must be a JSON object, got {}", json_kind(row)),
            );
            continue;
        };
        for (field, column) in schema.iter().zip(columns.iter_mut()) {
            let value = object.get(&field.name);
            let Some(value) = value else {
                error(
                    &field.name,
                    "is required (send null for a missing value)".into(),
                );
                continue;
            };
            match column {
                InputColumn::Float(values) => match number_of(field.kind, value) {
                    Ok(v) => values.push(v),
                    Err(message) => error(&field.name, message),
                },
                InputColumn::Text(values) => match text_of(value) {
                    Ok(v) => values.push(v),
                    Err(message) => error(&field.name, message),
                },
            }
        }
        let mut unknown: Vec<&String> = object
            .keys()
            .filter(|k| !schema.iter().any(|f| &f.name == *k))
            .collect();
        unknown.sort();
        for key in unknown {
            error(key, "is not an input of this model".into());
        }
    }
    if errors.is_empty() {
        Ok(Batch {
            n_rows: rows.len(),
            columns,
        })
    } else {
        Err(InputError { errors })
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A numeric, boolean or datetime field's value as the model's `f32` input.
fn number_of(kind: ColumnType, value: &Value) -> Result<f32, String> {
    let expected = match kind {
        ColumnType::Boolean => "a boolean",
        ColumnType::Datetime => "a date-time (ISO 8601 text or epoch seconds)",
        _ => "a number",
    };
    let wrong = || format!("expected {expected}, got {}", json_kind(value));
    let v = match (kind, value) {
        (_, Value::Null) => return Ok(f32::NAN),
        (ColumnType::Boolean, Value::Bool(b)) => f64::from(u8::from(*b)),
        (ColumnType::Boolean, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => 1.0,
            "false" | "no" | "0" => 0.0,
            "" => return Ok(f32::NAN),
            _ => return Err(format!("expected {expected}, got the string {s:?}")),
        },
        (ColumnType::Datetime, Value::String(s)) => match parse_datetime(s.trim()) {
            Some(v) => v,
            None if s.trim().is_empty() => return Ok(f32::NAN),
            None => return Err(format!("expected {expected}, got the string {s:?}")),
        },
        // A boolean sent as a number must be 0 or 1; anything else is a mistake, not a value.
        (ColumnType::Boolean, Value::Number(n)) => match n.as_f64() {
            Some(v) if v == 0.0 || v == 1.0 => v,
            _ => return Err(format!("expected {expected} (or 0/1), got the number {n}")),
        },
        (_, Value::Number(n)) => n.as_f64().ok_or_else(wrong)?,
        (ColumnType::Integer | ColumnType::Float, Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(f32::NAN);
            }
            // Only number-shaped text: Rust would also parse "inf" and "NaN".
            let numberish = t
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.'));
            match t.parse::<f64>() {
                Ok(v) if numberish => v,
                _ => return Err(format!("expected {expected}, got the string {s:?}")),
            }
        }
        (ColumnType::Integer | ColumnType::Float, Value::Bool(b)) => f64::from(u8::from(*b)),
        _ => return Err(wrong()),
    };
    if !v.is_finite() {
        return Err("must be a finite number".into());
    }
    Ok(v as f32)
}

/// A string field's value: text as is, numbers and booleans as their text.
fn text_of(value: &Value) -> Result<String, String> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("expected a string, got {}", json_kind(other))),
    }
}

/// Epoch seconds (UTC) of an RFC 3339 date-time, a `YYYY-MM-DD[ HH:MM[:SS]]` local form read as
/// UTC, or a plain date.
pub fn parse_datetime(s: &str) -> Option<f64> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos() as f64 / 1e9);
    }
    let forms = [
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    ];
    for form in forms {
        if let Ok(t) = time::PrimitiveDateTime::parse(s, form) {
            return Some(t.assume_utc().unix_timestamp() as f64);
        }
    }
    let date = time::Date::parse(s, format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Vec<InputField> {
        let field = |name: &str, kind| InputField {
            name: name.into(),
            input: name.into(),
            kind,
        };
        vec![
            field("age", ColumnType::Integer),
            field("city", ColumnType::String),
            field("member", ColumnType::Boolean),
            field("joined", ColumnType::Datetime),
        ]
    }

    #[test]
    fn accepts_nulls_numeric_strings_and_numbers_as_text() {
        let rows = [
            json!({"age": "3.5", "city": 12, "member": true, "joined": "2024-01-02T00:00:00Z"}),
            json!({"age": null, "city": null, "member": null, "joined": null}),
        ];
        let batch = rows_to_batch(&schema(), &rows).unwrap();
        assert_eq!(batch.n_rows, 2);
        match (
            &batch.columns[0],
            &batch.columns[1],
            &batch.columns[2],
            &batch.columns[3],
        ) {
            (
                InputColumn::Float(age),
                InputColumn::Text(city),
                InputColumn::Float(m),
                InputColumn::Float(j),
            ) => {
                assert_eq!(age[0], 3.5);
                assert!(age[1].is_nan());
                assert_eq!(city, &vec!["12".to_string(), String::new()]);
                assert_eq!(m[0], 1.0);
                assert_eq!(j[0], 1_704_153_600.0);
                assert!(j[1].is_nan());
            }
            other => panic!("unexpected columns {other:?}"),
        }
    }

    #[test]
    fn reports_every_bad_field_with_its_row() {
        let rows = [
            json!({"age": "abc", "city": [1], "member": true, "joined": null, "extra": 1}),
            json!({"city": "x", "member": 2, "joined": "yesterday"}),
            json!("not an object"),
            json!({"age": "NaN", "city": "x", "member": false, "joined": 0}),
        ];
        let err = rows_to_batch(&schema(), &rows).unwrap_err();
        let got: Vec<(Option<usize>, &str)> = err
            .errors
            .iter()
            .map(|e| (e.row, e.field.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(0), "age"),
                (Some(0), "city"),
                (Some(0), "extra"),
                (Some(1), "age"),
                (Some(1), "member"),
                (Some(1), "joined"),
                (Some(2), ""),
                (Some(3), "age"),
            ]
        );
        assert!(err.errors[3].message.contains("required"));
    }

    #[test]
    fn a_single_row_has_no_row_number() {
        let err = rows_to_batch(&schema(), &[json!({"age": 1})]).unwrap_err();
        assert!(err.errors.iter().all(|e| e.row.is_none()));
        assert_eq!(err.errors.len(), 3);
    }
}
