//! The Vault client: its configuration from the Vault CLI's environment variables, the session a
//! login step leaves in the context, and one HTTP request to Vault's API.
//!
//! Every request carries `X-Vault-Request: true` (as the Vault CLI sends, so that Vault can tell
//! API clients from browsers) and `X-Vault-Namespace` when a namespace is set; see
//! <https://developer.hashicorp.com/vault/api-docs#namespaces> and
//! <https://developer.hashicorp.com/vault/docs/commands#environment-variables>.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use init_core::{Context, StepError, ValidateContext};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::support::http_client::{self, Family, Pem, Redirects, TlsOptions};

/// The largest response body read from Vault.
const BODY_CAP: u64 = 4 * 1024 * 1024;

/// A secret string (token, secret ID, JWT) whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(init_core::REDACTED)
    }
}

/// Where Vault is and how to reach it: the settings the Vault CLI reads from its environment,
/// each of which a builder method can set instead.
///
/// Values not set with a builder method are read through the step's [`Context`] (so tests can
/// inject an environment), and checked by [`Plan::validate`](init_core::Plan::validate) before
/// any step runs (exit 2), each error naming the variable and what was expected:
///
/// | variable | builder | meaning |
/// |---|---|---|
/// | `VAULT_ADDR` | [`address`](Self::address) | the address, such as `https://vault.vault:8200` (required) |
/// | `VAULT_TOKEN` | [`token`](Self::token) | the token of [`token_login`](Self::token_login), and of Vault steps that run with no login step before them |
/// | `VAULT_NAMESPACE` | [`namespace`](Self::namespace) | the Vault Enterprise namespace, sent as `X-Vault-Namespace` |
/// | `VAULT_CACERT` | [`ca_file`](Self::ca_file) | a PEM file of CA certificates trusted besides the system roots |
/// | `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY` | [`client_cert`](Self::client_cert) | a client certificate and key for mutual TLS |
/// | `VAULT_SKIP_VERIFY` | [`insecure`](Self::insecure) | `true` turns TLS verification off (a warning is logged) |
///
/// A `Vault` makes the login steps ([`kubernetes_login`](Self::kubernetes_login),
/// [`approle_login`](Self::approle_login), [`jwt_login`](Self::jwt_login),
/// [`token_login`](Self::token_login), [`token_file_login`](Self::token_file_login)) and
/// [`ready`](Self::ready). A login step stores a [`VaultSession`] in the context; the Vault
/// steps after it ([`KvRead`](super::KvRead), [`PkiIssue`](super::PkiIssue),
/// [`VaultRevoke`](super::VaultRevoke)) use it. With no login step before them, they use
/// `Vault::from_env()` and `VAULT_TOKEN`.
///
/// At validation: a malformed `VAULT_ADDR` (`vault:8200`, `ftp://...`), a `VAULT_SKIP_VERIFY`
/// that is not a boolean, `VAULT_CLIENT_CERT` without `VAULT_CLIENT_KEY` (or the reverse), and a
/// file named by `VAULT_CACERT`, `VAULT_CLIENT_CERT` or `VAULT_CLIENT_KEY` that does not exist
/// or is not PEM are refused wherever a Vault step reads them. An unset `VAULT_ADDR` is refused
/// by the login steps and [`VaultReady`](super::VaultReady), and an unset `VAULT_TOKEN` by
/// [`token_login`](Self::token_login); the steps that use a login step's session
/// ([`KvRead`](super::KvRead), ...) cannot tell at validation whether one comes before them, so
/// they require neither. Files named by builder methods ([`ca_file`](Self::ca_file),
/// [`client_cert`](Self::client_cert)) are checked if they exist: an earlier step may
/// write them; one still missing when the step runs is a permanent error naming it.
///
/// Redirects are followed only to the same scheme, host and port: a standby node's redirect to
/// the active node is reported (and retried), never followed with the token; more than 10
/// redirects, or one from https to http, is permanent.
///
/// # Examples
///
/// ```
/// use init_steps::vault::{KvRead, Vault};
/// use init_core::Plan;
///
/// let plan = Plan::new("orders-init")
///     .step(Vault::from_env().kubernetes_login("orders"))
///     .step(KvRead::v2("secret", "orders/db").publish_secret("db"));
/// assert_eq!(plan.step_names(), ["vault-login", "vault-kv:secret/orders/db"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vault {
    address: Option<String>,
    token: Option<Secret>,
    namespace: Option<String>,
    ca_file: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    insecure: bool,
}

