//! Writing what Vault returned to files: atomically, with the mode set before the rename, off
//! the async runtime's thread.

use std::path::PathBuf;

use init_core::{Context, StepError};
use serde_json::Value;

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

/// Registers every string inside `value` as a secret (what `publish_secret` does), for values
/// that are written to files but not published.
pub(crate) fn register_leaves(ctx: &Context, value: &Value) {
    match value {
        Value::String(s) => ctx.register_secret(s),
        Value::Array(items) => items.iter().for_each(|v| register_leaves(ctx, v)),
        Value::Object(map) => map.values().for_each(|v| register_leaves(ctx, v)),
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
}
