//! How the client commands print: aligned tables for people, the API's JSON for scripts
//! (`--json`), and progress bars on stderr (drawn only when stderr is a terminal).

use super::CliError;
use crate::client::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::Value;

/// Columns of text, each as wide as its widest cell.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| printable(c)).collect());
    }

    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = line.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == columns {
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// Label: value lines, labels aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (label, value) in fields {
        println!("{label:width$}  {}", printable(value));
    }
}

/// `text` with control characters other than newline and tab shown escaped (`\u{1b}`), not
/// sent to the terminal: names, intents and log lines come from the API, written by anyone
/// with a write key, and an escape sequence in them must not drive the reader's terminal.
pub fn printable(text: &str) -> String {
    let hostile = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(hostile) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if hostile(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `value` as indented JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Io(format!("cannot write JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// A JSON value as one table cell: strings bare, `null` as `-`, numbers at most 4 decimals.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => number(f),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// A float with at most 4 decimals, trailing zeros dropped.
pub fn number(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

/// A bar of bytes with throughput (uploads, downloads, CSV batches).
pub fn bytes_bar(message: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// A bar of percent (a build's `build_progress`).
pub fn percent_bar(message: &str) -> ProgressBar {
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}% {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

impl Progress for ProgressBar {
    fn set_total(&self, bytes: u64) {
        self.set_length(bytes);
    }

    fn advance(&self, bytes: u64) {
        self.inc(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let mut table = Table::new(&["NAME", "ROWS", "ID"]);
        table.row(vec!["titanic".into(), "891".into(), "ds_1".into()]);
        table.row(vec!["a".into(), "12345".into(), "ds_22".into()]);
        assert_eq!(
            table.render(),
            "NAME     ROWS   ID\ntitanic  891    ds_1\na        12345  ds_22\n"
        );
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(printable("plain text"), "plain text");
        assert_eq!(
            printable("survived\u{0}\u{1b}[31m\r\n"),
            "survived\\u{0}\\u{1b}[31m\\u{d}\n"
        );
        let mut table = Table::new(&["name"]);
        table.row(vec!["a\u{1b}]0;title\u{7}".into()]);
        assert!(!table.render().contains('\u{1b}'));
    }

    #[test]
    fn cells_read_plainly() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!("x")), "x");
        assert_eq!(cell(&json!(3)), "3");
        assert_eq!(cell(&json!(0.812345678)), "0.8123");
        assert_eq!(cell(&json!(2.5)), "2.5");
        assert_eq!(number(1.0), "1");
    }
}
