//! `HttpWait`: waits until an HTTP endpoint answers with an expected status (and, optionally,
//! body). This file holds the builder; `expect` the expected answer (statuses, body checks),
//! `header` the request headers and their secrets, `check` the step itself (validation and
//! one attempt).

mod check;
mod expect;
mod header;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use init_core::StepError;
use reqwest::Method;
use url::Url;

use self::expect::StatusSet;
use self::header::{Header, is_credential_header};
use crate::support::http_client::{self, Family, Lazy, Redirects, TlsOptions};

/// The default limit on the body read for the body checks.
const DEFAULT_MAX_SIZE: u64 = 1024 * 1024;

/// The default bound on one request, shorter than [`Policy::wait`](init_core::Policy::wait)'s 5 s attempt timeout so
/// that the error can name the URL.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Waits until an HTTP(S) endpoint answers with an expected status and, optionally, body.
///
/// Each attempt sends one `GET` (or `HEAD`) request. The answer is ready when its status is in
/// the expected set (2xx by default; any status can be expected, 3xx and 404 included, since
/// redirects are not followed unless asked) and the body checks pass: a substring
/// ([`body_containing`](Self::body_containing)) and JSON values at
/// [JSON pointers](https://www.rfc-editor.org/rfc/rfc6901)
/// ([`json`](Self::json)). The body is read only for those checks, and at most
/// [`max_size`](Self::max_size) bytes of it.
///
/// TLS is verified against the system roots plus an optional [CA file](Self::ca_file);
/// a [client certificate](Self::client_cert) enables mTLS. [`insecure`](Self::insecure)
/// turns verification off, only when asked, with a warning.
///
/// # Errors and cadence
///
/// - A refused or reset connection is transient and polled again at the wait cadence
///   ([`StepError::with_wait_cadence`](init_core::StepError::with_wait_cadence)); a name that does not
///   resolve, a request that times out, and other connection errors are transient on the
///   policy's backoff.
/// - A status that is not expected is transient, 400 and 404 included (an application that is
///   still booting answers 404 or 503 for a while; `Retry-After` is honoured), except 401, 403
///   and 407: a wait cannot fix refused credentials, so those are permanent. One-shot steps
///   (`Download`, Vault) differ here: for them 400 and 404 are permanent.
/// - A body that fails a check (too short, not JSON yet, the wrong value) is transient; a body
///   over the limit is permanent.
/// - With [`follow_redirects`](Self::follow_redirects), more than 10 redirects, or one from
///   https to http, is permanent.
/// - TLS: a certificate signed by an unknown issuer or for another host name is transient (an
///   ingress serves its placeholder certificate while it starts, until the real one is
///   issued), and so is one not valid *yet* (retried once it is); an expired or revoked
///   certificate, or a refused client certificate, is permanent. The message says what did not
///   verify. A CA or client-certificate file that does not exist yet is waited for; one that
///   exists at validation must hold PEM.
///
/// Header values that are credentials (`Authorization`, `Cookie`, names with `auth`, `token`,
/// `secret`, `password` or `key` in them, and [`secret_header`](Self::secret_header)) are
/// registered with the context's redactor and never shown, nor is a password in the URL.
///
/// # Default
///
/// Method `GET`; expected status `2xx`; no redirects; no body checks; [`max_size`](Self::max_size) 1 MiB;
/// request timeout 3 s; system roots; policy [`Policy::wait`](init_core::Policy::wait). Name: the method and the URL
/// without password and query, e.g. `GET http://app:8080/healthz`.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use init_core::prelude::*;
/// use init_steps::http::HttpWait;
///
/// fn main() -> std::process::ExitCode {
///     Plan::new("orders-init")
///         .step(
///             HttpWait::get("https://auth.internal:8443/health")
///                 .ca_file("/etc/ssl/internal-ca.pem")
///                 .json("/status", "UP")
///                 .timeout(Duration::from_secs(120)),
///         )
///         .run_main()
/// }
/// ```
pub struct HttpWait {
    method: Method,
    input: String,
    url: Result<Url, String>,
    name: String,
    status: Result<StatusSet, String>,
    body_contains: Option<String>,
    json: Vec<(String, serde_json::Value)>,
    headers: Vec<Header>,
    tls: TlsOptions,
    redirects: Redirects,
    max_size: u64,
    request_timeout: Duration,
    /// Built on the first attempt (it reads the CA and client-certificate files, which an
    /// earlier step may write) and kept for the others.
    client: Lazy<reqwest::Client>,
}

impl HttpWait {
    fn new(method: Method, url: impl Into<String>) -> Self {
        let input = url.into();
        let url = parse_url(&input);
        let shown = match &url {
            Ok(url) => http_client::display_url(url),
            Err(_) => input.clone(),
        };
        Self {
            name: format!("{method} {shown}"),
            method,
            input,
            url,
            status: Ok(StatusSet::default()),
            body_contains: None,
            json: Vec::new(),
            headers: Vec::new(),
            tls: TlsOptions::default(),
            redirects: Redirects::None,
            max_size: DEFAULT_MAX_SIZE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            client: Lazy::new(),
        }
    }

