//! Where a PostgreSQL step connects and as whom: an address, a `postgres://` URL (given, or read
//! from an environment variable) or libpq's `PG*` variables, with explicit overrides; resolved
//! once at validation (environment only) and again at each attempt (published values too).

use std::path::PathBuf;
use std::time::Duration;

use init_core::{Context, Reference, StepError};

use crate::support::db_settings::{
    Password, Source, connection_reads, decode, host_port, lookup, parse_port,
};
use crate::support::db_tls::TlsMode;

/// PostgreSQL's port when none is given.
pub(crate) const DEFAULT_PORT: u16 = 5432;

/// The user when none is given (libpq would take the OS user, which in a container is rarely
/// meaningful).
const DEFAULT_USER: &str = "postgres";

/// The parts of a `postgres://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<Password>,
    database: Option<String>,
    tls: Option<TlsMode>,
    ca_file: Option<PathBuf>,
    connect_timeout: Option<Duration>,
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
    /// libpq's variables: `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGSSLMODE`,
    /// `PGSSLROOTCERT`.
    Env,
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
    pub(crate) database: String,
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

    /// How the step's name shows the server: `db:5432`, `db:5432/orders`, `$DATABASE_URL`.
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
            Origin::Env => "$PGHOST".to_owned(),
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
            Origin::Env => {
                let host = env("PGHOST").unwrap_or_else(|| "localhost".to_owned());
                let port = match env("PGPORT") {
                    Some(port) => parse_port(&port).map_err(|m| invalid(format!("PGPORT: {m}")))?,
                    None => DEFAULT_PORT,
                };
                let mut parts = UrlParts::at(host, port);
                parts.database = env("PGDATABASE");
                parts.user = env("PGUSER");
                parts
            }
        };
        let user = match &self.user {
            Some(source) => lookup(what, source, env, ctx)?,
            None => base.user.clone().or_else(|| env("PGUSER")),
        }
        .unwrap_or_else(|| DEFAULT_USER.to_owned());
        let password = match &self.password {
            Some(source) => lookup(what, source, env, ctx)?.map(Password),
            None => base
                .password
                .clone()
                .or_else(|| env("PGPASSWORD").map(Password)),
        };
        let database = self
            .database
            .clone()
            .or(base.database)
            .or_else(|| env("PGDATABASE"))
            .unwrap_or_else(|| user.clone());
        let tls = match (self.tls, base.tls) {
            (Some(mode), _) | (None, Some(mode)) => mode,
            (None, None) => match env("PGSSLMODE") {
                Some(mode) => mode
                    .parse()
                    .map_err(|m: String| invalid(format!("PGSSLMODE: {m}")))?,
                None => TlsMode::Disable,
            },
        };
        if self.ca_file.is_some() && tls != TlsMode::VerifyFull {
            return Err(invalid(format!(
                "a ca file needs tls mode verify-full, not {}",
                tls.as_str()
            )));
        }
        let ca_file = match tls {
            TlsMode::VerifyFull => self
                .ca_file
                .clone()
                .or(base.ca_file)
                .or_else(|| env("PGSSLROOTCERT").map(PathBuf::from)),
            _ => None,
        };
        if self.connect_timeout.is_zero() {
            return Err(invalid(
                "connect timeout 0s: expected a duration greater than zero".to_owned(),
            ));
        }
        Ok(Settings {
            host: base.host,
            port: base.port,
            database,
            user,
            password,
            tls,
            ca_file,
            connect_timeout: base.connect_timeout.unwrap_or(self.connect_timeout),
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
            connect_timeout: None,
        }
    }

    /// Parses `postgres://[user[:password]@]host[:port][/database][?sslmode=..&sslrootcert=..
    /// &connect_timeout=..]`. The error never repeats the URL (it may hold a password).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected postgres://user:password@host:port/database";
        let url = url::Url::parse(text).map_err(|e| format!("url: {e}: {EXPECTED}"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
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
                "sslmode" => parts.tls = Some(value.parse().map_err(|m| format!("url: {m}"))?),
                "sslrootcert" => parts.ca_file = Some(PathBuf::from(&*value)),
                "connect_timeout" => {
                    let seconds =
                        value
                            .parse::<u64>()
                            .ok()
                            .filter(|s| *s > 0)
                            .ok_or_else(|| {
                                format!(
                                    "url: connect_timeout {value:?}: expected whole seconds above 0"
                                )
                            })?;
                    parts.connect_timeout = Some(Duration::from_secs(seconds));
                }
                other => {
                    return Err(format!(
                        "url parameter {other:?}: expected one of sslmode, sslrootcert, connect_timeout"
                    ));
                }
            }
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::db_settings::parse_address;

    #[test]
    fn a_url_gives_every_part_percent_decoded() {
        let url = UrlParts::parse(
            "postgresql://app%40x:p%2Fss@db.ns:6432/orders?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=7",
        )
        .unwrap();
        assert_eq!(url.host, "db.ns");
        assert_eq!(url.port, 6432);
        assert_eq!(url.user.as_deref(), Some("app@x"));
        assert_eq!(url.password, Some(Password("p/ss".into())));
        assert_eq!(url.database.as_deref(), Some("orders"));
        assert_eq!(url.tls, Some(TlsMode::VerifyFull));
        assert_eq!(url.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(url.connect_timeout, Some(Duration::from_secs(7)));
        let v6 = UrlParts::parse("postgres://[::1]/x").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 5432));
    }

    #[test]
    fn a_bad_url_is_named_without_repeating_its_password() {
        let cases = [
            ("mysql://u:hunter22@db/x", "url scheme \"mysql\""),
            (
                "postgres://u:hunter22@db/x?sslmode=prefer",
                "tls mode \"prefer\"",
            ),
            (
                "postgres://u:hunter22@db/x?sslcert=a",
                "url parameter \"sslcert\"",
            ),
            (
                "postgres://u:hunter22@db:99999/x",
                "url: invalid port number",
            ),
            (
                "postgres://u:hunter22@db/x?connect_timeout=0",
                "connect_timeout \"0\"",
            ),
            (
                "postgres://u:hunter22@db/%zz",
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
    fn debug_never_shows_a_password() {
        let spec = ConnectSpec::new(Origin::Url(Box::new(UrlParts::parse(
            "postgres://u:hunter22@db/x",
        ))));
        assert!(!format!("{spec:?}").contains("hunter22"));
    }

    #[test]
    fn the_environment_fills_what_the_code_leaves_out() {
        let env = |key: &str| match key {
            "PGUSER" => Some("app".to_owned()),
            "PGPASSWORD" => Some("from-env-secret".to_owned()),
            "PGSSLMODE" => Some("require".to_owned()),
            _ => None,
        };
        let spec = ConnectSpec::new(Origin::Address(parse_address("db", DEFAULT_PORT)));
        let settings = spec.resolve_env("postgres db", &env).unwrap();
        assert_eq!(settings.user, "app");
        assert_eq!(settings.database, "app");
        assert_eq!(settings.password, Some(Password("from-env-secret".into())));
        assert_eq!(settings.tls, TlsMode::Require);
    }
}
