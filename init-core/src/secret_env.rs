//! `SecretEnv`: which environment variables hold secrets (a default list plus the plan's
//! names), so their values are masked from the first step on.

use std::fmt;

/// The names (or patterns) of environment variables whose values are secrets.
///
/// A pattern is a variable name, compared without regard to ASCII case, with an optional `*`
/// at its start and/or end: `DB_PASSWORD`, `*_TOKEN`, `APP_SECRET_*`, `*SECRET*`.
///
/// Their values are registered with the [`Redactor`](crate::Redactor) before the plan's first
/// step (and before validation), so a `Command` that runs before any Vault step cannot print
/// `VAULT_TOKEN`; a template that reads one (`{{ env.DB_PASSWORD }}`, `${DB_PASSWORD}`) is
/// written `0o600`.
///
/// # Default
///
/// [`SecretEnv::DEFAULT`]: `*PASSWORD`, `*PASSWD`, `*_PWD`, `*TOKEN`, `*SECRET`, `*_KEY`,
/// `*_CREDENTIALS`. That covers `VAULT_TOKEN`, `PGPASSWORD`, `MYSQL_PWD`, `REDIS_PASSWORD`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `GITHUB_TOKEN`, `CLIENT_SECRET`, `API_KEY`
/// and `GOOGLE_APPLICATION_CREDENTIALS`, and leaves `PWD`, `OLDPWD` and `HOSTNAME` alone.
/// Add names with [`Plan::secret_env`](crate::Plan::secret_env).
///
/// # Examples
///
/// ```
/// use init_core::SecretEnv;
///
/// let env = SecretEnv::default().with(["DATABASE_URL", "ORDERS_*"]);
/// assert!(env.matches("VAULT_TOKEN"));
/// assert!(env.matches("db_password"));
/// assert!(env.matches("DATABASE_URL"));
/// assert!(env.matches("ORDERS_SIGNING"));
/// assert!(!env.matches("HOME"));
/// assert!(!env.matches("PWD"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecretEnv {
    patterns: Vec<String>,
}

impl SecretEnv {
    /// The default patterns (see [Default](Self#default)).
    pub const DEFAULT: [&'static str; 7] = [
        "*PASSWORD",
        "*PASSWD",
        "*_PWD",
        "*TOKEN",
        "*SECRET",
        "*_KEY",
        "*_CREDENTIALS",
    ];

    /// The default patterns plus `patterns`.
    ///
    /// ```
    /// let env = init_core::SecretEnv::default().with(["LICENSE"]);
    /// assert!(env.matches("license"));
    /// ```
    #[must_use]
    pub fn with<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.patterns.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Whether variable `name` is a secret by one of the patterns.
    ///
    /// ```
    /// assert!(init_core::SecretEnv::default().matches("VAULT_TOKEN"));
    /// ```
    pub fn matches(&self, name: &str) -> bool {
        let name = name.to_ascii_uppercase();
        self.patterns.iter().any(|p| pattern_matches(p, &name))
    }

    /// The patterns that are not names with an optional `*` at either end, each with why.
    pub(crate) fn problems(&self) -> Vec<String> {
        self.patterns
            .iter()
            .filter(|p| {
                let core = p.trim_start_matches('*').trim_end_matches('*');
                core.is_empty() || core.contains(['*', '='])
            })
            .map(|p| {
                format!(
                    "secret_env pattern {p:?}: expected a variable name with an optional `*` at its start or end"
                )
            })
            .collect()
    }
}

impl Default for SecretEnv {
    fn default() -> Self {
        Self {
            patterns: Self::DEFAULT.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

impl fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.patterns).finish()
    }
}

fn pattern_matches(pattern: &str, upper_name: &str) -> bool {
    let pattern = pattern.to_ascii_uppercase();
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), Some(_)) => {
            let core = rest.strip_suffix('*').unwrap_or(rest);
            !core.is_empty() && upper_name.contains(core)
        }
        (Some(suffix), None) => !suffix.is_empty() && upper_name.ends_with(suffix),
        (None, Some(prefix)) => !prefix.is_empty() && upper_name.starts_with(prefix),
        (None, None) => upper_name == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_list_names_the_usual_secrets_only() {
        let env = SecretEnv::default();
        for secret in [
            "VAULT_TOKEN",
            "PGPASSWORD",
            "MYSQL_PWD",
            "MYSQL_ROOT_PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "CLIENT_SECRET",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ] {
            assert!(env.matches(secret), "{secret}");
        }
        for plain in [
            "PWD",
            "OLDPWD",
            "HOME",
            "HOSTNAME",
            "VAULT_ADDR",
            "PATH",
            "MONKEY",
        ] {
            assert!(!env.matches(plain), "{plain}");
        }
    }

    #[test]
    fn malformed_patterns_are_problems() {
        let env = SecretEnv::default().with(["*", "A*B", "OK_*", "X=Y"]);
        assert_eq!(env.problems().len(), 3);
    }
}
