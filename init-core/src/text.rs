//! Text helpers for messages (cutting at a character boundary, lowercasing a first letter)
//! and a path's directory.

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

/// `text` with its first letter lowercased when it starts a capitalised word (`Permission
/// denied` reads `permission denied`; `TLS handshake` stays). Sibling crates reach it through
/// `init_core::__private`; it is not a public API.
pub fn lowercase_first(text: &str) -> std::borrow::Cow<'_, str> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), Some(d)) if c.is_uppercase() && !d.is_uppercase() => {
            let mut out = c.to_lowercase().collect::<String>();
            out.push_str(&text[c.len_utf8()..]);
            out.into()
        }
        _ => text.into(),
    }
}

/// The directory that holds `path`: its parent, or `.` for a bare file name. Sibling crates
/// reach it through `init_core::__private`; it is not a public API.
pub fn parent_or_dot(path: &std::path::Path) -> &std::path::Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::{lowercase_first, parent_or_dot, truncate_utf8};
    use std::path::Path;

    #[test]
    fn a_cut_never_splits_a_character() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("short", 100), "short");
    }

    #[test]
    fn only_a_capitalised_first_word_is_lowercased() {
        assert_eq!(lowercase_first("Permission denied"), "permission denied");
        assert_eq!(
            lowercase_first("TLS handshake failed"),
            "TLS handshake failed"
        );
        assert_eq!(lowercase_first("É"), "É");
        assert_eq!(lowercase_first(""), "");
    }

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(parent_or_dot(Path::new("a.pem")), Path::new("."));
        assert_eq!(parent_or_dot(Path::new("/etc/a.pem")), Path::new("/etc"));
        assert_eq!(parent_or_dot(Path::new("/")), Path::new("."));
    }
}
