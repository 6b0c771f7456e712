//! `MysqlWait`: waits until MySQL or MariaDB accepts a login and answers a check.

use init_core::{Context, Policy, Reference, Step, StepError, ValidateContext, async_trait};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::classify::classify;
use super::session;
use super::settings::Mysql;
use crate::support::db_builder::sql_builder;
use crate::support::db_check::{Check, CheckClient, run_checks, validate_checks};
use crate::support::db_connect::ConnectSpec;

/// Waits until MySQL or MariaDB accepts a login and answers a check: `SELECT 1` by default, or
/// "this table exists" ([`table_exists`](Self::table_exists)) and "this query returns a row"
/// ([`query_returns_row`](Self::query_returns_row)) for "the schema is ready", not only "the
/// server is up".
///
/// Each attempt connects over the real protocol (TLS as [`TlsMode`](super::TlsMode) says),
/// logs in, runs the checks and ends the session.
///
/// # Where and as whom
///
/// - [`new("db:3306")`](Self::new): an address; [`url`](Self::url): a `mysql://` (or
///   `mariadb://`) URL (its password is registered as a secret, so the redactor masks it);
///   [`url_from_env`](Self::url_from_env): a URL in an environment variable.
/// - The user and password can come from published values ([`user_from_value`](Self::user_from_value),
///   [`password_from_value`](Self::password_from_value): a Vault secret read by an earlier
///   step) or the environment ([`password_from_env`](Self::password_from_env)). Nothing is
///   read from the environment unasked (MySQL's only such variable, `MYSQL_PWD`, is deprecated
///   as insecure).
///
/// # Errors and cadence
///
/// Classified by the server's error code as MySQL and MariaDB document them
/// (<https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html>,
/// <https://mariadb.com/kb/en/mariadb-error-code-reference/>): 1040 (too many connections),
/// 1053 (server shutdown) and a refused connection (the client's 2003) are transient and
/// polled at the wait cadence ([`StepError::with_wait_cadence`]); 1045 (access denied) and
/// 1044 (no access to the database) are permanent; 1049 (unknown database) is permanent
/// unless [`wait_for_database`](Self::wait_for_database). A missing table (1146) or column
/// (1054) in a check is transient. A name that does not resolve or a timeout backs off. A
/// certificate that does not verify is permanent. Messages never hold the password.
///
/// # Default
///
/// | setting | default |
/// |---|---|
/// | policy | [`Policy::wait`] (no attempt limit, 5 s per attempt) |
/// | port | 3306 |
/// | user | `root` |
/// | database | none (the login alone) |
/// | password | none |
/// | TLS | [`TlsMode::Disable`](super::TlsMode::Disable) |
/// | connect timeout | 3 s (the TCP connection, TLS and the login) |
/// | check | `SELECT 1` |
/// | name | `mysql ` and the server, e.g. `mysql db:3306` |
///
/// # Examples
///
/// ```no_run
/// use init_core::prelude::*;
/// use init_steps::mysql::{MysqlWait, TlsMode};
///
/// fn main() -> std::process::ExitCode {
///     Plan::new("orders-init")
///         .step(
///             MysqlWait::new("mariadb:3306")
///                 .database("orders")
///                 .user_from_value("db.username")
///                 .password_from_value("db.password")
///                 .tls(TlsMode::VerifyFull)
///                 .ca_file("/etc/ssl/db/ca.pem")
///                 .table_exists("orders"),
///         )
///         .run_main()
/// }
/// ```
#[derive(Debug)]
pub struct MysqlWait {
    name: String,
    spec: ConnectSpec<Mysql>,
    checks: Vec<Check>,
    wait_for_database: bool,
}

sql_builder! {
    MysqlWait in mysql: Mysql, kind "mysql", "Waits for", port "3306";
    url "a `mysql://user:password@host:port/database` URL (`mariadb://` too); the query may set `ssl-mode` (`DISABLED`, `REQUIRED`, `VERIFY_IDENTITY`, or `disable`, `require`, `verify-full`) and `ssl-ca`",
        example ("mysql://app:s3cret-pass@db:3306/orders?ssl-mode=REQUIRED", "db:3306/orders", "mysql");
    overrides ("the URL's", "the URL's `ssl-mode`"), ca "the client's `--ssl-ca`", timeout "the TCP connection, TLS handshake and login";
    checks ("`database.table`, or a table of the database logged in to; either part may be quoted with backticks", "orders.schema_version", "1049");
}

