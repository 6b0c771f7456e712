//! File-system steps: [`EnsureDir`], [`Chmod`], [`Chown`], [`CopyFile`] and [`WriteFile`]. All
//! are idempotent, never follow a symlink they walk into, and write files atomically.

use std::fmt;
use std::fs::{self, DirBuilder, File, Metadata, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use init_core::{
    Context, Publication, Reference, Step, StepError, ValidateContext, ValuePath, async_trait,
};

use crate::atomic::{self, AtomicFile, WriteOptions};

fn io_error(path: &Path) -> impl Fn(io::Error) -> StepError + '_ {
    move |e| StepError::from_error(e).context(path.display())
}

/// Makes sure a directory exists, with a mode and owner when asked (like `install -d`).
///
/// Missing parents are created with `0o777` less the umask; the directory itself is created
/// with its mode (or `0o777` less the umask). An existing directory gets its mode and owner
/// set when they differ. A path that exists as something else, or is a symlink, is an error
/// (permanent): the step does not follow a link to change what it points to.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::fs::EnsureDir;
///
/// let step = EnsureDir::new("/data/cache").mode(0o750).owner(1000, 1000);
/// assert_eq!(step.name(), "ensure-dir:/data/cache");
/// ```
#[derive(Debug, Clone)]
pub struct EnsureDir {
    name: String,
    path: PathBuf,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
}

impl EnsureDir {
    /// The directory `path`. The step is named `ensure-dir:<path>`.
    ///
    /// ```
    /// let step = init_steps::fs::EnsureDir::new("/data");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            name: format!("ensure-dir:{}", path.display()),
            path,
            mode: None,
            owner: None,
        }
    }

    /// The directory's mode (permission bits, at most `0o7777`).
    ///
    /// ```
    /// let step = init_steps::fs::EnsureDir::new("/data").mode(0o700);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The directory's owner (needs the privilege to `chown`).
    ///
    /// ```
    /// let step = init_steps::fs::EnsureDir::new("/data").owner(1000, 1000);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.owner = Some((uid, gid));
        self
    }
}

#[async_trait]
impl Step for EnsureDir {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        atomic::validate_mode(self.mode, &self.name)
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        let (path, mode, owner) = (self.path.clone(), self.mode, self.owner);
        atomic::off_thread(&self.name, move || {
            let err = io_error(&path);
            match fs::symlink_metadata(&path) {
                Ok(meta) => check_is_dir(&path, &meta)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                        fs::create_dir_all(parent).map_err(io_error(parent))?;
                    }
                    let mut builder = DirBuilder::new();
                    builder.mode(mode.unwrap_or(0o777) & 0o777);
                    match builder.create(&path) {
                        // Created meanwhile by someone else: check it like an existing one.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            check_is_dir(&path, &fs::symlink_metadata(&path).map_err(&err)?)?;
                        }
                        other => other.map_err(&err)?,
                    }
                }
                Err(e) => return Err(err(e)),
            }
            let meta = fs::symlink_metadata(&path).map_err(&err)?;
            // Owner first: a chown can clear the set-group-ID bit.
            if let Some((uid, gid)) = owner {
                set_owner(&path, &meta, Some(uid), Some(gid))?;
            }
            if let Some(mode) = mode {
                set_mode(&path, mode)?;
            }
            Ok(())
        })
        .await
    }
}

