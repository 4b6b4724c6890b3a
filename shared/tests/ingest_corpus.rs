//! Broken and awkward files → the exact typed error (with line/column), never a panic; a
//! Parquet round trip over every supported Arrow type.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Date64Array, Decimal128Array, DictionaryArray,
    Float32Array, Float64Array, Int8Array, Int64Array, LargeStringArray, ListArray, RecordBatch,
    StringArray, TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
    UInt64Array,
};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use serde_json::json;
use shared::ingest::{
    ColumnData, ColumnType, DataFormat, FormatHints, IngestError, MAX_CELLS, MAX_COLUMNS,
    MAX_FIELD_BYTES, Table, detect_format, preview_rows, profile, read_csv, read_csv_path,
    read_parquet, read_parquet_path,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ingest")
        .join(name)
}

fn csv_fixture(name: &str) -> Result<Table, IngestError> {
    read_csv_path(&fixture(name))
}

fn csv_bytes(bytes: &[u8]) -> Result<Table, IngestError> {
    read_csv(Cursor::new(bytes))
}

fn levels(t: &Table, column: &str) -> Vec<String> {
    match &t.column(column).expect("column exists").data {
        ColumnData::Categorical { levels, .. } => levels.clone(),
        ColumnData::Numeric(_) => panic!("{column} is not a string column"),
    }
}

#[test]
fn bom_crlf_and_quoted_fields_parse() {
    let t = csv_fixture("bom_crlf_quoted.csv").expect("valid file");
    let names: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["id", "name", "score", "joined"],
        "BOM is not part of the first name"
    );
    assert_eq!(t.n_rows, 3);
    let kinds: Vec<_> = t.columns.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ColumnType::Integer,
            ColumnType::String,
            ColumnType::Float,
            ColumnType::Datetime
        ]
    );
    assert_eq!(
        levels(&t, "name"),
        ["Smith, Ann", "Bob", "Multi\r\nline \"quoted\""]
    );
    let rows = preview_rows(&t, 10);
    assert_eq!(rows[0]["score"], json!(3.5));
    assert_eq!(rows[1]["score"], json!(null));
    assert_eq!(rows[2]["score"], json!(null));
    assert_eq!(rows[0]["joined"], json!("2024-01-05T00:00:00Z"));
    assert_eq!(
        rows[1]["joined"],
        json!("2024-02-01T07:30:00Z"),
        "offset converted to UTC"
    );
    assert_eq!(rows[2]["joined"], json!("2024-03-10T12:00:00Z"));
}

#[test]
fn structural_errors_name_line_and_column() {
    assert!(matches!(
        csv_fixture("empty.csv"),
        Err(IngestError::EmptyFile)
    ));
    assert!(matches!(
        csv_fixture("blank_lines_only.csv"),
        Err(IngestError::EmptyFile)
    ));
    assert!(matches!(
        csv_fixture("header_only.csv"),
        Err(IngestError::HeaderOnly)
    ));
    assert!(matches!(
        csv_fixture("ragged_row.csv"),
        Err(IngestError::RaggedRow {
            line: 4,
            expected: 3,
            found: 2
        })
    ));
    assert!(matches!(
        csv_fixture("duplicate_column.csv"),
        Err(IngestError::DuplicateColumnName { ref name, first: 1, second: 3 }) if name == "a"
    ));
    assert!(matches!(
        csv_fixture("empty_column_name.csv"),
        Err(IngestError::EmptyColumnName { column: 2 })
    ));
    assert!(matches!(
        csv_fixture("not_utf8.csv"),
        Err(IngestError::NotUtf8 { line: 3, column: 1 })
    ));
}

#[test]
fn error_messages_say_where_and_what_to_do() {
    let msg = csv_fixture("ragged_row.csv").unwrap_err().to_string();
    assert!(
        msg.contains("line 4") && msg.contains("2 fields") && msg.contains("3"),
        "{msg}"
    );
    let msg = csv_fixture("not_utf8.csv").unwrap_err().to_string();
    assert!(
        msg.contains("line 3, column 1") && msg.contains("UTF-8"),
        "{msg}"
    );
}

#[test]
fn columns_with_stray_values_stay_text_without_losing_any() {
    let t = csv_fixture("mixed_columns.csv").expect("valid file");
    assert!(
        t.columns.iter().all(|c| c.kind == ColumnType::String),
        "{:?}",
        t.columns
    );
    assert_eq!(levels(&t, "code"), ["1", "2", "3", "12345678901234567890"]);
    assert_eq!(levels(&t, "amount"), ["10", "oops", "12", "1e3"]);
    assert_eq!(levels(&t, "flag"), ["true", "FALSE", "yes", "True"]);
    assert_eq!(
        levels(&t, "when"),
        ["2020-01-01", "2020-13-01", "2020-01-03"]
    );
    assert!(t.column("when").unwrap().data.is_missing(2));
}

