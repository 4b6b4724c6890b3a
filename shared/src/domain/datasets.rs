//! Datasets: an uploaded CSV or Parquet file, parsed and profiled once at upload, kept as the
//! original bytes in the blob store plus a record with its profile.
//!
//! Store layout (all in the owner's partition, so every lookup is scoped to the caller's
//! account): `ACCT#<account_id>` / `DATASET#<dataset_id>` holds the [`Dataset`] record. Dataset
//! ids are ULIDs, so the sort key orders datasets by creation time.
//!
//! Blob layout: `datasets/<account_id>/<dataset_id>/data.<csv|parquet>` (the file as uploaded),
//! `…/preview.json` (the first rows, so a preview never re-reads a large file) and, only when a
//! very wide dataset's profile would not fit in a store item (DynamoDB stops at 400 KB),
//! `…/profile.json`.
//!
//! Nothing half-written survives: the file is parsed and profiled before anything is written;
//! then the blobs are written, then the record with a put-if-absent; if the record cannot be
//! written the blobs are deleted again. A reader only ever finds datasets through their record.

use super::layout::{
    DATASET_PREFIX, account_pk, dataset_data_key, dataset_preview_key, dataset_profile_key,
    dataset_sk,
};
use super::{CONCURRENT_READS, DomainError, decode, encode};
use crate::ids::{new_id, now_rfc3339};
use crate::ingest::{self, ColumnProfile, DataFormat, IngestError, Table};
use crate::ports::{Blobs, Condition, Item, Store, WriteOp};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

pub const DATASET_ID_PREFIX: &str = "ds";
/// Rows kept for previews (the most `GET /datasets/{id}/preview` returns).
pub const MAX_PREVIEW_ROWS: usize = 100;
/// Most bytes of JSON the stored preview rows take (very wide or long-text rows get fewer rows).
pub const MAX_PREVIEW_BYTES: usize = 1024 * 1024;
/// Profiles larger than this (encoded) go to a blob instead of the store item.
const INLINE_PROFILE_MAX: usize = 200 * 1024;
/// How many datasets one listing reads at most (keeps `GET /datasets` bounded).
const MAX_DATASETS_PER_LISTING: usize = 10_000;
const MAX_NAME_CHARS: usize = 200;

/// A dataset as stored and, apart from the blob keys, as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub dataset_id: String,
    pub account_id: String,
    pub name: String,
    pub format: DataFormat,
    pub size_bytes: u64,
    pub sha256: String,
    pub row_count: usize,
    /// Empty when the profile lives in the `profile.json` blob (see `profile_in_blob`).
    #[serde(default)]
    pub columns: Vec<ColumnProfile>,
    #[serde(default)]
    pub profile_in_blob: bool,
    pub created_at: String,
    /// The upload session it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

impl Dataset {
    /// The blob holding the file as uploaded.
    pub fn data_key(&self) -> String {
        data_key(&self.account_id, &self.dataset_id, self.format)
    }
}

/// The blob holding a dataset's file as uploaded.
pub fn data_key(account_id: &str, dataset_id: &str, format: DataFormat) -> String {
    dataset_data_key(account_id, dataset_id, format.as_str())
}

/// Why an upload cannot become a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file itself is unusable (bad format, broken CSV, …): the caller's to fix.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl DatasetError {
    /// The file is not CSV or Parquet (or says it is something else).
    pub fn is_unsupported_format(&self) -> bool {
        matches!(
            self,
            DatasetError::Ingest(IngestError::UnsupportedFormat { .. })
        )
    }

    /// Reading the bytes failed on our side (not the file's fault).
    pub fn is_own_failure(&self) -> bool {
        matches!(self, DatasetError::Ingest(IngestError::Io(_)))
    }

    /// Where and what in the file the problem is (`line`, `column`, …), for a 422's details.
    pub fn details(&self) -> Value {
        match self {
            DatasetError::Ingest(e) => ingest_error_details(e),
            DatasetError::Domain(_) => json!({}),
        }
    }
}

impl From<crate::ports::StoreError> for DatasetError {
    fn from(e: crate::ports::StoreError) -> Self {
        DatasetError::Domain(e.into())
    }
}

