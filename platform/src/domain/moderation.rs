//! Moderation data: an app's sensitive-word lists, and the "forever" used by bans and mutes.
//! Matching the words against messages is the pipeline's (`delivery::moderation`).

use serde::{Deserialize, Serialize};

use super::UnixMillis;

/// A ban or mute "until forever": 9999-12-31T23:59:59.999Z. A real instant, so it stays
/// exact in JSON numbers (JavaScript clients) and compares like any other time.
pub const FOREVER: UnixMillis = 253_402_300_799_999;

/// Most lists an app may keep.
pub const MAX_WORD_LISTS: usize = 50;
/// Most words in one list.
pub const MAX_WORDS_PER_LIST: usize = 10_000;
/// Longest word, in characters.
pub const MAX_WORD_CHARS: usize = 64;

/// What happens to a message that contains a word of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum WordPolicy {
    /// Each character of a matched word becomes `*`; the message is sent.
    Replace,
    /// The send fails with `content_rejected`.
    Reject,
}

impl WordPolicy {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// A named list of sensitive words of one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordList {
    /// 1–64 characters of `[A-Za-z0-9_.-]`, unique in the app.
    pub name: String,
    pub policy: WordPolicy,
    /// Trimmed, non-empty, without duplicates, in the order given.
    pub words: Vec<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// Checks a list name; the message names the rule.
pub fn validate_word_list_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err("name must be 1 to 64 characters of [A-Za-z0-9_.-]".into())
    }
}

/// Trims the words, drops duplicates (ASCII case-insensitively, as they match) and checks
/// the limits; the message names the rule.
pub fn normalize_words(words: Vec<String>) -> Result<Vec<String>, String> {
    if words.len() > MAX_WORDS_PER_LIST {
        return Err(format!("words must hold at most {MAX_WORDS_PER_LIST} words"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(words.len());
    for w in words {
        let w = w.trim();
        if w.is_empty() {
            return Err("words must not be empty or blank".into());
        }
        if w.chars().count() > MAX_WORD_CHARS {
            return Err(format!("words must be at most {MAX_WORD_CHARS} characters each"));
        }
        if seen.insert(w.to_ascii_lowercase()) {
            out.push(w.to_owned());
        }
    }
    if out.is_empty() {
        return Err("words must hold at least one word".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_pattern() {
        assert!(validate_word_list_name("profanity-en_1.0").is_ok());
        assert!(validate_word_list_name("").is_err());
        assert!(validate_word_list_name("has space").is_err());
        assert!(validate_word_list_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn words_are_trimmed_and_deduplicated_ignoring_ascii_case() {
        let w = normalize_words(vec![" Bad ".into(), "bad".into(), "坏蛋".into()]);
        assert_eq!(w, Ok(vec!["Bad".to_owned(), "坏蛋".to_owned()]));
        assert!(normalize_words(vec![]).is_err());
        assert!(normalize_words(vec!["  ".into()]).is_err());
        assert!(normalize_words(vec!["x".repeat(65)]).is_err());
    }
}
