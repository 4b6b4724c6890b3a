//! The in-memory table every later stage works on. Columns are stored compactly: numbers as
//! `f64` with `NaN` for missing, strings dictionary-encoded (one copy of each distinct value),
//! so a table needs a small multiple of its CSV size.

use serde::{Deserialize, Serialize};

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
