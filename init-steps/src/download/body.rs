//! The body of a download on its way to disk: streamed in batches into a temp file (or, for
//! an archive, an unnamed temp file) on blocking threads while it is hashed, then put in place
//! once verified.

use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;

use init_core::StepError;
use sha2::Digest as _;

use super::unpack;
use crate::support::atomic::{AtomicFile, OffThread, WriteOptions};

/// The writer of a body, on a blocking thread: its latest batch in flight, so the next is
/// received while it is written.
pub(super) struct Sink(OffThread<Writer>);

impl Sink {
    /// Opens the temp file (or, for an archive, the directory and an unnamed temp file in it);
    /// `name` (the step's) names a panic of the writer.
    pub(super) fn open(name: &str, unpack: bool, dest: PathBuf) -> Self {
        Self(OffThread::spawn(name, move || Writer::open(unpack, dest)))
    }

    /// Waits for the batch in flight, then starts writing `chunks`.
    pub(super) async fn write<B: AsRef<[u8]> + Send + 'static>(
        self,
        chunks: Vec<B>,
    ) -> Result<Self, StepError> {
        let name = self.0.name().to_owned();
        let mut writer = self.done().await?;
        Ok(Self(OffThread::spawn(&name, move || {
            for chunk in &chunks {
                writer.write(chunk.as_ref())?;
            }
            Ok(writer)
        })))
    }

    /// The writer, once everything handed to it is written.
    pub(super) async fn done(self) -> Result<Writer, StepError> {
        self.0.join().await
    }
}

/// The body's destination while it streams, and its hash so far.
pub(super) struct Writer {
    target: Target,
    pub(super) hasher: sha2::Sha256,
}

enum Target {
    File(AtomicFile),
    Archive {
        file: File,
        dest: PathBuf,
        /// Removes `dest` again, if this download created it, unless it is unpacked.
        created: Option<RemoveEmptyDir>,
    },
}

impl Writer {
    fn open(unpack: bool, dest: PathBuf) -> Result<Self, StepError> {
        let target = if unpack {
            let err = |e| StepError::from_error(e).context(dest.display());
            let created = match fs::symlink_metadata(&dest) {
                Ok(_) => None,
                Err(_) => {
                    fs::create_dir_all(&dest).map_err(err)?;
                    Some(RemoveEmptyDir(Some(dest.clone())))
                }
            };
            Target::Archive {
                file: tempfile::tempfile_in(&dest).map_err(err)?,
                dest,
                created,
            }
        } else {
            Target::File(AtomicFile::create(&dest)?)
        };
        Ok(Self {
            target,
            hasher: sha2::Sha256::new(),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), StepError> {
        self.hasher.update(bytes);
        match &mut self.target {
            Target::File(file) => file.file_mut().write_all(bytes).map_err(|e| file.error(e)),
            Target::Archive { file, dest, .. } => file
                .write_all(bytes)
                .map_err(|e| StepError::from_error(e).context(dest.display())),
        }
    }

    /// Puts the verified body in place: the file renamed over the destination, or the
    /// archive unpacked (at most `max` bytes).
    pub(super) fn place(
        self,
        options: WriteOptions,
        max: u64,
        shown: &str,
    ) -> Result<(), StepError> {
        match self.target {
            Target::File(mut file) => {
                file.finish(options)?;
                file.commit()
            }
            Target::Archive {
                mut file,
                dest,
                created,
            } => {
                unpack::unpack(&mut file, &dest, max, options.owner, shown)?;
                if let Some(created) = created {
                    created.keep();
                }
                Ok(())
            }
        }
    }
}

/// A directory this download created: removed when the download fails (when dropped
/// without [`keep`](Self::keep)), if it is empty.
struct RemoveEmptyDir(Option<PathBuf>);

impl RemoveEmptyDir {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveEmptyDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir(dir);
        }
    }
}
