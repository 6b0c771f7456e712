//! Tree helpers shared by the file-system steps: walking without following symlinks, and setting a mode or owner only when it differs.

use std::fs::{self, Metadata, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown};
use std::path::Path;

use init_core::StepError;

use super::io_error;

pub(super) fn check_is_dir(path: &Path, meta: &Metadata) -> Result<(), StepError> {
    if meta.file_type().is_symlink() {
        Err(StepError::permanent(format!(
            "{}: is a symlink; refusing to follow it",
            path.display()
        )))
    } else if !meta.is_dir() {
        Err(StepError::permanent(format!(
            "{}: exists and is not a directory",
            path.display()
        )))
    } else {
        Ok(())
    }
}

/// `chmod`, when the mode differs (the path is known not to be a symlink).
pub(super) fn set_mode(path: &Path, mode: u32) -> Result<(), StepError> {
    let current = fs::symlink_metadata(path).map_err(io_error(path))?.mode() & 0o7777;
    if current != mode {
        fs::set_permissions(path, Permissions::from_mode(mode)).map_err(io_error(path))?;
    }
    Ok(())
}

/// `lchown`, when the owner differs; never follows a symlink.
pub(super) fn set_owner(
    path: &Path,
    meta: &Metadata,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), StepError> {
    let uid = uid.filter(|&u| u != meta.uid());
    let gid = gid.filter(|&g| g != meta.gid());
    if uid.is_some() || gid.is_some() {
        lchown(path, uid, gid).map_err(io_error(path))?;
    }
    Ok(())
}

/// Visits `path` and, when `recursive`, everything under it, depth first, parents before
/// children; symlinks are passed to `visit` but never followed.
pub(super) fn walk(
    path: &Path,
    recursive: bool,
    visit: &mut dyn FnMut(&Path, &Metadata) -> Result<(), StepError>,
) -> Result<(), StepError> {
    let meta = fs::symlink_metadata(path).map_err(io_error(path))?;
    visit(path, &meta)?;
    if recursive && meta.is_dir() {
        let entries = fs::read_dir(path).map_err(io_error(path))?;
        for entry in entries {
            let entry = entry.map_err(io_error(path))?;
            walk(&entry.path(), true, visit)?;
        }
    }
    Ok(())
}

pub(super) fn refuse_symlink_root(path: &Path) -> Result<(), StepError> {
    let meta = fs::symlink_metadata(path).map_err(io_error(path))?;
    if meta.file_type().is_symlink() {
        return Err(StepError::permanent(format!(
            "{}: is a symlink; refusing to follow it",
            path.display()
        )));
    }
    Ok(())
}
