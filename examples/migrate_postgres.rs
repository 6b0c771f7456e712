//! `migrate_postgres`: waits until PostgreSQL accepts a login, then applies the SQL migrations
//! of a directory (`V<number>__<name>.sql`), each once, whatever the number of copies started at
//! the same moment; usable as an init container as it is.
//!
//! ```text
//! DATABASE_URL=postgres://app:secret@postgres:5432/orders?sslmode=require \
//! MIGRATIONS_DIR=/migrations migrate_postgres
//! ```
//!
//! `MIGRATIONS_DIR` defaults to `/migrations` (a ConfigMap volume works as it is). Migrations
//! wait at most 5 s for a table lock (`lock_timeout`), then the step tries again. The URL's
//! password is masked in every log line; exit codes and logging follow [`Plan::run_main`].
//! `cargo build --release --example migrate_postgres --features postgres-migrate`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use initkit::prelude::*;
use initkit::{PostgresMigrate, PostgresWait};

fn main() -> ExitCode {
    let dir =
        std::env::var_os("MIGRATIONS_DIR").map_or_else(|| "/migrations".into(), PathBuf::from);
    Plan::new("migrate-postgres")
        .step(PostgresWait::url_from_env("DATABASE_URL").timeout(Duration::from_secs(120)))
        .step(
            PostgresMigrate::url_from_env("DATABASE_URL")
                .dir(dir)
                .lock_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(600)),
        )
        .run_main()
}
