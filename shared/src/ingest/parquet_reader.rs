//! Parquet → [`Table`] with the `parquet` crate's Arrow reader, one record batch at a time (only
//! the current batch and the growing compact columns are in memory).
//!
//! Type mapping: signed/unsigned integers → integer (a column holding a value beyond ±2^53
//! becomes a string column so no digit is lost); float16/32/64 → float (NaN = missing, an
//! infinity is an error); decimals → float; boolean → boolean; utf8, large utf8, utf8 view and
//! dictionaries of those → string; date32/date64 and timestamps of any unit → datetime (epoch
//! seconds UTC; Arrow stores zoned timestamps as UTC already, unzoned ones are taken as UTC);
//! the all-null `Null` type → an all-missing string column. Anything else (lists, structs,
//! binary, times of day, durations, intervals, …) is refused with the column's name.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type,
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType, StringViewArray};
use arrow_schema::{DataType, Field, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;

use super::column_builder::ColumnBuilder;
use super::error::{IngestError, MAX_CELLS, MAX_COLUMNS, MAX_ROWS};
use super::table::{ColumnNames, ColumnType, Table};

const BATCH_ROWS: usize = 8192;

/// Refuses a table of more than [`MAX_CELLS`] cells.
fn check_cells(rows: usize, columns: usize) -> Result<(), IngestError> {
    let cells = rows.saturating_mul(columns);
    if cells > MAX_CELLS {
        return Err(IngestError::TooManyCells {
            cells,
            limit: MAX_CELLS,
        });
    }
    Ok(())
}

/// Most rows reserved up front from the footer's row count: the footer is untrusted (a
/// 100-byte file can claim billions of rows), so beyond this the columns grow as rows arrive.
const MAX_RESERVED_ROWS: usize = 1 << 20;
const MAGIC: &[u8] = b"PAR1";

/// Read a Parquet file from disk.
pub fn read_parquet_path(path: &Path) -> Result<Table, IngestError> {
    read_parquet(File::open(path)?)
}

/// Read Parquet from any [`ChunkReader`]: a `File`, or `bytes::Bytes` for an in-memory upload.
pub fn read_parquet<R: ChunkReader + 'static>(source: R) -> Result<Table, IngestError> {
    check_magic(&source)?;
    // The decoder works on untrusted bytes; a panic deep inside it must become a 422 for this
    // upload, not take down the process serving everyone else.
    catch_unwind(AssertUnwindSafe(|| decode(source))).unwrap_or_else(|_| {
        Err(IngestError::CorruptParquet {
            reason: "the decoder could not make sense of its contents".into(),
        })
    })
}

fn check_magic<R: ChunkReader>(source: &R) -> Result<(), IngestError> {
    let len = source.len();
    let head = if len >= 4 {
        source.get_bytes(0, 4).ok()
    } else {
        None
    };
    if head.as_deref() != Some(MAGIC) {
        return Err(IngestError::NotParquet);
    }
    let tail = if len >= 12 {
        source.get_bytes(len - 4, 4).ok()
    } else {
        None
    };
    if tail.as_deref() != Some(MAGIC) {
        return Err(IngestError::CorruptParquet {
            reason: "the file ends before its footer: it looks truncated".into(),
        });
    }
    Ok(())
}

fn corrupt(e: impl std::fmt::Display) -> IngestError {
    IngestError::CorruptParquet {
        reason: e.to_string(),
    }
}

