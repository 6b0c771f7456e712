//! `MysqlWait`: waits until MySQL or MariaDB accepts a login and answers a check.

use std::path::PathBuf;
use std::time::Duration;

use init_core::{
    Context, Policy, Reference, Step, StepError, ValidateContext, ValuePath, async_trait,
};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::TlsMode;
use super::classify::classify;
use super::session;
use super::settings::{ConnectSpec, DEFAULT_PORT, Origin, UrlParts};
use crate::support::db_settings::{Source, parse_address};

/// Waits until MySQL or MariaDB accepts a login and answers a check: `SELECT 1` by default, or
/// "this table exists" ([`table_exists`](Self::table_exists)) and "this query returns a row"
/// ([`query_returns_row`](Self::query_returns_row)) for "the schema is ready", not only "the
/// server is up".
///
/// Each attempt connects over the real protocol (TLS as [`TlsMode`] says),
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
/// | TLS | [`TlsMode::Disable`] |
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
    spec: ConnectSpec,
    checks: Vec<Check>,
    wait_for_database: bool,
}

#[derive(Debug, Clone)]
enum Check {
    TableExists(String),
    QueryReturnsRow(String),
}

impl MysqlWait {
    fn with_origin(origin: Origin) -> Self {
        let spec = ConnectSpec::new(origin);
        Self {
            name: format!("mysql {}", spec.display()),
            spec,
            checks: Vec::new(),
            wait_for_database: false,
        }
    }

    /// Waits for the server at `host`, `host:port` or `[ipv6]:port` (port 3306 by default).
    ///
    /// ```
    /// use init_core::{Step, ValidateContext};
    /// use init_steps::mysql::MysqlWait;
    ///
    /// assert_eq!(MysqlWait::new("db").name(), "mysql db:3306");
    /// let bad = MysqlWait::new("db:0").validate(&ValidateContext::with_env([("", "")]));
    /// assert!(bad.unwrap_err().is_invalid());
    /// ```
    pub fn new(address: impl AsRef<str>) -> Self {
        Self::with_origin(Origin::Address(parse_address(
            address.as_ref(),
            DEFAULT_PORT,
        )))
    }

    /// Waits for the server of a `mysql://user:password@host:port/database` URL (`mariadb://`
    /// too); the query may set `ssl-mode` (`DISABLED`, `REQUIRED`, `VERIFY_IDENTITY`, or
    /// `disable`, `require`, `verify-full`) and `ssl-ca`. Its password is registered as a
    /// secret when the step runs. A bad URL is reported by [`validate`](Step::validate),
    /// without repeating it.
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::mysql::MysqlWait;
    ///
    /// let wait = MysqlWait::url("mysql://app:s3cret-pass@db:3306/orders?ssl-mode=REQUIRED");
    /// assert_eq!(wait.name(), "mysql db:3306/orders");
    /// assert!(!format!("{wait:?}").contains("s3cret-pass"));
    /// ```
    pub fn url(url: impl AsRef<str>) -> Self {
        Self::with_origin(Origin::Url(Box::new(UrlParts::parse(url.as_ref()))))
    }

    /// Waits for the server of the URL in environment variable `var` (checked at validation).
    ///
    /// ```
    /// use init_core::{Step, ValidateContext};
    /// use init_steps::mysql::MysqlWait;
    ///
    /// let wait = MysqlWait::url_from_env("DATABASE_URL");
    /// assert_eq!(wait.name(), "mysql $DATABASE_URL");
    /// let unset = wait.validate(&ValidateContext::with_env([("HOME", "/")])).unwrap_err();
    /// assert_eq!(unset.to_string(), "mysql $DATABASE_URL: environment variable DATABASE_URL is not set");
    /// ```
    pub fn url_from_env(var: impl Into<String>) -> Self {
        Self::with_origin(Origin::UrlEnv(var.into()))
    }

