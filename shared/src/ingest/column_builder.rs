//! Growing one compact [`Column`] value by value, shared by the CSV and Parquet readers.

use std::collections::HashMap;

use super::table::{Column, ColumnData, ColumnType, MISSING_CODE};

/// String values dictionary-encoded as they arrive. Each distinct value is held once (as a map
/// key while building, moved into `levels` at the end).
#[derive(Debug, Default)]
pub struct DictionaryBuilder {
    index: HashMap<String, u32>,
    codes: Vec<u32>,
}

impl DictionaryBuilder {
    pub fn with_capacity(rows: usize) -> Self {
        DictionaryBuilder {
            index: HashMap::new(),
            codes: Vec::with_capacity(rows),
        }
    }

    pub fn push(&mut self, value: Option<&str>) {
        let code = match value {
            None => MISSING_CODE,
            Some(v) => match self.index.get(v) {
                Some(&code) => code,
                None => {
                    // At most MAX_ROWS rows, so at most MAX_ROWS (< MISSING_CODE) levels.
                    let code = self.index.len() as u32;
                    self.index.insert(v.to_owned(), code);
                    code
                }
            },
        };
        self.codes.push(code);
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn finish(self) -> ColumnData {
        let mut levels = vec![String::new(); self.index.len()];
        for (value, code) in self.index {
            levels[code as usize] = value;
        }
        ColumnData::Categorical {
            codes: self.codes,
            levels,
        }
    }
}

/// One column under construction.
#[derive(Debug)]
pub enum ColumnBuilder {
    /// Integer, float, boolean (0/1) or datetime (epoch seconds) values; `NaN` = missing.
    Numeric {
        kind: ColumnType,
        values: Vec<f64>,
    },
    Text(DictionaryBuilder),
}

impl ColumnBuilder {
    pub fn new(kind: ColumnType, rows: usize) -> Self {
        match kind {
            ColumnType::String => ColumnBuilder::Text(DictionaryBuilder::with_capacity(rows)),
            kind => ColumnBuilder::Numeric {
                kind,
                values: Vec::with_capacity(rows),
            },
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ColumnBuilder::Numeric { values, .. } => values.len(),
            ColumnBuilder::Text(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Push a number (`NaN` for missing). On a text column the number is written as text, which
    /// only happens after [`Self::push_integer`] turned an integer column into text.
    pub fn push_number(&mut self, value: f64) {
        match self {
            ColumnBuilder::Numeric { values, .. } => values.push(value),
            ColumnBuilder::Text(d) => {
                d.push((!value.is_nan()).then(|| integer_text(value)).as_deref())
            }
        }
    }

    pub fn push_text(&mut self, value: Option<&str>) {
        match self {
            ColumnBuilder::Text(d) => d.push(value),
            // Only text columns receive text; a mismatch is a reader bug, so keep the row count
            // right rather than panic.
            ColumnBuilder::Numeric { values, .. } => values.push(f64::NAN),
        }
    }

    /// Push an integer (`None` for missing). An integer column whose values all fit exactly in
    /// an `f64` stays numeric; the first value that does not (|v| > 2^53, e.g. a 64-bit id)
    /// turns the whole column into text so no digit is lost.
    pub fn push_integer(&mut self, value: Option<i128>) {
        const MAX_EXACT: i128 = 1 << 53;
        match value {
            None => self.push_number(f64::NAN),
            Some(v) if (-MAX_EXACT..=MAX_EXACT).contains(&v) => self.push_number(v as f64),
            Some(v) => {
                if let ColumnBuilder::Numeric { values, .. } = self {
                    let mut text = DictionaryBuilder::with_capacity(values.capacity());
                    for &x in values.iter() {
                        text.push((!x.is_nan()).then(|| integer_text(x)).as_deref());
                    }
                    *self = ColumnBuilder::Text(text);
                }
                self.push_text(Some(&v.to_string()));
            }
        }
    }

    pub fn finish(self, name: String) -> Column {
        match self {
            ColumnBuilder::Numeric { kind, values } => Column {
                name,
                kind,
                data: ColumnData::Numeric(values),
            },
            ColumnBuilder::Text(d) => Column {
                name,
                kind: ColumnType::String,
                data: d.finish(),
            },
        }
    }
}

fn integer_text(value: f64) -> String {
    format!("{}", value as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_keeps_first_appearance_order() {
        let mut d = DictionaryBuilder::default();
        for v in [Some("b"), None, Some("a"), Some("b")] {
            d.push(v);
        }
        assert_eq!(
            d.finish(),
            ColumnData::Categorical {
                codes: vec![0, MISSING_CODE, 1, 0],
                levels: vec!["b".into(), "a".into()]
            }
        );
    }

    #[test]
    fn oversized_integer_turns_column_into_text() {
        let mut b = ColumnBuilder::new(ColumnType::Integer, 3);
        b.push_integer(Some(5));
        b.push_integer(None);
        b.push_integer(Some(9_007_199_254_740_993));
        b.push_integer(Some(5));
        let col = b.finish("id".into());
        assert_eq!(col.kind, ColumnType::String);
        assert_eq!(
            col.data,
            ColumnData::Categorical {
                codes: vec![0, MISSING_CODE, 1, 0],
                levels: vec!["5".into(), "9007199254740993".into()]
            }
        );
    }
}