impl Vault {
    /// A configuration read from the `VAULT_*` environment variables at run time.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env();
    /// assert_eq!(vault, init_steps::vault::Vault::default());
    /// ```
    pub fn from_env() -> Self {
        Self::default()
    }

    /// Sets the address instead of `VAULT_ADDR`.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env().address("https://vault.vault:8200");
    /// # let _ = vault;
    /// ```
    #[must_use]
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Sets the token instead of `VAULT_TOKEN` (for [`token_login`](Self::token_login)).
    /// Prefer a file or the environment: a token in the source code is a leaked token.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env().token("hvs.example");
    /// assert!(!format!("{vault:?}").contains("hvs.example"));
    /// ```
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token));
        self
    }

    /// Sets the Vault Enterprise namespace instead of `VAULT_NAMESPACE`.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env().namespace("team-a");
    /// # let _ = vault;
    /// ```
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Trusts the CA certificates of a PEM file (besides the system roots) instead of
    /// `VAULT_CACERT`.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env().ca_file("/vault/tls/ca.crt");
    /// # let _ = vault;
    /// ```
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Presents a client certificate and its private key (PEM files) instead of
    /// `VAULT_CLIENT_CERT` and `VAULT_CLIENT_KEY`.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env()
    ///     .client_cert("/vault/tls/client.crt", "/vault/tls/client.key");
    /// # let _ = vault;
    /// ```
    #[must_use]
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Turns TLS certificate verification off, whatever `VAULT_SKIP_VERIFY` says (without
    /// this, `VAULT_SKIP_VERIFY=true` turns it off). Off is for experiments only: anyone on
    /// the path can read the token; a warning is logged each time a client is built. Prefer
    /// [`ca_file`](Self::ca_file).
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env().insecure();
    /// # let _ = vault;
    /// ```
    #[must_use]
    pub fn insecure(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// Checks the configuration against the plan's environment, for a step that reads it
    /// itself (a login step, [`VaultReady`](super::VaultReady)): everything
    /// [`validate_set`](Self::validate_set) checks, and an address must be given.
    pub(crate) fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        let settings = self.validate_set(cx)?;
        if settings.address.is_none() {
            return Err(no_address());
        }
        Ok(())
    }

    /// Checks the builder values and every `VAULT_*` variable that is set, as the step will
    /// read them: the address and `VAULT_SKIP_VERIFY` parse, a client certificate comes with
    /// its key, files named by variables exist and hold PEM (the pod mounts them before the
    /// first step runs), and files named by builder methods hold PEM if they exist already (an
    /// earlier step may write them). An unset `VAULT_ADDR` passes: the steps that use a login
    /// step's session when there is one cannot know, at validation, whether one comes first.
    pub(crate) fn validate_set(&self, cx: &ValidateContext<'_>) -> Result<Settings, StepError> {
        if self
            .namespace
            .as_deref()
            .is_some_and(|n| n.trim().is_empty())
        {
            return Err(StepError::invalid(
                "vault namespace \"\": expected a namespace path such as team-a",
            ));
        }
        let settings = self.settings(&|key| cx.env(key))?;
        let tls = &settings.tls;
        let files = [
            (
                &tls.ca_file,
                Pem::Certificates,
                "VAULT_CACERT",
                "CA file",
                "a PEM file of CA certificates",
            ),
            (
                &tls.client_cert,
                Pem::Certificates,
                "VAULT_CLIENT_CERT",
                "client certificate",
                "a PEM client certificate",
            ),
            (
                &tls.client_key,
                Pem::PrivateKey,
                "VAULT_CLIENT_KEY",
                "client key",
                "a PEM private key",
            ),
        ];
        for (path, pem, variable, kind, expected) in files {
            let Some(path) = path else { continue };
            if settings.from_env.contains(&variable) {
                let name = format!("{variable} {}", path.display());
                if !http_client::check_pem_file(path, pem, &name)? {
                    return Err(StepError::invalid(format!(
                        "{name}: no such file: expected {expected} (a file that an earlier step \
                         writes is named in code, with Vault::ca_file or \
                         Vault::client_cert)"
                    )));
                }
            } else {
                http_client::check_pem_file(
                    path,
                    pem,
                    &format!("vault: {kind} {}", path.display()),
                )?;
            }
        }
        Ok(settings)
    }

    /// Checks that a token is given: [`token`](Self::token), else `VAULT_TOKEN`.
    pub(crate) fn validate_token(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        let given =
            self.token.is_some() || cx.env("VAULT_TOKEN").is_some_and(|t| !t.trim().is_empty());
        if given { Ok(()) } else { Err(no_token()) }
    }

    /// The builder values, then the variables `env` gives (blank ones count as unset).
    fn settings(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, StepError> {
        let env = |key: &str| env(key).filter(|v| !v.trim().is_empty());
        let mut from_env = Vec::new();
        let address = match &self.address {
            Some(address) => Some(parse_address(address, "vault address")?),
            None => env("VAULT_ADDR")
                .map(|address| parse_address(&address, "VAULT_ADDR"))
                .transpose()?,
        };
        let namespace = self
            .namespace
            .clone()
            .or_else(|| env("VAULT_NAMESPACE"))
            .map(|n| n.trim().trim_matches('/').to_owned());
        let (client_cert, client_key) = match &self.client_cert {
            Some((cert, key)) => (Some(cert.clone()), Some(key.clone())),
            None => match (env("VAULT_CLIENT_CERT"), env("VAULT_CLIENT_KEY")) {
                (Some(_), None) => {
                    return Err(StepError::invalid(
                        "VAULT_CLIENT_CERT is set but VAULT_CLIENT_KEY is not: expected both, \
                         a PEM client certificate and its private key, or neither",
                    ));
                }
                (None, Some(_)) => {
                    return Err(StepError::invalid(
                        "VAULT_CLIENT_KEY is set but VAULT_CLIENT_CERT is not: expected both, \
                         a PEM client certificate and its private key, or neither",
                    ));
                }
                (cert, key) => {
                    if cert.is_some() {
                        from_env.extend(["VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY"]);
                    }
                    (cert.map(PathBuf::from), key.map(PathBuf::from))
                }
            },
        };
        // The builder's `insecure()` wins: the variable is then not read.
        let insecure = self.insecure
            || match env("VAULT_SKIP_VERIFY") {
                Some(value) => parse_bool(&value).ok_or_else(|| {
                    StepError::invalid(format!(
                        "VAULT_SKIP_VERIFY = \"{value}\": expected true or false (or 1 or 0)"
                    ))
                })?,
                None => false,
            };
        let ca_file = match &self.ca_file {
            Some(path) => Some(path.clone()),
            None => env("VAULT_CACERT").map(|path| {
                from_env.push("VAULT_CACERT");
                PathBuf::from(path)
            }),
        };
        let tls = TlsOptions {
            ca_file,
            client_cert,
            client_key,
            insecure,
        };
        tls.validate("vault")?;
        Ok(Settings {
            address,
            namespace,
            tls,
            from_env,
        })
    }

    /// The address, namespace and TLS settings, builder values first, then the environment.
    pub(crate) fn endpoint(&self, ctx: &Context) -> Result<Endpoint, StepError> {
        let settings = self.settings(&|key| ctx.env(key))?;
        Ok(Endpoint {
            address: settings.address.ok_or_else(no_address)?,
            namespace: settings.namespace,
            tls: settings.tls,
        })
    }

    /// The token set with [`token`](Self::token), else `VAULT_TOKEN`.
    pub(crate) fn resolved_token(&self, ctx: &Context) -> Option<Secret> {
        self.token.clone().or_else(|| {
            ctx.env("VAULT_TOKEN")
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .map(Secret::new)
        })
    }
}

/// The settings of a [`Vault`] resolved against an environment.
#[derive(Debug)]
pub(crate) struct Settings {
    /// `None` when neither the builder nor `VAULT_ADDR` gives one.
    address: Option<Url>,
    namespace: Option<String>,
    tls: TlsOptions,
    /// The variables the TLS files were named by.
    from_env: Vec<&'static str>,
}

fn no_address() -> StepError {
    StepError::invalid(
        "VAULT_ADDR is not set: expected the vault address, such as https://vault.vault:8200 \
         (or Vault::address)",
    )
}

pub(crate) fn no_token() -> StepError {
    StepError::invalid(
        "VAULT_TOKEN is not set: expected a vault token (or Vault::token, or \
         Vault::token_file_login)",
    )
}

/// Go's `strconv.ParseBool`, which the Vault CLI uses for `VAULT_SKIP_VERIFY`.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn parse_address(address: &str, what: &str) -> Result<Url, StepError> {
    let expected = "expected an http or https URL such as https://vault.vault:8200";
    let url = Url::parse(address.trim()).map_err(|e| {
        StepError::invalid(format!("{what} \"{address}\": {expected}")).with_source(e)
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(StepError::invalid(format!(
            "{what} \"{address}\": {expected}"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(StepError::invalid(format!(
            "{what} \"{}\": {expected}, with no credentials, query or fragment",
            http_client::display_url(&url)
        )));
    }
    Ok(url)
}

/// A resolved address, namespace and TLS settings.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) address: Url,
    pub(crate) namespace: Option<String>,
    pub(crate) tls: TlsOptions,
}

/// A path of Vault's HTTP API below `/v1/`, as segments, with an optional query.
#[derive(Debug, Clone)]
pub(crate) struct ApiPath {
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
}

impl ApiPath {
    /// Joins slash-separated parts (`"secret"`, `"data"`, `"orders/db"`); empty segments are
    /// dropped.
    pub(crate) fn new<'a>(parts: impl IntoIterator<Item = &'a str>) -> Self {
        let segments = parts
            .into_iter()
            .flat_map(|p| p.split('/'))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Self {
            segments,
            query: Vec::new(),
        }
    }

    pub(crate) fn with_query(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.query.push((key, value.to_string()));
        self
    }
}

impl fmt::Display for ApiPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("/"))?;
        for (i, (k, v)) in self.query.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

/// Checks a mount or path given by a user: not empty, no `.` or `..` segments.
pub(crate) fn validate_path(value: &str, what: &str, allow_empty: bool) -> Result<(), StepError> {
    let segments: Vec<&str> = value.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() && !allow_empty {
        return Err(StepError::invalid(format!(
            "{what} \"{value}\": expected a non-empty path"
        )));
    }
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err(StepError::invalid(format!(
            "{what} \"{value}\": expected a path without \".\" or \"..\" segments"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() || c == '?' || c == '#')
    {
        return Err(StepError::invalid(format!(
            "{what} \"{}\": expected a path without control characters, '?' or '#'",
            value.escape_default()
        )));
    }
    Ok(())
}

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
    /// failures a retry can fix ([`VaultReady`](super::VaultReady) is a wait, the other steps
    /// one-shot).
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
        let mut url = self.endpoint.address.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("v1").extend(&path.segments);
        }
        if !path.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&path.query);
        }
        url
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

