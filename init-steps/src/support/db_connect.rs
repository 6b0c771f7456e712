//! Where an SQL database step connects and as whom, written once for every [`Dialect`]: an
//! address, a URL (given, or read from an environment variable) or the dialect's environment
//! variables (libpq's `PG*`), with explicit overrides; resolved once at validation (environment
//! only) and again at each attempt (published values too).

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use init_core::{Context, Reference, StepError};

use super::db_settings::{
    Password, Source, check_transport, connection_reads, decode, host_port, lookup, parse_port,
};
use super::db_tls::TlsMode;

/// What differs between the SQL databases in where and how a step connects.
pub(crate) trait Dialect {
    /// The URL schemes accepted, the first one the usual (`postgres`, `postgresql`).
    const SCHEMES: &'static [&'static str];
    /// The port when none is given.
    const DEFAULT_PORT: u16;
    /// The user when none is given (the client library would take the OS user, which in a
    /// container is rarely meaningful).
    const DEFAULT_USER: &'static str;
    /// Whether the database is the user's name when none is given (PostgreSQL), or none (the
    /// login alone, by default).
    const DATABASE_IS_USER: bool = false;
    /// The environment variables that fill what the code and URL leave out, if any (none by
    /// default: nothing is read from the environment unasked).
    const ENV: Option<EnvVars> = None;
    /// The query parameters [`query_parameter`](Self::query_parameter) takes, for messages.
    const PARAMETERS: &'static str;

    /// Applies URL query parameter `key`: `Ok(false)` for one the dialect does not know.
    fn query_parameter(parts: &mut UrlParts, key: &str, value: &str) -> Result<bool, String>;
}

/// A dialect's environment variables (libpq's: `PGHOST`, `PGPORT`, ...).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EnvVars {
    pub(crate) host: &'static str,
    pub(crate) port: &'static str,
    pub(crate) database: &'static str,
    pub(crate) user: &'static str,
    pub(crate) password: &'static str,
    pub(crate) tls: &'static str,
    pub(crate) ca_file: &'static str,
}

/// The parts of a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    /// The host (an IPv6 address without brackets).
    pub(crate) host: String,
    /// The port, the dialect's when the URL has none.
    pub(crate) port: u16,
    /// The user name, percent-decoded.
    pub(crate) user: Option<String>,
    /// The password, percent-decoded.
    pub(crate) password: Option<Password>,
    /// The path without its `/`, percent-decoded.
    pub(crate) database: Option<String>,
    /// From the dialect's query parameters from here on (`sslmode`, `ssl-mode`).
    pub(crate) tls: Option<TlsMode>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) connect_timeout: Option<Duration>,
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
    /// The dialect's [`EnvVars`] (only offered by a dialect that has them: PostgreSQL).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Env,
}

/// Everything a connection needs, as configured (`Debug` shows the configuration, not the
/// dialect, a type).
#[derive(Clone)]
pub(crate) struct ConnectSpec<D> {
    origin: Origin,
    pub(crate) database: Option<String>,
    pub(crate) user: Option<Source>,
    pub(crate) password: Option<Source>,
    pub(crate) tls: Option<TlsMode>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) connect_timeout: Duration,
    dialect: PhantomData<fn() -> D>,
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

impl<D> fmt::Debug for ConnectSpec<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            origin,
            database,
            user,
            password,
            tls,
            ca_file,
            connect_timeout: timeout,
            ..
        } = self;
        write!(
            f,
            "ConnectSpec {{ origin: {origin:?}, database: {database:?}, user: {user:?}, \
             password: {password:?}, tls: {tls:?}, ca_file: {ca_file:?}, connect_timeout: {timeout:?} }}"
        )
    }
}

impl<D: Dialect> ConnectSpec<D> {
    pub(crate) fn new(origin: Origin) -> Self {
        Self {
            origin,
            database: None,
            user: None,
            password: None,
            tls: None,
            ca_file: None,
            connect_timeout: Duration::from_secs(3),
            dialect: PhantomData,
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

    /// How the step's name shows the server: `db:5432`, `db:5432/orders`, `$DATABASE_URL`,
    /// `$PGHOST`.
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
            Origin::Env => format!("${}", D::ENV.map_or("", |vars| vars.host)),
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
        let var = |pick: fn(&EnvVars) -> &'static str| D::ENV.and_then(|vars| env(pick(&vars)));
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
                UrlParts::parse::<D>(&text)
                    .map_err(|m| invalid(format!("environment variable {var}: {m}")))?
            }
            Origin::Env => {
                let host = var(|v| v.host).unwrap_or_else(|| "localhost".to_owned());
                let mut parts = UrlParts::at(host, D::DEFAULT_PORT);
                if let Some(vars) = D::ENV
                    && let Some(port) = env(vars.port)
                {
                    parts.port =
                        parse_port(&port).map_err(|m| invalid(format!("{}: {m}", vars.port)))?;
                }
                parts.database = var(|v| v.database);
                parts.user = var(|v| v.user);
                parts
            }
        };
        let user = match &self.user {
            Some(source) => lookup(what, source, env, ctx)?,
            None => base.user.clone().or_else(|| var(|v| v.user)),
        }
        .unwrap_or_else(|| D::DEFAULT_USER.to_owned());
        let password = match &self.password {
            Some(source) => lookup(what, source, env, ctx)?.map(Password),
            None => base
                .password
                .clone()
                .or_else(|| var(|v| v.password).map(Password)),
        };
        let database = self
            .database
            .clone()
            .or(base.database)
            .or_else(|| var(|v| v.database))
            .or_else(|| D::DATABASE_IS_USER.then(|| user.clone()));
        let tls = match (self.tls.or(base.tls), D::ENV) {
            (Some(mode), _) => mode,
            (None, Some(vars)) => match env(vars.tls) {
                Some(mode) => mode
                    .parse()
                    .map_err(|m: String| invalid(format!("{}: {m}", vars.tls)))?,
                None => TlsMode::Disable,
            },
            (None, None) => TlsMode::Disable,
        };
        check_transport(tls, self.ca_file.is_some(), self.connect_timeout).map_err(invalid)?;
        let ca_file = match tls {
            TlsMode::VerifyFull => self
                .ca_file
                .clone()
                .or(base.ca_file)
                .or_else(|| var(|v| v.ca_file).map(PathBuf::from)),
            _ => None,
        };
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

    /// Parses `scheme://[user[:password]@]host[:port][/database][?parameters]` for dialect `D`.
    /// The error never repeats the URL (it may hold a password).
    pub(crate) fn parse<D: Dialect>(text: &str) -> Result<Self, String> {
        let expected = format!(
            "expected {}://user:password@host:port/database",
            D::SCHEMES[0]
        );
        let url = url::Url::parse(text).map_err(|e| format!("url: {e}: {expected}"))?;
        if !D::SCHEMES.contains(&url.scheme()) {
            return Err(format!("url scheme {:?}: {expected}", url.scheme()));
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(format!("url without a host: {expected}")),
        };
        let mut parts = Self::at(host, url.port().unwrap_or(D::DEFAULT_PORT));
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
            if !D::query_parameter(&mut parts, &key, &value)? {
                return Err(format!(
                    "url parameter {key:?}: expected one of {}",
                    D::PARAMETERS
                ));
            }
        }
        Ok(parts)
    }
}
