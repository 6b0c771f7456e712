//! `CaBundle`: the system CA bundle plus extra CA certificates (PEM files or published values),
//! each parsed as X.509 and checked for expiry, written as one bundle file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use init_core::{
    Context, Publication, Reference, Step, StepError, ValidateContext, ValuePath, async_trait,
};
use rustls_pki_types::pem::{PemObject, SectionKind};
use x509_parser::time::ASN1Time;

use crate::support::file_output::{DefaultMode, FileOutput, file_output_setters};

/// Where distributions keep their CA bundle, most common first (Debian, Ubuntu and Alpine;
/// Fedora and RHEL; openSUSE; older RHEL; Alpine and others).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

/// What a [`CaBundle`] does with an expired certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expired {
    /// Refuse it: the step fails (permanently), naming the certificate and its expiry date.
    #[default]
    Refuse,
    /// Log a warning and put it in the bundle anyway.
    Warn,
}

/// Which system bundle a [`CaBundle`] starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum System {
    /// The first of [`SYSTEM_BUNDLES`] that exists, if any.
    Auto,
    /// This file (an error when it is missing).
    Path(PathBuf),
    /// None.
    Off,
}

/// Where an extra certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    File(PathBuf),
    Value(ValuePath),
}

impl Source {
    fn label(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Value(path) => format!("values.{path}"),
        }
    }
}

/// Builds one CA bundle file: the system bundle (when present) followed by extra CA
/// certificates, for an application that reads a single `SSL_CERT_FILE`.
///
/// - The system bundle is copied as it is: by default the first of
///   `/etc/ssl/certs/ca-certificates.crt`, `/etc/pki/tls/certs/ca-bundle.crt`,
///   `/etc/ssl/ca-bundle.pem`, `/etc/pki/tls/cacert.pem` and `/etc/ssl/cert.pem` that exists
///   (none is fine), or [`system_bundle`](Self::system_bundle), or none at all
///   ([`without_system_bundle`](Self::without_system_bundle)).
/// - Every extra PEM ([`pem_file`](Self::pem_file), [`published`](Self::published)) must hold
///   at least one certificate and only certificates (a private key is refused, so it never
///   lands in a world-readable bundle); every certificate must parse as X.509. Certificates
///   are re-encoded (64-column PEM), duplicates dropped.
/// - An expired certificate is refused, or only warned about with
///   [`on_expired`](Self::on_expired)`(`[`Expired::Warn`]`)`; one not valid yet is warned
///   about.
///
/// The bundle is written atomically; its mode is [`mode`](Self::mode), else the existing
/// file's, else `0o644` less the umask (CA certificates are public); its owner is
/// [`owner`](Self::owner), else the process's.
///
/// # Validation
///
/// [`Step::validate`] checks the mode, that there is something to add, that the destination is
/// not the system bundle itself (a rerun would add the certificates twice), and parses the
/// PEM files **that exist at validation time** (an earlier step may write the others; they are
/// parsed when the step runs). A PEM that does not parse, or an expired certificate that would
/// be refused, is found there.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::certs::{CaBundle, Expired};
///
/// let step = CaBundle::new("/shared/ca-bundle.crt")
///     .pem_file("/etc/initkit/corp-root.pem")
///     .published("vault-ca")
///     .on_expired(Expired::Warn);
/// assert_eq!(step.name(), "ca-bundle /shared/ca-bundle.crt");
/// ```
#[derive(Debug, Clone)]
pub struct CaBundle {
    name: String,
    dest: PathBuf,
    system: System,
    sources: Vec<Source>,
    expired: Expired,
    output: FileOutput,
}

