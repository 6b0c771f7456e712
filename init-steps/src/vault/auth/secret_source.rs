//! [`SecretSource`]: a secret a login step sends (a JWT, a secret ID, a wrapping token, a
//! token), given inline or read from a file at run time, and the checks of such a file.

use std::path::{Path, PathBuf};

use init_core::{Context, StepError};

use crate::vault::client::Secret;

/// A secret given inline or read from a file at run time.
#[derive(Debug, Clone)]
pub(super) enum SecretSource {
    Value(Secret),
    File(PathBuf),
}

impl SecretSource {
    /// The secret, registered with the context's redactor.
    pub(super) async fn read(&self, ctx: &Context, what: &str) -> Result<Secret, StepError> {
        match self {
            Self::Value(secret) => {
                ctx.register_secret(secret.expose());
                Ok(secret.clone())
            }
            Self::File(path) => read_secret_file(ctx, path, what).await,
        }
    }

    /// Checks a file source as [`check_secret_file`] does; an inline value needs nothing.
    pub(super) fn check(&self, what: &str) -> Result<(), StepError> {
        match self {
            Self::Value(_) => Ok(()),
            Self::File(path) => check_secret_file(path, what),
        }
    }
}

/// Checks, at validation, a secret file that exists already: it must be a readable file. One
/// that does not exist yet passes: an earlier step of the plan may write it
/// ([`read_secret_file`] names it if it is still missing). The content is not read.
pub(super) fn check_secret_file(path: &Path, what: &str) -> Result<(), StepError> {
    let name = format!("{what} {}", path.display());
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(StepError::invalid(format!(
            "{name}: expected a file, found a directory or another kind of entry"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            Err(StepError::invalid(format!("{name}: expected a readable file")).with_source(e))
        }
    }
}

/// Reads a secret file, surrounding whitespace (a trailing newline) trimmed, and registers the
/// secret with the context's redactor. A file that does not exist is permanent, naming it: the
/// steps that write files run before this one, so a retry will not find it either.
pub(super) async fn read_secret_file(
    ctx: &Context,
    path: &Path,
    what: &str,
) -> Result<Secret, StepError> {
    let name = format!("{what} {}", path.display());
    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            StepError::permanent(&name).with_source(e)
        } else {
            StepError::from_error(e).context(&name)
        }
    })?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(StepError::permanent(format!("{name}: the file is empty")));
    }
    ctx.register_secret(trimmed);
    Ok(Secret::new(trimmed))
}
