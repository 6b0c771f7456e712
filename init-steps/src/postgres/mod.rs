//! PostgreSQL steps: [`PostgresWait`] waits until the server accepts a login and answers a
//! check; `PostgresMigrate` (feature `postgres-migrate`) applies SQL migrations once, in order.
//! tokio-postgres speaks the protocol; TLS is rustls with the ring provider (no OpenSSL).

mod classify;
#[cfg(feature = "postgres-migrate")]
mod migrate;
#[cfg(feature = "postgres-migrate")]
mod migrations;
mod session;
mod settings;
mod wait;

pub use crate::support::db_tls::TlsMode;
#[cfg(feature = "postgres-migrate")]
pub use migrate::PostgresMigrate;
pub use wait::PostgresWait;
