//! The in-memory table every later stage works on. Columns are stored compactly: numbers as
//! `f64` with `NaN` for missing, strings dictionary-encoded (one copy of each distinct value),
//! so a table needs a small multiple of its CSV size.

use super::error::{IngestError, MAX_COLUMN_NAME_CHARS};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The type a column was inferred as (SPEC: integer|float|boolean|string|datetime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Integer,
    Float,
    Boolean,
    String,
    Datetime,
}

impl ColumnType {
    /// The SPEC's name of the type (as serialized): `integer`, `float`, `boolean`, `string`,
    /// `datetime`.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Boolean => "boolean",
            ColumnType::String => "string",
            ColumnType::Datetime => "datetime",
        }
    }

    /// Whether the column is held as [`ColumnData::Numeric`].
    pub fn is_numeric_storage(self) -> bool {
        !matches!(self, ColumnType::String)
    }
}

/// Marks a missing value in [`ColumnData::Categorical`] codes.
pub const MISSING_CODE: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Integer, float, boolean (0/1) and datetime (epoch seconds, UTC) columns. `NaN` = missing.
    Numeric(Vec<f64>),
    /// String columns: `codes[i]` indexes `levels`, [`MISSING_CODE`] = missing. `levels` are in
    /// order of first appearance.
    Categorical {
        codes: Vec<u32>,
        levels: Vec<String>,
    },
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical { codes, .. } => codes.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            ColumnData::Numeric(v) => v[row].is_nan(),
            ColumnData::Categorical { codes, .. } => codes[row] == MISSING_CODE,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnType,
    pub data: ColumnData,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub n_rows: usize,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The rows at `indices`, in that order (used for train/holdout splits).
    pub fn take_rows(&self, indices: &[usize]) -> Table {
        let columns = self
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                kind: c.kind,
                data: match &c.data {
                    ColumnData::Numeric(v) => {
                        ColumnData::Numeric(indices.iter().map(|&i| v[i]).collect())
                    }
                    ColumnData::Categorical { codes, levels } => ColumnData::Categorical {
                        codes: indices.iter().map(|&i| codes[i]).collect(),
                        levels: levels.clone(),
                    },
                },
            })
            .collect();
        Table {
            columns,
            n_rows: indices.len(),
        }
    }
}

/// The column names of a table as a reader meets them: each must be non-blank and new. Both
/// readers refuse a file the same way through this.
#[derive(Debug, Default)]
pub struct ColumnNames {
    /// Name → its 1-based column.
    seen: HashMap<String, usize>,
}

impl ColumnNames {
    /// Takes the name of the next column (`column` is 1-based).
    pub fn add(&mut self, column: usize, name: &str) -> Result<(), IngestError> {
        if name.trim().is_empty() {
            return Err(IngestError::EmptyColumnName { column });
        }
        let chars = name.chars().count();
        if chars > MAX_COLUMN_NAME_CHARS {
            return Err(IngestError::ColumnNameTooLong {
                column,
                chars,
                limit: MAX_COLUMN_NAME_CHARS,
            });
        }
        if let Some(&first) = self.seen.get(name) {
            return Err(IngestError::DuplicateColumnName {
                name: name.to_owned(),
                first,
                second: column,
            });
        }
        self.seen.insert(name.to_owned(), column);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_the_serialized_names() {
        for kind in [
            ColumnType::Integer,
            ColumnType::Float,
            ColumnType::Boolean,
            ColumnType::String,
            ColumnType::Datetime,
        ] {
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::Value::from(kind.name()))
            );
        }
    }

    #[test]
    fn column_names_must_be_present_and_new() {
        let mut names = ColumnNames::default();
        assert!(names.add(1, "a").is_ok());
        assert!(names.add(4, &"n".repeat(MAX_COLUMN_NAME_CHARS)).is_ok());
        assert!(matches!(
            names.add(5, &"n".repeat(MAX_COLUMN_NAME_CHARS + 1)),
            Err(IngestError::ColumnNameTooLong { column: 5, .. })
        ));
        assert!(matches!(
            names.add(2, " "),
            Err(IngestError::EmptyColumnName { column: 2 })
        ));
        assert!(matches!(
            names.add(3, "a"),
            Err(IngestError::DuplicateColumnName {
                first: 1,
                second: 3,
                ..
            })
        ));
    }
}
