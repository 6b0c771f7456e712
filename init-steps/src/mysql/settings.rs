//! Where a MySQL or MariaDB step connects and as whom: an address or a `mysql://` URL (given,
//! or read from an environment variable), with explicit overrides; resolved once at validation
//! (environment only) and again at each attempt (published values too).

use std::path::PathBuf;
use std::time::Duration;

use init_core::{Context, Reference, StepError};

use crate::support::db_settings::{Password, Source, connection_reads, decode, host_port, lookup};
use crate::support::db_tls::TlsMode;

/// MySQL's port when none is given.
pub(crate) const DEFAULT_PORT: u16 = 3306;

/// The user when none is given: the account every MySQL and MariaDB installation has (the
/// client library would take the OS user, which in a container is rarely meaningful).
const DEFAULT_USER: &str = "root";

/// The parts of a `mysql://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<Password>,
    database: Option<String>,
    tls: Option<TlsMode>,
    ca_file: Option<PathBuf>,
}

/// How the step was told where to connect.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// `host`, `host:port` or `[v6]:port`, parsed (or why not).
    Address(Result<(String, u16), String>),
    /// A URL given in code, parsed (or why not).
    Url(Box<Result<UrlParts, String>>),
    /// The URL is in this environment variable.
    UrlEnv(String),
}

/// Everything a connection needs, as configured.
#[derive(Debug, Clone)]
pub(crate) struct ConnectSpec {
    pub(crate) origin: Origin,
    pub(crate) database: Option<String>,
    pub(crate) user: Option<Source>,
    pub(crate) password: Option<Source>,
    pub(crate) tls: Option<TlsMode>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) connect_timeout: Duration,
}

/// A resolved connection: what one attempt connects with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `None`: log in without choosing a database.
    pub(crate) database: Option<String>,
    pub(crate) user: String,
    pub(crate) password: Option<Password>,
    pub(crate) tls: TlsMode,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) connect_timeout: Duration,
}

impl ConnectSpec {
    pub(crate) fn new(origin: Origin) -> Self {
        Self {
            origin,
            database: None,
            user: None,
            password: None,
            tls: None,
            ca_file: None,
            connect_timeout: Duration::from_secs(3),
        }
    }

    /// What the connection reads (see [`connection_reads`]).
    pub(crate) fn reads(&self) -> Vec<Reference> {
        let url_env = match &self.origin {
            Origin::UrlEnv(var) => Some(var.as_str()),
            _ => None,
        };
        connection_reads(url_env, self.user.as_ref(), self.password.as_ref())
    }

    /// How the step's name shows the server: `db:3306`, `db:3306/orders`, `$DATABASE_URL`.
    pub(crate) fn display(&self) -> String {
        match &self.origin {
            Origin::Address(Ok((host, port))) => host_port(host, *port),
            Origin::Address(Err(_)) => "(invalid address)".to_owned(),
            Origin::Url(parts) => match &**parts {
                Ok(url) => match &url.database {
                    Some(db) => format!("{}/{db}", host_port(&url.host, url.port)),
                    None => host_port(&url.host, url.port),
                },
                Err(_) => "(invalid url)".to_owned(),
            },
            Origin::UrlEnv(var) => format!("${var}"),
        }
    }