impl From<crate::ports::BlobError> for DatasetError {
    fn from(e: crate::ports::BlobError) -> Self {
        DatasetError::Domain(e.into())
    }
}

/// Where and what in the file an ingest error points at, for the error's `details`.
fn ingest_error_details(e: &IngestError) -> Value {
    match e {
        IngestError::RaggedRow {
            line,
            expected,
            found,
        } => json!({ "line": line, "expected_fields": expected, "found_fields": found }),
        IngestError::NotUtf8 { line, column } => json!({ "line": line, "column": column }),
        IngestError::FieldTooLong { line, column, .. } => {
            json!({ "line": line, "column": column })
        }
        IngestError::DuplicateColumnName {
            name,
            first,
            second,
        } => json!({ "line": 1, "column": second, "name": name, "first_column": first }),
        IngestError::EmptyColumnName { column } => json!({ "line": 1, "column": column }),
        IngestError::TooManyCells { cells, limit } => json!({ "cells": cells, "limit": limit }),
        IngestError::RecordTooLong { line, limit } => json!({ "line": line, "limit": limit }),
        IngestError::ColumnNameTooLong { column, limit, .. } => {
            json!({ "line": 1, "column": column, "limit": limit })
        }
        IngestError::HeaderOnly => json!({ "line": 1 }),
        IngestError::NonFiniteValue { column, row } => json!({ "column": column, "row": row }),
        IngestError::UnsupportedParquetType { column, data_type } => {
            json!({ "column": column, "data_type": data_type })
        }
        _ => json!({}),
    }
}

/// Validates a user-chosen dataset name (trimmed, 1–200 characters, no control characters).
pub fn validate_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(DomainError::validation(
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
            "name",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::validation(
            "name must not contain control characters",
            "name",
        ));
    }
    Ok(name.to_string())
}

/// A parsed and profiled upload, ready to be stored.
pub struct ParsedUpload {
    pub format: DataFormat,
    pub size_bytes: u64,
    pub sha256: String,
    pub row_count: usize,
    pub columns: Vec<ColumnProfile>,
    /// The first rows, as the preview shows them.
    pub preview: Value,
}

/// The first rows (at most [`MAX_PREVIEW_ROWS`]) as JSON objects, stopping before they would
/// take more than [`MAX_PREVIEW_BYTES`] as JSON: a preview stays small whatever the row width.
fn preview_of(table: &Table) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    for row in 0..table.n_rows.min(MAX_PREVIEW_ROWS) {
        let object: Map<String, Value> = table
            .columns
            .iter()
            .map(|c| (c.name.clone(), ingest::preview::cell_json(c, row)))
            .collect();
        let object = Value::Object(object);
        bytes += serde_json::to_vec(&object).map_or(usize::MAX, |v| v.len());
        if bytes > MAX_PREVIEW_BYTES {
            break;
        }
        rows.push(object);
    }
    rows
}

fn summarize(table: &Table, format: DataFormat, size_bytes: u64, sha256: String) -> ParsedUpload {
    let rows = preview_of(table);
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    ParsedUpload {
        format,
        size_bytes,
        sha256,
        row_count: table.n_rows,
        columns: ingest::profile(table),
        preview: json!({ "columns": names, "rows": rows }),
    }
}

/// Parses and profiles an upload held in memory (direct uploads, at most a few MB). CPU-bound:
/// call it from a blocking thread.
pub fn parse_bytes(bytes: Bytes, format: DataFormat) -> Result<ParsedUpload, IngestError> {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let size = bytes.len() as u64;
    let table = match format {
        DataFormat::Csv => ingest::read_csv(std::io::Cursor::new(bytes))?,
        DataFormat::Parquet => ingest::read_parquet(bytes)?,
    };
    Ok(summarize(&table, format, size, sha256))
}

