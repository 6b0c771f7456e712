//! `StreamMasker`: masks secrets in text that arrives in pieces (a program's stdout), holding
//! back only what could still be the start of a secret.

use std::fmt;

use crate::redact::{Patterns, Redactor, replace_ranges, scrub};

/// The most text held back to keep a run of overlapping secrets together; past it, the run is
/// masked and released in two parts.
const MAX_CARRY: usize = 64 * 1024;

/// Masks the secrets of a [`Redactor`] in a stream of text, before the text is cut into lines
/// or pieces: a secret split across two reads is masked as if the text had come whole.
///
/// [`push`](Self::push) returns the text that is safe to release now. It holds back the end of
/// the input only while it could still grow into a secret (the carry-over window, at most as
/// long as the longest encoded secret): a line that ends in `\n` is released at once unless a
/// secret starts with a line break. [`finish`](Self::finish) releases the rest at the end of
/// the stream. Bytes that are not UTF-8 are replaced by `�` (a character split across two reads
/// is decoded whole).
///
/// # Examples
///
/// ```
/// use init_core::Redactor;
///
/// let redactor = Redactor::new();
/// redactor.register("hunter2-password");
/// let mut stream = redactor.stream();
/// assert_eq!(stream.push_bytes(b"ready\nlogin hunt"), "ready\nlogin ");
/// assert_eq!(stream.push_bytes(b"er2-password ok"), "[redacted] ok");
/// assert_eq!(stream.finish(), "");
/// ```
pub struct StreamMasker {
    redactor: Redactor,
    /// Text received but not released yet.
    carry: String,
    /// The first bytes of a UTF-8 character whose rest has not arrived.
    partial: Vec<u8>,
}

impl StreamMasker {
    pub(crate) fn new(redactor: Redactor) -> Self {
        Self {
            redactor,
            carry: String::new(),
            partial: Vec::new(),
        }
    }

    /// Adds `text` to the stream; returns the masked text that can be released.
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// redactor.register("s3cr3t-value");
    /// let mut stream = redactor.stream();
    /// assert_eq!(stream.push("a s3cr"), "a ");
    /// assert_eq!(stream.push("3t-value b"), "[redacted] b");
    /// ```
    pub fn push(&mut self, text: &str) -> String {
        self.carry.push_str(text);
        self.release(false)
    }

    /// Adds raw bytes to the stream (decoded as UTF-8, lossily); returns the masked text that
    /// can be released.
    ///
    /// ```
    /// let mut stream = init_core::Redactor::new().stream();
    /// let bytes = "é".as_bytes();
    /// assert_eq!(stream.push_bytes(&bytes[..1]), "");
    /// assert_eq!(stream.push_bytes(&bytes[1..]), "é");
    /// ```
    pub fn push_bytes(&mut self, bytes: &[u8]) -> String {
        let mut input = std::mem::take(&mut self.partial);
        input.extend_from_slice(bytes);
        let mut rest = &input[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    self.carry.push_str(text);
                    break;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    self.carry
                        .push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match err.error_len() {
                        Some(bad) => {
                            self.carry.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            self.partial = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        self.release(false)
    }

    /// Ends the stream: returns everything still held back, masked.
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// redactor.register("s3cr3t-value");
    /// let mut stream = redactor.stream();
    /// assert_eq!(stream.push("tail s3cr3t"), "tail ");
    /// assert_eq!(stream.finish(), "s3cr3t");
    /// ```
    pub fn finish(&mut self) -> String {
        if !self.partial.is_empty() {
            self.partial.clear();
            self.carry.push(char::REPLACEMENT_CHARACTER);
        }
        self.release(true)
    }

    fn release(&mut self, all: bool) -> String {
        let patterns = self.redactor.patterns();
        let ranges = patterns.covered(&self.carry);
        let len = self.carry.len();
        let mut cut = if all {
            len
        } else {
            hold_point(&self.carry, &patterns)
        };
        // A masked run across the cut is held back whole while it is short enough.
        if let Some(&(start, end)) = ranges.iter().find(|(s, e)| *s < cut && cut < *e) {
            cut = if len - start <= MAX_CARRY { start } else { end };
        }
        if cut == 0 {
            return String::new();
        }
        let done: Vec<(usize, usize)> = ranges.into_iter().filter(|r| r.1 <= cut).collect();
        let released = replace_ranges(&self.carry[..cut], &done);
        self.carry.drain(..cut);
        scrub(released.into()).into_owned()
    }
}

/// Where the text that could still become a secret starts: the earliest position within the
/// last `longest - 1` bytes from which the rest of `text` begins some form; `text.len()`
/// when there is none.
fn hold_point(text: &str, patterns: &Patterns) -> usize {
    let longest = patterns.longest();
    if longest == 0 {
        return text.len();
    }
    let mut from = text.len().saturating_sub(longest - 1);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    text[from..]
        .char_indices()
        .map(|(i, _)| from + i)
        .find(|&p| patterns.starts_a_form(&text[p..]))
        .unwrap_or(text.len())
}

impl fmt::Debug for StreamMasker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The carry may hold part of a secret: only its size.
        f.debug_struct("StreamMasker")
            .field("held_back", &self.carry.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked_in_pieces(redactor: &Redactor, text: &str, piece: usize) -> String {
        let mut stream = redactor.stream();
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(piece) {
            out += &stream.push_bytes(chunk);
        }
        out + &stream.finish()
    }

    #[test]
    fn any_split_gives_what_the_whole_text_gives() {
        let redactor = Redactor::new();
        redactor.register("abcdef");
        redactor.register("defghi");
        redactor.register("pass\nword-two");
        let text = "x abcdefghi y pass\nword-two z abcdef ééé";
        let whole = redactor.redact(text).into_owned();
        for piece in 1..text.len() {
            assert_eq!(masked_in_pieces(&redactor, text, piece), whole, "{piece}");
        }
    }

    #[test]
    fn a_finished_line_is_released_at_once() {
        let redactor = Redactor::new();
        redactor.register("hunter2-password");
        let mut stream = redactor.stream();
        assert_eq!(
            stream.push("waiting for the database\n"),
            "waiting for the database\n"
        );
    }

    #[test]
    fn an_endless_run_of_overlapping_matches_is_bounded() {
        let redactor = Redactor::new();
        redactor.register("aaaaaa");
        let mut stream = redactor.stream();
        let mut held_back_most = 0;
        for _ in 0..100 {
            stream.push(&"a".repeat(4096));
            held_back_most = held_back_most.max(stream.carry.len());
        }
        assert!(held_back_most <= MAX_CARRY + 4096, "{held_back_most}");
        let out = stream.finish();
        assert!(!out.contains("aaaaaa"));
    }
}
