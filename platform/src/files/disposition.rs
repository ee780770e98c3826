//! A `Content-Disposition` that is safe whatever name the uploader chose: always
//! `attachment` (a browser never renders an uploaded HTML file inline as the site's own), an
//! ASCII fallback `filename` with quotes, backslashes, separators and control characters
//! replaced, and the exact name percent-encoded in `filename*` (RFC 6266, RFC 8187).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 8187 `attr-char`: everything else is percent-encoded.
const ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '/' | '%' | ';') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let fallback = if fallback.trim_matches(['.', ' ', '_']).is_empty() {
        "file".to_owned()
    } else {
        fallback
    };
    format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_names_cannot_break_out_of_the_header() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        let d = content_disposition("a\"; filename=evil.html");
        assert!(d.starts_with("attachment; filename=\"a__ filename=evil.html\"; filename*=UTF-8''a%22%3B%20"));
        let d = content_disposition("日本.txt");
        assert!(
            d.contains("filename=\"__.txt\"") && d.contains("UTF-8''%E6%97%A5%E6%9C%AC.txt"),
            "{d}"
        );
        assert!(content_disposition("..").contains("filename=\"file\""));
        assert!(!content_disposition("a\r\nSet-Cookie: x").contains('\n'));
    }
}
