//! The shared atomic file writer: a temp file in the destination directory, written and
//! fsynced, its mode (and owner, when asked) set, then renamed over the destination and the
//! directory fsynced. A reader sees the old file or the new one, never a mix.

use std::collections::HashSet;
use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use init_core::StepError;

/// How a file is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WriteOptions {
    /// The file's mode (permission bits, e.g. `0o600`); `None` keeps the existing file's mode,
    /// or for a new file `0o644` less the process umask.
    pub(crate) mode: Option<u32>,
    /// The file's owner `(uid, gid)`; `None` leaves it to the process's.
    pub(crate) owner: Option<(u32, u32)>,
}

impl WriteOptions {
    /// Mode `0o600`, for anything secret.
    #[must_use]
    pub(crate) const fn secret() -> Self {
        Self {
            mode: Some(0o600),
            owner: None,
        }
    }
}

/// Runs blocking file work (a write and its fsync, a temp-file sweep, an unpack) on a blocking
/// thread, so a long write never delays the signal handling and timers of the current-thread
/// runtime. `name` (the step's) names a panic of the work.
pub(crate) async fn off_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> Result<T, StepError> + Send + 'static,
) -> Result<T, StepError> {
    OffThread::spawn(name, work).join().await
}

/// Blocking file work started on a blocking thread and awaited later (a download writes one
/// batch of its body while it receives the next); see [`off_thread`].
#[derive(Debug)]
pub(crate) struct OffThread<T> {
    name: String,
    work: tokio::task::JoinHandle<Result<T, StepError>>,
}

impl<T: Send + 'static> OffThread<T> {
    /// Starts `work`; `name` (the step's) names a panic of it.
    pub(crate) fn spawn(
        name: &str,
        work: impl FnOnce() -> Result<T, StepError> + Send + 'static,
    ) -> Self {
        Self {
            name: name.to_owned(),
            work: tokio::task::spawn_blocking(work),
        }
    }

    /// The name a panic of the work is reported under.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What the work returned; a panic of it as a permanent error.
    pub(crate) async fn join(self) -> Result<T, StepError> {
        let name = self.name;
        self.work.await.map_err(|e| {
            StepError::permanent(format!("{name}: the file work panicked")).with_source(e)
        })?
    }
}

/// Writes `bytes` to `path` atomically with `options`. Creates missing parent directories
/// (mode 0755 less the umask). If `path` is a symlink, the link itself is replaced, never
/// followed.
///
/// Errors name the path; permission and disk-full errors are permanent, the rest transient.
pub(crate) fn write_atomic(
    path: &Path,
    bytes: &[u8],
    options: WriteOptions,
) -> Result<(), StepError> {
    write_atomic_with(path, options, &SweptDirs::default(), |file| {
        file.write_all(bytes)
    })
}

/// Like [`write_atomic`], with the content produced by `fill` into the temp file, sweeping a
/// directory only the first time `swept` meets it. (A writer that must check the temp file
/// before the rename uses [`AtomicFile`].)
pub(crate) fn write_atomic_with(
    path: &Path,
    options: WriteOptions,
    swept: &SweptDirs,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), StepError> {
    let mut file = AtomicFile::create_sweeping(path, swept)?;
    fill(file.file_mut()).map_err(|e| file.error(e))?;
    file.finish(options)?;
    file.commit()
}

/// Temp files of this writer: `.initkit-<random>.tmp`.
const TEMP_PREFIX: &str = ".initkit-";
const TEMP_SUFFIX: &str = ".tmp";

/// A temp file younger than this is never swept, even when its lock is free: its writer may
/// have created it and not locked it yet.
const SWEEP_MIN_AGE: Duration = Duration::from_secs(60);

/// A file being written atomically, in steps, for writers that cannot fill it from one
/// closure (a download streamed while hashing, a check command that runs asynchronously).
///
/// [`create`](Self::create) makes the temp file (mode 0600 while it is written) in the
/// destination's directory, [`finish`](Self::finish) fsyncs it and sets its owner and mode,
/// [`commit`](Self::commit) renames it over the destination. Dropping it before the commit
/// removes the temp file and leaves the destination untouched.
///
/// The writer holds an exclusive `flock` on its temp file while it lives. A process killed
/// with SIGKILL (an OOM-killed init container) cannot remove its temp file, but the kernel
/// releases the lock: the next writer in the directory removes temp files whose lock it can
/// take and that are older than a minute, so restarts do not fill a volume with partial
/// downloads.
#[derive(Debug)]
pub(crate) struct AtomicFile {
    temp: tempfile::NamedTempFile,
    path: PathBuf,
    dir: PathBuf,
}

