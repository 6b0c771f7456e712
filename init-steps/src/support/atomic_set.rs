//! Files that belong together (a key, its certificate, the CA chain), replaced together: the
//! Kubernetes volume `AtomicWriter` pattern. The files are written into a fresh timestamped
//! directory `..2026_12_05_10_00_00.123456789` inside the target directory; a `..data_tmp`
//! symlink to it is renamed over `..data` in one `rename`; each visible name is a symlink
//! `tls.crt -> ..data/tls.crt`, made once. A reader going through the names sees the old set
//! or the new one, never a mix, whatever kills the writer when.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use init_core::StepError;

use crate::support::atomic::{self, WriteOptions};

/// The symlink that names the current set.
const DATA: &str = "..data";
/// The symlink renamed over [`DATA`].
const DATA_TMP: &str = "..data_tmp";

/// One file of a set: its name in the directory, its content, its mode and owner.
#[derive(Debug)]
pub(crate) struct SetFile {
    pub(crate) name: OsString,
    pub(crate) bytes: Vec<u8>,
    pub(crate) options: WriteOptions,
}

/// Replaces the files of `dir` named in `files` together (see the module doc), then removes
/// the sets it replaced (and any a killed writer left). Each file is written and fsynced with
/// its owner and mode set before the swap.
///
/// # Errors
///
/// A file or link that cannot be written, named, classified by its kind; a visible name that
/// is a directory. Until the swap the old set stays whole.
pub(crate) fn write_set(dir: &Path, files: &[SetFile]) -> Result<(), StepError> {
    let err = |path: &Path| {
        let shown = path.display().to_string();
        move |e: io::Error| StepError::from_error(e).context(&shown)
    };
    fs::create_dir_all(dir).map_err(err(dir))?;
    let stamp = timestamp_dir_name(SystemTime::now());
    let data_dir = dir.join(&stamp);
    fs::create_dir(&data_dir).map_err(err(&data_dir))?;
    for file in files {
        atomic::write_atomic(&data_dir.join(&file.name), &file.bytes, file.options)?;
    }
    sync_dir(&data_dir);
    // The swap: one rename of a symlink.
    let tmp = dir.join(DATA_TMP);
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(&tmp)(e)),
        _ => {}
    }
    std::os::unix::fs::symlink(&stamp, &tmp).map_err(err(&tmp))?;
    let data = dir.join(DATA);
    fs::rename(&tmp, &data).map_err(err(&data))?;
    sync_dir(dir);
    // The visible names, made once; a plain file left by an earlier writer is replaced by the
    // link in one rename too.
    for file in files {
        let visible = dir.join(&file.name);
        let target = Path::new(DATA).join(&file.name);
        if fs::read_link(&visible).is_ok_and(|t| t == target) {
            continue;
        }
        if fs::symlink_metadata(&visible).is_ok_and(|m| m.is_dir()) {
            return Err(err(&visible)(io::Error::new(
                io::ErrorKind::IsADirectory,
                "a directory stands where the file's link goes",
            )));
        }
        let staged = dir.join(format!("{DATA_TMP}.{}", file.name.to_string_lossy()));
        let _ = fs::remove_file(&staged);
        std::os::unix::fs::symlink(&target, &staged).map_err(err(&staged))?;
        fs::rename(&staged, &visible).map_err(err(&visible))?;
    }
    sync_dir(dir);
    remove_old_sets(dir, &stamp);
    Ok(())
}