fn check_is_dir(path: &Path, meta: &Metadata) -> Result<(), StepError> {
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
fn set_mode(path: &Path, mode: u32) -> Result<(), StepError> {
    let current = fs::symlink_metadata(path).map_err(io_error(path))?.mode() & 0o7777;
    if current != mode {
        fs::set_permissions(path, Permissions::from_mode(mode)).map_err(io_error(path))?;
    }
    Ok(())
}

/// `lchown`, when the owner differs; never follows a symlink.
fn set_owner(
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
fn walk(
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

fn refuse_symlink_root(path: &Path) -> Result<(), StepError> {
    let meta = fs::symlink_metadata(path).map_err(io_error(path))?;
    if meta.file_type().is_symlink() {
        return Err(StepError::permanent(format!(
            "{}: is a symlink; refusing to follow it",
            path.display()
        )));
    }
    Ok(())
}

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
/// assert_eq!(step.name(), "chmod:/data");
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
    /// `chmod:<path>`.
    ///
    /// ```
    /// let step = init_steps::fs::Chmod::new("/data/key.pem", 0o600);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn new(path: impl Into<PathBuf>, mode: u32) -> Self {
        let path = path.into();
        Self {
            name: format!("chmod:{}", path.display()),
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
        atomic::validate_mode(self.mode, &self.name)?;
        atomic::validate_mode(self.dir_mode, &format!("{} (directories)", self.name))
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
/// assert_eq!(step.name(), "chown:/data");
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
    /// is named `chown:<path>`.
    ///
    /// ```
    /// let step = init_steps::fs::Chown::new("/data").gid(2000);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            name: format!("chown:{}", path.display()),
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

/// Copies a file atomically (temp file next to the destination, fsync, rename).
///
/// The source may be a symlink (it is read through); the destination is replaced, never
/// written through. The copy gets the source's permission bits (without set-user-ID,
/// set-group-ID and sticky) unless [`mode`](Self::mode) is set. A rerun copies again and
/// gives the same result.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::fs::CopyFile;
///
/// let step = CopyFile::new("/image/bin/tool", "/shared/bin/tool").mode(0o755);
/// assert_eq!(step.name(), "copy:/shared/bin/tool");
/// ```
#[derive(Debug, Clone)]
pub struct CopyFile {
    name: String,
    src: PathBuf,
    dest: PathBuf,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
}

impl CopyFile {
    /// Copies `src` to `dest`. The step is named `copy:<dest>`.
    ///
    /// ```
    /// let step = init_steps::fs::CopyFile::new("/image/app.conf", "/config/app.conf");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn new(src: impl Into<PathBuf>, dest: impl Into<PathBuf>) -> Self {
        let dest = dest.into();
        Self {
            name: format!("copy:{}", dest.display()),
            src: src.into(),
            dest,
            mode: None,
            owner: None,
        }
    }

    /// The copy's mode (permission bits, at most `0o7777`).
    ///
    /// ```
    /// let step = init_steps::fs::CopyFile::new("a", "b").mode(0o600);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The copy's owner (needs the privilege to `chown`).
    ///
    /// ```
    /// let step = init_steps::fs::CopyFile::new("a", "b").owner(1000, 1000);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.owner = Some((uid, gid));
        self
    }
}

#[async_trait]
impl Step for CopyFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        atomic::validate_mode(self.mode, &self.name)
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        let (src, dest) = (self.src.clone(), self.dest.clone());
        let (mode, owner) = (self.mode, self.owner);
        atomic::off_thread(&self.name, move || {
            let mut file = File::open(&src).map_err(io_error(&src))?;
            let meta = file.metadata().map_err(io_error(&src))?;
            if !meta.is_file() {
                return Err(StepError::permanent(format!(
                    "{}: is not a regular file",
                    src.display()
                )));
            }
            let options = WriteOptions {
                mode: Some(mode.unwrap_or(meta.mode() & 0o777)),
                owner,
            };
            let mut out = AtomicFile::create(&dest)?;
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_error(&src)(e)),
                };
                out.file_mut()
                    .write_all(&buf[..n])
                    .map_err(|e| out.error(e))?;
            }
            out.finish(options)?;
            out.commit()
        })
        .await
    }
}

/// What a [`WriteFile`] writes.
#[derive(Clone)]
enum Content {
    Bytes(Vec<u8>),
    Value(ValuePath),
}

impl fmt::Debug for Content {
    /// The size of literal bytes, never the bytes (they may be a secret); the path of a
    /// published value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Self::Value(path) => f.debug_tuple("Value").field(path).finish(),
        }
    }
}

