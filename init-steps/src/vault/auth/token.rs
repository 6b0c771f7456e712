//! [`TokenLogin`]: uses a token given to the plan (`VAULT_TOKEN`, [`Vault::token`], a file),
//! checked with `auth/token/lookup-self`.

use std::path::PathBuf;

use init_core::{Context, StepError, ValidateContext};
use reqwest::Method;

use super::login::{Connection, log_token};
use super::secret_source::{check_secret_file, read_secret_file};
use crate::vault::client::{ApiPath, TokenSource, Vault, VaultSession, no_token};

impl Vault {
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
            connection: Connection::new(self),
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
            connection: Connection::new(self),
            file: Some(path.into()),
        }
    }
}

/// Uses a token given to the plan (`VAULT_TOKEN`, [`Vault::token`] or a file); made by
/// [`Vault::token_login`] and [`Vault::token_file_login`].
///
/// The step checks the token with `auth/token/lookup-self`
/// (<https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-self>), so a bad
/// token or address fails here, and stores it in the context as a [`VaultSession`].
/// [`VaultRevoke`](crate::vault::VaultRevoke) never revokes such a token: it belongs to whoever
/// gave it.
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
    connection: Connection,
    file: Option<PathBuf>,
}

impl TokenLogin {
    /// The step's validation (see [`login_steps`](super::login::login_steps)).
    pub(super) fn check(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.connection.validate(cx)?;
        match &self.file {
            Some(path) => check_secret_file(path, "vault token file"),
            None => self.connection.vault().validate_token(cx),
        }
    }

    /// One attempt of the step.
    pub(super) async fn attempt(&self, ctx: &Context) -> Result<(), StepError> {
        let api = self.connection.api(ctx)?;
        let token = match &self.file {
            Some(path) => read_secret_file(ctx, path, "vault token file").await?,
            None => self
                .connection
                .vault()
                .resolved_token(ctx)
                .ok_or_else(no_token)?,
        };
        let session = VaultSession::new(ctx, api, token, TokenSource::Provided);
        let subject = "auth/token/lookup-self";
        let reply = session
            .send(Method::GET, &ApiPath::new([subject]), None, subject)
            .await?
            .success(subject)?;
        // `data.id` is the token itself: only the harmless fields are read.
        let data = &reply.body["data"];
        log_token(
            "using the given vault token",
            "token",
            None,
            None,
            data,
            "ttl",
        );
        ctx.insert(session);
        Ok(())
    }
}