    /// The settings from the environment alone (published values are not known yet: a password
    /// from one is left out). Every error is [`StepError::invalid`].
    pub(crate) fn resolve_env(
        &self,
        what: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, StepError> {
        self.resolve(what, env, None)
    }

    /// The settings for one attempt; registers the password as a secret with `ctx`.
    pub(crate) fn resolve_run(&self, what: &str, ctx: &Context) -> Result<Settings, StepError> {
        let settings = self
            .resolve(what, &|key| ctx.env(key), Some(ctx))
            .map_err(|e| StepError::permanent(e.message().to_owned()))?;
        if let Some(password) = &settings.password {
            ctx.register_secret(&password.0);
        }
        Ok(settings)
    }

    fn resolve(
        &self,
        what: &str,
        env: &dyn Fn(&str) -> Option<String>,
        ctx: Option<&Context>,
    ) -> Result<Settings, StepError> {
        let invalid = |message: String| StepError::invalid(format!("{what}: {message}"));
        let base = match &self.origin {
            Origin::Address(Ok((host, port))) => UrlParts::at(host.clone(), *port),
            Origin::Address(Err(message)) => return Err(invalid(message.clone())),
            Origin::Url(parts) => match &**parts {
                Ok(url) => url.clone(),
                Err(message) => return Err(invalid(message.clone())),
            },
            Origin::UrlEnv(var) => {
                let text = env(var)
                    .ok_or_else(|| invalid(format!("environment variable {var} is not set")))?;
                UrlParts::parse(&text)
                    .map_err(|m| invalid(format!("environment variable {var}: {m}")))?
            }
        };
        let user = match &self.user {
            Some(source) => lookup(what, source, env, ctx)?,
            None => base.user.clone(),
        }
        .unwrap_or_else(|| DEFAULT_USER.to_owned());
        let password = match &self.password {
            Some(source) => lookup(what, source, env, ctx)?.map(Password),
            None => base.password.clone(),
        };
        let tls = self.tls.or(base.tls).unwrap_or_default();
        if self.ca_file.is_some() && tls != TlsMode::VerifyFull {
            return Err(invalid(format!(
                "a ca file needs tls mode verify-full, not {}",
                tls.as_str()
            )));
        }
        if self.connect_timeout.is_zero() {
            return Err(invalid(
                "connect timeout 0s: expected a duration greater than zero".to_owned(),
            ));
        }
        Ok(Settings {
            host: base.host,
            port: base.port,
            database: self.database.clone().or(base.database),
            user,
            password,
            tls,
            ca_file: match tls {
                TlsMode::VerifyFull => self.ca_file.clone().or(base.ca_file),
                _ => None,
            },
            connect_timeout: self.connect_timeout,
        })
    }
}

impl UrlParts {
    fn at(host: String, port: u16) -> Self {
        Self {
            host,
            port,
            user: None,
            password: None,
            database: None,
            tls: None,
            ca_file: None,
        }
    }

    /// Parses `mysql://[user[:password]@]host[:port][/database][?ssl-mode=..&ssl-ca=..]`
    /// (`mariadb://` too), with the MySQL client's `ssl-mode` names (`DISABLED`, `REQUIRED`,
    /// `VERIFY_IDENTITY`, any case) or ours (`disable`, `require`, `verify-full`). The error
    /// never repeats the URL (it may hold a password).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected mysql://user:password@host:port/database";
        let url = url::Url::parse(text).map_err(|e| format!("url: {e}: {EXPECTED}"))?;
        if !matches!(url.scheme(), "mysql" | "mariadb") {
            return Err(format!("url scheme {:?}: {EXPECTED}", url.scheme()));
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(format!("url without a host: {EXPECTED}")),
        };
        let mut parts = Self::at(host, url.port().unwrap_or(DEFAULT_PORT));
        if !url.username().is_empty() {
            parts.user = Some(decode(url.username(), "user name")?);
        }
        if let Some(password) = url.password() {
            parts.password = Some(Password(decode(password, "password")?));
        }
        let path = url.path().trim_start_matches('/');
        if !path.is_empty() {
            parts.database = Some(decode(path, "database name")?);
        }
        for (key, value) in url.query_pairs() {
            match &*key {
                "ssl-mode" | "sslmode" => parts.tls = Some(parse_ssl_mode(&value)?),
                "ssl-ca" | "sslrootcert" => parts.ca_file = Some(PathBuf::from(&*value)),
                other => {
                    return Err(format!(
                        "url parameter {other:?}: expected one of ssl-mode, ssl-ca"
                    ));
                }
            }
        }
        Ok(parts)
    }
}

