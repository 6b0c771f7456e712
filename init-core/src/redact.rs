//! The redactor: the one place that knows the secrets, and masks them (and their encodings) in
//! every log line, error, report and termination message.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use aho_corasick::AhoCorasick;
use serde_json::Value;

use crate::encodings::{self, MIN_SECRET_LEN};
use crate::stream::StreamMasker;

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Masks secret values in text before it leaves the process.
///
/// It knows every value registered with [`register`](Self::register) (the context registers
/// every secret that is published, and the secret environment variables), in every form a
/// formatter or protocol commonly gives it: raw, JSON- and `Debug`-escaped, base64 at any
/// offset, URL-encoded, and line by line for a multi-line value (see [`register`](Self::register)).
/// Overlapping matches are masked together. Values shorter than [`MIN_SECRET_LEN`] characters
/// are not masked (they would blank out ordinary numbers and words).
///
/// Without being told, it also scrubs the password of any URL (`postgres://app:hunter2@db` →
/// `postgres://app:[redacted]@db`) and the value of any `token=` parameter.
///
/// Free text goes through [`redact`](Self::redact); streamed text (a program's output) through
/// a [`StreamMasker`] from [`stream`](Self::stream), which masks a secret split across chunks;
/// structured output (the report, JSON logs) is redacted field by field, by value, before it is
/// encoded ([`redact_json`](Self::redact_json)), so it always parses. Clones share one set of
/// secrets; a registration is visible to every clone at once.
///
/// # Examples
///
/// ```
/// use init_core::Redactor;
///
/// let redactor = Redactor::new();
/// redactor.register("s3cr3t-value");
/// assert_eq!(
///     redactor.redact("login failed for s3cr3t-value at https://u:pw@vault/?token=abc&x=1"),
///     "login failed for [redacted] at https://u:[redacted]@vault/?token=[redacted]&x=1",
/// );
/// // base64 of "user:s3cr3t-value", as in an HTTP Basic header
/// assert_eq!(
///     redactor.redact("Authorization: Basic dXNlcjpzM2NyM3QtdmFsdWU="),
///     "Authorization: Basic dXNlcjpz[redacted]dWU="
/// );
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    state: Arc<RwLock<Arc<Patterns>>>,
}

/// The registered secrets and the matcher built from their forms; replaced whole on each
/// registration, so a reader holds a consistent snapshot without holding the lock.
#[derive(Default)]
pub(crate) struct Patterns {
    /// The registered values (raw), to answer "is this a secret".
    secrets: BTreeSet<String>,
    /// Every form of every secret, sorted (for prefix look-ups by the stream masker).
    forms: BTreeSet<String>,
    /// Finds every (overlapping) occurrence of a form.
    matcher: Option<AhoCorasick>,
    /// The length in bytes of the longest form.
    longest: usize,
}

impl Patterns {
    /// The byte ranges of `text` that a form covers, merged, in order.
    pub(crate) fn covered(&self, text: &str) -> Vec<(usize, usize)> {
        let Some(matcher) = &self.matcher else {
            return Vec::new();
        };
        // Overlapping matches come in the order they end: sort by start, then merge.
        let mut found: Vec<(usize, usize)> = matcher
            .find_overlapping_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        found.sort_unstable();
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for (start, end) in found {
            match ranges.last_mut() {
                Some(last) if start < last.1 => last.1 = last.1.max(end),
                _ => ranges.push((start, end)),
            }
        }
        ranges
    }

    /// Whether `suffix` is the beginning of some form (so more text may complete a match).
    pub(crate) fn starts_a_form(&self, suffix: &str) -> bool {
        self.forms
            .range::<str, _>((Bound::Included(suffix), Bound::Unbounded))
            .next()
            .is_some_and(|form| form.starts_with(suffix))
    }

    /// The length in bytes of the longest form (0 when nothing is registered).
    pub(crate) fn longest(&self) -> usize {
        self.longest
    }

    /// `text` with every covered range replaced by [`REDACTED`].
    pub(crate) fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let ranges = self.covered(text);
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(replace_ranges(text, &ranges))
    }
}

