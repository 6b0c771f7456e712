//! The files [`PkiIssue`](super::PkiIssue) writes (the private key, the certificate, the CA
//! chain): their paths, modes and owner, checked at validation and written as one set.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use init_core::StepError;

use crate::support::atomic;
use crate::support::atomic_set::{self, SetFile};
use crate::support::file_output::{DefaultMode, FileOutput};

/// The mode of the certificate and chain files when none is asked for.
const PUBLIC_MODE: DefaultMode = DefaultMode::Fixed(0o644);

/// Where the certificate, key and chain go, and how.
#[derive(Debug, Clone, Default)]
pub(super) struct PkiFiles {
    pub(super) certificate: Option<PathBuf>,
    pub(super) private_key: Option<PathBuf>,
    pub(super) ca_chain: Option<PathBuf>,
    /// The certificate's and the chain's mode, and every file's owner.
    public: FileOutput,
    /// The key's mode (`0o600` unless asked otherwise) and owner.
    key: FileOutput,
}

impl PkiFiles {
    /// The mode of the certificate and chain files.
    pub(super) fn set_mode(&mut self, mode: u32) {
        self.public.set_mode(mode);
    }

    /// The mode of the key file.
    pub(super) fn set_key_mode(&mut self, mode: u32) {
        self.key.set_mode(mode);
    }

    /// The owner of every file.
    pub(super) fn set_owner(&mut self, uid: u32, gid: u32) {
        self.public.set_owner(uid, gid);
        self.key.set_owner(uid, gid);
    }

    fn paths(&self) -> Vec<&PathBuf> {
        [&self.private_key, &self.certificate, &self.ca_chain]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Whether no file is asked for.
    pub(super) fn is_empty(&self) -> bool {
        self.paths().is_empty()
    }

    /// Checks the modes and the paths; `subject` names the role in messages.
    pub(super) fn validate(&self, subject: &str) -> Result<(), StepError> {
        self.public.validate(subject)?;
        self.key.validate(subject)?;
        if self.certificate.is_some() != self.private_key.is_some() {
            return Err(StepError::invalid(format!(
                "{subject}: expected both certificate_file and private_key_file (the key exists only \
                 in Vault's reply, the certificate is useless without it)"
            )));
        }
        let files = self.paths();
        let dirs: HashSet<_> = files.iter().map(|f| f.parent()).collect();
        if self.private_key.is_some() && dirs.len() > 1 {
            return Err(StepError::invalid(format!(
                "{subject}: expected the certificate, key and chain files in one directory \
                 (they are replaced together, through a ..data symlink)"
            )));
        }
        if files.iter().any(|f| {
            f.file_name()
                .is_none_or(|n| n.as_encoded_bytes().starts_with(b".."))
        }) {
            return Err(StepError::invalid(format!(
                "{subject}: expected file names that do not start with \"..\" (kept for the \
                 replaced-together set)"
            )));
        }
        if files.iter().collect::<HashSet<_>>().len() != files.len() {
            return Err(StepError::invalid(format!(
                "{subject}: expected a different file for the certificate, the key and the chain"
            )));
        }
        Ok(())
    }

    /// Writes the files asked for: the key, certificate and chain as one set when there is a
    /// key (validation put them in one directory), so a reader never sees a new key beside an
    /// old certificate; a chain file alone on its own. Returns the paths written. `name` (the
    /// step's) names a panic of the file work.
    pub(super) async fn write(
        &self,
        name: &str,
        private_key: &str,
        certificate: &str,
        chain: &str,
    ) -> Result<Vec<String>, StepError> {
        let written = self
            .paths()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let (Some(key_path), Some(cert_path)) = (&self.private_key, &self.certificate) else {
            if let Some(path) = &self.ca_chain {
                let bytes = pem_file(chain);
                (self.public)
                    .stage(name, path, bytes, PUBLIC_MODE, &Arc::default())
                    .await?
                    .commit(name)
                    .await?;
            }
            return Ok(written);
        };
        let file = |path: &PathBuf, text: &str, options| SetFile {
            name: path.file_name().unwrap_or_default().to_owned(),
            bytes: pem_file(text),
            options,
        };
        let mut set = vec![
            file(key_path, private_key, self.key.options(DefaultMode::Secret)),
            file(cert_path, certificate, self.public.options(PUBLIC_MODE)),
        ];
        if let Some(path) = &self.ca_chain {
            set.push(file(path, chain, self.public.options(PUBLIC_MODE)));
        }
        let dir = crate::support::text::parent_or_dot(key_path).to_path_buf();
        atomic::off_thread(name, move || atomic_set::write_set(&dir, &set)).await?;
        Ok(written)
    }
}

/// A PEM text with exactly one final newline.
fn pem_file(text: &str) -> Vec<u8> {
    let mut out = text.trim_end().to_owned();
    out.push('\n');
    out.into_bytes()
}
