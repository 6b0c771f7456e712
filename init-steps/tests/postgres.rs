//! `PostgresWait` against a real PostgreSQL 15 started by `test-servers`: logins that work and
//! that do not, databases and tables that appear late, a server that starts after the wait
//! began, TLS (`require`, `verify-full` with the right and a wrong CA), and secrets kept out of
//! every log line, error and report.
#![cfg(feature = "postgres")]

#[path = "support/logs.rs"]
mod logs;
#[path = "support/refusing_port.rs"]
mod refusing_port;
#[path = "support/tls_server.rs"]
mod tls_server;

use std::time::Duration;

use init_core::{Context, Plan, Report, Retry, Step, StepExt, StepStatus, ValidateContext};
use init_steps::postgres::{PostgresWait, TlsMode};
use refusing_port::RefusingPort;
use test_servers::{Postgres, postgres};
use tls_server::TestCa;

async fn run(step: impl Step + 'static) -> Report {
    Plan::new("test").step(step).run(&Context::new()).await
}

async fn run_with(ctx: &Context, step: impl Step + 'static) -> Report {
    Plan::new("test").step(step).run(ctx).await
}

fn error(report: &Report) -> String {
    report.steps[0].error.clone().unwrap_or_default()
}

#[tokio::test]
async fn a_server_that_accepts_the_login_passes_select_1() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("pg_wait_ok");

    let report = run(PostgresWait::url(&url).timeout(Duration::from_secs(30))).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 1);
}

#[tokio::test]
async fn a_wrong_password_is_permanent_after_one_attempt() {
    let Some(pg) = postgres() else { return };
    pg.create_database("pg_wrong_password");
    let ctx = Context::with_env([("ORDERS_DB_PASSWORD", "not-the-password-1")]);
    let wait = PostgresWait::new(pg.addr())
        .database("pg_wrong_password")
        .user("postgres")
        .password_from_env("ORDERS_DB_PASSWORD");

    let report = run_with(&ctx, wait.timeout(Duration::from_secs(30))).await;

    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].attempts, 1);
    assert!(
        error(&report).contains("password authentication failed for user \"postgres\" (28P01)"),
        "{}",
        error(&report)
    );
}

#[tokio::test]
async fn an_unknown_user_is_permanent_after_one_attempt() {
    let Some(pg) = postgres() else { return };
    let ctx = Context::with_env([("PGPASSWORD", "whatever-password")]);
    let wait = PostgresWait::new(pg.addr())
        .user("nobody_here")
        .database("postgres");

    let report = run_with(&ctx, wait.timeout(Duration::from_secs(30))).await;

    assert_eq!(report.steps[0].attempts, 1);
    assert!(error(&report).contains("(28P01)"), "{}", error(&report));
}

#[tokio::test]
async fn a_missing_database_is_permanent_after_one_attempt() {
    let Some(pg) = postgres() else { return };

    let report =
        run(PostgresWait::url(pg.url("pg_never_created")).timeout(Duration::from_secs(30))).await;

    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].attempts, 1);
    assert!(
        error(&report).contains("database \"pg_never_created\" does not exist (3D000)"),
        "{}",
        error(&report)
    );
}

/// `53300` too_many_connections, shown for real: a role whose `CONNECTION LIMIT` is 0 is refused
/// with it (<https://www.postgresql.org/docs/15/sql-createrole.html>), a limit that a DBA (or
/// the connections going away) lifts, so the wait tries again instead of failing at once.
#[tokio::test]
async fn too_many_connections_is_transient_and_tried_again() {
    let Some(pg) = postgres() else { return };
    pg.query(
        "postgres",
        "DROP ROLE IF EXISTS no_slots_role; \
         CREATE ROLE no_slots_role LOGIN PASSWORD 'no-slots-password-1' CONNECTION LIMIT 0",
    )
    .unwrap();
    let ctx = Context::with_env([("NO_SLOTS_PASSWORD", "no-slots-password-1")]);
    let wait = PostgresWait::new(pg.addr())
        .database("postgres")
        .user("no_slots_role")
        .password_from_env("NO_SLOTS_PASSWORD")
        .retry(
            Retry::new()
                .with_initial_delay(Duration::from_millis(10))
                .with_max_attempts(3),
        );

    let report = run_with(&ctx, wait).await;

    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].attempts, 3, "{}", error(&report));
    assert!(
        error(&report).contains("too many connections for role \"no_slots_role\" (53300)"),
        "{}",
        error(&report)
    );

    pg.query("postgres", "ALTER ROLE no_slots_role CONNECTION LIMIT -1")
        .unwrap();
    let wait = PostgresWait::new(pg.addr())
        .database("postgres")
        .user("no_slots_role")
        .password_from_env("NO_SLOTS_PASSWORD");
    let report = run_with(&ctx, wait.timeout(Duration::from_secs(30))).await;
    assert!(report.is_success(), "{report:?}");
}

