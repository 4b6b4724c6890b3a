//! Which column to predict: the explicit `target`, else an `output_schema` field naming a column,
//! else the column the intent names, matched forgivingly ("churn" finds `churned`, "sale price"
//! finds `SalePrice`). When none or several fit, the error names the candidates so the API can
//! refuse the build with a useful 422.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    #[error("target column `{name}` does not exist; columns are: {}", columns.join(", "))]
    UnknownColumn { name: String, columns: Vec<String> },
    #[error("the intent does not name any column; columns are: {}", columns.join(", "))]
    NoMatch { columns: Vec<String> },
    #[error("the intent fits several columns: {}; pass `target` to choose", candidates.join(", "))]
    Ambiguous { candidates: Vec<String> },
}

impl TargetError {
    /// The columns a user could pick from, for error details.
    pub fn candidates(&self) -> &[String] {
        match self {
            TargetError::UnknownColumn { columns, .. } | TargetError::NoMatch { columns } => {
                columns
            }
            TargetError::Ambiguous { candidates } => candidates,
        }
    }
}

/// Resolves the target column name among `columns`.
pub fn resolve_target(
    columns: &[&str],
    intent: &str,
    explicit: Option<&str>,
    output_fields: &[String],
) -> Result<String, TargetError> {
    let all = || columns.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    if let Some(name) = explicit.map(str::trim).filter(|n| !n.is_empty()) {
        return exact_column(columns, name).ok_or_else(|| TargetError::UnknownColumn {
            name: name.to_string(),
            columns: all(),
        });
    }
    // An output schema field that is a column's name is the target (`churn_probability` is not).
    let named: Vec<String> = dedup(
        output_fields
            .iter()
            .filter_map(|f| exact_column(columns, f))
            .collect(),
    );
    match named.len() {
        1 => return Ok(named[0].clone()),
        n if n > 1 => return Err(TargetError::Ambiguous { candidates: named }),
        _ => {}
    }
    let mut phrases: Vec<String> = vec![intent.to_string()];
    // Output fields that only loosely name a column still hint at the target.
    phrases.extend(output_fields.iter().map(|f| format!("predict {f}")));
    for phrase in &phrases {
        match match_intent(columns, phrase) {
            Ok(name) => return Ok(name),
            Err(TargetError::NoMatch { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(TargetError::NoMatch { columns: all() })
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

/// A column whose name equals `name` exactly, else ignoring case and punctuation.
fn exact_column(columns: &[&str], name: &str) -> Option<String> {
    if let Some(c) = columns.iter().find(|c| **c == name) {
        return Some(c.to_string());
    }
    let key = squash(name);
    let hits: Vec<&&str> = columns.iter().filter(|c| squash(c) == key).collect();
    (hits.len() == 1 && !key.is_empty()).then(|| hits[0].to_string())
}

/// Lowercase alphanumerics only: `Sale.Price` and `sale_price` both become `saleprice`.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Splits a name or a sentence into lowercase word tokens, also at camelCase and letter/digit
/// boundaries (`SalePrice` → sale, price; `X1st.Flr.SF` → x, 1, st, flr, sf).
pub(crate) fn tokenize(s: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut prev: Option<char> = None;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            prev = None;
            continue;
        }
        if let Some(p) = prev {
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = (p.is_lowercase() && c.is_uppercase())
                || (p.is_uppercase() && c.is_uppercase() && next_lower)
                || (p.is_alphabetic() != c.is_alphabetic());
            if boundary && !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
        }
        cur.extend(c.to_lowercase());
        prev = Some(c);
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    tokens
}

/// A light stemmer: enough that churn/churned/churning, survive/survived/survival, price/prices,
/// species/specie and class/classes compare equal or as prefixes.
pub(crate) fn stem(token: &str) -> String {
    let mut t = token.to_string();
    for suffix in ["ing", "ed", "es", "s", "e", "al", "ly"] {
        if t.len() >= suffix.len() + 3 && t.ends_with(suffix) && !t.ends_with("ss") {
            t.truncate(t.len() - suffix.len());
            break;
        }
    }
    t
}

fn tokens_match(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (sa, sb) = (stem(a), stem(b));
    if sa == sb {
        return true;
    }
    let (short, long) = if sa.len() <= sb.len() {
        (&sa, &sb)
    } else {
        (&sb, &sa)
    };
    short.len() >= 4 && long.starts_with(short.as_str())
}

/// Words that never name a target: grammar, and the verbs and nouns of asking.
const STOP_WORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "for",
    "to",
    "in",
    "on",
    "at",
    "is",
    "are",
    "be",
    "will",
    "would",
    "can",
    "could",
    "should",
    "does",
    "do",
    "did",
    "has",
    "have",
    "had",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "my",
    "our",
    "their",
    "his",
    "her",
    "me",
    "we",
    "i",
    "you",
    "and",
    "or",
    "not",
    "if",
    "whether",
    "what",
    "which",
    "who",
    "whose",
    "how",
    "much",
    "many",
    "when",
    "where",
    "why",
    "predict",
    "predicts",
    "predicted",
    "predicting",
    "prediction",
    "predictions",
    "estimate",
    "estimates",
    "estimated",
    "estimating",
    "estimation",
    "forecast",
    "forecasting",
    "classify",
    "classifying",
    "classification",
    "determine",
    "guess",
    "tell",
    "identify",
    "detect",
    "know",
    "find",
    "model",
    "build",
    "train",
    "want",
    "like",
    "please",
    "likely",
    "likelihood",
    "chance",
    "probability",
    "column",
    "each",
    "given",
    "row",
    "rows",
    "data",
    "dataset",
    "new",
    "future",
    "next",
    "some",
    "all",
    "any",
    "they",
    "them",
    "after",
    "before",
    "one",
    "going",
    "get",
    "gets",
    "got",
    "by",
    "as",
    "with",
    "into",
    "about",
    "per",
    "than",
    "then",
    "so",
    "based",
    "using",
    "use",
    "from",
    "via",
];

/// Words after which the rest of the sentence lists inputs, not the target.
const FEATURE_MARKERS: &[&str] = &["from", "using", "given", "based", "via", "with", "by"];
/// Words after which the target phrase starts.
const TARGET_MARKERS: &[&str] = &[
    "predict",
    "predicts",
    "predicting",
    "estimate",
    "estimating",
    "forecast",
    "forecasting",
    "classify",
    "determine",
    "guess",
    "identify",
    "detect",
    "whether",
    "which",
    "what",
];

fn match_intent(columns: &[&str], intent: &str) -> Result<String, TargetError> {
    let words = tokenize(intent);
    // Target phrase: after the last target marker that precedes the first feature marker, and
    // before that feature marker. Words after the feature marker name inputs.
    let feature_at = words
        .iter()
        .position(|w| FEATURE_MARKERS.contains(&w.as_str()));
    let head_end = feature_at.unwrap_or(words.len());
    let head_start = words[..head_end]
        .iter()
        .rposition(|w| TARGET_MARKERS.contains(&w.as_str()))
        .map_or(0, |i| i + 1);
    let content = |ws: &[String]| -> Vec<String> {
        ws.iter()
            .filter(|w| !STOP_WORDS.contains(&w.as_str()))
            .cloned()
            .collect()
    };
    let mut target_words = content(&words[head_start..head_end]);
    if target_words.is_empty() {
        target_words = content(&words[..head_end]);
    }
    if target_words.is_empty() {
        return Err(TargetError::NoMatch { columns: vec![] });
    }
    let scored: Vec<(String, Score)> = columns
        .iter()
        .filter_map(|c| score_column(c, &target_words).map(|s| (c.to_string(), s)))
        .collect();
    let Some(best) = scored.iter().map(|(_, s)| *s).max() else {
        return Err(TargetError::NoMatch { columns: vec![] });
    };
    let top: Vec<String> = scored
        .iter()
        .filter(|(_, s)| *s == best)
        .map(|(c, _)| c.clone())
        .collect();
    if top.len() == 1 {
        Ok(top[0].clone())
    } else {
        Err(TargetError::Ambiguous { candidates: top })
    }
}

/// How well a column name is covered by the target words: the share of the name's characters
/// matched (in thousandths, so it orders exactly), then the number of words matched, then how
/// late in the phrase the last match is (the head noun comes last: "sale price of a house").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    coverage: u32,
    matched: u32,
}

fn score_column(column: &str, words: &[String]) -> Option<Score> {
    let col_tokens: Vec<String> = tokenize(column)
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect();
    let total: usize = col_tokens.iter().map(|t| t.len()).sum();
    if total == 0 {
        return None;
    }
    let mut covered = 0usize;
    let mut matched = 0u32;
    for t in &col_tokens {
        if words.iter().any(|w| tokens_match(w, t)) {
            covered += t.len();
            matched += 1;
        } else if t.len() >= 6 {
            // Names glued without separators (`saleprice`): count intent words found inside.
            let inner: usize = words
                .iter()
                .filter(|w| w.len() >= 3 && t.contains(stem(w).as_str()))
                .map(|w| w.len().min(t.len()))
                .sum();
            if inner > 0 {
                covered += inner.min(t.len());
                matched += 1;
            }
        }
    }
    if matched == 0 {
        return None;
    }
    Some(Score {
        coverage: (covered * 1000 / total) as u32,
        matched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(columns: &[&str], intent: &str) -> Result<String, TargetError> {
        resolve_target(columns, intent, None, &[])
    }

    #[test]
    fn intents_find_the_column_they_name() {
        let telco = [
            "customer_id",
            "tenure",
            "contract",
            "monthly_charges",
            "churned",
        ];
        let ames = ["Id", "Lot.Area", "Neighborhood", "Year.Built", "SalePrice"];
        let ames2 = [
            "area",
            "price",
            "MS.SubClass",
            "Lot.Area",
            "Sale.Type",
            "Sale.Condition",
        ];
        let titanic = ["pclass", "survived", "sex", "age", "sibsp", "parch"];
        let penguins = ["species", "island", "bill_length_mm", "sex", "year"];
        let loans = [
            "emp_length",
            "state",
            "loan_amount",
            "loan_purpose",
            "grade",
            "issue_month",
        ];
        let wine = ["alcohol", "malic_acid", "proline", "cultivar"];
        let cancer = ["mean radius", "mean texture", "worst area", "diagnosis"];
        let diabetes = ["age", "sex", "bmi", "bp", "s1", "progression"];
        let diamonds = ["carat", "cut", "color", "clarity", "depth", "price"];
        let cases: &[(&[&str], &str, &str)] = &[
            (&telco, "predict customer churn from usage", "churned"),
            (&telco, "Will the customer churn?", "churned"),
            (&["churn", "tenure", "contract"], "predict churn", "churn"),
            (
                &["Churn", "tenure"],
                "which customers are going to churn",
                "Churn",
            ),
            (&ames, "estimate the sale price of a house", "SalePrice"),
            (&ames2, "estimate the sale price of a house", "price"),
            (
                &ames2,
                "predict house prices from area and neighborhood",
                "price",
            ),
            (&titanic, "predict whether a passenger survived", "survived"),
            (&titanic, "did they survive?", "survived"),
            (&penguins, "which species is this penguin", "species"),
            (
                &penguins,
                "predict species from bill length and island",
                "species",
            ),
            (&loans, "predict the grade of a loan", "grade"),
            (&loans, "predict grade", "grade"),
            (
                &wine,
                "predict the cultivar of a wine from its chemistry",
                "cultivar",
            ),
            (&cancer, "predict the diagnosis", "diagnosis"),
            (
                &cancer,
                "diagnose tumours from cell measurements",
                "diagnosis",
            ),
            (
                &diabetes,
                "predict disease progression after one year",
                "progression",
            ),
            (
                &diamonds,
                "estimate the price of a diamond from carat, cut and clarity",
                "price",
            ),
            (&diamonds, "predict price using carat", "price"),
        ];
        for (columns, intent, expected) in cases {
            assert_eq!(
                resolve(columns, intent).as_deref(),
                Ok(*expected),
                "intent {intent:?}"
            );
        }
    }

    #[test]
    fn columns_named_as_inputs_are_not_targets() {
        let cols = ["age", "income", "defaulted"];
        assert_eq!(
            resolve(&cols, "predict default from age and income").as_deref(),
            Ok("defaulted")
        );
        // Only input words: nothing names a target.
        assert!(matches!(
            resolve(&cols, "from age and income"),
            Err(TargetError::NoMatch { .. })
        ));
    }

    #[test]
    fn ambiguous_and_unmatched_intents_list_candidates() {
        let cols = ["price_usd", "price_eur", "weight"];
        match resolve(&cols, "predict the price") {
            Err(TargetError::Ambiguous { candidates }) => {
                assert_eq!(
                    candidates,
                    vec!["price_usd".to_string(), "price_eur".to_string()]
                )
            }
            other => panic!("expected ambiguity, got {other:?}"),
        }
        match resolve(&cols, "predict the weather tomorrow") {
            Err(TargetError::NoMatch { columns }) => assert_eq!(columns.len(), 3),
            other => panic!("expected no match, got {other:?}"),
        }
    }

    #[test]
    fn explicit_target_and_output_schema_win() {
        let cols = ["price", "churn", "Sale Price"];
        assert_eq!(
            resolve_target(&cols, "predict churn", Some("price"), &[]).as_deref(),
            Ok("price")
        );
        assert_eq!(
            resolve_target(&cols, "x", Some("sale_price"), &[]).as_deref(),
            Ok("Sale Price")
        );
        assert!(matches!(
            resolve_target(&cols, "predict churn", Some("nope"), &[]),
            Err(TargetError::UnknownColumn { .. })
        ));
        let fields = vec!["churn".to_string(), "churn_probability".to_string()];
        assert_eq!(
            resolve_target(&cols, "predict price", None, &fields).as_deref(),
            Ok("churn")
        );
        let loose = vec!["churn_prediction".to_string()];
        assert_eq!(
            resolve_target(&cols, "do it", None, &loose).as_deref(),
            Ok("churn")
        );
    }

    #[test]
    fn tokenizer_splits_names_like_people_write_them() {
        assert_eq!(tokenize("SalePrice"), vec!["sale", "price"]);
        assert_eq!(tokenize("Lot.Frontage"), vec!["lot", "frontage"]);
        assert_eq!(tokenize("customerID"), vec!["customer", "id"]);
        assert_eq!(tokenize("X1st.Flr.SF"), vec!["x", "1", "st", "flr", "sf"]);
        assert_eq!(tokenize("HTTPCode"), vec!["http", "code"]);
    }
}
