//! `wait_databases`: waits, all at once, until PostgreSQL (`DATABASE_URL`, feature `postgres`)
//! and MySQL or MariaDB (`MYSQL_URL`, feature `mysql`) accept a login and answer `SELECT 1`,
//! and until Redis (`REDIS_ADDR`, feature `redis`) answers `PING`; usable as an init
//! container as it is. Each server is waited for when its variable is set.
//!
//! ```text
//! DATABASE_URL=postgres://app:secret@postgres:5432/orders?sslmode=require \
//! MYSQL_URL=mysql://app:secret@mariadb:3306/orders \
//! REDIS_ADDR=redis:6379 REDIS_PASSWORD=... wait_databases
//! ```
//!
//! The URLs' passwords are registered as secrets (masked in every log line); exit codes and
//! logging follow [`Plan::run_main`]. The database steps' size figures in the README are
//! measured on this binary:
//! `cargo build --release --example wait_databases --no-default-features --features tcp,postgres`
//! (`tcp,mysql`, and `--features full`).

use std::process::ExitCode;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
use std::time::Duration;

#[cfg(feature = "mysql")]
use initkit::MysqlWait;
#[cfg(feature = "postgres")]
use initkit::PostgresWait;
#[cfg(feature = "redis")]
use initkit::RedisWait;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
use initkit::prelude::*;

/// How long each server is waited for.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
const TIMEOUT: Duration = Duration::from_secs(120);

#[cfg(not(any(feature = "postgres", feature = "mysql", feature = "redis")))]
fn main() -> ExitCode {
    eprintln!("wait_databases: built without a database feature (postgres, mysql, redis)");
    ExitCode::from(2)
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
fn main() -> ExitCode {
    let set = |var: &str| std::env::var_os(var).is_some();
    let mut waits: Vec<Box<dyn Step>> = Vec::new();
    #[cfg(feature = "postgres")]
    if set("DATABASE_URL") {
        waits.push(
            PostgresWait::url_from_env("DATABASE_URL")
                .timeout(TIMEOUT)
                .boxed(),
        );
    }
    #[cfg(feature = "mysql")]
    if set("MYSQL_URL") {
        waits.push(
            MysqlWait::url_from_env("MYSQL_URL")
                .timeout(TIMEOUT)
                .boxed(),
        );
    }
    #[cfg(feature = "redis")]
    if let Ok(addr) = std::env::var("REDIS_ADDR") {
        let mut redis = RedisWait::new(addr);
        if set("REDIS_PASSWORD") {
            redis = redis.password_from_env("REDIS_PASSWORD");
        }
        waits.push(redis.timeout(TIMEOUT).boxed());
    }
    if waits.is_empty() {
        eprintln!(
            "usage: set DATABASE_URL (feature postgres), MYSQL_URL (feature mysql) or \
             REDIS_ADDR (feature redis); none of this build's is set"
        );
        return ExitCode::from(2);
    }
    Plan::new("wait-databases").concurrently(waits).run_main()
}
