//! The one rule every short human-readable field shares (names, remarks, tags, reactions):
//! no control characters (C0, DEL, C1, so no NUL and no newline) and no bidirectional
//! formatting characters, which make a name display as something else than it is
//! (U+202E, right-to-left override, makes `alice<U+202E>txt.exe` read `aliceexe.txt`).
//! Message text is not short text: it keeps newlines.

/// Whether `c` may not appear in short text.
pub fn is_forbidden_in_short_text(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Whether `s` holds a character short text may not.
pub fn has_forbidden_chars(s: &str) -> bool {
    s.chars().any(is_forbidden_in_short_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_formatting_are_forbidden() {
        for bad in [
            "a\u{0}b",
            "a\nb",
            "a\rb",
            "a\tb",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{9b}b",
            "alice\u{202E}txt.exe",
            "\u{202A}x",
            "\u{202B}x",
            "\u{202C}x",
            "\u{202D}x",
            "\u{2066}x",
            "\u{2067}x",
            "\u{2068}x",
            "\u{2069}x",
            "\u{200F}x",
            "\u{061C}x",
        ] {
            assert!(has_forbidden_chars(bad), "{bad:?}");
        }
        for good in ["Alice", "Zoë", "张伟", "👍", "O'Brien - team #2", "עברית", "العربية"] {
            assert!(!has_forbidden_chars(good), "{good:?}");
        }
    }
}
