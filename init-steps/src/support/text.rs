//! Small text helpers the families share: a text cut with `…`, and the core's first-letter
//! lowercasing and parent-or-`.` (re-exported so every family reaches them in one place).

use std::borrow::Cow;

#[allow(unused_imports)] // Each family uses part of them.
pub(crate) use init_core::__private::{lowercase_first, parent_or_dot};

/// `text` cut to at most `max` bytes at a character boundary, with `…` added when cut.
pub(crate) fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    format!("{}…", init_core::__private::truncate_utf8(text, max)).into()
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn a_cut_text_ends_with_an_ellipsis_and_a_short_one_is_kept() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("héllo", 2), "h…");
        assert_eq!(shorten("abcdef", 3), "abc…");
    }
}
