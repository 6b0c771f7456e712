//! Vault's errors as Vault means them: the status code and the `errors` array of a reply turned
//! into a classified [`StepError`].
//!
//! Vault answers an error with `{"errors": ["..."]}` and a status code
//! (<https://developer.hashicorp.com/vault/api-docs#error-response>): 400 invalid request, 403
//! forbidden (a bad token or a policy that does not allow the path), 404 not found, 405
//! unsupported operation, 412 precondition failed (Enterprise eventual consistency), 429 rate
//! limited (or standby, on `sys/health`), 500 internal error, 502 a request to another node
//! failed, 503 sealed or in maintenance. Some errors arrive as Go multi-error lists
//! (`"1 error occurred:\n\t* permission denied\n\n"`), so texts are matched by substring.

use init_core::{ErrorClass, StepError};
use reqwest::StatusCode;
use serde_json::Value;

use super::client::Reply;
use crate::support::http_client::{self, Family};

/// The longest part of Vault's own error text kept in a message.
const MAX_ERROR_TEXT: usize = 400;

/// Vault's `errors`, each multi-error list flattened into its items.
pub(crate) fn vault_errors(body: &Value) -> Vec<String> {
    let Some(errors) = body.get("errors").and_then(Value::as_array) else {
        return Vec::new();
    };
    errors
        .iter()
        .filter_map(Value::as_str)
        .flat_map(flatten_multierror)
        .collect()
}

/// `"2 errors occurred:\n\t* a\n\t* b\n\n"` → `["a", "b"]`; anything else → itself, trimmed.
fn flatten_multierror(text: &str) -> Vec<String> {
    let trimmed = text.trim();
    let first_line = trimmed.lines().next().unwrap_or_default();
    if first_line.ends_with("occurred:") {
        let items: Vec<String> = trimmed
            .lines()
            .skip(1)
            .filter_map(|l| l.trim().strip_prefix("* "))
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        if !items.is_empty() {
            return items;
        }
    }
    if trimmed.is_empty() {
        Vec::new()
    } else {
        vec![trimmed.to_owned()]
    }
}

fn contains(errors: &[String], needle: &str) -> bool {
    errors
        .iter()
        .any(|e| e.to_ascii_lowercase().contains(needle))
}

/// The error for a reply whose status is not 2xx, for a one-shot step. `subject` names what
/// was asked for (`secret/orders/db`, `auth/kubernetes/login`).
pub(crate) fn from_reply(reply: &Reply, subject: &str) -> StepError {
    classify_reply(reply, subject, Family::OneShot)
}

/// The error for a reply whose status is not 2xx, for a step of `family`, worded as every
/// family words a status: `secret/orders/db: HTTP 403 Forbidden: permission denied`, with
/// Vault's own error text (or what Vault means by the status) after it. Vault's sealed,
/// standby and rate-limit answers are transient whatever their status, and so is a 412 (a
/// performance standby that has not caught up yet).
pub(crate) fn classify_reply(reply: &Reply, subject: &str, family: Family) -> StepError {
    let status = reply.status;
    if status.is_redirection() {
        return redirect_error(reply, subject);
    }
    let errors = vault_errors(&reply.body);
    let mut text = errors.join("; ");
    if text.len() > MAX_ERROR_TEXT {
        text = crate::support::text::shorten(&text, MAX_ERROR_TEXT).into_owned();
    }
    if text.is_empty() {
        text = vault_meaning(status).unwrap_or_default().to_owned();
    }
    let class = if contains(&errors, "vault is sealed")
        || contains(&errors, "standby")
        || contains(&errors, "local node not active")
        || contains(&errors, "rate limit quota exceeded")
    {
        ErrorClass::Transient
    } else if status == StatusCode::PRECONDITION_FAILED {
        // "required index state not present": a performance standby has not caught up yet.
        ErrorClass::Transient
    } else {
        http_client::status_class(status, family)
    };
    http_client::status_error(
        subject,
        status,
        class,
        Some(&crate::support::text::lowercase_first(&text)),
        &reply.headers,
    )
}

impl Reply {
    /// The reply if its status is 2xx, else the error Vault means by it (see [`from_reply`]).
    pub(crate) fn success(self, subject: &str) -> Result<Self, StepError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(from_reply(&self, subject))
        }
    }
}

/// Vault's standby nodes answer with a 307 to the active node when they do not forward
/// requests; a redirect to another host is never followed with the token, so it is reported.
/// Transient: the node may become active, or the load balancer may pick the active one next.
fn redirect_error(reply: &Reply, subject: &str) -> StepError {
    let target = reply
        .headers
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| reply.url.join(l).ok())
        .map_or_else(|| "elsewhere".to_owned(), |u| http_client::display_url(&u));
    let context = format!(
        "vault redirected to {target}; not following a redirect to another host with the \
         token (a standby node? point VAULT_ADDR at the active node or its load balancer)"
    );
    http_client::status_error(
        subject,
        reply.status,
        ErrorClass::Transient,
        Some(&context),
        &reply.headers,
    )
}

/// What Vault means by a status, when it says more than the status's reason phrase.
fn vault_meaning(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        405 => Some("unsupported operation"),
        502 => Some("a request to another vault node failed"),
        503 => Some("vault is unavailable (sealed or in maintenance)"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body,
            url: "http://vault:8200/v1/x".parse().unwrap(),
        }
    }

    #[test]
    fn flattens_multi_error_lists() {
        let body = json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]});
        assert_eq!(vault_errors(&body), ["permission denied"]);
        let body = json!({"errors": ["2 errors occurred:\n\t* a\n\t* b\n\n", "c"]});
        assert_eq!(vault_errors(&body), ["a", "b", "c"]);
    }

    #[test]
    fn client_errors_are_permanent_and_name_the_subject() {
        let body = json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]});
        let err = from_reply(&reply(403, body), "secret/orders/db");
        assert!(err.is_permanent());
        assert_eq!(
            err.to_string(),
            "secret/orders/db: HTTP 403 Forbidden: permission denied"
        );
        for status in [400, 404, 405] {
            assert!(from_reply(&reply(status, json!({"errors": []})), "x").is_permanent());
        }
    }

    #[test]
    fn server_errors_sealed_and_rate_limits_are_transient() {
        for status in [429, 500, 502, 503] {
            assert!(from_reply(&reply(status, Value::Null), "x").is_transient());
        }
        let err = from_reply(&reply(503, json!({"errors": ["Vault is sealed"]})), "x");
        assert_eq!(
            err.to_string(),
            "x: HTTP 503 Service Unavailable: vault is sealed"
        );
        // A sealed Vault behind a proxy that rewrites the status is still transient.
        let err = from_reply(&reply(400, json!({"errors": ["Vault is sealed"]})), "x");
        assert!(err.is_transient());
    }

    #[test]
    fn a_redirect_to_another_host_is_named_and_transient() {
        let mut r = reply(307, Value::Null);
        r.headers
            .insert("location", "http://10.0.0.2:8200/v1/x".parse().unwrap());
        let err = from_reply(&r, "x");
        assert!(err.is_transient());
        assert!(
            err.to_string()
                .contains("redirected to http://10.0.0.2:8200/v1/x")
        );
        // A relative Location is resolved against the URL that answered.
        r.headers
            .insert("location", "../v2/y?token=t".parse().unwrap());
        let err = from_reply(&r, "x");
        assert!(
            err.to_string().contains(
                "HTTP 307 Temporary Redirect: vault redirected to http://vault:8200/v2/y;"
            ),
            "{err}"
        );
    }
}
