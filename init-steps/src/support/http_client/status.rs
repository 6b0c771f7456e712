//! One rule for an HTTP status that is not the answer a step wants, shared by `http`,
//! `download` and `vault`: which statuses a retry can fix ([`status_class`]) and one wording
//! for the error ([`status_error`]: `<what>: HTTP 404 Not Found`, then the family's context),
//! with the server's `Retry-After` kept on transient errors only.

use std::time::Duration;

use init_core::{ErrorClass, StepError};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::Family;

/// The longest delay taken from a `Retry-After` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Whether a status the step did not want is worth retrying, for a step of `family`.
///
/// - [`Family::OneShot`]: 408, 425, 429 and every 5xx are transient; every other status (400
///   and 404 included: the server is up and answered for good) is permanent.
/// - [`Family::Wait`]: every status is transient (an application answers 404 or 503 while it
///   boots, an ingress 404 until its rules load), except refused credentials (401, 403, 407),
///   which no wait fixes.
///
/// A family with statuses of its own (Vault's sealed or standby answers, `sys/health`'s 472
/// and 530) decides those before it asks here.
pub(crate) fn status_class(status: StatusCode, family: Family) -> ErrorClass {
    let code = status.as_u16();
    let transient = match family {
        Family::OneShot => matches!(code, 408 | 425 | 429) || status.is_server_error(),
        Family::Wait => !matches!(code, 401 | 403 | 407),
    };
    if transient {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

/// The error for `status`: `<what>: HTTP <code> <reason>`, then `: <context>` when the family
/// has more to say (the statuses it expected, the server's own error text). A transient error
/// carries the `Retry-After` delay the server asked for (seconds form, at most five minutes);
/// a permanent one never does, since no retry follows.
pub(crate) fn status_error(
    what: &str,
    status: StatusCode,
    class: ErrorClass,
    context: Option<&str>,
    headers: &HeaderMap,
) -> StepError {
    let mut message = format!("{what}: HTTP {}", status.as_u16());
    if let Some(reason) = status.canonical_reason() {
        message.push(' ');
        message.push_str(reason);
    }
    if let Some(context) = context.filter(|c| !c.is_empty()) {
        message.push_str(": ");
        message.push_str(context);
    }
    let error = StepError::with_class(class, message);
    match retry_after(headers) {
        Some(delay) if class == ErrorClass::Transient => error.with_retry_after(delay),
        _ => error,
    }
}

/// The `Retry-After` header as a delay (seconds form only), capped at five minutes.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn one_shot_steps_retry_408_425_429_and_5xx_only() {
        for code in [408, 425, 429, 500, 502, 503, 599] {
            assert_eq!(
                status_class(status(code), Family::OneShot),
                ErrorClass::Transient,
                "{code}"
            );
        }
        for code in [300, 400, 401, 403, 404, 405, 410, 451] {
            assert_eq!(
                status_class(status(code), Family::OneShot),
                ErrorClass::Permanent,
                "{code}"
            );
        }
    }

    #[test]
    fn waits_poll_every_status_but_refused_credentials() {
        for code in [301, 400, 404, 429, 500, 503] {
            assert_eq!(
                status_class(status(code), Family::Wait),
                ErrorClass::Transient
            );
        }
        for code in [401, 403, 407] {
            assert_eq!(
                status_class(status(code), Family::Wait),
                ErrorClass::Permanent
            );
        }
    }

    #[test]
    fn status_errors_say_http_code_reason_and_context() {
        let none = HeaderMap::new();
        let err = status_error("u", status(404), ErrorClass::Permanent, None, &none);
        assert_eq!(err.to_string(), "u: HTTP 404 Not Found");
        assert!(err.is_permanent());
        let err = status_error(
            "u",
            status(503),
            ErrorClass::Transient,
            Some("expected 2xx"),
            &none,
        );
        assert_eq!(
            err.to_string(),
            "u: HTTP 503 Service Unavailable: expected 2xx"
        );
        assert!(err.is_transient());
        // A status without a registered reason shows its code alone.
        let err = status_error("u", status(472), ErrorClass::Permanent, Some("dr"), &none);
        assert_eq!(err.to_string(), "u: HTTP 472: dr");
    }

    #[test]
    fn retry_after_is_kept_on_transient_errors_only() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let busy = status_error("u", status(503), ErrorClass::Transient, None, &headers);
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(7)));
        let gone = status_error("u", status(404), ErrorClass::Permanent, None, &headers);
        assert_eq!(gone.retry_after(), None);
    }

    #[test]
    fn retry_after_is_capped_at_five_minutes_and_ignores_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("86400"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
