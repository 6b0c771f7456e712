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

mod extract;
mod member;
mod path;
mod tree;

use std::fs::File;
use std::path::Path;

use init_core::StepError;

use extract::{Journal, extract};
use tree::check_all;

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
/// The most bytes of what an archive error says.
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
    let what = what.to_string();
    StepError::permanent(format!(
        "{shown}: archive: {}",
        crate::support::text::shorten(&what, MAX_MESSAGE)
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_in_messages() {
        let long = vec![b'a'; 70_000];
        let shown = shown_name(&long);
        assert!(shown.len() < 260, "{shown}");
        assert!(shown.ends_with("… (70000 bytes)"), "{shown}");
        assert_eq!(shown_name(b"bin/tool"), "\"bin/tool\"");
    }
}
