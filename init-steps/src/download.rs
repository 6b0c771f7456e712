//! `Download`: an http(s) resource to a file, checked against a pinned SHA-256, size-capped and
//! written atomically; optionally a `.tar.gz` unpacked into a directory it cannot escape.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use init_core::{Context, Step, StepError, ValidateContext, async_trait};
use sha2::Digest as _;

use crate::atomic::{self, AtomicFile, WriteOptions};
use crate::hex::hex;
use crate::http_client::{self, Family, Redirects, TlsOptions};

/// The default size cap: 1 GiB.
const DEFAULT_MAX_SIZE: u64 = 1 << 30;

/// Downloads an http(s) URL to a file, or unpacks a downloaded `.tar.gz` into a directory.
///
/// - **Pinned**: [`sha256`](Self::sha256) is required, unless waived with
///   [`insecure_skip_checksum`](Self::insecure_skip_checksum); a mismatch is permanent and the
///   message shows both hashes. Validation refuses a download with neither.
/// - **Capped**: at most [`max_size`](Self::max_size) bytes (1 GiB by default) are read, and,
///   when unpacking, at most that many bytes are unpacked.
/// - **Atomic**: the body streams into a temp file next to the destination while it is
///   hashed; the file replaces the destination only once it is complete and verified.
/// - **Retried** (by the executor) on network errors, 408, 429 and 5xx; any other HTTP status
///   (400, 404 included: the server is up and answered) is permanent. Redirects are followed
///   (up to 10, to the same host only when the URL carries credentials); more than 10, or one
///   from https to http, is permanent. A certificate that does not verify is permanent, except
///   one not valid *yet*, which is retried once it is; a CA file that is missing when the step
///   runs is permanent, naming it (see the table in the `http_client` module, summed up in the
///   README).
///
/// With [`unpack_tar_gz`](Self::unpack_tar_gz) the destination is a directory: the archive is
/// verified, every entry checked (no absolute path, no `..`, link targets inside the
/// directory, only files, directories and links), and only then extracted, each file
/// atomically. Files keep the archive's permission bits (without set-user-ID, set-group-ID and
/// sticky); owners in the archive are ignored.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::download::Download;
///
/// let tool = Download::new("https://example.com/tool-1.2.3", "/shared/bin/tool")
///     .sha256("a3f5c2f1b6b0e5f2ce2a9e7a3d2b9c0e6f8a1d4c7b2e5f8a9c0d3e6f9a2b5c8d")
///     .mode(0o755);
/// assert_eq!(tool.name(), "download:/shared/bin/tool");
/// assert!(tool.validate(&init_core::ValidateContext::process()).is_ok());
///
/// let unpinned = Download::new("https://example.com/x", "/tmp/x");
/// assert!(unpinned.validate(&init_core::ValidateContext::process()).unwrap_err().is_invalid());
/// ```
#[derive(Clone)]
pub struct Download {
    name: String,
    url: String,
    dest: PathBuf,
    sha256: Option<String>,
    skip_checksum: bool,
    max_size: u64,
    ca_file: Option<PathBuf>,
    unpack: bool,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
}

impl fmt::Debug for Download {
    /// The URL without its password, query and fragment (they may hold credentials: a
    /// presigned URL's signature, a token).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match url::Url::parse(&self.url) {
            Ok(url) => http_client::display_url(&url),
            Err(_) => init_core::Redactor::new().redact(&self.url).into_owned(),
        };
        f.debug_struct("Download")
            .field("name", &self.name)
            .field("url", &url)
            .field("dest", &self.dest)
            .field("sha256", &self.sha256)
            .field("skip_checksum", &self.skip_checksum)
            .field("max_size", &self.max_size)
            .field("ca_file", &self.ca_file)
            .field("unpack", &self.unpack)
            .field("mode", &self.mode)
            .field("owner", &self.owner)
            .finish()
    }
}

impl Download {
    /// Downloads `url` to the file `dest`. The step is named `download:<dest>`.
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/a.bin", "/data/a.bin");
    /// # let _ = step;
    /// ```
    pub fn new(url: impl Into<String>, dest: impl Into<PathBuf>) -> Self {
        let dest = dest.into();
        Self {
            name: format!("download:{}", dest.display()),
            url: url.into(),
            dest,
            sha256: None,
            skip_checksum: false,
            max_size: DEFAULT_MAX_SIZE,
            ca_file: None,
            unpack: false,
            mode: None,
            owner: None,
        }
    }

