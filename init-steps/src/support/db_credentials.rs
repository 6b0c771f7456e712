//! The credential setters every database step shares (who logs in: a user given in code or a
//! published value, a password from a published value or an environment variable), written
//! once over [`Source`](super::db_settings::Source): the same names, reads and checks for
//! PostgreSQL, MySQL and Redis.

/// Implements `user`, `user_from_value`, `password_from_value` and `password_from_env` for
/// `step` (of module `module`; `address` in the examples), storing the sources in the fields
/// at `user` and `password` (paths below `self`); `user_doc` starts `user`'s doc, `value` and
/// `env` name the published value and the variable of the examples.
macro_rules! credential_setters {
    (
        $step:ident in $module:ident, $address:literal, $user_doc:literal;
        user: $($user:ident).+, password: $($password:ident).+, value $value:literal, env $env:literal;
    ) => {
        impl $step {
            #[doc = concat!($user_doc, " (a name given in code: nothing to read).")]
            ///
            /// ```
            /// use init_core::Step;
            #[doc = concat!("let step = init_steps::", stringify!($module), "::", stringify!($step), "::new(\"", $address, "\").user(\"orders_app\");")]
            /// assert!(step.reads().is_empty());
            /// ```
            #[must_use]
            pub fn user(mut self, user: impl Into<String>) -> Self {
                self.$($user).+ = Some($crate::support::db_settings::Source::Literal(user.into()));
                self
            }

            /// The user name from a published value, a [`ValuePath`](init_core::ValuePath) such
            #[doc = concat!("as `", $value, ".username` (declared as a read, so")]
            /// [`Plan::validate`](init_core::Plan::validate) checks an earlier step publishes it).
            ///
            /// ```
            /// use init_core::Step;
            #[doc = concat!("let step = init_steps::", stringify!($module), "::", stringify!($step), "::new(\"", $address, "\").user_from_value(\"", $value, ".username\");")]
            #[doc = concat!("assert_eq!(step.reads()[0].to_string(), \"values.", $value, ".username\");")]
            /// ```
            #[must_use]
            pub fn user_from_value(mut self, path: impl Into<::init_core::ValuePath>) -> Self {
                self.$($user).+ = Some($crate::support::db_settings::Source::Value(path.into()));
                self
            }

            /// The password from a published value, a [`ValuePath`](init_core::ValuePath) such
            #[doc = concat!("as `", $value, ".password` (a secret published by [`KvRead`](crate::vault::KvRead), say;")]
            /// declared as a read, so [`Plan::validate`](init_core::Plan::validate) checks an
            /// earlier step publishes it).
            ///
            /// ```
            /// use init_core::Step;
            #[doc = concat!("let step = init_steps::", stringify!($module), "::", stringify!($step), "::new(\"", $address, "\").password_from_value(\"", $value, ".password\");")]
            #[doc = concat!("assert_eq!(step.reads()[0].to_string(), \"values.", $value, ".password\");")]
            /// ```
            #[must_use]
            pub fn password_from_value(mut self, path: impl Into<::init_core::ValuePath>) -> Self {
                self.$($password).+ = Some($crate::support::db_settings::Source::Value(path.into()));
                self
            }

            /// The password from environment variable `var` (checked at validation; registered
            /// as a secret when the step runs).
            ///
            /// ```
            /// use init_core::{Step, ValidateContext};
            #[doc = concat!("let step = init_steps::", stringify!($module), "::", stringify!($step), "::new(\"", $address, "\").password_from_env(\"", $env, "\");")]
            #[doc = concat!("assert_eq!(step.reads()[0].to_string(), \"env.", $env, "\");")]
            /// let unset = step.validate(&ValidateContext::with_env([("HOME", "/")])).unwrap_err();
            #[doc = concat!("assert!(unset.to_string().ends_with(\"environment variable ", $env, " is not set\"));")]
            /// ```
            #[must_use]
            pub fn password_from_env(mut self, var: impl Into<String>) -> Self {
                self.$($password).+ = Some($crate::support::db_settings::Source::Env(var.into()));
                self
            }
        }
    };
}

pub(crate) use credential_setters;
