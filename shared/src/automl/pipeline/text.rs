//! How free text becomes numbers, the rule native prediction, explanations and the exported
//! graph share: a text's tokens are its maximal runs of ASCII letters and digits (any other
//! character separates them, as onnxruntime's byte-wise `[A-Za-z0-9]+` does), and a token
//! counts for the word of its lower-case form when it is written in one of that word's three
//! case forms (`good`, `Good`, `GOOD`): the graph matches exact strings and has no locale-free
//! lower-casing, so mixed forms (`gOOd`) count for nothing, in every runtime alike.

use std::collections::HashMap;

/// The tokens of `text`, in order.
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
}

/// The case forms of a (lower-case) word that count for it: as is, capitalized, upper case.
pub fn case_forms(word: &str) -> Vec<String> {
    let mut capitalized = word.to_string();
    if let Some(first) = capitalized.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let mut forms = vec![word.to_string(), capitalized, word.to_ascii_uppercase()];
    forms.dedup();
    forms.sort();
    forms.dedup();
    forms
}

/// The word a token counts for, if it is written in one of the word's case forms.
pub fn word_of(token: &str) -> Option<String> {
    let word = token.to_ascii_lowercase();
    let bytes = token.as_bytes();
    let rest_lower = bytes.iter().skip(1).all(|b| !b.is_ascii_uppercase());
    let all_upper = bytes.iter().all(|b| !b.is_ascii_lowercase());
    (rest_lower || all_upper).then_some(word)
}

/// The word features of one input: the vocabulary of a block of consecutive
/// [`super::Feature::WordCount`] features, `slot` = the feature's offset in the block.
#[derive(Debug, Clone, PartialEq)]
pub struct WordBlock {
    pub input: usize,
    /// The block's first feature.
    pub first: usize,
    pub slots: HashMap<String, usize>,
}

impl WordBlock {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Adds `text`'s count of each of the block's words to `counts` (one per slot).
    pub fn count(&self, text: &str, counts: &mut [f32]) {
        for token in tokens(text) {
            if let Some(word) = word_of(token)
                && let Some(&slot) = self.slots.get(&word)
                && let Some(c) = counts.get_mut(slot)
            {
                *c += 1.0;
            }
        }
    }
}

/// The word blocks of a pipeline's features, in feature order (a checked pipeline has one
/// block per text input).
pub fn word_blocks(features: &[super::Feature]) -> Vec<WordBlock> {
    let mut blocks: Vec<WordBlock> = Vec::new();
    for (j, feature) in features.iter().enumerate() {
        if let super::Feature::WordCount { input, word } = feature {
            match blocks.last_mut() {
                Some(b) if b.input == *input && b.first + b.slots.len() == j => {
                    let slot = b.slots.len();
                    b.slots.insert(word.clone(), slot);
                }
                _ => blocks.push(WordBlock {
                    input: *input,
                    first: j,
                    slots: HashMap::from([(word.clone(), 0)]),
                }),
            }
        }
    }
    blocks
}

/// Whether `word` can be a vocabulary word: a non-empty run of lower-case ASCII letters and
/// digits.
pub fn is_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_runs_of_ascii_letters_and_digits() {
        let t: Vec<&str> = tokens("Good movie, GOOD! don't  stop_me 3.5 İstanbul Écoute").collect();
        assert_eq!(
            t,
            [
                "Good", "movie", "GOOD", "don", "t", "stop", "me", "3", "5", "stanbul", "coute"
            ]
        );
        assert_eq!(tokens("").count(), 0);
        assert_eq!(tokens(" ,;").count(), 0);
    }

    #[test]
    fn a_token_counts_in_three_case_forms_only() {
        assert_eq!(word_of("good").as_deref(), Some("good"));
        assert_eq!(word_of("Good").as_deref(), Some("good"));
        assert_eq!(word_of("GOOD").as_deref(), Some("good"));
        assert_eq!(word_of("gOOd"), None);
        assert_eq!(word_of("GoOD"), None);
        assert_eq!(word_of("3d").as_deref(), Some("3d"));
        assert_eq!(case_forms("good"), ["GOOD", "Good", "good"]);
        assert_eq!(case_forms("a"), ["A", "a"]);
        assert_eq!(case_forms("42"), ["42"]);
        for form in case_forms("x1y") {
            assert_eq!(word_of(&form).as_deref(), Some("x1y"), "{form}");
        }
    }
}
