//! The HTTP client shared by the `http`, `vault` and `download` families: reqwest over rustls
//! (ring provider, no OpenSSL), system roots plus an optional extra CA file, an optional client
//! certificate, explicit redirect rules, and the classification of HTTP failures.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::time::Duration;

use init_core::{ErrorClass, StepError};
use reqwest::redirect;

/// TLS settings of one client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    /// A PEM file of extra CA certificates, trusted in addition to the system roots.
    pub(crate) ca_file: Option<PathBuf>,
    /// A PEM client certificate (chain) for mTLS; needs `client_key`.
    pub(crate) client_cert: Option<PathBuf>,
    /// The PEM private key of `client_cert`.
    pub(crate) client_key: Option<PathBuf>,
    /// Skip certificate verification (only when asked; a warning is logged).
    pub(crate) insecure: bool,
}

impl TlsOptions {
    /// Configuration checks without I/O: a client certificate needs its key and vice versa.
    pub(crate) fn validate(&self, what: &str) -> Result<(), StepError> {
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => Err(StepError::invalid(format!(
                "{what}: a client certificate needs a client key"
            ))),
            (None, Some(_)) => Err(StepError::invalid(format!(
                "{what}: a client key needs a client certificate"
            ))),
            _ => Ok(()),
        }
    }
}

/// Which redirects a client follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Redirects {
    /// None: a 3xx is the answer (waits must be able to match it).
    #[default]
    None,
    /// Up to 10, each to the same scheme, host and port as the request, so that credentials
    /// (an `X-Vault-Token`, say) never travel to another host.
    SameOrigin,
    /// Up to 10, to any host, but never from https down to plain http: for downloads that
    /// carry no credentials (release assets redirect to a CDN).
    AnyHost,
}

/// Makes sure rustls has its process-wide crypto provider (ring) before a client is built.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either way a provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Builds a client. Reads the CA and client-certificate files, so call it from `run` (an earlier
/// step may create them), once per step.
pub(crate) fn build_client(
    tls: &TlsOptions,
    redirects: Redirects,
    what: &str,
) -> Result<reqwest::Client, StepError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("initkit/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .redirect(match redirects {
            Redirects::None => redirect::Policy::none(),
            Redirects::SameOrigin => redirect::Policy::custom(|attempt| {
                let first = attempt.previous().first().cloned();
                let same = first.is_some_and(|first| {
                    let next = attempt.url();
                    first.scheme() == next.scheme()
                        && first.host_str() == next.host_str()
                        && first.port_or_known_default() == next.port_or_known_default()
                });
                if attempt.previous().len() > 10 {
                    attempt.error("more than 10 redirects")
                } else if same {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }),
            Redirects::AnyHost => redirect::Policy::custom(|attempt| {
                let downgrade = attempt.url().scheme() != "https"
                    && attempt.previous().iter().any(|u| u.scheme() == "https");
                if attempt.previous().len() > 10 {
                    attempt.error("more than 10 redirects")
                } else if downgrade {
                    attempt.error("refusing a redirect from https to http")
                } else {
                    attempt.follow()
                }
            }),
        });
    if let Some(ca_file) = &tls.ca_file {
        let pem = read_file(ca_file, "CA file", what)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            StepError::invalid(format!(
                "{what}: CA file {}: expected PEM certificates",
                ca_file.display()
            ))
            .with_source(e)
        })?;
        if certs.is_empty() {
            return Err(StepError::invalid(format!(
                "{what}: CA file {}: no PEM certificate in it",
                ca_file.display()
            )));
        }
        builder = builder.tls_certs_merge(certs);
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        let mut pem = read_file(cert, "client certificate", what)?;
        pem.push(b'\n');
        pem.extend(read_file(key, "client key", what)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            StepError::invalid(format!(
                "{what}: client certificate {} and key {}: expected PEM certificate and private key",
                cert.display(),
                key.display()
            ))
            .with_source(e)
        })?;
        builder = builder.identity(identity);
    }
    if tls.insecure {
        tracing::warn!(
            "{what}: TLS certificate verification is OFF (insecure); anyone on the path can read and change this traffic"
        );
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| {
        StepError::invalid(format!("{what}: cannot build the HTTP client")).with_source(e)
    })
}

fn read_file(path: &Path, kind: &str, what: &str) -> Result<Vec<u8>, StepError> {
    std::fs::read(path)
        .map_err(|e| StepError::from_error(e).context(format!("{what}: {kind} {}", path.display())))
}

