//! CSV → [`Table`] in two streaming passes: pass 1 validates the structure and infers each
//! column's type, pass 2 rewinds and fills compact columns sized exactly for the row count. The
//! file is never held in memory as bytes, only one record at a time (plus the columns).
//!
//! Accepted: RFC 4180 quoting (embedded commas, quotes, line breaks), a UTF-8 byte-order mark,
//! LF or CRLF line ends; blank lines are skipped. The first record is the header. Cell rules
//! (missing markers, booleans, numbers, datetimes) are in [`super::cell`].

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use csv::{ByteRecord, ReaderBuilder};

use super::cell::{self, CellValue, IntegerCell};
use super::column_builder::ColumnBuilder;
use super::error::{IngestError, MAX_CELLS, MAX_COLUMNS, MAX_FIELD_BYTES, MAX_ROWS};
use super::table::{ColumnNames, ColumnType, Table};

/// Read a CSV file from disk.
pub fn read_csv_path(path: &Path) -> Result<Table, IngestError> {
    read_csv(BufReader::new(File::open(path)?))
}

/// Read a CSV from any seekable source, starting at its current position.
pub fn read_csv<R: Read + Seek>(mut source: R) -> Result<Table, IngestError> {
    let start = source.stream_position()?;
    let (names, kinds, rows) = infer_columns(&mut source)?;
    source.seek(SeekFrom::Start(start))?;
    fill_columns(&mut source, names, &kinds, rows)
}

fn reader<R: Read>(source: R) -> csv::Reader<RecordLengthLimit<R>> {
    // Headers are read as an ordinary record so their problems get our own errors; `flexible`
    // lets us report ragged rows with both counts instead of csv's generic error.
    ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(RecordLengthLimit::new(source))
}

/// Longest record (a row, quoted line breaks included) in bytes: far above any real row.
pub const MAX_RECORD_BYTES: usize = 32 << 20;

/// A record running past [`MAX_RECORD_BYTES`], carried through the csv reader's io errors.
#[derive(Debug)]
struct RecordTooLong {
    line: u64,
}

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record on line {} too long", self.line)
    }
}

impl std::error::Error for RecordTooLong {}

/// Passes a CSV's bytes through, following its quotes, and fails once one record runs past
/// [`MAX_RECORD_BYTES`]. The csv reader buffers a whole record before handing it over, so an
/// unclosed quote early in a 500 MB file would otherwise have it buffer the rest of the file.
/// (A quote is taken to toggle quoting wherever it stands; a stray quote inside an unquoted
/// field can only make a record look longer, never shorter.)
struct RecordLengthLimit<R> {
    inner: R,
    quoted: bool,
    record_bytes: usize,
    record_line: u64,
    line: u64,
}

impl<R> RecordLengthLimit<R> {
    fn new(inner: R) -> Self {
        RecordLengthLimit {
            inner,
            quoted: false,
            record_bytes: 0,
            record_line: 1,
            line: 1,
        }
    }
}

impl<R: Read> Read for RecordLengthLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &byte in &buf[..n] {
            match byte {
                b'"' => self.quoted = !self.quoted,
                // CR alone also ends a record (old Mac files), as the csv reader takes it.
                b'\n' | b'\r' => {
                    self.line += u64::from(byte == b'\n');
                    if !self.quoted {
                        self.record_bytes = 0;
                        self.record_line = self.line;
                        continue;
                    }
                }
                _ => {}
            }
            self.record_bytes += 1;
            if self.record_bytes > MAX_RECORD_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    RecordTooLong {
                        line: self.record_line,
                    },
                ));
            }
        }
        Ok(n)
    }
}

/// Which types every non-missing cell of a column seen so far would fit.
#[derive(Debug, Clone, Copy)]
struct TypeCandidates {
    present: u64,
    integer: bool,
    float: bool,
    boolean: bool,
    datetime: bool,
}

impl TypeCandidates {
    fn new() -> Self {
        TypeCandidates {
            present: 0,
            integer: true,
            float: true,
            boolean: true,
            datetime: true,
        }
    }

    fn observe(&mut self, raw: &str) {
        let t = raw.trim();
        if cell::is_missing(t) {
            return;
        }
        self.present += 1;
        if self.integer || self.float {
            match cell::parse_integer(t) {
                IntegerCell::Exact(_) => {}
                // As a float it would lose digits: only text keeps it.
                IntegerCell::TooLarge => {
                    self.integer = false;
                    self.float = false;
                }
                IntegerCell::NotInteger => {
                    self.integer = false;
                    self.float = self.float && cell::parse_float(t).is_some();
                }
            }
        }
        self.boolean = self.boolean && cell::parse_bool(t).is_some();
        self.datetime = self.datetime && cell::parse_datetime(t).is_some();
    }