#[test]
fn size_limits() {
    let header: Vec<String> = (0..=MAX_COLUMNS).map(|i| format!("c{i}")).collect();
    let wide = format!(
        "{}\n{}\n",
        header.join(","),
        vec!["1"; MAX_COLUMNS + 1].join(",")
    );
    assert!(matches!(
        csv_bytes(wide.as_bytes()),
        Err(IngestError::TooManyColumns { found, limit: MAX_COLUMNS }) if found == MAX_COLUMNS + 1
    ));

    let long = format!("a,b\n1,2\n3,{}\n", "x".repeat(MAX_FIELD_BYTES + 1));
    assert!(matches!(
        csv_bytes(long.as_bytes()),
        Err(IngestError::FieldTooLong {
            line: 3,
            column: 2,
            ..
        })
    ));

    // An unclosed quote swallows the rest of the file into one field.
    let mut unclosed = b"a,b\n1,\"never closed\n".to_vec();
    unclosed.extend(b"2,3\n".repeat(MAX_FIELD_BYTES / 4 + 1));
    assert!(matches!(
        csv_bytes(&unclosed),
        Err(IngestError::FieldTooLong {
            line: 2,
            column: 2,
            ..
        })
    ));
}

#[test]
fn csv_renamed_as_parquet_is_refused() {
    let path = fixture("csv_renamed.parquet");
    let head = std::fs::read(&path).unwrap();
    let hints = FormatHints {
        file_name: Some("csv_renamed.parquet"),
        ..Default::default()
    };
    assert_eq!(detect_format(hints, &head).unwrap(), DataFormat::Parquet);
    assert!(matches!(
        read_parquet_path(&path),
        Err(IngestError::NotParquet)
    ));
    let sniffed = FormatHints {
        content_type: Some("application/octet-stream"),
        ..Default::default()
    };
    assert!(matches!(
        detect_format(sniffed, &head),
        Err(IngestError::UnsupportedFormat { .. })
    ));
}

fn write_parquet(columns: Vec<(&str, ArrayRef)>) -> Vec<u8> {
    let batch = RecordBatch::try_from_iter(columns).expect("valid batch");
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    out
}

fn all_types_parquet() -> Vec<u8> {
    let dict: DictionaryArray<Int32Type> =
        vec![Some("red"), None, Some("red")].into_iter().collect();
    write_parquet(vec![
        (
            "i8",
            Arc::new(Int8Array::from(vec![Some(-3), None, Some(5)])) as ArrayRef,
        ),
        (
            "i64",
            Arc::new(Int64Array::from(vec![Some(1_i64 << 53), Some(0), None])),
        ),
        (
            "u64",
            Arc::new(UInt64Array::from(vec![Some(7_u64), None, Some(9)])),
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![Some(0.5_f32), None, Some(-1.25)])),
        ),
        (
            "f64",
            Arc::new(Float64Array::from(vec![Some(f64::NAN), Some(2.5), None])),
        ),
        (
            "dec",
            Arc::new(
                Decimal128Array::from(vec![Some(12_345_i128), None, Some(-5)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ),
        (
            "s",
            Arc::new(StringArray::from(vec![Some("a"), None, Some("b")])),
        ),
        (
            "ls",
            Arc::new(LargeStringArray::from(vec![None, Some("x"), Some("x")])),
        ),
        ("dict", Arc::new(dict)),
        (
            "d32",
            Arc::new(Date32Array::from(vec![Some(1), None, Some(19_782)])),
        ),
        (
            "d64",
            Arc::new(Date64Array::from(vec![Some(86_400_000), None, None])),
        ),
        (
            "ts_ms_utc",
            Arc::new(
                TimestampMillisecondArray::from(vec![Some(1_500), None, Some(0)])
                    .with_timezone("UTC"),
            ),
        ),
        (
            "ts_ns",
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(2_000_000_000),
                None,
                None,
            ])),
        ),
        (
            "ts_s_tz",
            Arc::new(
                TimestampSecondArray::from(vec![Some(60), None, None]).with_timezone("+02:00"),
            ),
        ),
    ])
}

#[test]
fn parquet_round_trip_of_every_supported_type() {
    let t = read_parquet(Bytes::from(all_types_parquet())).expect("readable");
    assert_eq!(t.n_rows, 3);
    let kinds: Vec<_> = t
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.kind))
        .collect();
    use ColumnType::*;
    assert_eq!(
        kinds,
        [
            ("i8", Integer),
            ("i64", Integer),
            ("u64", Integer),
            ("f32", Float),
            ("f64", Float),
            ("dec", Float),
            ("flag", Boolean),
            ("s", String),
            ("ls", String),
            ("dict", String),
            ("d32", Datetime),
            ("d64", Datetime),
            ("ts_ms_utc", Datetime),
            ("ts_ns", Datetime),
            ("ts_s_tz", Datetime),
        ]
    );
    let rows: Vec<serde_json::Value> = preview_rows(&t, 3)
        .into_iter()
        .map(serde_json::Value::Object)
        .collect();
    assert_eq!(
        rows,
        vec![
            json!({"i8": -3, "i64": 9_007_199_254_740_992_i64, "u64": 7, "f32": 0.5, "f64": null, "dec": 123.45,
                   "flag": true, "s": "a", "ls": null, "dict": "red", "d32": "1970-01-02T00:00:00Z",
                   "d64": "1970-01-02T00:00:00Z", "ts_ms_utc": "1970-01-01T00:00:01.500Z",
                   "ts_ns": "1970-01-01T00:00:02Z", "ts_s_tz": "1970-01-01T00:01:00Z"}),
            json!({"i8": null, "i64": 0, "u64": null, "f32": null, "f64": 2.5, "dec": null,
                   "flag": false, "s": null, "ls": "x", "dict": null, "d32": null,
                   "d64": null, "ts_ms_utc": null, "ts_ns": null, "ts_s_tz": null}),
            json!({"i8": 5, "i64": null, "u64": 9, "f32": -1.25, "f64": null, "dec": -0.05,
                   "flag": null, "s": "b", "ls": "x", "dict": "red", "d32": "2024-02-29T00:00:00Z",
                   "d64": null, "ts_ms_utc": "1970-01-01T00:00:00Z", "ts_ns": null, "ts_s_tz": null}),
        ]
    );
    let p = profile(&t);
    let dict = p.iter().find(|c| c.name == "dict").unwrap();
    assert_eq!((dict.missing, dict.unique), (1, 1));
}

