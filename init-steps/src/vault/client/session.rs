//! [`VaultSession`]: the logged-in connection a login step leaves in the context, and how a
//! step finds it (or makes one from the environment).

use std::fmt;

use init_core::{Context, StepError, ValidateContext};
use reqwest::Method;
use serde_json::Value;

use super::api::{Api, Reply};
use super::config::Vault;
use super::path::ApiPath;
use super::secret::Secret;
use crate::support::http_client::Family;

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
    /// [`VaultRevoke`](crate::vault::VaultRevoke).
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
