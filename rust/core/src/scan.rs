//! Whether a text needs scrubbing at all, in one pass.
//!
//! The log scrubs every body and client-supplied field for secrets and personal data, with
//! regular expressions that scan the whole text. Most texts hold none of what they look for.
//! [`Needles`] answers "could any of them match?" from the literals every match must contain
//! (a vendor's key prefix, a configured secret, `@` for an e-mail address) and a count of
//! ASCII digits (card and phone numbers need enough of them), with one multi-pattern search
//! (Aho-Corasick, SIMD-accelerated for small pattern sets). When it says no, the text is left
//! as it is; when it says maybe, the caller runs its exact scrubbers, which stay the only
//! definition of what is masked.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::{Error, Result};

/// The literals of a set of scrubbers, searched for together.
#[derive(Debug, Clone)]
pub struct Needles {
    automaton: Option<AhoCorasick>,
    digit_limit: usize,
}

impl Needles {
    /// `patterns`: literals, any of which makes a text worth scrubbing (empty ones are
    /// refused: they would match everywhere). `digit_limit`: a text with at least this many
    /// ASCII digits is worth scrubbing too; 0 counts none.
    pub fn new<P: AsRef<[u8]>>(patterns: &[P], digit_limit: usize) -> Result<Self> {
        if let Some(position) = patterns.iter().position(|p| p.as_ref().is_empty()) {
            return Err(Error::invalid_field(
                format!("patterns.{position}"),
                "an empty pattern matches every text",
            ));
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            // Leftmost-first, though any match answers: only then does the crate use its
            // SIMD searcher (Teddy), about ten times faster here on text with no match.
            let built = AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostFirst)
                .build(patterns)
                .map_err(|err| Error::invalid_field("patterns", err.to_string()))?;
            Some(built)
        };
        Ok(Self {
            automaton,
            digit_limit,
        })
    }

    /// True when no pattern occurs in `text` and it holds fewer digits than the limit: no
    /// scrubber built on these literals can change it.
    pub fn quiet(&self, text: &[u8]) -> bool {
        if let Some(automaton) = &self.automaton {
            if automaton.is_match(text) {
                return false;
            }
        }
        self.digit_limit == 0 || count_digits(text, self.digit_limit) < self.digit_limit
    }
}

/// ASCII digits in `text`, counted up to `limit`.
fn count_digits(text: &[u8], limit: usize) -> usize {
    let mut digits = 0;
    for byte in text {
        if byte.is_ascii_digit() {
            digits += 1;
            if digits >= limit {
                break;
            }
        }
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needles(patterns: &[&str], digits: usize) -> Needles {
        Needles::new(patterns, digits).expect("valid patterns")
    }

    #[test]
    fn a_text_without_any_pattern_is_quiet() {
        let found = needles(&["sk-", "fpk_", "@"], 0);
        assert!(found.quiet(b"{\"role\":\"user\",\"content\":\"hello there\"}"));
        assert!(found.quiet(b""));
    }

    #[test]
    fn any_pattern_anywhere_makes_it_worth_scrubbing() {
        let found = needles(&["sk-", "fpk_", "@"], 0);
        for text in ["sk-abc", "x fpk_1", "a@b.example", "tail sk-"] {
            assert!(!found.quiet(text.as_bytes()), "{text}");
        }
        let long = format!("{}sk-{}", "x".repeat(10_000), "y".repeat(10_000));
        assert!(!found.quiet(long.as_bytes()));
    }

    #[test]
    fn overlapping_patterns_are_each_found() {
        let found = needles(&["secret-value-1", "value"], 0);
        assert!(!found.quiet(b"the secret-value-1 here"));
        assert!(!found.quiet(b"the value here"));
    }

    #[test]
    fn enough_digits_make_it_worth_scrubbing() {
        let found = needles(&[], 9);
        assert!(found.quiet(b"created 12345678"));
        assert!(!found.quiet(b"created 123456789"));
        assert!(!found.quiet(b"+1 (555) 010-2345"));
        assert!(
            needles(&[], 0).quiet(b"4111 1111 1111 1111"),
            "no digit limit"
        );
    }

    #[test]
    fn only_ascii_digits_count() {
        let arabic_indic = "٠١٢٣٤٥٦٧٨٩٠١٢٣"; // fifteen digits, none ASCII
        assert!(needles(&[], 9).quiet(arabic_indic.as_bytes()));
    }

    #[test]
    fn an_empty_pattern_is_refused_by_position() {
        let err = Needles::new(&["sk-", ""], 0).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidField { param, .. } if param == "patterns.1"),
            "{err}"
        );
    }
}
