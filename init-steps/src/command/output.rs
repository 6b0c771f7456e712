//! The program's stderr as the error message sees it: the last lines for the log at a failure
//! and the one line that names the error.

use crate::support::process_group::Tail;

/// At most this much of a stderr line goes into the error message (and the log at failure).
pub(super) const MAX_ERROR_LINE: usize = 512;
/// How many of the last stderr lines are logged when the command fails.
const TAIL_LINES: usize = 10;

/// What is kept of a command's stderr (already masked): its last lines, the last line that
/// looks like an error, and the last line with more than punctuation.
#[derive(Debug)]
pub(super) struct Stderr {
    pub(super) tail: Tail,
    last_error: Option<String>,
    last_text: Option<String>,
}

impl Default for Stderr {
    fn default() -> Self {
        Self {
            tail: Tail::new(TAIL_LINES),
            last_error: None,
            last_text: None,
        }
    }
}

impl Stderr {
    pub(super) fn push(&mut self, line: &str) {
        self.tail.push(line);
        if looks_like_error(line) {
            self.last_error = Some(line.to_owned());
        }
        if line
            .chars()
            .any(|c| !c.is_whitespace() && !c.is_ascii_punctuation())
        {
            self.last_text = Some(line.to_owned());
        }
    }

    /// The line the error message shows (see the [module docs](super#the-error-message)).
    pub(super) fn error_line(&self) -> Option<&str> {
        self.last_error.as_deref().or(self.last_text.as_deref())
    }
}

/// Whether `line` reads like an error rather than context (a caret, a hint, a source line).
fn looks_like_error(line: &str) -> bool {
    const WORDS: [&str; 10] = [
        "error",
        "fatal",
        "fail",
        "denied",
        "panic",
        "refused",
        "cannot",
        "unable",
        "no such",
        "not found",
    ];
    let lower = line.to_lowercase();
    line.trim_start().starts_with("E:") || WORDS.iter().any(|w| lower.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_like_lines_are_recognised_and_context_is_not() {
        for line in [
            "psql: error: connection to server failed",
            "FATAL:  password authentication failed for user \"orders\"",
            "E: Unable to locate package foo",
            "thread 'main' panicked at src/main.rs:3:5",
            "open /data: permission denied",
        ] {
            assert!(looks_like_error(line), "{line}");
        }
        for line in [
            "        ^",
            "LINE 1: CREAT TABLE orders",
            "HINT:  try again",
        ] {
            assert!(!looks_like_error(line), "{line}");
        }
    }
}
