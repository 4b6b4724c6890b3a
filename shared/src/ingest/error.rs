//! Everything that can go wrong turning an upload into a [`Table`](super::Table). Messages are
//! shown to API users (in a 422, or a 415 for [`IngestError::UnsupportedFormat`]), so each one
//! names the line and/or column and says what to do about it. Lines are 1-based and count the
//! header as line 1; columns are 1-based positions or names.

/// Most columns a dataset may have.
pub const MAX_COLUMNS: usize = 2_000;
/// Longest column name in characters (names go into schemas, profiles and model records).
pub const MAX_COLUMN_NAME_CHARS: usize = 256;
/// Longest single field (or column name) in bytes.
pub const MAX_FIELD_BYTES: usize = 1 << 20;
/// Most cells (rows × columns) a dataset may have: what a parsed table holds in memory grows
/// with it (about 8 bytes a cell), so a file small on disk (a few MB of Parquet can declare
/// billions of cells, a CSV of one-character fields half a cell per byte) cannot make the
/// server hold more than this.
pub const MAX_CELLS: usize = 40_000_000;
/// Most data rows: string codes are `u32` with `u32::MAX` reserved for "missing".
pub const MAX_ROWS: usize = (u32::MAX - 1) as usize;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the file is empty: upload a CSV with a header row and at least one data row")]
    EmptyFile,

    #[error("the file has column names but no data rows: add at least one row below the header")]
    HeaderOnly,

    #[error(
        "column name {name:?} appears twice (columns {first} and {second}): give every column a unique name"
    )]
    DuplicateColumnName {
        name: String,
        first: usize,
        second: usize,
    },

    #[error("column {column} has an empty name: give every column a name in the header")]
    EmptyColumnName { column: usize },

    #[error(
        "column {column}'s name has {chars} characters; at most {limit} are supported: shorten it"
    )]
    ColumnNameTooLong {
        column: usize,
        chars: usize,
        limit: usize,
    },

    #[error(
        "line {line} has {found} fields but the header has {expected}: every row needs exactly one \
         value per column (quote values that contain commas or line breaks)"
    )]
    RaggedRow {
        line: u64,
        expected: usize,
        found: usize,
    },

    #[error(
        "line {line}, column {column} is not valid UTF-8 text: save the file as UTF-8 and upload it again"
    )]
    NotUtf8 { line: u64, column: usize },

    #[error(
        "the file is not a Parquet file (no PAR1 header and footer): upload a Parquet file or send it as CSV"
    )]
    NotParquet,

    #[error(
        "the Parquet file is corrupt or truncated ({reason}): write it again and upload the complete file"
    )]
    CorruptParquet { reason: String },

    #[error(
        "the file has {found} columns; at most {limit} are supported: drop columns you do not need"
    )]
    TooManyColumns { found: usize, limit: usize },

    #[error(
        "line {line}, column {column} holds a value longer than {limit} bytes: shorten it, or check \
         for an unclosed quote that swallowed the rest of the file"
    )]
    FieldTooLong {
        line: u64,
        column: usize,
        limit: usize,
    },

    #[error("the file has more than {limit} rows: split it or sample it")]
    TooManyRows { limit: usize },

    #[error(
        "column {column:?} has Parquet/Arrow type {data_type}, which is not supported: use integers, \
         floats, decimals, booleans, strings, dates or timestamps"
    )]
    UnsupportedParquetType { column: String, data_type: String },

    #[error(
        "column {column:?} holds an infinite value at row {row}: replace infinities with a finite \
         number or leave the value empty"
    )]
    NonFiniteValue { column: String, row: usize },

    #[error(
        "{reason}: send text/csv or application/vnd.apache.parquet, or add ?format=csv|parquet"
    )]
    UnsupportedFormat { reason: String },

    #[error(
        "the file has at least {cells} cells (rows × columns); at most {limit} are supported: \
         drop columns you do not need or sample the rows"
    )]
    TooManyCells { cells: usize, limit: usize },

    #[error(
        "the record starting on line {line} runs past {limit} bytes: look for a quote (\") \
         that is opened and never closed, or split the row"
    )]
    RecordTooLong { line: u64, limit: usize },

    #[error("could not read the upload ({0}): try uploading it again")]
    Io(#[from] std::io::Error),
}