/// The SHA-256 (hex) and size of a file, read in fixed-size chunks.
pub fn file_digest(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Parses and profiles a file on disk, streaming (large uploads). `sha256` and size are the
/// caller's (already computed while checking the upload). CPU-bound: call it from a blocking
/// thread.
pub fn parse_file(
    path: &Path,
    format: DataFormat,
    size_bytes: u64,
    sha256: String,
) -> Result<ParsedUpload, IngestError> {
    let table = match format {
        DataFormat::Csv => ingest::read_csv_path(path)?,
        DataFormat::Parquet => ingest::read_parquet_path(path)?,
    };
    Ok(summarize(&table, format, size_bytes, sha256))
}

/// A dataset about to be stored.
pub struct NewDataset<'a> {
    /// From [`new_dataset_id`].
    pub dataset_id: String,
    pub account_id: &'a str,
    pub name: &'a str,
    pub parsed: ParsedUpload,
    /// The upload session it comes from, if any.
    pub upload_id: Option<String>,
}

/// Where the dataset's bytes come from when it is stored.
pub enum DataSource<'a> {
    Memory(Bytes),
    File(&'a Path),
}

/// Parses of uploaded files running at once in this process (one per core): each can hold a
/// table of up to [`ingest::MAX_CELLS`] cells, so more requests wait rather than multiply it.
fn parses() -> &'static tokio::sync::Semaphore {
    static PARSES: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PARSES.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

/// A turn to parse an uploaded file (see [`parses`]).
pub(crate) async fn parse_turn() -> Result<tokio::sync::SemaphorePermit<'static>, DomainError> {
    parses()
        .acquire()
        .await
        .map_err(|e| DomainError::Corrupt(format!("the parse queue is closed: {e}")))
}

/// A file sent in the request itself (`POST /datasets`), with what is known about it.
#[derive(Debug, Clone, Default)]
pub struct DirectUpload {
    pub bytes: Bytes,
    /// The request's (or multipart part's) content type.
    pub content_type: Option<String>,
    /// A multipart part's file name.
    pub file_name: Option<String>,
    /// A multipart `name` field.
    pub name: Option<String>,
}

/// Picks the reader: the explicit format, then (for multipart parts) the file name, then the
/// content type, then the bytes themselves.
fn direct_upload_format(
    upload: &DirectUpload,
    explicit: Option<&str>,
) -> Result<DataFormat, IngestError> {
    let head = &upload.bytes[..upload.bytes.len().min(8)];
    if explicit.is_none() && upload.file_name.is_some() {
        // Browsers label CSV parts with whatever the OS says (often application/vnd.ms-excel),
        // so a part's file name is the better hint.
        let by_name = ingest::FormatHints {
            explicit: None,
            content_type: None,
            file_name: upload.file_name.as_deref(),
        };
        if let Ok(format) = ingest::detect_format(by_name, head) {
            return Ok(format);
        }
    }
    let hints = ingest::FormatHints {
        explicit,
        content_type: upload.content_type.as_deref(),
        file_name: upload.file_name.as_deref(),
    };
    ingest::detect_format(hints, head)
}

/// Creates a dataset from a direct upload: its format (see [`direct_upload_format`]), its name
/// (`name`, else the multipart `name` field, else the file name, else its id; checked before
/// the parse), then parse and profile off the async threads, then store.
pub async fn create_from_direct_upload(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    upload: DirectUpload,
    name: Option<&str>,
    format: Option<&str>,
) -> Result<Dataset, DatasetError> {
    let format = direct_upload_format(&upload, format)?;
    let dataset_id = new_dataset_id();
    let name = name
        .map(str::to_owned)
        .or_else(|| upload.name.clone())
        .or_else(|| upload.file_name.clone())
        .unwrap_or_else(|| dataset_id.clone());
    let name = validate_name(&name)?;
    store_bytes(
        store,
        blobs,
        account_id,
        dataset_id,
        &name,
        upload.bytes,
        format,
    )
    .await
}

/// Parses and profiles a file held in memory off the async threads, then stores it as dataset
/// `dataset_id` named `name`.
async fn store_bytes(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    dataset_id: String,
    name: &str,
    bytes: Bytes,
    format: DataFormat,
) -> Result<Dataset, DatasetError> {
    let parse_input = bytes.clone();
    let _turn = parse_turn().await?;
    let parsed = tokio::task::spawn_blocking(move || parse_bytes(parse_input, format))
        .await
        .map_err(|e| DomainError::Corrupt(format!("parsing task failed: {e}")))??;
    let dataset = store_dataset(
        store,
        blobs,
        NewDataset {
            dataset_id,
            account_id,
            name,
            parsed,
            upload_id: None,
        },
        DataSource::Memory(bytes),
        Vec::new(),
    )
    .await?;
    Ok(dataset)
}