    /// The expected SHA-256 of the downloaded bytes (64 hex digits; of the archive when
    /// unpacking).
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/a", "/data/a")
    ///     .sha256("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
    /// # let _ = step;
    /// ```
    pub fn sha256(mut self, hex: impl Into<String>) -> Self {
        self.sha256 = Some(hex.into().to_ascii_lowercase());
        self
    }

    /// Waives the checksum: whatever the server sends is accepted. Only for resources that
    /// change and come from a server you trust over TLS.
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/latest.json", "/data/l.json")
    ///     .insecure_skip_checksum();
    /// # let _ = step;
    /// ```
    pub fn insecure_skip_checksum(mut self) -> Self {
        self.skip_checksum = true;
        self
    }

    /// The most bytes downloaded (and unpacked); a larger resource is a permanent error.
    /// Default 1 GiB.
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/a", "/data/a")
    ///     .insecure_skip_checksum()
    ///     .max_size(10 << 20);
    /// # let _ = step;
    /// ```
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// A PEM file of CA certificates trusted in addition to the system roots (read when the
    /// step runs, so an earlier step may write it).
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://artifacts.internal/a", "/data/a")
    ///     .insecure_skip_checksum()
    ///     .ca_file("/etc/initkit/internal-ca.pem");
    /// # let _ = step;
    /// ```
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Treats the download as a `.tar.gz` archive and unpacks it into the directory `dest`
    /// (created when missing; existing files the archive holds are replaced, others kept).
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/tool.tar.gz", "/opt/tool")
    ///     .sha256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    ///     .unpack_tar_gz();
    /// # let _ = step;
    /// ```
    pub fn unpack_tar_gz(mut self) -> Self {
        self.unpack = true;
        self
    }

    /// The downloaded file's mode (not with [`unpack_tar_gz`](Self::unpack_tar_gz), whose
    /// files keep the archive's modes). Default: the existing file's mode, or `0o644` less
    /// the umask.
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/tool", "/bin/tool")
    ///     .insecure_skip_checksum()
    ///     .mode(0o755);
    /// # let _ = step;
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The owner of the downloaded file, or of every unpacked entry (needs the privilege to
    /// `chown`).
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/a", "/data/a")
    ///     .insecure_skip_checksum()
    ///     .owner(1000, 1000);
    /// # let _ = step;
    /// ```
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.owner = Some((uid, gid));
        self
    }

    fn tls(&self) -> TlsOptions {
        TlsOptions {
            ca_file: self.ca_file.clone(),
            ..TlsOptions::default()
        }
    }

    fn parsed_url(&self) -> Result<url::Url, StepError> {
        let url = url::Url::parse(&self.url)
            .map_err(|e| StepError::invalid(format!("{}: invalid URL: {e}", self.name)))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(StepError::invalid(format!(
                "{}: URL {}: expected an http or https URL",
                self.name,
                http_client::display_url(&url)
            )));
        }
        Ok(url)
    }
}

