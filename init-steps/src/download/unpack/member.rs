//! Reading the gzipped tar stream: its raw members, with GNU long names and pax records
//! applied and every header capped before it is read.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};

use init_core::StepError;

use super::{MAX_MEMBERS, MAX_NAME, MAX_PAX, archive_error, shown_name};

/// The decompressed archive stream.
pub(super) type Gz<'f> = flate2::read::MultiGzDecoder<BufReader<&'f mut File>>;

pub(super) fn archive_reader(archive: &mut File) -> io::Result<tar::Archive<Gz<'_>>> {
    archive.rewind()?;
    Ok(tar::Archive::new(flate2::read::MultiGzDecoder::new(
        BufReader::new(archive),
    )))
}

/// A member's path and link target, once GNU long names and pax records are applied.
pub(super) struct Member {
    pub(super) path: Vec<u8>,
    pub(super) link: Option<Vec<u8>>,
}

/// What extension headers said about the member that follows them.
#[derive(Default)]
pub(super) struct Extensions {
    pub(super) name: Option<Vec<u8>>,
    pub(super) link: Option<Vec<u8>>,
    pub(super) size: Option<u64>,
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
pub(super) fn for_each_member(
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
pub(super) fn pax_records(bytes: &[u8], ext: &mut Extensions) -> Result<(), String> {
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
