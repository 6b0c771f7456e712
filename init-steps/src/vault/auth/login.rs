//! What the login steps share: their name, the Vault they log in to and its connection (built
//! on the first attempt and kept for the retries), an auth method's mount and its login request
//! (`POST auth/<mount>/login`), which leaves a [`VaultSession`] in the context, and their
//! [`Step`](init_core::Step) implementation.

use init_core::{Context, StepError, ValidateContext};
use reqwest::Method;
use serde_json::{Value, json};

use super::secret_source::SecretSource;
use crate::support::http_client::{Family, Lazy};
use crate::vault::client::{
    Api, ApiPath, Secret, TokenSource, Vault, VaultSession, string_list, validate_path,
};

/// The name of every login step.
pub(super) const LOGIN_STEP: &str = "vault-login";

/// The Vault a login step logs in to, and its connection.
#[derive(Debug, Clone)]
pub(super) struct Connection {
    vault: Vault,
    /// Built on the first attempt and kept for the retries.
    api: Lazy<Api>,
}

impl Connection {
    pub(super) fn new(vault: Vault) -> Self {
        Self {
            vault,
            api: Lazy::new(),
        }
    }

    pub(super) fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Checks the Vault configuration against the plan's environment (an address is required).
    pub(super) fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.vault.validate(cx)
    }

    /// The connection: built on the first call (a configuration error is not worth a retry),
    /// the same one after.
    pub(super) fn api(&self, ctx: &Context) -> Result<Api, StepError> {
        self.api
            .get_or_build(|| Api::connect(self.vault.endpoint(ctx)?, Family::OneShot))
    }
}

/// A login with an auth method (`kubernetes`, `approle`, `jwt`) at `auth/<mount>/login`.
#[derive(Debug, Clone)]
pub(super) struct MethodLogin {
    connection: Connection,
    method: &'static str,
    mount: String,
}

impl MethodLogin {
    /// A login with `method`, mounted at its default path: the method's name.
    pub(super) fn new(vault: Vault, method: &'static str) -> Self {
        Self {
            connection: Connection::new(vault),
            method,
            mount: method.to_owned(),
        }
    }

    pub(super) fn set_mount(&mut self, mount: String) {
        self.mount = mount;
    }

    /// The mount path, without surrounding slashes.
    pub(super) fn mount(&self) -> &str {
        self.mount.trim_matches('/')
    }

    /// Checks the Vault configuration, the role (`role_what` names it in the error) and the
    /// mount path.
    pub(super) fn validate(
        &self,
        cx: &ValidateContext<'_>,
        role_what: &str,
        role: &str,
    ) -> Result<(), StepError> {
        self.connection.validate(cx)?;
        if role.trim().is_empty() {
            return Err(StepError::invalid(format!(
                "{role_what}: expected a non-empty value"
            )));
        }
        validate_path(&self.mount, "vault auth mount", false)
    }

    pub(super) fn api(&self, ctx: &Context) -> Result<Api, StepError> {
        self.connection.api(ctx)
    }

    /// Logs in as `role` with a JWT read from `jwt` (`what` names it in errors): the
    /// `{"role", "jwt"}` login of the Kubernetes and JWT methods.
    pub(super) async fn login_with_jwt(
        &self,
        ctx: &Context,
        role: &str,
        jwt: &SecretSource,
        what: &str,
    ) -> Result<(), StepError> {
        // Configuration errors first: they are not worth a retry.
        let api = self.api(ctx)?;
        let jwt = jwt.read(ctx, what).await?;
        let body = json!({ "role": role, "jwt": jwt.expose() });
        self.login(ctx, api, Some(role), body).await
    }

    /// Logs in at `auth/<mount>/login` and stores the session.
    pub(super) async fn login(
        &self,
        ctx: &Context,
        api: Api,
        role: Option<&str>,
        body: Value,
    ) -> Result<(), StepError> {
        let (method, mount) = (self.method, self.mount.as_str());
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
        log_token(
            "logged in to vault",
            method,
            Some(mount),
            role,
            auth,
            "lease_duration",
        );
        ctx.insert(session);
        Ok(())
    }
}

/// Logs `message` with how a login step got its token (`method`, and the `mount` and `role` of
/// an auth method) and what Vault says of it in `facts` (its policies, its TTL under `ttl_key`,
/// whether it is renewable); never the token itself.
pub(super) fn log_token(
    message: &str,
    method: &str,
    mount: Option<&str>,
    role: Option<&str>,
    facts: &Value,
    ttl_key: &str,
) {
    tracing::info!(
        method,
        mount,
        role,
        policies = ?string_list(&facts["policies"]),
        ttl_s = facts[ttl_key].as_u64(),
        renewable = facts["renewable"].as_bool(),
        "{message}"
    );
}

/// The [`Step`](init_core::Step) implementation of login steps: named [`LOGIN_STEP`],
/// publishing no values, validated by their `check` and run by their `attempt`.
macro_rules! login_steps {
    ($($step:ty),+ $(,)?) => {$(
        #[init_core::async_trait]
        impl init_core::Step for $step {
            fn name(&self) -> &str {
                $crate::vault::auth::login::LOGIN_STEP
            }

            fn publishes(&self) -> Option<Vec<init_core::Publication>> {
                Some(Vec::new())
            }

            fn validate(
                &self,
                cx: &init_core::ValidateContext<'_>,
            ) -> Result<(), init_core::StepError> {
                self.check(cx)
            }

            async fn run(&self, ctx: &init_core::Context) -> Result<(), init_core::StepError> {
                self.attempt(ctx).await
            }
        }
    )+};
}

pub(super) use login_steps;
