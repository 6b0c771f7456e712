//! `PostgresWait`: waits until PostgreSQL accepts a login and answers a check.

use std::path::PathBuf;
use std::time::Duration;

use init_core::{Context, Policy, Step, StepError, ValidateContext, async_trait};
use tokio_postgres::Client;

use super::TlsMode;
use super::classify::classify;
use super::session;
use super::settings::{ConnectSpec, DEFAULT_PORT, Origin, UrlParts};
use crate::db_settings::{Source, parse_address};

/// Waits until PostgreSQL accepts a login and answers a check: `SELECT 1` by default, or "this
/// table exists" ([`table_exists`](Self::table_exists)) and "this query returns a row"
/// ([`query_returns_row`](Self::query_returns_row)) for "the schema is ready", not only "the
/// server is up".
///
/// Each attempt connects over the real protocol (TLS as [`TlsMode`](super::TlsMode) says), logs in, runs the
/// checks and ends the session.
///
/// # Where and as whom
///
/// - [`new("db:5432")`](Self::new): an address; [`url`](Self::url): a `postgres://` URL (its
///   password is registered as a secret, so the redactor masks it); [`url_from_env`](Self::url_from_env):
///   a URL in an environment variable; [`from_env`](Self::from_env): libpq's `PGHOST`,
///   `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGSSLMODE`, `PGSSLROOTCERT`.
/// - The user and password can come from published values ([`user_from_value`](Self::user_from_value),
///   [`password_from_value`](Self::password_from_value): a Vault secret read by an earlier
///   step) or the environment ([`password_from_env`](Self::password_from_env)). Without any,
///   `PGUSER`/`PGPASSWORD` are used when set (as libpq does).
///
/// # Errors and cadence
///
/// Classified by SQLSTATE (<https://www.postgresql.org/docs/15/errcodes-appendix.html>):
/// `57P03` (starting up, shutting down, in recovery) is transient and asked again after 20 ms;
/// `53300` (too many connections) transient on the policy's backoff; `28P01`/`28000` (login
/// refused) permanent; `3D000` (no such database) permanent unless
/// [`wait_for_database`](Self::wait_for_database). A refused connection is tried again after
/// 10 ms, like [`TcpWait`](crate::tcp::TcpWait); a name that does not resolve or a timeout
/// backs off. A certificate that does not verify is permanent. A missing table, or a query on
/// a table or column that does not exist yet, is transient. Messages never hold the password.
///
/// # Default
///
/// | setting | default |
/// |---|---|
/// | policy | [`Policy::wait`] (no attempt limit, 5 s per attempt) |
/// | port | 5432 |
/// | user | `PGUSER`, else `postgres` |
/// | database | `PGDATABASE`, else the user name |
/// | password | `PGPASSWORD` when set |
/// | TLS | `PGSSLMODE`, else [`TlsMode::Disable`](super::TlsMode::Disable) |
/// | connect timeout | 3 s |
/// | check | `SELECT 1` |
/// | name | `postgres ` and the server, e.g. `postgres db:5432` |
///
/// # Examples
///
/// ```no_run
/// use init_core::prelude::*;
/// use init_steps::postgres::{PostgresWait, TlsMode};
///
/// fn main() -> std::process::ExitCode {
///     Plan::new("orders-init")
///         .step(
///             PostgresWait::new("postgres:5432")
///                 .database("orders")
///                 .user_from_value("db.username")
///                 .password_from_value("db.password")
///                 .tls(TlsMode::VerifyFull)
///                 .ca_file("/etc/ssl/db/ca.pem")
///                 .table_exists("public.orders"),
///         )
///         .run_main()
/// }
/// ```
#[derive(Debug)]
pub struct PostgresWait {
    name: String,
    spec: ConnectSpec,
    checks: Vec<Check>,
    wait_for_database: bool,
}

#[derive(Debug, Clone)]
enum Check {
    TableExists(String),
    QueryReturnsRow(String),
}

impl PostgresWait {
    fn with_origin(origin: Origin) -> Self {
        let spec = ConnectSpec::new(origin);
        Self {
            name: format!("postgres {}", spec.display()),
            spec,
            checks: Vec::new(),
            wait_for_database: false,
        }
    }

