//! `PostgresWait`: waits until PostgreSQL accepts a login and answers a check.

use std::path::PathBuf;
use std::time::Duration;

use init_core::{
    Context, Policy, Publication, Reference, Step, StepError, ValidateContext, ValuePath,
    async_trait,
};
use tokio_postgres::Client;

use super::TlsMode;
use super::classify::classify;
use super::connection::connection_builder;
use super::session;
use super::settings::{ConnectSpec, DEFAULT_PORT, Origin, UrlParts};
use crate::support::db_settings::{Source, parse_address};

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

connection_builder!(PostgresWait, "postgres", "Waits for");

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

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn reads(&self) -> Vec<Reference> {
        self.spec.reads()
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
