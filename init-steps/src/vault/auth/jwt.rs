//! [`JwtLogin`]: logs in to Vault with a JWT, as a role of the JWT/OIDC auth method.

use std::path::PathBuf;

use init_core::{Context, StepError, ValidateContext};

use super::login::MethodLogin;
use super::secret_source::SecretSource;
use crate::vault::client::{Secret, Vault};

impl Vault {
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
            login: MethodLogin::new(self, "jwt"),
            role: role.into(),
            jwt: None,
        }
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
    login: MethodLogin,
    role: String,
    jwt: Option<SecretSource>,
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

    /// Sets the auth mount path (default `jwt`): one per issuer (GitLab, GitHub Actions, an
    /// OIDC provider) is usual.
    ///
    /// ```
    /// use init_core::{Step, ValidateContext};
    /// let login = init_steps::vault::Vault::from_env().jwt_login("ci").jwt("eyJ...");
    /// let cx = ValidateContext::with_env([("VAULT_ADDR", "https://vault.vault:8200")]);
    /// let err = login.mount("gitlab/../sys").validate(&cx).unwrap_err();
    /// assert!(err.to_string().starts_with("vault auth mount \"gitlab/../sys\""));
    /// ```
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.login.set_mount(mount.into());
        self
    }

    /// The step's validation (see [`login_steps`](super::login::login_steps)).
    pub(super) fn check(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.login.validate(cx, "vault jwt role", &self.role)?;
        match &self.jwt {
            None => Err(StepError::invalid(
                "vault jwt login: expected a JWT (JwtLogin::jwt_file or JwtLogin::jwt)",
            )),
            Some(source) => source.check("jwt"),
        }
    }

    /// One attempt of the step.
    pub(super) async fn attempt(&self, ctx: &Context) -> Result<(), StepError> {
        let Some(source) = &self.jwt else {
            return Err(StepError::invalid("vault jwt login: expected a JWT"));
        };
        self.login
            .login_with_jwt(ctx, &self.role, source, "jwt")
            .await
    }
}
