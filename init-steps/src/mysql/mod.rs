//! MySQL and MariaDB steps: [`MysqlWait`] waits until the server accepts a login and answers a
//! check. mysql_async speaks the protocol; TLS is rustls with the ring provider (no OpenSSL).

mod classify;
mod session;
mod settings;
mod wait;

pub use crate::support::db_tls::TlsMode;
pub use wait::MysqlWait;
