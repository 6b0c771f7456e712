//! Writing what Vault returned to files: atomically, with the mode set before the rename, off
//! the async runtime's thread.

use std::path::PathBuf;

use init_core::StepError;

use crate::atomic::{self, WriteOptions};

/// One file to write.
#[derive(Debug)]
pub(crate) struct FileOut {
    pub(crate) path: PathBuf,
    pub(crate) bytes: Vec<u8>,
    pub(crate) mode: u32,
}

/// Writes every file atomically (temp file in the same directory, fsync, mode, rename), in
/// order; stops at the first error, which names the file.
pub(crate) async fn write_all(files: Vec<FileOut>) -> Result<(), StepError> {
    tokio::task::spawn_blocking(move || {
        files.iter().try_for_each(|f| {
            let options = WriteOptions {
                mode: Some(f.mode),
                owner: None,
            };
            atomic::write_atomic(&f.path, &f.bytes, options)
        })
    })
    .await
    .map_err(|e| StepError::permanent("writing files").with_source(e))?
}
