//! One reading of cell values at training and at inference: every value a training file
//! accepts is accepted by a prediction request with the same meaning.
//!
//! A seeded generator writes values of each column type in every form ingest accepts (dates
//! with and without times, fractions and offsets; integers and floats with signs, leading zeros
//! and exponents; booleans in any letter case; missing markers; surrounding whitespace). Each
//! column goes through the CSV reader, and each of its cells through serving's field reader for
//! a field of that type, and the two must give the same value (NaN = missing).

use shared::ingest::cell::{CellValue, is_missing, read_cell};
use shared::ingest::{ColumnData, ColumnType, Table, read_csv};
use shared::onnx::InputField;
use shared::serving::input::{Cell, InputColumn, field_number, rows_to_batch};

const ROWS: usize = 3000;

/// xorshift64*: test data only; the seed fixes every value.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

/// Markers pandas (and so ingest) reads as missing, and whitespace-only cells.
const MISSING: &[&str] = &[
    "", " ", "\t", "NA", "N/A", "n/a", "null", "NULL", "NaN", "nan", "-NaN", "-nan", "None",
    "<NA>", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN",
];

fn datetime(d: &mut Draw) -> String {
    let year = 1600 + d.below(801) as i64;
    let month = 1 + d.below(12) as i64;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let day = 1 + d.below(days) as i64;
    let mut s = format!("{year:04}-{month:02}-{day:02}");
    if d.chance(20) {
        return s;
    }
    s.push_str(d.pick(&["T", "t", " "]));
    s.push_str(&format!("{:02}:{:02}", d.below(24), d.below(60)));
    if d.chance(75) {
        s.push_str(&format!(":{:02}", d.below(60)));
        if d.chance(50) {
            let len = 1 + d.below(9) as usize;
            s.push_str(d.pick(&[".", ","]));
            s.push_str(&d.digits(len));
        }
    }
    let (h, m) = (d.below(24), d.below(60));
    let sign = d.pick(&["+", "-"]);
    match d.below(6) {
        0 => {}
        1 => s.push('Z'),
        2 => s.push('z'),
        3 => s.push_str(&format!("{sign}{h:02}:{m:02}")),
        4 => s.push_str(&format!("{sign}{h:02}{m:02}")),
        _ => s.push_str(&format!("{sign}{h:02}")),
    }
    s
}

fn integer(d: &mut Draw) -> String {
    let sign = d.pick(&["", "", "+", "-"]);
    let zeros = "0".repeat(d.below(3) as usize);
    let len = 1 + d.below(15) as usize;
    format!("{sign}{zeros}{}", d.digits(len))
}

fn float(d: &mut Draw) -> String {
    let sign = d.pick(&["", "", "+", "-"]);
    let whole = d.below(8) as usize;
    let fraction = d.below(10) as usize;
    let mut s = format!("{sign}{}", d.digits(whole));
    if whole == 0 || fraction > 0 || d.chance(30) {
        s.push('.');
        s.push_str(&d.digits(fraction.max(usize::from(whole == 0))));
    }
    if d.chance(40) {
        s.push_str(d.pick(&["e", "E"]));
        s.push_str(d.pick(&["", "+", "-"]));
        s.push_str(&(d.below(300)).to_string());
    }
    s
}

