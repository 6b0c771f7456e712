//! Login steps (Kubernetes, AppRole, JWT, a given token) that leave a [`VaultSession`] in the
//! context, and [`VaultRevoke`], which revokes the token a login made.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use init_core::{Context, ErrorClass, Publication, Step, StepError, ValidateContext, async_trait};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::client::{
    Api, ApiPath, Reply, Secret, TokenSource, Vault, VaultSession, no_token, string_list,
    validate_path,
};
use super::error;
use super::read::HeldLeases;
use crate::support::http_client::{self, Family, Lazy};

/// Where the kubelet mounts the pod's service-account token.
pub const KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

const LOGIN_STEP: &str = "vault-login";

impl Vault {
    /// Logs in with the pod's Kubernetes service-account token as `role`
    /// (<https://developer.hashicorp.com/vault/api-docs/auth/kubernetes#login>).
    ///
    /// # Default
    ///
    /// Mount `kubernetes`; the token read from [`KUBERNETES_TOKEN_FILE`], surrounding
    /// whitespace (the trailing newline) trimmed.
    ///
    /// # Examples
    ///
    /// ```
    /// use init_core::Step;
    /// let login = init_steps::vault::Vault::from_env().kubernetes_login("orders");
    /// assert_eq!(login.name(), "vault-login");
    /// ```
    pub fn kubernetes_login(self, role: impl Into<String>) -> KubernetesLogin {
        KubernetesLogin {
            vault: self,
            api: Lazy::new(),
            role: role.into(),
            mount: "kubernetes".to_owned(),
            jwt_file: PathBuf::from(KUBERNETES_TOKEN_FILE),
        }
    }

    /// Logs in with an AppRole's `role_id` and, unless the role does not bind one, a
    /// secret ID (<https://developer.hashicorp.com/vault/api-docs/auth/approle#login-with-approle>).
    ///
    /// # Default
    ///
    /// Mount `approle`; no secret ID (set one with [`AppRoleLogin::secret_id`],
    /// [`AppRoleLogin::secret_id_file`], or response-wrapped with
    /// [`AppRoleLogin::wrapped_secret_id_file`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env()
    ///     .approle_login("8c5fd1a4-...")
    ///     .secret_id_file("/vault/approle/secret-id");
    /// # let _ = login;
    /// ```
    pub fn approle_login(self, role_id: impl Into<String>) -> AppRoleLogin {
        AppRoleLogin {
            vault: self,
            api: Lazy::new(),
            role_id: role_id.into(),
            secret_id: None,
            unwrapped: Arc::default(),
            mount: "approle".to_owned(),
        }
    }

    /// Logs in with a JWT (an OIDC ID token, a CI job token, a projected service-account token)
    /// as `role` (<https://developer.hashicorp.com/vault/api-docs/auth/jwt#jwt-login>). The JWT
    /// comes from [`JwtLogin::jwt_file`] or [`JwtLogin::jwt`].
    ///
    /// # Default
    ///
    /// Mount `jwt`.
    ///
    /// # Examples
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env()
    ///     .jwt_login("ci")
    ///     .jwt_file("/var/run/secrets/tokens/vault-token");
    /// # let _ = login;
    /// ```
    pub fn jwt_login(self, role: impl Into<String>) -> JwtLogin {
        JwtLogin {
            vault: self,
            api: Lazy::new(),
            role: role.into(),
            jwt: None,
            mount: "jwt".to_owned(),
        }
    }

    /// Uses a given token: [`Vault::token`], else `VAULT_TOKEN`. The step checks it with
    /// `auth/token/lookup-self`
    /// (<https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-self>).
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env().token_login();
    /// # let _ = login;
    /// ```
    pub fn token_login(self) -> TokenLogin {
        TokenLogin {
            vault: self,
            api: Lazy::new(),
            file: None,
        }
    }

    /// Uses the token in a file (written by Vault Agent, say), surrounding whitespace trimmed,
    /// and checks it like [`token_login`](Self::token_login).
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env().token_file_login("/vault/token");
    /// # let _ = login;
    /// ```
    pub fn token_file_login(self, path: impl Into<PathBuf>) -> TokenLogin {
        TokenLogin {
            vault: self,
            api: Lazy::new(),
            file: Some(path.into()),
        }
    }
}

/// A secret given inline or read from a file at run time.
#[derive(Debug, Clone)]
enum SecretSource {
    Value(Secret),
    File(PathBuf),
}

