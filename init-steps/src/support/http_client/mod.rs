//! The HTTP client shared by the `http`, `vault` and `download` families: reqwest over rustls
//! (ring provider, no OpenSSL), system roots plus an optional extra CA file, an optional client
//! certificate, explicit redirect rules, and the classification of HTTP failures.
//!
//! # Which failures a retry can fix
//!
//! Two kinds of steps use this client, and they classify some failures differently
//! ([`Family`]): a **wait** ([`HttpWait`](crate::http::HttpWait),
//! [`VaultReady`](crate::vault::VaultReady)) exists to poll something that is starting, while a
//! **one-shot** step ([`Download`](crate::download::Download), the Vault logins and reads) expects
//! a server that is up, and retries only what a few attempts over seconds can fix.
//!
//! | failure | wait | one-shot | why |
//! |---|---|---|---|
//! | connection refused or reset | transient, polled again at the wait cadence | transient, polled again at the wait cadence | the server is starting |
//! | name not resolvable, connect or attempt timeout, a connection dropped mid-body | transient (policy backoff) | transient (policy backoff) | DNS, endpoints and load balancers catch up |
//! | certificate not valid **yet** (`not_before` within 5 min) | transient, retried once it is valid | transient, retried once it is valid | a certificate issued a moment ago, or a clock a little behind the issuer's |
//! | certificate not valid yet by more than 5 min | permanent | permanent | a clock that is wrong, or a certificate dated in the future: no retry fixes it soon |
//! | certificate signed by an **unknown issuer**, or **not valid for the host name** | transient | permanent | while an ingress controller starts, or until cert-manager has issued the real certificate, it serves its placeholder (`Kubernetes Ingress Controller Fake Certificate`): a wait outlasts that; a one-shot step has a server that should be ready, so the CA file or the address is wrong |
//! | certificate **expired**, revoked, badly signed, or refused for another reason; no certificate presented; our client certificate refused (mTLS) | permanent | permanent | not a start-up state: a person must act |
//! | more than 10 redirects, or a redirect from https down to plain http | permanent | permanent | the same configuration loops or downgrades again |
//! | a CA or client-certificate file that does not exist | transient (it may be written by a sibling step) | permanent, naming the file | a one-shot step runs after the steps that make its files |
//! | a CA or client-certificate file that is not PEM | invalid | invalid | a configuration error |
//!
//! HTTP statuses: a wait keeps polling any status outside its expected set except 401, 403 and
//! 407 (an application answers 404 or 503 while it boots), while one-shot steps retry only 408,
//! 425, 429 and 5xx and treat 400, 404 and the other 4xx as permanent: the server is up and
//! answered for good ([`status_class`]). Every family words the error the same way
//! ([`status_error`]). Vault adds its own meanings (sealed, standby, rate limited: transient)
//! in `vault::error`.

mod failure;
mod lazy;
mod status;

use std::path::{Path, PathBuf};
use std::time::Duration;

use init_core::StepError;
use reqwest::redirect;

pub(crate) use failure::classify_error;
pub(crate) use lazy::Lazy;
pub(crate) use status::{status_class, status_error};

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

    /// Checks the files that exist now: the CA file and the client certificate must hold PEM
    /// certificates, the client key a PEM private key. A file that does not exist yet passes
    /// (an earlier step of the plan may write it; [`build_client`] names it if it is still
    /// missing when the step runs).
    pub(crate) fn check_files(&self, what: &str) -> Result<(), StepError> {
        let files = [
            (&self.ca_file, Pem::Certificates, "CA file"),
            (&self.client_cert, Pem::Certificates, "client certificate"),
            (&self.client_key, Pem::PrivateKey, "client key"),
        ];
        for (path, pem, kind) in files {
            if let Some(path) = path {
                check_pem_file(path, pem, &format!("{what}: {kind} {}", path.display()))?;
            }
        }
        Ok(())
    }
}

/// What a PEM file named by configuration must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pem {
    /// One or more certificates (a CA bundle, a client certificate and its chain).
    Certificates,
    /// A private key (PKCS #8, PKCS #1 or SEC1).
    PrivateKey,
}

