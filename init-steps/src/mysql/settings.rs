//! MySQL's and MariaDB's [`Dialect`]: the `mysql://` (or `mariadb://`) URL and its `ssl-mode`
//! and `ssl-ca` parameters, port 3306, user `root`, no database unless one is named and nothing
//! read from the environment unasked.

use std::path::PathBuf;

use crate::support::db_connect::{Dialect, UrlParts};
use crate::support::db_tls::TlsMode;

/// MySQL and MariaDB, as their client sees the configuration: no database unless one is named
/// and nothing read from the environment unasked (MySQL's only such variable, `MYSQL_PWD`, is
/// deprecated as insecure).
pub(crate) struct Mysql;

impl Dialect for Mysql {
    const SCHEMES: &'static [&'static str] = &["mysql", "mariadb"];
    const DEFAULT_PORT: u16 = 3306;
    /// The account every MySQL and MariaDB installation has.
    const DEFAULT_USER: &'static str = "root";
    const PARAMETERS: &'static str = "ssl-mode, ssl-ca";

    /// `ssl-mode` with the MySQL client's names (`DISABLED`, `REQUIRED`, `VERIFY_IDENTITY`, any
    /// case) or ours (`disable`, `require`, `verify-full`); `ssl-ca`; libpq's spellings too.
    fn query_parameter(parts: &mut UrlParts, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "ssl-mode" | "sslmode" => parts.tls = Some(parse_ssl_mode(value)?),
            "ssl-ca" | "sslrootcert" => parts.ca_file = Some(PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// An `ssl-mode` as the MySQL client spells it (`DISABLED`, `REQUIRED`, `VERIFY_IDENTITY`;
/// <https://dev.mysql.com/doc/refman/8.0/en/connection-options.html#option_general_ssl-mode>)
/// or as [`TlsMode`] does. `PREFERRED` (TLS when offered) and `VERIFY_CA` (the CA but not the
/// name) are refused: the first silently downgrades, the second trusts any host the CA signed.
fn parse_ssl_mode(value: &str) -> Result<TlsMode, String> {
    match value.to_ascii_lowercase().as_str() {
        "disabled" => Ok(TlsMode::Disable),
        "required" => Ok(TlsMode::Require),
        "verify_identity" => Ok(TlsMode::VerifyFull),
        other => other.parse().map_err(|_| {
            format!(
                "url: ssl-mode {value:?}: expected one of DISABLED, REQUIRED, VERIFY_IDENTITY \
                 (or disable, require, verify-full)"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::db_connect::{ConnectSpec, Origin};
    use crate::support::db_settings::{Password, Source, parse_address};

    type Spec = ConnectSpec<Mysql>;
    const DEFAULT_PORT: u16 = Mysql::DEFAULT_PORT;

    #[test]
    fn a_url_gives_every_part_percent_decoded() {
        let url = UrlParts::parse::<Mysql>(
            "mysql://app%40x:p%2Fss@db.ns:3307/orders?ssl-mode=VERIFY_IDENTITY&ssl-ca=/ca.pem",
        )
        .unwrap();
        assert_eq!(url.host, "db.ns");
        assert_eq!(url.port, 3307);
        assert_eq!(url.user.as_deref(), Some("app@x"));
        assert_eq!(url.password, Some(Password("p/ss".into())));
        assert_eq!(url.database.as_deref(), Some("orders"));
        assert_eq!(url.tls, Some(TlsMode::VerifyFull));
        assert_eq!(url.ca_file, Some(PathBuf::from("/ca.pem")));
        let maria = UrlParts::parse::<Mysql>("mariadb://[::1]?ssl-mode=require").unwrap();
        assert_eq!((maria.host.as_str(), maria.port), ("::1", 3306));
        assert_eq!(maria.tls, Some(TlsMode::Require));
        assert_eq!(maria.database, None);
    }

    #[test]
    fn a_bad_url_is_named_without_repeating_its_password() {
        let cases = [
            ("postgres://u:hunter22@db/x", "url scheme \"postgres\""),
            (
                "mysql://u:hunter22@db/x?ssl-mode=PREFERRED",
                "ssl-mode \"PREFERRED\": expected one of DISABLED, REQUIRED, VERIFY_IDENTITY",
            ),
            (
                "mysql://u:hunter22@db/x?ssl-mode=verify_ca",
                "ssl-mode \"verify_ca\"",
            ),
            (
                "mysql://u:hunter22@db/x?ssl-cert=a",
                "url parameter \"ssl-cert\"",
            ),
            ("mysql://u:hunter22@db:99999/x", "url: invalid port number"),
            (
                "mysql://u:hunter22@db/%zz",
                "url database name: a % not followed",
            ),
        ];
        for (input, expected) in cases {
            let err = UrlParts::parse::<Mysql>(input).unwrap_err();
            assert!(err.contains(expected), "{input}: {err}");
            assert!(!err.contains("hunter22"), "{err}");
        }
    }

    #[test]
    fn without_a_user_or_database_it_logs_in_as_root_to_no_database() {
        let spec = Spec::new(Origin::Address(parse_address("db", DEFAULT_PORT)));

        let settings = spec.resolve_env("mysql db", &|_| None).unwrap();

        assert_eq!(settings.user, "root");
        assert_eq!(settings.database, None);
        assert_eq!(settings.password, None);
        assert_eq!(settings.tls, TlsMode::Disable);
        assert_eq!((settings.host.as_str(), settings.port), ("db", 3306));
    }

    #[test]
    fn explicit_settings_override_the_url() {
        let mut spec = Spec::new(Origin::Url(Box::new(UrlParts::parse::<Mysql>(
            "mysql://app:from-url-secret@db/orders?ssl-mode=REQUIRED",
        ))));
        spec.database = Some("billing".into());
        spec.password = Some(Source::Env("DB_PASSWORD".into()));
        spec.tls = Some(TlsMode::VerifyFull);
        let env = |key: &str| (key == "DB_PASSWORD").then(|| "from-env-secret".to_owned());

        let settings = spec.resolve_env("mysql db", &env).unwrap();

        assert_eq!(settings.user, "app");
        assert_eq!(settings.database.as_deref(), Some("billing"));
        assert_eq!(settings.password, Some(Password("from-env-secret".into())));
        assert_eq!(settings.tls, TlsMode::VerifyFull);
    }

    #[test]
    fn debug_never_shows_a_password() {
        let spec = Spec::new(Origin::Url(Box::new(UrlParts::parse::<Mysql>(
            "mysql://u:hunter22@db/x",
        ))));
        assert!(!format!("{spec:?}").contains("hunter22"));
    }
}