#[async_trait]
impl Step for Download {
    fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.parsed_url()?;
        match (&self.sha256, self.skip_checksum) {
            (None, false) => {
                return Err(StepError::invalid(format!(
                    "{}: expected a sha256 to check the download against (or \
                     insecure_skip_checksum() to waive it)",
                    self.name
                )));
            }
            (Some(_), true) => {
                return Err(StepError::invalid(format!(
                    "{}: both a sha256 and insecure_skip_checksum() are set; expected one",
                    self.name
                )));
            }
            (Some(hex), false)
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                return Err(StepError::invalid(format!(
                    "{}: sha256 {hex:?}: expected 64 hex digits",
                    self.name
                )));
            }
            _ => {}
        }
        if self.max_size == 0 {
            return Err(StepError::invalid(format!(
                "{}: max_size 0: expected at least one byte",
                self.name
            )));
        }
        if let Some(mode) = self.mode {
            if self.unpack {
                return Err(StepError::invalid(format!(
                    "{}: mode: unpacked files keep the archive's modes; expected no mode with \
                     unpack_tar_gz()",
                    self.name
                )));
            }
            atomic::validate_mode(mode, &self.name)?;
        }
        let tls = self.tls();
        tls.validate(&self.name)?;
        tls.check_files(&self.name)
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        let url = self.parsed_url()?;
        let shown = http_client::display_url(&url);
        let redirects = if url.username().is_empty() && url.password().is_none() {
            Redirects::AnyHost
        } else {
            Redirects::SameOrigin
        };
        let client =
            http_client::build_client(&self.tls(), redirects, Family::OneShot, &self.name)?;
        let mut response = client
            .get(url)
            .send()
            .await
            .map_err(|e| http_client::classify_error(e, Family::OneShot, &shown))?;
        let status = response.status();
        if !status.is_success() {
            let mut err = StepError::with_class(
                http_client::status_class(status),
                format!("{shown}: HTTP {status}"),
            );
            if let Some(delay) = http_client::retry_after(response.headers()) {
                err = err.with_retry_after(delay);
            }
            return Err(err);
        }
        let too_large = || {
            StepError::permanent(format!(
                "{shown}: larger than the {}-byte limit",
                self.max_size
            ))
        };
        if response.content_length().is_some_and(|n| n > self.max_size) {
            return Err(too_large());
        }

        // The body goes to the atomic writer's temp file (a file) or to an unnamed temp file
        // in the destination directory (an archive), hashed on the way.
        let mut target = if self.unpack {
            fs::create_dir_all(&self.dest)
                .map_err(|e| StepError::from_error(e).context(self.dest.display()))?;
            Target::Archive(
                tempfile::tempfile_in(&self.dest)
                    .map_err(|e| StepError::from_error(e).context(self.dest.display()))?,
            )
        } else {
            Target::File(AtomicFile::create(&self.dest)?)
        };
        let mut hasher = sha2::Sha256::new();
        let mut total: u64 = 0;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| http_client::classify_error(e, Family::OneShot, &shown))?
        {
            total += chunk.len() as u64;
            if total > self.max_size {
                return Err(too_large());
            }
            hasher.update(&chunk);
            target.write_all(&chunk, &self.dest)?;
        }
        let actual = hex(&hasher.finalize());
        if let Some(expected) = &self.sha256
            && *expected != actual
        {
            return Err(StepError::permanent(format!(
                "{shown}: sha256 mismatch: expected {expected}, got {actual}"
            )));
        }
        match target {
            Target::File(mut file) => {
                file.finish(WriteOptions {
                    mode: self.mode,
                    owner: self.owner,
                })?;
                file.commit()?;
            }
            Target::Archive(mut archive) => {
                let (dest, max, owner) = (self.dest.clone(), self.max_size, self.owner);
                let shown = shown.clone();
                tokio::task::spawn_blocking(move || {
                    unpack(&mut archive, &dest, max, owner, &shown)
                })
                .await
                .map_err(|e| {
                    StepError::permanent(format!("{}: unpacking panicked", self.name))
                        .with_source(e)
                })??;
            }
        }
        tracing::debug!(url = %shown, path = %self.dest.display(), bytes = total, "downloaded");
        Ok(())
    }
}

enum Target {
    File(AtomicFile),
    Archive(File),
}

impl Target {
    fn write_all(&mut self, bytes: &[u8], dest: &Path) -> Result<(), StepError> {
        match self {
            Target::File(file) => file.file_mut().write_all(bytes).map_err(|e| file.error(e)),
            Target::Archive(file) => file
                .write_all(bytes)
                .map_err(|e| StepError::from_error(e).context(dest.display())),
        }
    }
}

/// What an archive entry is, once checked.
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    Hardlink(PathBuf),
    Skip,
}

/// A malformed or hostile archive: permanent (its checksum matched, so it will not change).
fn archive_error(shown: &str, what: impl std::fmt::Display) -> StepError {
    StepError::permanent(format!("{shown}: archive: {what}"))
}

fn archive_reader(
    archive: &mut File,
) -> io::Result<tar::Archive<flate2::read::MultiGzDecoder<BufReader<&mut File>>>> {
    archive.rewind()?;
    Ok(tar::Archive::new(flate2::read::MultiGzDecoder::new(
        BufReader::new(archive),
    )))
}