impl AtomicFile {
    /// Creates the temp file next to `path`, creating missing parent directories (mode 0755
    /// less the umask).
    pub(crate) fn create(path: &Path) -> Result<Self, StepError> {
        Self::create_sweeping(path, &SweptDirs::default())
    }

    /// Like [`create`](Self::create), sweeping abandoned temp files only from a directory
    /// that `swept` has not swept yet: a step writing many files into one directory scans
    /// it once, not once per file.
    pub(crate) fn create_sweeping(path: &Path, swept: &SweptDirs) -> Result<Self, StepError> {
        let name = path.display().to_string();
        let err = |e: io::Error| StepError::from_error(e).context(&name);
        let dir = parent_dir(path);
        fs::create_dir_all(&dir).map_err(err)?;
        swept.sweep_once(&dir);
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(&dir)
            .map_err(err)?;
        // Held until the temp file is closed, by us or by the kernel when we die.
        if let Err(e) = temp.as_file().try_lock() {
            tracing::debug!(temp = %temp.path().display(), error = %e, "cannot lock the temp file; it may be swept if we die");
        }
        Ok(Self {
            temp,
            path: path.to_path_buf(),
            dir,
        })
    }

    /// The temp file, to write the content into.
    pub(crate) fn file_mut(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// The temp file's path (for a check command).
    pub(crate) fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// `error` as a step error naming the destination (classified by its kind).
    pub(crate) fn error(&self, error: io::Error) -> StepError {
        StepError::from_error(error).context(self.path.display())
    }

    /// Fsyncs the content, then sets the owner and the mode (in that order: a `chown` clears
    /// the set-user-ID and set-group-ID bits). Without a mode in `options`, an existing
    /// destination keeps its mode and a new one gets `0o644` less the umask.
    pub(crate) fn finish(&mut self, options: WriteOptions) -> Result<(), StepError> {
        let existing_mode = fs::symlink_metadata(&self.path)
            .ok()
            .filter(|m| m.file_type().is_file())
            .map(|m| m.mode() & 0o7777);
        let file = self.temp.as_file();
        file.sync_all().map_err(|e| self.error(e))?;
        if let Some((uid, gid)) = options.owner {
            std::os::unix::fs::fchown(file, Some(uid), Some(gid)).map_err(|e| self.error(e))?;
        }
        let mode = options
            .mode
            .or(existing_mode)
            .unwrap_or_else(|| 0o644 & !umask());
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| self.error(e))
    }