/// Most files one multi-file upload may carry.
pub const MAX_FILES_PER_UPLOAD: usize = 100;

/// Creates one dataset from one or several files of the same table (the legacy `/v0/uploads`:
/// its multipart parts named `files`). One file is [`create_from_direct_upload`]. Several must
/// have the same format and the same columns in the same order (else a 422 naming `files`):
/// CSV files are joined under the first one's header row, Parquet files into one file of
/// their row groups in order. The dataset is named after the first file.
pub async fn create_from_files(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    files: Vec<DirectUpload>,
) -> Result<Dataset, DatasetError> {
    if files.len() > MAX_FILES_PER_UPLOAD {
        return Err(DomainError::validation(
            format!(
                "at most {MAX_FILES_PER_UPLOAD} files make one dataset (got {}): join them first",
                files.len()
            ),
            "files",
        )
        .into());
    }
    let mut files = files.into_iter();
    let Some(first) = files.next() else {
        return Err(DomainError::validation(
            "no file: send the data as one or more multipart parts named 'files'",
            "files",
        )
        .into());
    };
    let rest: Vec<DirectUpload> = files.collect();
    if rest.is_empty() {
        return create_from_direct_upload(store, blobs, account_id, first, None, None).await;
    }
    let format = direct_upload_format(&first, None)?;
    let mut names = vec![first.file_name.clone()];
    let mut parts = vec![first.bytes];
    for (i, file) in rest.into_iter().enumerate() {
        let this = direct_upload_format(&file, None)?;
        if this != format {
            return Err(DomainError::validation(
                format!(
                    "files[{}] is {} but files[0] is {}: several files make one dataset only when \
                     they have the same format",
                    i + 1,
                    this.as_str(),
                    format.as_str()
                ),
                "files",
            )
            .into());
        }
        names.push(file.file_name);
        parts.push(file.bytes);
    }
    let dataset_id = new_dataset_id();
    let name = names[0].clone().unwrap_or_else(|| dataset_id.clone());
    let name = validate_name(&name)?;
    let joined = tokio::task::spawn_blocking(move || join_files(format, &parts, &names))
        .await
        .map_err(|e| DomainError::Corrupt(format!("joining task failed: {e}")))??;
    store_bytes(store, blobs, account_id, dataset_id, &name, joined, format).await
}

fn file_label(names: &[Option<String>], i: usize) -> String {
    match names.get(i).and_then(Option::as_deref) {
        Some(name) => format!("files[{i}] ({name:?})"),
        None => format!("files[{i}]"),
    }
}

fn columns_differ(
    names: &[Option<String>],
    i: usize,
    first: &[String],
    this: &[String],
) -> DatasetError {
    DomainError::validation(
        format!(
            "{} has the columns {this:?} but {} has {first:?}: several files make one dataset \
             only when they have the same columns in the same order; upload them as separate \
             datasets otherwise",
            file_label(names, i),
            file_label(names, 0)
        ),
        "files",
    )
    .into()
}

/// Several files of one format → one file (CPU-bound: call it from a blocking thread).
fn join_files(
    format: DataFormat,
    parts: &[Bytes],
    names: &[Option<String>],
) -> Result<Bytes, DatasetError> {
    match format {
        DataFormat::Csv => join_csv(parts, names),
        DataFormat::Parquet => {
            // Each file is read by the guarded reader first: a broken one is its own 422
            // (never a panic inside the decoder below).
            for part in parts {
                ingest::read_parquet(part.clone())?;
            }
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| join_parquet(parts, names)))
                .unwrap_or_else(|_| {
                    Err(IngestError::CorruptParquet {
                        reason: "the decoder could not make sense of its contents".into(),
                    }
                    .into())
                })
        }
    }
}

/// A CSV file's header names (BOM and surrounding spaces dropped, as the reader does) and the
/// byte offset where its data rows start.
fn csv_header(bytes: &[u8]) -> Result<(Vec<String>, usize), DatasetError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let read = reader
        .read_byte_record(&mut record)
        .map_err(|e| IngestError::Io(std::io::Error::other(e)))?;
    if !read {
        return Err(IngestError::EmptyFile.into());
    }
    let names = record
        .iter()
        .map(|f| {
            String::from_utf8_lossy(f)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_owned()
        })
        .collect();
    let start = usize::try_from(reader.position().byte()).unwrap_or(bytes.len());
    Ok((names, start.min(bytes.len())))
}

