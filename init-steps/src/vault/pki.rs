//! `PkiIssue`: issues a certificate and private key from a PKI secrets engine role, writes them
//! to files and publishes them.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use init_core::{Context, Publication, Step, StepError, ValidateContext, async_trait};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiPath, VaultSession, validate_path};
use super::pki_files::PkiFiles;
use super::pki_reply::{Issued, PUBLISHED_KEYS, rfc3339, seconds_between, string_field};
use crate::support::file_output::file_output_setters;

/// The longest `ttl` asked for: far past any role's `max_ttl`, well inside what Vault parses
/// (Go's durations end at 292 years).
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Issues a certificate and its private key from a role of the PKI secrets engine:
/// `POST /v1/<mount>/issue/<role>`
/// (<https://developer.hashicorp.com/vault/api-docs/secret/pki#generate-certificate-and-key>).
///
/// Vault makes the key; it exists only in this reply, so the step writes it (mode `0o600`) and
/// the certificate and CA chain files **together**: they must sit in one directory, where
/// they are written into a fresh timestamped directory and swapped in by renaming a `..data`
/// symlink (the Kubernetes volume pattern; `tls.crt -> ..data/tls.crt`), so a reader, or a
/// SIGTERM in between, never pairs a new key with an old certificate. Validation refuses
/// files in different directories and names starting with `..`. A chain file alone is
/// written atomically on its own. It publishes the public
/// parts under the [`publish`](Self::publish) name (`certificate`, `issuing_ca`, `ca_chain`,
/// `serial_number`, `expiration`) and the private key, as a secret, under `<name>_key`; and logs
/// the serial number and when the certificate expires. The key is registered with the
/// redactor and never logged.
///
/// It uses the [`VaultSession`] a login step left in the context (or `VAULT_ADDR` and
/// `VAULT_TOKEN` when there is none). Errors are classified as for [`KvRead`](super::KvRead).
///
/// # Default
///
/// Mount `pki`; the role's TTL; certificate and chain files mode `0o644`, the key `0o600`;
/// step name `vault-pki <mount>/<role>`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use init_core::Step;
/// use init_steps::vault::PkiIssue;
///
/// let issue = PkiIssue::new("orders", "orders.prod.svc")
///     .alt_names(["orders", "orders.prod"])
///     .ip_sans(["10.0.0.7"])
///     .ttl(Duration::from_secs(24 * 3600))
///     .certificate_file("/tls/tls.crt")
///     .private_key_file("/tls/tls.key")
///     .ca_chain_file("/tls/ca.crt")
///     .publish("tls");
/// assert_eq!(issue.name(), "vault-pki pki/orders");
/// assert!(issue.validate(&init_core::ValidateContext::process()).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct PkiIssue {
    name: String,
    mount: String,
    role: String,
    common_name: String,
    alt_names: Vec<String>,
    ip_sans: Vec<String>,
    ttl: Option<Duration>,
    files: PkiFiles,
    publish: Option<String>,
}

impl PkiIssue {
    /// Issues a certificate for `common_name` from `role` of the engine mounted at `pki`.
    ///
    /// ```
    /// let issue = init_steps::vault::PkiIssue::new("web", "web.example.com").publish("tls");
    /// # let _ = issue;
    /// ```
    #[must_use]
    pub fn new(role: impl Into<String>, common_name: impl Into<String>) -> Self {
        let role = role.into();
        Self {
            name: step_name("pki", &role),
            mount: "pki".to_owned(),
            role,
            common_name: common_name.into(),
            alt_names: Vec::new(),
            ip_sans: Vec::new(),
            ttl: None,
            files: PkiFiles::default(),
            publish: None,
        }
    }