    /// Waits for a `GET` of `url` (`http://` or `https://`) to answer as expected.
    ///
    /// The URL is checked by [`validate`](init_core::Step::validate), before the plan runs.
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("http://app:8080/healthz?verbose=1");
    /// assert_eq!(wait.name(), "GET http://app:8080/healthz");
    /// assert!(wait.validate(&init_core::ValidateContext::process()).is_ok());
    /// assert!(HttpWait::get("ftp://app/").validate(&init_core::ValidateContext::process()).unwrap_err().is_invalid());
    /// ```
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::GET, url)
    }

    /// Waits for a `HEAD` of `url` to answer as expected (no body, so no body checks).
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::http::HttpWait;
    ///
    /// assert_eq!(HttpWait::head("http://app/").name(), "HEAD http://app/");
    /// ```
    pub fn head(url: impl Into<String>) -> Self {
        Self::new(Method::HEAD, url)
    }

    /// The statuses that mean ready: codes, ranges and classes separated by commas, such as
    /// `200,204,300-399` or `2xx,404`. 2xx by default.
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::http::HttpWait;
    ///
    /// assert!(HttpWait::get("http://app/").status("200,204,300-399").validate(&init_core::ValidateContext::process()).is_ok());
    /// let err = HttpWait::get("http://app/").status("2000").validate(&init_core::ValidateContext::process()).unwrap_err();
    /// assert!(err.to_string().contains("status \"2000\""));
    /// ```
    #[must_use]
    pub fn status(mut self, spec: &str) -> Self {
        self.status = StatusSet::parse(spec);
        self
    }

    /// Also requires the body to contain `text`.
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("http://app/ready").body_containing("ok");
    /// ```
    #[must_use]
    pub fn body_containing(mut self, text: impl Into<String>) -> Self {
        self.body_contains = Some(text.into());
        self
    }

    /// Also requires the body to be JSON with `value` at `pointer` (RFC 6901: `/status`,
    /// `/components/db/status`, `""` for the whole document). May be given several times.
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("http://app/actuator/health")
    ///     .json("/status", "UP")
    ///     .json("/components/db/details/ready", true);
    /// ```
    #[must_use]
    pub fn json(mut self, pointer: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.json.push((pointer.into(), value.into()));
        self
    }

    /// Adds a request header. A value that looks like a credential (by the header's name:
    /// `Authorization`, `Proxy-Authorization`, `Cookie`, or a name containing `auth`, `token`,
    /// `secret`, `password` or `key`) is treated as with
    /// [`secret_header`](Self::secret_header).
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("http://app/").header("Accept", "application/json");
    /// ```
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        let secret = is_credential_header(&name);
        self.headers.push(Header {
            name,
            value: value.into(),
            secret,
        });
        self
    }

    /// Adds a request header whose value is a secret: registered with the context's redactor,
    /// marked sensitive for the HTTP stack, and never shown (not even by `Debug`).
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("http://app/").secret_header("X-Probe-Key", "s3cr3t");
    /// assert!(!format!("{wait:?}").contains("s3cr3t"));
    /// ```
    #[must_use]
    pub fn secret_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
            secret: true,
        });
        self
    }

    /// Trusts the CA certificates in this PEM file, in addition to the system roots. The file
    /// is read on the first attempt, so an earlier step may write it.
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("https://app:8443/").ca_file("/etc/ssl/internal-ca.pem");
    /// ```
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }

    /// Presents this client certificate (PEM, with its chain) and private key (PEM) for mTLS.
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("https://app:8443/")
    ///     .client_cert("/etc/tls/client.crt", "/etc/tls/client.key");
    /// ```
    #[must_use]
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.client_cert = Some(cert.into());
        self.tls.client_key = Some(key.into());
        self
    }

    /// Turns TLS certificate verification off. Anyone on the path can then read and change the
    /// traffic; a warning is logged. Prefer [`ca_file`](Self::ca_file).
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("https://self-signed.local/").insecure();
    /// ```
    #[must_use]
    pub fn insecure(mut self) -> Self {
        self.tls.insecure = true;
        self
    }

    /// Follows redirects to the same scheme, host and port (up to 10), so that headers with
    /// credentials never reach another host. A redirect elsewhere is returned as it is, and
    /// its 3xx status is checked against the expected set. More than 10 redirects, or one from
    /// https to plain http (even on the same host), is a permanent error.
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("http://app/").follow_redirects();
    /// ```
    #[must_use]
    pub fn follow_redirects(mut self) -> Self {
        self.redirects = Redirects::SameOrigin;
        self
    }

    /// Reads at most `bytes` of the body for the body checks (1 MiB by default); a longer
    /// body is a permanent error.
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("http://app/").body_containing("ok").max_size(4096);
    /// ```
    #[must_use]
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// Bounds one request, answer and body included (3 s by default). Keep it below the
    /// policy's attempt timeout, or the attempt is cut before the error can name the URL.
    ///
    /// ```
    /// use std::time::Duration;
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("http://app/").request_timeout(Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    fn url(&self) -> Result<&Url, StepError> {
        self.url
            .as_ref()
            .map_err(|expected| StepError::invalid(format!("url {:?}: {expected}", self.input)))
    }

    fn expected_status(&self) -> Result<&StatusSet, StepError> {
        self.status
            .as_ref()
            .map_err(|message| StepError::invalid(format!("{}: {message}", self.name)))
    }

    fn client(&self) -> Result<reqwest::Client, StepError> {
        self.client.get_or_build(|| {
            http_client::build_client(&self.tls, self.redirects, Family::Wait, &self.name)
        })
    }
}

impl fmt::Debug for HttpWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpWait")
            .field("name", &self.name)
            .field("status", &self.status)
            .field("body_contains", &self.body_contains)
            .field("json", &self.json)
            .field("headers", &self.headers)
            .field("tls", &self.tls)
            .field("redirects", &self.redirects)
            .field("max_size", &self.max_size)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

fn parse_url(input: &str) -> Result<Url, String> {
    let url =
        Url::parse(input).map_err(|e| format!("expected an http:// or https:// URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {:?}: expected an http:// or https:// URL",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("expected an http:// or https:// URL with a host".to_owned());
    }
    Ok(url)
}
