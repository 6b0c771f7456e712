//! `PostgresMigrate`: applies SQL migrations with refinery, one copy at a time (a PostgreSQL
//! advisory lock), each migration in its own transaction.

use std::path::PathBuf;
use std::time::Duration;

use init_core::{
    Context, ErrorClass, Policy, Reference, Step, StepError, ValidateContext, async_trait,
};
use refinery_core::error::Kind;
use refinery_core::{Migration, Runner};
use tokio_postgres::Client;

use super::classify::{classify, sqlstate_class};
use super::migrations::Source as Migrations;
use super::session;
use super::settings::{Postgres, postgres_builder};
use crate::support::db_connect::ConnectSpec;

/// refinery's history table when none is given.
const DEFAULT_HISTORY_TABLE: &str = "refinery_schema_history";

/// How often the server checks, while a statement runs or waits for a lock, that the client is
/// still there (`client_connection_check_interval`, PostgreSQL 14+): a copy that is killed or
/// cancelled while it waits for the advisory lock or runs a migration has its session ended
/// (and its transaction rolled back) within this, instead of when the lock comes or the
/// statement ends.
const CLIENT_CHECK_INTERVAL_MS: u32 = 250;

/// Takes the advisory lock of `$1` (hashed to 64 bits by the server: the lock key is the same
/// for every copy, whatever its build).
const LOCK_SQL: &str = "SELECT pg_advisory_lock(('x' || substr(md5($1), 1, 16))::bit(64)::bigint)";

/// Applies SQL migrations to PostgreSQL in version order, each exactly once, however many copies
/// of the init container start at the same moment.
///
/// The bookkeeping is [refinery](https://docs.rs/refinery)'s (`refinery-core`, its
/// `refinery_schema_history` table with a checksum per applied migration), driven over the
/// same tokio-postgres session that [`PostgresWait`](super::PostgresWait) uses. Around it:
///
/// - **One copy at a time**: the session takes a PostgreSQL advisory lock (keyed by the history
///   table's name) before refinery reads the history; the other copies wait for it, then find
///   every migration applied and do nothing. The lock goes with the session.
/// - **Each migration in its own transaction**, with its history row: a copy killed in the
///   middle of one leaves nothing of it behind, and the next run applies it. A statement that
///   cannot run in a transaction (`CREATE INDEX CONCURRENTLY`) cannot be a migration here.
/// - **An applied migration that was edited is refused** (permanent, naming it): its checksum
///   no longer matches the history. So is a migration older than the schema's version that was
///   never applied, and an applied one missing from the set (refinery's `abort_missing`).
/// - **Cancellation ends the server's session**: the session sets
///   `client_connection_check_interval` = 250 ms (PostgreSQL 14+; older servers migrate without
///   it, with a warning), so a copy stopped by SIGTERM, SIGKILL or a timeout while it waits for
///   the lock or runs a migration has its session ended within a quarter of a second (closing
///   the socket alone is not noticed by a backend waiting for a lock).
/// - The advisory lock belongs to the session: connect to PostgreSQL directly or through a
///   pooler in session mode (PgBouncer's transaction mode would hand the lock to another
///   client's session).
/// - [`lock_timeout`](Self::lock_timeout) and [`statement_timeout`](Self::statement_timeout)
///   bound the migrations' statements (not the wait for the advisory lock, which the step's
///   own timeout bounds).
///
/// Migrations are files named `V<number>__<name>.sql` (the name of letters, digits and `_`),
/// one per version: a [`dir`](Self::dir) read when the step runs (its names checked at
/// validation; a ConfigMap volume works as it is), or an [`embedded`](Self::embedded) set.
///
/// # Errors
///
/// Connection and login failures as [`PostgresWait`](super::PostgresWait) classifies them. A
/// migration's own failure is classified by SQLSTATE: `55P03` (lock_timeout), class `40`
/// (serialization failure, deadlock) and class `08` transient; class `42` (syntax, undefined
/// objects, permissions) and `57014` (statement_timeout) permanent. Validation (exit 2): a
/// badly named file, two files of one version, no migrations, a zero timeout, a history table
/// name that is not an identifier.
///
/// # Default
///
/// | setting | default |
/// |---|---|
/// | policy | [`Policy::new`] (5 attempts, 200 ms to 10 s apart) |
/// | connection | as [`PostgresWait`](super::PostgresWait) (port 5432, `PG*` variables) |
/// | history table | `refinery_schema_history` |
/// | lock timeout, statement timeout | the server's (none unless configured) |
/// | name | `postgres-migrate ` and the server, e.g. `postgres-migrate db:5432` |
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use init_core::prelude::*;
/// use init_steps::postgres::{PostgresMigrate, PostgresWait};
///
/// fn main() -> std::process::ExitCode {
///     Plan::new("orders-init")
///         .step(PostgresWait::url_from_env("DATABASE_URL"))
///         .step(
///             PostgresMigrate::url_from_env("DATABASE_URL")
///                 .dir("/migrations")
///                 .lock_timeout(Duration::from_secs(5))
///                 .timeout(Duration::from_secs(300)),
///         )
///         .run_main()
/// }
/// ```
#[derive(Debug)]
pub struct PostgresMigrate {
    name: String,
    spec: ConnectSpec<Postgres>,
    migrations: Option<Migrations>,
    configured_twice: bool,
    history_table: String,
    lock_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
}

