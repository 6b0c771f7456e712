//! `KvRead`: reads a secret from a KV secrets engine, version 1 or 2, and publishes it for
//! templates and/or writes it to files.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use init_core::{Context, Step, StepError, ValidateContext, async_trait};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value};

use super::client::{ApiPath, Reply, VaultSession, validate_path};
use super::error;
use super::files::{FileOut, write_all};
use crate::atomic::validate_mode;

/// Which KV engine API the mount speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    V1,
    V2,
}

/// What to write where.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    /// One field's value, raw (a string as its bytes, anything else as JSON).
    Field(String, PathBuf),
    /// All (chosen) fields as a JSON object.
    Json(PathBuf),
    /// All (chosen) fields as `NAME="value"` lines.
    Env(PathBuf),
}

impl Output {
    fn path(&self) -> &PathBuf {
        match self {
            Self::Field(_, p) | Self::Json(p) | Self::Env(p) => p,
        }
    }
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
/// The latest version; every field; file mode `0o600`; step name `vault-kv:<mount>/<path>`.
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
/// assert_eq!(read.name(), "vault-kv:secret/orders/db");
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
    fields: Option<Vec<String>>,
    plain_fields: Vec<String>,
    publish: Option<String>,
    outputs: Vec<Output>,
    mode: u32,
}

impl KvRead {
    /// Reads `path` from the KV version 2 engine mounted at `mount`.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db").publish_secret("db");
    /// # let _ = read;
    /// ```
    pub fn v2(mount: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(Engine::V2, mount.into(), path.into())
    }

    /// Reads `path` from the KV version 1 engine mounted at `mount`.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v1("kv", "orders/db").write_json("/secrets/db.json");
    /// # let _ = read;
    /// ```
    pub fn v1(mount: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(Engine::V1, mount.into(), path.into())
    }

    fn new(engine: Engine, mount: String, path: String) -> Self {
        let name = format!(
            "vault-kv:{}/{}",
            mount.trim_matches('/'),
            path.trim_matches('/')
        );
        Self {
            name,
            engine,
            mount,
            path,
            version: None,
            fields: None,
            plain_fields: Vec::new(),
            publish: None,
            outputs: Vec::new(),
            mode: 0o600,
        }
    }

