//! The constructors and connection setters every SQL database step shares (where the server
//! is, as whom, over what TLS), written once: a step has a `spec: ConnectSpec<Dialect>` field
//! and a `with_spec(name, spec)` constructor, and [`sql_builder!`] gives it the same builder
//! API, with docs and examples that name the step's own module, URL scheme and port.

/// Implements `new`, `url`, `url_from_env`, `from_env` (when a `from_env` doc is given), the
/// credential setters ([`credential_setters!`](super::db_credentials::credential_setters)) and the
/// connection setters for `step` (of module `module`, connecting with `dialect`), whose default
/// name is `"<kind> <server>"`; `verb` starts the constructors' docs, `url` and `example` (a
/// URL with password `s3cret-pass`, the name it gives, its scheme) document `url`, the rest
/// what the explicit settings override, the CA file's and the connect timeout's meaning. With
/// a `checks` section (table names, an example, the "no such database" code) it also
/// implements the wait checks (`table_exists`, `query_returns_row`, `wait_for_database`) over
/// the fields `checks` and `wait_for_database`.
///
/// ```text
/// sql_builder! {
///     MysqlWait in mysql: Mysql, kind "mysql", "Waits for", port "3306";
///     url "a `mysql://...` URL", example ("mysql://...", "db:3306/orders", "mysql");
///     overrides ("the URL's", "the URL's `ssl-mode`"), ca "...", timeout "...";
///     checks ("`database.table`", "orders.schema_version", "1049");
/// }
/// ```
macro_rules! sql_builder {
    (
        $step:ident in $module:ident: $dialect:ty, kind $kind:literal, $verb:literal, port $port:literal;
        url $url_doc:literal, example ($url:literal, $url_name:literal, $scheme:literal);
        overrides ($database_overrides:literal, $tls_overrides:literal), ca $ca_doc:literal, timeout $timeout_doc:literal;
        $(from_env $env_doc:literal;)?
        $(checks ($table_doc:literal, $table:literal, $missing_database:literal);)?
    ) => {
        impl $step {
            #[doc = concat!($verb, " the server at `host`, `host:port` or `[ipv6]:port` (port ", $port, " by default).")]
            ///
            /// ```
            /// use init_core::{Step, ValidateContext};
            #[doc = concat!("use init_steps::", stringify!($module), "::", stringify!($step), ";")]
            ///
            #[doc = concat!("assert_eq!(", stringify!($step), "::new(\"db\").name(), \"", $kind, " db:", $port, "\");")]
            #[doc = concat!("let bad = ", stringify!($step), "::new(\"db:0\").validate(&ValidateContext::with_env([(\"\", \"\")]));")]
            /// assert!(bad.unwrap_err().is_invalid());
            /// ```
            pub fn new(address: impl AsRef<str>) -> Self {
                let port = <$dialect as $crate::support::db_connect::Dialect>::DEFAULT_PORT;
                let address = $crate::support::db_settings::parse_address(address.as_ref(), port);
                Self::with_origin($crate::support::db_connect::Origin::Address(address))
            }

            #[doc = concat!($verb, " the server of ", $url_doc, ". Its password is registered as a secret")]
            /// when the step runs. A bad URL is reported by [`validate`](init_core::Step::validate),
            /// without repeating it.
            ///
            /// ```
            /// use init_core::Step;
            #[doc = concat!("use init_steps::", stringify!($module), "::", stringify!($step), ";")]
            ///
            #[doc = concat!("let step = ", stringify!($step), "::url(\"", $url, "\");")]
            #[doc = concat!("assert_eq!(step.name(), \"", $kind, " ", $url_name, "\");")]
            /// assert!(!format!("{step:?}").contains("s3cret-pass"));
            /// ```
            pub fn url(url: impl AsRef<str>) -> Self {
                let parts = $crate::support::db_connect::UrlParts::parse::<$dialect>(url.as_ref());
                Self::with_origin($crate::support::db_connect::Origin::Url(Box::new(parts)))
            }

            #[doc = concat!($verb, " the server of the URL in environment variable `var` (checked at validation).")]
            ///
            /// ```
            /// use init_core::{Step, ValidateContext};
            #[doc = concat!("use init_steps::", stringify!($module), "::", stringify!($step), ";")]
            ///
            #[doc = concat!("let step = ", stringify!($step), "::url_from_env(\"DATABASE_URL\");")]
            #[doc = concat!("assert_eq!(step.name(), \"", $kind, " $DATABASE_URL\");")]
            /// let unset = step.validate(&ValidateContext::with_env([("HOME", "/")])).unwrap_err();
            #[doc = concat!("assert_eq!(unset.to_string(), \"", $kind, " $DATABASE_URL: environment variable DATABASE_URL is not set\");")]
            /// ```
            pub fn url_from_env(var: impl Into<String>) -> Self {
                Self::with_origin($crate::support::db_connect::Origin::UrlEnv(var.into()))
            }

            $(
            #[doc = concat!($verb, " the server ", $env_doc, ".")]
            ///
            /// ```
            /// use init_core::Step;
            #[doc = concat!("use init_steps::", stringify!($module), "::", stringify!($step), ";")]
            #[doc = concat!("assert_eq!(", stringify!($step), "::from_env().name(), \"", $kind, " $PGHOST\");")]
            /// ```
            pub fn from_env() -> Self {
                Self::with_origin($crate::support::db_connect::Origin::Env)
            }
            )?

            fn with_origin(origin: $crate::support::db_connect::Origin) -> Self {
                let spec = $crate::support::db_connect::ConnectSpec::new(origin);
                Self::with_spec(format!("{} {}", $kind, spec.display()), spec)
            }

            #[doc = concat!("The database to log in to (overrides ", $database_overrides, ").")]
            ///
            /// ```
            #[doc = concat!("let step = init_steps::", stringify!($module), "::", stringify!($step), "::url(\"", $scheme, "://app@db/orders\").database(\"billing\");")]
            /// assert!(format!("{step:?}").contains(r#"database: Some("billing")"#));
            /// ```
            #[must_use]
            pub fn database(mut self, database: impl Into<String>) -> Self {
                self.spec.database = Some(database.into());
                self
            }

            #[doc = concat!("Whether and how to use TLS (overrides ", $tls_overrides, ").")]
            ///
            /// ```
            #[doc = concat!("use init_steps::", stringify!($module), "::{", stringify!($step), ", TlsMode};")]
            ///
            #[doc = concat!("let step = ", stringify!($step), "::new(\"db\").tls(TlsMode::Require);")]
            /// assert!(format!("{step:?}").contains("tls: Some(Require)"));
            /// ```
            #[must_use]
            pub fn tls(mut self, mode: $crate::support::db_tls::TlsMode) -> Self {
                self.spec.tls = Some(mode);
                self
            }

            /// The PEM file of the CA that signed the server's certificate, for
            #[doc = concat!("[`TlsMode::VerifyFull`](crate::", stringify!($module), "::TlsMode::VerifyFull) (only these CAs are trusted then, as ", $ca_doc, ");")]
            /// without one, verify-full trusts the system roots. With another mode it is
            /// invalid.
            ///
            /// ```
            /// use init_core::{Step, ValidateContext};
            #[doc = concat!("use init_steps::", stringify!($module), "::{", stringify!($step), ", TlsMode};")]
            ///
            #[doc = concat!("let step = ", stringify!($step), "::new(\"db\").tls(TlsMode::VerifyFull).ca_file(\"/etc/ssl/db/ca.pem\");")]
            /// assert!(format!("{step:?}").contains(r#"ca_file: Some("/etc/ssl/db/ca.pem")"#));
            #[doc = concat!("let step = ", stringify!($step), "::new(\"db\").tls(TlsMode::Require).ca_file(\"/etc/ssl/db/ca.pem\");")]
            /// let err = step.validate(&ValidateContext::with_env([("HOME", "/")])).unwrap_err();
            /// assert!(err.to_string().ends_with("a ca file needs tls mode verify-full, not require"));
            /// ```
            #[must_use]
            pub fn ca_file(mut self, path: impl Into<::std::path::PathBuf>) -> Self {
                self.spec.ca_file = Some(path.into());
                self
            }

            #[doc = concat!("Bounds ", $timeout_doc, " of one attempt (3 s by default; zero is invalid).")]
            ///
            /// ```
            /// use std::time::Duration;
            /// use init_core::{Step, ValidateContext};
            ///
            #[doc = concat!("let step = init_steps::", stringify!($module), "::", stringify!($step), "::new(\"db\").connect_timeout(Duration::ZERO);")]
            /// let err = step.validate(&ValidateContext::with_env([("HOME", "/")])).unwrap_err();
            /// assert!(err.to_string().ends_with("connect timeout 0s: expected a duration greater than zero"));
            /// ```
            #[must_use]
            pub fn connect_timeout(mut self, timeout: ::std::time::Duration) -> Self {
                self.spec.connect_timeout = timeout;
                self
            }

            $(
            #[doc = concat!("Also waits until table (or view) `name` exists: ", $table_doc, ".")]
            ///
            /// ```
            /// use init_core::{Step, ValidateContext};
            ///
            /// let cx = ValidateContext::with_env([("HOME", "/")]);
            #[doc = concat!("let wait = init_steps::", stringify!($module), "::", stringify!($step), "::new(\"db\").database(\"orders\").table_exists(\"", $table, "\");")]
            /// assert!(wait.validate(&cx).is_ok());
            /// assert!(wait.table_exists("").validate(&cx).unwrap_err().is_invalid());
            /// ```
            #[must_use]
            pub fn table_exists(mut self, name: impl Into<String>) -> Self {
                self.checks.push($crate::support::db_check::Check::TableExists(name.into()));
                self
            }

            /// Also waits until `sql` (one statement) returns at least one row; a table or column it
            /// names that does not exist yet counts as "not yet".
            ///
            /// ```
            /// use init_core::{Step, ValidateContext};
            ///
            #[doc = concat!("let wait = init_steps::", stringify!($module), "::", stringify!($step), "::new(\"db\").query_returns_row(\" \");")]
            /// let err = wait.validate(&ValidateContext::with_env([("HOME", "/")])).unwrap_err();
            /// assert!(err.to_string().ends_with("empty check query: expected one SQL statement"));
            /// ```
            #[must_use]
            pub fn query_returns_row(mut self, sql: impl Into<String>) -> Self {
                self.checks.push($crate::support::db_check::Check::QueryReturnsRow(sql.into()));
                self
            }

            /// Waits for the database to be created, instead of failing at once when it does not
            #[doc = concat!("exist (", $missing_database, ").")]
            ///
            /// ```
            /// use init_core::Step;
            ///
            #[doc = concat!("let wait = init_steps::", stringify!($module), "::", stringify!($step), "::new(\"db\").database(\"orders\").wait_for_database();")]
            /// assert!(format!("{wait:?}").contains("wait_for_database: true"));
            /// ```
            #[must_use]
            pub fn wait_for_database(mut self) -> Self {
                self.wait_for_database = true;
                self
            }
            )?
        }

        $crate::support::db_credentials::credential_setters! {
            $step in $module, "db", "The user to log in as";
            user: spec.user, password: spec.password, value "db", env "ORDERS_DB_PASSWORD";
        }
    };
}

pub(crate) use sql_builder;
