//! `HttpWait`: waits until an HTTP endpoint answers with an expected status (and, optionally,
//! body).

use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use init_core::{
    Context, ErrorClass, Policy, Publication, Step, StepError, ValidateContext, async_trait,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::http_client::{self, Family, Redirects, TlsOptions};

/// The default limit on the body read for the body checks.
const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The default bound on one request, shorter than [`Policy::wait`]'s 5 s attempt timeout so
/// that the error can name the URL.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// How much of an unexpected JSON value an error message shows.
const SHOWN_VALUE_MAX: usize = 80;

/// Waits until an HTTP(S) endpoint answers with an expected status and, optionally, body.
///
/// Each attempt sends one `GET` (or `HEAD`) request. The answer is ready when its status is in
/// the expected set (2xx by default; any status can be expected, 3xx and 404 included, since
/// redirects are not followed unless asked) and the body checks pass: a substring
/// ([`with_body_containing`](Self::with_body_containing)) and JSON values at
/// [JSON pointers](https://www.rfc-editor.org/rfc/rfc6901)
/// ([`with_json`](Self::with_json)). The body is read only for those checks, and at most
/// [`with_body_limit`](Self::with_body_limit) bytes of it.
///
/// TLS is verified against the system roots plus an optional [CA file](Self::with_ca_file);
/// a [client certificate](Self::with_client_cert) enables mTLS. [`insecure`](Self::insecure)
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
/// `secret`, `password` or `key` in them, and [`with_secret_header`](Self::with_secret_header)) are
/// registered with the context's redactor and never shown, nor is a password in the URL.
///
/// # Default
///
/// Method `GET`; expected status `2xx`; no redirects; no body checks; body limit 1 MiB;
/// request timeout 3 s; system roots; policy [`Policy::wait`]. Name: the method and the URL
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
///                 .with_ca_file("/etc/ssl/internal-ca.pem")
///                 .with_json("/status", "UP")
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
    body_limit: usize,
    request_timeout: Duration,
    /// Built on the first attempt (it reads the CA and client-certificate files, which an
    /// earlier step may write) and kept for the others.
    client: Mutex<Option<reqwest::Client>>,
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
            body_limit: DEFAULT_BODY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            client: Mutex::new(None),
        }
    }

    /// Waits for a `GET` of `url` (`http://` or `https://`) to answer as expected.
    ///
    /// The URL is checked by [`validate`](Step::validate), before the plan runs.
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
    /// assert!(HttpWait::get("http://app/").with_status("200,204,300-399").validate(&init_core::ValidateContext::process()).is_ok());
    /// let err = HttpWait::get("http://app/").with_status("2000").validate(&init_core::ValidateContext::process()).unwrap_err();
    /// assert!(err.to_string().contains("status \"2000\""));
    /// ```
    pub fn with_status(mut self, spec: &str) -> Self {
        self.status = StatusSet::parse(spec);
        self
    }

    /// Also requires the body to contain `text`.
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("http://app/ready").with_body_containing("ok");
    /// ```
    pub fn with_body_containing(mut self, text: impl Into<String>) -> Self {
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
    ///     .with_json("/status", "UP")
    ///     .with_json("/components/db/details/ready", true);
    /// ```
    pub fn with_json(
        mut self,
        pointer: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.json.push((pointer.into(), value.into()));
        self
    }

    /// Adds a request header. A value that looks like a credential (by the header's name:
    /// `Authorization`, `Proxy-Authorization`, `Cookie`, or a name containing `auth`, `token`,
    /// `secret`, `password` or `key`) is treated as with
    /// [`with_secret_header`](Self::with_secret_header).
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("http://app/").with_header("Accept", "application/json");
    /// ```
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
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
    /// let wait = HttpWait::get("http://app/").with_secret_header("X-Probe-Key", "s3cr3t");
    /// assert!(!format!("{wait:?}").contains("s3cr3t"));
    /// ```
    pub fn with_secret_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
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
    /// let wait = HttpWait::get("https://app:8443/").with_ca_file("/etc/ssl/internal-ca.pem");
    /// ```
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }

    /// Presents this client certificate (PEM, with its chain) and private key (PEM) for mTLS.
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("https://app:8443/")
    ///     .with_client_cert("/etc/tls/client.crt", "/etc/tls/client.key");
    /// ```
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.client_cert = Some(cert.into());
        self.tls.client_key = Some(key.into());
        self
    }

    /// Turns TLS certificate verification off. Anyone on the path can then read and change the
    /// traffic; a warning is logged. Prefer [`with_ca_file`](Self::with_ca_file).
    ///
    /// ```
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("https://self-signed.local/").insecure();
    /// ```
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
    /// let wait = HttpWait::get("http://app/").with_body_containing("ok").with_body_limit(4096);
    /// ```
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Bounds one request, answer and body included (3 s by default). Keep it below the
    /// policy's attempt timeout, or the attempt is cut before the error can name the URL.
    ///
    /// ```
    /// use std::time::Duration;
    /// use init_steps::http::HttpWait;
    ///
    /// let wait = HttpWait::get("http://app/").with_request_timeout(Duration::from_secs(1));
    /// ```
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    fn url(&self) -> Result<&Url, StepError> {
        self.url
            .as_ref()
            .map_err(|expected| StepError::invalid(format!("url {:?}: {expected}", self.input)))
    }

    fn status(&self) -> Result<&StatusSet, StepError> {
        self.status
            .as_ref()
            .map_err(|message| StepError::invalid(format!("{}: {message}", self.name)))
    }

    fn headers(&self) -> Result<HeaderMap, StepError> {
        let mut map = HeaderMap::new();
        for header in &self.headers {
            let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
                StepError::invalid(format!(
                    "{}: header name {:?}: expected a token (letters, digits, -)",
                    self.name, header.name
                ))
            })?;
            let mut value = HeaderValue::from_str(&header.value).map_err(|_| {
                StepError::invalid(format!(
                    "{}: header {:?}: expected a value of visible ASCII characters",
                    self.name, header.name
                ))
            })?;
            value.set_sensitive(header.secret);
            map.append(name, value);
        }
        Ok(map)
    }

    fn client(&self) -> Result<reqwest::Client, StepError> {
        let mut cached = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = &*cached {
            return Ok(client.clone());
        }
        let client =
            http_client::build_client(&self.tls, self.redirects, Family::Wait, &self.name)?;
        *cached = Some(client.clone());
        Ok(client)
    }

    fn register_secrets(&self, ctx: &Context, url: &Url) {
        for header in self.headers.iter().filter(|h| h.secret) {
            ctx.register_secret(&header.value);
            // `Bearer <token>`: the token alone is a secret too.
            if let Some((_, credential)) = header.value.split_once(' ') {
                ctx.register_secret(credential.trim());
            }
        }
        if let Some(password) = url.password() {
            ctx.register_secret(password);
        }
    }

    fn check_body(&self, what: &str, body: &[u8]) -> Result<(), StepError> {
        if let Some(text) = &self.body_contains
            && !body.windows(text.len()).any(|w| w == text.as_bytes())
        {
            return Err(StepError::transient(format!(
                "{what}: body does not contain {text:?}"
            )));
        }
        if self.json.is_empty() {
            return Ok(());
        }
        let document: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            StepError::transient(format!("{what}: body is not JSON")).with_source(e)
        })?;
        for (pointer, expected) in &self.json {
            match document.pointer(pointer) {
                Some(actual) if actual == expected => {}
                Some(actual) => {
                    return Err(StepError::transient(format!(
                        "{what}: {pointer:?} is {}, expected {}",
                        shown(actual),
                        shown(expected)
                    )));
                }
                None => {
                    return Err(StepError::transient(format!(
                        "{what}: no {pointer:?} in the JSON body, expected {}",
                        shown(expected)
                    )));
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Step for HttpWait {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.url()?;
        self.status()?;
        self.headers()?;
        self.tls.validate(&self.name)?;
        self.tls.check_files(&self.name)?;
        let has_body_checks = self.body_contains.is_some() || !self.json.is_empty();
        if self.method == Method::HEAD && has_body_checks {
            return Err(StepError::invalid(format!(
                "{}: a HEAD answer has no body: body checks need GET",
                self.name
            )));
        }
        if self.body_contains.as_deref() == Some("") {
            return Err(StepError::invalid(format!(
                "{}: body containing \"\": expected a non-empty string",
                self.name
            )));
        }
        if let Some((pointer, _)) = self
            .json
            .iter()
            .find(|(p, _)| !(p.is_empty() || p.starts_with('/')))
        {
            return Err(StepError::invalid(format!(
                "{}: JSON pointer {pointer:?}: expected \"\" or a path starting with /, as in /status",
                self.name
            )));
        }
        if self.body_limit == 0 {
            return Err(StepError::invalid(format!(
                "{}: body limit 0: expected at least 1 byte",
                self.name
            )));
        }
        if self.request_timeout.is_zero() {
            return Err(StepError::invalid(format!(
                "{}: request timeout 0s: expected a duration greater than zero",
                self.name
            )));
        }
        Ok(())
    }

    fn policy(&self) -> Policy {
        Policy::wait()
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let url = self.url()?;
        let expected = self.status()?;
        let headers = self.headers()?;
        self.register_secrets(ctx, url);
        let what = http_client::display_url(url);
        let client = self.client()?;
        let response = client
            .request(self.method.clone(), url.clone())
            .headers(headers)
            .timeout(self.request_timeout)
            .send()
            .await
            .map_err(|e| http_client::classify_error(e, Family::Wait, &what))?;
        let status = response.status();
        if !expected.contains(status) {
            return Err(unexpected_status(
                &what,
                status,
                expected,
                response.headers(),
            ));
        }
        if self.body_contains.is_none() && self.json.is_empty() {
            return Ok(());
        }
        let body = http_client::read_capped(response, self.body_limit, Family::Wait, &what).await?;
        self.check_body(&what, &body)
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
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// One request header; a secret value is never shown.
struct Header {
    name: String,
    value: String,
    secret: bool,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.secret {
            init_core::REDACTED
        } else {
            &self.value
        };
        write!(f, "{}: {value}", self.name)
    }
}

fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || ["token", "secret", "password", "key", "auth"]
        .iter()
        .any(|word| name.contains(word))
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

/// The error for a status outside the expected set: permanent for refused credentials,
/// transient otherwise (honouring `Retry-After`).
fn unexpected_status(
    what: &str,
    status: StatusCode,
    expected: &StatusSet,
    headers: &HeaderMap,
) -> StepError {
    let mut message = format!("{what}: status {status}, expected {expected}");
    if status.is_redirection() {
        message.push_str(
            " (redirects are not followed: expect this status, or follow same-origin redirects)",
        );
    }
    if http_client::wait_status_class(status) == ErrorClass::Permanent {
        return StepError::permanent(message);
    }
    let error = StepError::transient(message);
    match http_client::retry_after(headers) {
        Some(delay) => error.with_retry_after(delay),
        None => error,
    }
}

/// A JSON value for a message, cut to a readable length.
fn shown(value: &serde_json::Value) -> String {
    crate::text::shorten(&value.to_string(), SHOWN_VALUE_MAX).into_owned()
}

/// A set of HTTP statuses: inclusive ranges, and the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatusSet {
    ranges: Vec<(u16, u16)>,
    spec: String,
}

impl Default for StatusSet {
    fn default() -> Self {
        Self {
            ranges: vec![(200, 299)],
            spec: "2xx".to_owned(),
        }
    }
}

impl StatusSet {
    /// Parses `200,204,300-399,4xx`; the error names the part that is wrong.
    fn parse(spec: &str) -> Result<Self, String> {
        let expected = "expected status codes (100 to 599), ranges and classes separated by commas, as in 200,204,300-399 or 2xx";
        let code = |text: &str| {
            text.trim().parse::<u16>().ok().filter(|c| {
                (100..=599).contains(c) && text.trim().bytes().all(|b| b.is_ascii_digit())
            })
        };
        let mut ranges = Vec::new();
        for part in spec.split(',') {
            let part = part.trim();
            let range =
                if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                    match class.parse::<u16>() {
                        Ok(c @ 1..=5) if class.len() == 1 => Some((c * 100, c * 100 + 99)),
                        _ => None,
                    }
                } else if let Some((low, high)) = part.split_once('-') {
                    code(low).zip(code(high)).filter(|(l, h)| l <= h)
                } else {
                    code(part).map(|c| (c, c))
                };
            match range {
                Some(range) => ranges.push(range),
                None => return Err(format!("status {part:?}: {expected}")),
            }
        }
        Ok(Self {
            ranges,
            spec: spec.split(',').map(str::trim).collect::<Vec<_>>().join(","),
        })
    }

    fn contains(&self, status: StatusCode) -> bool {
        let code = status.as_u16();
        self.ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&code))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn status_sets_take_codes_ranges_and_classes() {
        let set = StatusSet::parse("200, 204,300-399,4xx").unwrap();
        for code in [200, 204, 300, 302, 399, 400, 404, 499] {
            assert!(set.contains(status(code)), "{code}");
        }
        for code in [201, 299, 500, 100] {
            assert!(!set.contains(status(code)), "{code}");
        }
        assert_eq!(set.to_string(), "200,204,300-399,4xx");
        assert!(StatusSet::default().contains(status(204)));
        assert!(!StatusSet::default().contains(status(301)));
    }

    #[test]
    fn bad_status_sets_name_the_part_that_is_wrong() {
        for (spec, part) in [
            ("", "\"\""),
            ("200,", "\"\""),
            ("abc", "\"abc\""),
            ("2000", "\"2000\""),
            ("99", "\"99\""),
            ("600", "\"600\""),
            ("399-300", "\"399-300\""),
            ("6xx", "\"6xx\""),
            ("20x", "\"20x\""),
            ("+200", "\"+200\""),
        ] {
            let err = StatusSet::parse(spec).unwrap_err();
            assert!(
                err.starts_with(&format!("status {part}: expected")),
                "{spec}: {err}"
            );
        }
    }

    #[test]
    fn credential_headers_are_recognised_by_name() {
        for name in [
            "Authorization",
            "cookie",
            "X-Vault-Token",
            "X-API-Key",
            "X-Client-Secret",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in ["Accept", "User-Agent", "Host"] {
            assert!(!is_credential_header(name), "{name}");
        }
    }

    #[test]
    fn refused_credentials_are_permanent_other_statuses_transient() {
        let expected = StatusSet::default();
        let mut headers = HeaderMap::new();
        for code in [401, 403, 407] {
            assert!(unexpected_status("u", status(code), &expected, &headers).is_permanent());
        }
        for code in [301, 400, 404, 429, 500, 503] {
            assert!(unexpected_status("u", status(code), &expected, &headers).is_transient());
        }
        headers.insert("retry-after", HeaderValue::from_static("7"));
        let busy = unexpected_status("http://app/", status(503), &expected, &headers);
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            busy.to_string(),
            "http://app/: status 503 Service Unavailable, expected 2xx"
        );
    }

    #[test]
    fn long_json_values_are_cut_in_messages() {
        let long = serde_json::Value::String("é".repeat(100));
        let text = shown(&long);
        assert!(text.ends_with('…'));
        assert!(text.len() <= SHOWN_VALUE_MAX + '…'.len_utf8());
    }
}
