//! `VaultRead`: reads any logical path (a dynamic secret such as `database/creds/<role>`, a
//! transit decrypt, a custom engine) and publishes the result as a secret, logging its lease.

use std::path::PathBuf;

use init_core::{Context, Publication, Step, StepError, ValidateContext, async_trait};
use reqwest::Method;
use serde_json::Value;

use super::client::{ApiPath, VaultSession, validate_path};
use super::output::SecretOutputs;
use crate::support::file_output::file_output_setters;

/// The leases the plan's Vault reads hold, in the order they were taken. A lease lives only as
/// long as the token that created it: [`VaultRevoke`](super::VaultRevoke) reads this and leaves
/// the token alone while it holds one.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeldLeases(pub(crate) Vec<String>);

/// Reads one logical path of Vault's API and publishes the reply's `data` as a secret (for
/// templates: `{{ values.pg.password }}`) and/or writes it to files: a dynamic secret
/// (`database/creds/<role>`, `aws/creds/<role>`), a transit decrypt, any engine's read.
///
/// - `GET /v1/<path>` by default; [`post`](Self::post) sends `POST /v1/<path>` with a JSON body
///   instead (transit's `decrypt`, engines that issue on write). See
///   <https://developer.hashicorp.com/vault/api-docs/secret/databases#generate-credentials>.
/// - The reply's `data` object is the secret: every value is registered with the redactor,
///   published as a secret and/or written to files, as [`KvRead`](super::KvRead) does.
/// - A dynamic secret comes with a lease: the step logs its ID, TTL and whether it is
///   renewable, never the secret's values. The lease is revoked with the token that created it,
///   so a [`VaultRevoke`](super::VaultRevoke) later in the plan leaves that token alone (it
///   expires with its own TTL): give the login role a `token_ttl` at least as long as the
///   credentials must live, or renew the lease from the application.
///
/// It uses the [`VaultSession`] a login step left in the context (or `VAULT_ADDR` and
/// `VAULT_TOKEN` when there is none).
///
/// # Default
///
/// `GET`; every field of `data`; file mode `0o600`; step name `vault-read <path>`.
///
/// # Errors (at run time)
///
/// As [`KvRead`](super::KvRead): 400, 403, 404, 405 permanent, naming the path with Vault's own
/// errors; 429, 5xx and connection failures transient. A reply with no `data` object is
/// permanent.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::vault::VaultRead;
///
/// let creds = VaultRead::new("database/creds/orders").publish_secret("pg");
/// assert_eq!(creds.name(), "vault-read database/creds/orders");
/// assert!(creds.validate(&init_core::ValidateContext::process()).is_ok());
///
/// let key = VaultRead::new("transit/decrypt/orders")
///     .post(serde_json::json!({"ciphertext": "vault:v1:..."}))
///     .field("plaintext")
///     .write_field("plaintext", "/secrets/data-key.b64");
/// assert!(key.validate(&init_core::ValidateContext::process()).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct VaultRead {
    name: String,
    path: String,
    body: Option<Value>,
    out: SecretOutputs,
}

impl VaultRead {
    /// Reads `path` (below `/v1/`, such as `database/creds/orders`).
    ///
    /// ```
    /// let read = init_steps::vault::VaultRead::new("database/creds/orders").publish_secret("pg");
    /// # let _ = read;
    /// ```
    pub fn new(path: impl Into<String>) -> Self {
        let path = path.into();
        Self {
            name: format!("vault-read {}", path.trim_matches('/')),
            path,
            body: None,
            out: SecretOutputs::new(),
        }
    }

