//! Pass 2: writing the checked members, each file atomically, and the journal that removes
//! what a failed extraction created.

use std::fs::{self, File};
use std::io::{self};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use init_core::StepError;

use super::archive_error;
use super::member::for_each_member;
use super::path::{Kind, check_entry};
use super::tree::Tree;
use crate::support::atomic::{self, SweptDirs, WriteOptions};

/// What the extraction created, to remove again when it fails.
#[derive(Default)]
pub(super) struct Journal {
    pub(super) created: Vec<PathBuf>,
}

impl Journal {
    /// Creates the missing directories of `dir` (each recorded), down from the first that
    /// exists.
    fn create_dirs(&mut self, dir: &Path) -> io::Result<()> {
        let missing: Vec<&Path> = dir
            .ancestors()
            .take_while(|a| fs::symlink_metadata(a).is_err())
            .collect();
        for dir in missing.into_iter().rev() {
            fs::create_dir(dir)?;
            self.created.push(dir.to_path_buf());
        }
        Ok(())
    }

    /// Removes what was created, newest first. Best effort: a directory something else put
    /// files into stays.
    pub(super) fn roll_back(self) {
        for path in self.created.into_iter().rev() {
            let removed = match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => fs::remove_dir(&path),
                Ok(_) => fs::remove_file(&path),
                Err(_) => continue,
            };
            if let Err(e) = removed {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove what a failed unpack wrote");
            }
        }
    }
}

/// Pass 2: extracts every member (checked again, the archive is read anew). Directory modes
/// are set last, so a read-only directory can be filled.
pub(super) fn extract(
    archive: &mut File,
    dest: &Path,
    tree: &Tree<'_>,
    owner: Option<(u32, u32)>,
    max: u64,
    shown: &str,
    journal: &mut Journal,
) -> Result<(), StepError> {
    let mut dirs = Vec::new();
    // One sweep of abandoned temp files per directory for the whole archive.
    let swept = SweptDirs::default();
    for_each_member(archive, max, shown, |entry, member| {
        let bad = |e: io::Error| archive_error(shown, StepError::from_error(e));
        let (path, kind) = check_entry(entry.header(), &member, &tree.nodes, shown)?;
        let mode = entry.header().mode().map_err(bad)? & 0o777;
        let target = entry_target(dest, &path, &kind).map_err(|e| archive_error(shown, e))?;
        let io_err = |e: io::Error| StepError::from_error(e).context(target.display());
        let existed = fs::symlink_metadata(&target).is_ok();
        if let Some(parent) = target.parent() {
            journal.create_dirs(parent).map_err(io_err)?;
        }
        match &kind {
            Kind::Skip => return Ok(()),
            Kind::Dir => {
                journal.create_dirs(&target).map_err(io_err)?;
                if !fs::symlink_metadata(&target).map_err(io_err)?.is_dir() {
                    return Err(io_err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        "a file is in the way",
                    )));
                }
                dirs.push((target.clone(), mode | 0o700));
            }
            Kind::File => {
                let options = WriteOptions {
                    mode: Some(mode),
                    owner,
                };
                atomic::write_atomic_with(&target, options, &swept, |file| {
                    io::copy(entry, file).map(drop)
                })?;
            }
            Kind::Symlink(link) => {
                replace_non_dir(&target).map_err(io_err)?;
                std::os::unix::fs::symlink(link, &target).map_err(io_err)?;
            }
            Kind::Hardlink(source) => {
                let source =
                    atomic::confined_join(dest, source).map_err(|e| archive_error(shown, e))?;
                replace_non_dir(&target).map_err(io_err)?;
                fs::hard_link(&source, &target).map_err(io_err)?;
            }
        }
        // (A directory's own creation is recorded by `create_dirs`.)
        if !existed && !matches!(kind, Kind::Dir) {
            journal.created.push(target.clone());
        }
        if let (Some((uid, gid)), Kind::Dir | Kind::Symlink(_)) = (owner, &kind) {
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid)).map_err(io_err)?;
        }
        Ok(())
    })?;
    for (dir, mode) in dirs.into_iter().rev() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .map_err(|e| StepError::from_error(e).context(dir.display()))?;
    }
    Ok(())
}

/// Where an entry goes: no existing symlink on the way, and none in the place of a directory
/// (a file or link entry replaces a symlink that stands where it goes, never follows it).
pub(super) fn entry_target(dest: &Path, path: &Path, kind: &Kind) -> Result<PathBuf, String> {
    match (kind, path.parent(), path.file_name()) {
        (Kind::Dir, _, _) | (_, None, _) | (_, _, None) => atomic::confined_join(dest, path),
        (_, Some(parent), Some(name)) => Ok(atomic::confined_join(dest, parent)?.join(name)),
    }
}

/// Removes what stands at `path` unless it is a directory (a rerun replaces its links).
pub(super) fn replace_non_dir(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "a directory is in the way",
        )),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