/// Checks every entry, then extracts them.
fn unpack(
    archive: &mut File,
    dest: &Path,
    max: u64,
    owner: Option<(u32, u32)>,
    shown: &str,
) -> Result<(), StepError> {
    // `StepError`'s display lowercases the io error and leaves out its errno.
    let bad = |e: io::Error| archive_error(shown, StepError::from_error(e));
    // Pass 1: every entry is checked before anything is written.
    let mut files = HashSet::new();
    let mut links = HashSet::new();
    let mut total: u64 = 0;
    let mut reader = archive_reader(archive).map_err(bad)?;
    for entry in reader.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let (path, kind) = check_entry(&entry, &files, shown)?;
        if let Some(link) = path.ancestors().skip(1).find(|a| links.contains(*a)) {
            return Err(archive_error(
                shown,
                format!(
                    "entry {:?}: goes through the symlink {:?}",
                    path.display().to_string(),
                    link.display().to_string()
                ),
            ));
        }
        entry_target(dest, &path, &kind).map_err(|e| archive_error(shown, e))?;
        if let Kind::Symlink(_) = kind {
            links.insert(path.clone());
        }
        if let Kind::File = kind {
            total += entry.size();
            if total > max {
                return Err(archive_error(
                    shown,
                    format!("unpacks to more than the {max}-byte limit"),
                ));
            }
            files.insert(path);
        }
    }
    // Pass 2: extract. Directory modes are set last, so a read-only directory can be filled.
    let mut dirs = Vec::new();
    let mut reader = archive_reader(archive).map_err(bad)?;
    for entry in reader.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let (path, kind) = check_entry(&entry, &files, shown)?;
        let mode = entry.header().mode().map_err(bad)? & 0o777;
        let target = entry_target(dest, &path, &kind).map_err(|e| archive_error(shown, e))?;
        let io_err = |e: io::Error| StepError::from_error(e).context(target.display());
        match kind {
            Kind::Skip => continue,
            Kind::Dir => {
                fs::create_dir_all(&target).map_err(io_err)?;
                dirs.push((target.clone(), mode | 0o700));
            }
            Kind::File => {
                let options = WriteOptions {
                    mode: Some(mode),
                    owner,
                };
                atomic::write_atomic_with(&target, options, |file| {
                    io::copy(&mut entry, file).map(drop)
                })?;
                continue;
            }
            Kind::Symlink(link) => {
                replace_non_dir(&target).map_err(io_err)?;
                std::os::unix::fs::symlink(&link, &target).map_err(io_err)?;
            }
            Kind::Hardlink(source) => {
                let source =
                    atomic::confined_join(dest, &source).map_err(|e| archive_error(shown, e))?;
                replace_non_dir(&target).map_err(io_err)?;
                fs::hard_link(&source, &target).map_err(io_err)?;
                continue;
            }
        }
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid)).map_err(io_err)?;
        }
    }
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
fn check_entry<R: Read>(
    entry: &tar::Entry<'_, R>,
    files: &HashSet<PathBuf>,
    shown: &str,
) -> Result<(PathBuf, Kind), StepError> {
    let raw = entry.path_bytes();
    let shown_path = String::from_utf8_lossy(&raw).into_owned();
    let refuse = |what: &str| archive_error(shown, format!("entry {shown_path:?}: {what}"));
    let path = relative_path(&raw).map_err(&refuse)?;
    let kind = entry.header().entry_type();
    let kind = match kind {
        tar::EntryType::XGlobalHeader => Kind::Skip,
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
            let link = entry
                .link_name_bytes()
                .ok_or_else(|| refuse("a symlink without a target"))?;
            let link = PathBuf::from(std::ffi::OsStr::from_bytes(&link));
            if !link_stays_inside(&path, &link) {
                return Err(refuse(&format!(
                    "symlink target {:?} points outside the directory",
                    link.display().to_string()
                )));
            }
            Kind::Symlink(link)
        }
        tar::EntryType::Link => {
            let raw_link = entry
                .link_name_bytes()
                .ok_or_else(|| refuse("a hard link without a target"))?;
            let link = relative_path(&raw_link).map_err(|what| {
                refuse(&format!(
                    "hard link target {:?}: {what}",
                    String::from_utf8_lossy(&raw_link)
                ))
            })?;
            if !files.contains(&link) {
                return Err(refuse(&format!(
                    "hard link target {:?} is not a file earlier in the archive",
                    link.display().to_string()
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
    let path = Path::new(std::ffi::OsStr::from_bytes(raw));
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

/// Whether a symlink at `entry` (relative) pointing to `target` resolves inside the root,
/// lexically (extraction never writes through a symlink, so lexical is enough).
fn link_stays_inside(entry: &Path, target: &Path) -> bool {
    if target.has_root() {
        return false;
    }
    let mut depth: Vec<&std::ffi::OsStr> = entry
        .parent()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(part) => Some(part),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for component in target.components() {
        match component {
            Component::Normal(part) => depth.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
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
