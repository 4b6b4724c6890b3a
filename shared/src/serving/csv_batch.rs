//! CSV batches: a CSV body of inputs becomes a [`Batch`] (cells passed as text, so the model's
//! own rules for numeric text apply; an empty or missing-marker cell is a missing value), and
//! the answer is the same CSV with the prediction columns appended: the prediction, then
//! `<target>_probability` (binary) or one `<target>_probability_<label>` per class (CSV has no
//! objects). An output column whose name the input already uses (the target itself, say) is
//! prefixed `predicted_`. Extra input columns are kept and passed through.

use super::input::{Batch, BatchBuilder, Cell, InputError, MAX_BATCH_ROWS};
use super::model::{BatchOutput, OnnxModel};
use crate::api::predictions::Explanation;
use std::borrow::Cow;

/// Why a CSV body cannot become a batch.
#[derive(Debug, thiserror::Error)]
pub enum CsvBatchError {
    /// Not readable as CSV (ragged rows, bad quoting, not UTF-8); `line` is 1-based.
    #[error("The CSV body could not be read: {message}")]
    Unreadable { message: String, line: Option<u64> },
    /// The header lacks input fields of the model.
    #[error(
        "The CSV lacks the model's input column(s): {}. Its header must include every input \
         field (other columns are kept and passed through).",
        .missing.join(", ")
    )]
    MissingColumns { missing: Vec<String> },
    /// More than [`MAX_BATCH_ROWS`] rows (found at the next one: the rest is not read).
    #[error("more than {MAX_BATCH_ROWS} rows")]
    TooManyRows,
    /// A cell does not fit its field.
    #[error(transparent)]
    Input(#[from] InputError),
}

fn unreadable(e: csv::Error) -> CsvBatchError {
    CsvBatchError::Unreadable {
        line: e.position().map(|p| p.line()),
        message: e.to_string(),
    }
}

/// A parsed CSV body: its header and rows, as sent.
pub struct CsvBatch {
    headers: csv::StringRecord,
    records: Vec<csv::StringRecord>,
}