#[test]
fn parquet_integers_beyond_f64_precision_stay_exact_as_text() {
    let bytes = write_parquet(vec![(
        "id",
        Arc::new(Int64Array::from(vec![Some(1), Some(i64::MAX), None])) as ArrayRef,
    )]);
    let t = read_parquet(Bytes::from(bytes)).expect("readable");
    assert_eq!(t.columns[0].kind, ColumnType::String);
    assert_eq!(levels(&t, "id"), ["1", "9223372036854775807"]);
}

#[test]
fn parquet_errors() {
    let good = all_types_parquet();
    let truncated = Bytes::from(good[..good.len() / 2].to_vec());
    assert!(matches!(
        read_parquet(truncated),
        Err(IngestError::CorruptParquet { .. })
    ));

    // Magic at both ends, garbage between.
    let mut garbage = b"PAR1".to_vec();
    garbage.extend((0..200u8).map(|i| i.wrapping_mul(37)));
    garbage.extend(b"PAR1");
    assert!(matches!(
        read_parquet(Bytes::from(garbage)),
        Err(IngestError::CorruptParquet { .. })
    ));

    // Every single-byte corruption of the footer region is an error or a table, never a panic.
    for i in good.len().saturating_sub(300)..good.len() - 4 {
        let mut bad = good.clone();
        bad[i] ^= 0xA5;
        let _ = read_parquet(Bytes::from(bad));
    }

    let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)]), None]);
    let bytes = write_parquet(vec![
        ("ok", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        ("tags", Arc::new(list) as ArrayRef),
    ]);
    assert!(matches!(
        read_parquet(Bytes::from(bytes)),
        Err(IngestError::UnsupportedParquetType { ref column, .. }) if column == "tags"
    ));

    let inf = write_parquet(vec![(
        "x",
        Arc::new(Float64Array::from(vec![1.0, f64::INFINITY])) as ArrayRef,
    )]);
    assert!(matches!(
        read_parquet(Bytes::from(inf)),
        Err(IngestError::NonFiniteValue { ref column, row: 2 }) if column == "x"
    ));

    let empty = write_parquet(vec![(
        "x",
        Arc::new(Float64Array::from(Vec::<f64>::new())) as ArrayRef,
    )]);
    assert!(matches!(
        read_parquet(Bytes::from(empty)),
        Err(IngestError::HeaderOnly)
    ));
}

#[test]
fn tables_past_the_cell_budget_are_refused_before_they_are_held() {
    // Parquet: two all-null columns of 20,000,001 rows each, a file of a few KB whose footer
    // declares 40,000,002 cells. Refused from the footer, before a row is decoded.
    let rows = MAX_CELLS / 2 + 1;
    let nulls = || arrow_array::new_null_array(&arrow_schema::DataType::Int32, rows);
    let bytes = write_parquet(vec![("a", nulls()), ("b", nulls())]);
    assert!(bytes.len() < 1 << 20, "{} bytes", bytes.len());
    assert!(matches!(
        read_parquet(Bytes::from(bytes)),
        Err(IngestError::TooManyCells { cells, limit: MAX_CELLS }) if cells == 2 * rows
    ));

    // CSV: 2,000 empty columns × 20,001 rows, refused while streaming.
    let columns = 2_000;
    let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
    let mut csv = header.join(",").into_bytes();
    csv.push(b'\n');
    let row = format!("{}\n", ",".repeat(columns - 1));
    csv.extend(row.as_bytes().repeat(MAX_CELLS / columns + 1));
    let e = csv_bytes(&csv).unwrap_err();
    assert!(
        matches!(
            e,
            IngestError::TooManyCells {
                limit: MAX_CELLS,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("drop columns"), "{e}");

    // Under the budget, a table.
    let at = write_parquet(vec![(
        "a",
        Arc::new(Int64Array::from_iter_values(0..1_000)) as ArrayRef,
    )]);
    assert_eq!(read_parquet(Bytes::from(at)).unwrap().n_rows, 1_000);
}
