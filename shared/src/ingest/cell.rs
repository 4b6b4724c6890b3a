//! How one text cell is read: missing markers, booleans, numbers and ISO 8601 datetimes. This is
//! the one reader of cell text: ingest reads files with [`read_cell`], and serving reads the text
//! of a request's fields with [`read_field_text`], which accepts everything `read_cell` does
//! with the same value, so any value a training file holds means the same at prediction time.
//!
//! Decisions (documented for API users in the dataset docs):
//! - Cells are trimmed of surrounding whitespace before being classified; a string column keeps
//!   the untrimmed text.
//! - Missing: empty or whitespace-only, and pandas' default markers (`NA`, `N/A`, `n/a`, `null`,
//!   `NULL`, `NaN`, `nan`, `None`, `<NA>`, `#N/A`, …) so a file reads the same as with
//!   `pandas.read_csv`, which the baselines use.
//! - Booleans: `true`/`false` in any letter case. `yes`/`no`, `y`/`n`, `t`/`f` and `0`/`1` are
//!   not booleans: they stay strings (or integers), so a prediction gives back the labels the
//!   user wrote.
//! - Integers: optional sign and decimal digits, exactly representable as `f64` (|v| ≤ 2^53).
//!   A larger integer (an id, a card number) would lose digits as a number, so its column is
//!   read as a string instead.
//! - Floats: anything Rust's `f64` parser accepts that is finite (`1.5`, `-2e-3`, `.5`); `inf`
//!   and overflowing values are not numbers here, so their column is read as a string.
//! - Datetimes: `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM[:SS[.fraction]]`,
//!   optionally followed by `Z` or an offset `±HH[:MM]`; stored as epoch seconds, UTC. A time
//!   without an offset is taken as UTC.

use super::calendar::{F64, civil_from_days, days_from_civil, days_in_month};
use super::table::ColumnType;

/// pandas' default `na_values` (plus whitespace-only cells, handled by trimming first).
const MISSING_MARKERS: &[&str] = &[
    "", "NA", "N/A", "n/a", "null", "NULL", "NaN", "nan", "-NaN", "-nan", "None", "<NA>", "#N/A",
    "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN",
];

/// The largest integer magnitude an `f64` holds exactly.
const MAX_EXACT_INTEGER: i64 = 1 << 53;

/// A cell's value as a column of some type holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellValue<'a> {
    Missing,
    /// An integer, float, boolean (0/1) or datetime (epoch seconds UTC) column's value.
    Number(f64),
    /// A string column's value: the text as written, surrounding whitespace included.
    Text(&'a str),
}

/// Reads one cell as a column of `kind` holds it; `None` when the text is not a value of that
/// type. Missing markers (after trimming) are missing in every type.
pub fn read_cell(kind: ColumnType, raw: &str) -> Option<CellValue<'_>> {
    let t = raw.trim();
    if is_missing(t) {
        return Some(CellValue::Missing);
    }
    Some(match kind {
        ColumnType::String => CellValue::Text(raw),
        ColumnType::Integer => match parse_integer(t) {
            IntegerCell::Exact(v) => CellValue::Number(v),
            IntegerCell::TooLarge | IntegerCell::NotInteger => return None,
        },
        ColumnType::Float => CellValue::Number(parse_float(t)?),
        ColumnType::Boolean => CellValue::Number(if parse_bool(t)? { 1.0 } else { 0.0 }),
        ColumnType::Datetime => CellValue::Number(parse_datetime(t)?),
    })
}