impl SecretSource {
    /// The secret, registered with the context's redactor.
    async fn read(&self, ctx: &Context, what: &str) -> Result<Secret, StepError> {
        match self {
            Self::Value(secret) => {
                ctx.register_secret(secret.expose());
                Ok(secret.clone())
            }
            Self::File(path) => read_secret_file(ctx, path, what).await,
        }
    }
}

impl SecretSource {
    /// Checks a file source as [`check_secret_file`] does; an inline value needs nothing.
    fn check(&self, what: &str) -> Result<(), StepError> {
        match self {
            Self::Value(_) => Ok(()),
            Self::File(path) => check_secret_file(path, what),
        }
    }
}

/// Checks, at validation, a secret file that exists already: it must be a readable file. One
/// that does not exist yet passes: an earlier step of the plan may write it
/// ([`read_secret_file`] names it if it is still missing). The content is not read.
fn check_secret_file(path: &Path, what: &str) -> Result<(), StepError> {
    let name = format!("{what} {}", path.display());
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(StepError::invalid(format!(
            "{name}: expected a file, found a directory or another kind of entry"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            Err(StepError::invalid(format!("{name}: expected a readable file")).with_source(e))
        }
    }
}

/// Reads a secret file, surrounding whitespace (a trailing newline) trimmed, and registers the
/// secret with the context's redactor. A file that does not exist is permanent, naming it: the
/// steps that write files run before this one, so a retry will not find it either.
async fn read_secret_file(ctx: &Context, path: &Path, what: &str) -> Result<Secret, StepError> {
    let name = format!("{what} {}", path.display());
    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            StepError::permanent(&name).with_source(e)
        } else {
            StepError::from_error(e).context(&name)
        }
    })?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(StepError::permanent(format!("{name}: the file is empty")));
    }
    ctx.register_secret(trimmed);
    Ok(Secret::new(trimmed))
}

/// A `sys/wrapping/*` reply if 2xx; an invalid wrapping token (400) says what that means.
fn wrapping_reply(reply: Reply, subject: &str) -> Result<Reply, StepError> {
    let invalid = reply.status == StatusCode::BAD_REQUEST
        && error::vault_errors(&reply.body)
            .iter()
            .any(|e| e.contains("wrapping token is not valid"));
    if invalid {
        return Err(http_client::status_error(
            subject,
            reply.status,
            ErrorClass::Permanent,
            Some(
                "the approle wrapped secret_id is not valid: it expired, or it was unwrapped \
                 already (a wrapping token works once: by an earlier run of this container, or \
                 by someone who intercepted it); deliver a new one",
            ),
            &reply.headers,
        ));
    }
    reply.success(subject)
}

fn validate_mount(mount: &str) -> Result<(), StepError> {
    validate_path(mount, "vault auth mount", false)
}

fn validate_non_empty(value: &str, what: &str) -> Result<(), StepError> {
    if value.trim().is_empty() {
        return Err(StepError::invalid(format!(
            "{what}: expected a non-empty value"
        )));
    }
    Ok(())
}

/// Logs in at `auth/<mount>/login` and stores the session.
async fn login(
    ctx: &Context,
    api: Api,
    method: &'static str,
    mount: &str,
    role: Option<&str>,
    body: Value,
) -> Result<(), StepError> {
    let path = ApiPath::new(["auth", mount, "login"]);
    let subject = match role {
        Some(role) => format!("auth/{mount}/login (role \"{role}\")"),
        None => format!("auth/{mount}/login"),
    };
    let reply = api
        .send(Method::POST, &path, None, Some(&body), true, &subject)
        .await?
        .success(&subject)?;
    let auth = &reply.body["auth"];
    let token = auth["client_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            StepError::permanent(format!("{subject}: vault's reply has no auth.client_token"))
        })?;
    let session = VaultSession::new(ctx, api, Secret::new(token), TokenSource::Login);
    reply.log_warnings(&subject);
    tracing::info!(
        method,
        mount,
        role,
        policies = ?string_list(&auth["policies"]),
        ttl_s = auth["lease_duration"].as_u64(),
        renewable = auth["renewable"].as_bool(),
        "logged in to vault"
    );
    ctx.insert(session);
    Ok(())
}

