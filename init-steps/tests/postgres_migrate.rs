//! `PostgresMigrate` against a real PostgreSQL 15 started by `test-servers`: migrations applied
//! in order and recorded, an edited applied migration refused, a failing migration rolled back
//! whole, `lock_timeout` and `statement_timeout` applied to the migrations, and the advisory
//! lock waited for. (Several processes at once and signals: the root package's
//! `tests/migrate_postgres.rs`, on the example binary.)
#![cfg(feature = "postgres-migrate")]

use std::time::Duration;

use init_core::{Context, Plan, Report, Retry, Step, StepExt, StepStatus};
use init_steps::postgres::PostgresMigrate;
use test_servers::{Postgres, postgres};

async fn run(step: impl Step + 'static) -> Report {
    Plan::new("test").step(step).run(&Context::new()).await
}

fn error(report: &Report) -> String {
    report.steps[0].error.clone().unwrap_or_default()
}

fn query(pg: &Postgres, db: &str, sql: &str) -> String {
    pg.query(db, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// One attempt, bounded: what these tests expect of each run.
fn once(step: PostgresMigrate) -> impl Step {
    step.retry(Retry::never()).timeout(Duration::from_secs(60))
}

/// A session of the test's own, driven on the runtime.
async fn session(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn a_directory_is_applied_in_version_order_and_recorded_once() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("mig_dir");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("V10__add_total.sql"),
        "ALTER TABLE orders ADD COLUMN total numeric; INSERT INTO log VALUES (10);",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("V2__create_orders.sql"),
        "CREATE TABLE log (v int); CREATE TABLE orders (id bigint PRIMARY KEY); INSERT INTO log VALUES (2);",
    )
    .unwrap();

    let first = run(once(PostgresMigrate::url(&url).dir(dir.path()))).await;
    let second = run(once(PostgresMigrate::url(&url).dir(dir.path()))).await;

    assert!(first.is_success(), "{first:?}");
    assert!(second.is_success(), "{second:?}");
    assert_eq!(
        query(pg, "mig_dir", "SELECT v FROM log ORDER BY v"),
        "2\n10"
    );
    assert_eq!(
        query(
            pg,
            "mig_dir",
            "SELECT version, name FROM refinery_schema_history ORDER BY version"
        ),
        "2|create_orders\n10|add_total"
    );
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused_permanently_naming_it() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("mig_edited");
    let v1 = ("V1__create_orders.sql", "CREATE TABLE orders (id bigint)");
    let applied = run(once(PostgresMigrate::url(&url).embedded([
        v1,
        (
            "V2__add_email.sql",
            "ALTER TABLE orders ADD COLUMN email text",
        ),
    ])))
    .await;
    assert!(applied.is_success(), "{applied:?}");

    let edited = PostgresMigrate::url(&url).embedded([
        v1,
        (
            "V2__add_email.sql",
            "ALTER TABLE orders ADD COLUMN email varchar(320)",
        ),
        (
            "V3__add_total.sql",
            "ALTER TABLE orders ADD COLUMN total int",
        ),
    ]);
    let report = run(edited.timeout(Duration::from_secs(60))).await;

    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].attempts, 1, "permanent: no retry");
    assert!(
        error(&report).contains("migration V2__add_email was changed after it was applied"),
        "{}",
        error(&report)
    );
    assert_eq!(
        query(
            pg,
            "mig_edited",
            "SELECT count(*) FROM refinery_schema_history"
        ),
        "2",
        "V3 was not applied"
    );
}

#[tokio::test]
async fn a_failing_migration_leaves_nothing_of_itself_and_is_permanent() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("mig_failing");
    let migrate = PostgresMigrate::url(&url).embedded([
        ("V1__create_log.sql", "CREATE TABLE log (v int)"),
        (
            "V2__half.sql",
            "INSERT INTO log VALUES (2); CREATE TABLE t2 (x int); SELECT * FROM no_such_table;",
        ),
    ]);

    let report = run(migrate.timeout(Duration::from_secs(60))).await;

    assert_eq!(report.steps[0].attempts, 1, "{report:?}");
    assert!(
        error(&report).contains("applying migration V2__half:")
            && error(&report).contains("(42P01)"),
        "{}",
        error(&report)
    );
    assert_eq!(query(pg, "mig_failing", "SELECT count(*) FROM log"), "0");
    assert_eq!(
        query(pg, "mig_failing", "SELECT to_regclass('t2') IS NULL"),
        "t"
    );
    assert_eq!(
        query(
            pg,
            "mig_failing",
            "SELECT string_agg(version::text, ',') FROM refinery_schema_history"
        ),
        "1"
    );
}

#[tokio::test]
async fn lock_timeout_fails_a_migration_stuck_behind_a_table_lock_transiently() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("mig_lock_timeout");
    query(pg, "mig_lock_timeout", "CREATE TABLE orders (id bigint)");
    let holder = session(&url).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let migrate = PostgresMigrate::url(&url)
        .embedded([(
            "V1__add_email.sql",
            "ALTER TABLE orders ADD COLUMN email text",
        )])
        .lock_timeout(Duration::from_millis(200));

    let report = run(migrate
        .retry(Retry::new().with_max_attempts(2))
        .timeout(Duration::from_secs(60)))
    .await;

    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].attempts, 2, "transient: tried again");
    assert!(
        error(&report).contains("V1__add_email") && error(&report).contains("lock timeout (55P03)"),
        "{}",
        error(&report)
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn statement_timeout_stops_a_long_migration_permanently() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("mig_statement_timeout");
    let migrate = PostgresMigrate::url(&url)
        .embedded([("V1__slow.sql", "SELECT pg_sleep(30)")])
        .statement_timeout(Duration::from_millis(200));

    let report = run(migrate.timeout(Duration::from_secs(60))).await;

    assert_eq!(report.steps[0].attempts, 1, "{report:?}");
    assert!(
        error(&report).contains("V1__slow") && error(&report).contains("(57014)"),
        "{}",
        error(&report)
    );
}

#[tokio::test]
async fn a_second_copy_waits_for_the_advisory_lock_then_applies_nothing() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("mig_advisory");
    let set = [
        ("V1__create_log.sql", "CREATE TABLE log (v int)"),
        (
            "V2__slow.sql",
            "SELECT pg_sleep(1); INSERT INTO log VALUES (2)",
        ),
    ];

    let (a, b) = tokio::join!(
        run(once(PostgresMigrate::url(&url).embedded(set))),
        run(once(PostgresMigrate::url(&url).embedded(set))),
    );

    assert!(a.is_success(), "{a:?}");
    assert!(b.is_success(), "{b:?}");
    assert_eq!(query(pg, "mig_advisory", "SELECT count(*) FROM log"), "1");
}

#[tokio::test]
async fn the_password_from_the_url_never_reaches_the_report() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("mig_secret");
    let migrate = PostgresMigrate::url(&url).embedded([("V1__bad.sql", "SELEC 1")]);

    let report = run(migrate.timeout(Duration::from_secs(60))).await;

    assert_eq!(report.steps[0].status, StepStatus::Failed);
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("(42601)"), "{json}");
    assert!(!json.contains(pg.password()), "{json}");
}