    /// Uses the PKI engine mounted at `mount` (default `pki`).
    ///
    /// ```
    /// let issue = init_steps::vault::PkiIssue::new("web", "web.example.com").mount("pki_int").publish("tls");
    /// # let _ = issue;
    /// ```
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self.name = step_name(&self.mount, &self.role);
        self
    }

    /// Adds DNS subject alternative names (Vault's `alt_names`).
    ///
    /// ```
    /// let issue = init_steps::vault::PkiIssue::new("web", "web.example.com").alt_names(["www.example.com"]);
    /// # let _ = issue;
    /// ```
    #[must_use]
    pub fn alt_names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.alt_names.extend(names.into_iter().map(Into::into));
        self
    }

    /// Adds IP subject alternative names (Vault's `ip_sans`).
    ///
    /// ```
    /// let issue = init_steps::vault::PkiIssue::new("web", "web.example.com").ip_sans(["127.0.0.1"]);
    /// # let _ = issue;
    /// ```
    #[must_use]
    pub fn ip_sans<I, S>(mut self, ips: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ip_sans.extend(ips.into_iter().map(Into::into));
        self
    }

    /// Asks for this lifetime (Vault caps it at the role's `max_ttl`); at most 100 years,
    /// checked by validation.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let issue = init_steps::vault::PkiIssue::new("web", "web.example.com").ttl(Duration::from_secs(3600));
    /// # let _ = issue;
    /// ```
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Writes the certificate (PEM) to `path`.
    ///
    /// ```
    /// let issue = init_steps::vault::PkiIssue::new("web", "web.example.com")
    ///     .certificate_file("/tls/tls.crt")
    ///     .private_key_file("/tls/tls.key");
    /// # let _ = issue;
    /// ```
    #[must_use]
    pub fn certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.certificate = Some(path.into());
        self
    }

    /// Writes the private key (PEM) to `path`, mode `0o600` unless [`key_mode`](Self::key_mode)
    /// says otherwise.
    ///
    /// ```
    /// let issue = init_steps::vault::PkiIssue::new("web", "web.example.com")
    ///     .certificate_file("/tls/tls.crt")
    ///     .private_key_file("/tls/tls.key");
    /// # let _ = issue;
    /// ```
    #[must_use]
    pub fn private_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.private_key = Some(path.into());
        self
    }

    /// Writes the CA chain (PEM; Vault's `ca_chain`, or `issuing_ca` when the chain is empty)
    /// to `path`.
    ///
    /// ```
    /// let issue = init_steps::vault::PkiIssue::new("web", "web.example.com").ca_chain_file("/tls/ca.crt");
    /// # let _ = issue;
    /// ```
    #[must_use]
    pub fn ca_chain_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.ca_chain = Some(path.into());
        self
    }

    /// Publishes the certificate's public parts under `name` and the private key, as a
    /// secret, under `<name>_key` (templates: `{{ values.tls.certificate }}`,
    /// `{{ values.tls_key }}`).
    ///
    /// ```
    /// let issue = init_steps::vault::PkiIssue::new("web", "web.example.com").publish("tls");
    /// # let _ = issue;
    /// ```
    #[must_use]
    pub fn publish(mut self, name: impl Into<String>) -> Self {
        self.publish = Some(name.into());
        self
    }

    /// Sets the mode of the private key file (default `0o600`).
    ///
    /// ```
    /// let issue = init_steps::vault::PkiIssue::new("web", "web.example.com")
    ///     .certificate_file("/tls/tls.crt")
    ///     .private_key_file("/tls/tls.key")
    ///     .key_mode(0o640);
    /// # let _ = issue;
    /// ```
    #[must_use]
    pub fn key_mode(mut self, mode: u32) -> Self {
        self.files.set_key_mode(mode);
        self
    }

    fn subject(&self) -> String {
        format!(
            "{}/issue/{}",
            self.mount.trim_matches('/'),
            self.role.trim_matches('/')
        )
    }

    fn request_body(&self) -> Value {
        let mut body = json!({ "common_name": self.common_name, "format": "pem" });
        if !self.alt_names.is_empty() {
            body["alt_names"] = self.alt_names.join(",").into();
        }
        if !self.ip_sans.is_empty() {
            body["ip_sans"] = self.ip_sans.join(",").into();
        }
        if let Some(ttl) = self.ttl {
            body["ttl"] = format!("{}s", ttl.as_secs()).into();
        }
        body
    }
}

/// `vault-pki <mount>/<role>`.
fn step_name(mount: &str, role: &str) -> String {
    format!(
        "vault-pki {}/{}",
        mount.trim_matches('/'),
        role.trim_matches('/')
    )
}

file_output_setters!(
    PkiIssue,
    files,
    "vault::PkiIssue::new(\"web\", \"web.example.com\").certificate_file(\"/tls/tls.crt\").private_key_file(\"/tls/tls.key\")",
    "the certificate and CA chain files",
    "the certificate, key and CA chain files",
    "`0o644`; the key file's is [`key_mode`](Self::key_mode), `0o600` by default."
);

