//! Unpacking a verified `.tar.gz` into a directory it cannot escape (for
//! [`Download::unpack_tar_gz`](crate::download::Download::unpack_tar_gz)).
//!
//! Two passes over the archive. The first reads every member and checks it: a relative path
//! without `..`, a known type, no write through a symlink, every size (GNU long names and
//! links, pax headers, file data) counted against the cap and each header capped before it is
//! read, and every symlink resolved, through the links the archive places and those already
//! on disk, to a place inside the directory. Only then does the second pass write, each file
//! atomically; if it fails, what it created (files, links, directories) is removed again and
//! what was there before is left.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use init_core::StepError;

use crate::atomic::{self, WriteOptions};

/// The longest path or link target an entry may have, in bytes (Linux's `PATH_MAX`).
pub(crate) const MAX_NAME: usize = 4096;
/// The largest pax extended header, in bytes.
pub(crate) const MAX_PAX: u64 = 16 * 1024;
/// The most members (headers included) an archive may have: bounds the memory the checks
/// take, whatever the size cap.
pub(crate) const MAX_MEMBERS: u64 = 250_000;
/// The most symlinks followed while resolving one link target (as Linux's `MAXSYMLINKS`).
const MAX_HOPS: usize = 40;
/// The most characters of an entry name shown in a message.
const MAX_SHOWN: usize = 200;
/// The most characters of what an archive error says.
const MAX_MESSAGE: usize = 1024;

/// Checks every member of the gzipped tar `archive`, then extracts them into `dest`: at most
/// `max` bytes of data and headers, entries owned by `owner` when given. `shown` names the
/// archive in errors.
///
/// # Errors
///
/// A malformed or hostile archive is permanent (its checksum matched, it will not change); a
/// file that cannot be written is classified by its kind. Nothing is left of a failed unpack
/// but what was there before.
pub(crate) fn unpack(
    archive: &mut File,
    dest: &Path,
    max: u64,
    owner: Option<(u32, u32)>,
    shown: &str,
) -> Result<(), StepError> {
    let tree = check_all(archive, dest, max, shown)?;
    let mut journal = Journal::default();
    let result = extract(archive, dest, &tree, owner, max, shown, &mut journal);
    if result.is_err() {
        journal.roll_back();
    }
    result
}

/// A malformed or hostile archive: permanent, the message capped.
fn archive_error(shown: &str, what: impl std::fmt::Display) -> StepError {
    let mut what = what.to_string();
    if what.chars().count() > MAX_MESSAGE {
        what = what.chars().take(MAX_MESSAGE).collect::<String>() + "…";
    }
    StepError::permanent(format!("{shown}: archive: {what}"))
}

/// An entry name or link target for a message: lossy UTF-8, at most [`MAX_SHOWN`] characters.
fn shown_name(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    if text.chars().count() <= MAX_SHOWN {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(MAX_SHOWN).collect();
    format!("{head:?}… ({} bytes)", raw.len())
}

/// The decompressed archive stream.
type Gz<'f> = flate2::read::MultiGzDecoder<BufReader<&'f mut File>>;

fn archive_reader(archive: &mut File) -> io::Result<tar::Archive<Gz<'_>>> {
    archive.rewind()?;
    Ok(tar::Archive::new(flate2::read::MultiGzDecoder::new(
        BufReader::new(archive),
    )))
}

/// A member's path and link target, once GNU long names and pax records are applied.
struct Member {
    path: Vec<u8>,
    link: Option<Vec<u8>>,
}

/// What extension headers said about the member that follows them.
#[derive(Default)]
struct Extensions {
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
}

impl Extensions {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.link.is_none() && self.size.is_none()
    }
}

