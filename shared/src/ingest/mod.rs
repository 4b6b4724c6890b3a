//! Data ingestion: CSV or Parquet bytes → a typed [`Table`] plus a per-column profile.

pub mod table;

pub use table::{Column, ColumnData, ColumnType, Table};
