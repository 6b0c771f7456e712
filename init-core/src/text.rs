//! Text helpers for messages: cutting at a character boundary.

/// The longest prefix of `text` that is at most `max_bytes` long and ends at a character
/// boundary (a message cap must never split a UTF-8 character).
///
/// # Examples
///
/// ```
/// use init_core::truncate_utf8;
/// assert_eq!(truncate_utf8("héllo", 2), "h");
/// assert_eq!(truncate_utf8("héllo", 3), "hé");
/// assert_eq!(truncate_utf8("short", 100), "short");
/// ```
pub fn truncate_utf8(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut cut = max_bytes;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}
