//! A small client for OpenBao's HTTP API, for setting up what a test needs (mounts, roles,
//! policies, secrets). HTTP/1.0 on the server's plain loopback listener, so no TLS stack and no
//! chunked bodies: the server closes the connection after each answer.
//! (The API: <https://openbao.org/api-docs/>.)

use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// An error answer from OpenBao's API (or no answer at all, status 0).
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status; 0 when the request could not be sent or the answer not read.
    pub status: u16,
    /// The answer's body, or what went wrong on the connection.
    pub body: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status {}: {}", self.status, self.body)
    }
}

impl std::error::Error for ApiError {}

/// Requests to one OpenBao server with one token, optionally in a namespace. Made by
/// [`OpenBao::api`](crate::OpenBao::api).
///
/// # Examples
///
/// ```no_run
/// use serde_json::json;
///
/// let Some(bao) = test_servers::openbao() else { return };
/// let api = bao.api();
/// api.write("sys/mounts/kv1", json!({"type": "kv"}));
/// api.write("kv1/app", json!({"user": "app"}));
/// assert_eq!(api.read("kv1/app")["data"]["user"], "app");
/// ```
#[derive(Debug, Clone)]
pub struct Api {
    port: u16,
    token: Option<String>,
    namespace: Option<String>,
    wrap_ttl: Option<String>,
}

impl Api {
    pub(crate) fn new(port: u16, token: &str) -> Self {
        Self {
            port,
            token: Some(token.to_owned()),
            namespace: None,
            wrap_ttl: None,
        }
    }

    /// The same server with another token (`None`: no `X-Vault-Token` header at all, as for a
    /// login).
    #[must_use]
    pub fn token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(str::to_owned);
        self
    }

    /// The same server and token, in namespace `namespace` (`X-Vault-Namespace`).
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// The same requests with their answers response-wrapped for `ttl` (`X-Vault-Wrap-TTL`,
    /// such as `60s`): the answer's `wrap_info.token` unwraps, once, to the real answer
    /// (<https://openbao.org/docs/concepts/response-wrapping/>).
    #[must_use]
    pub fn wrap_ttl(mut self, ttl: &str) -> Self {
        self.wrap_ttl = Some(ttl.to_owned());
        self
    }

    /// `POST /v1/<path>` with `body`; the answer's JSON (`null` for 204).
    ///
    /// # Panics
    ///
    /// On an error answer, with its status and body.
    pub fn write(&self, path: &str, body: Value) -> Value {
        self.request("POST", path, Some(&body))
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// `GET /v1/<path>`; the answer's JSON.
    ///
    /// # Panics
    ///
    /// On an error answer, with its status and body.
    pub fn read(&self, path: &str) -> Value {
        self.request("GET", path, None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `DELETE /v1/<path>`.
    ///
    /// # Panics
    ///
    /// On an error answer, with its status and body.
    pub fn delete(&self, path: &str) -> Value {
        self.request("DELETE", path, None)
            .unwrap_or_else(|e| panic!("DELETE {path}: {e}"))
    }

    /// `<method> /v1/<path>` with an optional JSON body; the answer's JSON (`null` when empty).
    ///
    /// # Errors
    ///
    /// [`ApiError`] for any status but 2xx, or when the server cannot be reached.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let (status, text) = self.send(method, path, body).map_err(|e| ApiError {
            status: 0,
            body: e.to_string(),
        })?;
        if !(200..300).contains(&status) {
            return Err(ApiError { status, body: text });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ApiError {
            status,
            body: format!("not JSON ({e}): {text}"),
        })
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, String)> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut request = format!(
            "{method} /v1/{} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n",
            path.trim_start_matches('/'),
            self.port,
            body.len()
        );
        if let Some(token) = &self.token {
            request.push_str(&format!("X-Vault-Token: {token}\r\n"));
        }
        if let Some(namespace) = &self.namespace {
            request.push_str(&format!("X-Vault-Namespace: {namespace}\r\n"));
        }
        if let Some(ttl) = &self.wrap_ttl {
            request.push_str(&format!("X-Vault-Wrap-TTL: {ttl}\r\n"));
        }
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str("\r\n");
        request.push_str(&body);

        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.write_all(request.as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((status, body.to_owned()))
    }
}
