//! [`AppRoleLogin`]: logs in to Vault with an AppRole's role ID and secret ID, the secret ID
//! given, read from a file, or unwrapped from a response-wrapping token.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use init_core::{Context, ErrorClass, StepError, ValidateContext};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::login::MethodLogin;
use super::secret_source::SecretSource;
use crate::support::http_client;
use crate::vault::client::{Api, ApiPath, Reply, Secret, Vault};
use crate::vault::error;

impl Vault {
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
            login: MethodLogin::new(self, "approle"),
            role_id: role_id.into(),
            secret_id: None,
            unwrapped: Arc::default(),
        }
    }
}

/// Posts to `subject` (`sys/wrapping/lookup`, `sys/wrapping/unwrap`) with `token` and `body`:
/// the reply if 2xx; an invalid wrapping token (400) says what that means.
async fn wrapping_request(
    api: &Api,
    subject: &str,
    token: Option<&Secret>,
    body: Option<&Value>,
) -> Result<Reply, StepError> {
    let reply = api
        .send(
            Method::POST,
            &ApiPath::new([subject]),
            token,
            body,
            true,
            subject,
        )
        .await?;
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

/// Logs in to Vault with an AppRole; made by [`Vault::approle_login`].
///
/// Posts `{"role_id", "secret_id"}` to `auth/<mount>/login`
/// (<https://developer.hashicorp.com/vault/api-docs/auth/approle#login-with-approle>). The
/// secret ID is registered as a secret and never logged; the token Vault returns is stored in
/// the context as a [`VaultSession`](crate::vault::VaultSession).
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
    login: MethodLogin,
    role_id: String,
    secret_id: Option<SecretId>,
    /// The secret ID a wrapping token gave, kept for this process's later attempts: a wrapping
    /// token can be unwrapped once.
    unwrapped: Arc<Mutex<Option<Secret>>>,
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
        let mount = self.login.mount();
        let lookup = wrapping_request(
            api,
            "sys/wrapping/lookup",
            None,
            Some(&json!({ "token": wrapping.expose() })),
        )
        .await?;
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
        let reply = wrapping_request(api, subject, Some(&wrapping), None).await?;
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

    /// Sets the auth mount path (default `approle`); the wrapping token of
    /// [`wrapped_secret_id_file`](Self::wrapped_secret_id_file) must have been made below it.
    ///
    /// ```
    /// use init_core::{Step, ValidateContext};
    /// let login = init_steps::vault::Vault::from_env().approle_login("r").mount("");
    /// let cx = ValidateContext::with_env([("VAULT_ADDR", "https://vault.vault:8200")]);
    /// let err = login.validate(&cx).unwrap_err();
    /// assert_eq!(err.to_string(), "vault auth mount \"\": expected a non-empty path");
    /// ```
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.login.set_mount(mount.into());
        self
    }

    /// The step's validation (see [`login_steps`](super::login::login_steps)).
    pub(super) fn check(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.login
            .validate(cx, "vault approle role_id", &self.role_id)?;
        match &self.secret_id {
            None => Ok(()),
            Some(SecretId::Plain(source)) => source.check("approle secret_id"),
            Some(SecretId::Wrapped(source)) => source.check("approle wrapped secret_id"),
        }
    }

    /// One attempt of the step.
    pub(super) async fn attempt(&self, ctx: &Context) -> Result<(), StepError> {
        let api = self.login.api(ctx)?;
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
        self.login.login(ctx, api, None, body).await
    }
}