/// How the session's token was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenSource {
    /// Given to the plan (environment, file, builder): it belongs to someone else.
    Provided,
    /// Made by a login step of this plan.
    Login,
}

/// A logged-in connection to Vault, stored in the [`Context`] by a login step and used by the
/// Vault steps after it.
///
/// The token is a secret: it is registered with the context's redactor when the session is
/// made, and the `Debug` output never shows it. A hand-written step can use the session to call
/// Vault itself.
///
/// # Examples
///
/// ```
/// use init_core::{async_trait, Context, Step, StepError};
/// use init_steps::vault::VaultSession;
///
/// #[derive(Debug)]
/// struct WhoAmI;
///
/// #[async_trait]
/// impl Step for WhoAmI {
///     fn name(&self) -> &str {
///         "whoami"
///     }
///     async fn run(&self, ctx: &Context) -> Result<(), StepError> {
///         let session = ctx
///             .get::<VaultSession>()
///             .ok_or_else(|| StepError::permanent("no vault session: add a login step first"))?;
///         tracing::info!(address = session.address(), "logged in");
///         Ok(())
///     }
/// }
/// ```
#[derive(Clone)]
pub struct VaultSession {
    pub(crate) api: Api,
    pub(crate) token: Secret,
    pub(crate) source: TokenSource,
}

