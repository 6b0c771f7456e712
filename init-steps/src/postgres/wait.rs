//! `PostgresWait`: waits until PostgreSQL accepts a login and answers a check.

use init_core::{
    Context, Policy, Publication, Reference, Step, StepError, ValidateContext, async_trait,
};
use tokio_postgres::Client;

use super::classify::classify;
use super::session;
use super::settings::{Postgres, postgres_builder};
use crate::support::db_check::{Check, CheckClient, run_checks, validate_checks};
use crate::support::db_connect::ConnectSpec;

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
    spec: ConnectSpec<Postgres>,
    checks: Vec<Check>,
    wait_for_database: bool,
}

postgres_builder!(
    PostgresWait,
    "postgres",
    "Waits for",
    checks(
        "`schema.name` or a name found on the search path, quoted as in SQL",
        "public.orders",
        "`3D000`"
    )
);

impl PostgresWait {
    fn with_spec(name: String, spec: ConnectSpec<Postgres>) -> Self {
        Self {
            name,
            spec,
            checks: Vec::new(),
            wait_for_database: false,
        }
    }
}

/// The checks over tokio-postgres; a missing table or column is transient ([`classify`]).
impl CheckClient for Client {
    async fn select_one(&mut self, what: &str) -> Result<(), StepError> {
        self.simple_query("SELECT 1")
            .await
            .map_err(|e| classify(what, e, false))?;
        Ok(())
    }

    async fn table_exists(&mut self, what: &str, table: &str) -> Result<bool, StepError> {
        let row = self
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await
            .map_err(|e| classify(what, e, false))?;
        row.try_get(0)
            .map_err(|e| StepError::permanent(what).with_source(e))
    }

    async fn returns_row(&mut self, what: &str, sql: &str) -> Result<bool, StepError> {
        let rows = self
            .query(sql, &[])
            .await
            .map_err(|e| classify(what, e, false))?;
        Ok(!rows.is_empty())
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
        validate_checks(&self.name, &self.checks, |table| {
            if table.trim().is_empty() {
                return Err(StepError::invalid(format!(
                    "{}: empty table name: expected a table such as public.orders",
                    self.name
                )));
            }
            Ok(())
        })
    }

    fn policy(&self) -> Policy {
        Policy::wait()
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let settings = self.spec.resolve_run(&self.name, ctx)?;
        let (mut client, mut driver) =
            session::connect(&self.name, &settings, None, self.wait_for_database).await?;
        let checks = run_checks(&self.name, &self.checks, &mut client);
        let outcome = driver.run(&self.name, checks).await;
        driver.close(client).await;
        outcome
    }
}