/// Whether an HTTP status is worth retrying: 408, 429 and every 5xx are; the rest are not.
pub(crate) fn status_class(status: reqwest::StatusCode) -> ErrorClass {
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

/// The `Retry-After` header as a delay (seconds form only), capped at five minutes.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(300)))
}

/// Classifies a failed request. `what` names the target (a URL without credentials).
///
/// - a certificate that does not verify: permanent, saying what did not verify;
/// - a refused or reset connection: transient, and polled again soon (`with_poll_after`);
/// - a name that does not resolve, a timeout, other connection and body errors: transient,
///   on the policy's backoff;
/// - an invalid request (bad URL or header): invalid.
///
/// The source keeps reqwest's error without its URL: `what` names the target already, and the
/// URL's query could carry a token.
pub(crate) fn classify_error(err: reqwest::Error, what: &str) -> StepError {
    let err = err.without_url();
    if let Some(tls) = find_tls_error(&err) {
        return StepError::permanent(format!("{what}: TLS certificate did not verify: {tls}"));
    }
    if err.is_builder() {
        return StepError::invalid(format!("{what}: invalid request")).with_source(err);
    }
    if err.is_timeout() {
        return StepError::transient(format!("{what}: timed out")).with_source(err);
    }
    let refused = match io_kind(&err) {
        Some(std::io::ErrorKind::ConnectionRefused) => Some("connection refused"),
        Some(std::io::ErrorKind::ConnectionReset) => Some("connection reset"),
        _ => None,
    };
    if let Some(why) = refused {
        // The message says it all; hyper's chain would repeat it three times.
        return StepError::transient(format!("{what}: {why}"))
            .with_poll_after(Duration::from_millis(50));
    }
    let message = if err.is_connect() {
        format!("{what}: cannot connect")
    } else {
        what.to_owned()
    };
    StepError::transient(message).with_source(err)
}

fn io_kind(err: &(dyn StdError + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        next = e.source();
    }
    None
}

/// A rustls certificate error anywhere in the chain, described for people.
fn find_tls_error(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        // An io::Error's `source()` skips the error it wraps (it returns that error's source),
        // and hyper-util wraps tokio-rustls' io::Error in another one: look inside each.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            next = Some(inner as &(dyn StdError + 'static));
            continue;
        }
        if let Some(rustls_error) = e.downcast_ref::<rustls::Error>() {
            return match rustls_error {
                rustls::Error::InvalidCertificate(cert) => Some(describe_certificate_error(cert)),
                rustls::Error::NoCertificatesPresented => {
                    Some("the server presented no certificate".to_owned())
                }
                rustls::Error::AlertReceived(alert) => describe_client_certificate_alert(*alert),
                _ => None,
            };
        }
        next = e.source();
    }
    None
}

/// A fatal alert by which the server refuses our client certificate (mTLS); other alerts are
/// not about certificates.
fn describe_client_certificate_alert(alert: rustls::AlertDescription) -> Option<String> {
    use rustls::AlertDescription as A;
    match alert {
        A::CertificateRequired => {
            Some("the server requires a client certificate, and none was configured".to_owned())
        }
        A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateRevoked
        | A::CertificateExpired
        | A::CertificateUnknown
        | A::UnknownCA => Some(format!(
            "the server refused the client certificate ({alert:?})"
        )),
        _ => None,
    }
}

fn describe_certificate_error(err: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match err {
        C::UnknownIssuer => {
            "the server's certificate is signed by an unknown issuer (add its CA with a CA file)"
                .to_owned()
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "the server's certificate is not valid for this host name".to_owned()
        }
        C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired".to_owned(),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet".to_owned()
        }
        C::Revoked => "the server's certificate is revoked".to_owned(),
        C::BadSignature => "the server's certificate has a bad signature".to_owned(),
        other => format!("the server's certificate was refused ({other:?})"),
    }
}

/// Reads at most `cap` bytes of a response body.
///
/// A body longer than the cap is an error naming the cap (permanent: the same resource will be
/// as long next time).
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
    what: &str,
) -> Result<Vec<u8>, StepError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| classify_error(e, what))?
    {
        if body.len() + chunk.len() > cap {
            return Err(StepError::permanent(format!(
                "{what}: response body is larger than the {cap}-byte limit"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `url` without its password and query string, for messages.
pub(crate) fn display_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}
