//! `KvRead`: reads a secret from a KV secrets engine, version 1 or 2, and publishes it for
//! templates and/or writes it to files.

use std::fmt::Write as _;
use std::path::PathBuf;

use init_core::{Context, Publication, Step, StepError, ValidateContext, async_trait};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value};

use super::client::{ApiPath, Reply, VaultSession, validate_path};
use super::error;
use super::output::SecretOutputs;
use crate::support::file_output::file_output_setters;

/// Which KV engine API the mount speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    V1,
    V2,
}

/// Reads one secret from a KV secrets engine and publishes it as a secret (for templates:
/// `{{ values.db.password }}`) and/or writes it to files.
///
/// - KV version 2: `GET /v1/<mount>/data/<path>[?version=N]`
///   (<https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-version>).
///   A deleted or destroyed version is reported as such (a permanent error).
/// - KV version 1: `GET /v1/<mount>/<path>`
///   (<https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#read-secret>).
///
/// It uses the [`VaultSession`] a login step left in the context (or `VAULT_ADDR` and
/// `VAULT_TOKEN` when there is none). The whole secret is used, or only the fields chosen with
/// [`field`](Self::field) / [`fields`](Self::fields); a chosen field that is missing is a
/// permanent error naming the fields present (never their values). Every value read is
/// registered with the redactor, published or not, except the fields marked
/// [`plain_fields`](Self::plain_fields) (a `username`), which stay readable in logs.
///
/// Files ([`write_field`](Self::write_field), [`write_json`](Self::write_json),
/// [`write_env`](Self::write_env)) are written atomically (temp file, fsync, mode, rename).
///
/// # Default
///
/// The latest version; every field; file mode `0o600`; step name `vault-kv <mount>/<path>`.
///
/// # Errors (at run time)
///
/// 400, 403, 404, 405 are permanent and name the mount and path with Vault's own errors
/// (`secret/orders/db: permission denied (403)`); 429, 5xx and connection failures are transient.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::vault::KvRead;
///
/// let read = KvRead::v2("secret", "orders/db")
///     .fields(["username", "password"])
///     .plain_fields(["username"])
///     .publish_secret("db")
///     .write_field("password", "/secrets/db-password")
///     .write_env("/secrets/db.env");
/// assert_eq!(read.name(), "vault-kv secret/orders/db");
/// assert!(read.validate(&init_core::ValidateContext::process()).is_ok());
///
/// // KV version 1 has no versions.
/// assert!(KvRead::v1("kv", "orders/db").version(2).publish_secret("db").validate(&init_core::ValidateContext::process()).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct KvRead {
    name: String,
    engine: Engine,
    mount: String,
    path: String,
    version: Option<u64>,
    out: SecretOutputs,
}

impl KvRead {
    /// Reads `path` from the KV version 2 engine mounted at `mount`.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db").publish_secret("db");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn v2(mount: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(Engine::V2, mount.into(), path.into())
    }

    /// Reads `path` from the KV version 1 engine mounted at `mount`.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v1("kv", "orders/db").write_json("/secrets/db.json");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn v1(mount: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(Engine::V1, mount.into(), path.into())
    }

    fn new(engine: Engine, mount: String, path: String) -> Self {
        let name = format!(
            "vault-kv {}/{}",
            mount.trim_matches('/'),
            path.trim_matches('/')
        );
        Self {
            name,
            engine,
            mount,
            path,
            version: None,
            out: SecretOutputs::new(),
        }
    }

    /// Reads this version (KV version 2 only) instead of the latest.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db").version(3).publish_secret("db");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Uses this field (call again for more); without it, every field is used.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db").field("password").publish_secret("db");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.out.field(field.into());
        self
    }

    /// Uses these fields; without them, every field is used.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db")
    ///     .fields(["username", "password"])
    ///     .publish_secret("db");
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

    /// Marks fields as not secret (a `username`, a host name, a port): their values are not
    /// registered with the redactor, so they stay readable in logs and errors
    /// (`password authentication failed for user "orders"`). Every other field is a secret.
    /// The published value as a whole stays secret while it holds any other field.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db")
    ///     .plain_fields(["username", "host"])
    ///     .publish_secret("db");
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

    /// Publishes the (chosen) fields as a secret JSON object under `name`, for later steps and
    /// templates (`{{ values.<name>.<field> }}`).
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db").publish_secret("db");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn publish_secret(mut self, name: impl Into<String>) -> Self {
        self.out.publish(name.into());
        self
    }

    /// Writes one field's value to `path`: a string as its bytes (no newline added), any other
    /// value as JSON.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/tls")
    ///     .write_field("key", "/secrets/tls.key");
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
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db").write_json("/secrets/db.json");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn write_json(mut self, path: impl Into<PathBuf>) -> Self {
        self.out.write_json(path.into());
        self
    }

    /// Writes the (chosen) fields to `path` as a `.env` file: one `NAME="value"` line per
    /// field, sorted by name, with `\`, `"`, `$` and `` ` `` escaped as in a POSIX shell (so
    /// `set -a; . /secrets/db.env` reads the values back exactly; newlines are kept inside the
    /// quotes). A field whose name is not a valid variable name (letters, digits, `_`, not
    /// starting with a digit) is a permanent error.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db").write_env("/secrets/db.env");
    /// # let _ = read;
    /// ```
    #[must_use]
    pub fn write_env(mut self, path: impl Into<PathBuf>) -> Self {
        self.out.write_env(path.into());
        self
    }

    /// `mount/path`, for messages.
    fn subject(&self) -> String {
        let mut subject = format!(
            "{}/{}",
            self.mount.trim_matches('/'),
            self.path.trim_matches('/')
        );
        if let Some(version) = self.version {
            let _ = write!(subject, " (version {version})");
        }
        subject
    }

    fn api_path(&self) -> ApiPath {
        match self.engine {
            Engine::V1 => ApiPath::new([self.mount.as_str(), self.path.as_str()]),
            Engine::V2 => {
                let path = ApiPath::new([self.mount.as_str(), "data", self.path.as_str()]);
                match self.version {
                    Some(version) => path.with_query("version", version),
                    None => path,
                }
            }
        }
    }

    /// The secret's fields and (v2) version from a 2xx reply.
    fn secret_data(
        &self,
        body: &Value,
        subject: &str,
    ) -> Result<(Map<String, Value>, Option<u64>), StepError> {
        let (data, version) = match self.engine {
            Engine::V1 => (&body["data"], None),
            Engine::V2 => (
                &body["data"]["data"],
                body["data"]["metadata"]["version"].as_u64(),
            ),
        };
        match data {
            Value::Object(map) => Ok((map.clone(), version)),
            _ => Err(StepError::permanent(format!(
                "{subject}: vault's reply has no secret data (is the mount KV version {}?)",
                if self.engine == Engine::V1 { 1 } else { 2 }
            ))),
        }
    }

    /// The error for a reply that is not 2xx: KV v2's 404 for a deleted or destroyed version
    /// carries the version's metadata, and a v1 read of a v2 mount carries a warning.
    fn kv_error(&self, reply: &Reply, subject: &str) -> StepError {
        let metadata = &reply.body["data"]["metadata"];
        if reply.status == StatusCode::NOT_FOUND && metadata.is_object() {
            let version = metadata["version"]
                .as_u64()
                .map_or_else(|| "the version".to_owned(), |v| format!("version {v}"));
            if metadata["destroyed"].as_bool() == Some(true) {
                return StepError::permanent(format!(
                    "{subject}: {version} was destroyed (kv v2; read another version or write a new one) (404)"
                ));
            }
            if let Some(deleted) = metadata["deletion_time"].as_str().filter(|t| !t.is_empty()) {
                return StepError::permanent(format!(
                    "{subject}: {version} was deleted at {deleted} (kv v2; undelete it or read another version) (404)"
                ));
            }
        }
        let warned_v2 = reply.warnings().iter().any(|w| w.contains("versioned K/V"));
        if self.engine == Engine::V1 && warned_v2 {
            return StepError::permanent(format!(
                "{subject}: the mount is KV version 2: use KvRead::v2 ({})",
                reply.status.as_u16()
            ));
        }
        error::from_reply(reply, subject)
    }
}

