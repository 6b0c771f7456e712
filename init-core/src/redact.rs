//! The redactor: every log line, error, report and termination message passes through it.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, RwLock};

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Replaces secret values in text before it leaves the process.
///
/// It knows every value registered with [`register`](Self::register) (the context registers
/// every secret that is published), and also scrubs, without being told, the password of any URL
/// (`postgres://app:hunter2@db` → `postgres://app:[redacted]@db`) and the value of any `token=`
/// query parameter. Clones share one set of secrets.
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
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
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

    /// Registers a secret value; from now on it never appears in redacted text. Empty values are
    /// ignored. A multi-line value (a private key) is also registered line by line, for lines of
    /// eight characters or more, so that a partial echo is caught too.
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// redactor.register("hunter2");
    /// assert_eq!(redactor.redact("password hunter2"), "password [redacted]");
    /// ```
    pub fn register(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        let mut add = |s: &str| {
            if !secrets.iter().any(|known| known == s) {
                secrets.push(s.to_owned());
            }
        };
        add(secret);
        if secret.contains('\n') {
            for line in secret.lines().map(str::trim).filter(|l| l.len() >= 8) {
                add(line);
            }
        }
        // Longest first, so that a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// How many secret values are registered.
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// redactor.register("a-secret");
    /// assert_eq!(redactor.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.secrets.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no secret value is registered.
    ///
    /// ```
    /// assert!(init_core::Redactor::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `text` with every registered secret, URL password and `token=` value replaced by
    /// [`REDACTED`]. Borrows when there is nothing to replace.
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// assert_eq!(redactor.redact("redis://:pa55@cache:6379"), "redis://:[redacted]@cache:6379");
    /// ```
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        {
            let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
            for secret in secrets.iter() {
                if out.contains(secret.as_str()) {
                    out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
                }
            }
        }
        if let Some(scrubbed) = scrub_url_passwords(&out) {
            out = Cow::Owned(scrubbed);
        }
        if let Some(scrubbed) = scrub_token_params(&out) {
            out = Cow::Owned(scrubbed);
        }
        out
    }
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
    fn redacts_registered_secrets_longest_first() {
        let r = Redactor::new();
        r.register("abc");
        r.register("abcdef");
        assert_eq!(r.redact("x abcdef y abc"), "x [redacted] y [redacted]");
    }

    #[test]
    fn redacts_lines_of_multi_line_secrets() {
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
}
