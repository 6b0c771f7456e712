//! [`Vault`]: where Vault is and how to reach it, from builder values and the Vault CLI's
//! environment variables, checked at validation and resolved into an [`Endpoint`] at run time;
//! see <https://developer.hashicorp.com/vault/docs/commands#environment-variables>.

use std::path::PathBuf;

use init_core::{Context, StepError, ValidateContext};
use url::Url;

use super::secret::Secret;
use crate::support::http_client::{self, Pem, TlsOptions};

/// Where Vault is and how to reach it: the settings the Vault CLI reads from its environment,
/// each of which a builder method can set instead.
///
/// Values not set with a builder method are read through the step's [`Context`] (so tests can
/// inject an environment), and checked by [`Plan::validate`](init_core::Plan::validate) before
/// any step runs (exit 2), each error naming the variable and what was expected:
///
/// | variable | builder | meaning |
/// |---|---|---|
/// | `VAULT_ADDR` | [`address`](Self::address) | the address, such as `https://vault.vault:8200` (required) |
/// | `VAULT_TOKEN` | [`token`](Self::token) | the token of [`token_login`](Self::token_login), and of Vault steps that run with no login step before them |
/// | `VAULT_NAMESPACE` | [`namespace`](Self::namespace) | the Vault Enterprise namespace, sent as `X-Vault-Namespace` |
/// | `VAULT_CACERT` | [`ca_file`](Self::ca_file) | a PEM file of CA certificates trusted besides the system roots |
/// | `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY` | [`client_cert`](Self::client_cert) | a client certificate and key for mutual TLS |
/// | `VAULT_SKIP_VERIFY` | [`insecure`](Self::insecure) | `true` turns TLS verification off (a warning is logged) |
///
/// A `Vault` makes the login steps ([`kubernetes_login`](Self::kubernetes_login),
/// [`approle_login`](Self::approle_login), [`jwt_login`](Self::jwt_login),
/// [`token_login`](Self::token_login), [`token_file_login`](Self::token_file_login)) and
/// [`ready`](Self::ready). A login step stores a [`VaultSession`](crate::vault::VaultSession)
/// in the context; the Vault steps after it ([`KvRead`](crate::vault::KvRead),
/// [`PkiIssue`](crate::vault::PkiIssue), [`VaultRevoke`](crate::vault::VaultRevoke)) use it.
/// With no login step before them, they use `Vault::from_env()` and `VAULT_TOKEN`.
///
/// At validation: a malformed `VAULT_ADDR` (`vault:8200`, `ftp://...`), a `VAULT_SKIP_VERIFY`
/// that is not a boolean, `VAULT_CLIENT_CERT` without `VAULT_CLIENT_KEY` (or the reverse), and a
/// file named by `VAULT_CACERT`, `VAULT_CLIENT_CERT` or `VAULT_CLIENT_KEY` that does not exist
/// or is not PEM are refused wherever a Vault step reads them. An unset `VAULT_ADDR` is refused
/// by the login steps and [`VaultReady`](crate::vault::VaultReady), and an unset `VAULT_TOKEN` by
/// [`token_login`](Self::token_login); the steps that use a login step's session
/// ([`KvRead`](crate::vault::KvRead), ...) cannot tell at validation whether one comes before
/// them, so they require neither. Files named by builder methods ([`ca_file`](Self::ca_file),
/// [`client_cert`](Self::client_cert)) are checked if they exist: an earlier step may
/// write them; one still missing when the step runs is a permanent error naming it.
///
/// Redirects are followed only to the same scheme, host and port: a standby node's redirect to
/// the active node is reported (and retried), never followed with the token; more than 10
/// redirects, or one from https to http, is permanent.
///
/// # Examples
///
/// ```
/// use init_steps::vault::{KvRead, Vault};
/// use init_core::Plan;
///
/// let plan = Plan::new("orders-init")
///     .step(Vault::from_env().kubernetes_login("orders"))
///     .step(KvRead::v2("secret", "orders/db").publish_secret("db"));
/// assert_eq!(plan.step_names(), ["vault-login", "vault-kv secret/orders/db"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vault {
    address: Option<String>,
    token: Option<Secret>,
    namespace: Option<String>,
    ca_file: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    insecure: bool,
}

impl Vault {
    /// A configuration read from the `VAULT_*` environment variables at run time.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env();
    /// assert_eq!(vault, init_steps::vault::Vault::default());
    /// ```
    pub fn from_env() -> Self {
        Self::default()
    }