postgres_builder!(PostgresMigrate, "postgres-migrate", "Migrates");

impl PostgresMigrate {
    fn with_spec(name: String, spec: ConnectSpec<Postgres>) -> Self {
        Self {
            name,
            spec,
            migrations: None,
            configured_twice: false,
            history_table: DEFAULT_HISTORY_TABLE.to_owned(),
            lock_timeout: None,
            statement_timeout: None,
        }
    }

    /// Applies the `V<number>__<name>.sql` files directly in `path`, read when the step runs;
    /// other files, and entries whose names start with `.`, are ignored.
    ///
    /// ```
    /// let migrate = init_steps::postgres::PostgresMigrate::new("db").dir("/migrations");
    /// ```
    #[must_use]
    pub fn dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.configured_twice |= self.migrations.is_some();
        self.migrations = Some(Migrations::Dir(path.into()));
        self
    }

    /// Applies a set built into the binary: file names (`V<number>__<name>.sql`) and their SQL.
    ///
    /// ```
    /// let migrate = init_steps::postgres::PostgresMigrate::new("db").embedded([
    ///     ("V1__create_orders.sql", "CREATE TABLE orders (id bigint PRIMARY KEY)"),
    ///     ("V2__add_email.sql", "ALTER TABLE orders ADD COLUMN email text"),
    /// ]);
    /// ```
    #[must_use]
    pub fn embedded<N, S>(mut self, migrations: impl IntoIterator<Item = (N, S)>) -> Self
    where
        N: Into<String>,
        S: Into<String>,
    {
        self.configured_twice |= self.migrations.is_some();
        let set = migrations
            .into_iter()
            .map(|(name, sql)| (name.into(), sql.into()))
            .collect();
        self.migrations = Some(Migrations::Embedded(set));
        self
    }

    /// The history table (`refinery_schema_history` by default), `name` or `schema.name`.
    ///
    /// ```
    /// let migrate = init_steps::postgres::PostgresMigrate::new("db").history_table("orders_schema_history");
    /// ```
    #[must_use]
    pub fn history_table(mut self, name: impl Into<String>) -> Self {
        self.history_table = name.into();
        self
    }

    /// How long a migration's statement may wait for a lock (PostgreSQL's `lock_timeout`),
    /// so that a migration stuck behind the running application's transactions fails
    /// (transient, `55P03`) instead of queueing every query behind it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let migrate = init_steps::postgres::PostgresMigrate::new("db").lock_timeout(Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// How long one statement of a migration may run (PostgreSQL's `statement_timeout`);
    /// exceeding it is permanent (`57014`): the same migration would take as long again.
    ///
    /// ```
    /// use std::time::Duration;
    /// let migrate = init_steps::postgres::PostgresMigrate::new("db").statement_timeout(Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// `SET lock_timeout ...; SET statement_timeout ...` for the settings given.
    fn session_settings(&self) -> String {
        let mut sql = String::new();
        for (name, value) in [
            ("lock_timeout", self.lock_timeout),
            ("statement_timeout", self.statement_timeout),
        ] {
            if let Some(value) = value {
                sql.push_str(&format!("SET {name} = '{}ms';", value.as_millis()));
            }
        }
        sql
    }

    async fn migrate(
        &self,
        client: &mut Client,
        migrations: &[Migration],
    ) -> Result<(), StepError> {
        let what = self.name.as_str();
        // A SET rather than a start-up option: a pooler in session mode passes it on, and a
        // server older than 14 (no such setting, 42704) still migrates, only without it.
        let check = format!("SET client_connection_check_interval = {CLIENT_CHECK_INTERVAL_MS}");
        if let Err(e) = client.batch_execute(&check).await {
            match e.code() {
                Some(code) if code.code() == "42704" => tracing::warn!(
                    "the server has no client_connection_check_interval (PostgreSQL 13 or older): a cancelled copy's session ends only when the lock comes or its statement ends"
                ),
                _ => return Err(classify(&format!("{what}: session settings"), e, false)),
            }
        }
        let key = format!("initkit-migrate:{}", self.history_table);
        client
            .execute(LOCK_SQL, &[&key])
            .await
            .map_err(|e| classify(&format!("{what}: advisory lock"), e, false))?;
        let settings = self.session_settings();
        if !settings.is_empty() {
            client
                .batch_execute(&settings)
                .await
                .map_err(|e| classify(&format!("{what}: session settings"), e, false))?;
        }
        let mut runner = Runner::new(migrations);
        runner.set_migration_table_name(&self.history_table);
        let report = runner
            .run_async(client)
            .await
            .map_err(|e| self.migration_error(e))?;
        let applied = report.applied_migrations();
        for migration in applied {
            tracing::info!(migration = %migration, "applied migration");
        }
        let latest = migrations
            .last()
            .map(Migration::version)
            .unwrap_or_default();
        tracing::info!(
            applied = applied.len(),
            version = latest,
            "schema up to date"
        );
        Ok(())
    }

    /// A refinery error as a [`StepError`] naming the migration.
    fn migration_error(&self, error: refinery_core::Error) -> StepError {
        let what = &self.name;
        let table = &self.history_table;
        match error.kind() {
            Kind::DivergentVersion(applied, set) if applied.name() == set.name() => {
                StepError::permanent(format!(
                    "{what}: migration {set} was changed after it was applied (its checksum differs from the one in {table})"
                ))
            }
            Kind::DivergentVersion(applied, set) => StepError::permanent(format!(
                "{what}: migration {set} has the version of {applied}, applied before"
            )),
            Kind::MissingVersion(missing) if missing.applied_on().is_some() => {
                StepError::permanent(format!(
                    "{what}: migration {missing} was applied but is not among the migrations"
                ))
            }
            Kind::MissingVersion(missing) => StepError::permanent(format!(
                "{what}: migration {missing} is older than the schema's version and was never applied"
            )),
            Kind::Connection(context, source) => {
                let context = context.strip_prefix("error ").unwrap_or(context);
                let db = source
                    .downcast_ref::<tokio_postgres::Error>()
                    .and_then(tokio_postgres::Error::as_db_error);
                match db {
                    Some(db) => {
                        let code = db.code().code();
                        StepError::with_class(
                            migration_class(code),
                            format!("{what}: {context}: {} ({code})", db.message()),
                        )
                    }
                    // The connection broke: the transaction is rolled back, try again.
                    None => StepError::transient(format!("{what}: {context}")).with_source(error),
                }
            }
            _ => StepError::permanent(format!("{what}: {error}")),
        }
    }
}