/// Removes every timestamped directory of `dir` but `current`. Best effort.
fn remove_old_sets(dir: &Path, current: &OsStr) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == current || !is_timestamp_dir_name(&name) {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && let Err(e) = fs::remove_dir_all(entry.path())
        {
            tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove an old set of files");
        }
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// `..2026_12_05_10_00_00.123456789` (UTC).
fn timestamp_dir_name(now: SystemTime) -> OsString {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let (year, month, day, hour, minute, second) =
        crate::support::civil_date::civil_from_unix(secs);
    format!(
        "..{year:04}_{month:02}_{day:02}_{hour:02}_{minute:02}_{second:02}.{:09}",
        since.subsec_nanos()
    )
    .into()
}

/// Whether `name` has the shape of [`timestamp_dir_name`]'s names.
fn is_timestamp_dir_name(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    bytes.len() == 31
        && bytes.starts_with(b"..")
        && bytes[2..].iter().enumerate().all(|(i, b)| match i {
            4 | 7 | 10 | 13 | 16 => *b == b'_',
            19 => *b == b'.',
            _ => b.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn set(key: &str, cert: &str) -> Vec<SetFile> {
        vec![
            SetFile {
                name: "tls.key".into(),
                bytes: key.into(),
                options: WriteOptions {
                    mode: Some(0o600),
                    owner: None,
                },
            },
            SetFile {
                name: "tls.crt".into(),
                bytes: cert.into(),
                options: WriteOptions {
                    mode: Some(0o644),
                    owner: None,
                },
            },
        ]
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn names_timestamped_directories_as_kubernetes_does() {
        let t = UNIX_EPOCH + std::time::Duration::new(1_796_464_800, 123_456_789);
        let name = timestamp_dir_name(t);
        assert_eq!(name, "..2026_12_05_10_00_00.123456789");
        assert!(is_timestamp_dir_name(&name));
        assert!(!is_timestamp_dir_name(OsStr::new("..data")));
        assert!(!is_timestamp_dir_name(OsStr::new("tls.crt")));
    }

    #[test]
    fn the_set_is_reached_through_links_with_the_key_0600() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), &set("key-1", "cert-1")).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("tls.key")).unwrap(),
            "key-1"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("tls.crt")).unwrap(),
            "cert-1"
        );
        assert_eq!(
            fs::read_link(dir.path().join("tls.key")).unwrap(),
            Path::new("..data/tls.key")
        );
        assert_eq!(
            fs::metadata(dir.path().join("tls.key")).unwrap().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(dir.path().join("tls.crt")).unwrap().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn a_rerun_swaps_the_whole_set_and_removes_the_old_directories() {
        let dir = tempfile::tempdir().unwrap();
        // A killed writer's half-written set.
        fs::create_dir(dir.path().join("..2020_01_01_00_00_00.000000001")).unwrap();
        write_set(dir.path(), &set("key-1", "cert-1")).unwrap();
        write_set(dir.path(), &set("key-2", "cert-2")).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("tls.key")).unwrap(),
            "key-2"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("tls.crt")).unwrap(),
            "cert-2"
        );
        let names = names(dir.path());
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(names[1], "..data");
        assert_eq!(&names[2..], ["tls.crt", "tls.key"]);
        assert_eq!(
            fs::read_link(dir.path().join("..data")).unwrap(),
            Path::new(&names[0])
        );
    }

    #[test]
    fn plain_files_from_an_earlier_writer_become_links() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("tls.key"), "old").unwrap();
        write_set(dir.path(), &set("key-1", "cert-1")).unwrap();
        assert!(
            fs::symlink_metadata(dir.path().join("tls.key"))
                .unwrap()
                .is_symlink()
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("tls.key")).unwrap(),
            "key-1"
        );
    }

    #[test]
    fn a_reader_never_sees_a_mixed_set() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), &set("key-0", "cert-0")).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (dir, stop) = (dir.path().to_path_buf(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Through `..data` once, as a reader that opens the directory would.
                    let Ok(data) = fs::canonicalize(dir.join(DATA)) else {
                        continue;
                    };
                    let (Ok(key), Ok(cert)) = (
                        fs::read_to_string(data.join("tls.key")),
                        fs::read_to_string(data.join("tls.crt")),
                    ) else {
                        continue; // removed under us after a swap: read again
                    };
                    assert_eq!(key[4..], cert[5..], "a mixed set: {key} {cert}");
                    reads += 1;
                }
                reads
            })
        };
        for generation in 1..200 {
            write_set(
                dir.path(),
                &set(&format!("key-{generation}"), &format!("cert-{generation}")),
            )
            .unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    }

    /// Selects the child role of [`a_killed_writer_never_leaves_a_mixed_set`] and names its
    /// directory.
    const CHILD_ENV: &str = "INITKIT_ATOMIC_SET_CHILD_DIR";
    /// The size of each file of a generation (large enough for kills to land mid-write).
    const SIZE: usize = 4 << 20;

    /// The child: writes generation after generation (every byte of generation `n` is
    /// `b'a' + n % 26`) until it is killed.
    #[test]
    #[ignore = "child entry point, run by a_killed_writer_never_leaves_a_mixed_set"]
    fn child_writes_sets_until_killed() {
        let Some(dir) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        for generation in 1u8.. {
            let byte = b'a' + generation % 26;
            let file = |name: &str| SetFile {
                name: name.into(),
                bytes: vec![byte; SIZE],
                options: WriteOptions {
                    mode: Some(0o600),
                    owner: None,
                },
            };
            write_set(Path::new(&dir), &[file("tls.key"), file("tls.crt")]).unwrap();
        }
    }

    #[test]
    fn a_killed_writer_never_leaves_a_mixed_set() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| SetFile {
            name: name.into(),
            bytes: vec![b'a'; SIZE],
            options: WriteOptions {
                mode: Some(0o600),
                owner: None,
            },
        };
        write_set(dir.path(), &[file("tls.key"), file("tls.crt")]).unwrap();
        let exe = std::env::current_exe().unwrap();
        // The child's test name, without the crate's: it moves with this file.
        let (_, module) = module_path!().split_once("::").unwrap();
        let child_test = format!("{module}::child_writes_sets_until_killed");
        let mut replaced = 0;
        let mut before = b'a';
        for round in 0..12u64 {
            let mut child = std::process::Command::new(&exe)
                .args(["--exact", &child_test, "--ignored", "--test-threads=1"])
                .env(CHILD_ENV, dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100 + round * 31));
            child.kill().unwrap(); // SIGKILL
            assert!(!child.wait().unwrap().success(), "killed, not finished");
            let key = fs::read(dir.path().join("tls.key")).unwrap();
            let cert = fs::read(dir.path().join("tls.crt")).unwrap();
            assert_eq!(key.len(), SIZE, "a torn key");
            assert!(key.iter().all(|&b| b == key[0]), "a torn key");
            assert_eq!(
                key, cert,
                "a key and a certificate of different generations"
            );
            if key[0] != before {
                replaced += 1;
                before = key[0];
            }
        }
        assert!(
            replaced > 0,
            "no set was ever swapped in; the test proved nothing"
        );
        // A rerun cleans what the killed writers left: one set directory remains.
        write_set(dir.path(), &[file("tls.key"), file("tls.crt")]).unwrap();
        let stamped = names(dir.path())
            .into_iter()
            .filter(|n| is_timestamp_dir_name(OsStr::new(n)))
            .count();
        assert_eq!(stamped, 1);
    }
}
