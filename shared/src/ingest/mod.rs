//! Data ingestion: CSV or Parquet bytes → a typed [`Table`] plus a per-column profile.
//!
//! - [`read_csv`] / [`read_parquet`] (and `_path` variants) build the table, streaming;
//! - [`profile`] summarises each column, [`preview_rows`] renders rows as JSON;
//! - [`detect_format`] picks the reader for an upload;
//! - [`cell`] is the one reader of a cell's text (types, missing markers, number and date forms),
//!   which serving also reads request fields with; [`calendar`] the date arithmetic every part
//!   of the crate shares;
//! - every failure is an [`IngestError`] naming the line/column and what to do.
//!
//! This module uses only external crates and `crate::ingest::…` paths, so the fuzz crate
//! (shared/fuzz) can compile it on its own without the rest of `shared`.

pub mod calendar;
pub mod cell;
pub mod column_builder;
pub mod csv_reader;
pub mod error;
pub mod format;
pub mod parquet_reader;
pub mod preview;
pub mod profile;
pub mod table;

pub use csv_reader::{read_csv, read_csv_path};
pub use error::{IngestError, MAX_CELLS, MAX_COLUMN_NAME_CHARS, MAX_COLUMNS, MAX_FIELD_BYTES};
pub use format::{DataFormat, FormatHints, detect_format};
pub use parquet_reader::{read_parquet, read_parquet_path};
pub use preview::preview_rows;
pub use profile::{ColumnProfile, Scalar, ValueCount, profile};
pub use table::{Column, ColumnData, ColumnType, Table};