fn join_csv(parts: &[Bytes], names: &[Option<String>]) -> Result<Bytes, DatasetError> {
    let total: usize = parts.iter().map(Bytes::len).sum();
    let mut joined = Vec::with_capacity(total + parts.len());
    let mut first_columns: Option<Vec<String>> = None;
    for (i, part) in parts.iter().enumerate() {
        let (columns, body) = csv_header(part)?;
        match &first_columns {
            None => {
                joined.extend_from_slice(part);
                first_columns = Some(columns);
            }
            Some(first) => {
                if *first != columns {
                    return Err(columns_differ(names, i, first, &columns));
                }
                if !joined.ends_with(b"\n") && !joined.ends_with(b"\r") {
                    joined.push(b'\n');
                }
                joined.extend_from_slice(&part[body..]);
            }
        }
    }
    Ok(Bytes::from(joined))
}

fn join_parquet(parts: &[Bytes], names: &[Option<String>]) -> Result<Bytes, DatasetError> {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let corrupt = |e: &dyn std::fmt::Display| -> DatasetError {
        IngestError::CorruptParquet {
            reason: e.to_string(),
        }
        .into()
    };
    let mut writer: Option<ArrowWriter<Vec<u8>>> = None;
    let mut first: Option<(arrow_schema::SchemaRef, Vec<String>)> = None;
    for (i, part) in parts.iter().enumerate() {
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(part.clone()).map_err(|e| corrupt(&e))?;
        let schema = builder.schema().clone();
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        match &first {
            None => {
                writer = Some(
                    ArrowWriter::try_new(Vec::new(), schema.clone(), None)
                        .map_err(|e| corrupt(&e))?,
                );
                first = Some((schema.clone(), columns));
            }
            Some((first_schema, first_columns)) => {
                if *first_columns != columns {
                    return Err(columns_differ(names, i, first_columns, &columns));
                }
                let same_types = first_schema
                    .fields()
                    .iter()
                    .zip(schema.fields().iter())
                    .all(|(a, b)| a.data_type() == b.data_type());
                if !same_types {
                    return Err(DomainError::validation(
                        format!(
                            "{} has the same columns as {} but other column types: write them \
                             with the same types",
                            file_label(names, i),
                            file_label(names, 0)
                        ),
                        "files",
                    )
                    .into());
                }
            }
        }
        let reader = builder.build().map_err(|e| corrupt(&e))?;
        let Some(writer) = writer.as_mut() else {
            return Err(corrupt(&"no writer"));
        };
        for batch in reader {
            let batch = batch.map_err(|e| corrupt(&e))?;
            // The first file's schema (field metadata may differ between writers).
            let batch = arrow_array::RecordBatch::try_new(
                first.as_ref().map_or(schema.clone(), |(s, _)| s.clone()),
                batch.columns().to_vec(),
            )
            .map_err(|e| corrupt(&e))?;
            writer.write(&batch).map_err(|e| corrupt(&e))?;
        }
    }
    let Some(writer) = writer else {
        return Err(IngestError::EmptyFile.into());
    };
    let bytes = writer.into_inner().map_err(|e| corrupt(&e))?;
    Ok(Bytes::from(bytes))
}

/// A new dataset id.
pub fn new_dataset_id() -> String {
    new_id(DATASET_ID_PREFIX)
}