/// Logs in to Vault with the pod's Kubernetes service-account token; made by
/// [`Vault::kubernetes_login`].
///
/// Posts `{"role", "jwt"}` to `auth/<mount>/login`
/// (<https://developer.hashicorp.com/vault/api-docs/auth/kubernetes#login>); Vault checks the
/// token with the Kubernetes TokenReview API and the role's bound service-account names and
/// namespaces. The token Vault returns is stored in the context as a [`VaultSession`] and
/// registered as a secret. The service-account JWT is never logged.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// let login = init_steps::vault::Vault::from_env()
///     .kubernetes_login("orders")
///     .mount("k8s-prod")
///     .jwt_file("/var/run/secrets/tokens/vault");
/// let cx = init_core::ValidateContext::with_env([("VAULT_ADDR", "https://vault.vault:8200")]);
/// assert!(login.validate(&cx).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct KubernetesLogin {
    vault: Vault,
    /// Built on the first attempt and kept for the retries.
    api: Lazy<Api>,
    role: String,
    mount: String,
    jwt_file: PathBuf,
}

impl KubernetesLogin {
    /// Sets the auth mount path (default `kubernetes`).
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env().kubernetes_login("orders").mount("k8s-eu");
    /// # let _ = login;
    /// ```
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }

    /// Reads the service-account JWT from `path` instead of [`KUBERNETES_TOKEN_FILE`] (a
    /// projected token with a Vault audience, say).
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env()
    ///     .kubernetes_login("orders")
    ///     .jwt_file("/var/run/secrets/tokens/vault");
    /// # let _ = login;
    /// ```
    #[must_use]
    pub fn jwt_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.jwt_file = path.into();
        self
    }
}

#[async_trait]
impl Step for KubernetesLogin {
    fn name(&self) -> &str {
        LOGIN_STEP
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.vault.validate(cx)?;
        validate_non_empty(&self.role, "vault kubernetes role")?;
        validate_mount(&self.mount)?;
        check_secret_file(&self.jwt_file, "kubernetes service-account token")
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        // Configuration errors first: they are not worth a retry.
        let api = self
            .api
            .get_or_build(|| Api::connect(self.vault.endpoint(ctx)?, Family::OneShot))?;
        let jwt = read_secret_file(ctx, &self.jwt_file, "kubernetes service-account token").await?;
        let body = json!({ "role": self.role, "jwt": jwt.expose() });
        login(ctx, api, "kubernetes", &self.mount, Some(&self.role), body).await
    }
}

/// Logs in to Vault with an AppRole; made by [`Vault::approle_login`].
///
/// Posts `{"role_id", "secret_id"}` to `auth/<mount>/login`
/// (<https://developer.hashicorp.com/vault/api-docs/auth/approle#login-with-approle>). The
/// secret ID is registered as a secret and never logged; the token Vault returns is stored in
/// the context as a [`VaultSession`].
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// let login = init_steps::vault::Vault::from_env()
///     .approle_login("db-migrator")
///     .secret_id_file("/vault/approle/secret-id")
///     .mount("approle-ci");
/// let cx = init_core::ValidateContext::with_env([("VAULT_ADDR", "https://vault.vault:8200")]);
/// assert!(login.validate(&cx).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct AppRoleLogin {
    vault: Vault,
    /// Built on the first attempt and kept for the retries.
    api: Lazy<Api>,
    role_id: String,
    secret_id: Option<SecretId>,
    /// The secret ID a wrapping token gave, kept for this process's later attempts: a wrapping
    /// token can be unwrapped once.
    unwrapped: Arc<Mutex<Option<Secret>>>,
    mount: String,
}

/// Where an AppRole secret ID comes from.
#[derive(Debug, Clone)]
enum SecretId {
    /// The secret ID itself.
    Plain(SecretSource),
    /// A response-wrapping token whose wrapped response holds the secret ID.
    Wrapped(SecretSource),
}

impl AppRoleLogin {
    /// Sends this secret ID. Prefer [`secret_id_file`](Self::secret_id_file): a secret in the
    /// source code is a leaked secret.
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env().approle_login("r").secret_id("s-1");
    /// assert!(!format!("{login:?}").contains("s-1"));
    /// ```
    #[must_use]
    pub fn secret_id(mut self, secret_id: impl Into<String>) -> Self {
        self.secret_id = Some(SecretId::Plain(SecretSource::Value(Secret::new(secret_id))));
        self
    }