/// Checks the file at `path` as it is now, for validation: `Ok(false)` when it does not exist,
/// `Ok(true)` when it holds what `pem` says, and an invalid error starting with `name`
/// otherwise (unreadable, a directory, not PEM). A key's content is never shown.
pub(crate) fn check_pem_file(path: &Path, pem: Pem, name: &str) -> Result<bool, StepError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(
                StepError::invalid(format!("{name}: expected a readable file")).with_source(e),
            );
        }
    };
    match pem {
        Pem::Certificates => {
            match CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>() {
                Ok(certs) if !certs.is_empty() => Ok(true),
                Ok(_) => Err(StepError::invalid(format!(
                    "{name}: expected PEM certificates (-----BEGIN CERTIFICATE-----), found none"
                ))),
                Err(e) => Err(
                    StepError::invalid(format!("{name}: expected PEM certificates")).with_source(e),
                ),
            }
        }
        Pem::PrivateKey => PrivateKeyDer::from_pem_slice(&bytes)
            .map(|_| true)
            .map_err(|e| {
                StepError::invalid(format!(
                    "{name}: expected a PEM private key (-----BEGIN PRIVATE KEY-----)"
                ))
                .with_source(e)
            }),
    }
}

/// How a family of steps treats the failures a retry may fix (see the table in the module
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// A step that polls something starting ([`Policy::wait`](init_core::Policy::wait)): an
    /// ingress's placeholder certificate and a file not written yet are waited out.
    Wait,
    /// A step that expects its server up and its files in place: only what a few attempts can
    /// fix is transient.
    OneShot,
}

/// Which redirects a client follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Redirects {
    /// None: a 3xx is the answer (waits must be able to match it).
    #[default]
    None,
    /// Up to 10, each to the same scheme, host and port as the request, so that credentials
    /// (an `X-Vault-Token`, say) never travel to another host. A redirect to another origin is
    /// not followed (its 3xx is the answer); one from https down to http is an error.
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

/// The most redirects followed for one request (reqwest's own default).
const MAX_REDIRECTS: usize = 10;

/// The error a redirect policy gives past [`MAX_REDIRECTS`]; it names the count.
const TOO_MANY_REDIRECTS: &str = "more than 10 redirects";

/// The error a redirect policy gives for a redirect from https to http.
const DOWNGRADE: &str = "refusing a redirect from https to plain http";

/// Whether following `next` would leave TLS after an https URL in `previous`.
fn is_downgrade(next: &url::Url, previous: &[url::Url]) -> bool {
    next.scheme() != "https" && previous.iter().any(|u| u.scheme() == "https")
}

/// Builds a client. Reads the CA and client-certificate files, so call it from `run` (an earlier
/// step may create them), once per step. A file that does not exist is transient for a
/// [`Family::Wait`] and permanent for a [`Family::OneShot`], naming the file either way.
pub(crate) fn build_client(
    tls: &TlsOptions,
    redirects: Redirects,
    family: Family,
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
                if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error(TOO_MANY_REDIRECTS)
                } else if is_downgrade(attempt.url(), attempt.previous()) {
                    attempt.error(DOWNGRADE)
                } else if same {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }),
            Redirects::AnyHost => redirect::Policy::custom(|attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error(TOO_MANY_REDIRECTS)
                } else if is_downgrade(attempt.url(), attempt.previous()) {
                    attempt.error(DOWNGRADE)
                } else {
                    attempt.follow()
                }
            }),
        });
    if let Some(ca_file) = &tls.ca_file {
        let pem = read_file(ca_file, "CA file", family, what)?;
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
        let mut pem = read_file(cert, "client certificate", family, what)?;
        pem.push(b'\n');
        pem.extend(read_file(key, "client key", family, what)?);
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

fn read_file(path: &Path, kind: &str, family: Family, what: &str) -> Result<Vec<u8>, StepError> {
    std::fs::read(path).map_err(|e| {
        let name = format!("{what}: {kind} {}", path.display());
        if e.kind() == std::io::ErrorKind::NotFound && family == Family::OneShot {
            StepError::permanent(name).with_source(e)
        } else {
            StepError::from_error(e).context(name)
        }
    })
}

/// Reads at most `cap` bytes of a response body.
///
/// A body longer than the cap is an error naming the cap (permanent: the same resource will be
/// as long next time).
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    cap: u64,
    family: Family,
    what: &str,
) -> Result<Vec<u8>, StepError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| classify_error(e, family, what))?
    {
        if u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX) > cap {
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