    /// Sends `POST` with this JSON body instead of `GET` (transit's `decrypt`, say). The body is
    /// never logged, but it is not registered as a secret either: pass secrets in it only if
    /// they are published or registered elsewhere.
    ///
    /// ```
    /// let read = init_steps::vault::VaultRead::new("transit/decrypt/orders")
    ///     .post(serde_json::json!({"ciphertext": "vault:v1:abc"}))
    ///     .publish_secret("key");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn post(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Uses this field of `data` (call again for more); without it, every field is used.
    ///
    /// ```
    /// let read = init_steps::vault::VaultRead::new("database/creds/orders")
    ///     .field("password")
    ///     .publish_secret("pg");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.out.field(field.into());
        self
    }

    /// Uses these fields of `data`; without them, every field is used.
    ///
    /// ```
    /// let read = init_steps::vault::VaultRead::new("database/creds/orders")
    ///     .fields(["username", "password"])
    ///     .publish_secret("pg");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.out.fields(fields.into_iter().map(Into::into));
        self
    }

    /// Marks fields as not secret (the `username` of database credentials): their values stay
    /// readable in logs and errors, as [`KvRead::plain_fields`](super::KvRead::plain_fields).
    ///
    /// ```
    /// let read = init_steps::vault::VaultRead::new("database/creds/orders")
    ///     .plain_fields(["username"])
    ///     .publish_secret("pg");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn plain_fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.out.plain_fields(fields.into_iter().map(Into::into));
        self
    }

    /// Publishes the (chosen) fields as a secret JSON object under `name`
    /// (`{{ values.<name>.<field> }}`).
    ///
    /// ```
    /// let read = init_steps::vault::VaultRead::new("database/creds/orders").publish_secret("pg");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn publish_secret(mut self, name: impl Into<String>) -> Self {
        self.out.publish(name.into());
        self
    }

    /// Writes one field's value to `path`: a string as its bytes, any other value as JSON.
    ///
    /// ```
    /// let read = init_steps::vault::VaultRead::new("database/creds/orders")
    ///     .write_field("password", "/secrets/pg-password");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn write_field(mut self, field: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.out.write_field(field.into(), path.into());
        self
    }

    /// Writes the (chosen) fields to `path` as a JSON object.
    ///
    /// ```
    /// let read = init_steps::vault::VaultRead::new("database/creds/orders")
    ///     .write_json("/secrets/pg.json");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn write_json(mut self, path: impl Into<PathBuf>) -> Self {
        self.out.write_json(path.into());
        self
    }

    /// Writes the (chosen) fields to `path` as a `.env` file (see
    /// [`KvRead::write_env`](super::KvRead::write_env)).
    ///
    /// ```
    /// let read = init_steps::vault::VaultRead::new("database/creds/orders")
    ///     .write_env("/secrets/pg.env");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn write_env(mut self, path: impl Into<PathBuf>) -> Self {
        self.out.write_env(path.into());
        self
    }

    fn subject(&self) -> &str {
        self.path.trim_matches('/')
    }
}

file_output_setters!(
    VaultRead,
    out.file,
    "vault::VaultRead::new(\"database/creds/orders\").write_json(\"/secrets/pg.json\")",
    "the files written",
    "the files written",
    "`0o600` (the data is secret)."
);

#[async_trait]
impl Step for VaultRead {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(self.out.publications())
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        VaultSession::check_environment(cx)?;
        let subject = self.subject();
        validate_path(&self.path, &format!("{subject}: vault path"), false)?;
        if self.body.as_ref().is_some_and(|b| !b.is_object()) {
            return Err(StepError::invalid(format!(
                "{subject}: post: expected a JSON object"
            )));
        }
        self.out.validate(subject)
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let subject = self.subject();
        let session = VaultSession::current(ctx)?;
        let method = if self.body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let reply = session
            .send(
                method,
                &ApiPath::new([self.path.as_str()]),
                self.body.as_ref(),
                subject,
            )
            .await?
            .success(subject)?;
        reply.log_warnings(subject);
        let Value::Object(data) = reply.body["data"].clone() else {
            return Err(StepError::permanent(format!(
                "{subject}: vault's reply has no data (is this a path that returns a secret?)"
            )));
        };
        let delivered = self.out.deliver(ctx, data, subject).await?;
        let lease_id = reply.body["lease_id"].as_str().filter(|l| !l.is_empty());
        if let Some(lease) = lease_id {
            let mut held = ctx.get::<HeldLeases>().unwrap_or_default();
            held.0.push(lease.to_owned());
            ctx.insert(held);
        }
        tracing::info!(
            path = subject,
            lease_id,
            ttl_s = reply.body["lease_duration"].as_u64().filter(|_| lease_id.is_some()),
            renewable = reply.body["renewable"].as_bool().filter(|_| lease_id.is_some()),
            fields = delivered.fields,
            published = self.out.published(),
            files = ?delivered.files,
            "read vault secret"
        );
        Ok(())
    }
}
