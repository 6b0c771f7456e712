//! `MysqlWait` against a real MariaDB 10.11 started by `test-servers`: logins that work and
//! that do not, databases and tables that appear late, a server that starts after the wait
//! began, TLS (`require`, `verify-full` with the right and a wrong CA), and secrets kept out of
//! every log line, error and report.
#![cfg(feature = "mysql")]

#[path = "support/logs.rs"]
mod logs;
#[path = "support/refusing_port.rs"]
mod refusing_port;
#[path = "support/tls_server.rs"]
mod tls_server;

use std::time::Duration;

use init_core::{Context, Plan, Report, Retry, Step, StepExt, StepStatus, ValidateContext};
use init_steps::mysql::{MysqlWait, TlsMode};
use refusing_port::RefusingPort;
use test_servers::{MariaDb, mariadb};
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
    let Some(db) = mariadb() else { return };
    let url = db.create_database("my_wait_ok");

    let report = run(MysqlWait::url(&url).timeout(Duration::from_secs(30))).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 1);
}

#[tokio::test]
async fn a_login_without_a_database_passes() {
    let Some(db) = mariadb() else { return };
    let ctx = Context::with_env([("DB_PASSWORD", db.password())]);
    let wait = MysqlWait::new(db.addr()).password_from_env("DB_PASSWORD");

    let result = wait.run(&ctx).await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn a_wrong_password_is_permanent_after_one_attempt_with_the_server_message() {
    let Some(db) = mariadb() else { return };
    let ctx = Context::with_env([("ORDERS_DB_PASSWORD", "not-the-password-1")]);
    let wait = MysqlWait::new(db.addr())
        .user("root")
        .password_from_env("ORDERS_DB_PASSWORD");

    let report = run_with(&ctx, wait.timeout(Duration::from_secs(30))).await;

    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].attempts, 1);
    assert_eq!(
        error(&report),
        format!(
            "mysql {}: Access denied for user 'root'@'127.0.0.1' (using password: YES) (1045)",
            db.addr()
        )
    );
    assert!(!error(&report).contains("not-the-password-1"));
}

#[tokio::test]
async fn a_database_the_user_may_not_use_is_permanent_1044() {
    let Some(db) = mariadb() else { return };
    db.create_database("my_private");
    db.query(
        "mysql",
        "CREATE OR REPLACE USER 'limited'@'127.0.0.1' IDENTIFIED BY 'limited-password-1'",
    )
    .unwrap();
    let ctx = Context::with_env([("DB_PASSWORD", "limited-password-1")]);
    let wait = MysqlWait::new(db.addr())
        .user("limited")
        .password_from_env("DB_PASSWORD")
        .database("my_private");

    let report = run_with(&ctx, wait.timeout(Duration::from_secs(30))).await;

    assert_eq!(report.steps[0].attempts, 1);
    assert!(error(&report).ends_with("(1044)"), "{}", error(&report));
}

#[tokio::test]
async fn an_unknown_database_is_permanent_after_one_attempt() {
    let Some(db) = mariadb() else { return };

    let report =
        run(MysqlWait::url(db.url("my_never_created")).timeout(Duration::from_secs(30))).await;

    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].attempts, 1);
    assert!(
        error(&report).ends_with(": Unknown database 'my_never_created' (1049)"),
        "{}",
        error(&report)
    );
}

#[tokio::test]
async fn wait_for_database_succeeds_once_the_database_is_created() {
    let Some(db) = mariadb() else { return };
    db.query("mysql", "DROP DATABASE IF EXISTS my_created_late")
        .unwrap();
    let wait = MysqlWait::url(db.url("my_created_late"))
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
        mariadb().unwrap().create_database("my_created_late");
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
        MariaDb::start_on_port(port, password)
    });
    let ctx = Context::with_env([("DB_PASSWORD", password)]);
    let wait = MysqlWait::new(format!("127.0.0.1:{port}"))
        .password_from_env("DB_PASSWORD")
        .timeout(Duration::from_secs(60));

    let report = run_with(&ctx, wait).await;
    let Some(_server) = server.join().unwrap() else {
        return; // not installed
    };

    assert!(report.is_success(), "{report:?}");
    // Refused while mariadb-install-db ran (a second or more): polled at the wait cadence,
    // not on the backoff (which would make a dozen attempts at most).
    assert!(report.steps[0].attempts >= 20, "{report:?}");
}