    /// Reads this version (KV version 2 only) instead of the latest.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db").version(3).publish_secret("db");
    /// # let _ = read;
    /// ```
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
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.fields.get_or_insert_with(Vec::new).push(field.into());
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
    pub fn fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields
            .get_or_insert_with(Vec::new)
            .extend(fields.into_iter().map(Into::into));
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
        self.plain_fields.extend(fields.into_iter().map(Into::into));
        self
    }

    /// Publishes the (chosen) fields as a secret JSON object under `name`, for later steps and
    /// templates (`{{ values.<name>.<field> }}`).
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db").publish_secret("db");
    /// # let _ = read;
    /// ```
    pub fn publish_secret(mut self, name: impl Into<String>) -> Self {
        self.publish = Some(name.into());
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
    pub fn write_field(mut self, field: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.outputs.push(Output::Field(field.into(), path.into()));
        self
    }

    /// Writes the (chosen) fields to `path` as a JSON object.
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db").write_json("/secrets/db.json");
    /// # let _ = read;
    /// ```
    pub fn write_json(mut self, path: impl Into<PathBuf>) -> Self {
        self.outputs.push(Output::Json(path.into()));
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
    pub fn write_env(mut self, path: impl Into<PathBuf>) -> Self {
        self.outputs.push(Output::Env(path.into()));
        self
    }

    /// Sets the mode of the files written (default `0o600`).
    ///
    /// ```
    /// let read = init_steps::vault::KvRead::v2("secret", "orders/db")
    ///     .write_json("/secrets/db.json")
    ///     .mode(0o640);
    /// # let _ = read;
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
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

    fn files(&self, data: &Map<String, Value>, subject: &str) -> Result<Vec<FileOut>, StepError> {
        self.outputs
            .iter()
            .map(|output| {
                let bytes = match output {
                    Output::Field(field, _) => match data.get(field) {
                        Some(Value::String(s)) => s.clone().into_bytes(),
                        Some(other) => other.to_string().into_bytes(),
                        None => return Err(missing_field(subject, field, data)),
                    },
                    Output::Json(_) => {
                        let mut bytes = serde_json::to_vec_pretty(data)
                            .map_err(|e| StepError::permanent(subject.to_owned()).with_source(e))?;
                        bytes.push(b'\n');
                        bytes
                    }
                    Output::Env(_) => env_file(data, subject)?.into_bytes(),
                };
                Ok(FileOut {
                    path: output.path().clone(),
                    bytes,
                    mode: self.mode,
                })
            })
            .collect()
    }
}

fn missing_field(subject: &str, field: &str, data: &Map<String, Value>) -> StepError {
    let present: Vec<&str> = data.keys().map(String::as_str).collect();
    StepError::permanent(format!(
        "{subject}: no field \"{field}\" (fields: {})",
        if present.is_empty() {
            "none".to_owned()
        } else {
            present.join(", ")
        }
    ))
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `NAME="value"` lines, sorted by name, escaped for a POSIX shell's double quotes.
fn env_file(data: &Map<String, Value>, subject: &str) -> Result<String, StepError> {
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        if !is_env_name(name) {
            return Err(StepError::permanent(format!(
                "{subject}: field \"{name}\" cannot be a .env name: expected letters, digits and \
                 '_', not starting with a digit"
            )));
        }
        let value = match &data[name] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            if matches!(c, '\\' | '"' | '$' | '`') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push_str("\"\n");
    }
    Ok(out)
}

#[async_trait]
impl Step for KvRead {
    fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        let subject = self.subject();
        validate_path(&self.mount, &format!("{subject}: kv mount"), false)?;
        validate_path(&self.path, &format!("{subject}: kv path"), false)?;
        validate_mode(self.mode, &subject)?;
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
        if self.publish.is_none() && self.outputs.is_empty() {
            return Err(StepError::invalid(format!(
                "{subject}: nothing to do: expected publish_secret, write_field, write_json or write_env"
            )));
        }
        if self.publish.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(StepError::invalid(format!(
                "{subject}: publish_secret(\"\"): expected a name"
            )));
        }
        if self.plain_fields.iter().any(String::is_empty) {
            return Err(StepError::invalid(format!(
                "{subject}: plain_fields: expected field names, got \"\""
            )));
        }
        if let Some(fields) = &self.fields {
            if fields.iter().any(|f| f.is_empty()) {
                return Err(StepError::invalid(format!(
                    "{subject}: field \"\": expected a field name"
                )));
            }
            for output in &self.outputs {
                if let Output::Field(field, _) = output
                    && !fields.contains(field)
                {
                    return Err(StepError::invalid(format!(
                        "{subject}: write_field(\"{field}\"): expected one of the chosen fields ({})",
                        fields.join(", ")
                    )));
                }
            }
        }
        let mut seen = HashSet::new();
        for output in &self.outputs {
            let path = output.path();
            if path.as_os_str().is_empty() {
                return Err(StepError::invalid(format!(
                    "{subject}: file path \"\": expected a path"
                )));
            }
            if !seen.insert(path) {
                return Err(StepError::invalid(format!(
                    "{subject}: {} is written twice: expected one output per file",
                    path.display()
                )));
            }
        }
        Ok(())
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
        let data = match &self.fields {
            None => data,
            Some(fields) => fields
                .iter()
                .map(|f| match data.get(f) {
                    Some(v) => Ok((f.clone(), v.clone())),
                    None => Err(missing_field(&subject, f, &data)),
                })
                .collect::<Result<Map<_, _>, _>>()?,
        };
        // Registered before anything else happens, under the name it is published as (so the
        // warning about short values names the same paths as the publish).
        let secret: Map<String, Value> = data
            .iter()
            .filter(|(field, _)| !self.plain_fields.contains(field))
            .map(|(field, value)| (field.clone(), value.clone()))
            .collect();
        ctx.register_secret_value(
            self.publish.as_deref().unwrap_or(&subject),
            &Value::Object(secret),
        );
        let files = self.files(&data, &subject)?;
        let written: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
        write_all(files).await?;
        let fields = data.len();
        if let Some(name) = &self.publish {
            ctx.publish_secret_except(name.clone(), Value::Object(data), &self.plain_fields);
        }
        tracing::info!(
            secret = %subject,
            version,
            fields,
            published = self.publish.as_deref(),
            files = ?written,
            "read vault secret"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_files_are_sorted_and_shell_escaped() {
        let data = json!({"B": "x\"$`\\y\nz", "A": 5, "_c": true});
        let Value::Object(map) = data else {
            unreachable!()
        };
        assert_eq!(
            env_file(&map, "s").unwrap(),
            "A=\"5\"\nB=\"x\\\"\\$\\`\\\\y\nz\"\n_c=\"true\"\n"
        );
    }

    #[test]
    fn env_files_refuse_names_a_shell_cannot_read() {
        let Value::Object(map) = json!({"db-password": "x"}) else {
            unreachable!()
        };
        let err = env_file(&map, "secret/db").unwrap_err();
        assert!(err.is_permanent());
        assert!(err.to_string().contains("\"db-password\""));
        assert!(!err.to_string().contains("\"x\""));
    }

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