/// Writes a file atomically from a string, bytes or a published value.
///
/// A published string is written as it is; any other JSON value as compact JSON. A file made
/// from a secret value gets mode `0o600` unless [`mode`](Self::mode) says otherwise; other
/// files keep the existing file's mode, or get `0o644` less the umask. Bytes are written
/// exactly (UTF-8 and binary alike).
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::fs::WriteFile;
///
/// let marker = WriteFile::text("/shared/ready", "ok\n");
/// let key = WriteFile::value("/secrets/db-password", "db.password");
/// assert_eq!(key.name(), "write:/secrets/db-password");
/// # let _ = marker;
/// ```
#[derive(Debug, Clone)]
pub struct WriteFile {
    name: String,
    dest: PathBuf,
    content: Content,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
}

impl WriteFile {
    fn new(dest: PathBuf, content: Content) -> Self {
        Self {
            name: format!("write:{}", dest.display()),
            dest,
            content,
            mode: None,
            owner: None,
        }
    }

    /// Writes `text` to `dest`. The step is named `write:<dest>`.
    ///
    /// ```
    /// let step = init_steps::fs::WriteFile::text("/shared/ready", "ok\n");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn text(dest: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self::new(dest.into(), Content::Bytes(text.into().into_bytes()))
    }

    /// Writes `bytes` to `dest`.
    ///
    /// ```
    /// let step = init_steps::fs::WriteFile::bytes("/shared/magic.bin", [0xCA, 0xFE]);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn bytes(dest: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(dest.into(), Content::Bytes(bytes.into()))
    }

    /// Writes the value an earlier step published at `path`, a [`ValuePath`]: `vault-token`
    /// is the whole value published under that name, `db.password` its key `password` (see
    /// [`Context::publish`]).
    ///
    /// The step declares the read, so [`Plan::validate`](init_core::Plan::validate) refuses a
    /// path that no earlier step publishes before anything runs; should the value still be
    /// missing when the step runs, that is a permanent error.
    ///
    /// ```
    /// let token = init_steps::fs::WriteFile::value("/secrets/token", "vault-token");
    /// let password = init_steps::fs::WriteFile::value("/secrets/db-password", "db.password");
    /// # let _ = (token, password);
    /// ```
    pub fn value(dest: impl Into<PathBuf>, path: impl Into<ValuePath>) -> Self {
        Self::new(dest.into(), Content::Value(path.into()))
    }

    /// The file's mode (permission bits, at most `0o7777`).
    ///
    /// ```
    /// let step = init_steps::fs::WriteFile::text("/shared/run.sh", "#!/bin/sh\n").mode(0o755);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The file's owner (needs the privilege to `chown`).
    ///
    /// ```
    /// let step = init_steps::fs::WriteFile::text("/shared/x", "x").owner(1000, 1000);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.owner = Some((uid, gid));
        self
    }

    /// The bytes to write, and whether they are secret.
    fn content(&self, ctx: &Context) -> Result<(Vec<u8>, bool), StepError> {
        match &self.content {
            Content::Bytes(bytes) => Ok((bytes.clone(), false)),
            Content::Value(path) => {
                let text = path.text(ctx).map_err(|e| e.context(&self.name))?;
                Ok((text.into_bytes(), ctx.is_secret(path.name())))
            }
        }
    }
}

#[async_trait]
impl Step for WriteFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn reads(&self) -> Vec<Reference> {
        match &self.content {
            Content::Value(path) if path.check().is_ok() => vec![path.reference("content")],
            _ => Vec::new(),
        }
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        atomic::validate_mode(self.mode, &self.name)?;
        if let Content::Value(path) = &self.content {
            path.check().map_err(|e| e.context(&self.name))?;
        }
        Ok(())
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let (bytes, secret) = self.content(ctx)?;
        let options = WriteOptions {
            mode: self.mode.or(secret.then_some(0o600)),
            owner: self.owner,
        };
        let dest = self.dest.clone();
        atomic::off_thread(&self.name, move || {
            atomic::write_atomic(&dest, &bytes, options)
        })
        .await
    }
}
