//! `VaultReady`: waits until `sys/health` says Vault is initialized, unsealed and active.

use init_core::{
    Context, ErrorClass, Policy, Publication, Step, StepError, ValidateContext, async_trait,
};
use reqwest::Method;
use serde_json::Value;

use super::client::{Api, ApiPath, Vault};
use super::error;
use crate::support::http_client::{self, Family, Lazy};

impl Vault {
    /// A step that waits for this Vault to be ready; see [`VaultReady`].
    ///
    /// ```
    /// use init_core::Step;
    /// let ready = init_steps::vault::Vault::from_env().address("https://vault:8200").ready();
    /// assert_eq!(ready.name(), "vault-ready");
    /// ```
    pub fn ready(self) -> VaultReady {
        VaultReady {
            vault: self,
            allow_standby: false,
            api: Lazy::new(),
        }
    }
}

/// Waits until Vault is initialized, unsealed and active, reading `GET /v1/sys/health`
/// (<https://developer.hashicorp.com/vault/api-docs/system/health>), which needs no token.
///
/// Each attempt is one request; the step's policy ([`Policy::wait`] by default: unlimited
/// attempts, 100 ms to 1 s apart; bound it with a timeout) polls. The status codes say the
/// state (the default status codes of
/// <https://developer.hashicorp.com/vault/api-docs/system/health>):
///
/// | status | state | ready? |
/// |---|---|---|
/// | 200 | initialized, unsealed, active | yes |
/// | 429 | unsealed standby | only with [`allow_standby`](Self::allow_standby); else transient |
/// | 473 | performance standby | only with [`allow_standby`](Self::allow_standby); else transient |
/// | 474 | standby that cannot reach the active node | transient (the network or the active node comes back) |
/// | 501 | not initialized | transient (an operator or an init job initializes it) |
/// | 503 | sealed | transient (an operator or an auto-unseal unseals it) |
/// | 472 | disaster-recovery secondary (active or standby node of it) | **permanent**: a DR secondary serves no client requests until an operator promotes it, which no wait brings about |
/// | 530 | removed from its cluster | **permanent**: a removed node does not rejoin by itself |
/// | other | not Vault's answer: an ingress or proxy in front of a Vault that is starting (a 404 until its rules load) | transient, as for [`HttpWait`](crate::http::HttpWait), except 401, 403 and 407 (permanent) |
///
/// The request carries no namespace: `sys/health` lives in the root namespace. As a wait, the
/// step waits out an ingress's placeholder TLS certificate while it starts (see the
/// classification table in the README).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use init_core::{Plan, StepExt};
/// use init_steps::vault::{Vault, VaultReady};
///
/// let plan = Plan::new("orders-init")
///     .step(VaultReady::new().allow_standby().timeout(Duration::from_secs(120)))
///     .step(Vault::from_env().kubernetes_login("orders"));
/// assert_eq!(plan.step_names(), ["vault-ready", "vault-login"]);
/// ```
#[derive(Debug, Clone)]
pub struct VaultReady {
    vault: Vault,
    allow_standby: bool,
    /// Built on the first attempt and kept for the others.
    api: Lazy<Api>,
}

impl VaultReady {
    /// Waits for the Vault of `VAULT_ADDR` (see [`Vault::from_env`]); [`Vault::ready`] takes
    /// another configuration.
    ///
    /// ```
    /// let ready = init_steps::vault::VaultReady::new();
    /// # let _ = ready;
    /// ```
    pub fn new() -> Self {
        Vault::from_env().ready()
    }

    /// Counts a standby or performance-standby node as ready (it forwards requests, or serves
    /// reads, for the active node).
    ///
    /// ```
    /// let ready = init_steps::vault::VaultReady::new().allow_standby();
    /// # let _ = ready;
    /// ```
    #[must_use]
    pub fn allow_standby(mut self) -> Self {
        self.allow_standby = true;
        self
    }
}

impl Default for VaultReady {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Step for VaultReady {
    fn name(&self) -> &str {
        "vault-ready"
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.vault.validate(cx)
    }

    fn policy(&self) -> Policy {
        Policy::wait()
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let api = self
            .api
            .get_or_build(|| Api::connect(self.vault.endpoint(ctx)?, Family::Wait))?;
        let subject = "sys/health";
        let reply = api
            .send(
                Method::GET,
                &ApiPath::new([subject]),
                None,
                None,
                false,
                subject,
            )
            .await?;
        let body = &reply.body;
        let what = format!("vault at {}", api.address());
        let answer = |class, state: &str| {
            http_client::status_error(&what, reply.status, class, Some(state), &reply.headers)
        };
        let not_ready = |state: &str| answer(ErrorClass::Transient, state);
        let never_ready = |state: &str| answer(ErrorClass::Permanent, state);
        let state = match reply.status.as_u16() {
            200 => "active",
            429 if self.allow_standby => "standby",
            473 if self.allow_standby => "performance standby",
            429 => {
                return Err(not_ready(
                    "vault is a standby node (allow_standby counts it as ready)",
                ));
            }
            473 => {
                return Err(not_ready(
                    "vault is a performance standby node (allow_standby counts it as ready)",
                ));
            }
            // These never change by themselves: failing now beats waiting for the timeout.
            472 => {
                return Err(never_ready(
                    "vault is a disaster-recovery secondary, which serves no requests until it \
                     is promoted; point VAULT_ADDR at the primary cluster",
                ));
            }
            530 => {
                return Err(never_ready(
                    "this vault node was removed from its cluster and will not rejoin by \
                     itself; point VAULT_ADDR at a node of the cluster",
                ));
            }
            474 => {
                return Err(not_ready(
                    "vault is a standby node that cannot reach the active node",
                ));
            }
            501 => return Err(not_ready("vault is not initialized")),
            503 => return Err(not_ready("vault is sealed")),
            // Not one of Vault's health answers: an ingress or proxy in front of a Vault that
            // is starting (a 404 until its rules load, a 502). A wait polls on, as HttpWait
            // does, except for refused credentials.
            _ => return Err(error::classify_reply(&reply, subject, Family::Wait)),
        };
        // A 200 from something that is not Vault (a proxy's error page) must not count.
        if body["initialized"] != Value::Bool(true) || body["sealed"] != Value::Bool(false) {
            return Err(StepError::transient(format!(
                "vault at {}: sys/health answered {} without initialized=true and sealed=false",
                api.address(),
                reply.status.as_u16()
            )));
        }
        tracing::info!(
            state,
            version = body["version"].as_str(),
            cluster = body["cluster_name"].as_str(),
            "vault is ready"
        );
        Ok(())
    }
}
