//! [`Chown`]: the owner of a path or a tree, never following symlinks.

use std::path::PathBuf;

use crate::support::atomic;
use init_core::{Context, Publication, Step, StepError, ValidateContext, async_trait};

use super::tree::{refuse_symlink_root, set_owner, walk};

/// Sets the owner of a path, or of a whole tree, never following symlinks (`chown -R -h`).
///
/// Symlinks get their own owner changed (`lchown`), never their target's; a symlink as the
/// path itself is an error. Only owners that differ are changed. Needs the privilege to
/// `chown` (a permission error is permanent).
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::fs::Chown;
///
/// let step = Chown::new("/data").uid(1000).gid(1000).recursive();
/// assert_eq!(step.name(), "chown /data");
/// ```
#[derive(Debug, Clone)]
pub struct Chown {
    name: String,
    path: PathBuf,
    uid: Option<u32>,
    gid: Option<u32>,
    recursive: bool,
}

impl Chown {
    /// Changes `path`'s owner; set [`uid`](Self::uid), [`gid`](Self::gid) or both. The step
    /// is named `chown <path>`.
    ///
    /// ```
    /// let step = init_steps::fs::Chown::new("/data").gid(2000);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            name: format!("chown {}", path.display()),
            path,
            uid: None,
            gid: None,
            recursive: false,
        }
    }

    /// The owning user.
    ///
    /// ```
    /// let step = init_steps::fs::Chown::new("/data").uid(1000);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }

    /// The owning group.
    ///
    /// ```
    /// let step = init_steps::fs::Chown::new("/data").gid(1000);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn gid(mut self, gid: u32) -> Self {
        self.gid = Some(gid);
        self
    }

    /// Applies to everything under the path too.
    ///
    /// ```
    /// let step = init_steps::fs::Chown::new("/data").uid(1000).recursive();
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
impl Step for Chown {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        if self.uid.is_none() && self.gid.is_none() {
            return Err(StepError::invalid(format!(
                "{}: expected a uid, a gid or both",
                self.name
            )));
        }
        Ok(())
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        let (path, uid, gid, recursive) = (self.path.clone(), self.uid, self.gid, self.recursive);
        atomic::off_thread(&self.name, move || {
            refuse_symlink_root(&path)?;
            walk(&path, recursive, &mut |entry, meta| {
                set_owner(entry, meta, uid, gid)
            })
        })
        .await
    }
}