impl CsvBatch {
    /// Reads a CSV body with a header row (every row as wide as the header).
    pub fn parse(body: &[u8]) -> Result<CsvBatch, CsvBatchError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(body);
        let headers = reader.headers().map_err(unreadable)?.clone();
        let mut records = Vec::new();
        for record in reader.records() {
            if records.len() == MAX_BATCH_ROWS {
                return Err(CsvBatchError::TooManyRows);
            }
            records.push(record.map_err(unreadable)?);
        }
        Ok(CsvBatch { headers, records })
    }

    /// Rows, header excluded.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The rows as `model`'s input batch, checked per field.
    pub fn to_batch(&self, model: &OnnxModel) -> Result<Batch, CsvBatchError> {
        let schema = model.input_schema();
        let missing: Vec<String> = schema
            .iter()
            .filter(|f| !self.headers.iter().any(|h| h == f.name))
            .map(|f| f.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(CsvBatchError::MissingColumns { missing });
        }
        let positions: Vec<(&str, usize)> = schema
            .iter()
            .filter_map(|f| {
                self.headers
                    .iter()
                    .position(|h| h == f.name)
                    .map(|i| (f.name.as_str(), i))
            })
            .collect();
        let mut builder = BatchBuilder::new(schema, self.records.len());
        for record in &self.records {
            builder.push_row(positions.iter().map(|(name, i)| {
                let cell = record.get(*i).unwrap_or("").trim();
                let value = if cell.is_empty() || crate::ingest::cell::is_missing(cell) {
                    Cell::Null
                } else {
                    Cell::Text(Cow::Borrowed(cell))
                };
                (*name, value)
            }));
        }
        Ok(builder.finish()?)
    }

    /// The CSV as sent with `output`'s prediction columns appended, then the explanation's
    /// columns when given (see [`CsvBatch::write_predictions`]).
    pub fn with_predictions(
        &self,
        model: &OnnxModel,
        output: &BatchOutput,
        explanations: Option<&[Explanation]>,
    ) -> Result<Vec<u8>, csv::Error> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        self.write_predictions(model, output, explanations, &mut writer, true)?;
        writer.into_inner().map_err(|e| e.into_error().into())
    }

    /// Writes the rows with `output`'s prediction columns appended to `writer`, after the
    /// header row when `with_header` (a large CSV is predicted chunk by chunk into one file).
    /// With `explanations` (one per row), `<target>_base_value` and one `<field>_contribution`
    /// per input field follow: of the raw score (regression: the value, binary: the positive
    /// class's log-odds) or, multiclass, of the predicted class's score.
    pub fn write_predictions<W: std::io::Write>(
        &self,
        model: &OnnxModel,
        output: &BatchOutput,
        explanations: Option<&[Explanation]>,
        writer: &mut csv::Writer<W>,
        with_header: bool,
    ) -> Result<(), csv::Error> {
        let (prediction_name, _) = model.output_field_names();
        let free = |name: String| {
            if self.headers.iter().any(|h| h == name) {
                format!("predicted_{name}")
            } else {
                name
            }
        };
        let mut extra: Vec<String> = vec![free(prediction_name.clone())];
        let labels: &[String] = match output {
            BatchOutput::Classification { labels, .. } => labels,
            BatchOutput::Regression { .. } => &[],
        };
        let binary = labels.len() == 2;
        if binary {
            extra.push(free(format!("{prediction_name}_probability")));
        } else {
            for label in labels {
                extra.push(free(format!("{prediction_name}_probability_{label}")));
            }
        }
        if explanations.is_some() {
            extra.push(free(format!("{prediction_name}_base_value")));
            for field in model.input_schema() {
                extra.push(free(format!("{}_contribution", field.name)));
            }
        }
        if with_header {
            let mut header_row: Vec<&str> = self.headers.iter().collect();
            header_row.extend(extra.iter().map(String::as_str));
            writer.write_record(&header_row)?;
        }
        for (r, record) in self.records.iter().enumerate() {
            let mut row: Vec<String> = record.iter().map(str::to_string).collect();
            match output {
                BatchOutput::Regression { values } => {
                    row.push(values.get(r).map(|v| v.to_string()).unwrap_or_default());
                }
                BatchOutput::Classification {
                    predicted,
                    probabilities,
                    labels,
                } => {
                    row.push(predicted.get(r).cloned().unwrap_or_default());
                    let k = labels.len();
                    let p = probabilities.get(r * k..(r + 1) * k).unwrap_or(&[]);
                    if binary {
                        row.push(p.get(1).map(|v| v.to_string()).unwrap_or_default());
                    } else {
                        row.extend(p.iter().map(|v| v.to_string()));
                    }
                }
            }
            if let Some(explanations) = explanations {
                let predicted = match output {
                    BatchOutput::Classification { predicted, .. } => predicted.get(r),
                    BatchOutput::Regression { .. } => None,
                };
                let score = explanations.get(r).and_then(|e| {
                    e.scores
                        .iter()
                        .find(|s| e.scores.len() == 1 || s.label.as_ref() == predicted)
                });
                row.push(score.map(|s| s.base_value.to_string()).unwrap_or_default());
                for field in model.input_schema() {
                    let c = score.and_then(|s| s.contributions.get(&field.name));
                    row.push(c.map(|c| c.to_string()).unwrap_or_default());
                }
            }
            writer.write_record(&row)?;
        }
        Ok(())
    }
}

/// The most bytes of rows one [`CsvChunks`] batch holds (a batch also ends at
/// [`MAX_BATCH_ROWS`] rows), so a file of very wide rows is read in pieces too.
pub const MAX_CHUNK_BYTES: usize = 32 << 20;
/// The longest row (and header) a [`CsvChunks`] file may have.
pub const MAX_ROW_BYTES: usize = crate::ingest::MAX_FIELD_BYTES;

/// A CSV read in batches of at most [`MAX_BATCH_ROWS`] rows and [`MAX_CHUNK_BYTES`] bytes, for
/// files too large to hold at once (batch prediction jobs): each batch shares the file's
/// header. The header has at most [`crate::ingest::MAX_COLUMNS`] columns and every row at most
/// [`MAX_ROW_BYTES`] bytes, as ingested files.
pub struct CsvChunks<R: std::io::Read> {
    reader: csv::Reader<R>,
    headers: csv::StringRecord,
    /// Rows read so far (so an error names the file's line, not the batch's).
    rows_read: u64,
}

fn too_long(line: u64) -> CsvBatchError {
    CsvBatchError::Unreadable {
        message: format!(
            "a row is longer than {MAX_ROW_BYTES} bytes; split long text fields or drop them"
        ),
        line: Some(line),
    }
}

