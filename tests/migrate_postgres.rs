//! `examples/migrate_postgres.rs` run as real processes against a real PostgreSQL 15: eight
//! copies started at the same moment apply each migration once and all exit 0; a copy SIGKILLed
//! in the middle of a migration leaves nothing of it and the next run completes; a rerun applies
//! nothing; a copy stopped by SIGTERM has its server session ended at once, whether it waits for
//! the advisory lock or runs a migration.
//!
//! The example must be built: `cargo test --features postgres-migrate` does it (`--test` alone
//! does not: `cargo build --example migrate_postgres --features postgres-migrate` first).
#![cfg(feature = "postgres-migrate")]

mod example_bin;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use test_servers::{Postgres, postgres};

/// The example against database `url`, migrations from `dir`.
fn copy(url: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(example_bin::path("migrate_postgres"));
    cmd.env_remove("INITKIT_DRY_RUN")
        .env("INITKIT_LOG", "info")
        .env("INITKIT_TERMINATION_LOG", "/dev/null")
        .env("DATABASE_URL", url)
        .env("MIGRATIONS_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A migrations directory: V1 makes the side-effect table and records 1, `v2` is the second
/// migration's SQL, V3 records 3.
fn migrations(v2: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "V1__create_side_effects.sql",
            "CREATE TABLE side_effects (migration int NOT NULL); INSERT INTO side_effects VALUES (1);",
        ),
        ("V2__second.sql", v2),
        (
            "V3__third.sql",
            "INSERT INTO side_effects VALUES (3); CREATE TABLE third (id int);",
        ),
    ];
    for (name, sql) in files {
        std::fs::write(dir.path().join(name), sql).unwrap();
    }
    dir
}

fn query(pg: &Postgres, db: &str, sql: &str) -> String {
    pg.query(db, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The applied versions and the side effects, each as `1,2,3`.
fn state(pg: &Postgres, db: &str) -> (String, String) {
    let history = query(
        pg,
        db,
        "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM refinery_schema_history",
    );
    let effects = query(
        pg,
        db,
        "SELECT coalesce(string_agg(migration::text, ',' ORDER BY migration), '') FROM side_effects",
    );
    (history, effects)
}

fn logs(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Polls `sql` (one value) in `db` until it is not empty, for up to 30 s; the value.
fn until_some(pg: &Postgres, db: &str, sql: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = query(pg, db, sql);
        if !value.is_empty() {
            return value;
        }
        assert!(Instant::now() < deadline, "still nothing from: {sql}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server process of the session in `db` that is sleeping in a migration.
fn sleeping_backend(pg: &Postgres, db: &str) -> String {
    until_some(
        pg,
        db,
        &format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = '{db}' AND state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
        ),
    )
}

/// Whether server process `pid` is gone within 5 s (the check interval is 250 ms).
fn session_ends(pg: &Postgres, pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let left = query(
            pg,
            "postgres",
            &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
        );
        if left == "0" {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn eight_copies_started_at_once_apply_each_migration_once_and_all_exit_0() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("mig_eight");
    let dir = migrations("SELECT pg_sleep(0.3); INSERT INTO side_effects VALUES (2);");

    let mut copies: Vec<Child> = (0..8)
        .map(|_| copy(&url, dir.path()).spawn().unwrap())
        .collect();
    let outputs: Vec<Output> = copies
        .drain(..)
        .map(|c| c.wait_with_output().unwrap())
        .collect();

    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{}", logs(output));
    }
    assert_eq!(
        state(pg, "mig_eight"),
        ("1,2,3".to_owned(), "1,2,3".to_owned())
    );
    let appliers = outputs
        .iter()
        .filter(|o| logs(o).contains("applied=3"))
        .count();
    let idle = outputs
        .iter()
        .filter(|o| logs(o).contains("applied=0"))
        .count();
    assert_eq!((appliers, idle), (1, 7));
}

#[test]
fn a_copy_sigkilled_in_the_middle_of_a_migration_leaves_nothing_half_applied() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("mig_sigkill");
    let dir = migrations(
        "INSERT INTO side_effects VALUES (2); CREATE TABLE second (id int); SELECT pg_sleep(2);",
    );
    let mut first = copy(&url, dir.path()).spawn().unwrap();
    sleeping_backend(pg, "mig_sigkill");

    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    assert_eq!(state(pg, "mig_sigkill"), ("1".to_owned(), "1".to_owned()));
    assert_eq!(
        query(pg, "mig_sigkill", "SELECT to_regclass('second') IS NULL"),
        "t"
    );
    let next = copy(&url, dir.path()).output().unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", logs(&next));
    assert_eq!(
        state(pg, "mig_sigkill"),
        ("1,2,3".to_owned(), "1,2,3".to_owned())
    );
}

#[test]
fn a_rerun_applies_nothing() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("mig_rerun");
    let dir = migrations("INSERT INTO side_effects VALUES (2);");
    let first = copy(&url, dir.path()).output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", logs(&first));

    let rerun = copy(&url, dir.path()).output().unwrap();

    assert_eq!(rerun.status.code(), Some(0), "{}", logs(&rerun));
    assert!(logs(&rerun).contains("applied=0"), "{}", logs(&rerun));
    assert!(
        !logs(&rerun).contains("applied migration"),
        "{}",
        logs(&rerun)
    );
    assert_eq!(
        state(pg, "mig_rerun"),
        ("1,2,3".to_owned(), "1,2,3".to_owned())
    );
}

#[test]
fn a_sigtermed_copy_has_its_server_session_ended_waiting_for_the_lock_or_migrating() {
    let Some(pg) = postgres() else { return };
    let url = pg.create_database("mig_sigterm");
    let dir = migrations("INSERT INTO side_effects VALUES (2); SELECT pg_sleep(60);");
    // A migrates (and holds the advisory lock for a minute); B waits for the lock.
    let holder = copy(&url, dir.path()).spawn().unwrap();
    let holder_backend = sleeping_backend(pg, "mig_sigterm");
    let waiter = copy(&url, dir.path()).spawn().unwrap();
    let waiter_backend = until_some(
        pg,
        "mig_sigterm",
        "SELECT pid FROM pg_stat_activity WHERE datname = 'mig_sigterm' AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
    );

    sigterm(&waiter);
    let waited = waiter.wait_with_output().unwrap();

    assert_eq!(waited.status.code(), Some(143), "{}", logs(&waited));
    assert!(
        session_ends(pg, &waiter_backend),
        "the waiting copy's session is still in pg_stat_activity while the lock is held"
    );

    sigterm(&holder);
    let migrated = holder.wait_with_output().unwrap();

    assert_eq!(migrated.status.code(), Some(143), "{}", logs(&migrated));
    assert!(
        session_ends(pg, &holder_backend),
        "the migrating copy's session is still running its migration"
    );
    assert_eq!(state(pg, "mig_sigterm"), ("1".to_owned(), "1".to_owned()));
}
