//! [`Api`]: one connection to Vault and one request over it, read whole into a [`Reply`].
//!
//! Every request carries `X-Vault-Request: true` (as the Vault CLI sends, so that Vault can tell
//! API clients from browsers) and `X-Vault-Namespace` when a namespace is set; see
//! <https://developer.hashicorp.com/vault/api-docs#namespaces>.

use std::fmt;
use std::sync::Arc;

use init_core::StepError;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::config::Endpoint;
use super::path::ApiPath;
use super::secret::Secret;
use crate::support::http_client::{self, Family, Redirects};

/// The largest response body read from Vault.
const BODY_CAP: u64 = 4 * 1024 * 1024;

/// A connection to one Vault: the HTTP client (built once, from the TLS settings) and the
/// endpoint.
#[derive(Clone)]
pub(crate) struct Api {
    client: reqwest::Client,
    endpoint: Arc<Endpoint>,
    family: Family,
}

/// A response from Vault: the status, the headers and the body as JSON (`Null` when empty or
/// not JSON), and the URL that answered.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    /// The URL that answered (a relative `Location` is resolved against it).
    pub(crate) url: Url,
}

impl Reply {
    /// Vault's `warnings`.
    pub(crate) fn warnings(&self) -> Vec<&str> {
        string_list(&self.body["warnings"])
    }

    /// Logs Vault's `warnings` (a deprecated endpoint, a TTL capped by the role's maximum).
    pub(crate) fn log_warnings(&self, subject: &str) {
        for warning in self.warnings() {
            tracing::warn!(subject, warning, "vault warning");
        }
    }
}

/// The strings of a JSON array (none when it is not an array).
pub(crate) fn string_list(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

impl Api {
    /// Builds the client; reads the CA and client certificate files. `family` says which
    /// failures a retry can fix ([`VaultReady`](crate::vault::VaultReady) is a wait, the other
    /// steps one-shot).
    pub(crate) fn connect(endpoint: Endpoint, family: Family) -> Result<Self, StepError> {
        // Same-origin redirects only: a token must never travel to another host.
        let client =
            http_client::build_client(&endpoint.tls, Redirects::SameOrigin, family, "vault")?;
        Ok(Self {
            client,
            endpoint: Arc::new(endpoint),
            family,
        })
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The address for messages (no credentials, no query).
    pub(crate) fn address(&self) -> String {
        http_client::display_url(&self.endpoint.address)
    }

    fn url(&self, path: &ApiPath) -> Url {
        path.below(&self.endpoint.address)
    }

    /// Sends one request and reads the whole reply, whatever its status (see
    /// [`Reply::success`]). `subject` names what is asked for in errors (`secret/orders/db`).
    /// The namespace header is left out when `namespaced` is false (`sys/health` lives in the
    /// root namespace).
    ///
    /// # Errors
    ///
    /// A transport failure, classified by [`http_client::classify_error`].
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &ApiPath,
        token: Option<&Secret>,
        body: Option<&Value>,
        namespaced: bool,
        subject: &str,
    ) -> Result<Reply, StepError> {
        let what = format!("{subject}: vault at {}", self.address());
        let mut headers = HeaderMap::new();
        headers.insert("x-vault-request", HeaderValue::from_static("true"));
        if namespaced && let Some(namespace) = &self.endpoint.namespace {
            let value = HeaderValue::from_str(namespace).map_err(|e| {
                StepError::invalid(format!(
                    "vault namespace \"{namespace}\": expected printable text"
                ))
                .with_source(e)
            })?;
            headers.insert("x-vault-namespace", value);
        }
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token.expose()).map_err(|_| {
                StepError::permanent(
                    "vault token: expected printable text (is the token file binary?)",
                )
            })?;
            // Keeps the token out of any header dump (hyper and h2 honour the flag).
            value.set_sensitive(true);
            headers.insert("x-vault-token", value);
        }
        let mut request = self
            .client
            .request(method.clone(), self.url(path))
            .headers(headers);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| http_client::classify_error(e, self.family, &what))?;
        let status = response.status();
        let headers = response.headers().clone();
        let url = response.url().clone();
        tracing::debug!(method = %method, path = %path, status = status.as_u16(), "vault request");
        let bytes = http_client::read_capped(response, BODY_CAP, self.family, &what).await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Reply {
            status,
            headers,
            body,
            url,
        })
    }
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("address", &self.address())
            .field("namespace", &self.endpoint.namespace)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::Vault;
    use init_core::Context;

    #[test]
    fn api_paths_keep_the_address_prefix_and_encode_segments() {
        let endpoint = Vault::from_env()
            .address("http://127.0.0.1:8200/proxy/")
            .endpoint(&Context::with_env([("X", "1")]))
            .unwrap();
        let api = Api::connect(endpoint, Family::OneShot).unwrap();
        let path = ApiPath::new(["secret", "data", "orders/db name/"]).with_query("version", 3);
        assert_eq!(
            api.url(&path).as_str(),
            "http://127.0.0.1:8200/proxy/v1/secret/data/orders/db%20name?version=3"
        );
        assert_eq!(path.to_string(), "secret/data/orders/db name?version=3");
    }
}
