//! `wait_databases`: waits until PostgreSQL accepts a login and answers `SELECT 1` and, when
//! `REDIS_ADDR` is set (and the `redis` feature is on), until Redis answers `PING`; usable as an init container as it is.
//!
//! ```text
//! DATABASE_URL=postgres://app:secret@postgres:5432/orders?sslmode=require \
//! REDIS_ADDR=redis:6379 REDIS_PASSWORD=... wait_databases
//! ```
//!
//! The URL's password is registered as a secret (masked in every log line); exit codes and
//! logging follow [`Plan::run_main`]. The database steps' size figures in the README are
//! measured on this binary:
//! `cargo build --release --example wait_databases --no-default-features --features tcp,postgres`
//! (and `--features full`).

use std::process::ExitCode;
use std::time::Duration;

use initkit::PostgresWait;
#[cfg(feature = "redis")]
use initkit::RedisWait;
use initkit::prelude::*;

fn main() -> ExitCode {
    let postgres = PostgresWait::url_from_env("DATABASE_URL").timeout(Duration::from_secs(120));
    let plan = Plan::new("wait-databases");
    #[cfg(not(feature = "redis"))]
    let plan = plan.step(postgres);
    #[cfg(feature = "redis")]
    let plan = match std::env::var("REDIS_ADDR") {
        Ok(addr) => {
            let mut redis = RedisWait::new(addr);
            if std::env::var_os("REDIS_PASSWORD").is_some() {
                redis = redis.password_from_env("REDIS_PASSWORD");
            }
            plan.concurrently((postgres, redis.timeout(Duration::from_secs(120))))
        }
        Err(_) => plan.step(postgres),
    };
    plan.run_main()
}