fn boolean(d: &mut Draw) -> String {
    let word = d.pick(&["true", "false"]);
    word.chars()
        .map(|c| {
            if d.chance(50) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn text(d: &mut Draw) -> String {
    let words = [
        "alpha", "Beta", "gamma 3", "x", "0.5 kg", "yes", "no", "2024",
    ];
    (0..1 + d.below(3))
        .map(|_| d.pick(&words))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ROWS` cells of one type: the first pins the column's type, then values in random forms,
/// missing markers and surrounding whitespace.
fn column_cells(kind: ColumnType, seed: u64) -> Vec<String> {
    let mut d = Draw(seed);
    let anchor = match kind {
        ColumnType::Integer => "1",
        ColumnType::Float => "0.5",
        ColumnType::Boolean => "true",
        ColumnType::Datetime => "2000-01-01",
        ColumnType::String => "text",
    };
    let mut cells = vec![anchor.to_string()];
    while cells.len() < ROWS {
        if d.chance(10) {
            cells.push(d.pick(MISSING).to_string());
            continue;
        }
        let value = match kind {
            ColumnType::Integer => integer(&mut d),
            ColumnType::Float => float(&mut d),
            ColumnType::Boolean => boolean(&mut d),
            ColumnType::Datetime => datetime(&mut d),
            ColumnType::String => text(&mut d),
        };
        let pad = |d: &mut Draw| d.pick(&["", "", "", " ", "  ", "\t"]).to_string();
        cells.push(format!("{}{value}{}", pad(&mut d), pad(&mut d)));
    }
    cells
}

/// The cells as a one-column CSV file, read by ingest.
fn ingest(cells: &[String]) -> Table {
    let mut csv = String::from("v\n");
    for c in cells {
        csv.push_str(&format!("\"{c}\"\n"));
    }
    read_csv(std::io::Cursor::new(csv.into_bytes())).expect("the generated file reads")
}

fn schema(kind: ColumnType) -> Vec<InputField> {
    vec![InputField {
        name: "v".into(),
        input: "v".into(),
        kind,
    }]
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

#[test]
fn every_value_a_training_file_accepts_means_the_same_in_a_request() {
    for (seed, kind) in [
        ColumnType::Integer,
        ColumnType::Float,
        ColumnType::Boolean,
        ColumnType::Datetime,
        ColumnType::String,
    ]
    .into_iter()
    .enumerate()
    {
        let cells = column_cells(kind, 0x5EED + seed as u64);
        let table = ingest(&cells);
        let column = &table.columns[0];
        assert_eq!(column.kind, kind, "{kind:?}: the column reads as its type");
        let rows: Vec<serde_json::Value> = cells
            .iter()
            .map(|c| serde_json::json!({ "v": c }))
            .collect();
        let batch = rows_to_batch(&schema(kind), &rows)
            .unwrap_or_else(|e| panic!("{kind:?}: a request refused a training value: {e}"));
        match (&column.data, &batch.columns[0]) {
            (ColumnData::Numeric(trained), InputColumn::Float(served)) => {
                for (i, cell) in cells.iter().enumerate() {
                    let served_f64 = field_number(kind, &Cell::Text(cell.as_str().into()));
                    assert!(
                        matches!(served_f64, Ok(v) if same(v, trained[i])),
                        "{kind:?} {cell:?}: trained as {}, served as {served_f64:?}",
                        trained[i]
                    );
                    assert!(
                        same(f64::from(served[i]), f64::from(trained[i] as f32)),
                        "{kind:?} {cell:?}: model input {} vs {}",
                        served[i],
                        trained[i] as f32
                    );
                }
            }
            (ColumnData::Categorical { codes, levels }, InputColumn::Text(served)) => {
                for (i, cell) in cells.iter().enumerate() {
                    let trained = levels.get(codes[i] as usize);
                    if is_missing(cell.trim()) {
                        // Missing in training; a request's text stays text, which the model
                        // reads as an unseen category, as it reads a missing one.
                        assert_eq!(trained, None, "{cell:?}");
                        assert_eq!(&served[i], cell);
                    } else {
                        assert_eq!(trained, Some(&served[i]), "{cell:?}");
                    }
                }
            }
            (data, served) => panic!("{kind:?}: storage {data:?} vs {served:?}"),
        }
    }
}

#[test]
fn the_file_reader_reads_each_cell_as_read_cell_does() {
    for (seed, kind) in [ColumnType::Float, ColumnType::Datetime, ColumnType::Boolean]
        .into_iter()
        .enumerate()
    {
        let cells = column_cells(kind, 0xCE11 + seed as u64);
        let table = ingest(&cells);
        let ColumnData::Numeric(values) = &table.columns[0].data else {
            panic!("{kind:?} is numeric")
        };
        for (cell, &value) in cells.iter().zip(values) {
            let read = match read_cell(kind, cell) {
                Some(CellValue::Number(v)) => v,
                Some(CellValue::Missing) => f64::NAN,
                other => panic!("{kind:?} {cell:?}: {other:?}"),
            };
            assert!(same(read, value), "{kind:?} {cell:?}: {read} vs {value}");
        }
    }
}

#[test]
fn known_forms_parse_to_known_values() {
    let served = |kind, s: &str| field_number(kind, &Cell::Text(s.into()));
    // 2024-02-29T12:30:15.5Z in every offset form, and without a zone (UTC).
    for s in [
        "2024-02-29T12:30:15.5Z",
        "2024-02-29 12:30:15.5",
        "2024-02-29T14:30:15.5+02:00",
        "2024-02-29T14:30:15.5+0200",
        "2024-02-29T14:30:15.5+02",
        "2024-02-29t07:30:15,5-0500",
    ] {
        assert_eq!(served(ColumnType::Datetime, s), Ok(1_709_209_815.5), "{s}");
    }
    assert_eq!(
        served(ColumnType::Datetime, "2024-02-29"),
        Ok(1_709_164_800.0)
    );
    assert_eq!(served(ColumnType::Float, "-1.5E+3"), Ok(-1500.0));
    assert_eq!(served(ColumnType::Integer, "+007"), Ok(7.0));
    assert_eq!(served(ColumnType::Boolean, "TrUe"), Ok(1.0));
    for kind in [ColumnType::Float, ColumnType::Boolean, ColumnType::Datetime] {
        for marker in MISSING {
            assert!(
                matches!(served(kind, marker), Ok(v) if v.is_nan()),
                "{kind:?} {marker:?}"
            );
        }
    }
    // What no file holds stays refused.
    assert!(served(ColumnType::Float, "inf").is_err());
    assert!(served(ColumnType::Datetime, "2023-02-29").is_err());
    assert!(served(ColumnType::Boolean, "maybe").is_err());
}
