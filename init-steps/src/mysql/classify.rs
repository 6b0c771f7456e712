//! What a MySQL or MariaDB failure means for the next attempt: by the server's error code as
//! MySQL and MariaDB document them
//! (<https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html>,
//! <https://mariadb.com/kb/en/mariadb-error-code-reference/>), and for failures before the
//! server answered, by what the socket or TLS said (the client library's 2002/2003, "can't
//! connect", <https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html>).

use init_core::StepError;
use mysql_async::{DriverError, IoError};

use crate::support::db_tls::classify_io;

/// How an error code is met again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Poll again at the wait cadence: the server is there and will take a login soon.
    Poll,
    /// Try again on the policy's backoff.
    Backoff,
    /// Every later attempt would fail too.
    Fail,
}

/// What a server error `code` means for the next attempt.
///
/// - 1040 `ER_CON_COUNT_ERROR` (too many connections), 1053 `ER_SERVER_SHUTDOWN` (shutting
///   down, so restarting soon), 3032 `ER_SERVER_OFFLINE_MODE`: poll at the wait cadence.
/// - 1203 `ER_TOO_MANY_USER_CONNECTIONS`, 1226 `ER_USER_LIMIT_REACHED` (max_user_connections),
///   1152 `ER_ABORTING_CONNECTION`, 1158–1161 (network read/write errors), 1205 lock wait
///   timeout, 1213 deadlock, 1927 `ER_CONNECTION_KILLED` (MariaDB), 4031 (MySQL's
///   `ER_CLIENT_INTERACTION_TIMEOUT`): the policy's backoff.
/// - 1049 `ER_BAD_DB_ERROR` (unknown database): fails, unless `wait_for_database`.
/// - 1146 `ER_NO_SUCH_TABLE`, 1054 `ER_BAD_FIELD_ERROR`: the backoff (a schema check waits for
///   migrations that have not run).
/// - anything else fails: 1045 `ER_ACCESS_DENIED_ERROR` (wrong user or password), 1044
///   `ER_DBACCESS_DENIED_ERROR` (no access to the database), 1130 `ER_HOST_NOT_PRIVILEGED`,
///   1129 `ER_HOST_IS_BLOCKED`, 1251 (authentication method not supported), 1862 (password
///   expired), 3118 (account locked), syntax errors and missing privileges.
pub(crate) fn code_class(code: u16, wait_for_database: bool) -> Next {
    match code {
        1040 | 1053 | 3032 => Next::Poll,
        1049 if wait_for_database => Next::Backoff,
        1203 | 1226 | 1152 | 1158..=1161 | 1205 | 1213 | 1927 | 4031 | 1146 | 1054 => Next::Backoff,
        _ => Next::Fail,
    }
}

/// A mysql_async error as a [`StepError`] named by `what`.
pub(crate) fn classify(
    what: &str,
    error: mysql_async::Error,
    wait_for_database: bool,
) -> StepError {
    match error {
        mysql_async::Error::Server(server) => {
            let message = format!("{what}: {} ({})", server.message, server.code);
            match code_class(server.code, wait_for_database) {
                Next::Poll => StepError::transient(message).with_wait_cadence(),
                Next::Backoff => StepError::transient(message),
                Next::Fail => StepError::permanent(message),
            }
        }
        mysql_async::Error::Io(IoError::Tls(tls)) => {
            // A certificate that does not verify, or a handshake that fails: the same next time.
            StepError::permanent(format!("{what}: tls")).with_source(tls)
        }
        mysql_async::Error::Io(IoError::Io(io)) => classify_io(what, io),
        mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer) => {
            StepError::permanent(format!("{what}: the server does not support tls"))
        }
        mysql_async::Error::Driver(
            driver @ (DriverError::ConnectionClosed | DriverError::PacketOutOfOrder),
        ) => StepError::transient(what).with_source(driver),
        // An authentication plugin the client does not speak, a reply that is not MySQL's:
        // the same next time.
        other @ (mysql_async::Error::Driver(_) | mysql_async::Error::Url(_)) => {
            StepError::permanent(what).with_source(other)
        }
        other @ mysql_async::Error::Other(_) => StepError::transient(what).with_source(other),
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn error_codes_are_classified_as_mysql_and_mariadb_document_them() {
        let cases = [
            (1040, false, Next::Poll),
            (1053, false, Next::Poll),
            (3032, false, Next::Poll),
            (1203, false, Next::Backoff),
            (1213, false, Next::Backoff),
            (1146, false, Next::Backoff),
            (1054, false, Next::Backoff),
            (1045, false, Next::Fail),
            (1044, false, Next::Fail),
            (1130, false, Next::Fail),
            (1049, false, Next::Fail),
            (1049, true, Next::Backoff),
            (1064, false, Next::Fail),
            (1142, false, Next::Fail),
        ];
        for (code, wait, next) in cases {
            assert_eq!(code_class(code, wait), next, "{code} wait={wait}");
        }
    }

    #[test]
    fn a_refused_connection_polls_at_the_wait_cadence() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);

        let refused = classify("mysql db:3306", IoError::Io(refused).into(), false);
        let reset = classify("mysql db:3306", IoError::Io(reset).into(), false);

        assert!(refused.is_transient() && refused.at_wait_cadence());
        assert_eq!(refused.to_string(), "mysql db:3306: connection refused");
        assert!(reset.is_transient() && !reset.at_wait_cadence());
    }
}