#[tokio::test]
async fn a_refused_connection_asks_for_the_wait_cadence() {
    let refusing = RefusingPort::new();
    let port = refusing.port;

    let err = MysqlWait::new(format!("127.0.0.1:{port}"))
        .run(&Context::new())
        .await
        .unwrap_err();

    assert!(err.is_transient());
    assert!(err.at_wait_cadence());
    assert!(
        err.to_string()
            .starts_with(&format!("mysql 127.0.0.1:{port}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn table_exists_waits_until_the_table_is_created() {
    let Some(db) = mariadb() else { return };
    let url = db.create_database("my_table_exists");
    let in_database = MysqlWait::url(&url).table_exists("orders");
    let qualified = MysqlWait::url(db.url("")).table_exists("`my_table_exists`.`orders`");
    let ctx = Context::new();

    let missing = in_database.run(&ctx).await.unwrap_err();
    let missing_qualified = qualified.run(&ctx).await.unwrap_err();
    db.query("my_table_exists", "CREATE TABLE orders (id int)")
        .unwrap();
    let found = in_database.run(&ctx).await;
    let found_qualified = qualified.run(&ctx).await;

    assert!(missing.is_transient() && missing_qualified.is_transient());
    assert_eq!(
        missing.to_string(),
        format!(
            "mysql 127.0.0.1:{}/my_table_exists: table orders does not exist yet",
            db.port()
        )
    );
    assert!(found.is_ok(), "{found:?}");
    assert!(found_qualified.is_ok(), "{found_qualified:?}");
}

#[tokio::test]
async fn query_returns_row_waits_for_the_table_and_a_row() {
    let Some(db) = mariadb() else { return };
    let url = db.create_database("my_query_row");
    let wait =
        MysqlWait::url(&url).query_returns_row("SELECT 1 FROM schema_version WHERE version >= 7");
    let ctx = Context::new();

    let no_table = wait.run(&ctx).await.unwrap_err();
    db.query("my_query_row", "CREATE TABLE schema_version (version int)")
        .unwrap();
    let no_row = wait.run(&ctx).await.unwrap_err();
    db.query("my_query_row", "INSERT INTO schema_version VALUES (7)")
        .unwrap();
    let ready = wait.run(&ctx).await;

    assert!(no_table.is_transient(), "{no_table}");
    assert!(no_table.to_string().ends_with("(1146)"), "{no_table}");
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
    let Some(db) = mariadb() else { return };
    let wait = MysqlWait::url(db.url("mysql")).query_returns_row("SELEC 1");

    let err = wait.run(&Context::new()).await.unwrap_err();

    assert!(err.is_permanent());
    assert!(err.to_string().ends_with("(1064)"), "{err}");
}

/// A row when the session that runs it is encrypted.
const ON_TLS: &str = "SHOW SESSION STATUS WHERE Variable_name = 'Ssl_cipher' AND Value <> ''";

#[tokio::test]
async fn verify_full_connects_over_tls_to_a_server_signed_by_the_ca() {
    let Some(db) = MariaDb::start_tls() else {
        return;
    };
    let ca = db.ca_file().unwrap().to_owned();
    let plain = MysqlWait::url(db.url("mysql")).query_returns_row(ON_TLS);
    let wait = MysqlWait::url(db.url("mysql"))
        .tls(TlsMode::VerifyFull)
        .ca_file(&ca)
        .query_returns_row(ON_TLS);

    let report = run(wait.timeout(Duration::from_secs(30))).await;
    let not_encrypted = plain.run(&Context::new()).await.unwrap_err();

    assert!(report.is_success(), "{report:?}");
    assert!(
        not_encrypted.to_string().ends_with("returned no row yet"),
        "{not_encrypted}"
    );
}

#[tokio::test]
async fn verify_full_from_the_url_names_the_host_it_checks() {
    let Some(db) = MariaDb::start_tls() else {
        return;
    };
    let ca = db.ca_file().unwrap().display().to_string();
    let url = format!("{}?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}", db.url("mysql"));

    let localhost = url.replace("127.0.0.1", "localhost");
    let report = run(MysqlWait::url(localhost).query_returns_row(ON_TLS)).await;

    // `root`@`localhost` has the same password; the certificate names `localhost` too.
    assert!(report.is_success(), "{report:?}");
}

#[tokio::test]
async fn verify_full_with_a_wrong_ca_fails_permanently() {
    let Some(db) = MariaDb::start_tls() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::new("other ca").write(dir.path(), "other-ca");
    let wait = MysqlWait::url(db.url("mysql"))
        .tls(TlsMode::VerifyFull)
        .ca_file(&other_ca);

    let report = run(wait.timeout(Duration::from_secs(30))).await;

    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].attempts, 1);
    assert!(error(&report).contains("certificate"), "{}", error(&report));
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate() {
    let Some(db) = MariaDb::start_tls() else {
        return;
    };
    let wait = MysqlWait::url(db.url("mysql"))
        .tls(TlsMode::Require)
        .query_returns_row(ON_TLS);

    let report = run(wait.timeout(Duration::from_secs(30))).await;

    assert!(report.is_success(), "{report:?}");
}

#[tokio::test]
async fn tls_required_of_a_server_without_tls_is_permanent() {
    let Some(db) = mariadb() else { return };
    let wait = MysqlWait::url(db.url("mysql")).tls(TlsMode::Require);

    let report = run(wait.timeout(Duration::from_secs(30))).await;

    assert_eq!(report.steps[0].attempts, 1);
    assert!(
        error(&report).ends_with("the server does not support tls"),
        "{}",
        error(&report)
    );
}

#[tokio::test]
async fn the_password_never_appears_in_logs_errors_or_the_report() {
    let Some(db) = mariadb() else { return };
    let (logs, guard) = logs::capture();
    let ctx = Context::new();
    let failing = MysqlWait::url(db.url("my_no_such_db_for_logs"))
        .named("wrong-db")
        .timeout(Duration::from_secs(30));
    let waiting = MysqlWait::url(db.url("mysql"))
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

    let password = db.password();
    let logged = logs.text();
    assert!(
        logged.contains("Unknown database"),
        "nothing logged: {logged}"
    );
    assert!(!logged.contains(password), "{logged}");
    assert!(!format!("{report:?}").contains(password));
    assert!(!report.to_json().contains(password));
    assert!(!format!("{:?}", MysqlWait::url(db.url("x"))).contains(password));
    assert_eq!(
        ctx.redact(&db.url("x")),
        db.url("x").replace(password, "[redacted]")
    );
}

#[test]
fn bad_input_is_invalid_at_validation_naming_it() {
    let cx = ValidateContext::with_env([("DATABASE_URL", "postgres://x")]);
    let cases = [
        (
            MysqlWait::url("mysql://u:pw-secret@db/x?ssl-mode=PREFERRED"),
            "ssl-mode \"PREFERRED\": expected one of DISABLED, REQUIRED, VERIFY_IDENTITY",
        ),
        (
            MysqlWait::url_from_env("DATABASE_URL"),
            "environment variable DATABASE_URL: url scheme \"postgres\"",
        ),
        (
            MysqlWait::url_from_env("NOPE_URL"),
            "environment variable NOPE_URL is not set",
        ),
        (
            MysqlWait::new("db")
                .tls(TlsMode::Require)
                .ca_file("/ca.pem"),
            "a ca file needs tls mode verify-full, not require",
        ),
        (
            MysqlWait::new("db").password_from_env("NOPE_PW"),
            "environment variable NOPE_PW is not set",
        ),
        (
            MysqlWait::new("db").password_from_value("db..password"),
            "value path \"db..password\"",
        ),
        (
            MysqlWait::new("db").table_exists("orders"),
            "table \"orders\": expected database.table, or a database to log in to",
        ),
        (
            MysqlWait::new("db").table_exists("a.b.c"),
            "table \"a.b.c\": more than two names",
        ),
        (
            MysqlWait::new("db").query_returns_row(" "),
            "empty check query: expected one SQL statement",
        ),
        (
            MysqlWait::new("db").connect_timeout(Duration::ZERO),
            "connect timeout 0s",
        ),
        (MysqlWait::new("[db]:1"), "is not an IPv6 address"),
    ];
    for (wait, expected) in cases {
        let err = wait.validate(&cx).unwrap_err();
        assert!(err.is_invalid(), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(!err.to_string().contains("pw-secret"), "{err}");
    }
}
