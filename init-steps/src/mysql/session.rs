//! One MySQL or MariaDB session: mysql_async over TCP, TLS on rustls (ring, no OpenSSL), logged
//! in within the connect timeout; dropping the attempt closes the socket.

use init_core::StepError;
use mysql_async::{Conn, OptsBuilder, SslOpts};

use super::classify::classify;
use crate::support::db_connect::Settings;
use crate::support::db_tls::{self, TlsMode};

/// The largest packet the session accepts: given, so that the login does not ask the server
/// for `@@max_allowed_packet` (one round trip less per attempt). A check reads one row.
const MAX_PACKET: usize = 4 * 1024 * 1024;

/// Connects and logs in with `settings`. Errors are classified ([`classify`]) and named by
/// `what`; a login that takes longer than the connect timeout is transient.
pub(crate) async fn connect(
    what: &str,
    settings: &Settings,
    wait_for_database: bool,
) -> Result<Conn, StepError> {
    let mut opts = OptsBuilder::default()
        .ip_or_hostname(settings.host.clone())
        .tcp_port(settings.port)
        .user(Some(settings.user.clone()))
        .pass(settings.password.as_ref().map(|p| p.0.clone()))
        .db_name(settings.database.clone())
        // Never swap the TCP connection for the server's Unix socket (a different path, and
        // in a pod a different file system).
        .prefer_socket(false)
        .tcp_nodelay(true)
        .max_allowed_packet(Some(MAX_PACKET))
        .wait_timeout(Some(60))
        .stmt_cache_size(0);
    if let Some(ssl) = ssl_opts(what, settings)? {
        db_tls::install_default_provider();
        opts = opts.ssl_opts(ssl);
    }
    match tokio::time::timeout(settings.connect_timeout, Conn::new(opts)).await {
        Ok(conn) => conn.map_err(|e| classify(what, e, wait_for_database)),
        Err(_) => Err(StepError::transient(format!(
            "{what}: no login within {:?}",
            settings.connect_timeout
        ))),
    }
}

/// Ends the session politely (`COM_QUIT`); a failure to say goodbye changes nothing.
pub(crate) async fn close(conn: Conn) {
    let _ = conn.disconnect().await;
}

/// mysql_async's TLS options for the mode: `require` accepts any certificate; `verify-full`
/// trusts only the CA file's certificates, or the system roots without one (not the Mozilla
/// list mysql_async carries), and checks the host name.
fn ssl_opts(what: &str, settings: &Settings) -> Result<Option<SslOpts>, StepError> {
    Ok(match settings.tls {
        TlsMode::Disable => None,
        TlsMode::Require => Some(SslOpts::default().with_danger_accept_invalid_certs(true)),
        TlsMode::VerifyFull => {
            let roots = db_tls::trusted_certificates(what, settings.ca_file.as_deref())?
                .into_iter()
                .map(|der| der.to_vec().into())
                .collect();
            Some(
                SslOpts::default()
                    .with_disable_built_in_roots(true)
                    .with_root_certs(roots),
            )
        }
    })
}