/// Stores a parsed upload as a new dataset of `account_id`: blobs first, then the record (plus
/// `extra_ops`, e.g. marking an upload session completed, in the same transaction). On any
/// failure the blobs written are deleted again, so nothing half-written stays behind.
pub async fn store_dataset(
    store: &dyn Store,
    blobs: &dyn Blobs,
    new: NewDataset<'_>,
    source: DataSource<'_>,
    extra_ops: Vec<WriteOp>,
) -> Result<Dataset, DomainError> {
    let NewDataset {
        dataset_id,
        account_id,
        name,
        parsed,
        upload_id,
    } = new;
    let name = validate_name(name)?;
    let mut dataset = Dataset {
        dataset_id: dataset_id.clone(),
        account_id: account_id.to_string(),
        name,
        format: parsed.format,
        size_bytes: parsed.size_bytes,
        sha256: parsed.sha256,
        row_count: parsed.row_count,
        columns: parsed.columns,
        profile_in_blob: false,
        created_at: now_rfc3339(),
        upload_id,
    };
    let written = write_dataset(
        store,
        blobs,
        &mut dataset,
        &parsed.preview,
        source,
        extra_ops,
    )
    .await;
    if let Err(e) = written {
        delete_blobs(blobs, account_id, &dataset_id, dataset.format).await;
        return Err(e);
    }
    Ok(dataset)
}

async fn write_dataset(
    store: &dyn Store,
    blobs: &dyn Blobs,
    dataset: &mut Dataset,
    preview: &Value,
    source: DataSource<'_>,
    extra_ops: Vec<WriteOp>,
) -> Result<(), DomainError> {
    let account_id = dataset.account_id.clone();
    let dataset_id = dataset.dataset_id.clone();
    let key = dataset.data_key();
    match source {
        DataSource::Memory(bytes) => blobs.put(&key, bytes).await?,
        DataSource::File(path) => blobs.put_file(&key, path).await?,
    }
    let preview_bytes = serde_json::to_vec(preview)
        .map_err(|e| DomainError::Corrupt(format!("encoding preview: {e}")))?;
    blobs
        .put(
            &dataset_preview_key(&account_id, &dataset_id),
            Bytes::from(preview_bytes),
        )
        .await?;
    let columns_json = serde_json::to_vec(&dataset.columns)
        .map_err(|e| DomainError::Corrupt(format!("encoding profile: {e}")))?;
    let full_columns = if columns_json.len() > INLINE_PROFILE_MAX {
        blobs
            .put(
                &dataset_profile_key(&account_id, &dataset_id),
                Bytes::from(columns_json),
            )
            .await?;
        dataset.profile_in_blob = true;
        Some(std::mem::take(&mut dataset.columns))
    } else {
        None
    };
    let item = Item::new(
        account_pk(&account_id),
        dataset_sk(&dataset_id),
        encode(&*dataset)?,
    );
    let mut ops = vec![WriteOp::Put {
        item,
        condition: Condition::Absent,
    }];
    ops.extend(extra_ops);
    store.transact(ops).await?;
    if let Some(columns) = full_columns {
        dataset.columns = columns;
    }
    Ok(())
}

/// Best effort: a blob left behind is only wasted space (never visible without its record), so
/// failures are logged, not raised.
async fn delete_blobs(blobs: &dyn Blobs, account_id: &str, dataset_id: &str, format: DataFormat) {
    for key in [
        data_key(account_id, dataset_id, format),
        dataset_preview_key(account_id, dataset_id),
        dataset_profile_key(account_id, dataset_id),
    ] {
        if let Err(e) = blobs.delete(&key).await {
            tracing::warn!(%key, error = %e, "could not delete a dataset blob");
        }
    }
}

fn not_found(dataset_id: &str) -> DomainError {
    DomainError::not_found(format!(
        "dataset {dataset_id} not found in this account (GET /datasets lists them)"
    ))
}

async fn fill_profile(blobs: &dyn Blobs, dataset: &mut Dataset) -> Result<(), DomainError> {
    if dataset.profile_in_blob {
        let bytes = blobs
            .get(&dataset_profile_key(
                &dataset.account_id,
                &dataset.dataset_id,
            ))
            .await?;
        dataset.columns = serde_json::from_slice(&bytes)
            .map_err(|e| DomainError::Corrupt(format!("profile of {}: {e}", dataset.dataset_id)))?;
    }
    Ok(())
}

/// One of the account's datasets, with its profile; another account's is "not found".
pub async fn get_dataset(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    dataset_id: &str,
) -> Result<Dataset, DomainError> {
    let item = store
        .get(&account_pk(account_id), &dataset_sk(dataset_id))
        .await?
        .ok_or_else(|| not_found(dataset_id))?;
    let mut dataset: Dataset = decode(&item)?;
    fill_profile(blobs, &mut dataset).await?;
    Ok(dataset)
}

