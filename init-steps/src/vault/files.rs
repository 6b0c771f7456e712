//! Writing what Vault returned to files: atomically, with the mode set before the rename, off
//! the async runtime's thread.

use std::path::PathBuf;

use init_core::StepError;

use crate::support::atomic::{self, WriteOptions};

/// One file to write.
#[derive(Debug)]
pub(crate) struct FileOut {
    pub(crate) path: PathBuf,
    pub(crate) bytes: Vec<u8>,
    pub(crate) mode: u32,
}

/// Writes every file atomically (temp file in the same directory, fsync, mode, rename), in
/// order, off the runtime thread; stops at the first error, which names the file (`name`, the
/// step's, names a panic).
pub(crate) async fn write_all(name: &str, files: Vec<FileOut>) -> Result<(), StepError> {
    atomic::off_thread(name, move || {
        files.iter().try_for_each(|f| {
            let options = WriteOptions {
                mode: Some(f.mode),
                owner: None,
            };
            atomic::write_atomic(&f.path, &f.bytes, options)
        })
    })
    .await
}