    /// Waits for the server at `host`, `host:port` or `[ipv6]:port` (port 5432 by default).
    ///
    /// ```
    /// use init_core::{Step, ValidateContext};
    /// use init_steps::postgres::PostgresWait;
    ///
    /// assert_eq!(PostgresWait::new("db").name(), "postgres db:5432");
    /// let bad = PostgresWait::new("db:0").validate(&ValidateContext::with_env([("", "")]));
    /// assert!(bad.unwrap_err().is_invalid());
    /// ```
    pub fn new(address: impl AsRef<str>) -> Self {
        Self::with_origin(Origin::Address(parse_address(
            address.as_ref(),
            DEFAULT_PORT,
        )))
    }

    /// Waits for the server of a `postgres://user:password@host:port/database` URL; the query
    /// may set `sslmode` (`disable`, `require`, `verify-full`), `sslrootcert` and
    /// `connect_timeout` (seconds). Its password is registered as a secret when the step runs.
    /// A bad URL is reported by [`validate`](Step::validate), without repeating it.
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::postgres::PostgresWait;
    ///
    /// let wait = PostgresWait::url("postgres://app:s3cret-pass@db:5432/orders?sslmode=require");
    /// assert_eq!(wait.name(), "postgres db:5432/orders");
    /// assert!(!format!("{wait:?}").contains("s3cret-pass"));
    /// ```
    pub fn url(url: impl AsRef<str>) -> Self {
        Self::with_origin(Origin::Url(Box::new(UrlParts::parse(url.as_ref()))))
    }

    /// Waits for the server of the URL in environment variable `var` (checked at validation).
    ///
    /// ```
    /// use init_core::{Step, ValidateContext};
    /// use init_steps::postgres::PostgresWait;
    ///
    /// let wait = PostgresWait::url_from_env("DATABASE_URL");
    /// assert_eq!(wait.name(), "postgres $DATABASE_URL");
    /// let unset = wait.validate(&ValidateContext::with_env([("HOME", "/")])).unwrap_err();
    /// assert_eq!(unset.to_string(), "postgres $DATABASE_URL: environment variable DATABASE_URL is not set");
    /// ```
    pub fn url_from_env(var: impl Into<String>) -> Self {
        Self::with_origin(Origin::UrlEnv(var.into()))
    }

    /// Waits for the server libpq's variables name: `PGHOST` (default `localhost`), `PGPORT`,
    /// `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGSSLMODE`, `PGSSLROOTCERT`.
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::postgres::PostgresWait;
    /// assert_eq!(PostgresWait::from_env().name(), "postgres $PGHOST");
    /// ```
    pub fn from_env() -> Self {
        Self::with_origin(Origin::Env)
    }

