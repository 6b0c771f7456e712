//! `FileWait`: waits until a file exists (optionally non-empty, or containing a string), for
//! hand-offs on a shared volume.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use init_core::{Context, Policy, Publication, Step, StepError, ValidateContext, async_trait};
use tokio::io::AsyncReadExt;

/// How soon a path that is not there (or not ready) yet is looked at again: a `stat` is cheap,
/// even on a network volume, so a hand-off is noticed within a tenth of a second.
const POLL_AFTER: Duration = Duration::from_millis(100);

/// The default limit on how much of a file [`FileWait::containing`] reads.
const DEFAULT_READ_LIMIT: u64 = 1024 * 1024;

/// Waits until a path exists, for hand-offs between containers on a shared volume (an
/// `emptyDir` that a sidecar fills, a marker another init container writes).
///
/// By default the path only has to exist (a file, a directory, anything). With
/// [`non_empty`](Self::non_empty), a file must have at least one byte and a directory at least
/// one entry; with [`containing`](Self::containing), a file must contain a string within its
/// first [`max_size`](Self::max_size) bytes (useful when the writer does not write
/// atomically: wait for the line it writes last).
///
/// # Cadence and errors
///
/// A path that does not exist yet, is empty, or lacks the string is a transient failure,
/// looked at again after 100 ms ([`StepError::with_poll_after`]). An error that waiting cannot
/// fix (permission denied, a path component that is a file, a directory where a file's content
/// is expected) is permanent.
///
/// # Default
///
/// Policy: [`Policy::wait`] (no attempt limit: bound it with
/// [`StepExt::timeout`](init_core::StepExt::timeout) or the plan's deadline). Condition: the
/// path exists. Read limit: 1 MiB. Name: `file ` followed by the path.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use init_core::prelude::*;
/// use init_steps::fs::FileWait;
///
/// fn main() -> std::process::ExitCode {
///     Plan::new("orders-init")
///         .step(FileWait::new("/shared/ready").timeout(Duration::from_secs(120)))
///         .step(FileWait::new("/shared/app.log").containing("listening on"))
///         .run_main()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct FileWait {
    path: PathBuf,
    name: String,
    condition: Condition,
    read_limit: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Exists,
    NonEmpty,
    Contains(String),
}

impl FileWait {
    /// Waits until `path` exists.
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::fs::FileWait;
    ///
    /// let wait = FileWait::new("/shared/ready");
    /// assert_eq!(wait.name(), "file /shared/ready");
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            name: format!("file {}", path.display()),
            path,
            condition: Condition::Exists,
            read_limit: DEFAULT_READ_LIMIT,
        }
    }

    /// Also requires a file to have at least one byte (a directory, one entry).
    ///
    /// ```
    /// use init_steps::fs::FileWait;
    ///
    /// let wait = FileWait::new("/shared/token").non_empty();
    /// ```
    #[must_use]
    pub fn non_empty(mut self) -> Self {
        self.condition = Condition::NonEmpty;
        self
    }

    /// Requires the path to be a file that contains `text` within its first
    /// [`max_size`](Self::max_size) bytes.
    ///
    /// ```
    /// use init_steps::fs::FileWait;
    ///
    /// let wait = FileWait::new("/shared/status").containing("ready");
    /// ```
    #[must_use]
    pub fn containing(mut self, text: impl Into<String>) -> Self {
        self.condition = Condition::Contains(text.into());
        self
    }

    /// How many bytes of the file [`containing`](Self::containing) reads at most (1 MiB by
    /// default).
    ///
    /// ```
    /// use init_steps::fs::FileWait;
    ///
    /// let wait = FileWait::new("/shared/app.log").containing("started").max_size(64 * 1024);
    /// ```
    #[must_use]
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.read_limit = bytes;
        self
    }

    /// The path waited for.
    ///
    /// ```
    /// use std::path::Path;
    /// use init_steps::fs::FileWait;
    ///
    /// assert_eq!(FileWait::new("/shared/ready").path(), Path::new("/shared/ready"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn not_yet(&self, why: impl std::fmt::Display) -> StepError {
        StepError::transient(format!("{}: {why}", self.path.display())).with_poll_after(POLL_AFTER)
    }

    /// `path: not a directory`, classified by the error's kind.
    fn io_error(&self, err: io::Error) -> StepError {
        StepError::from_error(err).context(self.path.display())
    }

    async fn check_contains(&self, text: &str) -> Result<(), StepError> {
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| self.io_error(e))?;
        let mut head = Vec::new();
        let read = file
            .take(self.read_limit)
            .read_to_end(&mut head)
            .await
            .map_err(|e| self.io_error(e))?;
        let found = head.windows(text.len()).any(|w| w == text.as_bytes());
        if found {
            Ok(())
        } else if read as u64 == self.read_limit {
            Err(self.not_yet(format_args!(
                "does not contain {text:?} in its first {} bytes yet",
                self.read_limit
            )))
        } else {
            Err(self.not_yet(format_args!("does not contain {text:?} yet")))
        }
    }
}

#[async_trait]
impl Step for FileWait {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        if self.path.as_os_str().is_empty() {
            return Err(StepError::invalid("file wait: expected a path, got \"\""));
        }
        if self.condition == Condition::Contains(String::new()) {
            return Err(StepError::invalid(format!(
                "{}: containing \"\": expected a non-empty string",
                self.name
            )));
        }
        if self.read_limit == 0 {
            return Err(StepError::invalid(format!(
                "{}: read limit 0: expected at least 1 byte",
                self.name
            )));
        }
        Ok(())
    }

    fn policy(&self) -> Policy {
        Policy::wait()
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        let metadata = match tokio::fs::metadata(&self.path).await {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(self.not_yet("does not exist yet"));
            }
            Err(err) => return Err(self.io_error(err)),
        };
        match &self.condition {
            Condition::Exists => Ok(()),
            Condition::NonEmpty if metadata.is_dir() => {
                let mut entries = tokio::fs::read_dir(&self.path)
                    .await
                    .map_err(|e| self.io_error(e))?;
                match entries.next_entry().await.map_err(|e| self.io_error(e))? {
                    Some(_) => Ok(()),
                    None => Err(self.not_yet("is an empty directory")),
                }
            }
            Condition::NonEmpty if metadata.len() == 0 => Err(self.not_yet("is empty")),
            Condition::NonEmpty => Ok(()),
            Condition::Contains(_) if metadata.is_dir() => Err(StepError::permanent(format!(
                "{}: is a directory, expected a file",
                self.path.display()
            ))),
            Condition::Contains(text) => self.check_contains(text).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Root, which runs the tests in containers, is never denied; the classification is checked
    // here instead.
    #[test]
    fn permission_denied_is_permanent_and_names_the_path() {
        let err = FileWait::new("/shared/ready")
            .io_error(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(err.is_permanent());
        assert_eq!(err.to_string(), "/shared/ready: permission denied");
    }
}