/// Reads the text of a request field for an input column of `kind` (serving). It accepts what
/// [`read_cell`] accepts, with the same value, and two leniencies clients rely on that a file
/// never needs: a number field (integer or float) takes any finite number, as the model's input
/// is a float anyway; a boolean field also takes `yes`/`no` and `1`/`0` in any case (a file
/// column of those words is read as labels, so it never becomes a boolean input).
pub fn read_field_text(kind: ColumnType, raw: &str) -> Option<CellValue<'_>> {
    match kind {
        ColumnType::Integer | ColumnType::Float => read_cell(ColumnType::Float, raw),
        ColumnType::Boolean => read_cell(kind, raw).or_else(|| {
            let t = raw.trim();
            let is = |word: &str| t.eq_ignore_ascii_case(word);
            if is("yes") || t == "1" {
                Some(CellValue::Number(1.0))
            } else if is("no") || t == "0" {
                Some(CellValue::Number(0.0))
            } else {
                None
            }
        }),
        ColumnType::String | ColumnType::Datetime => read_cell(kind, raw),
    }
}

/// Whether a (trimmed) cell means "no value".
pub fn is_missing(trimmed: &str) -> bool {
    MISSING_MARKERS.contains(&trimmed)
}

pub fn parse_bool(trimmed: &str) -> Option<bool> {
    if trimmed.eq_ignore_ascii_case("true") {
        Some(true)
    } else if trimmed.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// What an integer-looking cell turned out to be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IntegerCell {
    Exact(f64),
    /// Integer syntax but too large to hold exactly as a number: the column must stay text.
    TooLarge,
    NotInteger,
}

pub fn parse_integer(trimmed: &str) -> IntegerCell {
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return IntegerCell::NotInteger;
    }
    match trimmed.parse::<i64>() {
        Ok(v) if (-MAX_EXACT_INTEGER..=MAX_EXACT_INTEGER).contains(&v) => {
            IntegerCell::Exact(v as f64)
        }
        _ => IntegerCell::TooLarge,
    }
}

/// A finite float, or `None`.
pub fn parse_float(trimmed: &str) -> Option<f64> {
    // Rust accepts "inf"/"infinity"/"nan" words; a number here must start like one.
    let first = trimmed.bytes().next()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return None;
    }
    trimmed.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Epoch seconds (UTC) of an ISO 8601 date or date-time, or `None`.
pub fn parse_datetime(trimmed: &str) -> Option<f64> {
    let b = trimmed.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let mut rest = &b[10..];
    let mut seconds = 0.0;
    let mut offset = 0i64;
    if !rest.is_empty() {
        if !matches!(rest[0], b'T' | b't' | b' ') || rest.len() < 6 || rest[3] != b':' {
            return None;
        }
        let hour = digits(&rest[1..3])?;
        let minute = digits(&rest[4..6])?;
        if hour > 23 || minute > 59 {
            return None;
        }
        seconds = (hour * 3600 + minute * 60) as f64;
        rest = &rest[6..];
        if rest.first() == Some(&b':') {
            let second = digits(rest.get(1..3)?)?;
            if second > 59 {
                return None;
            }
            seconds += second as f64;
            rest = &rest[3..];
            if matches!(rest.first(), Some(b'.' | b',')) {
                let len = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if len == 0 {
                    return None;
                }
                let fraction = std::str::from_utf8(&rest[1..1 + len]).ok()?;
                seconds += format!("0.{fraction}").parse::<f64>().ok()?;
                rest = &rest[1 + len..];
            }
        }
        offset = parse_offset(rest)?;
    }
    Some(days as f64 * 86_400.0 + seconds - offset as f64)
}

/// Seconds east of UTC for `Z`, `±HH`, `±HHMM`, `±HH:MM` or nothing.
fn parse_offset(b: &[u8]) -> Option<i64> {
    match b {
        [] | [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (hours, minutes) = match rest {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, m1, m2] | [h1, h2, b':', m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = hours * 3600 + minutes * 60;
            Some(if *sign == b'-' { -magnitude } else { magnitude })
        }
        _ => None,
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit()
            .then_some(acc * 10 + i64::from(c.wrapping_sub(b'0')))
    })
}

