//! The machinery the step families share, private to the crate: nothing here is a step.
//!
//! | module | what | used by |
//! |---|---|---|
//! | [`atomic`] | a file replaced whole or not at all (temp file, fsync, rename), swept temp files | every family that writes files |
//! | [`atomic_set`] | several files replaced as one (a certificate with its key) | `vault` |
//! | [`civil_date`] | a Unix time as a calendar date, for messages | `vault` |
//! | [`db_builder`] | the constructors and connection setters of an SQL database step (a macro) | `postgres`, `mysql` |
//! | [`db_check`] | an SQL wait step's checks (`SELECT 1`, a table, a query) | `postgres`, `mysql` |
//! | [`db_credentials`] | the credential setters of a database step (a macro) | `postgres`, `mysql`, `redis` |
//! | [`db_connect`] | where an SQL database step connects and as whom, for each dialect | `postgres`, `mysql` |
//! | [`db_settings`] | passwords, credential sources, `host:port` and URL parts of a database, TLS and timeout checks | `postgres`, `mysql`, `redis` |
//! | [`db_tls`] | TLS modes and rustls configuration for database connections | `postgres`, `mysql`, `redis` |
//! | [`error_chain`] | a given error (rustls', an `io::Error`) found in an error's `source()` chain | `http`, the databases |
//! | [`file_output`] | the file a step writes: mode, owner, the secret default, the write; its setters | every family that writes files |
//! | [`hex`] | lowercase hex of a digest | `template`, `download` |
//! | [`http_client`] | the HTTP client, its failures and status errors | `http`, `vault`, `download` |
//! | [`process_group`] | a child in its own process group, stopped with it | `command`, `template` |
//! | [`text`] | small text helpers for messages | most families |

#[cfg(feature = "internal-file-output")]
#[allow(dead_code)] // Each family uses part of it.
pub(crate) mod atomic;
#[cfg(feature = "vault")]
pub(crate) mod atomic_set;
#[cfg(feature = "vault")]
pub(crate) mod civil_date;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) mod db_builder;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) mod db_check;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) mod db_connect;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
pub(crate) mod db_credentials;
// A redis-only build uses its credentials and checks, not its addresses and URL parts.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) mod db_settings;
#[cfg(any(
    feature = "http",
    feature = "postgres",
    feature = "mysql",
    feature = "redis"
))]
pub(crate) mod error_chain;
#[cfg(feature = "internal-file-output")]
#[allow(dead_code)] // Each family uses part of it.
// The internal feature alone: no step uses the setter macro.
#[cfg_attr(
    not(any(
        feature = "fs",
        feature = "template",
        feature = "vault",
        feature = "download",
        feature = "certs"
    )),
    allow(unused_macros, unused_imports)
)]
pub(crate) mod file_output;
// A mysql-only build uses part of it (mysql_async makes its own rustls configuration).
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) mod db_tls;
#[cfg(any(feature = "template", feature = "download"))]
pub(crate) mod hex;
#[cfg(feature = "http")]
#[allow(dead_code)] // Each family uses part of it.
pub(crate) mod http_client;
#[cfg(feature = "internal-process-group")]
#[cfg_attr(
    not(any(feature = "command", feature = "template")),
    allow(dead_code) // The internal feature alone: nothing uses the runner.
)]
pub(crate) mod process_group;
#[cfg(any(
    feature = "command",
    feature = "http",
    feature = "vault",
    feature = "download",
    feature = "internal-file-output"
))]
#[allow(dead_code)] // Each family uses part of it.
pub(crate) mod text;
