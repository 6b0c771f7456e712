//! [`VaultRevoke`]: revokes the token a login step of this plan made.

use init_core::{Context, Publication, Step, StepError, async_trait};
use reqwest::{Method, StatusCode};

use crate::vault::client::{ApiPath, VaultSession};
use crate::vault::error;
use crate::vault::read::HeldLeases;

/// Revokes the token a login step of this plan made (`auth/token/revoke-self`,
/// <https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-a-token-self>), so it does
/// not outlive the init container. Append it as the plan's last step.
///
/// It revokes only a token made by a login step ([`VaultSession::is_from_login`]); a token given
/// to the plan (`VAULT_TOKEN`, a file) belongs to someone else and is left alone. With no
/// session it does nothing. A token that is already invalid (403) counts as revoked. Nor does it
/// revoke a token that holds a lease a [`VaultRead`](crate::vault::VaultRead) of this plan took
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