impl<R: std::io::Read> CsvChunks<R> {
    /// Reads the header row of `input`, which must hold a row no longer than
    /// [`MAX_ROW_BYTES`] within its first bytes.
    pub fn new(input: R) -> Result<CsvChunks<R>, CsvBatchError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            // Checked here, with a message naming both counts.
            .flexible(true)
            .buffer_capacity(64 * 1024)
            .from_reader(input);
        let mut headers = csv::StringRecord::new();
        if !read_bounded(&mut reader, &mut headers, 1)? {
            return Err(CsvBatchError::Unreadable {
                message: "the file is empty; it needs a header row".to_owned(),
                line: Some(1),
            });
        }
        if headers.len() > crate::ingest::MAX_COLUMNS {
            return Err(CsvBatchError::Unreadable {
                message: format!(
                    "the header has {} columns, over the limit of {}",
                    headers.len(),
                    crate::ingest::MAX_COLUMNS
                ),
                line: Some(1),
            });
        }
        Ok(CsvChunks {
            reader,
            headers,
            rows_read: 0,
        })
    }

    /// Rows read so far, header excluded.
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    /// The next batch; `None` at the end of the file.
    pub fn next_batch(&mut self) -> Result<Option<CsvBatch>, CsvBatchError> {
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let mut record = csv::StringRecord::new();
        while records.len() < MAX_BATCH_ROWS && bytes < MAX_CHUNK_BYTES {
            let line = self.rows_read + records.len() as u64 + 2;
            if !read_bounded(&mut self.reader, &mut record, line)? {
                break;
            }
            if record.len() != self.headers.len() {
                return Err(CsvBatchError::Unreadable {
                    message: format!(
                        "the row has {} fields where the header has {}",
                        record.len(),
                        self.headers.len()
                    ),
                    line: Some(line),
                });
            }
            bytes += record.as_slice().len();
            records.push(record.clone());
        }
        self.rows_read += records.len() as u64;
        if records.is_empty() {
            return Ok(None);
        }
        Ok(Some(CsvBatch {
            headers: self.headers.clone(),
            records,
        }))
    }
}

/// Reads one record, refusing one over [`MAX_ROW_BYTES`]. The csv reader grows its record to
/// the row's length before the check can see it, so a pathological row takes its own length
/// in memory once (at most the file's, 500 MB); rows kept for a batch are each within the
/// limit, and a batch within [`MAX_CHUNK_BYTES`].
fn read_bounded<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::StringRecord,
    line: u64,
) -> Result<bool, CsvBatchError> {
    let more = reader.read_record(record).map_err(unreadable)?;
    if record.as_slice().len() > MAX_ROW_BYTES {
        return Err(too_long(line));
    }
    Ok(more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_the_row_or_byte_limit_and_keep_every_row() {
        let mut csv = String::from("a,b\n");
        for i in 0..(MAX_BATCH_ROWS + 5) {
            csv.push_str(&format!("{i},x\n"));
        }
        let mut chunks = CsvChunks::new(csv.as_bytes()).expect("a header");
        let sizes: Vec<usize> = std::iter::from_fn(|| chunks.next_batch().expect("rows"))
            .map(|b| b.len())
            .collect();
        assert_eq!(sizes, vec![MAX_BATCH_ROWS, 5]);
        assert_eq!(chunks.rows_read(), (MAX_BATCH_ROWS + 5) as u64);

        // Wide rows: a batch stops once it holds MAX_CHUNK_BYTES.
        let wide = "w".repeat(500_000);
        let mut csv = String::from("a,b\n");
        for i in 0..100 {
            csv.push_str(&format!("{i},{wide}\n"));
        }
        let mut chunks = CsvChunks::new(csv.as_bytes()).expect("a header");
        let first = chunks.next_batch().expect("rows").expect("a batch");
        assert!(first.len() < 100 && first.len() * 500_000 >= MAX_CHUNK_BYTES);
    }

    #[test]
    fn files_without_bounds_are_refused_with_their_line() {
        let header = (0..=crate::ingest::MAX_COLUMNS)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let Err(e) = CsvChunks::new(format!("{header}\n").as_bytes()) else {
            panic!("a header over the column limit was read");
        };
        assert!(e.to_string().contains("columns"), "{e}");

        let csv = format!("a,b\n1,2\n3,{}\n", "x".repeat(MAX_ROW_BYTES + 1));
        let mut chunks = CsvChunks::new(csv.as_bytes()).expect("a header");
        let Err(CsvBatchError::Unreadable { line, .. }) = chunks.next_batch() else {
            panic!("a row over the limit was read");
        };
        assert_eq!(line, Some(3));

        let mut chunks = CsvChunks::new("a,b\n1,2\n3\n".as_bytes()).expect("a header");
        let Err(CsvBatchError::Unreadable { line, message }) = chunks.next_batch() else {
            panic!("a short row was read");
        };
        assert_eq!(line, Some(3), "{message}");
        assert!(
            CsvChunks::new("".as_bytes()).is_err(),
            "an empty file has no header"
        );
    }
}