/// The class of a migration's SQLSTATE: as [`sqlstate_class`], except that a lock timeout is
/// worth another attempt and class 42 (an object a migration names does not exist, a syntax
/// error, a permission) is a bug in the migration, not "not yet".
fn migration_class(code: &str) -> ErrorClass {
    match code {
        "55P03" => ErrorClass::Transient,
        _ if code.starts_with("42") => ErrorClass::Permanent,
        _ => sqlstate_class(code, false).0,
    }
}

/// `name` or `schema.name`, each an unquoted SQL identifier (refinery puts it in its SQL as is).
fn is_table_name(name: &str) -> bool {
    let part = |p: &str| {
        p.len() <= 63
            && p.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    match name.split_once('.') {
        Some((schema, table)) => part(schema) && part(table),
        None => part(name),
    }
}

#[async_trait]
impl Step for PostgresMigrate {
    fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        let invalid = |message: String| StepError::invalid(format!("{}: {message}", self.name));
        self.spec.resolve_env(&self.name, &|key| cx.env(key))?;
        if self.configured_twice {
            return Err(invalid(
                "migrations given twice: expected one dir(..) or one embedded(..)".to_owned(),
            ));
        }
        match &self.migrations {
            None => {
                return Err(invalid(
                    "no migrations: expected dir(\"/migrations\") or embedded([..])".to_owned(),
                ));
            }
            Some(migrations) => migrations.check().map_err(invalid)?,
        }
        if !is_table_name(&self.history_table) {
            return Err(invalid(format!(
                "history table {:?}: expected name or schema.name (letters, digits, _)",
                self.history_table
            )));
        }
        for (name, value) in [
            ("lock timeout", self.lock_timeout),
            ("statement timeout", self.statement_timeout),
        ] {
            if let Some(value) = value
                && (value.as_millis() == 0 || value.as_millis() > i32::MAX as u128)
            {
                return Err(invalid(format!(
                    "{name} {value:?}: expected from 1ms to {}ms",
                    i32::MAX
                )));
            }
        }
        Ok(())
    }

    fn reads(&self) -> Vec<Reference> {
        self.spec.reads()
    }

    fn policy(&self) -> Policy {
        Policy::new()
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let migrations = match &self.migrations {
            Some(source) => source
                .load()
                .map_err(|m| StepError::permanent(format!("{}: {m}", self.name)))?,
            None => return Err(StepError::invalid(format!("{}: no migrations", self.name))),
        };
        let settings = self.spec.resolve_run(&self.name, ctx)?;
        let (mut client, mut driver) = session::connect(&self.name, &settings, None, false).await?;
        let outcome = driver
            .run(&self.name, self.migrate(&mut client, &migrations))
            .await;
        driver.close(client).await;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(step: &PostgresMigrate) -> Result<(), StepError> {
        step.validate(&ValidateContext::with_env([("HOME", "/")]))
    }

    #[test]
    fn a_step_without_migrations_is_invalid() {
        let err = validate(&PostgresMigrate::new("db")).unwrap_err();
        assert!(err.is_invalid());
        assert_eq!(
            err.to_string(),
            "postgres-migrate db:5432: no migrations: expected dir(\"/migrations\") or embedded([..])"
        );
    }

    #[test]
    fn migrations_given_twice_are_invalid() {
        let step = PostgresMigrate::new("db")
            .dir("/migrations")
            .embedded([("V1__a.sql", "SELECT 1")]);
        let err = validate(&step).unwrap_err();
        assert!(err.to_string().contains("migrations given twice"), "{err}");
    }

    #[test]
    fn a_duplicate_version_is_invalid_at_validation() {
        let step = PostgresMigrate::new("db").embedded([
            ("V1__create_orders.sql", "SELECT 1"),
            ("V1__add_email.sql", "SELECT 1"),
        ]);
        let err = validate(&step).unwrap_err();
        assert!(err.is_invalid());
        assert!(err.to_string().contains("have the same version 1"), "{err}");
    }

    #[test]
    fn zero_timeouts_and_odd_table_names_are_invalid() {
        let ok = || PostgresMigrate::new("db").embedded([("V1__a.sql", "SELECT 1")]);
        assert!(validate(&ok()).is_ok());
        let err = validate(&ok().lock_timeout(Duration::ZERO)).unwrap_err();
        assert!(err.to_string().contains("lock timeout 0ns"), "{err}");
        let err = validate(&ok().statement_timeout(Duration::from_secs(1 << 40))).unwrap_err();
        assert!(err.to_string().contains("statement timeout"), "{err}");
        for bad in ["", "history; DROP TABLE x", "a.b.c", "1st", "\"quoted\""] {
            let err = validate(&ok().history_table(bad)).unwrap_err();
            assert!(err.to_string().contains("history table"), "{bad}: {err}");
        }
        assert!(validate(&ok().history_table("app.schema_history")).is_ok());
    }

    #[test]
    fn a_password_from_a_published_value_is_declared_as_read() {
        let step = PostgresMigrate::new("db")
            .user_from_value("db.username")
            .password_from_value("db.password");
        let reads: Vec<_> = step.reads().iter().map(ToString::to_string).collect();
        assert_eq!(reads, ["values.db.username", "values.db.password"]);
    }

    #[test]
    fn migration_sqlstates_make_lock_timeouts_transient_and_sql_bugs_permanent() {
        assert_eq!(migration_class("55P03"), ErrorClass::Transient);
        assert_eq!(migration_class("40P01"), ErrorClass::Transient);
        assert_eq!(migration_class("42P01"), ErrorClass::Permanent);
        assert_eq!(migration_class("42601"), ErrorClass::Permanent);
        assert_eq!(migration_class("57014"), ErrorClass::Permanent);
        assert_eq!(migration_class("23505"), ErrorClass::Permanent);
    }

    #[test]
    fn session_settings_are_sent_in_milliseconds() {
        let step = PostgresMigrate::new("db")
            .lock_timeout(Duration::from_secs(5))
            .statement_timeout(Duration::from_millis(1500));
        assert_eq!(
            step.session_settings(),
            "SET lock_timeout = '5000ms';SET statement_timeout = '1500ms';"
        );
        assert_eq!(PostgresMigrate::new("db").session_settings(), "");
    }
}
