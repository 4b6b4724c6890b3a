//! JSON rows → the model's input tensors, checked against the input schema (SPEC section 5):
//! `null` is a missing value; an omitted field, a wrong type, a non-finite number or an unknown
//! field is an error naming the field (and the row, in a batch). Text in a numeric, boolean or
//! datetime field is read by ingest's cell reader, so every value a training file accepts
//! (missing markers, number and date forms, boolean spellings) means the same here; numbers and
//! booleans are accepted for string fields (as their text).

use crate::ingest::cell::{self, CellValue};
use crate::ingest::table::MISSING_CODE;
use crate::ingest::{Column, ColumnData, ColumnType, Table};
use crate::onnx::InputField;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
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

pub use crate::api::predictions::MAX_BATCH_ROWS;
/// Problems an [`InputError`] lists (the rest are only counted): a batch of 10,000 rows each
/// wrong in 76 fields is a 422 of a few KB, not 56 MB.
pub const MAX_LISTED_ERRORS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{total} invalid field(s); first: {}", errors.first().map(|e| format!("{}: {}", e.field, e.message)).unwrap_or_default())]
pub struct InputError {
    /// The first [`MAX_LISTED_ERRORS`] problems, in row order.
    pub errors: Vec<FieldError>,
    /// How many there were in all.
    pub total: usize,
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
    /// Rows `rows` of the column as an `[n, 1]` tensor.
    pub fn to_tensor(&self, rows: std::ops::Range<usize>) -> TractResult<Tensor> {
        let n = rows.len();
        match self {
            InputColumn::Float(v) => Tensor::from_shape(&[n, 1], &v[rows]),
            InputColumn::Text(v) => {
                Ok(tract_ndarray::Array2::from_shape_vec((n, 1), v[rows].to_vec())?.into_tensor())
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
            Err(InputError {
                total: errors.len(),
                errors,
            })
        }
    }

    /// The batch as a table whose columns are named by the schema (the inverse of
    /// [`Batch::from_table`]: floats widened to `f64`, the empty string missing), so that native
    /// prediction reads exactly the values tract reads.
    pub fn to_table(&self, schema: &[InputField]) -> Table {
        let columns = schema
            .iter()
            .zip(&self.columns)
            .map(|(field, column)| Column {
                name: field.name.clone(),
                kind: field.kind,
                data: match column {
                    InputColumn::Float(v) => {
                        ColumnData::Numeric(v.iter().map(|&x| f64::from(x)).collect())
                    }
                    InputColumn::Text(v) => {
                        let mut index: HashMap<&str, u32> = HashMap::new();
                        let mut levels: Vec<String> = Vec::new();
                        let codes = v
                            .iter()
                            .map(|s| {
                                if s.is_empty() {
                                    return MISSING_CODE;
                                }
                                *index.entry(s.as_str()).or_insert_with(|| {
                                    levels.push(s.clone());
                                    levels.len() as u32 - 1
                                })
                            })
                            .collect();
                        ColumnData::Categorical { codes, levels }
                    }
                },
            })
            .collect();
        Table {
            columns,
            n_rows: self.n_rows,
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

/// One field's value as the batch builder reads it: borrowed from a parsed [`Value`], straight
/// from a request body ([`JsonRows`]) or from a CSV cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Text(Cow<'a, str>),
    /// An array or object (always an error; kept only to name it).
    Nested(&'static str),
}

impl<'a> From<&'a Value> for Cell<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Null => Cell::Null,
            Value::Bool(b) => Cell::Bool(*b),
            Value::Number(n) => Cell::Number(n.clone()),
            Value::String(s) => Cell::Text(Cow::Borrowed(s)),
            Value::Array(_) => Cell::Nested("an array"),
            Value::Object(_) => Cell::Nested("an object"),
        }
    }
}

impl Cell<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Bool(_) => "a boolean",
            Cell::Number(_) => "a number",
            Cell::Text(_) => "a string",
            Cell::Nested(kind) => kind,
        }
    }
}

/// Builds a [`Batch`] row by row, field by field, collecting every invalid field of every row.
/// A field sent twice in one row counts once, with its last value (as JSON objects read).
pub struct BatchBuilder<'s> {
    schema: &'s [InputField],
    index: HashMap<&'s str, usize>,
    columns: Vec<InputColumn>,
    errors: Vec<FieldError>,
    total_errors: usize,
    n_rows: usize,
    // The current row: which fields it set, their errors, and the names it set that are not
    // inputs. Errors are reported in schema order, then unknown names sorted.
    seen: Vec<bool>,
    field_errors: Vec<Option<String>>,
    unknown: Vec<String>,
}

