//! Ready-made steps for initkit plans, one Cargo feature per family.
//!
//! | step | module | feature |
//! |---|---|---|
//! | [`TcpWait`](tcp::TcpWait): TCP ports accept connections | [`tcp`] | `tcp` |
//! | [`HttpWait`](http::HttpWait): an HTTP(S) endpoint answers as expected | [`http`] | `http` |
//! | [`FileWait`](fs::FileWait): a file exists, is non-empty or contains a string | [`fs`] | `fs` |
//! | [`Render`](template::Render): configuration files from templates | [`template`] | `template` |
//! | [`Command`](command::Command): a program or `sh` script, its process group stopped on cancel | [`command`] | `command` |
//! | [`EnsureDir`](fs::EnsureDir), [`Chmod`](fs::Chmod), [`Chown`](fs::Chown): directories, modes and owners, never following symlinks | [`fs`] | `fs` |
//! | [`CopyFile`](fs::CopyFile), [`WriteFile`](fs::WriteFile): files written atomically | [`fs`] | `fs` |
//! | [`VaultReady`](vault::VaultReady): Vault is initialized, unsealed and active | [`vault`] | `vault` |
//! | [`KubernetesLogin`](vault::KubernetesLogin), [`AppRoleLogin`](vault::AppRoleLogin), [`JwtLogin`](vault::JwtLogin), [`TokenLogin`](vault::TokenLogin): a Vault token for the steps after | [`vault`] | `vault` |
//! | [`KvRead`](vault::KvRead): a KV v1/v2 secret, published for templates and/or written to files | [`vault`] | `vault` |
//! | [`PkiIssue`](vault::PkiIssue): a certificate and key from Vault's PKI engine | [`vault`] | `vault` |
//! | [`VaultRevoke`](vault::VaultRevoke): revokes the login's token at the end of the plan | [`vault`] | `vault` |
//! | [`Download`](download::Download): a pinned, size-capped http(s) download, optionally a `.tar.gz` unpacked | [`download`] | `download` |
//! | [`CaBundle`](certs::CaBundle): the system CA bundle plus checked extra CA certificates, in one file | [`certs`] | `certs` |
//! | [`PostgresWait`](postgres::PostgresWait): PostgreSQL accepts a login and answers a check (a table exists, a query returns a row) | [`postgres`] | `postgres` |
//! | [`PostgresMigrate`](postgres::PostgresMigrate): SQL migrations applied once, in order, under an advisory lock (refinery) | [`postgres`] | `postgres-migrate` |
//! | [`MysqlWait`](mysql::MysqlWait): MySQL or MariaDB accepts a login and answers a check (a table exists, a query returns a row) | [`mysql`] | `mysql` |
//! | [`RedisWait`](redis::RedisWait): Redis accepts a login (password or ACL user), answers `PING`, optionally holds a key | [`redis`] | `redis` |
//!
//! Each family is behind its Cargo feature; the facade `initkit` turns them on with the same
//! names (`tcp`, `http`, `fs` and `template` by default, `full` for all).

// The table links every family; a build without some of them cannot resolve those links.
#![cfg_attr(
    not(all(
        feature = "tcp",
        feature = "http",
        feature = "fs",
        feature = "template",
        feature = "command",
        feature = "vault",
        feature = "download",
        feature = "certs",
        feature = "postgres",
        feature = "postgres-migrate",
        feature = "mysql",
        feature = "redis"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

// Shared machinery (atomic files, the HTTP client, the process-group runner, database
// settings, text helpers): crate-private, used by the feature modules above it.
mod support;

#[cfg(feature = "certs")]
pub mod certs;
#[cfg(feature = "command")]
pub mod command;
#[cfg(feature = "download")]
pub mod download;
#[cfg(feature = "fs")]
pub mod fs;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "tcp")]
pub mod tcp;
#[cfg(feature = "template")]
pub mod template;
#[cfg(feature = "vault")]
pub mod vault;

/// How a database step uses TLS: one type for `postgres`, `mysql` and `redis` (each family's
/// module re-exports it too).
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
pub use support::db_tls::TlsMode;