/// One page of the account's datasets, newest first, with the total count.
pub async fn list_datasets(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    limit: usize,
    offset: usize,
) -> Result<(Vec<Dataset>, usize), DomainError> {
    let pk = account_pk(account_id);
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .query(&pk, DATASET_PREFIX, false, 1000, cursor.as_deref())
            .await?;
        all.extend(page.items);
        cursor = page.cursor;
        if cursor.is_none() || all.len() >= MAX_DATASETS_PER_LISTING {
            break;
        }
    }
    let total = all.len();
    let datasets = futures::stream::iter(all.into_iter().skip(offset).take(limit).map(
        |item| async move {
            let mut dataset: Dataset = decode(&item)?;
            fill_profile(blobs, &mut dataset).await?;
            Ok::<_, DomainError>(dataset)
        },
    ))
    .buffered(CONCURRENT_READS)
    .try_collect()
    .await?;
    Ok((datasets, total))
}

/// The first `limit` rows (at most [`MAX_PREVIEW_ROWS`]) as JSON objects, with the column
/// names in file order.
pub async fn preview(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    dataset_id: &str,
    limit: usize,
) -> Result<Preview, DomainError> {
    // The record first: it is what makes the dataset exist (and scopes it to the account).
    let item = store
        .get(&account_pk(account_id), &dataset_sk(dataset_id))
        .await?
        .ok_or_else(|| not_found(dataset_id))?;
    let dataset: Dataset = decode(&item)?;
    let bytes = blobs
        .get(&dataset_preview_key(account_id, dataset_id))
        .await?;
    let stored: StoredPreview = serde_json::from_slice(&bytes)
        .map_err(|e| DomainError::Corrupt(format!("preview of {dataset_id}: {e}")))?;
    Ok(Preview {
        dataset_id: dataset.dataset_id,
        columns: stored.columns,
        row_count: dataset.row_count,
        limit,
        rows: stored.rows.into_iter().take(limit).collect(),
    })
}

/// The preview blob: column names and the first rows.
#[derive(Deserialize)]
struct StoredPreview {
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    rows: Vec<Value>,
}

/// The first rows of a dataset, as JSON objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub dataset_id: String,
    /// In file order.
    pub columns: Vec<String>,
    pub row_count: usize,
    pub limit: usize,
    pub rows: Vec<Value>,
}

/// Deletes the dataset's record, then its blobs. Models trained from it keep working: they hold
/// their own artifacts and never read the dataset again.
pub async fn delete_dataset(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    dataset_id: &str,
) -> Result<Dataset, DomainError> {
    let pk = account_pk(account_id);
    let sk = dataset_sk(dataset_id);
    let item = store
        .get(&pk, &sk)
        .await?
        .ok_or_else(|| not_found(dataset_id))?;
    let dataset: Dataset = decode(&item)?;
    match store.delete(&pk, &sk, Condition::Exists).await {
        Ok(()) => {}
        // Deleted by a concurrent request meanwhile.
        Err(crate::ports::StoreError::ConditionFailed) => return Err(not_found(dataset_id)),
        Err(e) => return Err(e.into()),
    }
    delete_blobs(blobs, account_id, dataset_id, dataset.format).await;
    Ok(dataset)
}

