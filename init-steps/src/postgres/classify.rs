//! What a PostgreSQL failure means for the next attempt, by SQLSTATE as PostgreSQL defines it
//! (<https://www.postgresql.org/docs/15/errcodes-appendix.html>), and for failures before the
//! server answered, by what the socket or TLS said.

use std::io;

use init_core::{ErrorClass, StepError};

use crate::support::db_tls::find_tls_error;

/// The class of SQLSTATE `code`, and whether to poll again at the wait cadence.
///
/// - `57P03` cannot_connect_now (starting up, shutting down, in recovery): transient, at the
///   wait cadence (each try forks a backend that refuses at once: cheap).
/// - `53300` too_many_connections and the rest of class 53 (insufficient resources): transient.
/// - class 08 (connection exception), `57P01`/`57P02` (admin or crash shutdown), class 40
///   (serialization failure, deadlock): transient.
/// - `28P01` invalid_password, `28000` invalid_authorization_specification: permanent.
/// - `3D000` invalid_catalog_name (no such database): permanent, transient when
///   `wait_for_database`.
/// - `42P01` undefined_table, `42703` undefined_column, `42883` undefined_function, `3F000`
///   invalid_schema_name: transient (a schema check waits for migrations that have not run).
/// - anything else (syntax errors, permissions, ...): permanent.
pub(crate) fn sqlstate_class(code: &str, wait_for_database: bool) -> (ErrorClass, bool) {
    match code {
        "57P03" => (ErrorClass::Transient, true),
        "3D000" if wait_for_database => (ErrorClass::Transient, false),
        "57P01" | "57P02" | "42P01" | "42703" | "42883" | "3F000" => (ErrorClass::Transient, false),
        _ if code.starts_with("08") || code.starts_with("53") || code.starts_with("40") => {
            (ErrorClass::Transient, false)
        }
        _ => (ErrorClass::Permanent, false),
    }
}

/// A tokio-postgres error as a [`StepError`] named by `what`.
pub(crate) fn classify(
    what: &str,
    error: tokio_postgres::Error,
    wait_for_database: bool,
) -> StepError {
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        let (class, poll) = sqlstate_class(code, wait_for_database);
        let step = StepError::with_class(class, format!("{what}: {} ({code})", db.message()));
        return if poll { step.with_wait_cadence() } else { step };
    }
    if find_tls_error(&error).is_some() {
        // A certificate that does not verify, or a handshake that fails: the same next time.
        return StepError::permanent(what).with_source(error);
    }
    let io_kind = crate::support::error_chain::io_kind(&error);
    if io_kind == Some(io::ErrorKind::ConnectionRefused) {
        return StepError::transient(what)
            .with_source(error)
            .with_wait_cadence();
    }
    let text = error.to_string();
    // tokio-postgres's own kinds, by their fixed messages: a server without TLS when TLS is
    // required, a password the server asked for and none was given, a bad configuration.
    let permanent = io_kind.is_none()
        && (text.starts_with("error performing TLS handshake")
            || text.starts_with("authentication error")
            || text.starts_with("invalid configuration"));
    let class = if permanent {
        ErrorClass::Permanent
    } else {
        ErrorClass::Transient
    };
    StepError::with_class(class, what).with_source(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified_as_postgresql_defines_them() {
        let transient = ErrorClass::Transient;
        let permanent = ErrorClass::Permanent;
        let cases = [
            ("57P03", false, transient),
            ("53300", false, transient),
            ("08006", false, transient),
            ("57P01", false, transient),
            ("40001", false, transient),
            ("42P01", false, transient),
            ("28P01", false, permanent),
            ("28000", false, permanent),
            ("3D000", false, permanent),
            ("3D000", true, transient),
            ("42601", false, permanent),
            ("42501", false, permanent),
        ];
        for (code, wait, class) in cases {
            assert_eq!(sqlstate_class(code, wait).0, class, "{code} wait={wait}");
        }
        assert!(sqlstate_class("57P03", false).1);
        assert!(!sqlstate_class("53300", false).1);
    }
}