impl VaultSession {
    /// Vault's address.
    ///
    /// ```
    /// # fn f(session: &init_steps::vault::VaultSession) {
    /// println!("vault at {}", session.address());
    /// # }
    /// ```
    pub fn address(&self) -> String {
        self.api.address()
    }

    /// The namespace requests are sent to, if any.
    ///
    /// ```
    /// # fn f(session: &init_steps::vault::VaultSession) {
    /// let header = session.namespace().unwrap_or("root");
    /// # let _ = header;
    /// # }
    /// ```
    pub fn namespace(&self) -> Option<&str> {
        self.api.endpoint().namespace.as_deref()
    }

    /// The token, to send as `X-Vault-Token`. It is a secret: never log it.
    ///
    /// ```
    /// # fn f(session: &init_steps::vault::VaultSession) {
    /// let header = ("X-Vault-Token", session.token());
    /// # let _ = header;
    /// # }
    /// ```
    pub fn token(&self) -> &str {
        self.token.expose()
    }

    /// Whether a login step of this plan made the token (rather than it being given by
    /// `VAULT_TOKEN`, a file or [`Vault::token`]); only such tokens are revoked by
    /// [`VaultRevoke`](super::VaultRevoke).
    ///
    /// ```
    /// # fn f(session: &init_steps::vault::VaultSession) {
    /// if session.is_from_login() { /* ... */ }
    /// # }
    /// ```
    pub fn is_from_login(&self) -> bool {
        self.source == TokenSource::Login
    }

