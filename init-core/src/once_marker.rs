//! `OnceMarker`: the file in the plan's state directory that records a `once` step's success,
//! so a rerun of the init container skips it.

use std::fmt;
use std::path::{Path, PathBuf};

/// `<state dir>/<name>.done` for one step.
pub(crate) struct OnceMarker(PathBuf);

impl OnceMarker {
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        Self(marker_path(dir, name))
    }

    /// Whether an earlier run recorded the step's success.
    pub(crate) fn exists(&self) -> bool {
        self.0.exists()
    }

    /// Writes the marker atomically and durably (temp file, fsync, rename, fsync of the
    /// directory); a failure, the directory's fsync included, only costs a rerun of an
    /// idempotent step, so it is logged, not fatal.
    pub(crate) fn record(&self) {
        let write = || -> std::io::Result<()> {
            let dir = crate::text::parent_or_dot(&self.0);
            std::fs::create_dir_all(dir)?;
            crate::atomic::write_atomically(&self.0, b"succeeded\n")
        };
        if let Err(err) = write() {
            tracing::warn!(marker = %self, error = %err, "could not record that the step succeeded; it will run again on a rerun");
        }
    }
}

impl fmt::Display for OnceMarker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.display().fmt(f)
    }
}

/// `<state dir>/<name>.done`, with every byte outside `[A-Za-z0-9._-]` percent-encoded so that
/// any step name maps to one file name and back.
fn marker_path(dir: &Path, name: &str) -> PathBuf {
    let mut file = String::with_capacity(name.len() + 5);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_') || (b == b'.' && !file.is_empty())
        {
            file.push(char::from(b));
        } else {
            file.push_str(&format!("%{b:02X}"));
        }
    }
    file.push_str(".done");
    dir.join(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_names_are_safe_and_distinct() {
        let dir = Path::new("/state");
        assert_eq!(
            marker_path(dir, "migrate-db"),
            Path::new("/state/migrate-db.done")
        );
        assert_eq!(marker_path(dir, "../x"), Path::new("/state/%2E.%2Fx.done"));
        assert_ne!(marker_path(dir, "a/b"), marker_path(dir, "a_b"));
        assert_eq!(
            marker_path(dir, "pg:5432"),
            Path::new("/state/pg%3A5432.done")
        );
    }
}
