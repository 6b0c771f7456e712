//! Path safety: an entry's relative path and type checked, and a symlink's target read
//! lexically against the root.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use init_core::StepError;

use super::member::Member;
use super::tree::Node;
use super::{MAX_NAME, archive_error, shown_name};

/// What an archive entry is, once checked.
pub(super) enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    Hardlink(PathBuf),
    Skip,
}

/// The entry's relative path and what to make of it; refuses escapes and odd types.
pub(super) fn check_entry(
    header: &tar::Header,
    member: &Member,
    nodes: &HashMap<PathBuf, Node>,
    shown: &str,
) -> Result<(PathBuf, Kind), StepError> {
    let refuse =
        |what: &str| archive_error(shown, format!("entry {}: {what}", shown_name(&member.path)));
    if member.path.len() > MAX_NAME {
        return Err(refuse(&format!(
            "a path of {} bytes: expected at most {MAX_NAME}",
            member.path.len()
        )));
    }
    let path = relative_path(&member.path).map_err(&refuse)?;
    let kind = header.entry_type();
    let kind = match kind {
        _ if path.as_os_str().is_empty() => {
            if kind.is_dir() {
                Kind::Skip
            } else {
                return Err(refuse("expected a path"));
            }
        }
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
        tar::EntryType::Symlink => {
            let link = member
                .link
                .as_deref()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| refuse("a symlink without a target"))?;
            let target = PathBuf::from(OsStr::from_bytes(link));
            if !link_stays_inside(&path, &target) {
                return Err(refuse(&format!(
                    "symlink target {} points outside the directory",
                    shown_name(link)
                )));
            }
            Kind::Symlink(target)
        }
        tar::EntryType::Link => {
            let raw_link = member
                .link
                .as_deref()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| refuse("a hard link without a target"))?;
            let link = relative_path(raw_link).map_err(|what| {
                refuse(&format!(
                    "hard link target {}: {what}",
                    shown_name(raw_link)
                ))
            })?;
            if nodes.get(&link) != Some(&Node::File) {
                return Err(refuse(&format!(
                    "hard link target {} is not a file earlier in the archive",
                    shown_name(raw_link)
                )));
            }
            Kind::Hardlink(link)
        }
        other => return Err(refuse(&format!("unsupported entry type {other:?}"))),
    };
    Ok((path, kind))
}

/// A path from an archive as a clean relative path; refuses absolute paths and `..`.
pub(super) fn relative_path(raw: &[u8]) -> Result<PathBuf, &'static str> {
    let path = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("\"..\" is not allowed"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not allowed");
            }
        }
    }
    Ok(out)
}

/// Whether a symlink at `entry` (relative) pointing to `target` stays inside the root read
/// lexically (the first, cheap check; [`Tree::check_symlinks`](super::tree::Tree::check_symlinks) then follows other links).
pub(super) fn link_stays_inside(entry: &Path, target: &Path) -> bool {
    if target.has_root() {
        return false;
    }
    let mut depth = entry.parent().map_or(0, |p| p.components().count());
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_are_resolved_from_the_links_directory() {
        assert!(link_stays_inside(
            Path::new("bin/tool"),
            Path::new("../lib/tool")
        ));
        assert!(link_stays_inside(Path::new("a/b/c"), Path::new("../../x")));
        assert!(!link_stays_inside(
            Path::new("a/b/c"),
            Path::new("../../../x")
        ));
        assert!(!link_stays_inside(
            Path::new("tool"),
            Path::new("/usr/bin/tool")
        ));
        assert!(!link_stays_inside(Path::new("a"), Path::new("x/../../y")));
    }

    #[test]
    fn archive_paths_must_be_relative_and_inside() {
        assert_eq!(relative_path(b"./a/./b").unwrap(), Path::new("a/b"));
        assert_eq!(relative_path(b"../a").unwrap_err(), "\"..\" is not allowed");
        assert_eq!(
            relative_path(b"/etc/passwd").unwrap_err(),
            "absolute paths are not allowed"
        );
    }
}
