//! [`KubernetesLogin`]: logs in to Vault with the pod's Kubernetes service-account token.

use std::path::PathBuf;

use init_core::{Context, StepError, ValidateContext};

use super::login::MethodLogin;
use super::secret_source::SecretSource;
use crate::vault::client::Vault;

/// Where the kubelet mounts the pod's service-account token.
pub const KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// What the service-account token is called in errors.
const JWT: &str = "kubernetes service-account token";

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
            login: MethodLogin::new(self, "kubernetes"),
            role: role.into(),
            jwt: SecretSource::File(PathBuf::from(KUBERNETES_TOKEN_FILE)),
        }
    }
}

/// Logs in to Vault with the pod's Kubernetes service-account token; made by
/// [`Vault::kubernetes_login`].
///
/// Posts `{"role", "jwt"}` to `auth/<mount>/login`
/// (<https://developer.hashicorp.com/vault/api-docs/auth/kubernetes#login>); Vault checks the
/// token with the Kubernetes TokenReview API and the role's bound service-account names and
/// namespaces. The token Vault returns is stored in the context as a
/// [`VaultSession`](crate::vault::VaultSession) and registered as a secret. The service-account
/// JWT is never logged.
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
    login: MethodLogin,
    role: String,
    /// Always a file: the kubelet writes it.
    jwt: SecretSource,
}

impl KubernetesLogin {
    /// Sets the auth mount path (default `kubernetes`): a second cluster's auth method is
    /// mounted at a path of its own.
    ///
    /// ```
    /// use init_core::{Step, ValidateContext};
    /// let login = init_steps::vault::Vault::from_env().kubernetes_login("orders").mount("k8s-eu");
    /// let cx = ValidateContext::with_env([("VAULT_ADDR", "https://vault.vault:8200")]);
    /// assert!(login.validate(&cx).is_ok());
    /// ```
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.login.set_mount(mount.into());
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
        self.jwt = SecretSource::File(path.into());
        self
    }

    /// The step's validation (see [`login_steps`](super::login::login_steps)).
    pub(super) fn check(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.login
            .validate(cx, "vault kubernetes role", &self.role)?;
        self.jwt.check(JWT)
    }

    /// One attempt of the step.
    pub(super) async fn attempt(&self, ctx: &Context) -> Result<(), StepError> {
        self.login
            .login_with_jwt(ctx, &self.role, &self.jwt, JWT)
            .await
    }
}