fn decode<R: ChunkReader + 'static>(source: R) -> Result<Table, IngestError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(source).map_err(corrupt)?;
    let schema = builder.schema().clone();
    let fields = schema.fields();
    if fields.is_empty() {
        return Err(IngestError::EmptyFile);
    }
    if fields.len() > MAX_COLUMNS {
        return Err(IngestError::TooManyColumns {
            found: fields.len(),
            limit: MAX_COLUMNS,
        });
    }
    check_names(fields.iter().map(|f| f.name().as_str()))?;
    let kinds = fields
        .iter()
        .map(|f| column_type(f))
        .collect::<Result<Vec<_>, _>>()?;
    let total_rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    if total_rows > MAX_ROWS {
        return Err(IngestError::TooManyRows { limit: MAX_ROWS });
    }
    // The footer's own count, before anything is read; the row groups are counted again as
    // they arrive, in case the footer understates them.
    check_cells(total_rows, fields.len())?;
    let reserve = total_rows.min(MAX_RESERVED_ROWS);
    let mut columns: Vec<ColumnBuilder> = kinds
        .iter()
        .map(|&k| ColumnBuilder::new(k, reserve))
        .collect();
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(corrupt)?;
    let mut rows = 0usize;
    for batch in reader {
        let batch = batch.map_err(corrupt)?;
        for ((builder, field), array) in columns.iter_mut().zip(fields.iter()).zip(batch.columns())
        {
            append(builder, field, array.as_ref(), rows)?;
        }
        rows += batch.num_rows();
        if rows > MAX_ROWS {
            return Err(IngestError::TooManyRows { limit: MAX_ROWS });
        }
        check_cells(rows, fields.len())?;
    }
    if rows == 0 {
        return Err(IngestError::HeaderOnly);
    }
    if columns.iter().any(|c| c.len() != rows) {
        return Err(corrupt("columns have different lengths"));
    }
    let columns = columns
        .into_iter()
        .zip(fields.iter())
        .map(|(b, f)| b.finish(f.name().clone()))
        .collect();
    Ok(Table {
        columns,
        n_rows: rows,
    })
}

fn check_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), IngestError> {
    let mut seen = ColumnNames::default();
    for (i, name) in names.enumerate() {
        seen.add(i + 1, name)?;
    }
    Ok(())
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn column_type(field: &Field) -> Result<ColumnType, IngestError> {
    use DataType::*;
    Ok(match field.data_type() {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => ColumnType::Integer,
        Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..)
        | Decimal256(..) => ColumnType::Float,
        Boolean => ColumnType::Boolean,
        Date32 | Date64 | Timestamp(..) => ColumnType::Datetime,
        Null => ColumnType::String,
        t if is_text(t) => ColumnType::String,
        Dictionary(_, values) if is_text(values) => ColumnType::String,
        other => {
            return Err(IngestError::UnsupportedParquetType {
                column: field.name().clone(),
                data_type: other.to_string(),
            });
        }
    })
}

/// Append one batch's array for a column. `first_row` (rows before this batch) places errors.
fn append(
    builder: &mut ColumnBuilder,
    field: &Field,
    array: &dyn Array,
    first_row: usize,
) -> Result<(), IngestError> {
    use DataType::*;
    let fits = match field.data_type() {
        Int8 => integers::<Int8Type>(builder, array, |v| v.into()),
        Int16 => integers::<Int16Type>(builder, array, |v| v.into()),
        Int32 => integers::<Int32Type>(builder, array, |v| v.into()),
        Int64 => integers::<Int64Type>(builder, array, |v| v.into()),
        UInt8 => integers::<UInt8Type>(builder, array, |v| v.into()),
        UInt16 => integers::<UInt16Type>(builder, array, |v| v.into()),
        UInt32 => integers::<UInt32Type>(builder, array, |v| v.into()),
        UInt64 => integers::<UInt64Type>(builder, array, |v| v.into()),
        Float16 => return floats::<Float16Type>(builder, array, |v| v.to_f64(), field, first_row),
        Float32 => return floats::<Float32Type>(builder, array, f64::from, field, first_row),
        Float64 => return floats::<Float64Type>(builder, array, |v| v, field, first_row),
        Decimal32(_, scale) => numbers::<Decimal32Type>(builder, array, |v| {
            f64::from(v) / 10f64.powi((*scale).into())
        }),
        Decimal64(_, scale) => {
            numbers::<Decimal64Type>(builder, array, |v| v as f64 / 10f64.powi((*scale).into()))
        }
        Decimal128(_, scale) => {
            numbers::<Decimal128Type>(builder, array, |v| v as f64 / 10f64.powi((*scale).into()))
        }
        Decimal256(_, scale) => numbers::<Decimal256Type>(builder, array, |v| {
            v.to_string().parse::<f64>().unwrap_or(f64::NAN) / 10f64.powi((*scale).into())
        }),
        Date32 => numbers::<Date32Type>(builder, array, |d| f64::from(d) * 86_400.0),
        Date64 => numbers::<Date64Type>(builder, array, |ms| ms as f64 / 1e3),
        Timestamp(TimeUnit::Second, _) => {
            numbers::<TimestampSecondType>(builder, array, |s| s as f64)
        }
        Timestamp(TimeUnit::Millisecond, _) => {
            numbers::<TimestampMillisecondType>(builder, array, |v| v as f64 / 1e3)
        }
        Timestamp(TimeUnit::Microsecond, _) => {
            numbers::<TimestampMicrosecondType>(builder, array, |v| v as f64 / 1e6)
        }
        Timestamp(TimeUnit::Nanosecond, _) => {
            numbers::<TimestampNanosecondType>(builder, array, |v| v as f64 / 1e9)
        }
        Boolean => array.as_boolean_opt().map(|a| {
            a.iter().for_each(|v| {
                builder.push_number(v.map_or(f64::NAN, |b| if b { 1.0 } else { 0.0 }))
            });
        }),
        Null => {
            (0..array.len()).for_each(|_| builder.push_text(None));
            Some(())
        }
        Dictionary(..) => dictionary(builder, array),
        _ => texts(array).map(|texts| texts.into_iter().for_each(|v| builder.push_text(v))),
    };
    fits.ok_or_else(|| {
        corrupt(format!(
            "column {:?} does not hold the type its schema declares",
            field.name()
        ))
    })
}

