//! `ValuePath`: a reference to a published value by a dotted path (`db.password`), the syntax
//! every option that reads one value takes (a command's environment variable, the exec'd
//! program's environment).

use std::fmt;

use serde_json::Value;

use crate::context::Context;
use crate::error::StepError;

/// A dotted path to a published value: `db.password` is field `password` of the value
/// published as `db`; `region` is the whole value published as `region`.
///
/// [`check`](Self::check) is the syntax check that validation runs; [`lookup`](Self::lookup)
/// and [`env_value`](Self::env_value) read the value when the step runs.
///
/// # Examples
///
/// ```
/// use init_core::{Context, ValuePath};
/// use serde_json::json;
///
/// let ctx = Context::new();
/// ctx.publish_secret("db", json!({ "password": "hunter2-pass", "port": 5432 }));
/// assert_eq!(ValuePath::new("db.password").env_value(&ctx).as_deref(), Some("hunter2-pass"));
/// assert_eq!(ValuePath::new("db.port").env_value(&ctx).as_deref(), Some("5432"));
/// assert_eq!(ValuePath::new("db.user").lookup(&ctx), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuePath(String);

impl ValuePath {
    /// A path, unchecked (see [`check`](Self::check)).
    ///
    /// ```
    /// assert_eq!(init_core::ValuePath::new("db.password").as_str(), "db.password");
    /// ```
    pub fn new(path: impl Into<String>) -> Self {
        Self(path.into())
    }

    /// The path as written.
    ///
    /// ```
    /// assert_eq!(init_core::ValuePath::new("a.b").as_str(), "a.b");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the syntax: names separated by single dots, none empty.
    ///
    /// # Errors
    ///
    /// An [invalid](StepError::invalid) error naming the path:
    /// `value path "db..password": expected names separated by dots`.
    ///
    /// ```
    /// use init_core::ValuePath;
    /// assert!(ValuePath::new("db.password").check().is_ok());
    /// let err = ValuePath::new("db..password").check().unwrap_err();
    /// assert!(err.is_invalid());
    /// assert_eq!(err.to_string(), "value path \"db..password\": expected names separated by dots");
    /// ```
    pub fn check(&self) -> Result<(), StepError> {
        if self.0.split('.').any(str::is_empty) {
            return Err(StepError::invalid(format!(
                "value path {:?}: expected names separated by dots",
                self.0
            )));
        }
        Ok(())
    }

    /// The value at this path in what `ctx` has published, if any.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish("app", serde_json::json!({ "name": "orders" }));
    /// assert_eq!(init_core::ValuePath::new("app.name").lookup(&ctx).unwrap(), "orders");
    /// ```
    pub fn lookup(&self, ctx: &Context) -> Option<Value> {
        let mut parts = self.0.split('.');
        let root = ctx.value(parts.next()?)?;
        parts.try_fold(root, |value, part| value.get(part).cloned())
    }

    /// The value at this path as an environment variable's value: a string as it is, anything
    /// else as JSON (`5432`, `true`, `{"a":1}`).
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish("flags", serde_json::json!({ "debug": true }));
    /// assert_eq!(init_core::ValuePath::new("flags").env_value(&ctx).as_deref(), Some(r#"{"debug":true}"#));
    /// ```
    pub fn env_value(&self, ctx: &Context) -> Option<String> {
        let value = self.lookup(ctx)?;
        Some(match value {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }
}

impl fmt::Display for ValuePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
