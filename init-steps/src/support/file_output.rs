//! The file a step writes, as one component: the mode and owner its user asked for, their
//! validation, the mode it gets when none was asked for (`0o600` when the content is secret),
//! and the write itself (atomic, over [`atomic`](super::atomic), off the runtime's thread,
//! sweeping abandoned temp files once per directory per step run). Every writer holds a
//! [`FileOutput`] and gets its `mode`/`owner` setters from [`file_output_setters!`].

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use init_core::StepError;

use super::atomic::{self, AtomicFile, SweptDirs, WriteOptions};

/// The mode of a file whose step was given none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefaultMode {
    /// The existing file's mode, or `0o644` less the umask for a new file.
    Existing,
    /// `0o600`: the content is secret.
    Secret,
    /// This mode (a copy's source mode, a certificate's `0o644`).
    Fixed(u32),
}

impl DefaultMode {
    /// [`Secret`](Self::Secret) when `secret`, else [`Existing`](Self::Existing).
    pub(crate) const fn secret_if(secret: bool) -> Self {
        if secret { Self::Secret } else { Self::Existing }
    }

    const fn mode(self) -> Option<u32> {
        match self {
            Self::Existing => None,
            Self::Secret => Some(0o600),
            Self::Fixed(mode) => Some(mode),
        }
    }
}

/// The mode and owner a step's user asked for the files (or the directory) it writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FileOutput {
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
}

impl FileOutput {
    pub(crate) fn set_mode(&mut self, mode: u32) {
        self.mode = Some(mode);
    }

    pub(crate) fn set_owner(&mut self, uid: u32, gid: u32) {
        self.owner = Some((uid, gid));
    }

    /// The mode asked for, if any.
    pub(crate) const fn mode(&self) -> Option<u32> {
        self.mode
    }

    /// The owner `(uid, gid)` asked for, if any.
    pub(crate) const fn owner(&self) -> Option<(u32, u32)> {
        self.owner
    }

    /// Checks the mode asked for; `name` (the step's) names it in the message.
    pub(crate) fn validate(&self, name: &str) -> Result<(), StepError> {
        validate_mode(self.mode, name)
    }

    /// How a file is written: the mode asked for, else `default`; the owner asked for.
    pub(crate) fn options(&self, default: DefaultMode) -> WriteOptions {
        WriteOptions {
            mode: self.mode.or(default.mode()),
            owner: self.owner,
        }
    }

    /// The write: `bytes` into a temp file next to `path` (see [`stage_with`](Self::stage_with)).
    pub(crate) async fn stage(
        &self,
        name: &str,
        path: &Path,
        bytes: Vec<u8>,
        default: DefaultMode,
        swept: &Arc<SweptDirs>,
    ) -> Result<Staged, StepError> {
        self.stage_with(name, path, default, swept, move |file| {
            file.file_mut().write_all(&bytes).map_err(|e| file.error(e))
        })
        .await
    }

    /// The write, off the runtime's thread: a temp file next to `path` (a directory is swept of
    /// abandoned temp files only the first time `swept` meets it), filled by `fill`, fsynced,
    /// its owner and mode set (see [`options`](Self::options)); [`Staged::commit`] puts it in
    /// place (a check may look at it first). `name` (the step's) names a panic of the work.
    pub(crate) async fn stage_with(
        &self,
        name: &str,
        path: &Path,
        default: DefaultMode,
        swept: &Arc<SweptDirs>,
        fill: impl FnOnce(&mut AtomicFile) -> Result<(), StepError> + Send + 'static,
    ) -> Result<Staged, StepError> {
        let options = self.options(default);
        let (path, swept) = (path.to_path_buf(), Arc::clone(swept));
        atomic::off_thread(name, move || {
            let mut file = AtomicFile::create_sweeping(&path, &swept)?;
            fill(&mut file)?;
            file.finish(options)?;
            Ok(Staged(file))
        })
        .await
    }
}

/// A written temp file, not in place yet (a check may look at it first). Dropping it removes
/// it and leaves the destination as it was.
#[derive(Debug)]
pub(crate) struct Staged(AtomicFile);

impl Staged {
    /// The temp file's path.
    pub(crate) fn temp_path(&self) -> &Path {
        self.0.temp_path()
    }

