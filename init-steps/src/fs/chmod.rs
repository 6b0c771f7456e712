//! [`Chmod`]: the mode of a path or a tree, never following symlinks.

use std::fs::{self, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use init_core::{Context, Publication, Step, StepError, ValidateContext, async_trait};

use crate::support::atomic;
use crate::support::file_output::validate_mode;

use super::io_error;
use super::tree::{refuse_symlink_root, walk};

/// Sets the mode of a path, or of a whole tree, never following symlinks (`chmod -R` that
/// skips links).
///
/// Directories get [`dir_mode`](Self::dir_mode) when set, everything else (and directories
/// without it) gets the mode. Symlinks inside the tree are skipped (a link's own mode means
/// nothing on Linux, and following it could change a file outside the tree); a symlink as the
/// path itself is an error. Only modes that differ are changed, so a rerun changes nothing.
/// The walk assumes nothing else rearranges the tree while it runs.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::fs::Chmod;
///
/// let step = Chmod::new("/data", 0o640).dir_mode(0o750).recursive();
/// assert_eq!(step.name(), "chmod /data");
/// ```
#[derive(Debug, Clone)]
pub struct Chmod {
    name: String,
    path: PathBuf,
    mode: u32,
    dir_mode: Option<u32>,
    recursive: bool,
}

impl Chmod {
    /// Sets `path`'s mode (permission bits, at most `0o7777`). The step is named
    /// `chmod <path>`.
    ///
    /// ```
    /// let step = init_steps::fs::Chmod::new("/data/key.pem", 0o600);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn new(path: impl Into<PathBuf>, mode: u32) -> Self {
        let path = path.into();
        Self {
            name: format!("chmod {}", path.display()),
            path,
            mode,
            dir_mode: None,
            recursive: false,
        }
    }

    /// A different mode for directories (they usually need the `x` bits files do not).
    ///
    /// ```
    /// let step = init_steps::fs::Chmod::new("/data", 0o640).dir_mode(0o750);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn dir_mode(mut self, mode: u32) -> Self {
        self.dir_mode = Some(mode);
        self
    }

    /// Applies to everything under the path too.
    ///
    /// ```
    /// let step = init_steps::fs::Chmod::new("/data", 0o755).recursive();
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn recursive(mut self) -> Self {
        self.recursive = true;
        self
    }
}

#[async_trait]
impl Step for Chmod {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        validate_mode(self.mode, &self.name)?;
        validate_mode(self.dir_mode, &format!("{} (directories)", self.name))
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        let (path, mode, recursive) = (self.path.clone(), self.mode, self.recursive);
        let dir_mode = self.dir_mode.unwrap_or(mode);
        atomic::off_thread(&self.name, move || {
            refuse_symlink_root(&path)?;
            walk(&path, recursive, &mut |entry, meta| {
                let wanted = if meta.is_dir() { dir_mode } else { mode };
                if meta.file_type().is_symlink() || meta.mode() & 0o7777 == wanted {
                    return Ok(());
                }
                fs::set_permissions(entry, Permissions::from_mode(wanted)).map_err(io_error(entry))
            })
        })
        .await
    }
}