#[async_trait]
impl Step for PkiIssue {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        let publications = self.publish.iter().flat_map(|name| {
            [
                Publication::new(name.as_str()).with_keys(PUBLISHED_KEYS),
                Publication::new(format!("{name}_key")),
            ]
        });
        Some(publications.collect())
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        VaultSession::check_environment(cx)?;
        let subject = self.subject();
        validate_path(&self.mount, &format!("{subject}: pki mount"), false)?;
        validate_path(&self.role, &format!("{subject}: pki role"), false)?;
        if self.common_name.trim().is_empty() {
            return Err(StepError::invalid(format!(
                "{subject}: common name \"\": expected a host name"
            )));
        }
        for ip in &self.ip_sans {
            if ip.parse::<IpAddr>().is_err() {
                return Err(StepError::invalid(format!(
                    "{subject}: ip_sans \"{ip}\": expected an IP address"
                )));
            }
        }
        if let Some(name) = self
            .alt_names
            .iter()
            .find(|n| n.trim().is_empty() || n.contains(','))
        {
            return Err(StepError::invalid(format!(
                "{subject}: alt_names \"{name}\": expected a DNS name without commas"
            )));
        }
        if self.ttl.is_some_and(|t| t.as_secs() == 0) {
            return Err(StepError::invalid(format!(
                "{subject}: ttl: expected one second or more"
            )));
        }
        if let Some(ttl) = self.ttl.filter(|t| *t > MAX_TTL) {
            return Err(StepError::invalid(format!(
                "{subject}: ttl = {ttl:?}: expected at most 100 years"
            )));
        }
        self.files.validate(&subject)?;
        if self.files.is_empty() && self.publish.is_none() {
            return Err(StepError::invalid(format!(
                "{subject}: nothing to do: expected certificate_file and private_key_file, \
                 ca_chain_file or publish"
            )));
        }
        if self.publish.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(StepError::invalid(format!(
                "{subject}: publish(\"\"): expected a name"
            )));
        }
        Ok(())
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let subject = self.subject();
        let session = VaultSession::current(ctx)?;
        let path = ApiPath::new([self.mount.as_str(), "issue", self.role.as_str()]);
        let reply = session
            .send(Method::POST, &path, Some(&self.request_body()), &subject)
            .await?
            .success(&subject)?;
        let data = &reply.body["data"];
        let private_key = string_field(data, "private_key", &subject)?;
        ctx.register_secret(private_key);
        reply.log_warnings(&subject);
        let issued = Issued::parse(data, &subject)?;
        if let Some(path) = self
            .files
            .ca_chain
            .as_ref()
            .filter(|_| issued.chain.is_empty())
        {
            return Err(StepError::permanent(format!(
                "{subject}: vault's reply has no issuing_ca or ca_chain to write to {}",
                path.display()
            )));
        }
        let written = (self.files)
            .write(&self.name, private_key, issued.certificate, &issued.chain)
            .await?;
        let (serial, expiration) = (issued.serial, issued.expiration);
        if let Some(name) = &self.publish {
            ctx.publish(name.clone(), issued.public());
            ctx.publish_secret(format!("{name}_key"), private_key);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        tracing::info!(
            role = %subject,
            common_name = %self.common_name,
            serial,
            expires_at = expiration.map(rfc3339).as_deref(),
            expires_in_s = expiration.map(|e| seconds_between(now, e)),
            files = ?written,
            "issued certificate"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_beyond_100_years_is_invalid() {
        let err = PkiIssue::new("web", "w")
            .publish("tls")
            .ttl(Duration::MAX)
            .validate(&ValidateContext::process())
            .unwrap_err();
        assert!(err.is_invalid());
        assert!(
            err.to_string()
                .ends_with("ttl = 18446744073709551615.999999999s: expected at most 100 years"),
            "{err}"
        );
        assert!(
            PkiIssue::new("web", "w")
                .publish("tls")
                .ttl(MAX_TTL)
                .validate(&ValidateContext::process())
                .is_ok()
        );
    }

    #[test]
    fn the_request_names_sans_and_ttl_as_vault_expects() {
        let body = PkiIssue::new("web", "web.example.com")
            .alt_names(["a.example.com", "b.example.com"])
            .ip_sans(["10.0.0.1"])
            .ttl(Duration::from_secs(90))
            .request_body();
        assert_eq!(
            body,
            json!({"common_name": "web.example.com", "format": "pem",
                   "alt_names": "a.example.com,b.example.com", "ip_sans": "10.0.0.1", "ttl": "90s"})
        );
    }

    #[test]
    fn validation_refuses_bad_input() {
        let ok = PkiIssue::new("web", "w").publish("tls");
        assert!(ok.validate(&ValidateContext::process()).is_ok());
        assert!(
            PkiIssue::new("web", "w")
                .validate(&ValidateContext::process())
                .is_err(),
            "nothing to do"
        );
        assert!(
            ok.clone()
                .ip_sans(["nope"])
                .validate(&ValidateContext::process())
                .is_err()
        );
        assert!(
            ok.clone()
                .ttl(Duration::ZERO)
                .validate(&ValidateContext::process())
                .is_err()
        );
        assert!(
            ok.clone()
                .certificate_file("/c")
                .validate(&ValidateContext::process())
                .is_err(),
            "a cert needs its key"
        );
        let split = ok
            .clone()
            .certificate_file("/tls/tls.crt")
            .private_key_file("/keys/tls.key")
            .validate(&ValidateContext::process())
            .unwrap_err();
        assert!(split.is_invalid());
        assert_eq!(
            split.to_string(),
            "pki/issue/web: expected the certificate, key and chain files in one directory \
             (they are replaced together, through a ..data symlink)"
        );
        assert!(
            ok.clone()
                .certificate_file("/tls/..crt")
                .private_key_file("/tls/tls.key")
                .validate(&ValidateContext::process())
                .is_err(),
            "names starting with .. are the set's own"
        );
        assert!(
            ok.certificate_file("/c")
                .private_key_file("/c")
                .validate(&ValidateContext::process())
                .is_err()
        );
    }
}