impl CaBundle {
    /// Writes the bundle to `dest`. The step is named `ca-bundle <dest>`.
    ///
    /// ```
    /// let step = init_steps::certs::CaBundle::new("/shared/ca.crt").pem_file("/ca/extra.pem");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn new(dest: impl Into<PathBuf>) -> Self {
        let dest = dest.into();
        Self {
            name: format!("ca-bundle {}", dest.display()),
            dest,
            system: System::Auto,
            sources: Vec::new(),
            expired: Expired::Refuse,
            output: FileOutput::default(),
        }
    }

    /// Adds the certificates of a PEM file (read when the step runs).
    ///
    /// ```
    /// let step = init_steps::certs::CaBundle::new("/shared/ca.crt").pem_file("/ca/a.pem").pem_file("/ca/b.pem");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.sources.push(Source::File(path.into()));
        self
    }

    /// Adds the certificates of a value an earlier step published at `path`, a [`ValuePath`]
    /// (`vault-ca`, or `pki.issuing_ca` for a key of a published PKI answer): a PEM string, or an
    /// array of PEM strings (a CA chain).
    ///
    /// The step declares the read, so [`Plan::validate`](init_core::Plan::validate) refuses a
    /// path that no earlier step publishes before anything runs.
    ///
    /// ```
    /// let step = init_steps::certs::CaBundle::new("/shared/ca.crt")
    ///     .published("vault-ca")
    ///     .published("pki.ca_chain");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn published(mut self, path: impl Into<ValuePath>) -> Self {
        self.sources.push(Source::Value(path.into()));
        self
    }

    /// Starts from this system bundle instead of looking for one (it must exist at run time).
    ///
    /// ```
    /// let step = init_steps::certs::CaBundle::new("/shared/ca.crt")
    ///     .system_bundle("/etc/ssl/certs/ca-certificates.crt")
    ///     .pem_file("/ca/extra.pem");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn system_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.system = System::Path(path.into());
        self
    }

    /// Leaves the system bundle out: the bundle holds the extra certificates only.
    ///
    /// ```
    /// let step = init_steps::certs::CaBundle::new("/shared/ca.crt")
    ///     .without_system_bundle()
    ///     .pem_file("/ca/extra.pem");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn without_system_bundle(mut self) -> Self {
        self.system = System::Off;
        self
    }

    /// What to do with an expired certificate. Default: [`Expired::Refuse`].
    ///
    /// ```
    /// use init_steps::certs::{CaBundle, Expired};
    /// let step = CaBundle::new("/shared/ca.crt").pem_file("/ca/old.pem").on_expired(Expired::Warn);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn on_expired(mut self, expired: Expired) -> Self {
        self.expired = expired;
        self
    }

    /// The PEM text of a source.
    fn read_source(&self, source: &Source, ctx: &Context) -> Result<Vec<u8>, StepError> {
        match source {
            Source::File(path) => {
                std::fs::read(path).map_err(|e| StepError::from_error(e).context(path.display()))
            }
            Source::Value(path) => {
                let part = path.get(ctx).map_err(|e| e.context(&self.name))?;
                let not_pem = || {
                    StepError::permanent(format!(
                        "{}: expected a PEM string or an array of them",
                        source.label()
                    ))
                };
                if let Some(text) = part.as_str() {
                    return Ok(text.as_bytes().to_vec());
                }
                let items = part.as_array().ok_or_else(not_pem)?;
                let mut pem = Vec::new();
                for item in items {
                    pem.extend_from_slice(item.as_str().ok_or_else(not_pem)?.as_bytes());
                    pem.push(b'\n');
                }
                Ok(pem)
            }
        }
    }
}

file_output_setters!(
    CaBundle,
    output,
    "certs::CaBundle::new(\"/shared/ca.crt\").pem_file(\"/ca/a.pem\")",
    "the bundle",
    "the bundle",
    "the existing file's mode, or `0o644` less the umask (CA certificates are public)."
);

/// Splits `pem` into certificates (DER), parses each as X.509 and checks its validity period.
/// A problem is bad input: `validate` reports it as invalid, `run` as permanent.
fn parse_pem(label: &str, pem: &[u8], expired: Expired) -> Result<Vec<Vec<u8>>, String> {
    let mut certs = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        let (kind, der) =
            section.map_err(|e| format!("{label}: invalid PEM: {}", pem_problem(&e)))?;
        match kind {
            SectionKind::Certificate => {}
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey => {
                return Err(format!(
                    "{label}: holds a private key; a CA bundle takes certificates only"
                ));
            }
            other => {
                return Err(format!(
                    "{label}: holds a {other:?} section; a CA bundle takes certificates only"
                ));
            }
        }
        let index = certs.len() + 1;
        let not_x509 = || format!("{label}: certificate {index}: does not parse as X.509");
        let (rest, cert) = x509_parser::parse_x509_certificate(&der).map_err(|_| not_x509())?;
        if !rest.is_empty() {
            return Err(not_x509());
        }
        let subject = cert.subject().to_string();
        let validity = cert.validity();
        let now = ASN1Time::now();
        if validity.not_after < now {
            let date = validity.not_after.to_datetime().date();
            match expired {
                Expired::Refuse => {
                    return Err(format!(
                        "{label}: certificate \"{subject}\" expired on {date}"
                    ));
                }
                Expired::Warn => tracing::warn!(
                    "{label}: certificate \"{subject}\" expired on {date}; adding it anyway"
                ),
            }
        } else if validity.not_before > now {
            let date = validity.not_before.to_datetime().date();
            tracing::warn!("{label}: certificate \"{subject}\" is not valid before {date}");
        }
        certs.push(der);
    }
    if certs.is_empty() {
        return Err(format!("{label}: no PEM certificate in it"));
    }
    Ok(certs)
}