    /// Renames the temp file over the destination, off the runtime's thread.
    pub(crate) async fn commit(self, name: &str) -> Result<(), StepError> {
        atomic::off_thread(name, move || self.0.commit()).await
    }
}

/// Checks a mode given by a user (when given): permission bits only (`0o7777` at most).
/// `what` (the step's name) names it in the message.
pub(crate) fn validate_mode(mode: impl Into<Option<u32>>, what: &str) -> Result<(), StepError> {
    if let Some(mode) = mode.into()
        && mode > 0o7777
    {
        return Err(StepError::invalid(format!(
            "{what}: mode {mode:#o}: expected permission bits between 0o000 and 0o7777"
        )));
    }
    Ok(())
}

/// Implements the `mode(u32)` and `owner(uid, gid)` setters of a writer, documented, each
/// delegating to `set_mode`/`set_owner` of the field named (a [`FileOutput`], or a type with
/// the same two methods). `$new` is the doc examples' constructor (after `init_steps::`),
/// `$mode_of` and `$owner_of` what each setter applies to, `$default` the mode used without
/// one.
macro_rules! file_output_setters {
    ($step:ident, $($field:ident).+, $new:literal, $mode_of:literal, $owner_of:literal, $default:literal) => {
        impl $step {
            #[doc = concat!("Sets the mode of ", $mode_of, " (permission bits, at most `0o7777`; more is")]
            #[doc = concat!("invalid at validation). Without it: ", $default)]
            ///
            /// ```
            /// use init_core::{Step, ValidateContext};
            #[doc = concat!("let step = init_steps::", $new, ".mode(0o10000);")]
            /// let err = step.validate(&ValidateContext::process()).unwrap_err();
            /// assert!(err.is_invalid());
            /// assert!(err.to_string().contains("mode 0o10000: expected permission bits"), "{err}");
            /// ```
            #[must_use]
            pub fn mode(mut self, mode: u32) -> Self {
                self.$($field).+.set_mode(mode);
                self
            }

            #[doc = concat!("Sets the owner of ", $owner_of, " (needs the privilege to `chown`). The owner is")]
            /// set before the mode, so a `chown` never clears bits the mode asks for.
            ///
            /// ```
            #[doc = concat!("let step = init_steps::", $new, ".owner(1000, 1000);")]
            /// assert!(format!("{step:?}").contains("owner: Some((1000, 1000))"));
            /// ```
            #[must_use]
            pub fn owner(mut self, uid: u32, gid: u32) -> Self {
                self.$($field).+.set_owner(uid, gid);
                self
            }
        }
    };
}
pub(crate) use file_output_setters;

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn a_mode_given_wins_over_every_default() {
        let mut output = FileOutput::default();
        assert_eq!(output.options(DefaultMode::Existing).mode, None);
        assert_eq!(output.options(DefaultMode::Secret).mode, Some(0o600));
        assert_eq!(output.options(DefaultMode::Fixed(0o755)).mode, Some(0o755));
        output.set_mode(0o640);
        for default in [
            DefaultMode::Existing,
            DefaultMode::Secret,
            DefaultMode::Fixed(0o755),
        ] {
            assert_eq!(output.options(default).mode, Some(0o640));
        }
    }

    #[test]
    fn a_mode_above_0o7777_is_invalid_naming_the_step_and_the_value() {
        let mut output = FileOutput::default();
        assert!(output.validate("write /x").is_ok());
        output.set_mode(0o7777);
        assert!(output.validate("write /x").is_ok());
        output.set_mode(0o10000);
        let err = output.validate("write /x").unwrap_err();
        assert!(err.is_invalid());
        assert_eq!(
            err.to_string(),
            "write /x: mode 0o10000: expected permission bits between 0o000 and 0o7777"
        );
    }

    #[tokio::test]
    async fn writes_a_secret_0600_with_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let mut output = FileOutput::default();
        output.set_owner(1234, 5678);
        let (bytes, swept) = (b"s3cret".to_vec(), Arc::default());
        let staged = (output.stage("write token", &path, bytes, DefaultMode::Secret, &swept))
            .await
            .unwrap();
        assert!(!path.exists(), "staged, not in place yet");
        staged.commit("write token").await.unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"s3cret");
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    }
}
