//! The migration examples run as real processes against real files: the SQLite migration as a
//! `once` `#[init_step]`, and an external migration CLI through `Command`. Both are safe to
//! rerun: the kubelet reruns a failed init container from the start.
#![cfg(any(feature = "macros", feature = "command"))]

mod example_bin;

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The example `name`, logging at `info`, with no termination message and `envs` set.
fn example(name: &str, envs: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new(example_bin::path(name));
    cmd.env_remove("INITKIT_DRY_RUN")
        .env("INITKIT_LOG", "info")
        .env("INITKIT_TERMINATION_LOG", "/dev/null")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

fn run(name: &str, envs: &[(&str, &Path)]) -> Output {
    example(name, envs).output().expect("the example runs")
}

/// A migrations directory in `dir` holding `migrate.sh` and one migration, `file`.
#[cfg(feature = "command")]
fn migrations_dir(dir: &Path, file: &str, script: &str) -> std::path::PathBuf {
    let migrations = dir.join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/migrations/migrate.sh"),
        migrations.join("migrate.sh"),
    )
    .unwrap();
    std::fs::write(migrations.join(file), script).unwrap();
    migrations
}

fn logs(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[cfg(feature = "macros")]
#[test]
fn the_sqlite_migration_applies_once_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orders.db");
    let state = dir.path().join("state");
    let envs = [
        ("DATABASE_PATH", db.as_path()),
        ("INITKIT_STATE_DIR", state.as_path()),
    ];

    let first = run("migrate_sqlite", &envs);
    assert!(first.status.success(), "{}", logs(&first));
    assert!(
        logs(&first).contains("applied migration version=2"),
        "{}",
        logs(&first)
    );
    assert!(state.join("migrate.done").exists());

    // A rerun in the same pod: the `once` marker skips the step.
    let second = run("migrate_sqlite", &envs);
    assert!(second.status.success(), "{}", logs(&second));
    assert!(logs(&second).contains("skipped"), "{}", logs(&second));

    // Another pod (no marker): the step runs, the version table guards every migration.
    std::fs::remove_dir_all(&state).unwrap();
    let third = run("migrate_sqlite", &envs);
    assert!(third.status.success(), "{}", logs(&third));
    assert!(
        !logs(&third).contains("applied migration"),
        "{}",
        logs(&third)
    );

    let conn = rusqlite::Connection::open(&db).unwrap();
    let versions: Vec<u32> = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [1, 2]);
    conn.execute("INSERT INTO orders (customer) VALUES ('acme')", [])
        .unwrap();
    conn.execute(
        "INSERT INTO order_lines (order_id, sku, quantity) VALUES (1, 'x', 2)",
        [],
    )
    .unwrap();
}

#[cfg(feature = "macros")]
#[test]
fn a_failing_sqlite_migration_is_permanent_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the database file should be: SQLite cannot open it.
    let db = dir.path().join("orders.db");
    std::fs::create_dir(&db).unwrap();
    let report = dir.path().join("report.json");
    let state = dir.path().join("state");
    let output = run(
        "migrate_sqlite",
        &[
            ("DATABASE_PATH", db.as_path()),
            ("INITKIT_STATE_DIR", state.as_path()),
            ("INITKIT_REPORT", report.as_path()),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", logs(&output));
    let report = std::fs::read_to_string(report).unwrap();
    assert!(report.contains("\"attempts\":1"), "{report}");
    assert!(!state.join("migrate.done").exists());
}

#[cfg(feature = "command")]
#[test]
fn the_cli_migration_streams_its_output_and_a_rerun_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = run("migrate_cli", &[("DATA_DIR", data.as_path())]);
    assert!(first.status.success(), "{}", logs(&first));
    let text = logs(&first);
    assert!(text.contains("applying 001_layout.sh"), "{text}");
    assert!(text.contains("schema is up to date (2 applied)"), "{text}");
    assert!(data.join("orders").is_dir());
    assert_eq!(
        std::fs::read_to_string(data.join("schema_version")).unwrap(),
        "001\n002\n"
    );

    // An operator's edit survives a rerun, which applies nothing.
    std::fs::write(data.join("settings.conf"), "currency = \"USD\"\n").unwrap();
    let second = run("migrate_cli", &[("DATA_DIR", data.as_path())]);
    assert!(second.status.success(), "{}", logs(&second));
    assert!(logs(&second).contains("(0 applied)"), "{}", logs(&second));
    assert_eq!(
        std::fs::read_to_string(data.join("settings.conf")).unwrap(),
        "currency = \"USD\"\n"
    );
}

#[cfg(feature = "command")]
#[test]
fn a_cli_failure_puts_its_last_stderr_line_in_the_termination_message() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = migrations_dir(
        dir.path(),
        "001_broken.sh",
        "echo 'relation \"orders\" already exists' >&2\nfalse\n",
    );
    let data = dir.path().join("data");
    let message = dir.path().join("termination-log");
    let output = run(
        "migrate_cli",
        &[
            ("DATA_DIR", data.as_path()),
            ("MIGRATIONS_DIR", migrations.as_path()),
            ("INITKIT_TERMINATION_LOG", message.as_path()),
        ],
    );
    // Exit code 65 is not listed as transient: one attempt, then the plan fails.
    assert_eq!(output.status.code(), Some(1), "{}", logs(&output));
    let message = std::fs::read_to_string(message).unwrap();
    assert!(
        message.starts_with("step \"migrate\" failed after 1 attempt in "),
        "{message}"
    );
    assert!(
        message.ends_with("sh: exited with code 65: 001_broken.sh failed"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("schema_version")).unwrap(),
        ""
    );
}

#[cfg(feature = "command")]
#[test]
fn sigterm_stops_a_running_cli_migration_which_releases_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = migrations_dir(dir.path(), "001_slow.sh", "echo copying; sleep 60\n");
    let data = dir.path().join("data");
    let lock = data.join(".migrate.lock");
    let mut child = example(
        "migrate_cli",
        &[
            ("DATA_DIR", data.as_path()),
            ("MIGRATIONS_DIR", migrations.as_path()),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let wait_until = |what: &str, cond: &dyn Fn() -> bool| {
        for _ in 0..1000 {
            if cond() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("timed out waiting until {what}");
    };
    wait_until("the migration holds its lock", &|| lock.is_dir());
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(child.wait().unwrap().code(), Some(143));
    // The script got SIGTERM too (its process group did), and its trap released the lock.
    wait_until("the lock is released", &|| !lock.exists());
    assert_eq!(
        std::fs::read_to_string(data.join("schema_version")).unwrap(),
        ""
    );
}
