//! Pass 1: the tree the archive makes, laid over what is on disk, and every symlink in it
//! resolved to a place inside the directory before anything is written.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use init_core::StepError;

use super::extract::entry_target;
use super::member::for_each_member;
use super::path::{Kind, check_entry};
use super::{MAX_HOPS, archive_error, shown_name};

/// What the archive places at a path (laid over what is on disk).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Node {
    Dir,
    File,
    Symlink(PathBuf),
}

/// The tree the archive makes: its nodes by relative path, and its symlinks in archive order.
pub(super) struct Tree<'d> {
    pub(super) dest: &'d Path,
    pub(super) nodes: HashMap<PathBuf, Node>,
    pub(super) symlinks: Vec<(PathBuf, PathBuf)>,
}

/// Why a symlink target is refused.
pub(super) enum Refusal {
    Outside,
    Loop,
}

impl Tree<'_> {
    /// The symlink at `path` (relative): the archive's, or else one already on disk.
    fn symlink_at(&self, path: &Path) -> Option<PathBuf> {
        match self.nodes.get(path) {
            Some(Node::Symlink(target)) => Some(target.clone()),
            Some(_) => None,
            None => {
                let on_disk = self.dest.join(path);
                fs::symlink_metadata(&on_disk)
                    .ok()
                    .filter(|m| m.file_type().is_symlink())
                    .and_then(|_| fs::read_link(&on_disk).ok())
            }
        }
    }

    /// Resolves `target`, a symlink's target, from the directory `at` (components below the
    /// root), following every symlink on the way; refuses one that leaves the root.
    fn resolve(
        &self,
        at: &mut Vec<OsString>,
        target: &Path,
        hops: &mut usize,
    ) -> Result<(), Refusal> {
        for component in target.components() {
            match component {
                Component::CurDir => {}
                Component::ParentDir => {
                    at.pop().ok_or(Refusal::Outside)?;
                }
                Component::Normal(part) => {
                    at.push(part.to_owned());
                    let here: PathBuf = at.iter().collect();
                    if let Some(next) = self.symlink_at(&here) {
                        *hops += 1;
                        if *hops > MAX_HOPS {
                            return Err(Refusal::Loop);
                        }
                        at.pop();
                        self.resolve(at, &next, hops)?;
                    }
                }
                Component::RootDir | Component::Prefix(_) => return Err(Refusal::Outside),
            }
        }
        Ok(())
    }

    /// Checks that every symlink the archive leaves resolves inside the root, in the tree as
    /// it stands once unpacked (a link placed later can make an earlier one escape).
    fn check_symlinks(&self, shown: &str) -> Result<(), StepError> {
        for (path, target) in &self.symlinks {
            if self.nodes.get(path) != Some(&Node::Symlink(target.clone())) {
                continue; // replaced by a later entry
            }
            let mut at: Vec<OsString> = path
                .parent()
                .map(|p| p.iter().map(OsStr::to_owned).collect())
                .unwrap_or_default();
            let what = match self.resolve(&mut at, target, &mut 0) {
                Ok(()) => continue,
                Err(Refusal::Outside) => "points outside the directory",
                Err(Refusal::Loop) => "goes through too many symlinks",
            };
            return Err(archive_error(
                shown,
                format!(
                    "entry {}: symlink target {} {what}",
                    shown_name(path.as_os_str().as_bytes()),
                    shown_name(target.as_os_str().as_bytes())
                ),
            ));
        }
        Ok(())
    }
}

/// Pass 1: checks every member before anything is written; returns the tree they make.
pub(super) fn check_all<'d>(
    archive: &mut File,
    dest: &'d Path,
    max: u64,
    shown: &str,
) -> Result<Tree<'d>, StepError> {
    let mut tree = Tree {
        dest,
        nodes: HashMap::new(),
        symlinks: Vec::new(),
    };
    for_each_member(archive, max, shown, |entry, member| {
        let (path, kind) = check_entry(entry.header(), &member, &tree.nodes, shown)?;
        // A later entry never goes through (or, as a directory, onto) a symlink the archive
        // placed: extraction would follow it.
        let through = match kind {
            Kind::Dir => path.ancestors().next(),
            _ => None,
        }
        .into_iter()
        .chain(path.ancestors().skip(1))
        .find(|a| matches!(tree.nodes.get(*a), Some(Node::Symlink(_))));
        if let Some(link) = through {
            return Err(archive_error(
                shown,
                format!(
                    "entry {}: goes through the symlink {}",
                    shown_name(&member.path),
                    shown_name(link.as_os_str().as_bytes())
                ),
            ));
        }
        entry_target(dest, &path, &kind).map_err(|e| archive_error(shown, e))?;
        let node = match kind {
            Kind::Skip => return Ok(()),
            Kind::Dir => Node::Dir,
            Kind::File | Kind::Hardlink(_) => Node::File,
            Kind::Symlink(target) => {
                tree.symlinks.push((path.clone(), target.clone()));
                Node::Symlink(target)
            }
        };
        tree.nodes.insert(path, node);
        Ok(())
    })?;
    tree.check_symlinks(shown)?;
    Ok(tree)
}