impl MysqlWait {
    fn with_spec(name: String, spec: ConnectSpec<Mysql>) -> Self {
        Self {
            name,
            spec,
            checks: Vec::new(),
            wait_for_database: false,
        }
    }
}

/// The checks over mysql_async; a missing table or column is transient ([`classify`]).
impl CheckClient for Conn {
    async fn select_one(&mut self, what: &str) -> Result<(), StepError> {
        self.query_drop("SELECT 1")
            .await
            .map_err(|e| classify(what, e, false))
    }

    async fn table_exists(&mut self, what: &str, table: &str) -> Result<bool, StepError> {
        let (schema, name) =
            split_table(table).map_err(|m| StepError::permanent(format!("{what}: {m}")))?;
        let found: Option<u8> = self
            .exec_first(
                "SELECT 1 FROM information_schema.tables \
                 WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?",
                (schema, name),
            )
            .await
            .map_err(|e| classify(what, e, false))?;
        Ok(found.is_some())
    }

    async fn returns_row(&mut self, what: &str, sql: &str) -> Result<bool, StepError> {
        let row: Option<mysql_async::Row> = self
            .query_first(sql)
            .await
            .map_err(|e| classify(what, e, false))?;
        Ok(row.is_some())
    }
}

/// `db.table`, `table` or the same with backticks (``` `my db`.`t` ```, a doubled backtick
/// inside one): the database (when named) and the table, unquoted.
fn split_table(input: &str) -> Result<(Option<String>, String), String> {
    const EXPECTED: &str = "expected table or database.table";
    let mut parts = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'`') {
            chars.next();
            loop {
                match chars.next() {
                    Some('`') if chars.peek() == Some(&'`') => {
                        chars.next();
                        part.push('`');
                    }
                    Some('`') => break,
                    Some(c) => part.push(c),
                    None => return Err(format!("an unclosed backtick: {EXPECTED}")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                if c == '`' || c.is_whitespace() {
                    return Err(format!("{c:?} outside backticks: {EXPECTED}"));
                }
                part.push(c);
                chars.next();
            }
        }
        if part.is_empty() {
            return Err(format!("an empty name: {EXPECTED}"));
        }
        parts.push(part);
        match chars.next() {
            None => break,
            Some('.') => {}
            Some(c) => return Err(format!("{c:?} after a quoted name: {EXPECTED}")),
        }
    }
    match <[String; 2]>::try_from(parts) {
        Ok([schema, table]) => Ok((Some(schema), table)),
        Err(parts) => match <[String; 1]>::try_from(parts) {
            Ok([table]) => Ok((None, table)),
            Err(_) => Err(format!("more than two names: {EXPECTED}")),
        },
    }
}

#[async_trait]
impl Step for MysqlWait {
    fn name(&self) -> &str {
        &self.name
    }

    fn reads(&self) -> Vec<Reference> {
        self.spec.reads()
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        let settings = self.spec.resolve_env(&self.name, &|key| cx.env(key))?;
        validate_checks(&self.name, &self.checks, |table| {
            let (schema, _) = split_table(table)
                .map_err(|m| StepError::invalid(format!("{}: table {table:?}: {m}", self.name)))?;
            if schema.is_none() && settings.database.is_none() {
                return Err(StepError::invalid(format!(
                    "{}: table {table:?}: expected database.table, or a database to log in to",
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
        let mut conn = session::connect(&self.name, &settings, self.wait_for_database).await?;
        let outcome = run_checks(&self.name, &self.checks, &mut conn).await;
        session::close(conn).await;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_take_a_database_and_backticks() {
        let ok = [
            ("orders", (None, "orders")),
            ("shop.orders", (Some("shop"), "orders")),
            ("`my db`.`o.rders`", (Some("my db"), "o.rders")),
            ("`a``b`", (None, "a`b")),
        ];
        for (input, (schema, table)) in ok {
            let (s, t) = split_table(input).unwrap();
            assert_eq!((s.as_deref(), t.as_str()), (schema, table), "{input}");
        }
        for (bad, expected) in [
            ("a.b.c", "more than two names"),
            ("", "an empty name"),
            ("a.", "an empty name"),
            ("`a", "an unclosed backtick"),
            ("`a`b", "'b' after a quoted name"),
            ("a b", "' ' outside backticks"),
        ] {
            let err = split_table(bad).unwrap_err();
            assert!(err.contains(expected), "{bad}: {err}");
        }
    }
}
