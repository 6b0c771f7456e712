//! Why a server could not be had, and what a test does about it: skip with one line naming the
//! install command, or, under CI (`CI=true`) or when an installed server fails, panic saying why.

use std::fmt;

/// The command that installs every test server (from the workspace root).
pub const INSTALL_COMMAND: &str = "scripts/test-all.sh";

/// Why a test server is not available.
///
/// # Examples
///
/// ```
/// let error = test_servers::StartError::missing("Redis", "redis-server", "package redis-server");
/// assert!(error.is_missing());
/// assert!(error.to_string().contains("scripts/test-all.sh"));
/// ```
#[derive(Debug, Clone)]
pub struct StartError {
    server: &'static str,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Its program is not installed.
    Missing { program: String, from: String },
    /// It is installed but did not start; `log` holds the tail of what it wrote.
    Failed { reason: String, log: String },
}

impl StartError {
    /// `program` (of `server`) is not installed; `from` says what provides it.
    pub fn missing(server: &'static str, program: &str, from: &str) -> Self {
        Self {
            server,
            kind: Kind::Missing {
                program: program.to_owned(),
                from: from.to_owned(),
            },
        }
    }

    /// `server` is installed but did not start, for `reason`; `log` is the tail of its output.
    pub fn failed(server: &'static str, reason: impl Into<String>, log: &str) -> Self {
        Self {
            server,
            kind: Kind::Failed {
                reason: reason.into(),
                log: log.to_owned(),
            },
        }
    }

    /// Whether the server is simply not installed (a test skips, outside CI).
    pub fn is_missing(&self) -> bool {
        matches!(self.kind, Kind::Missing { .. })
    }

    /// The server this is about (`PostgreSQL`, `OpenBao`, ...).
    pub fn server(&self) -> &'static str {
        self.server
    }

    /// Whether the failure looks like another process took the port between our check and the
    /// server's bind (the start is then retried on another port).
    pub(crate) fn is_port_clash(&self) -> bool {
        match &self.kind {
            Kind::Failed { reason, log } => {
                let text = format!("{reason}\n{log}").to_lowercase();
                text.contains("address already in use") || text.contains("could not bind")
            }
            Kind::Missing { .. } => false,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Missing { program, from } => write!(
                f,
                "{} is not installed ({program} not found; {from}): run {INSTALL_COMMAND}",
                self.server
            ),
            Kind::Failed { reason, log } if log.is_empty() => {
                write!(f, "{} did not start: {reason}", self.server)
            }
            Kind::Failed { reason, log } => write!(
                f,
                "{} did not start: {reason}\n--- its output (last lines) ---\n{log}\n---",
                self.server
            ),
        }
    }
}

impl std::error::Error for StartError {}

/// Whether this run is CI's (`CI=true`), where a missing server is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// What a test does with a server it may not have: the server, or `None` after printing one
/// line naming the install command (the caller returns, the test is skipped).
///
/// # Panics
///
/// When the server is installed but failed to start (with its output), or under CI when it is
/// missing.
pub(crate) fn or_skip<T>(result: Result<T, &StartError>) -> Option<T> {
    match result {
        Ok(server) => Some(server),
        Err(error) if error.is_missing() && !in_ci() => {
            println!("skipped: {error}");
            None
        }
        Err(error) if error.is_missing() => {
            panic!("{error} (CI=true: every test server is required)")
        }
        Err(error) => panic!("{error}"),
    }
}

/// [`or_skip`] for a server the test owns.
pub(crate) fn owned_or_skip<T>(result: Result<T, StartError>) -> Option<T> {
    result.map_or_else(|error| or_skip(Err(&error)), Some)
}