#[tokio::test]
async fn wait_for_database_succeeds_once_the_database_is_created() {
    let Some(pg) = postgres() else { return };
    pg.query("postgres", "DROP DATABASE IF EXISTS pg_created_late")
        .unwrap();
    let wait = PostgresWait::url(pg.url("pg_created_late"))
        .wait_for_database()
        // Bounded by the timeout, not by a count of attempts: the database comes when it comes.
        .retry(
            Retry::new()
                .with_initial_delay(Duration::from_millis(20))
                .with_max_delay(Duration::from_millis(50))
                .without_max_attempts(),
        )
        .timeout(Duration::from_secs(30));
    let creator = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(300));
        postgres().unwrap().create_database("pg_created_late");
    });

    let report = run(wait).await;
    creator.join().unwrap();

    assert!(report.is_success(), "{report:?}");
    assert!(report.steps[0].attempts > 1, "{report:?}");
}

#[tokio::test]
async fn a_server_started_after_the_wait_began_is_noticed() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let password = "late-server-password-1";
    let server = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        Postgres::start_on_port(port, password)
    });
    let ctx = Context::with_env([("PGPASSWORD", password)]);
    let wait = PostgresWait::new(format!("127.0.0.1:{port}"))
        .database("postgres")
        .timeout(Duration::from_secs(60));

    let report = run_with(&ctx, wait).await;
    let Some(_server) = server.join().unwrap() else {
        return; // not installed
    };

    assert!(report.is_success(), "{report:?}");
    // Refused while initdb ran (a second or more): polled at the wait cadence, not on the backoff.
    assert!(report.steps[0].attempts >= 20, "{report:?}");
}

#[tokio::test]
async fn a_refused_connection_asks_for_the_fast_cadence() {
    let refusing = RefusingPort::new();
    let port = refusing.port;
    let wait = PostgresWait::new(format!("127.0.0.1:{port}"));

    let err = wait.run(&Context::new()).await.unwrap_err();

    assert!(err.is_transient());
    assert!(err.at_wait_cadence());
    assert_eq!(
        err.to_string(),
        format!("postgres 127.0.0.1:{port}: error connecting to server: connection refused")
    );
}

#[tokio::test]
async fn table_exists_waits_until_the_table_is_created() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("pg_table_exists");
    let wait = PostgresWait::url(&url).table_exists("public.orders");
    let ctx = Context::new();

    let missing = wait.run(&ctx).await.unwrap_err();
    pg.query("pg_table_exists", "CREATE TABLE orders (id int)")
        .unwrap();
    let found = wait.run(&ctx).await;

    assert!(missing.is_transient());
    assert_eq!(
        missing.to_string(),
        "postgres 127.0.0.1:".to_owned()
            + &pg.port().to_string()
            + "/pg_table_exists: table public.orders does not exist yet"
    );
    assert!(found.is_ok(), "{found:?}");
}

#[tokio::test]
async fn a_malformed_table_name_is_permanent() {
    let Some(pg) = postgres() else { return };
    let wait = PostgresWait::url(pg.url("postgres")).table_exists("a.b.c.d");

    let err = wait.run(&Context::new()).await.unwrap_err();

    assert!(err.is_permanent(), "{err}");
}

#[tokio::test]
async fn query_returns_row_waits_for_the_table_and_a_row() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("pg_query_row");
    let wait = PostgresWait::url(&url)
        .query_returns_row("SELECT 1 FROM schema_version WHERE version >= 7");
    let ctx = Context::new();

    let no_table = wait.run(&ctx).await.unwrap_err();
    pg.query("pg_query_row", "CREATE TABLE schema_version (version int)")
        .unwrap();
    let no_row = wait.run(&ctx).await.unwrap_err();
    pg.query("pg_query_row", "INSERT INTO schema_version VALUES (7)")
        .unwrap();
    let ready = wait.run(&ctx).await;

    assert!(no_table.is_transient(), "{no_table}");
    assert!(no_table.to_string().contains("(42P01)"), "{no_table}");
    assert!(no_row.is_transient());
    assert!(
        no_row
            .to_string()
            .ends_with("check query returned no row yet"),
        "{no_row}"
    );
    assert!(ready.is_ok(), "{ready:?}");
}

#[tokio::test]
async fn a_query_with_a_syntax_error_is_permanent() {
    let Some(pg) = postgres() else { return };
    let wait = PostgresWait::url(pg.url("postgres")).query_returns_row("SELEC 1");

    let err = wait.run(&Context::new()).await.unwrap_err();

    assert!(err.is_permanent());
    assert!(err.to_string().contains("(42601)"), "{err}");
}

/// True when the session that runs it is encrypted.
const ON_TLS: &str = "SELECT 1 FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl";

#[tokio::test]
async fn verify_full_connects_over_tls_to_a_server_signed_by_the_ca() {
    let Some(pg) = Postgres::start_tls() else {
        return;
    };
    let ca = pg.ca_file().unwrap().to_owned();
    let wait = PostgresWait::url(pg.url("postgres"))
        .tls(TlsMode::VerifyFull)
        .ca_file(&ca)
        .query_returns_row(ON_TLS);

    let report = run(wait.timeout(Duration::from_secs(30))).await;

    assert!(report.is_success(), "{report:?}");
}

