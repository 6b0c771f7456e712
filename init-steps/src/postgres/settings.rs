//! PostgreSQL's [`Dialect`]: the `postgres://` URL and its `sslmode`, `sslrootcert` and
//! `connect_timeout` parameters, libpq's `PG*` variables, port 5432, user `postgres`.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::db_connect::{Dialect, EnvVars, UrlParts};

/// Implements the constructors and connection setters of PostgreSQL step `$step` with
/// PostgreSQL's URL, port, variables and TLS parameters
/// ([`sql_builder!`](crate::support::db_builder::sql_builder)); the `checks`
/// section adds a wait step's checks.
macro_rules! postgres_builder {
    ($step:ident, $kind:literal, $verb:literal $(, checks $checks:tt)?) => {
        $crate::support::db_builder::sql_builder! {
            $step in postgres: $crate::postgres::settings::Postgres, kind $kind, $verb, port "5432";
            url "a `postgres://user:password@host:port/database` URL; the query may set `sslmode` (`disable`, `require`, `verify-full`), `sslrootcert` and `connect_timeout` (seconds)",
                example ("postgres://app:s3cret-pass@db:5432/orders?sslmode=require", "db:5432/orders", "postgres");
            overrides ("the URL's and `PGDATABASE`", "the URL's `sslmode` and `PGSSLMODE`"), ca "libpq's `sslrootcert`", timeout "the TCP connection and TLS handshake";
            from_env "libpq's variables name: `PGHOST` (default `localhost`), `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGSSLMODE`, `PGSSLROOTCERT`";
            $(checks $checks;)?
        }
    };
}

pub(super) use postgres_builder;

/// PostgreSQL, as libpq sees the configuration.
pub(crate) struct Postgres;

impl Dialect for Postgres {
    const SCHEMES: &'static [&'static str] = &["postgres", "postgresql"];
    /// libpq's `DEF_PGPORT`, also `PGPORT`'s default.
    const DEFAULT_PORT: u16 = 5432;
    /// The superuser `initdb` creates (libpq would take the OS user).
    const DEFAULT_USER: &'static str = "postgres";
    /// As libpq: `PGDATABASE`, else the user name.
    const DATABASE_IS_USER: bool = true;
    const ENV: Option<EnvVars> = Some(EnvVars {
        host: "PGHOST",
        port: "PGPORT",
        database: "PGDATABASE",
        user: "PGUSER",
        password: "PGPASSWORD",
        tls: "PGSSLMODE",
        ca_file: "PGSSLROOTCERT",
    });
    const PARAMETERS: &'static str = "sslmode, sslrootcert, connect_timeout";

    fn query_parameter(parts: &mut UrlParts, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "sslmode" => parts.tls = Some(value.parse().map_err(|m| format!("url: {m}"))?),
            "sslrootcert" => parts.ca_file = Some(PathBuf::from(value)),
            "connect_timeout" => {
                let seconds = value
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| {
                        format!("url: connect_timeout {value:?}: expected whole seconds above 0")
                    })?;
                parts.connect_timeout = Some(Duration::from_secs(seconds));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::db_connect::{ConnectSpec, Origin};
    use crate::support::db_settings::{Password, parse_address};
    use crate::support::db_tls::TlsMode;

    type Spec = ConnectSpec<Postgres>;
    const DEFAULT_PORT: u16 = Postgres::DEFAULT_PORT;

    #[test]
    fn a_url_gives_every_part_percent_decoded() {
        let url = UrlParts::parse::<Postgres>(
            "postgresql://app%40x:p%2Fss@db.ns:6432/orders?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=7",
        )
        .unwrap();
        assert_eq!(url.host, "db.ns");
        assert_eq!(url.port, 6432);
        assert_eq!(url.user.as_deref(), Some("app@x"));
        assert_eq!(url.password, Some(Password("p/ss".into())));
        assert_eq!(url.database.as_deref(), Some("orders"));
        assert_eq!(url.tls, Some(TlsMode::VerifyFull));
        assert_eq!(url.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(url.connect_timeout, Some(Duration::from_secs(7)));
        let v6 = UrlParts::parse::<Postgres>("postgres://[::1]/x").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 5432));
    }

    #[test]
    fn a_bad_url_is_named_without_repeating_its_password() {
        let cases = [
            ("mysql://u:hunter22@db/x", "url scheme \"mysql\""),
            (
                "postgres://u:hunter22@db/x?sslmode=prefer",
                "tls mode \"prefer\"",
            ),
            (
                "postgres://u:hunter22@db/x?sslcert=a",
                "url parameter \"sslcert\"",
            ),
            (
                "postgres://u:hunter22@db:99999/x",
                "url: invalid port number",
            ),
            (
                "postgres://u:hunter22@db/x?connect_timeout=0",
                "connect_timeout \"0\"",
            ),
            (
                "postgres://u:hunter22@db/%zz",
                "url database name: a % not followed",
            ),
        ];
        for (input, expected) in cases {
            let err = UrlParts::parse::<Postgres>(input).unwrap_err();
            assert!(err.contains(expected), "{input}: {err}");
            assert!(!err.contains("hunter22"), "{err}");
        }
    }

    #[test]
    fn debug_never_shows_a_password() {
        let spec = Spec::new(Origin::Url(Box::new(UrlParts::parse::<Postgres>(
            "postgres://u:hunter22@db/x",
        ))));
        assert!(!format!("{spec:?}").contains("hunter22"));
    }

    #[test]
    fn the_environment_fills_what_the_code_leaves_out() {
        let env = |key: &str| match key {
            "PGUSER" => Some("app".to_owned()),
            "PGPASSWORD" => Some("from-env-secret".to_owned()),
            "PGSSLMODE" => Some("require".to_owned()),
            _ => None,
        };
        let spec = Spec::new(Origin::Address(parse_address("db", DEFAULT_PORT)));
        let settings = spec.resolve_env("postgres db", &env).unwrap();
        assert_eq!(settings.user, "app");
        assert_eq!(settings.database.as_deref(), Some("app"));
        assert_eq!(settings.password, Some(Password("from-env-secret".into())));
        assert_eq!(settings.tls, TlsMode::Require);
    }
}