file_output_setters!(
    KvRead,
    out.file,
    "vault::KvRead::v2(\"secret\", \"orders/db\").write_json(\"/secrets/db.json\")",
    "the files written",
    "the files written",
    "`0o600` (the data is secret)."
);

#[async_trait]
impl Step for KvRead {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(self.out.publications())
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        VaultSession::check_environment(cx)?;
        let subject = self.subject();
        validate_path(&self.mount, &format!("{subject}: kv mount"), false)?;
        validate_path(&self.path, &format!("{subject}: kv path"), false)?;
        match (self.engine, self.version) {
            (Engine::V1, Some(_)) => {
                return Err(StepError::invalid(format!(
                    "{subject}: version: expected no version for KV version 1 (use KvRead::v2)"
                )));
            }
            (Engine::V2, Some(0)) => {
                return Err(StepError::invalid(format!(
                    "{subject}: version 0: expected a version of 1 or more"
                )));
            }
            _ => {}
        }
        self.out.validate(&subject)
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let subject = self.subject();
        let session = VaultSession::current(ctx)?;
        let reply = session
            .send(Method::GET, &self.api_path(), None, &subject)
            .await?;
        if !reply.status.is_success() {
            return Err(self.kv_error(&reply, &subject));
        }
        reply.log_warnings(&subject);
        let (data, version) = self.secret_data(&reply.body, &subject)?;
        let delivered = self.out.deliver(ctx, data, &subject).await?;
        tracing::info!(
            secret = %subject,
            version,
            fields = delivered.fields,
            published = self.out.published(),
            files = ?delivered.files,
            "read vault secret"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_secret_and_the_input() {
        let err = KvRead::v2("secret", "")
            .publish_secret("x")
            .validate(&ValidateContext::process())
            .unwrap_err();
        assert!(err.is_invalid());
        assert!(
            KvRead::v2("secret", "a")
                .validate(&ValidateContext::process())
                .is_err(),
            "nothing to do"
        );
        assert!(
            KvRead::v2("secret", "a")
                .version(0)
                .publish_secret("x")
                .validate(&ValidateContext::process())
                .is_err()
        );
        let err = KvRead::v2("secret", "a")
            .field("user")
            .write_field("password", "/x")
            .validate(&ValidateContext::process())
            .unwrap_err();
        assert!(err.to_string().contains("write_field(\"password\")"));
        assert!(
            KvRead::v2("secret", "a")
                .write_json("/x")
                .write_env("/x")
                .validate(&ValidateContext::process())
                .is_err()
        );
        assert!(
            KvRead::v2("secret", "a")
                .write_json("/x")
                .mode(0o10000)
                .validate(&ValidateContext::process())
                .is_err()
        );
    }

    #[test]
    fn v2_paths_carry_data_and_the_version() {
        let read = KvRead::v2("/secret/", "orders/db").version(3);
        assert_eq!(
            read.api_path().to_string(),
            "secret/data/orders/db?version=3"
        );
        assert_eq!(KvRead::v1("kv", "a/b").api_path().to_string(), "kv/a/b");
    }
}
