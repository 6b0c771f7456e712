//! A database migration as an `#[init_step]`: SQLite through rusqlite, run `once`, idempotent and
//! guarded.
//!
//! ```text
//! DATABASE_PATH=/tmp/orders.db INITKIT_STATE_DIR=/tmp/initkit-state \
//!     cargo run --example migrate_sqlite --features macros
//! ```
//!
//! Three layers make a rerun harmless (the kubelet reruns an init container from the start after
//! any failure, and every replica of a Deployment runs it):
//!
//! 1. `once`: after a success the plan records a marker in its state directory (an `emptyDir`
//!    shared by the pod's init containers survives their restarts) and skips the step next time.
//!    The marker is per pod, so it only saves work: it is not what keeps the schema right.
//! 2. Guarded: every migration runs in a `BEGIN IMMEDIATE` transaction that takes the database's
//!    write lock first, checks the `schema_version` table, applies the migration and records its
//!    version in the same transaction. Two replicas that start at once take turns; the second
//!    finds the version recorded and applies nothing. A crash leaves no half-applied migration.
//! 3. Idempotent statements (`CREATE TABLE IF NOT EXISTS`): even without the version table, a
//!    second run changes nothing.
//!
//! Errors are classified for the executor: a locked database (another replica is migrating) is
//! transient and retried; a failing statement is permanent (another attempt would fail the same
//! way).
//!
//! Environment: `DATABASE_PATH` (default `/data/orders.db`), `INITKIT_STATE_DIR` (default
//! `/run/initkit`), and the usual `INITKIT_*` variables of `run_main`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use initkit::prelude::*;
use rusqlite::{Connection, ErrorCode, TransactionBehavior};

/// The migrations, in order. A released migration is never edited: add a new one.
const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS orders (
             id INTEGER PRIMARY KEY,
             customer TEXT NOT NULL,
             created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
         )",
    ),
    (
        2,
        "CREATE TABLE IF NOT EXISTS order_lines (
             order_id INTEGER NOT NULL REFERENCES orders(id),
             sku TEXT NOT NULL,
             quantity INTEGER NOT NULL CHECK (quantity > 0)
         );
         CREATE INDEX IF NOT EXISTS order_lines_by_order ON order_lines(order_id)",
    ),
];

/// How long a connection waits for another replica's lock before the attempt fails
/// (transient: the executor retries it).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema version after the migration, for later steps (`ctx.get::<SchemaVersion>()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SchemaVersion(u32);

/// Brings the database's schema to the latest version.
#[init_step(once, retries = 5, timeout = "2m")]
async fn migrate(ctx: &Context) -> Result<SchemaVersion, StepError> {
    with_database(ctx, apply).await
}

/// Opens the database and applies every migration it has not recorded yet.
fn apply(path: &Path) -> Result<SchemaVersion, rusqlite::Error> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
         )",
    )?;
    let mut current = 0;
    for &(version, sql) in MIGRATIONS {
        // The write lock first, then the check: the check and the change are one transaction.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_version WHERE version = ?1)",
            [version],
            |row| row.get(0),
        )?;
        if applied {
            tracing::debug!(version, "already applied");
        } else {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [version],
            )?;
            tracing::info!(version, "applied migration");
        }
        tx.commit()?;
        current = version;
    }
    Ok(SchemaVersion(current))
}

/// A locked or busy database is transient (another replica holds the lock); the rest is
/// permanent: a statement that failed once fails again.
fn classify(err: rusqlite::Error) -> StepError {
    let transient = matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    if transient {
        StepError::transient("database busy").with_source(err)
    } else {
        StepError::permanent("migration failed").with_source(err)
    }
}

/// Publishes the schema version the migration left, for the report and later steps.
#[init_step(name = "schema-version")]
async fn publish_version(ctx: &Context) -> Result<(), StepError> {
    // On a rerun `migrate` is skipped and inserted nothing: read it from the database then.
    let version = match ctx.get::<SchemaVersion>() {
        Some(SchemaVersion(v)) => v,
        None => with_database(ctx, |path| {
            Connection::open(path)?.query_row(
                "SELECT MAX(version) FROM schema_version",
                [],
                |row| row.get::<_, Option<u32>>(0),
            )
        })
        .await?
        .unwrap_or(0),
    };
    tracing::info!(version, "schema is current");
    ctx.publish("schema_version", version);
    Ok(())
}

/// Runs `work` on the database file (`DATABASE_PATH`, default `/data/orders.db`), with its
/// errors classified and named after the file.
///
/// rusqlite blocks: the work runs off the runtime's thread, which keeps handling signals, in the
/// step's span. If the attempt is dropped (SIGTERM, timeout), an open transaction is rolled back
/// when the process exits, or on the next open.
async fn with_database<T, F>(ctx: &Context, work: F) -> Result<T, StepError>
where
    T: Send + 'static,
    F: FnOnce(&Path) -> rusqlite::Result<T> + Send + 'static,
{
    let path = PathBuf::from(
        ctx.env("DATABASE_PATH")
            .unwrap_or_else(|| "/data/orders.db".to_owned()),
    );
    let label = path.display().to_string();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| work(&path)))
        .await
        .map_err(|err| StepError::transient(format!("{label}: database thread")).with_source(err))?
        .map_err(|err| classify(err).context(label))
}

fn main() -> ExitCode {
    let state_dir = std::env::var_os("INITKIT_STATE_DIR").unwrap_or_else(|| "/run/initkit".into());
    Plan::new("orders-db")
        .with_state_dir(state_dir)
        .step(migrate)
        .step(publish_version)
        .run_main()
}