impl<'s> BatchBuilder<'s> {
    pub fn new(schema: &'s [InputField], capacity: usize) -> Self {
        let columns = schema
            .iter()
            .map(|f| match f.kind {
                ColumnType::String => InputColumn::Text(Vec::with_capacity(capacity)),
                _ => InputColumn::Float(Vec::with_capacity(capacity)),
            })
            .collect();
        BatchBuilder {
            schema,
            index: schema
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name.as_str(), i))
                .collect(),
            columns,
            errors: Vec::new(),
            total_errors: 0,
            n_rows: 0,
            seen: vec![false; schema.len()],
            field_errors: vec![None; schema.len()],
            unknown: Vec::new(),
        }
    }

    /// Adds one object row; `fields` are its (name, value) pairs in any order.
    pub fn push_row<'c>(&mut self, fields: impl IntoIterator<Item = (&'c str, Cell<'c>)>) {
        for (name, cell) in fields {
            self.set(name, cell);
        }
        self.end_row();
    }

    /// Adds a row that is not an object: an error naming what it is.
    pub fn push_non_object(&mut self, kind: &str) {
        self.report(FieldError {
            row: Some(self.n_rows),
            field: String::new(),
            message: format!("a row must be a JSON object, got {kind}"),
        });
        self.n_rows += 1;
    }

    /// Counts a problem, keeping the first [`MAX_LISTED_ERRORS`].
    fn report(&mut self, error: FieldError) {
        self.total_errors += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(error);
        }
    }

    fn set(&mut self, name: &str, cell: Cell<'_>) {
        let Some(&i) = self.index.get(name) else {
            self.unknown.push(name.to_string());
            return;
        };
        let (field, column) = (&self.schema[i], &mut self.columns[i]);
        // A repeated field replaces its earlier value.
        if self.seen[i] && self.field_errors[i].take().is_none() {
            match column {
                InputColumn::Float(values) => drop(values.pop()),
                InputColumn::Text(values) => drop(values.pop()),
            }
        }
        self.seen[i] = true;
        let result = match column {
            InputColumn::Float(values) => number_of(field.kind, &cell).map(|v| values.push(v)),
            InputColumn::Text(values) => text_of(cell).map(|v| values.push(v)),
        };
        if let Err(message) = result {
            self.field_errors[i] = Some(message);
        }
    }

    fn end_row(&mut self) {
        let row = Some(self.n_rows);
        for (i, field) in self.schema.iter().enumerate() {
            let message = if !self.seen[i] {
                Some("is required (send null for a missing value)".to_string())
            } else {
                self.field_errors[i].take()
            };
            if let Some(message) = message {
                self.report(FieldError {
                    row,
                    field: field.name.clone(),
                    message,
                });
            }
            self.seen[i] = false;
        }
        self.unknown.sort();
        self.unknown.dedup();
        let unknown = std::mem::take(&mut self.unknown);
        for name in unknown {
            self.report(FieldError {
                row,
                field: name,
                message: "is not an input of this model".into(),
            });
        }
        self.n_rows += 1;
    }

    /// The batch, or every error found. A single row's errors carry no row number.
    pub fn finish(mut self) -> Result<Batch, InputError> {
        if self.errors.is_empty() {
            return Ok(Batch {
                n_rows: self.n_rows,
                columns: self.columns,
            });
        }
        if self.n_rows == 1 {
            for e in &mut self.errors {
                e.row = None;
            }
        }
        Err(InputError {
            errors: self.errors,
            total: self.total_errors,
        })
    }
}

/// Builds a batch from JSON objects. A single row's errors carry no row number.
pub fn rows_to_batch(schema: &[InputField], rows: &[Value]) -> Result<Batch, InputError> {
    let mut builder = BatchBuilder::new(schema, rows.len());
    for row in rows {
        match row {
            Value::Object(object) => {
                builder.push_row(object.iter().map(|(k, v)| (k.as_str(), Cell::from(v))))
            }
            other => builder.push_non_object(Cell::from(other).kind()),
        }
    }
    builder.finish()
}

/// A JSON array of rows read straight from a request body, strings borrowed from it where they
/// have no escapes: a 10,000-row batch costs no tree of maps before it becomes columns.
#[derive(Debug, Default)]
pub struct JsonRows<'a> {
    pub rows: Vec<JsonRow<'a>>,
}