    /// Reads the secret ID from a file at run time (surrounding whitespace trimmed).
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env()
    ///     .approle_login("r")
    ///     .secret_id_file("/vault/approle/secret-id");
    /// # let _ = login;
    /// ```
    #[must_use]
    pub fn secret_id_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.secret_id = Some(SecretId::Plain(SecretSource::File(path.into())));
        self
    }

    /// Reads a response-wrapping token from a file at run time (surrounding whitespace
    /// trimmed) and unwraps it (`sys/wrapping/unwrap`) to get the secret ID: the delivery
    /// AppRole's documentation recommends
    /// (<https://openbao.org/docs/concepts/response-wrapping/>,
    /// <https://developer.hashicorp.com/vault/docs/auth/approle#response-wrapping>). Whoever
    /// delivers it asks for the secret ID with `X-Vault-Wrap-TTL`, so only a short-lived,
    /// single-use token travels.
    ///
    /// Before unwrapping, the step looks the token up (`sys/wrapping/lookup`) and refuses one
    /// that was not made by `auth/<mount>/role/<role>/secret-id`: a token wrapping anything else
    /// was swapped on the way. A token that is not valid (already unwrapped, or expired) is a
    /// permanent error that says so: a wrapping token works once, so a second unwrap means it
    /// was intercepted, or that this container restarted after unwrapping it; deliver a new one.
    /// The unwrapped secret ID is kept for the step's later attempts in this process.
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env()
    ///     .approle_login("8c5fd1a4-...")
    ///     .wrapped_secret_id_file("/vault/approle/wrapped-secret-id");
    /// # let _ = login;
    /// ```
    #[must_use]
    pub fn wrapped_secret_id_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.secret_id = Some(SecretId::Wrapped(SecretSource::File(path.into())));
        self
    }

    /// Unwraps this response-wrapping token to get the secret ID, as
    /// [`wrapped_secret_id_file`](Self::wrapped_secret_id_file) does.
    ///
    /// ```
    /// let token = std::env::var("APPROLE_WRAPPED_SECRET_ID").unwrap_or_default();
    /// let login = init_steps::vault::Vault::from_env().approle_login("r").wrapped_secret_id(token);
    /// assert!(!format!("{login:?}").contains("APPROLE"));
    /// ```
    #[must_use]
    pub fn wrapped_secret_id(mut self, token: impl Into<String>) -> Self {
        self.secret_id = Some(SecretId::Wrapped(SecretSource::Value(Secret::new(token))));
        self
    }

    /// The secret ID a wrapping token holds: checked with `sys/wrapping/lookup`, then
    /// unwrapped; kept for later attempts.
    async fn unwrap_secret_id(
        &self,
        ctx: &Context,
        api: &Api,
        source: &SecretSource,
    ) -> Result<Secret, StepError> {
        if let Some(secret_id) = self.unwrapped.lock().ok().and_then(|u| u.clone()) {
            ctx.register_secret(secret_id.expose());
            return Ok(secret_id);
        }
        let wrapping = source.read(ctx, "approle wrapped secret_id").await?;
        let mount = self.mount.trim_matches('/');
        let subject = "sys/wrapping/lookup";
        let lookup = api
            .send(
                Method::POST,
                &ApiPath::new([subject]),
                None,
                Some(&json!({ "token": wrapping.expose() })),
                true,
                subject,
            )
            .await?;
        let lookup = wrapping_reply(lookup, subject)?;
        let creation_path = lookup.body["data"]["creation_path"]
            .as_str()
            .unwrap_or_default();
        let expected = format!("auth/{mount}/role/");
        if !(creation_path.starts_with(&expected) && creation_path.ends_with("/secret-id")) {
            return Err(StepError::permanent(format!(
                "approle wrapped secret_id: the wrapping token was made by \"{creation_path}\", \
                 not by {expected}<role>/secret-id: refusing it (was it swapped on the way?)"
            )));
        }
        let subject = "sys/wrapping/unwrap";
        let reply = api
            .send(
                Method::POST,
                &ApiPath::new([subject]),
                Some(&wrapping),
                None,
                true,
                subject,
            )
            .await?;
        let reply = wrapping_reply(reply, subject)?;
        let secret_id = reply.body["data"]["secret_id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                StepError::permanent(format!(
                    "{subject}: the wrapped response has no data.secret_id"
                ))
            })?;
        ctx.register_secret(secret_id);
        let secret_id = Secret::new(secret_id);
        if let Ok(mut kept) = self.unwrapped.lock() {
            *kept = Some(secret_id.clone());
        }
        tracing::info!(
            creation_path,
            creation_ttl_s = lookup.body["data"]["creation_ttl"].as_u64(),
            "unwrapped the approle secret_id"
        );
        Ok(secret_id)
    }

    /// Sets the auth mount path (default `approle`).
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env().approle_login("r").mount("ci");
    /// # let _ = login;
    /// ```
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }
}