/// Reads the archive's raw members and hands each real entry to `visit` with its long name and
/// link applied. Extension headers are capped ([`MAX_NAME`], [`MAX_PAX`]) before they are
/// read, and every member's size is counted against `max`, so no archive makes this hold more
/// than a few KiB of metadata at once.
fn for_each_member(
    archive: &mut File,
    max: u64,
    shown: &str,
    mut visit: impl FnMut(&mut tar::Entry<'_, Gz<'_>>, Member) -> Result<(), StepError>,
) -> Result<(), StepError> {
    // `StepError`'s display lowercases the io error and leaves out its errno.
    let bad = |e: io::Error| archive_error(shown, StepError::from_error(e));
    let mut reader = archive_reader(archive).map_err(bad)?;
    let mut ext = Extensions::default();
    let mut total: u64 = 0;
    let mut members: u64 = 0;
    for entry in reader.entries().map_err(bad)?.raw(true) {
        let mut entry = entry.map_err(bad)?;
        members += 1;
        if members > MAX_MEMBERS {
            return Err(archive_error(
                shown,
                format!("more than {MAX_MEMBERS} members"),
            ));
        }
        let size = entry.size();
        total = total.saturating_add(size);
        if total > max {
            return Err(archive_error(
                shown,
                format!("unpacks to more than the {max}-byte limit"),
            ));
        }
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {
                let (what, slot) = if kind == tar::EntryType::GNULongName {
                    ("GNU long name", &mut ext.name)
                } else {
                    ("GNU long link", &mut ext.link)
                };
                // The name and its terminating NUL.
                if size > MAX_NAME as u64 + 1 {
                    return Err(archive_error(
                        shown,
                        format!("{what} of {size} bytes: expected at most {MAX_NAME}"),
                    ));
                }
                if slot.is_some() {
                    return Err(archive_error(shown, format!("two {what}s for one entry")));
                }
                let mut bytes = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut bytes).map_err(bad)?;
                while bytes.last() == Some(&0) {
                    bytes.pop();
                }
                *slot = Some(bytes);
            }
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => {
                if size > MAX_PAX {
                    return Err(archive_error(
                        shown,
                        format!("pax header of {size} bytes: expected at most {MAX_PAX}"),
                    ));
                }
                // A global header's records are not applied (as before): skipped unread.
                if kind == tar::EntryType::XHeader {
                    let mut bytes = Vec::with_capacity(size as usize);
                    entry.read_to_end(&mut bytes).map_err(bad)?;
                    pax_records(&bytes, &mut ext).map_err(|e| archive_error(shown, e))?;
                }
            }
            _ => {
                if let Some(pax_size) = ext.size
                    && pax_size != size
                {
                    return Err(archive_error(
                        shown,
                        format!(
                            "entry {}: pax size {pax_size} differs from the header's {size}; \
                             expected one size",
                            shown_name(&entry.path_bytes())
                        ),
                    ));
                }
                let taken = std::mem::take(&mut ext);
                let member = Member {
                    path: taken
                        .name
                        .unwrap_or_else(|| entry.path_bytes().into_owned()),
                    link: taken
                        .link
                        .or_else(|| entry.link_name_bytes().map(|l| l.into_owned())),
                };
                visit(&mut entry, member)?;
            }
        }
    }
    if !ext.is_empty() {
        return Err(archive_error(
            shown,
            "an extension header with no entry after it",
        ));
    }
    Ok(())
}

/// Applies a pax header's `path`, `linkpath` and `size` records (the others are ignored).
fn pax_records(bytes: &[u8], ext: &mut Extensions) -> Result<(), String> {
    for record in tar::PaxExtensions::new(bytes) {
        let record = record.map_err(|e| format!("malformed pax header: {e}"))?;
        let value = record.value_bytes();
        match record.key_bytes() {
            b"path" | b"linkpath" if value.len() > MAX_NAME => {
                return Err(format!(
                    "pax {} of {} bytes: expected at most {MAX_NAME}",
                    String::from_utf8_lossy(record.key_bytes()),
                    value.len()
                ));
            }
            b"path" => ext.name = Some(value.to_vec()),
            b"linkpath" => ext.link = Some(value.to_vec()),
            b"size" => {
                let size = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("pax size {}: expected a number", shown_name(value)))?;
                ext.size = Some(size);
            }
            _ => {}
        }
    }
    Ok(())
}

/// What an archive entry is, once checked.
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    Hardlink(PathBuf),
    Skip,
}

/// What the archive places at a path (laid over what is on disk).
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File,
    Symlink(PathBuf),
}

/// The tree the archive makes: its nodes by relative path, and its symlinks in archive order.
struct Tree<'d> {
    dest: &'d Path,
    nodes: HashMap<PathBuf, Node>,
    symlinks: Vec<(PathBuf, PathBuf)>,
}

/// Why a symlink target is refused.
enum Refusal {
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
fn check_all<'d>(
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

/// What the extraction created, to remove again when it fails.
#[derive(Default)]
struct Journal {
    created: Vec<PathBuf>,
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
    fn roll_back(self) {
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
fn extract(
    archive: &mut File,
    dest: &Path,
    tree: &Tree<'_>,
    owner: Option<(u32, u32)>,
    max: u64,
    shown: &str,
    journal: &mut Journal,
) -> Result<(), StepError> {
    let mut dirs = Vec::new();
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
                atomic::write_atomic_with(&target, options, |file| {
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
fn entry_target(dest: &Path, path: &Path, kind: &Kind) -> Result<PathBuf, String> {
    match (kind, path.parent(), path.file_name()) {
        (Kind::Dir, _, _) | (_, None, _) | (_, _, None) => atomic::confined_join(dest, path),
        (_, Some(parent), Some(name)) => Ok(atomic::confined_join(dest, parent)?.join(name)),
    }
}

/// Removes what stands at `path` unless it is a directory (a rerun replaces its links).
fn replace_non_dir(path: &Path) -> io::Result<()> {
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

/// The entry's relative path and what to make of it; refuses escapes and odd types.
fn check_entry(
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
fn relative_path(raw: &[u8]) -> Result<PathBuf, &'static str> {
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
/// lexically (the first, cheap check; [`Tree::check_symlinks`] then follows other links).
fn link_stays_inside(entry: &Path, target: &Path) -> bool {
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

    #[test]
    fn long_names_are_cut_in_messages() {
        let long = vec![b'a'; 70_000];
        let shown = shown_name(&long);
        assert!(shown.len() < 260, "{shown}");
        assert!(shown.ends_with("… (70000 bytes)"), "{shown}");
        assert_eq!(shown_name(b"bin/tool"), "\"bin/tool\"");
    }
}
