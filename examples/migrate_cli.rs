//! A migration run by an external CLI through the `Command` step: output streamed into the
//! step's logs, exit codes classified, the process group stopped on cancel or timeout.
//!
//! ```text
//! DATA_DIR=/tmp/orders-data cargo run --example migrate_cli --features command
//! ```
//!
//! The CLI here is `examples/migrations/migrate.sh`, a small migration tool in POSIX sh, so the
//! example runs on any machine; a real service would run `migrate`, `flyway`, `sqlx migrate run`
//! or `alembic upgrade head` the same way. What the step needs from the tool:
//!
//! - It is idempotent or guarded: it records applied versions and takes a lock, so a rerun (the
//!   kubelet reruns a failed init container from the start, and every replica runs it) applies
//!   nothing twice.
//! - Its exit codes say whether to retry: here 75 (`EX_TEMPFAIL`, another run holds the lock) is
//!   listed as transient and retried with backoff; any other failure is permanent and fails the
//!   plan at once, with the tool's last stderr line in the termination message.
//!
//! Environment: `DATA_DIR` (the data the tool migrates; it exits with code 2 when unset),
//! `MIGRATIONS_DIR` (default: `examples/migrations` in this repository; `/app/migrations` in
//! the image), and the usual `INITKIT_*` variables of `run_main`.

use std::process::ExitCode;
use std::time::Duration;

use initkit::Command;
use initkit::prelude::*;

/// `EX_TEMPFAIL` from sysexits.h: "try again later".
const EX_TEMPFAIL: i32 = 75;

fn main() -> ExitCode {
    let migrations = std::env::var("MIGRATIONS_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/migrations").to_owned());
    let migrate = Command::new([
        "sh".to_owned(),
        format!("{migrations}/migrate.sh"),
        "up".to_owned(),
    ])
    .env("MIGRATIONS_DIR", &migrations)
    .transient_exit_codes([EX_TEMPFAIL])
    .kill_grace(Duration::from_secs(10))
    .named("migrate")
    .timeout(Duration::from_secs(300));
    Plan::new("orders-migrate").step(migrate).run_main()
}