    /// The database to log in to (overrides the URL's and `PGDATABASE`).
    ///
    /// ```
    /// let wait = init_steps::postgres::PostgresWait::new("db").database("orders");
    /// ```
    #[must_use]
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.spec.database = Some(database.into());
        self
    }

    /// The user to log in as.
    ///
    /// ```
    /// let wait = init_steps::postgres::PostgresWait::new("db").user("orders_app");
    /// ```
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.spec.user = Some(Source::Literal(user.into()));
        self
    }

    /// The user name from a published value, a dotted path such as `db.username`.
    ///
    /// ```
    /// let wait = init_steps::postgres::PostgresWait::new("db").user_from_value("db.username");
    /// ```
    #[must_use]
    pub fn user_from_value(mut self, path: impl Into<String>) -> Self {
        self.spec.user = Some(Source::Value(path.into()));
        self
    }

    /// The password from a published value, a dotted path such as `db.password` (a secret
    /// published by [`KvRead`](crate::vault::KvRead), say).
    ///
    /// ```
    /// let wait = init_steps::postgres::PostgresWait::new("db").password_from_value("db.password");
    /// ```
    #[must_use]
    pub fn password_from_value(mut self, path: impl Into<String>) -> Self {
        self.spec.password = Some(Source::Value(path.into()));
        self
    }

    /// The password from environment variable `var` (checked at validation; registered as a
    /// secret when the step runs).
    ///
    /// ```
    /// let wait = init_steps::postgres::PostgresWait::new("db").password_from_env("ORDERS_DB_PASSWORD");
    /// ```
    #[must_use]
    pub fn password_from_env(mut self, var: impl Into<String>) -> Self {
        self.spec.password = Some(Source::Env(var.into()));
        self
    }

    /// Whether and how to use TLS (overrides the URL's `sslmode` and `PGSSLMODE`).
    ///
    /// ```
    /// use init_steps::postgres::{PostgresWait, TlsMode};
    /// let wait = PostgresWait::new("db").tls(TlsMode::Require);
    /// ```
    #[must_use]
    pub fn tls(mut self, mode: TlsMode) -> Self {
        self.spec.tls = Some(mode);
        self
    }

    /// The PEM file of the CA that signed the server's certificate, for
    /// [`TlsMode::VerifyFull`](super::TlsMode::VerifyFull) (only these CAs are trusted then, as libpq's `sslrootcert`);
    /// without one, verify-full trusts the system roots.
    ///
    /// ```
    /// use init_steps::postgres::{PostgresWait, TlsMode};
    /// let wait = PostgresWait::new("db").tls(TlsMode::VerifyFull).ca_file("/etc/ssl/db/ca.pem");
    /// ```
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.spec.ca_file = Some(path.into());
        self
    }

    /// Bounds the TCP connection and TLS handshake of one attempt (3 s by default).
    ///
    /// ```
    /// use std::time::Duration;
    /// let wait = init_steps::postgres::PostgresWait::new("db").connect_timeout(Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.spec.connect_timeout = timeout;
        self
    }

    /// Also waits until relation `name` (a table, view, ...; `schema.name` or a name found on
    /// the search path, quoted as in SQL) exists.
    ///
    /// ```
    /// let wait = init_steps::postgres::PostgresWait::new("db").table_exists("public.orders");
    /// ```
    #[must_use]
    pub fn table_exists(mut self, name: impl Into<String>) -> Self {
        self.checks.push(Check::TableExists(name.into()));
        self
    }

    /// Also waits until `sql` (one statement) returns at least one row; a table or column it
    /// names that does not exist yet counts as "not yet".
    ///
    /// ```
    /// let wait = init_steps::postgres::PostgresWait::new("db")
    ///     .query_returns_row("SELECT 1 FROM schema_version WHERE version >= 7");
    /// ```
    #[must_use]
    pub fn query_returns_row(mut self, sql: impl Into<String>) -> Self {
        self.checks.push(Check::QueryReturnsRow(sql.into()));
        self
    }

    /// Waits for the database to be created, instead of failing at once when it does not
    /// exist (`3D000`).
    ///
    /// ```
    /// let wait = init_steps::postgres::PostgresWait::new("db").database("orders").wait_for_database();
    /// ```
    #[must_use]
    pub fn wait_for_database(mut self) -> Self {
        self.wait_for_database = true;
        self
    }

    async fn check(&self, client: &Client) -> Result<(), StepError> {
        let what = self.name.as_str();
        if self.checks.is_empty() {
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| classify(what, e, false))?;
        }
        for check in &self.checks {
            match check {
                Check::TableExists(table) => {
                    let row = client
                        .query_one("SELECT to_regclass($1) IS NOT NULL", &[table])
                        .await
                        .map_err(|e| classify(&format!("{what}: table {table}"), e, false))?;
                    let exists: bool = row.try_get(0).map_err(|e| {
                        StepError::permanent(format!("{what}: table {table}")).with_source(e)
                    })?;
                    if !exists {
                        return Err(StepError::transient(format!(
                            "{what}: table {table} does not exist yet"
                        )));
                    }
                }
                Check::QueryReturnsRow(sql) => {
                    let rows = client
                        .query(sql.as_str(), &[])
                        .await
                        .map_err(|e| classify(&format!("{what}: check query"), e, false))?;
                    if rows.is_empty() {
                        return Err(StepError::transient(format!(
                            "{what}: check query returned no row yet"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Step for PostgresWait {
    fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.spec.resolve_env(&self.name, &|key| cx.env(key))?;
        for check in &self.checks {
            let (what, text) = match check {
                Check::TableExists(table) => ("table name", table),
                Check::QueryReturnsRow(sql) => ("check query", sql),
            };
            if text.trim().is_empty() {
                return Err(StepError::invalid(format!(
                    "{}: empty {what}: expected {}",
                    self.name,
                    if what == "table name" {
                        "a table such as public.orders"
                    } else {
                        "one SQL statement"
                    }
                )));
            }
        }
        Ok(())
    }

    fn policy(&self) -> Policy {
        Policy::wait()
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let settings = self.spec.resolve_run(&self.name, ctx)?;
        let (client, mut driver) =
            session::connect(&self.name, &settings, None, self.wait_for_database).await?;
        let outcome = driver.run(&self.name, self.check(&client)).await;
        driver.close(client).await;
        outcome
    }
}