    /// The database to log in to (overrides the URL's).
    ///
    /// ```
    /// let wait = init_steps::mysql::MysqlWait::new("db").database("orders");
    /// ```
    #[must_use]
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.spec.database = Some(database.into());
        self
    }

    /// The user to log in as.
    ///
    /// ```
    /// let wait = init_steps::mysql::MysqlWait::new("db").user("orders_app");
    /// ```
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.spec.user = Some(Source::Literal(user.into()));
        self
    }

    /// The user name from a published value, a [`ValuePath`] such as `db.username` (declared
    /// as a read, so [`Plan::validate`](init_core::Plan::validate) checks an earlier step
    /// publishes it).
    ///
    /// ```
    /// use init_core::Step;
    /// let wait = init_steps::mysql::MysqlWait::new("db").user_from_value("db.username");
    /// assert_eq!(wait.reads()[0].to_string(), "values.db.username");
    /// ```
    #[must_use]
    pub fn user_from_value(mut self, path: impl Into<ValuePath>) -> Self {
        self.spec.user = Some(Source::Value(path.into()));
        self
    }

    /// The password from a published value, a [`ValuePath`] such as `db.password` (a secret
    /// published by [`KvRead`](crate::vault::KvRead), say; declared as a read, so
    /// [`Plan::validate`](init_core::Plan::validate) checks an earlier step publishes it).
    ///
    /// ```
    /// use init_core::Step;
    /// let wait = init_steps::mysql::MysqlWait::new("db").password_from_value("db.password");
    /// assert_eq!(wait.reads()[0].to_string(), "values.db.password");
    /// ```
    #[must_use]
    pub fn password_from_value(mut self, path: impl Into<ValuePath>) -> Self {
        self.spec.password = Some(Source::Value(path.into()));
        self
    }

    /// The password from environment variable `var` (checked at validation; registered as a
    /// secret when the step runs).
    ///
    /// ```
    /// let wait = init_steps::mysql::MysqlWait::new("db").password_from_env("ORDERS_DB_PASSWORD");
    /// ```
    #[must_use]
    pub fn password_from_env(mut self, var: impl Into<String>) -> Self {
        self.spec.password = Some(Source::Env(var.into()));
        self
    }

    /// Whether and how to use TLS (overrides the URL's `ssl-mode`).
    ///
    /// ```
    /// use init_steps::mysql::{MysqlWait, TlsMode};
    /// let wait = MysqlWait::new("db").tls(TlsMode::Require);
    /// ```
    #[must_use]
    pub fn tls(mut self, mode: TlsMode) -> Self {
        self.spec.tls = Some(mode);
        self
    }

    /// The PEM file of the CA that signed the server's certificate, for
    /// [`TlsMode::VerifyFull`] (only these CAs are trusted then,
    /// as the client's `--ssl-ca`); without one, verify-full trusts the system roots.
    ///
    /// ```
    /// use init_steps::mysql::{MysqlWait, TlsMode};
    /// let wait = MysqlWait::new("db").tls(TlsMode::VerifyFull).ca_file("/etc/ssl/db/ca.pem");
    /// ```
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.spec.ca_file = Some(path.into());
        self
    }

    /// Bounds the TCP connection, TLS handshake and login of one attempt (3 s by default).
    ///
    /// ```
    /// use std::time::Duration;
    /// let wait = init_steps::mysql::MysqlWait::new("db").connect_timeout(Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.spec.connect_timeout = timeout;
        self
    }

    /// Also waits until table (or view) `name` exists: `database.table`, or a table of the
    /// database logged in to; either part may be quoted with backticks.
    ///
    /// ```
    /// let wait = init_steps::mysql::MysqlWait::new("db").table_exists("orders.schema_version");
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
    /// let wait = init_steps::mysql::MysqlWait::new("db")
    ///     .query_returns_row("SELECT 1 FROM schema_version WHERE version >= 7");
    /// ```
    #[must_use]
    pub fn query_returns_row(mut self, sql: impl Into<String>) -> Self {
        self.checks.push(Check::QueryReturnsRow(sql.into()));
        self
    }

    /// Waits for the database to be created, instead of failing at once when it does not
    /// exist (1049).
    ///
    /// ```
    /// let wait = init_steps::mysql::MysqlWait::new("db").database("orders").wait_for_database();
    /// ```
    #[must_use]
    pub fn wait_for_database(mut self) -> Self {
        self.wait_for_database = true;
        self
    }

    async fn check(&self, conn: &mut Conn) -> Result<(), StepError> {
        let what = self.name.as_str();
        if self.checks.is_empty() {
            conn.query_drop("SELECT 1")
                .await
                .map_err(|e| classify(what, e, false))?;
        }
        for check in &self.checks {
            match check {
                Check::TableExists(table) => {
                    let (schema, name) = split_table(table)
                        .map_err(|m| StepError::permanent(format!("{what}: table {table}: {m}")))?;
                    let found: Option<u8> = conn
                        .exec_first(
                            "SELECT 1 FROM information_schema.tables \
                             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?",
                            (schema, name),
                        )
                        .await
                        .map_err(|e| classify(&format!("{what}: table {table}"), e, false))?;
                    if found.is_none() {
                        return Err(StepError::transient(format!(
                            "{what}: table {table} does not exist yet"
                        )));
                    }
                }
                Check::QueryReturnsRow(sql) => {
                    let row: Option<mysql_async::Row> = conn
                        .query_first(sql.as_str())
                        .await
                        .map_err(|e| classify(&format!("{what}: check query"), e, false))?;
                    if row.is_none() {
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
        for check in &self.checks {
            match check {
                Check::TableExists(table) => {
                    let (schema, _) = split_table(table).map_err(|m| {
                        StepError::invalid(format!("{}: table {table:?}: {m}", self.name))
                    })?;
                    if schema.is_none() && settings.database.is_none() {
                        return Err(StepError::invalid(format!(
                            "{}: table {table:?}: expected database.table, or a database to log in to",
                            self.name
                        )));
                    }
                }
                Check::QueryReturnsRow(sql) if sql.trim().is_empty() => {
                    return Err(StepError::invalid(format!(
                        "{}: empty check query: expected one SQL statement",
                        self.name
                    )));
                }
                Check::QueryReturnsRow(_) => {}
            }
        }
        Ok(())
    }

    fn policy(&self) -> Policy {
        Policy::wait()
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let settings = self.spec.resolve_run(&self.name, ctx)?;
        let mut conn = session::connect(&self.name, &settings, self.wait_for_database).await?;
        let outcome = self.check(&mut conn).await;
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
