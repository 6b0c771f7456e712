//! The forms a secret takes in text: the raw value and every encoding a formatter or a protocol
//! commonly produces, each of which the [`Redactor`](crate::Redactor) masks.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// Secrets shorter than this many characters are not masked in free text.
///
/// A shorter value cannot be substring-masked without destroying output: `1`, `0`, `true`,
/// `5432` or `2026` would blank digits in every timestamp, count, port and year. Six characters
/// is the shortest length at which a value no longer collides with the numbers a log line is
/// made of (ports and PIDs have at most five digits, years four, elapsed times in
/// milliseconds stay below six digits for the first 100 seconds), while it still catches short
/// human passwords (`hunter2`) and six-digit PINs. initkit's own code never prints secret values
/// whatever their length; publishing a shorter secret logs a warning naming its path.
///
/// # Examples
///
/// ```
/// use init_core::{MIN_SECRET_LEN, Redactor};
///
/// let redactor = Redactor::new();
/// assert!(!redactor.register("12345"));
/// assert!(redactor.register("123456"));
/// assert_eq!(MIN_SECRET_LEN, 6);
/// ```
pub const MIN_SECRET_LEN: usize = 6;

/// An encoded form shorter than this many bytes is not registered: a short base64 fragment
/// (four characters for three bytes) matches ordinary words.
const MIN_ENCODED_LEN: usize = 8;

/// Every form of `secret` worth masking: the value itself, its JSON-escaped forms (with and
/// without `\u` escapes for non-ASCII), its Rust `Debug`-escaped form, base64 (standard and
/// URL-safe alphabets, at the three byte offsets it can start at inside a longer encoded text,
/// the way GitHub Actions' runner registers them, so `base64("user:" + secret)` is caught), and
/// URL-encoding (percent-encoding of everything but the unreserved characters, and the form
/// variant with `+` for a space). A multi-line secret adds each of its lines (trimmed) and their
/// forms. Forms shorter than the minimum are left out; the result has no duplicates.
pub(crate) fn forms(secret: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if secret.chars().count() < MIN_SECRET_LEN {
        return out;
    }
    add_forms(secret, &mut out);
    if secret.contains(['\n', '\r']) {
        for line in secret.lines().map(str::trim) {
            if line.chars().count() >= MIN_SECRET_LEN {
                add_forms(line, &mut out);
            }
        }
    }
    out
}

fn add_forms(value: &str, out: &mut Vec<String>) {
    let mut push = |form: String, min: usize| {
        if form.len() >= min && !out.contains(&form) {
            out.push(form);
        }
    };
    push(value.to_owned(), 1);
    push(json_escaped(value, false), 1);
    push(json_escaped(value, true), 1);
    push(debug_escaped(value), 1);
    push(percent_encoded(value, false), 1);
    push(percent_encoded(value, true), 1);
    let bytes = value.as_bytes();
    for shift in 0..3 {
        let Some(rest) = bytes.get(shift..) else {
            break;
        };
        // Only whole 3-byte groups: what follows the secret changes the last group.
        let whole = &rest[..rest.len() / 3 * 3];
        push(STANDARD_NO_PAD.encode(whole), MIN_ENCODED_LEN);
        push(URL_SAFE_NO_PAD.encode(whole), MIN_ENCODED_LEN);
    }
}

/// The text between the quotes of the JSON string for `value`; with `ascii`, every non-ASCII
/// character as `\uXXXX` (surrogate pairs above the BMP), as Python's `json.dumps` writes it.
fn json_escaped(value: &str, ascii: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The text between the quotes of `format!("{value:?}")`.
fn debug_escaped(value: &str) -> String {
    let quoted = format!("{value:?}");
    quoted[1..quoted.len() - 1].to_owned()
}

/// Percent-encoding of every byte but `A-Z a-z 0-9 - . _ ~` (uppercase hex); with `form`, a
/// space is `+` instead of `%20` (`application/x-www-form-urlencoded`).
fn percent_encoded(value: &str, form: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b));
            }
            b' ' if form => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_have_no_forms() {
        assert!(forms("12345").is_empty());
        assert!(forms("").is_empty());
        assert!(!forms("123456").is_empty());
        // Characters, not bytes.
        assert!(forms("日本語").is_empty());
    }

    #[test]
    fn escaped_forms_match_what_formatters_write() {
        let secret = "pa\"ss\\wörd\n1";
        let all = forms(secret);
        let json = serde_json::to_string(secret).unwrap();
        assert!(all.contains(&json[1..json.len() - 1].to_owned()));
        assert!(all.contains(&"pa\\\"ss\\\\w\\u00f6rd\\n1".to_owned()));
        let debug = format!("{secret:?}");
        assert!(all.contains(&debug[1..debug.len() - 1].to_owned()));
        assert!(all.contains(&"pa%22ss%5Cw%C3%B6rd%0A1".to_owned()));
    }

    #[test]
    fn base64_of_a_secret_after_a_prefix_is_caught_at_every_offset() {
        let secret = "hunter2-password";
        let all = forms(secret);
        for prefix in ["", "u:", "us:", "user:", "orders:"] {
            let encoded = STANDARD_NO_PAD.encode(format!("{prefix}{secret}"));
            assert!(
                all.iter().any(|f| encoded.contains(f.as_str())),
                "{prefix:?}: {encoded}"
            );
        }
    }

    #[test]
    fn lines_of_a_multi_line_secret_are_forms_of_their_own() {
        let all = forms("-----BEGIN KEY-----\nMIIEvQIBADAN\nab\n-----END KEY-----\n");
        assert!(all.contains(&"MIIEvQIBADAN".to_owned()));
        assert!(!all.contains(&"ab".to_owned()));
    }
}