/// A blob as a file on this machine, for readers that need a seekable file (the CSV reader
/// makes two passes): the blob's own file on the embedded backend, else a temporary copy
/// (removed when this is dropped). Either way memory never holds the file's bytes.
pub struct LocalBlob {
    path: std::path::PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl LocalBlob {
    /// Fetches blob `key`; `file_name` names the temporary copy (its extension can matter).
    pub async fn fetch(
        blobs: &dyn Blobs,
        key: &str,
        file_name: &str,
    ) -> Result<LocalBlob, DomainError> {
        if let Some(path) = blobs.local_path(key) {
            return match tokio::fs::metadata(&path).await {
                Ok(meta) if meta.is_file() => Ok(LocalBlob { path, _temp: None }),
                Ok(_) => Err(crate::ports::BlobError::NotFound(key.to_owned()).into()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(crate::ports::BlobError::NotFound(key.to_owned()).into())
                }
                Err(e) => Err(crate::ports::BlobError::other(crate::ports::failed(
                    "reading blob",
                    e,
                ))
                .into()),
            };
        }
        let dir = tempfile::tempdir()
            .map_err(|e| DomainError::Corrupt(format!("creating a temporary directory: {e}")))?;
        let path = dir.path().join(file_name);
        blobs.get_to_file(key, &path).await?;
        Ok(LocalBlob {
            path,
            _temp: Some(dir),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a dataset's stored file into a [`Table`] (for builds), streaming from a local file, so
/// memory holds the table, never the raw bytes as well. The file parsed when it was uploaded, so
/// a failure here means the stored blob is damaged ([`DomainError::Corrupt`]).
pub async fn load_dataset_table(
    blobs: &dyn Blobs,
    dataset: &Dataset,
) -> Result<Table, DomainError> {
    let file_name = format!("data.{}", dataset.format.as_str());
    let local = LocalBlob::fetch(blobs, &dataset.data_key(), &file_name).await?;
    let format = dataset.format;
    let dataset_id = dataset.dataset_id.clone();
    let _turn = parse_turn().await?;
    tokio::task::spawn_blocking(move || {
        let table = match format {
            DataFormat::Csv => ingest::read_csv_path(local.path()),
            DataFormat::Parquet => ingest::read_parquet_path(local.path()),
        };
        drop(local);
        table.map_err(|e| DomainError::Corrupt(format!("stored file of dataset {dataset_id}: {e}")))
    })
    .await
    .map_err(|e| DomainError::Corrupt(format!("reading dataset: {e}")))?
}

/// One of the account's datasets and its data as a [`Table`]: what a build starts from.
/// Another account's dataset is "not found".
pub async fn load_table(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    dataset_id: &str,
) -> Result<(Dataset, Table), DomainError> {
    let dataset = get_dataset(store, blobs, account_id, dataset_id).await?;
    let table = load_dataset_table(blobs, &dataset).await?;
    Ok((dataset, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("  sales  ").ok().as_deref(), Some("sales"));
        assert!(validate_name("   ").is_err());
        assert!(validate_name(&"x".repeat(201)).is_err());
        assert!(validate_name("a\nb").is_err());
    }

    const SHA_OF_SAMPLE: &str = "c2b61b26d592d19fdec26ca8e8a2256a4e443eff1844b37a5b61170c8365377b";

    #[test]
    fn parses_and_profiles_csv_bytes() {
        let csv: &[u8] = b"a,b\n1,x\n2,y\n3,x\n";
        let parsed = parse_bytes(Bytes::from_static(csv), DataFormat::Csv).expect("valid csv");
        assert_eq!(parsed.row_count, 3);
        assert_eq!(parsed.columns.len(), 2);
        assert_eq!(parsed.size_bytes, csv.len() as u64);
        // sha256("a,b\n1,x\n2,y\n3,x\n"), computed independently with `sha256sum`.
        assert_eq!(parsed.sha256, SHA_OF_SAMPLE);
        assert_eq!(parsed.preview["columns"], json!(["a", "b"]));
        assert_eq!(parsed.preview["rows"][2], json!({"a": 3, "b": "x"}));
    }

    #[test]
    fn previews_stay_small_whatever_the_row_width() {
        let long = "x".repeat(300 * 1024);
        let mut csv = String::from("id,text\n");
        for i in 0..10 {
            csv.push_str(&format!("{i},{long}\n"));
        }
        let parsed = parse_bytes(Bytes::from(csv), DataFormat::Csv).expect("valid csv");
        assert_eq!(parsed.row_count, 10);
        let rows = parsed.preview["rows"].as_array().expect("rows");
        // Three rows of ~300 KB fit in 1 MB, a fourth would not.
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2]["id"], 2);
        assert!(serde_json::to_vec(&parsed.preview).expect("json").len() <= MAX_PREVIEW_BYTES + 64);
    }

    #[test]
    fn ragged_rows_name_their_line() {
        let Err(err) = parse_bytes(Bytes::from_static(b"a,b\n1,2\n3\n"), DataFormat::Csv) else {
            panic!("a ragged row must fail");
        };
        assert_eq!(ingest_error_details(&err)["line"], 3);
    }
}