    fn resolve(self) -> ColumnType {
        match self {
            // All missing: nothing to say it is anything but text.
            TypeCandidates { present: 0, .. } => ColumnType::String,
            TypeCandidates { boolean: true, .. } => ColumnType::Boolean,
            TypeCandidates { integer: true, .. } => ColumnType::Integer,
            TypeCandidates { float: true, .. } => ColumnType::Float,
            TypeCandidates { datetime: true, .. } => ColumnType::Datetime,
            _ => ColumnType::String,
        }
    }
}

fn infer_columns<R: Read>(source: R) -> Result<(Vec<String>, Vec<ColumnType>, usize), IngestError> {
    let mut rdr = reader(source);
    let mut record = ByteRecord::new();
    if !rdr.read_byte_record(&mut record).map_err(csv_error)? {
        return Err(IngestError::EmptyFile);
    }
    let names = header_names(&record)?;
    let mut candidates = vec![TypeCandidates::new(); names.len()];
    let mut rows = 0usize;
    while rdr.read_byte_record(&mut record).map_err(csv_error)? {
        let line = line_of(&record);
        check_width(&record, line, names.len())?;
        for (i, c) in candidates.iter_mut().enumerate() {
            let text = field_text(&record, i, line)?;
            if text.len() > MAX_FIELD_BYTES {
                return Err(IngestError::FieldTooLong {
                    line,
                    column: i + 1,
                    limit: MAX_FIELD_BYTES,
                });
            }
            c.observe(text);
        }
        rows += 1;
        if rows > MAX_ROWS {
            return Err(IngestError::TooManyRows { limit: MAX_ROWS });
        }
        // Checked on this first, streaming pass, before the second one materializes columns.
        let cells = rows.saturating_mul(names.len());
        if cells > MAX_CELLS {
            return Err(IngestError::TooManyCells {
                cells,
                limit: MAX_CELLS,
            });
        }
    }
    if rows == 0 {
        return Err(IngestError::HeaderOnly);
    }
    Ok((
        names,
        candidates
            .into_iter()
            .map(TypeCandidates::resolve)
            .collect(),
        rows,
    ))
}

fn fill_columns<R: Read>(
    source: R,
    names: Vec<String>,
    kinds: &[ColumnType],
    rows: usize,
) -> Result<Table, IngestError> {
    let mut rdr = reader(source);
    let mut record = ByteRecord::new();
    let mut builders: Vec<ColumnBuilder> =
        kinds.iter().map(|&k| ColumnBuilder::new(k, rows)).collect();
    // Skip the header (validated in pass 1).
    rdr.read_byte_record(&mut record).map_err(csv_error)?;
    while rdr.read_byte_record(&mut record).map_err(csv_error)? {
        let line = line_of(&record);
        check_width(&record, line, kinds.len())?;
        for (i, builder) in builders.iter_mut().enumerate() {
            let raw = field_text(&record, i, line)?;
            push_cell(builder, kinds[i], raw).ok_or_else(|| changed_between_passes(line))?;
        }
        if builders.first().is_some_and(|b| b.len() > rows) {
            return Err(changed_between_passes(line));
        }
    }
    if builders.first().is_some_and(|b| b.len() != rows) {
        return Err(changed_between_passes(0));
    }
    let columns = builders
        .into_iter()
        .zip(names)
        .map(|(b, name)| b.finish(name))
        .collect();
    Ok(Table {
        columns,
        n_rows: rows,
    })
}

/// Append one cell to its column; `None` if it does not fit the type pass 1 inferred (only
/// possible when the source changed between the passes).
fn push_cell(builder: &mut ColumnBuilder, kind: ColumnType, raw: &str) -> Option<()> {
    match cell::read_cell(kind, raw)? {
        CellValue::Missing if kind == ColumnType::String => builder.push_text(None),
        CellValue::Missing => builder.push_number(f64::NAN),
        CellValue::Number(v) => builder.push_number(v),
        CellValue::Text(text) => builder.push_text(Some(text)),
    }
    Some(())
}

fn changed_between_passes(line: u64) -> IngestError {
    IngestError::Io(std::io::Error::other(format!(
        "the file changed while it was being read (line {line})"
    )))
}