    /// Renames the temp file over the destination (replacing a symlink there, never following
    /// it) and fsyncs the directory.
    pub(crate) fn commit(self) -> Result<(), StepError> {
        let Self { temp, path, dir } = self;
        temp.persist(&path)
            .map_err(|e| StepError::from_error(e.error).context(path.display()))?;
        // The rename is durable once the directory entry is.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// The directories one step run has swept of abandoned temp files (see
/// [`AtomicFile::create_sweeping`]).
#[derive(Debug, Default)]
pub(crate) struct SweptDirs(Mutex<HashSet<PathBuf>>);

impl SweptDirs {
    /// Sweeps `dir` unless this set has swept it already.
    fn sweep_once(&self, dir: &Path) {
        let first = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(dir.to_path_buf());
        if first {
            sweep_abandoned(dir);
        }
    }
}

/// Removes temp files that a killed writer left in `dir`: older than [`SWEEP_MIN_AGE`] and
/// not locked by a live writer. Best effort: anything unexpected leaves the file alone.
fn sweep_abandoned(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        let path = entry.path();
        let old_enough = fs::symlink_metadata(&path)
            .ok()
            .filter(|m| m.file_type().is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= SWEEP_MIN_AGE);
        if !old_enough {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() && fs::remove_file(&path).is_ok() {
            tracing::info!(temp = %path.display(), "removed a temp file left by a killed writer");
        }
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    crate::support::text::parent_or_dot(path).to_path_buf()
}

/// The process umask, read from `/proc/self/status` (Linux ≥ 4.7); 0o022 when unknown.
pub(crate) fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// Joins a relative path from an untrusted source (a tar entry, a template tree) onto `base`,
/// refusing absolute paths and `..`, and refusing any existing component that is a symlink (a
/// link could lead out of `base`).
pub(crate) fn confined_join(base: &Path, relative: &Path) -> Result<PathBuf, String> {
    let mut out = base.to_path_buf();
    for component in relative.components() {
        match component {
            Component::Normal(part) => {
                out.push(part);
                if fs::symlink_metadata(&out).is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(format!(
                        "{}: is a symlink; refusing to write through it",
                        out.display()
                    ));
                }
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("{}: \"..\" is not allowed", relative.display()));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "{}: absolute paths are not allowed",
                    relative.display()
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_bytes_exactly_with_the_mode_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret.bin");
        let bytes = [0u8, 255, b'\n', 0xC3, 0xA9];
        write_atomic(&path, &bytes, WriteOptions::secret()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // No temp file is left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_check_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.conf");
        fs::write(&path, "old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.file_mut().write_all(b"new").unwrap();
        file.finish(WriteOptions::default()).unwrap();
        // A check sees the finished temp file; when it fails, the file is dropped uncommitted.
        assert_eq!(fs::read(file.temp_path()).unwrap(), b"new");
        drop(file);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn replaces_a_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        fs::write(&outside, "keep").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        write_atomic(&link, b"new", WriteOptions::default()).unwrap();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
        assert!(
            !fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    /// A temp file as a killed writer leaves it: unlocked, last written `age` ago.
    fn leftover(dir: &Path, name: &str, age: Duration) -> PathBuf {
        let path = dir.join(name);
        let file = File::create(&path).unwrap();
        file.set_modified(std::time::SystemTime::now() - age)
            .unwrap();
        path
    }

    #[test]
    fn one_swept_dirs_sweeps_a_directory_once_per_step_run() {
        let dir = tempfile::tempdir().unwrap();
        let swept = SweptDirs::default();
        let first = dir.path().join("a.conf");
        AtomicFile::create_sweeping(&first, &swept)
            .unwrap()
            .commit()
            .unwrap();
        let late = leftover(dir.path(), ".initkit-late.tmp", Duration::from_secs(600));
        AtomicFile::create_sweeping(&dir.path().join("b.conf"), &swept)
            .unwrap()
            .commit()
            .unwrap();
        assert!(late.exists(), "the second file of the run does not rescan");
        AtomicFile::create_sweeping(&dir.path().join("c.conf"), &SweptDirs::default())
            .unwrap()
            .commit()
            .unwrap();
        assert!(!late.exists(), "the next run sweeps the directory again");
    }

    #[test]
    fn sweeps_old_unlocked_temp_files_and_spares_live_or_recent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let old = Duration::from_secs(600);
        let abandoned = leftover(dir.path(), ".initkit-abandoned.tmp", old);
        let recent = leftover(dir.path(), ".initkit-recent.tmp", Duration::from_secs(5));
        let live = leftover(dir.path(), ".initkit-live.tmp", old);
        let held = File::open(&live).unwrap();
        held.lock().unwrap();
        let unrelated = leftover(dir.path(), "data.tmp", old);

        write_atomic(&dir.path().join("app.conf"), b"x", WriteOptions::default()).unwrap();

        assert!(!abandoned.exists(), "a killed writer's temp file is swept");
        assert!(
            recent.exists(),
            "a temp file younger than a minute is spared"
        );
        assert!(
            live.exists(),
            "a temp file whose writer holds its lock is spared"
        );
        assert!(unrelated.exists(), "only our own temp files are touched");
        drop(held);
    }

    #[test]
    fn confined_join_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(confined_join(dir.path(), Path::new("../x")).is_err());
        assert!(confined_join(dir.path(), Path::new("/etc/passwd")).is_err());
        std::os::unix::fs::symlink("/tmp", dir.path().join("l")).unwrap();
        assert!(confined_join(dir.path(), Path::new("l/x")).is_err());
        assert_eq!(
            confined_join(dir.path(), Path::new("a/./b")).unwrap(),
            dir.path().join("a/b")
        );
    }
}
