//! [`EnsureDir`]: a directory exists, with a mode and owner (like `install -d`).

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use init_core::{Context, Publication, Step, StepError, ValidateContext, async_trait};

use crate::support::atomic;
use crate::support::file_output::{FileOutput, file_output_setters};

use super::io_error;
use super::tree::{check_is_dir, set_mode, set_owner};

/// Makes sure a directory exists, with a mode and owner when asked (like `install -d`).
///
/// Missing parents are created with `0o777` less the umask; the directory itself is created
/// with its mode (or `0o777` less the umask). An existing directory gets its mode and owner
/// set when they differ. A path that exists as something else, or is a symlink, is an error
/// (permanent): the step does not follow a link to change what it points to.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::fs::EnsureDir;
///
/// let step = EnsureDir::new("/data/cache").mode(0o750).owner(1000, 1000);
/// assert_eq!(step.name(), "ensure-dir /data/cache");
/// ```
#[derive(Debug, Clone)]
pub struct EnsureDir {
    name: String,
    path: PathBuf,
    output: FileOutput,
}

impl EnsureDir {
    /// The directory `path`. The step is named `ensure-dir <path>`.
    ///
    /// ```
    /// let step = init_steps::fs::EnsureDir::new("/data");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            name: format!("ensure-dir {}", path.display()),
            path,
            output: FileOutput::default(),
        }
    }
}

file_output_setters!(
    EnsureDir,
    output,
    "fs::EnsureDir::new(\"/data\")",
    "the directory",
    "the directory",
    "`0o777` less the umask for a new directory; an existing one keeps its mode."
);

#[async_trait]
impl Step for EnsureDir {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.output.validate(&self.name)
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        let (path, mode, owner) = (self.path.clone(), self.output.mode(), self.output.owner());
        atomic::off_thread(&self.name, move || {
            let err = io_error(&path);
            match fs::symlink_metadata(&path) {
                Ok(meta) => check_is_dir(&path, &meta)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                        fs::create_dir_all(parent).map_err(io_error(parent))?;
                    }
                    let mut builder = DirBuilder::new();
                    builder.mode(mode.unwrap_or(0o777) & 0o777);
                    match builder.create(&path) {
                        // Created meanwhile by someone else: check it like an existing one.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            check_is_dir(&path, &fs::symlink_metadata(&path).map_err(&err)?)?;
                        }
                        other => other.map_err(&err)?,
                    }
                }
                Err(e) => return Err(err(e)),
            }
            let meta = fs::symlink_metadata(&path).map_err(&err)?;
            // Owner first: a chown can clear the set-group-ID bit.
            if let Some((uid, gid)) = owner {
                set_owner(&path, &meta, Some(uid), Some(gid))?;
            }
            if let Some(mode) = mode {
                set_mode(&path, mode)?;
            }
            Ok(())
        })
        .await
    }
}