#[derive(Debug)]
pub enum JsonRow<'a> {
    Object(Vec<(Cow<'a, str>, Cell<'a>)>),
    /// Not an object: what it is, for the error.
    Other(&'static str),
}

/// Why a JSON body is not a batch of rows.
#[derive(Debug, thiserror::Error)]
pub enum RowsError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// More than [`MAX_BATCH_ROWS`] rows (found at the next one: the rest is not read).
    #[error("more than {MAX_BATCH_ROWS} rows")]
    TooManyRows,
}

impl<'a> JsonRows<'a> {
    /// The body as an array of rows; `Ok(None)` when it is valid JSON but not an array. An array
    /// is read up to [`MAX_BATCH_ROWS`] rows: its next row is [`RowsError::TooManyRows`], so a
    /// 6 MB body of `{}`s costs 10,001 rows, not two million.
    pub fn parse(body: &'a [u8]) -> Result<Option<JsonRows<'a>>, RowsError> {
        let top: TopLevel<'a> = match serde_json::from_slice(body) {
            Ok(top) => top,
            Err(e) if json_rows::is_too_many(&e) => return Err(RowsError::TooManyRows),
            Err(e) => return Err(e.into()),
        };
        Ok(match top {
            TopLevel::Rows(rows) => Some(JsonRows { rows }),
            TopLevel::Other => None,
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn to_batch(&self, schema: &[InputField]) -> Result<Batch, InputError> {
        let mut builder = BatchBuilder::new(schema, self.rows.len());
        for row in &self.rows {
            match row {
                JsonRow::Object(fields) => builder.push_row(
                    fields
                        .iter()
                        .map(|(name, cell)| (name.as_ref(), cell.clone())),
                ),
                JsonRow::Other(kind) => builder.push_non_object(kind),
            }
        }
        builder.finish()
    }
}

mod json_rows {
    //! serde visitors for [`JsonRows`](super::JsonRows): the body's top level, its rows, their
    //! keys and values. Nested values where a scalar belongs are drained, not kept.
    use super::{Cell, JsonRow, MAX_BATCH_ROWS};
    use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::borrow::Cow;
    use std::fmt;
    use std::marker::PhantomData;

    /// The message of the error that stops a body at its row past the limit.
    const TOO_MANY_ROWS: &str = "plexe: too many rows";

    pub(super) fn is_too_many(e: &serde_json::Error) -> bool {
        e.to_string().starts_with(TOO_MANY_ROWS)
    }

    pub(super) enum TopLevel<'a> {
        Rows(Vec<JsonRow<'a>>),
        Other,
    }

    /// The scalar visits every level shares: each scalar becomes a [`Cell`] mapped by `$on`.
    macro_rules! scalar_visits {
        ($out:ty, $on:expr) => {
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<$out, E> {
                Ok($on(Cell::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<$out, E> {
                Ok($on(Cell::Number(v.into())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<$out, E> {
                Ok($on(Cell::Number(v.into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<$out, E> {
                Ok($on(
                    serde_json::Number::from_f64(v).map_or(Cell::Null, Cell::Number)
                ))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'a str) -> Result<$out, E> {
                Ok($on(Cell::Text(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<$out, E> {
                Ok($on(Cell::Text(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<$out, E> {
                Ok($on(Cell::Null))
            }
        };
    }

    fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    struct TopVisitor<'a>(PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for TopVisitor<'a> {
        type Value = TopLevel<'a>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON array of rows")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_BATCH_ROWS));
            while let Some(row) = seq.next_element::<RowOf<'a>>()? {
                if rows.len() == MAX_BATCH_ROWS {
                    return Err(de::Error::custom(TOO_MANY_ROWS));
                }
                rows.push(row.0);
            }
            Ok(TopLevel::Rows(rows))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            drain_map(map).map(|()| TopLevel::Other)
        }
        scalar_visits!(TopLevel<'a>, |_| TopLevel::Other);
    }

    impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(TopVisitor(PhantomData))
        }
    }

    struct RowOf<'a>(JsonRow<'a>);
    struct RowVisitor<'a>(PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for RowVisitor<'a> {
        type Value = RowOf<'a>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a row object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
            while let Some(key) = map.next_key::<KeyOf<'a>>()? {
                let value = map.next_value::<CellOf<'a>>()?;
                fields.push((key.0, value.0));
            }
            Ok(RowOf(JsonRow::Object(fields)))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq).map(|()| RowOf(JsonRow::Other("an array")))
        }
        scalar_visits!(RowOf<'a>, |c: Cell<'a>| RowOf(JsonRow::Other(c.kind())));
    }

    impl<'de: 'a, 'a> Deserialize<'de> for RowOf<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(RowVisitor(PhantomData))
        }
    }

    struct KeyOf<'a>(Cow<'a, str>);
    struct KeyVisitor<'a>(PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
        type Value = KeyOf<'a>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a field name")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'a str) -> Result<Self::Value, E> {
            Ok(KeyOf(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(KeyOf(Cow::Owned(v.to_string())))
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for KeyOf<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_str(KeyVisitor(PhantomData))
        }
    }

    struct CellOf<'a>(Cell<'a>);
    struct CellVisitor<'a>(PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for CellVisitor<'a> {
        type Value = CellOf<'a>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            drain_map(map).map(|()| CellOf(Cell::Nested("an object")))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq).map(|()| CellOf(Cell::Nested("an array")))
        }
        scalar_visits!(CellOf<'a>, CellOf);
    }

    impl<'de: 'a, 'a> Deserialize<'de> for CellOf<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(CellVisitor(PhantomData))
        }
    }
}
use json_rows::TopLevel;

/// A numeric, boolean or datetime field's value as the model's `f32` input.
fn number_of(kind: ColumnType, value: &Cell<'_>) -> Result<f32, String> {
    field_number(kind, value).map(|v| v as f32)
}

/// A numeric, boolean or datetime field's value before the cast to the model's `f32` input
/// (NaN = missing). Text is read by the same reader as a training file's cells
/// ([`cell::read_field_text`]); JSON booleans and numbers are taken as they are.
pub fn field_number(kind: ColumnType, value: &Cell<'_>) -> Result<f64, String> {
    let expected = match kind {
        ColumnType::Boolean => "a boolean",
        ColumnType::Datetime => "a date-time (ISO 8601 text or epoch seconds)",
        _ => "a number",
    };
    let wrong = || format!("expected {expected}, got {}", value.kind());
    let v = match (kind, value) {
        (_, Cell::Null) => return Ok(f64::NAN),
        (_, Cell::Text(s)) => match cell::read_field_text(kind, s) {
            Some(CellValue::Missing) => return Ok(f64::NAN),
            Some(CellValue::Number(v)) => v,
            // Text values belong to string fields, which are not read here.
            Some(CellValue::Text(_)) | None => {
                return Err(format!("expected {expected}, got the string {s:?}"));
            }
        },
        (ColumnType::Boolean, Cell::Bool(b)) => f64::from(u8::from(*b)),
        // A boolean sent as a number must be 0 or 1; anything else is a mistake, not a value.
        (ColumnType::Boolean, Cell::Number(n)) => match n.as_f64() {
            Some(v) if v == 0.0 || v == 1.0 => v,
            _ => return Err(format!("expected {expected} (or 0/1), got the number {n}")),
        },
        (_, Cell::Number(n)) => n.as_f64().ok_or_else(wrong)?,
        (ColumnType::Integer | ColumnType::Float, Cell::Bool(b)) => f64::from(u8::from(*b)),
        _ => return Err(wrong()),
    };
    if !v.is_finite() {
        return Err("must be a finite number".into());
    }
    Ok(v)
}

/// A string field's value: text as is, numbers and booleans as their text.
fn text_of(value: Cell<'_>) -> Result<String, String> {
    match value {
        Cell::Null => Ok(String::new()),
        Cell::Text(s) => Ok(s.into_owned()),
        Cell::Number(n) => Ok(n.to_string()),
        Cell::Bool(b) => Ok(b.to_string()),
        other => Err(format!("expected a string, got {}", other.kind())),
    }
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
            json!({"age": "inf", "city": "x", "member": false, "joined": 0}),
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
    fn body_rows_read_like_parsed_values() {
        // Escaped strings, numbers as text, nested values, a non-object row and unknown names:
        // reading the body directly gives the batch (or the errors) that `Value`s give.
        let bodies = [
            r#"[{"age": 3, "city": "Nice \"old\" town", "member": "yes", "joined": 0},
                {"age": "4.5", "city": 1.0, "member": 0, "joined": "2024-01-02"}]"#,
            r#"[{"age": "abc", "city": [1, {"a": 2}], "member": true, "joined": null, "zz": 1,
                 "extra": {"x": [1]}}, 7, "row", null, [1],
                {"city": "x", "member": 2, "joined": "yesterday"}]"#,
            r#"[{"age": 1, "city": "a", "member": true, "joined": 1, "age": 2}]"#,
            r#"[{"age": "x", "city": "a", "member": true, "joined": 1, "age": 2}]"#,
            r#"[{"age": 1}]"#,
        ];
        for body in bodies {
            let values: Vec<Value> = serde_json::from_str(body).unwrap();
            let rows = JsonRows::parse(body.as_bytes()).unwrap().unwrap();
            assert_eq!(rows.len(), values.len());
            assert_eq!(
                rows.to_batch(&schema()),
                rows_to_batch(&schema(), &values),
                "{body}"
            );
        }
        // A repeated field keeps its last value.
        let rows = JsonRows::parse(bodies[2].as_bytes()).unwrap().unwrap();
        let batch = rows.to_batch(&schema()).unwrap();
        assert_eq!(batch.columns[0], InputColumn::Float(vec![2.0]));
    }

    #[test]
    fn a_body_that_is_not_an_array_of_rows_is_told_apart() {
        assert!(JsonRows::parse(br#"{"age": 1}"#).unwrap().is_none());
        assert!(JsonRows::parse(b"12").unwrap().is_none());
        assert!(JsonRows::parse(b"[]").unwrap().unwrap().is_empty());
        let Err(RowsError::Json(e)) = JsonRows::parse(b"[{\"age\": 1,}]") else {
            panic!("a syntax error");
        };
        assert_eq!((e.line(), e.is_syntax()), (1, true));
        assert!(JsonRows::parse(b"[{\"age\": 1}] x").is_err());
    }

    #[test]
    fn a_body_stops_at_the_row_past_the_limit_and_errors_are_counted_past_the_list() {
        let rows = |n: usize| format!("[{}]", vec!["{}"; n].join(","));
        let full = rows(MAX_BATCH_ROWS);
        let at_limit = JsonRows::parse(full.as_bytes()).unwrap().unwrap();
        assert_eq!(at_limit.len(), MAX_BATCH_ROWS);
        assert!(matches!(
            JsonRows::parse(rows(MAX_BATCH_ROWS + 1).as_bytes()),
            Err(RowsError::TooManyRows)
        ));
        // 10,000 rows each missing 4 fields and naming 3 unknown ones: 70,000 problems, 100
        // listed, all counted.
        let body = format!(
            "[{}]",
            vec![r#"{"a":1,"b":2,"c":3}"#; MAX_BATCH_ROWS].join(",")
        );
        let e = JsonRows::parse(body.as_bytes())
            .unwrap()
            .unwrap()
            .to_batch(&schema())
            .unwrap_err();
        assert_eq!(e.errors.len(), MAX_LISTED_ERRORS);
        assert_eq!(e.total, MAX_BATCH_ROWS * 7);
    }

    #[test]
    fn text_reads_as_a_training_file_reads_it() {
        let rows = [
            json!({"age": "NA", "city": "NA", "member": "null", "joined": "2024-01-02 00:00:00.5"}),
            json!({"age": " 1e3 ", "city": " x ", "member": "FALSE", "joined": "2024-01-02T01:30+0130"}),
        ];
        let batch = rows_to_batch(&schema(), &rows).unwrap();
        let InputColumn::Float(age) = &batch.columns[0] else {
            panic!("age is numeric")
        };
        assert!(age[0].is_nan());
        assert_eq!(age[1], 1000.0);
        // A string field keeps its text: an unseen category to the model, as missing would be.
        assert_eq!(
            batch.columns[1],
            InputColumn::Text(vec!["NA".into(), " x ".into()])
        );
        let InputColumn::Float(member) = &batch.columns[2] else {
            panic!("member is numeric")
        };
        assert!(member[0].is_nan());
        assert_eq!(member[1], 0.0);
        assert_eq!(
            field_number(
                ColumnType::Datetime,
                &Cell::Text("2024-01-02 00:00:00.5".into())
            ),
            Ok(1_704_153_600.5)
        );
        assert_eq!(
            field_number(
                ColumnType::Datetime,
                &Cell::Text("2024-01-02T01:30+0130".into())
            ),
            Ok(1_704_153_600.0)
        );
    }

    #[test]
    fn a_single_row_has_no_row_number() {
        let err = rows_to_batch(&schema(), &[json!({"age": 1})]).unwrap_err();
        assert!(err.errors.iter().all(|e| e.row.is_none()));
        assert_eq!(err.errors.len(), 3);
    }
}