/// `text` with each of the (sorted, disjoint) `ranges` replaced by [`REDACTED`].
pub(crate) fn replace_ranges(text: &str, ranges: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for &(start, end) in ranges {
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

impl Redactor {
    /// A redactor that knows no secret yet (it still scrubs URL passwords and `token=` values).
    ///
    /// ```
    /// assert_eq!(init_core::Redactor::new().redact("plain"), "plain");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret value: from now on none of its forms appears in redacted text.
    /// Returns `false`, and registers nothing, when the value is shorter than
    /// [`MIN_SECRET_LEN`] characters (empty included).
    ///
    /// The forms masked: the value itself; its JSON-escaped forms (also with `\uXXXX` for
    /// non-ASCII); its Rust `Debug`-escaped form; its base64 (standard and URL-safe alphabets)
    /// at each of the three byte offsets it can start at inside a longer encoded text, so
    /// `base64("user:" + secret)` is caught; its percent-encoding (also with `+` for a space);
    /// and each line (trimmed) of a multi-line value with that line's forms.
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// assert!(redactor.register("hunter2"));
    /// assert_eq!(redactor.redact("password hunter2"), "password [redacted]");
    /// assert!(!redactor.register("1"));
    /// assert_eq!(redactor.redact("took 1s"), "took 1s");
    /// ```
    pub fn register(&self, secret: &str) -> bool {
        if secret.chars().count() < MIN_SECRET_LEN {
            return false;
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.secrets.contains(secret) {
            return true;
        }
        let mut secrets = state.secrets.clone();
        secrets.insert(secret.to_owned());
        let mut forms = state.forms.clone();
        forms.extend(encodings::forms(secret));
        let matcher = AhoCorasick::new(&forms).ok();
        let longest = forms.iter().map(String::len).max().unwrap_or(0);
        *state = Arc::new(Patterns {
            secrets,
            forms,
            matcher,
            longest,
        });
        true
    }

    /// Whether `value` was registered as a secret (exactly this value).
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// redactor.register("hunter2");
    /// assert!(redactor.is_secret("hunter2"));
    /// assert!(!redactor.is_secret("hunter"));
    /// ```
    pub fn is_secret(&self, value: &str) -> bool {
        self.patterns().secrets.contains(value)
    }

    /// How many secret values are registered.
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// redactor.register("a-secret");
    /// assert_eq!(redactor.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.patterns().secrets.len()
    }

    /// Whether no secret value is registered.
    ///
    /// ```
    /// assert!(init_core::Redactor::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `text` with every registered secret (in every form), URL password and `token=` value
    /// replaced by [`REDACTED`]. Borrows when there is nothing to replace.
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// redactor.register("pa\"ss\\w0rd");
    /// assert_eq!(redactor.redact(r#"{"password":"pa\"ss\\w0rd"}"#), r#"{"password":"[redacted]"}"#);
    /// assert_eq!(redactor.redact("redis://:pa55@cache:6379"), "redis://:[redacted]@cache:6379");
    /// ```
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let masked = self.patterns().mask(text);
        scrub(masked)
    }

    /// `value` with every string redacted ([`redact`](Self::redact)), object keys included,
    /// and every number whose decimal text is a registered secret replaced by the string
    /// [`REDACTED`]; the structure is kept, so its JSON always parses.
    ///
    /// ```
    /// use serde_json::json;
    /// let redactor = init_core::Redactor::new();
    /// redactor.register("hunter2");
    /// redactor.register("12345678");
    /// assert_eq!(
    ///     redactor.redact_json(&json!({"error": "bad hunter2", "pin": 12345678, "attempts": 1})),
    ///     json!({"error": "bad [redacted]", "pin": "[redacted]", "attempts": 1})
    /// );
    /// ```
    pub fn redact_json(&self, value: &Value) -> Value {
        let patterns = self.patterns();
        redact_value(&patterns, value)
    }

    /// A masker for text that arrives in pieces (a program's output): a secret split across
    /// two pieces is still masked. See [`StreamMasker`].
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// redactor.register("hunter2-password");
    /// let mut stream = redactor.stream();
    /// let mut out = stream.push("login hunter2-pa");
    /// out += &stream.push("ssword ok\n");
    /// out += &stream.finish();
    /// assert_eq!(out, "login [redacted] ok\n");
    /// ```
    pub fn stream(&self) -> StreamMasker {
        StreamMasker::new(self.clone())
    }

    /// The current patterns (a cheap snapshot).
    pub(crate) fn patterns(&self) -> Arc<Patterns> {
        Arc::clone(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }
}

fn redact_value(patterns: &Patterns, value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(scrub(patterns.mask(s)).into_owned()),
        Value::Number(n) if patterns.secrets.contains(&n.to_string()) => {
            Value::String(REDACTED.to_owned())
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| redact_value(patterns, v)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        scrub(patterns.mask(k)).into_owned(),
                        redact_value(patterns, v),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// URL passwords and `token=` values, which are scrubbed without being registered.
pub(crate) fn scrub(text: Cow<'_, str>) -> Cow<'_, str> {
    let mut out = text;
    if let Some(scrubbed) = scrub_url_passwords(&out) {
        out = Cow::Owned(scrubbed);
    }
    if let Some(scrubbed) = scrub_token_params(&out) {
        out = Cow::Owned(scrubbed);
    }
    out
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the values themselves.
        f.debug_struct("Redactor")
            .field("secrets", &self.len())
            .finish()
    }
}

/// `scheme://user:password@host` → `scheme://user:[redacted]@host`; `None` when nothing changed.
fn scrub_url_passwords(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    let mut changed = false;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) if &userinfo[colon + 1..] != REDACTED => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str(REDACTED);
                        out.push_str(&authority[at..]);
                        changed = true;
                    }
                    _ => out.push_str(authority),
                }
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// `token=value` (in a query string or a log field) → `token=[redacted]`; `None` when nothing
/// changed. The value ends at `&`, whitespace, a quote or `#`.
fn scrub_token_params(text: &str) -> Option<String> {
    const KEY: &str = "token=";
    let mut out = String::new();
    let mut rest = text;
    let mut changed = false;
    while let Some(pos) = find_ascii_case_insensitive(rest, KEY) {
        let (head, tail) = rest.split_at(pos + KEY.len());
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let value = &tail[..end];
        if value.is_empty() || value == REDACTED {
            out.push_str(value);
        } else {
            out.push_str(REDACTED);
            changed = true;
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        let r = Redactor::new();
        r.register("abcdefgh");
        r.register("abcdefghijkl");
        assert_eq!(
            r.redact("x abcdefghijkl y abcdefgh"),
            "x [redacted] y [redacted]"
        );
    }

    #[test]
    fn overlapping_secrets_are_masked_together() {
        let r = Redactor::new();
        r.register("abcdef");
        r.register("defghi");
        assert_eq!(r.redact("-abcdefghi-"), "-[redacted]-");
    }

    #[test]
    fn lines_of_multi_line_secrets_are_masked() {
        let r = Redactor::new();
        r.register("-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END KEY-----\n");
        assert_eq!(
            r.redact("oops: MIIEvQIBADANBgkqhkiG9w0B"),
            "oops: [redacted]"
        );
    }

    #[test]
    fn scrubs_url_passwords_but_keeps_user_and_host() {
        let r = Redactor::new();
        assert_eq!(
            r.redact("connect postgres://app:p%40ss@db:5432/orders failed; see http://host/x"),
            "connect postgres://app:[redacted]@db:5432/orders failed; see http://host/x"
        );
        assert_eq!(r.redact("https://user@host/"), "https://user@host/");
    }

    #[test]
    fn scrubs_token_query_values_in_any_case() {
        let r = Redactor::new();
        assert_eq!(
            r.redact("GET /v1?Token=abc&x=1 and client_token=def"),
            "GET /v1?Token=[redacted]&x=1 and client_token=[redacted]"
        );
    }

    #[test]
    fn borrows_when_nothing_to_redact() {
        let r = Redactor::new();
        r.register("secret");
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn short_values_are_refused_and_change_nothing() {
        let r = Redactor::new();
        for short in ["", "1", "0", "true", "5432", "db=0"] {
            assert!(!r.register(short), "{short:?}");
        }
        assert!(r.is_empty());
        let line = r#"{"timestamp":"2026-01-01T00:00:01Z","attempts":1}"#;
        assert_eq!(r.redact(line), line);
    }
}
