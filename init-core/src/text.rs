//! Text helpers for messages: cutting at a character boundary.

/// The longest prefix of `text` that is at most `max_bytes` long and ends at a character
/// boundary (a message cap must never split a UTF-8 character).
/// Sibling crates reach it through `init_core::__private`; it is not a public API.
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

#[cfg(test)]
mod tests {
    use super::truncate_utf8;

    #[test]
    fn a_cut_never_splits_a_character() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("short", 100), "short");
    }
}