fn dictionary(builder: &mut ColumnBuilder, array: &dyn Array) -> Option<()> {
    let dict = array.as_any_dictionary_opt()?;
    let values = dict.values();
    if values.is_empty() {
        // No values to point at: every key is null (`normalized_keys` would panic).
        (0..array.len()).for_each(|_| builder.push_text(None));
        return Some(());
    }
    let texts = texts(values.as_ref())?;
    for (row, key) in dict.normalized_keys().into_iter().enumerate() {
        let value = if dict.keys().is_null(row) {
            None
        } else {
            texts.get(key).copied().flatten()
        };
        builder.push_text(value);
    }
    Some(())
}

fn numbers<T: ArrowPrimitiveType>(
    builder: &mut ColumnBuilder,
    array: &dyn Array,
    convert: impl Fn(T::Native) -> f64,
) -> Option<()> {
    let a = array.as_primitive_opt::<T>()?;
    a.iter()
        .for_each(|v| builder.push_number(v.map_or(f64::NAN, &convert)));
    Some(())
}

fn integers<T: ArrowPrimitiveType>(
    builder: &mut ColumnBuilder,
    array: &dyn Array,
    widen: impl Fn(T::Native) -> i128,
) -> Option<()> {
    let a = array.as_primitive_opt::<T>()?;
    a.iter().for_each(|v| builder.push_integer(v.map(&widen)));
    Some(())
}

/// Floats keep NaN as missing; an infinity is refused rather than silently dropped or passed on
/// to training, which cannot use it.
fn floats<T: ArrowPrimitiveType>(
    builder: &mut ColumnBuilder,
    array: &dyn Array,
    convert: impl Fn(T::Native) -> f64,
    field: &Field,
    first_row: usize,
) -> Result<(), IngestError> {
    let a = array.as_primitive_opt::<T>().ok_or_else(|| {
        corrupt(format!(
            "column {:?} does not hold the type its schema declares",
            field.name()
        ))
    })?;
    for (row, v) in a.iter().enumerate() {
        let x = v.map_or(f64::NAN, &convert);
        if x.is_infinite() {
            return Err(IngestError::NonFiniteValue {
                column: field.name().clone(),
                row: first_row + row + 1,
            });
        }
        builder.push_number(x);
    }
    Ok(())
}

/// The values of a utf8 / large utf8 / utf8 view array.
fn texts(array: &dyn Array) -> Option<Vec<Option<&str>>> {
    if let Some(a) = array.as_string_opt::<i32>() {
        return Some(a.iter().collect());
    }
    if let Some(a) = array.as_string_opt::<i64>() {
        return Some(a.iter().collect());
    }
    array
        .as_any()
        .downcast_ref::<StringViewArray>()
        .map(|a| a.iter().collect())
}
