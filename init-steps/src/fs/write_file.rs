//! [`WriteFile`]: a file written atomically from bytes or a published value.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use init_core::{
    Context, Publication, Reference, Step, StepError, ValidateContext, ValuePath, async_trait,
};

use crate::support::file_output::{DefaultMode, FileOutput, file_output_setters};

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
/// assert_eq!(key.name(), "write /secrets/db-password");
/// # let _ = marker;
/// ```
#[derive(Debug, Clone)]
pub struct WriteFile {
    name: String,
    dest: PathBuf,
    content: Content,
    output: FileOutput,
}

impl WriteFile {
    fn new(dest: PathBuf, content: Content) -> Self {
        Self {
            name: format!("write {}", dest.display()),
            dest,
            content,
            output: FileOutput::default(),
        }
    }

    /// Writes `text` to `dest`. The step is named `write <dest>`.
    ///
    /// ```
    /// let step = init_steps::fs::WriteFile::text("/shared/ready", "ok\n");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
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
    #[must_use]
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
    #[must_use]
    pub fn value(dest: impl Into<PathBuf>, path: impl Into<ValuePath>) -> Self {
        Self::new(dest.into(), Content::Value(path.into()))
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

file_output_setters!(
    WriteFile,
    output,
    "fs::WriteFile::text(\"/shared/run.sh\", \"#!/bin/sh\\n\")",
    "the file",
    "the file",
    "`0o600` when the content is a secret value, else the existing file's mode, or `0o644` less the umask."
);

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
        self.output.validate(&self.name)?;
        if let Content::Value(path) = &self.content {
            path.check().map_err(|e| e.context(&self.name))?;
        }
        Ok(())
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let (bytes, secret) = self.content(ctx)?;
        let default = DefaultMode::secret_if(secret);
        let swept = Arc::default();
        (self.output)
            .stage(&self.name, &self.dest, bytes, default, &swept)
            .await?
            .commit(&self.name)
            .await
    }
}