    /// Makes a session, registering the token with the context's redactor.
    pub(crate) fn new(ctx: &Context, api: Api, token: Secret, source: TokenSource) -> Self {
        ctx.register_secret(token.expose());
        Self { api, token, source }
    }

    /// Validation for a step that uses [`current`](Self::current): the `VAULT_*` variables
    /// that are set must be right (see [`Vault::validate_set`]). Neither `VAULT_ADDR` nor
    /// `VAULT_TOKEN` is required: a login step before this one makes them unneeded, and a step
    /// cannot see, at validation, which steps come before it.
    pub(crate) fn check_environment(cx: &ValidateContext<'_>) -> Result<(), StepError> {
        Vault::from_env().validate_set(cx).map(drop)
    }

    /// The session of the login step that ran before, or else one made from
    /// `Vault::from_env()` and `VAULT_TOKEN`.
    pub(crate) fn current(ctx: &Context) -> Result<Self, StepError> {
        if let Some(session) = ctx.get::<Self>() {
            return Ok(session);
        }
        let vault = Vault::from_env();
        let token = vault.resolved_token(ctx).ok_or_else(|| {
            StepError::invalid(
                "no vault session: add a login step before this one (Vault::kubernetes_login, \
                 ...) or set VAULT_TOKEN",
            )
        })?;
        let api = Api::connect(vault.endpoint(ctx)?, Family::OneShot)?;
        Ok(Self::new(ctx, api, token, TokenSource::Provided))
    }

    /// A request with the session's token, whatever the reply's status (see
    /// [`Reply::success`]).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &ApiPath,
        body: Option<&Value>,
        subject: &str,
    ) -> Result<Reply, StepError> {
        self.api
            .send(method, path, Some(&self.token), body, true, subject)
            .await
    }
}