/// An `ssl-mode` as the MySQL client spells it (`DISABLED`, `REQUIRED`, `VERIFY_IDENTITY`;
/// <https://dev.mysql.com/doc/refman/8.0/en/connection-options.html#option_general_ssl-mode>)
/// or as [`TlsMode`] does. `PREFERRED` (TLS when offered) and `VERIFY_CA` (the CA but not the
/// name) are refused: the first silently downgrades, the second trusts any host the CA signed.
fn parse_ssl_mode(value: &str) -> Result<TlsMode, String> {
    match value.to_ascii_lowercase().as_str() {
        "disabled" => Ok(TlsMode::Disable),
        "required" => Ok(TlsMode::Require),
        "verify_identity" => Ok(TlsMode::VerifyFull),
        other => other.parse().map_err(|_| {
            format!(
                "url: ssl-mode {value:?}: expected one of DISABLED, REQUIRED, VERIFY_IDENTITY \
                 (or disable, require, verify-full)"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::db_settings::parse_address;

    #[test]
    fn a_url_gives_every_part_percent_decoded() {
        let url = UrlParts::parse(
            "mysql://app%40x:p%2Fss@db.ns:3307/orders?ssl-mode=VERIFY_IDENTITY&ssl-ca=/ca.pem",
        )
        .unwrap();
        assert_eq!(url.host, "db.ns");
        assert_eq!(url.port, 3307);
        assert_eq!(url.user.as_deref(), Some("app@x"));
        assert_eq!(url.password, Some(Password("p/ss".into())));
        assert_eq!(url.database.as_deref(), Some("orders"));
        assert_eq!(url.tls, Some(TlsMode::VerifyFull));
        assert_eq!(url.ca_file, Some(PathBuf::from("/ca.pem")));
        let maria = UrlParts::parse("mariadb://[::1]?ssl-mode=require").unwrap();
        assert_eq!((maria.host.as_str(), maria.port), ("::1", 3306));
        assert_eq!(maria.tls, Some(TlsMode::Require));
        assert_eq!(maria.database, None);
    }

    #[test]
    fn a_bad_url_is_named_without_repeating_its_password() {
        let cases = [
            ("postgres://u:hunter22@db/x", "url scheme \"postgres\""),
            (
                "mysql://u:hunter22@db/x?ssl-mode=PREFERRED",
                "ssl-mode \"PREFERRED\": expected one of DISABLED, REQUIRED, VERIFY_IDENTITY",
            ),
            (
                "mysql://u:hunter22@db/x?ssl-mode=verify_ca",
                "ssl-mode \"verify_ca\"",
            ),
            (
                "mysql://u:hunter22@db/x?ssl-cert=a",
                "url parameter \"ssl-cert\"",
            ),
            ("mysql://u:hunter22@db:99999/x", "url: invalid port number"),
            (
                "mysql://u:hunter22@db/%zz",
                "url database name: a % not followed",
            ),
        ];
        for (input, expected) in cases {
            let err = UrlParts::parse(input).unwrap_err();
            assert!(err.contains(expected), "{input}: {err}");
            assert!(!err.contains("hunter22"), "{err}");
        }
    }

    #[test]
    fn without_a_user_or_database_it_logs_in_as_root_to_no_database() {
        let spec = ConnectSpec::new(Origin::Address(parse_address("db", DEFAULT_PORT)));

        let settings = spec.resolve_env("mysql db", &|_| None).unwrap();

        assert_eq!(settings.user, "root");
        assert_eq!(settings.database, None);
        assert_eq!(settings.password, None);
        assert_eq!(settings.tls, TlsMode::Disable);
        assert_eq!((settings.host.as_str(), settings.port), ("db", 3306));
    }

    #[test]
    fn explicit_settings_override_the_url() {
        let mut spec = ConnectSpec::new(Origin::Url(Box::new(UrlParts::parse(
            "mysql://app:from-url-secret@db/orders?ssl-mode=REQUIRED",
        ))));
        spec.database = Some("billing".into());
        spec.password = Some(Source::Env("DB_PASSWORD".into()));
        spec.tls = Some(TlsMode::VerifyFull);
        let env = |key: &str| (key == "DB_PASSWORD").then(|| "from-env-secret".to_owned());

        let settings = spec.resolve_env("mysql db", &env).unwrap();

        assert_eq!(settings.user, "app");
        assert_eq!(settings.database.as_deref(), Some("billing"));
        assert_eq!(settings.password, Some(Password("from-env-secret".into())));
        assert_eq!(settings.tls, TlsMode::VerifyFull);
    }

    #[test]
    fn debug_never_shows_a_password() {
        let spec = ConnectSpec::new(Origin::Url(Box::new(UrlParts::parse(
            "mysql://u:hunter22@db/x",
        ))));
        assert!(!format!("{spec:?}").contains("hunter22"));
    }
}