    /// Sets the address instead of `VAULT_ADDR`.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env().address("https://vault.vault:8200");
    /// # let _ = vault;
    /// ```
    #[must_use]
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Sets the token instead of `VAULT_TOKEN` (for [`token_login`](Self::token_login)).
    /// Prefer a file or the environment: a token in the source code is a leaked token.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env().token("hvs.example");
    /// assert!(!format!("{vault:?}").contains("hvs.example"));
    /// ```
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token));
        self
    }

    /// Sets the Vault Enterprise namespace instead of `VAULT_NAMESPACE`.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env().namespace("team-a");
    /// # let _ = vault;
    /// ```
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Trusts the CA certificates of a PEM file (besides the system roots) instead of
    /// `VAULT_CACERT`.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env().ca_file("/vault/tls/ca.crt");
    /// # let _ = vault;
    /// ```
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Presents a client certificate and its private key (PEM files) instead of
    /// `VAULT_CLIENT_CERT` and `VAULT_CLIENT_KEY`.
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env()
    ///     .client_cert("/vault/tls/client.crt", "/vault/tls/client.key");
    /// # let _ = vault;
    /// ```
    #[must_use]
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Turns TLS certificate verification off, whatever `VAULT_SKIP_VERIFY` says (without
    /// this, `VAULT_SKIP_VERIFY=true` turns it off). Off is for experiments only: anyone on
    /// the path can read the token; a warning is logged each time a client is built. Prefer
    /// [`ca_file`](Self::ca_file).
    ///
    /// ```
    /// let vault = init_steps::vault::Vault::from_env().insecure();
    /// # let _ = vault;
    /// ```
    #[must_use]
    pub fn insecure(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// Checks the configuration against the plan's environment, for a step that reads it
    /// itself (a login step, [`VaultReady`](crate::vault::VaultReady)): everything
    /// [`validate_set`](Self::validate_set) checks, and an address must be given.
    pub(crate) fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        let settings = self.validate_set(cx)?;
        if settings.address.is_none() {
            return Err(no_address());
        }
        Ok(())
    }

    /// Checks the builder values and every `VAULT_*` variable that is set, as the step will
    /// read them: the address and `VAULT_SKIP_VERIFY` parse, a client certificate comes with
    /// its key, files named by variables exist and hold PEM (the pod mounts them before the
    /// first step runs), and files named by builder methods hold PEM if they exist already (an
    /// earlier step may write them). An unset `VAULT_ADDR` passes: the steps that use a login
    /// step's session when there is one cannot know, at validation, whether one comes first.
    pub(crate) fn validate_set(&self, cx: &ValidateContext<'_>) -> Result<Settings, StepError> {
        if self
            .namespace
            .as_deref()
            .is_some_and(|n| n.trim().is_empty())
        {
            return Err(StepError::invalid(
                "vault namespace \"\": expected a namespace path such as team-a",
            ));
        }
        let settings = self.settings(&|key| cx.env(key))?;
        let tls = &settings.tls;
        let files = [
            (
                &tls.ca_file,
                Pem::Certificates,
                "VAULT_CACERT",
                "CA file",
                "a PEM file of CA certificates",
            ),
            (
                &tls.client_cert,
                Pem::Certificates,
                "VAULT_CLIENT_CERT",
                "client certificate",
                "a PEM client certificate",
            ),
            (
                &tls.client_key,
                Pem::PrivateKey,
                "VAULT_CLIENT_KEY",
                "client key",
                "a PEM private key",
            ),
        ];
        for (path, pem, variable, kind, expected) in files {
            let Some(path) = path else { continue };
            if settings.from_env.contains(&variable) {
                let name = format!("{variable} {}", path.display());
                if !http_client::check_pem_file(path, pem, &name)? {
                    return Err(StepError::invalid(format!(
                        "{name}: no such file: expected {expected} (a file that an earlier step \
                         writes is named in code, with Vault::ca_file or \
                         Vault::client_cert)"
                    )));
                }
            } else {
                http_client::check_pem_file(
                    path,
                    pem,
                    &format!("vault: {kind} {}", path.display()),
                )?;
            }
        }
        Ok(settings)
    }

    /// Checks that a token is given: [`token`](Self::token), else `VAULT_TOKEN`.
    pub(crate) fn validate_token(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        let given =
            self.token.is_some() || cx.env("VAULT_TOKEN").is_some_and(|t| !t.trim().is_empty());
        if given { Ok(()) } else { Err(no_token()) }
    }

    /// The builder values, then the variables `env` gives (blank ones count as unset).
    fn settings(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, StepError> {
        let env = |key: &str| env(key).filter(|v| !v.trim().is_empty());
        let mut from_env = Vec::new();
        let address = match &self.address {
            Some(address) => Some(parse_address(address, "vault address")?),
            None => env("VAULT_ADDR")
                .map(|address| parse_address(&address, "VAULT_ADDR"))
                .transpose()?,
        };
        let namespace = self
            .namespace
            .clone()
            .or_else(|| env("VAULT_NAMESPACE"))
            .map(|n| n.trim().trim_matches('/').to_owned());
        let (client_cert, client_key) = match &self.client_cert {
            Some((cert, key)) => (Some(cert.clone()), Some(key.clone())),
            None => match (env("VAULT_CLIENT_CERT"), env("VAULT_CLIENT_KEY")) {
                (Some(_), None) => {
                    return Err(StepError::invalid(
                        "VAULT_CLIENT_CERT is set but VAULT_CLIENT_KEY is not: expected both, \
                         a PEM client certificate and its private key, or neither",
                    ));
                }
                (None, Some(_)) => {
                    return Err(StepError::invalid(
                        "VAULT_CLIENT_KEY is set but VAULT_CLIENT_CERT is not: expected both, \
                         a PEM client certificate and its private key, or neither",
                    ));
                }
                (cert, key) => {
                    if cert.is_some() {
                        from_env.extend(["VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY"]);
                    }
                    (cert.map(PathBuf::from), key.map(PathBuf::from))
                }
            },
        };
        // The builder's `insecure()` wins: the variable is then not read.
        let insecure = self.insecure
            || match env("VAULT_SKIP_VERIFY") {
                Some(value) => parse_bool(&value).ok_or_else(|| {
                    StepError::invalid(format!(
                        "VAULT_SKIP_VERIFY = \"{value}\": expected true or false (or 1 or 0)"
                    ))
                })?,
                None => false,
            };
        let ca_file = match &self.ca_file {
            Some(path) => Some(path.clone()),
            None => env("VAULT_CACERT").map(|path| {
                from_env.push("VAULT_CACERT");
                PathBuf::from(path)
            }),
        };
        let tls = TlsOptions {
            ca_file,
            client_cert,
            client_key,
            insecure,
        };
        tls.validate("vault")?;
        Ok(Settings {
            address,
            namespace,
            tls,
            from_env,
        })
    }

    /// The address, namespace and TLS settings, builder values first, then the environment.
    pub(crate) fn endpoint(&self, ctx: &Context) -> Result<Endpoint, StepError> {
        let settings = self.settings(&|key| ctx.env(key))?;
        Ok(Endpoint {
            address: settings.address.ok_or_else(no_address)?,
            namespace: settings.namespace,
            tls: settings.tls,
        })
    }

    /// The token set with [`token`](Self::token), else `VAULT_TOKEN`.
    pub(crate) fn resolved_token(&self, ctx: &Context) -> Option<Secret> {
        self.token.clone().or_else(|| {
            ctx.env("VAULT_TOKEN")
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .map(Secret::new)
        })
    }
}

/// The settings of a [`Vault`] resolved against an environment.
#[derive(Debug)]
pub(crate) struct Settings {
    /// `None` when neither the builder nor `VAULT_ADDR` gives one.
    address: Option<Url>,
    namespace: Option<String>,
    tls: TlsOptions,
    /// The variables the TLS files were named by.
    from_env: Vec<&'static str>,
}

fn no_address() -> StepError {
    StepError::invalid(
        "VAULT_ADDR is not set: expected the vault address, such as https://vault.vault:8200 \
         (or Vault::address)",
    )
}

pub(crate) fn no_token() -> StepError {
    StepError::invalid(
        "VAULT_TOKEN is not set: expected a vault token (or Vault::token, or \
         Vault::token_file_login)",
    )
}

/// Go's `strconv.ParseBool`, which the Vault CLI uses for `VAULT_SKIP_VERIFY`.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn parse_address(address: &str, what: &str) -> Result<Url, StepError> {
    let expected = "expected an http or https URL such as https://vault.vault:8200";
    let url = Url::parse(address.trim()).map_err(|e| {
        StepError::invalid(format!("{what} \"{address}\": {expected}")).with_source(e)
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(StepError::invalid(format!(
            "{what} \"{address}\": {expected}"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(StepError::invalid(format!(
            "{what} \"{}\": {expected}, with no credentials, query or fragment",
            http_client::display_url(&url)
        )));
    }
    Ok(url)
}

/// A resolved address, namespace and TLS settings.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) address: Url,
    pub(crate) namespace: Option<String>,
    pub(crate) tls: TlsOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_values_win_over_the_environment() {
        let ctx = Context::with_env([
            ("VAULT_ADDR", "http://env:8200"),
            ("VAULT_NAMESPACE", "env-ns"),
            ("VAULT_SKIP_VERIFY", "false"),
        ]);
        let endpoint = Vault::from_env()
            .address("https://vault:8200")
            .namespace("/team-a/")
            .insecure()
            .endpoint(&ctx)
            .unwrap();
        assert_eq!(endpoint.address.as_str(), "https://vault:8200/");
        assert_eq!(endpoint.namespace.as_deref(), Some("team-a"));
        assert!(endpoint.tls.insecure);
    }

    #[test]
    fn insecure_skips_reading_vault_skip_verify() {
        let ctx = Context::with_env([("VAULT_ADDR", "http://v"), ("VAULT_SKIP_VERIFY", "yes")]);
        let endpoint = Vault::from_env().insecure().endpoint(&ctx).unwrap();
        assert!(endpoint.tls.insecure);
        let endpoint = Vault::from_env()
            .endpoint(&Context::with_env([("VAULT_ADDR", "http://v")]))
            .unwrap();
        assert!(!endpoint.tls.insecure);
    }

    #[test]
    fn reads_every_vault_cli_variable() {
        let ctx = Context::with_env([
            ("VAULT_ADDR", "https://vault.vault:8200"),
            ("VAULT_TOKEN", " hvs.tok\n"),
            ("VAULT_NAMESPACE", "ns1"),
            ("VAULT_CACERT", "/ca.pem"),
            ("VAULT_CLIENT_CERT", "/c.pem"),
            ("VAULT_CLIENT_KEY", "/k.pem"),
            ("VAULT_SKIP_VERIFY", "1"),
        ]);
        let vault = Vault::from_env();
        let endpoint = vault.endpoint(&ctx).unwrap();
        assert_eq!(endpoint.namespace.as_deref(), Some("ns1"));
        assert_eq!(endpoint.tls.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(endpoint.tls.client_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(endpoint.tls.client_key, Some(PathBuf::from("/k.pem")));
        assert!(endpoint.tls.insecure);
        assert_eq!(vault.resolved_token(&ctx).unwrap().expose(), "hvs.tok");
    }

    #[test]
    fn a_missing_or_bad_address_is_a_configuration_error() {
        let err = Vault::from_env()
            .endpoint(&Context::with_env([("X", "1")]))
            .unwrap_err();
        assert!(err.is_invalid());
        assert!(err.to_string().starts_with("VAULT_ADDR is not set"));
        let ctx = Context::with_env([("VAULT_ADDR", "vault:8200")]);
        assert!(Vault::from_env().endpoint(&ctx).unwrap_err().is_invalid());
        let cx = ValidateContext::with_env([("VAULT_ADDR", "http://ok:8200")]);
        let err = Vault::from_env()
            .address("ftp://v")
            .validate(&cx)
            .unwrap_err();
        assert!(
            err.to_string().starts_with("vault address \"ftp://v\""),
            "{err}"
        );
        let ctx = Context::with_env([("VAULT_ADDR", "http://v"), ("VAULT_SKIP_VERIFY", "yes")]);
        let err = Vault::from_env().endpoint(&ctx).unwrap_err();
        assert!(err.to_string().contains("VAULT_SKIP_VERIFY = \"yes\""));
    }

    #[test]
    fn a_client_cert_needs_its_key() {
        let ctx = Context::with_env([("VAULT_ADDR", "http://v"), ("VAULT_CLIENT_CERT", "/c.pem")]);
        assert!(Vault::from_env().endpoint(&ctx).unwrap_err().is_invalid());
    }

    #[test]
    fn debug_never_shows_tokens() {
        let vault = Vault::from_env().token("hvs.s3cr3t");
        assert!(!format!("{vault:?}").contains("s3cr3t"));
    }
}