impl fmt::Debug for VaultSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSession")
            .field("api", &self.api)
            .field("token", &self.token)
            .field("source", &self.source)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_values_win_over_the_environment() {
        let ctx = Context::with_env([
            ("VAULT_ADDR", "http://env:8200"),
            ("VAULT_NAMESPACE", "env-ns"),
            ("VAULT_SKIP_VERIFY", "false"),
        ]);
        let endpoint = Vault::from_env()
            .address("https://vault:8200")
            .namespace("/team-a/")
            .insecure()
            .endpoint(&ctx)
            .unwrap();
        assert_eq!(endpoint.address.as_str(), "https://vault:8200/");
        assert_eq!(endpoint.namespace.as_deref(), Some("team-a"));
        assert!(endpoint.tls.insecure);
    }

    #[test]
    fn insecure_skips_reading_vault_skip_verify() {
        let ctx = Context::with_env([("VAULT_ADDR", "http://v"), ("VAULT_SKIP_VERIFY", "yes")]);
        let endpoint = Vault::from_env().insecure().endpoint(&ctx).unwrap();
        assert!(endpoint.tls.insecure);
        let endpoint = Vault::from_env()
            .endpoint(&Context::with_env([("VAULT_ADDR", "http://v")]))
            .unwrap();
        assert!(!endpoint.tls.insecure);
    }

    #[test]
    fn reads_every_vault_cli_variable() {
        let ctx = Context::with_env([
            ("VAULT_ADDR", "https://vault.vault:8200"),
            ("VAULT_TOKEN", " hvs.tok\n"),
            ("VAULT_NAMESPACE", "ns1"),
            ("VAULT_CACERT", "/ca.pem"),
            ("VAULT_CLIENT_CERT", "/c.pem"),
            ("VAULT_CLIENT_KEY", "/k.pem"),
            ("VAULT_SKIP_VERIFY", "1"),
        ]);
        let vault = Vault::from_env();
        let endpoint = vault.endpoint(&ctx).unwrap();
        assert_eq!(endpoint.namespace.as_deref(), Some("ns1"));
        assert_eq!(endpoint.tls.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(endpoint.tls.client_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(endpoint.tls.client_key, Some(PathBuf::from("/k.pem")));
        assert!(endpoint.tls.insecure);
        assert_eq!(vault.resolved_token(&ctx).unwrap().expose(), "hvs.tok");
    }

    #[test]
    fn a_missing_or_bad_address_is_a_configuration_error() {
        let err = Vault::from_env()
            .endpoint(&Context::with_env([("X", "1")]))
            .unwrap_err();
        assert!(err.is_invalid());
        assert!(err.to_string().starts_with("VAULT_ADDR is not set"));
        let ctx = Context::with_env([("VAULT_ADDR", "vault:8200")]);
        assert!(Vault::from_env().endpoint(&ctx).unwrap_err().is_invalid());
        let cx = ValidateContext::with_env([("VAULT_ADDR", "http://ok:8200")]);
        let err = Vault::from_env()
            .address("ftp://v")
            .validate(&cx)
            .unwrap_err();
        assert!(
            err.to_string().starts_with("vault address \"ftp://v\""),
            "{err}"
        );
        let ctx = Context::with_env([("VAULT_ADDR", "http://v"), ("VAULT_SKIP_VERIFY", "yes")]);
        let err = Vault::from_env().endpoint(&ctx).unwrap_err();
        assert!(err.to_string().contains("VAULT_SKIP_VERIFY = \"yes\""));
    }

    #[test]
    fn a_client_cert_needs_its_key() {
        let ctx = Context::with_env([("VAULT_ADDR", "http://v"), ("VAULT_CLIENT_CERT", "/c.pem")]);
        assert!(Vault::from_env().endpoint(&ctx).unwrap_err().is_invalid());
    }

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

    #[test]
    fn debug_never_shows_tokens() {
        let vault = Vault::from_env().token("hvs.s3cr3t");
        assert!(!format!("{vault:?}").contains("s3cr3t"));
    }

    #[test]
    fn paths_with_dot_segments_are_refused() {
        assert!(validate_path("orders/../sys", "path", false).is_err());
        assert!(validate_path("", "path", false).is_err());
        assert!(validate_path("orders/db", "path", false).is_ok());
    }
}