#[tokio::test]
async fn verify_full_from_the_url_names_the_host_it_checks() {
    let Some(pg) = Postgres::start_tls() else {
        return;
    };
    let ca = pg.ca_file().unwrap().display().to_string();
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={ca}",
        pg.url("postgres")
    );

    let localhost = url.replace("127.0.0.1", "localhost");
    let report = run(PostgresWait::url(localhost).query_returns_row(ON_TLS)).await;

    assert!(report.is_success(), "{report:?}");
}

#[tokio::test]
async fn verify_full_with_a_wrong_ca_fails_permanently() {
    let Some(pg) = Postgres::start_tls() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::new("other ca").write(dir.path(), "other-ca");
    let wait = PostgresWait::url(pg.url("postgres"))
        .tls(TlsMode::VerifyFull)
        .ca_file(&other_ca);

    let report = run(wait.timeout(Duration::from_secs(30))).await;

    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].attempts, 1);
    assert!(error(&report).contains("certificate"), "{}", error(&report));
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate() {
    let Some(pg) = Postgres::start_tls() else {
        return;
    };
    let wait = PostgresWait::url(pg.url("postgres"))
        .tls(TlsMode::Require)
        .query_returns_row(ON_TLS);

    let report = run(wait.timeout(Duration::from_secs(30))).await;

    assert!(report.is_success(), "{report:?}");
}

#[tokio::test]
async fn tls_required_of_a_server_without_tls_is_permanent() {
    let Some(pg) = postgres() else { return };
    let wait = PostgresWait::url(pg.url("postgres")).tls(TlsMode::Require);

    let report = run(wait.timeout(Duration::from_secs(30))).await;

    assert_eq!(report.steps[0].attempts, 1);
    assert!(
        error(&report).contains("server does not support TLS"),
        "{}",
        error(&report)
    );
}

#[tokio::test]
async fn the_password_never_appears_in_logs_errors_or_the_report() {
    let Some(pg) = postgres() else { return };
    let (logs, guard) = logs::capture();
    let ctx = Context::new();
    let failing = PostgresWait::url(pg.url("pg_no_such_db_for_logs"))
        .named("wrong-db")
        .timeout(Duration::from_secs(30));
    let waiting = PostgresWait::url(pg.url("postgres"))
        .table_exists("never_there")
        .named("no-table")
        .retry(
            Retry::new()
                .with_initial_delay(Duration::from_millis(10))
                .with_max_attempts(2),
        );

    let report = Plan::new("secrets")
        .concurrently([failing.boxed(), waiting.boxed()])
        .run(&ctx)
        .await;
    drop(guard);

    let password = pg.password();
    let logged = logs.text();
    assert!(
        logged.contains("does not exist"),
        "nothing logged: {logged}"
    );
    assert!(!logged.contains(password), "{logged}");
    assert!(!format!("{report:?}").contains(password));
    assert!(!report.to_json().contains(password));
    assert!(!format!("{:?}", PostgresWait::url(pg.url("x"))).contains(password));
    assert_eq!(
        ctx.redact(&pg.url("x")),
        pg.url("x").replace(password, "[redacted]")
    );
}

#[test]
fn bad_input_is_invalid_at_validation_naming_it() {
    let cx = ValidateContext::with_env([("PGSSLMODE", "prefer"), ("DATABASE_URL", "mysql://x")]);
    let cases = [
        (
            PostgresWait::url("postgres://u:pw-secret@db/x?sslmode=allow"),
            "tls mode \"allow\": expected one of disable, require, verify-full",
        ),
        (
            PostgresWait::new("db:5432"),
            "PGSSLMODE: tls mode \"prefer\"",
        ),
        (
            PostgresWait::url_from_env("DATABASE_URL"),
            "environment variable DATABASE_URL: url scheme \"mysql\"",
        ),
        (
            PostgresWait::url_from_env("NOPE_URL"),
            "environment variable NOPE_URL is not set",
        ),
        (
            PostgresWait::new("db")
                .tls(TlsMode::Require)
                .ca_file("/ca.pem"),
            "a ca file needs tls mode verify-full, not require",
        ),
        (
            PostgresWait::new("db")
                .tls(TlsMode::Disable)
                .password_from_env("NOPE_PW"),
            "environment variable NOPE_PW is not set",
        ),
        (
            PostgresWait::new("db")
                .tls(TlsMode::Disable)
                .password_from_value("db..password"),
            "value path \"db..password\"",
        ),
        (
            PostgresWait::new("db")
                .tls(TlsMode::Disable)
                .table_exists(" "),
            "empty table name",
        ),
        (
            PostgresWait::new("db")
                .tls(TlsMode::Disable)
                .connect_timeout(Duration::ZERO),
            "connect timeout 0s",
        ),
    ];
    for (wait, expected) in cases {
        let err = wait.validate(&cx).unwrap_err();
        assert!(err.is_invalid(), "{err}");
        assert!(err.to_string().contains(expected), "{err} lacks {expected}");
        assert!(!err.to_string().contains("pw-secret"));
    }
}
