//! The reference finder: the filters a template applies, with their lines.

/// Every filter a template applies, with its line: names after a `|` and after `{% filter`,
/// inside `{{ }}` and `{% %}` (strings, comments and raw blocks skipped). Run on a template
/// that parsed, so its blocks are well formed.
pub(super) fn filter_uses(source: &str) -> Vec<(String, usize)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let line_at = |pos: usize| source[..pos].matches('\n').count() + 1;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'{', b'#') => {
                i = source[i + 2..]
                    .find("#}")
                    .map_or(bytes.len(), |end| i + 2 + end + 2);
            }
            (b'{', open @ (b'{' | b'%')) => {
                let close = if open == b'{' { "}}" } else { "%}" };
                let start = i + 2;
                let end = expression_end(bytes, start, close.as_bytes());
                let block = &source[start..end];
                let words: Vec<&str> = block
                    .trim_matches(|c: char| c.is_whitespace() || c == '-' || c == '+')
                    .split_whitespace()
                    .take(2)
                    .collect();
                if open == b'%' && words.first() == Some(&"raw") {
                    i = source[end..]
                        .find("endraw")
                        .map_or(bytes.len(), |p| end + p);
                    continue;
                }
                if open == b'%'
                    && words.first() == Some(&"filter")
                    && let Some(name) = words.get(1)
                {
                    let name: String = name
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    out.push((name, line_at(start)));
                }
                collect_pipes(bytes, start, end, &mut out, &line_at);
                i = end + 2;
            }
            _ => i += 1,
        }
    }
    out
}

/// Where the block starting at `start` closes (`close`), skipping string literals.
fn expression_end(bytes: &[u8], start: usize, close: &[u8]) -> usize {
    let mut i = start;
    let mut quote = None;
    while i < bytes.len() {
        match quote {
            Some(q) => {
                if bytes[i] == b'\\' {
                    i += 1;
                } else if bytes[i] == q {
                    quote = None;
                }
            }
            None if bytes[i] == b'"' || bytes[i] == b'\'' => quote = Some(bytes[i]),
            None if bytes[i..].starts_with(close) => return i,
            None => {}
        }
        i += 1;
    }
    bytes.len()
}

fn collect_pipes(
    bytes: &[u8],
    start: usize,
    end: usize,
    out: &mut Vec<(String, usize)>,
    line_at: &dyn Fn(usize) -> usize,
) {
    let mut i = start;
    let mut quote = None;
    while i < end {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'|' => {
                let mut j = i + 1;
                while j < end && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let name_start = j;
                while j < end && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                if j > name_start {
                    let name = String::from_utf8_lossy(&bytes[name_start..j]).into_owned();
                    out.push((name, line_at(name_start)));
                }
            }
            None => {}
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_filters_outside_strings_comments_and_raw_blocks() {
        let source = "{# x|nope #}{{ a | upper }}\n{% raw %}{{ b|nope }}{% endraw %}\n\
                      {{ \"|nope\" ~ c|lower }}\n{% filter trim %}x{% endfilter %}";
        let names: Vec<(String, usize)> = filter_uses(source);
        assert_eq!(
            names,
            [
                ("upper".to_owned(), 1),
                ("lower".to_owned(), 3),
                ("trim".to_owned(), 4)
            ]
        );
    }
}