#[async_trait]
impl Step for AppRoleLogin {
    fn name(&self) -> &str {
        LOGIN_STEP
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.vault.validate(cx)?;
        validate_non_empty(&self.role_id, "vault approle role_id")?;
        validate_mount(&self.mount)?;
        match &self.secret_id {
            None => Ok(()),
            Some(SecretId::Plain(source)) => source.check("approle secret_id"),
            Some(SecretId::Wrapped(source)) => source.check("approle wrapped secret_id"),
        }
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let api = self
            .api
            .get_or_build(|| Api::connect(self.vault.endpoint(ctx)?, Family::OneShot))?;
        let mut body = json!({ "role_id": self.role_id });
        let secret_id = match &self.secret_id {
            None => None,
            Some(SecretId::Plain(source)) => Some(source.read(ctx, "approle secret_id").await?),
            Some(SecretId::Wrapped(source)) => {
                Some(self.unwrap_secret_id(ctx, &api, source).await?)
            }
        };
        if let Some(secret_id) = secret_id {
            body["secret_id"] = Value::from(secret_id.expose());
        }
        login(ctx, api, "approle", &self.mount, None, body).await
    }
}

/// Logs in to Vault with a JWT as a role of the JWT/OIDC auth method; made by
/// [`Vault::jwt_login`].
///
/// Posts `{"role", "jwt"}` to `auth/<mount>/login`
/// (<https://developer.hashicorp.com/vault/api-docs/auth/jwt#jwt-login>). The JWT is registered
/// as a secret and never logged.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// let login = init_steps::vault::Vault::from_env().jwt_login("ci").jwt_file("/run/ci/id-token");
/// let cx = init_core::ValidateContext::with_env([("VAULT_ADDR", "https://vault.vault:8200")]);
/// assert!(login.validate(&cx).is_ok());
/// let no_jwt = init_steps::vault::Vault::from_env().jwt_login("ci");
/// assert!(no_jwt.validate(&cx).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct JwtLogin {
    vault: Vault,
    /// Built on the first attempt and kept for the retries.
    api: Lazy<Api>,
    role: String,
    jwt: Option<SecretSource>,
    mount: String,
}

impl JwtLogin {
    /// Sends this JWT.
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env().jwt_login("ci").jwt("eyJ...");
    /// assert!(!format!("{login:?}").contains("eyJ"));
    /// ```
    #[must_use]
    pub fn jwt(mut self, jwt: impl Into<String>) -> Self {
        self.jwt = Some(SecretSource::Value(Secret::new(jwt)));
        self
    }

    /// Reads the JWT from a file at run time (surrounding whitespace trimmed).
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env().jwt_login("ci").jwt_file("/run/ci/id-token");
    /// # let _ = login;
    /// ```
    #[must_use]
    pub fn jwt_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.jwt = Some(SecretSource::File(path.into()));
        self
    }

    /// Sets the auth mount path (default `jwt`).
    ///
    /// ```
    /// let login = init_steps::vault::Vault::from_env().jwt_login("ci").mount("gitlab");
    /// # let _ = login;
    /// ```
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }
}

#[async_trait]
impl Step for JwtLogin {
    fn name(&self) -> &str {
        LOGIN_STEP
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.vault.validate(cx)?;
        validate_non_empty(&self.role, "vault jwt role")?;
        validate_mount(&self.mount)?;
        match &self.jwt {
            None => Err(StepError::invalid(
                "vault jwt login: expected a JWT (JwtLogin::jwt_file or JwtLogin::jwt)",
            )),
            Some(source) => source.check("jwt"),
        }
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let Some(source) = &self.jwt else {
            return Err(StepError::invalid("vault jwt login: expected a JWT"));
        };
        let api = self
            .api
            .get_or_build(|| Api::connect(self.vault.endpoint(ctx)?, Family::OneShot))?;
        let jwt = source.read(ctx, "jwt").await?;
        let body = json!({ "role": self.role, "jwt": jwt.expose() });
        login(ctx, api, "jwt", &self.mount, Some(&self.role), body).await
    }
}