/// Epoch seconds as RFC 3339 UTC: `2024-03-01T12:00:00Z`, with milliseconds when the value has
/// a fraction (`…:00.250Z`). Works for any year a table can hold, unlike a formatting library
/// limited to 0000–9999.
pub fn format_rfc3339(epoch_seconds: f64) -> String {
    // Clamp to ±10^15 s (~31 million years) so the integer arithmetic below cannot overflow.
    let total_ms = (epoch_seconds.clamp(-1e15, 1e15) * 1000.0).round() as i64;
    let secs = total_ms.div_euclid(1000);
    let ms = total_ms.rem_euclid(1000);
    // Whole days below 2^53 (the clamp above keeps them there): exact as `f64`.
    let (year, month, day) = civil_from_days(&mut F64, &(secs.div_euclid(86_400) as f64));
    let (year, month, day) = (year as i64, month as i64, day as i64);
    let sod = secs.rem_euclid(86_400);
    let (h, m, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
    let fraction = if ms == 0 {
        String::new()
    } else {
        format!(".{ms:03}")
    };
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_markers_and_whitespace() {
        for m in ["", "NA", "N/A", "null", "NULL", "NaN", "nan", "None"] {
            assert!(is_missing(m), "{m}");
        }
        assert!(!is_missing("0") && !is_missing("none ") && !is_missing("na"));
    }

    #[test]
    fn booleans_are_true_false_only() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("False"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool("1"), None);
    }

    #[test]
    fn integers_keep_exactness() {
        assert_eq!(parse_integer("-42"), IntegerCell::Exact(-42.0));
        assert_eq!(parse_integer("+7"), IntegerCell::Exact(7.0));
        assert_eq!(parse_integer("9007199254740993"), IntegerCell::TooLarge);
        assert_eq!(
            parse_integer("99999999999999999999999"),
            IntegerCell::TooLarge
        );
        assert_eq!(parse_integer("1.0"), IntegerCell::NotInteger);
        assert_eq!(parse_integer("-"), IntegerCell::NotInteger);
    }

    #[test]
    fn floats_are_finite_numbers() {
        assert_eq!(parse_float("1.5e3"), Some(1500.0));
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("inf"), None);
        assert_eq!(parse_float("-infinity"), None);
        assert_eq!(parse_float("1e999"), None);
        assert_eq!(parse_float("1,5"), None);
    }

    #[test]
    fn datetimes_in_iso_forms() {
        assert_eq!(parse_datetime("1970-01-02"), Some(86_400.0));
        assert_eq!(
            parse_datetime("2024-02-29T12:30:15Z"),
            Some(1_709_209_815.0)
        );
        assert_eq!(parse_datetime("2024-02-29 12:30:15"), Some(1_709_209_815.0));
        assert_eq!(
            parse_datetime("2024-02-29T14:30:15+02:00"),
            Some(1_709_209_815.0)
        );
        assert_eq!(
            parse_datetime("2024-02-29T07:30:15-0500"),
            Some(1_709_209_815.0)
        );
        assert_eq!(parse_datetime("2024-02-29T12:30"), Some(1_709_209_800.0));
        assert_eq!(
            parse_datetime("2024-02-29T12:30:15.5Z"),
            Some(1_709_209_815.5)
        );
        assert_eq!(parse_datetime("2023-02-29"), None, "not a leap year");
        assert_eq!(parse_datetime("2024-13-01"), None);
        assert_eq!(parse_datetime("2024-01-01T25:00"), None);
        assert_eq!(parse_datetime("2024-01-01X"), None);
        assert_eq!(parse_datetime("2024-01-01T12:00:00.Z"), None);
        assert_eq!(parse_datetime("20240101"), None);
    }

    #[test]
    fn rfc3339_round_trips_through_the_parser() {
        for text in [
            "1969-12-31T23:59:59Z",
            "2024-02-29T12:30:15Z",
            "0001-01-01T00:00:00Z",
            "2024-02-29T12:30:15.250Z",
        ] {
            let secs = parse_datetime(text).unwrap();
            assert_eq!(format_rfc3339(secs), text);
        }
    }
}
