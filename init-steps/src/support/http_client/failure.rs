//! Which failures of a request a retry can fix: a transport error (refused, reset, timed out,
//! a redirect refused) or a TLS certificate that did not verify, classified for a step's
//! [`Family`] as the table in the module documentation of `http_client` says.

use std::error::Error as StdError;
use std::time::Duration;

use init_core::StepError;

use super::Family;
use crate::support::error_chain;

/// Classifies a failed request for a step of `family` (see the table in the module
/// documentation). `what` names the target (a URL without credentials).
///
/// - a certificate that does not verify: permanent or transient as the table says, the message
///   saying what did not verify;
/// - more than 10 redirects, a redirect from https to http: permanent;
/// - a refused or reset connection: transient, and polled again at the wait cadence (`with_wait_cadence`);
/// - a name that does not resolve, a timeout, other connection and body errors: transient,
///   on the policy's backoff;
/// - an invalid request (bad URL or header): invalid.
///
/// The source keeps reqwest's error without its URL: `what` names the target already, and the
/// URL's query could carry a token.
pub(crate) fn classify_error(err: reqwest::Error, family: Family, what: &str) -> StepError {
    let err = err.without_url();
    if let Some(tls) = find_tls_error(&err) {
        return tls.into_error(family, what);
    }
    if err.is_redirect() {
        // The policy's own error (the count, or the downgrade) is the source's text.
        let why = err
            .source()
            .map_or_else(|| "redirect refused".to_owned(), ToString::to_string);
        return StepError::permanent(format!("{what}: {why}"));
    }
    if err.is_builder() {
        return StepError::invalid(format!("{what}: invalid request")).with_source(err);
    }
    if err.is_timeout() {
        return StepError::transient(format!("{what}: timed out")).with_source(err);
    }
    let refused = match error_chain::io_kind(&err) {
        Some(std::io::ErrorKind::ConnectionRefused) => Some("connection refused"),
        Some(std::io::ErrorKind::ConnectionReset) => Some("connection reset"),
        _ => None,
    };
    if let Some(why) = refused {
        // The message says it all; hyper's chain would repeat it three times.
        return StepError::transient(format!("{what}: {why}")).with_wait_cadence();
    }
    let message = if err.is_connect() {
        format!("{what}: cannot connect")
    } else {
        what.to_owned()
    };
    StepError::transient(message).with_source(err)
}

/// How far in the future a certificate's `not_before` may be for a retry to wait for it; past
/// that the clock (or the certificate) is wrong.
const MAX_NOT_YET_VALID: Duration = Duration::from_secs(300);

/// A TLS failure found in an error chain: what people are told, and what can fix it.
#[derive(Debug)]
struct TlsFailure {
    text: String,
    fix: TlsFix,
}

/// What can fix a TLS failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsFix {
    /// Time: the certificate becomes valid after this long (`None` when rustls did not say).
    Time(Option<Duration>),
    /// An ingress that finishes starting: its placeholder certificate has an unknown issuer and
    /// another name.
    ServerStart,
    /// A person.
    Person,
}

impl TlsFailure {
    fn person(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            fix: TlsFix::Person,
        }
    }

    /// The error for a step of `family`, as the table in the module documentation says.
    fn into_error(self, family: Family, what: &str) -> StepError {
        let message = format!("{what}: TLS certificate did not verify: {}", self.text);
        match self.fix {
            TlsFix::Time(Some(wait)) if wait > MAX_NOT_YET_VALID => StepError::permanent(format!(
                "{message}; is this machine's clock behind, or the certificate dated in the future?"
            )),
            TlsFix::Time(Some(wait)) => StepError::transient(message).with_retry_after(wait),
            TlsFix::Time(None) => StepError::transient(message),
            TlsFix::ServerStart if family == Family::Wait => StepError::transient(message),
            TlsFix::ServerStart | TlsFix::Person => StepError::permanent(message),
        }
    }
}

/// A rustls certificate error anywhere in the chain, described for people.
fn find_tls_error(err: &(dyn StdError + 'static)) -> Option<TlsFailure> {
    match error_chain::find::<rustls::Error>(err)? {
        rustls::Error::InvalidCertificate(cert) => Some(describe_certificate_error(cert)),
        rustls::Error::NoCertificatesPresented => {
            Some(TlsFailure::person("the server presented no certificate"))
        }
        rustls::Error::AlertReceived(alert) => {
            describe_client_certificate_alert(*alert).map(TlsFailure::person)
        }
        _ => None,
    }
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

fn describe_certificate_error(err: &rustls::CertificateError) -> TlsFailure {
    use rustls::CertificateError as C;
    let start = |text: &str| TlsFailure {
        text: text.to_owned(),
        fix: TlsFix::ServerStart,
    };
    match err {
        C::UnknownIssuer => start(
            "the server's certificate is signed by an unknown issuer (add its CA with a CA file)",
        ),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            start("the server's certificate is not valid for this host name")
        }
        C::Expired | C::ExpiredContext { .. } => {
            TlsFailure::person("the server's certificate has expired")
        }
        C::NotValidYet => TlsFailure {
            text: "the server's certificate is not valid yet".to_owned(),
            fix: TlsFix::Time(None),
        },
        C::NotValidYetContext { time, not_before } => {
            let wait = Duration::from_secs(not_before.as_secs().saturating_sub(time.as_secs()));
            TlsFailure {
                text: format!(
                    "the server's certificate is not valid yet (for another {}s)",
                    wait.as_secs()
                ),
                fix: TlsFix::Time(Some(wait)),
            }
        }
        C::Revoked => TlsFailure::person("the server's certificate is revoked"),
        C::BadSignature => TlsFailure::person("the server's certificate has a bad signature"),
        other => TlsFailure::person(format!("the server's certificate was refused ({other:?})")),
    }
}