/// Uses a token given to the plan (`VAULT_TOKEN`, [`Vault::token`] or a file); made by
/// [`Vault::token_login`] and [`Vault::token_file_login`].
///
/// The step checks the token with `auth/token/lookup-self`
/// (<https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-self>), so a bad
/// token or address fails here, and stores it in the context as a [`VaultSession`].
/// [`VaultRevoke`] never revokes such a token: it belongs to whoever gave it.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// let login = init_steps::vault::Vault::from_env().token_file_login("/vault/agent/token");
/// assert_eq!(login.name(), "vault-login");
/// ```
#[derive(Debug, Clone)]
pub struct TokenLogin {
    vault: Vault,
    /// Built on the first attempt and kept for the retries.
    api: Lazy<Api>,
    file: Option<PathBuf>,
}

#[async_trait]
impl Step for TokenLogin {
    fn name(&self) -> &str {
        LOGIN_STEP
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.vault.validate(cx)?;
        match &self.file {
            Some(path) => check_secret_file(path, "vault token file"),
            None => self.vault.validate_token(cx),
        }
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let api = self
            .api
            .get_or_build(|| Api::connect(self.vault.endpoint(ctx)?, Family::OneShot))?;
        let token = match &self.file {
            Some(path) => read_secret_file(ctx, path, "vault token file").await?,
            None => self.vault.resolved_token(ctx).ok_or_else(no_token)?,
        };
        let session = VaultSession::new(ctx, api, token, TokenSource::Provided);
        let subject = "auth/token/lookup-self";
        let reply = session
            .send(Method::GET, &ApiPath::new([subject]), None, subject)
            .await?
            .success(subject)?;
        // `data.id` is the token itself: only the harmless fields are read.
        let data = &reply.body["data"];
        tracing::info!(
            method = "token",
            policies = ?string_list(&data["policies"]),
            ttl_s = data["ttl"].as_u64(),
            renewable = data["renewable"].as_bool(),
            "using the given vault token"
        );
        ctx.insert(session);
        Ok(())
    }
}

/// Revokes the token a login step of this plan made (`auth/token/revoke-self`,
/// <https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-a-token-self>), so it does
/// not outlive the init container. Append it as the plan's last step.
///
/// It revokes only a token made by a login step ([`VaultSession::is_from_login`]); a token given
/// to the plan (`VAULT_TOKEN`, a file) belongs to someone else and is left alone. With no
/// session it does nothing. A token that is already invalid (403) counts as revoked. Nor does it
/// revoke a token that holds a lease a [`VaultRead`](super::VaultRead) of this plan took
/// (dynamic database credentials, say): Vault revokes a token's leases with it, so the
/// credentials would stop working at once; that token expires with its TTL instead. If the plan
/// fails before this step, the token lives until its TTL ends: give the role a short `token_ttl`.
/// Vault steps after it fail with 403: the token is gone.
///
/// # Examples
///
/// ```
/// use init_core::Plan;
/// use init_steps::vault::{KvRead, Vault, VaultRevoke};
///
/// let plan = Plan::new("orders-init")
///     .step(Vault::from_env().kubernetes_login("orders"))
///     .step(KvRead::v2("secret", "orders/db").write_json("/secrets/db.json"))
///     .step(VaultRevoke::new());
/// assert_eq!(plan.step_names().last(), Some(&"vault-revoke"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct VaultRevoke {
    _private: (),
}

impl VaultRevoke {
    /// The step.
    ///
    /// ```
    /// let step = init_steps::vault::VaultRevoke::new();
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Step for VaultRevoke {
    fn name(&self) -> &str {
        "vault-revoke"
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let Some(session) = ctx.get::<VaultSession>() else {
            tracing::info!("no vault session; nothing to revoke");
            return Ok(());
        };
        if !session.is_from_login() {
            tracing::info!("the vault token was given to the plan, not made by it; not revoking");
            return Ok(());
        }
        if let Some(HeldLeases(leases)) = ctx.get::<HeldLeases>()
            && !leases.is_empty()
        {
            // Revoking a token revokes the leases it created: the credentials would die now.
            tracing::info!(
                ?leases,
                "not revoking the vault token: the leases it holds would be revoked with it; \
                 it expires with its TTL"
            );
            return Ok(());
        }
        let subject = "auth/token/revoke-self";
        let reply = session
            .send(Method::POST, &ApiPath::new([subject]), None, subject)
            .await?;
        if reply.status.is_success() {
            tracing::info!("revoked the vault token");
            Ok(())
        } else if reply.status == StatusCode::FORBIDDEN {
            tracing::info!("the vault token was already invalid");
            Ok(())
        } else {
            Err(error::from_reply(&reply, subject))
        }
    }
}