fn header_names(record: &ByteRecord) -> Result<Vec<String>, IngestError> {
    let line = line_of(record);
    if record.len() > MAX_COLUMNS {
        return Err(IngestError::TooManyColumns {
            found: record.len(),
            limit: MAX_COLUMNS,
        });
    }
    let mut names: Vec<String> = Vec::with_capacity(record.len());
    let mut seen = ColumnNames::default();
    for i in 0..record.len() {
        let raw = field_text(record, i, line)?;
        if raw.len() > MAX_FIELD_BYTES {
            return Err(IngestError::FieldTooLong {
                line,
                column: i + 1,
                limit: MAX_FIELD_BYTES,
            });
        }
        // csv strips a BOM at the very start; this also covers one it missed.
        let name = raw.trim_start_matches('\u{feff}').trim();
        // A lone empty header with no other columns means an empty first line in effect.
        seen.add(i + 1, name)?;
        names.push(name.to_owned());
    }
    Ok(names)
}

fn line_of(record: &ByteRecord) -> u64 {
    record.position().map_or(0, |p| p.line())
}

fn check_width(record: &ByteRecord, line: u64, expected: usize) -> Result<(), IngestError> {
    if record.len() != expected {
        return Err(IngestError::RaggedRow {
            line,
            expected,
            found: record.len(),
        });
    }
    Ok(())
}

fn field_text(record: &ByteRecord, i: usize, line: u64) -> Result<&str, IngestError> {
    let bytes = record.get(i).ok_or(IngestError::RaggedRow {
        line,
        expected: i + 1,
        found: record.len(),
    })?;
    std::str::from_utf8(bytes).map_err(|_| IngestError::NotUtf8 {
        line,
        column: i + 1,
    })
}

fn csv_error(e: csv::Error) -> IngestError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => {
            match io.get_ref().and_then(|e| e.downcast_ref::<RecordTooLong>()) {
                Some(too_long) => IngestError::RecordTooLong {
                    line: too_long.line,
                    limit: MAX_RECORD_BYTES,
                },
                None => IngestError::Io(io),
            }
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => IngestError::RaggedRow {
            line,
            expected: expected_len as usize,
            found: len as usize,
        },
        csv::ErrorKind::Utf8 { err, .. } => IngestError::NotUtf8 {
            line,
            column: err.field() + 1,
        },
        other => IngestError::Io(std::io::Error::other(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn an_unclosed_quote_stops_at_the_record_limit_not_the_end_of_the_file() {
        // 40 MB of lines after an opened quote: the reader refuses at 32 MB without holding them.
        let mut csv = b"a,b\n1,\"open\n".to_vec();
        let line = b"2,more text that stays inside the quote\n";
        while csv.len() < 40 << 20 {
            csv.extend_from_slice(line);
        }
        let e = read_csv(Cursor::new(csv)).expect_err("refused");
        assert!(
            matches!(e, IngestError::RecordTooLong { line: 2, .. }),
            "{e:?}"
        );
        // Quoted line breaks and doubled quotes within a normal record are fine.
        let fine =
            read_csv(Cursor::new(b"a,b\n1,\"x\ny \"\"q\"\" z\"\n2,w\n".to_vec())).expect("read");
        assert_eq!(fine.n_rows, 2);
    }
    use crate::ingest::table::ColumnData;

    fn read(text: &str) -> Result<Table, IngestError> {
        read_csv(Cursor::new(text.as_bytes().to_vec()))
    }

    #[test]
    fn infers_each_type() {
        let t = read(
            "i,f,b,d,s\n1,1.5,true,2024-01-01,x\n-2,3,FALSE,2024-01-02T10:00:00Z,7\n,NA,,null,\n",
        )
        .unwrap();
        let kinds: Vec<_> = t.columns.iter().map(|c| c.kind).collect();
        use ColumnType::*;
        assert_eq!(kinds, vec![Integer, Float, Boolean, Datetime, String]);
        assert_eq!(t.n_rows, 3);
        let ColumnData::Numeric(f) = &t.columns[1].data else {
            panic!("not numeric")
        };
        assert_eq!(&f[..2], &[1.5, 3.0]);
        assert!(f[2].is_nan());
        assert!(
            (0..5).all(|c| t.columns[c].data.is_missing(2)),
            "every marker in row 3 is missing"
        );
    }

    #[test]
    fn one_stray_word_makes_a_numeric_column_text() {
        let t = read("x\n1\n2\nabc\n").unwrap();
        assert_eq!(t.columns[0].kind, ColumnType::String);
        let ColumnData::Categorical { levels, .. } = &t.columns[0].data else {
            panic!("not text")
        };
        assert_eq!(levels, &["1", "2", "abc"]);
    }

    #[test]
    fn reads_from_the_current_position() {
        let mut c = Cursor::new(b"junk\na\n1\n".to_vec());
        c.seek(SeekFrom::Start(5)).unwrap();
        let t = read_csv(c).unwrap();
        assert_eq!(t.columns[0].name, "a");
        assert_eq!(t.n_rows, 1);
    }
}