/// A PEM syntax error, for people (the library shows byte arrays).
fn pem_problem(err: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match err {
        E::MissingSectionEnd { end_marker } => format!(
            "missing \"-----END {}-----\" line",
            String::from_utf8_lossy(end_marker)
        ),
        E::IllegalSectionStart { .. } => "malformed \"-----BEGIN\" line".to_owned(),
        E::Base64Decode(_) => "invalid base64".to_owned(),
        other => other.to_string(),
    }
}

/// `der` as a PEM certificate block with 64-column lines.
fn encode_pem(der: &[u8], out: &mut String) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
}

fn system_bundle_path(system: &System) -> Option<PathBuf> {
    match system {
        System::Auto => SYSTEM_BUNDLES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .map(Path::to_path_buf),
        System::Path(path) => Some(path.clone()),
        System::Off => None,
    }
}

#[async_trait]
impl Step for CaBundle {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn reads(&self) -> Vec<Reference> {
        self.sources
            .iter()
            .filter_map(|source| match source {
                Source::Value(path) if path.check().is_ok() => {
                    Some(path.reference("published certificates"))
                }
                _ => None,
            })
            .collect()
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.output.validate(&self.name)?;
        if self.sources.is_empty() {
            return Err(StepError::invalid(format!(
                "{}: expected at least one PEM file or published value to add",
                self.name
            )));
        }
        let system_paths: Vec<&Path> = match &self.system {
            System::Auto => SYSTEM_BUNDLES.iter().map(Path::new).collect(),
            System::Path(p) => vec![p.as_path()],
            System::Off => Vec::new(),
        };
        if system_paths.contains(&self.dest.as_path()) {
            return Err(StepError::invalid(format!(
                "{}: the destination is a system bundle; expected another file (a rerun would \
                 add the certificates twice)",
                self.name
            )));
        }
        for source in &self.sources {
            if let Source::Value(path) = source {
                path.check().map_err(|e| e.context(&self.name))?;
            }
            if let Source::File(path) = source
                && let Ok(pem) = std::fs::read(path)
            {
                parse_pem(&source.label(), &pem, self.expired).map_err(StepError::invalid)?;
            }
        }
        Ok(())
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let mut out = String::new();
        if let Some(path) = system_bundle_path(&self.system) {
            let system = std::fs::read_to_string(&path)
                .map_err(|e| StepError::from_error(e).context(path.display()))?;
            out.push_str(&system);
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
        }
        let mut seen = HashSet::new();
        let mut added = 0;
        for source in &self.sources {
            let pem = self.read_source(source, ctx)?;
            for der in
                parse_pem(&source.label(), &pem, self.expired).map_err(StepError::permanent)?
            {
                if seen.insert(der.clone()) {
                    encode_pem(&der, &mut out);
                    added += 1;
                }
            }
        }
        // CA certificates are public: no secret default.
        let (bytes, public, swept) = (out.into_bytes(), DefaultMode::Existing, Arc::default());
        (self.output)
            .stage(&self.name, &self.dest, bytes, public, &swept)
            .await?
            .commit(&self.name)
            .await?;
        tracing::debug!(path = %self.dest.display(), added, "CA bundle written");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_64_column_pem() {
        let mut out = String::new();
        encode_pem(&[0u8; 60], &mut out);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2], "A".repeat(16));
    }
}
