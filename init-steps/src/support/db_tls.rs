//! TLS for the database families: the [`TlsMode`] a step asks for, and the rustls client
//! configuration it makes (ring provider, no OpenSSL).

#[cfg(any(feature = "mysql", feature = "redis"))]
use std::io;
use std::path::Path;
use std::sync::Arc;

use init_core::StepError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Whether and how a database connection uses TLS, with libpq's meaning of each `sslmode`
/// (<https://www.postgresql.org/docs/15/libpq-ssl.html#LIBPQ-SSL-PROTECTION>).
///
/// ```
/// use init_steps::postgres::TlsMode;
///
/// assert_eq!("verify-full".parse::<TlsMode>(), Ok(TlsMode::VerifyFull));
/// assert_eq!(TlsMode::default(), TlsMode::Disable);
/// assert!("prefer".parse::<TlsMode>().unwrap_err().contains("expected one of"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain TCP (the default; SCRAM authentication never sends the password itself).
    #[default]
    Disable,
    /// Encrypted, but the server's certificate is not checked: protects against eavesdropping,
    /// not against an impostor.
    Require,
    /// Encrypted, and the server's certificate must chain to the CA file (or, without one, to
    /// the system roots) and name the host connected to.
    VerifyFull,
}

impl TlsMode {
    /// The `sslmode` spelling: `disable`, `require` or `verify-full`.
    ///
    /// ```
    /// assert_eq!(init_steps::postgres::TlsMode::Require.as_str(), "require");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Require => "require",
            Self::VerifyFull => "verify-full",
        }
    }
}

impl std::str::FromStr for TlsMode {
    type Err = String;

    /// Parses `disable`, `require` or `verify-full`; the error says what was expected.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "disable" => Ok(Self::Disable),
            "require" => Ok(Self::Require),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(format!(
                "tls mode {other:?}: expected one of disable, require, verify-full"
            )),
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's rustls provider unless one is installed already, for a client
/// that builds its own configuration with `ClientConfig::builder()` (mysql_async): that call
/// panics when the build enables two providers and none was chosen.
#[cfg(feature = "mysql")]
pub(crate) fn install_default_provider() {
    if CryptoProvider::get_default().is_none() {
        // Another thread may win the race; its provider is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The client configuration for `mode` (`None` for [`TlsMode::Disable`]). `what` names the
/// step in errors; a CA file that cannot be read or holds no certificate is permanent.
pub(crate) fn client_config(
    what: &str,
    mode: TlsMode,
    ca_file: Option<&Path>,
) -> Result<Option<Arc<ClientConfig>>, StepError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StepError::permanent(format!("{what}: tls")).with_source(e))?;
    let config = match mode {
        TlsMode::Disable => return Ok(None),
        TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
        TlsMode::VerifyFull => builder
            .with_root_certificates(roots(what, ca_file)?)
            .with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

/// The CA file's certificates, or the system roots without one.
fn roots(what: &str, ca_file: Option<&Path>) -> Result<RootCertStore, StepError> {
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(trusted_certificates(what, ca_file)?);
    Ok(store)
}

/// The certificates verify-full trusts: the CA file's (a file that cannot be read or holds no
/// certificate is permanent, naming it), or the system roots without one.
pub(crate) fn trusted_certificates(
    what: &str,
    ca_file: Option<&Path>,
) -> Result<Vec<CertificateDer<'static>>, StepError> {
    let Some(path) = ca_file else {
        let found = rustls_native_certs::load_native_certs().certs;
        if found.is_empty() {
            return Err(StepError::permanent(format!(
                "{what}: no system CA certificates found; set a CA file"
            )));
        }
        return Ok(found);
    };
    let named = |message: &str| format!("{what}: ca file {}: {message}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StepError::permanent(named("cannot read certificates")).with_source(e))?;
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certs.iter().cloned());
    if added == 0 {
        return Err(StepError::permanent(named("holds no CA certificate")));
    }
    Ok(certs)
}

/// `require`: any certificate is accepted, but the handshake's signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The rustls error somewhere in `error`'s chain (tokio-rustls wraps it in an `io::Error`).
pub(crate) fn find_tls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    crate::support::error_chain::find(error)
}

/// A socket error of a database connection named `what`: a TLS failure inside it is permanent
/// (`what: tls`), a refused connection transient at the wait cadence, the rest transient on the
/// policy's backoff.
#[cfg(any(feature = "mysql", feature = "redis"))]
pub(crate) fn classify_io(what: &str, error: io::Error) -> StepError {
    if find_tls_error(&error).is_some() {
        return StepError::permanent(format!("{what}: tls")).with_source(error);
    }
    let refused = error.kind() == io::ErrorKind::ConnectionRefused;
    let step = StepError::transient(what).with_source(error);
    if refused {
        step.with_wait_cadence()
    } else {
        step
    }
}
