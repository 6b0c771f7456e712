//! The constructors and connection setters every PostgreSQL step shares (where the server is,
//! as whom, over what TLS), written once: each step has a `spec: ConnectSpec` field and a
//! `with_origin` constructor, and this macro gives it the same builder API and docs.

/// Implements `new`, `url`, `url_from_env`, `from_env` and the connection setters for `$step`,
/// whose default name is `"$kind <server>"`; `$verb` starts the constructors' docs.
macro_rules! connection_builder {
    ($step:ident, $kind:literal, $verb:literal) => {
        impl $step {
            #[doc = concat!($verb, " the server at `host`, `host:port` or `[ipv6]:port` (port 5432 by default).")]
            ///
            /// ```
            /// use init_core::{Step, ValidateContext};
            #[doc = concat!("use init_steps::postgres::", stringify!($step), ";")]
            ///
            #[doc = concat!("assert_eq!(", stringify!($step), "::new(\"db\").name(), \"", $kind, " db:5432\");")]
            #[doc = concat!("let bad = ", stringify!($step), "::new(\"db:0\").validate(&ValidateContext::with_env([(\"\", \"\")]));")]
            /// assert!(bad.unwrap_err().is_invalid());
            /// ```
            pub fn new(address: impl AsRef<str>) -> Self {
                Self::with_origin(Origin::Address(parse_address(address.as_ref(), DEFAULT_PORT)))
            }

            #[doc = concat!($verb, " the server of a `postgres://user:password@host:port/database` URL; the query")]
            /// may set `sslmode` (`disable`, `require`, `verify-full`), `sslrootcert` and
            /// `connect_timeout` (seconds). Its password is registered as a secret when the step
            /// runs. A bad URL is reported by [`validate`](Step::validate), without repeating it.
            ///
            /// ```
            /// use init_core::Step;
            #[doc = concat!("use init_steps::postgres::", stringify!($step), ";")]
            ///
            #[doc = concat!("let step = ", stringify!($step), "::url(\"postgres://app:s3cret-pass@db:5432/orders?sslmode=require\");")]
            #[doc = concat!("assert_eq!(step.name(), \"", $kind, " db:5432/orders\");")]
            /// assert!(!format!("{step:?}").contains("s3cret-pass"));
            /// ```
            pub fn url(url: impl AsRef<str>) -> Self {
                Self::with_origin(Origin::Url(Box::new(UrlParts::parse(url.as_ref()))))
            }

            #[doc = concat!($verb, " the server of the URL in environment variable `var` (checked at validation).")]
            ///
            /// ```
            /// use init_core::{Step, ValidateContext};
            #[doc = concat!("use init_steps::postgres::", stringify!($step), ";")]
            ///
            #[doc = concat!("let step = ", stringify!($step), "::url_from_env(\"DATABASE_URL\");")]
            #[doc = concat!("assert_eq!(step.name(), \"", $kind, " $DATABASE_URL\");")]
            /// let unset = step.validate(&ValidateContext::with_env([("HOME", "/")])).unwrap_err();
            #[doc = concat!("assert_eq!(unset.to_string(), \"", $kind, " $DATABASE_URL: environment variable DATABASE_URL is not set\");")]
            /// ```
            pub fn url_from_env(var: impl Into<String>) -> Self {
                Self::with_origin(Origin::UrlEnv(var.into()))
            }

            #[doc = concat!($verb, " the server libpq's variables name: `PGHOST` (default `localhost`), `PGPORT`,")]
            /// `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGSSLMODE`, `PGSSLROOTCERT`.
            ///
            /// ```
            /// use init_core::Step;
            #[doc = concat!("use init_steps::postgres::", stringify!($step), ";")]
            #[doc = concat!("assert_eq!(", stringify!($step), "::from_env().name(), \"", $kind, " $PGHOST\");")]
            /// ```
            pub fn from_env() -> Self {
                Self::with_origin(Origin::Env)
            }

            /// The database to log in to (overrides the URL's and `PGDATABASE`).
            ///
            /// ```
            #[doc = concat!("let step = init_steps::postgres::", stringify!($step), "::new(\"db\").database(\"orders\");")]
            /// ```
            #[must_use]
            pub fn database(mut self, database: impl Into<String>) -> Self {
                self.spec.database = Some(database.into());
                self
            }

            /// The user to log in as.
            ///
            /// ```
            #[doc = concat!("let step = init_steps::postgres::", stringify!($step), "::new(\"db\").user(\"orders_app\");")]
            /// ```
            #[must_use]
            pub fn user(mut self, user: impl Into<String>) -> Self {
                self.spec.user = Some(Source::Literal(user.into()));
                self
            }

            /// The user name from a published value, a [`ValuePath`] such as `db.username`
            /// (declared as a read, so [`Plan::validate`](init_core::Plan::validate) checks an
            /// earlier step publishes it).
            ///
            /// ```
            /// use init_core::Step;
            #[doc = concat!("let step = init_steps::postgres::", stringify!($step), "::new(\"db\").user_from_value(\"db.username\");")]
            /// assert_eq!(step.reads()[0].to_string(), "values.db.username");
            /// ```
            #[must_use]
            pub fn user_from_value(mut self, path: impl Into<ValuePath>) -> Self {
                self.spec.user = Some(Source::Value(path.into()));
                self
            }

            /// The password from a published value, a [`ValuePath`] such as `db.password` (a
            /// secret published by [`KvRead`](crate::vault::KvRead), say; declared as a read,
            /// so [`Plan::validate`](init_core::Plan::validate) checks an earlier step
            /// publishes it).
            ///
            /// ```
            /// use init_core::Step;
            #[doc = concat!("let step = init_steps::postgres::", stringify!($step), "::new(\"db\").password_from_value(\"db.password\");")]
            /// assert_eq!(step.reads()[0].to_string(), "values.db.password");
            /// ```
            #[must_use]
            pub fn password_from_value(mut self, path: impl Into<ValuePath>) -> Self {
                self.spec.password = Some(Source::Value(path.into()));
                self
            }

            /// The password from environment variable `var` (checked at validation; registered
            /// as a secret when the step runs).
            ///
            /// ```
            #[doc = concat!("let step = init_steps::postgres::", stringify!($step), "::new(\"db\").password_from_env(\"ORDERS_DB_PASSWORD\");")]
            /// ```
            #[must_use]
            pub fn password_from_env(mut self, var: impl Into<String>) -> Self {
                self.spec.password = Some(Source::Env(var.into()));
                self
            }

            /// Whether and how to use TLS (overrides the URL's `sslmode` and `PGSSLMODE`).
            ///
            /// ```
            #[doc = concat!("use init_steps::postgres::{", stringify!($step), ", TlsMode};")]
            #[doc = concat!("let step = ", stringify!($step), "::new(\"db\").tls(TlsMode::Require);")]
            /// ```
            #[must_use]
            pub fn tls(mut self, mode: TlsMode) -> Self {
                self.spec.tls = Some(mode);
                self
            }

            /// The PEM file of the CA that signed the server's certificate, for
            /// [`TlsMode::VerifyFull`](crate::postgres::TlsMode::VerifyFull) (only these CAs
            /// are trusted then, as libpq's `sslrootcert`); without one, verify-full trusts the
            /// system roots.
            ///
            /// ```
            #[doc = concat!("use init_steps::postgres::{", stringify!($step), ", TlsMode};")]
            #[doc = concat!("let step = ", stringify!($step), "::new(\"db\").tls(TlsMode::VerifyFull).ca_file(\"/etc/ssl/db/ca.pem\");")]
            /// ```
            #[must_use]
            pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
                self.spec.ca_file = Some(path.into());
                self
            }

            /// Bounds the TCP connection and TLS handshake of one attempt (3 s by default).
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let step = init_steps::postgres::", stringify!($step), "::new(\"db\").connect_timeout(Duration::from_secs(1));")]
            /// ```
            #[must_use]
            pub fn connect_timeout(mut self, timeout: Duration) -> Self {
                self.spec.connect_timeout = timeout;
                self
            }
        }
    };
}

pub(super) use connection_builder;
