//! `ValuePath`: the one way to refer to a published value (`db.password`), taken by every option
//! that reads one (a command's environment, a file's content, a CA bundle's certificates, a
//! database password, the exec'd program's environment), with one syntax check, one run-time
//! error and one [`Reference`] for the plan's data-flow check.

use std::fmt;

use serde_json::Value;

use crate::context::Context;
use crate::dataflow::Reference;
use crate::error::StepError;

/// A dotted path to a published value, written as in a template without its `values.` prefix:
/// `db.password` is key `password` of the value published as `db`; `region` is the whole value
/// published as `region`; a number indexes an array (`pki.ca_chain.0`).
///
/// A key that holds a dot cannot be named by a path; read the whole value instead.
///
/// [`check`](Self::check) is the syntax check every step runs at validation;
/// [`reference`](Self::reference) is what the step declares it reads, so
/// [`Plan::validate`](crate::Plan::validate) finds a typo before anything runs;
/// [`get`](Self::get) and [`text`](Self::text) read the value when the step runs.
///
/// Anything that takes a path takes a string (`"db.password"`) as well.
///
/// # Examples
///
/// ```
/// use init_core::{Context, ValuePath};
/// use serde_json::json;
///
/// let ctx = Context::new();
/// ctx.publish_secret("db", json!({ "password": "hunter2-pass", "port": 5432 }));
/// assert_eq!(ValuePath::new("db.password").text(&ctx).unwrap(), "hunter2-pass");
/// assert_eq!(ValuePath::new("db.port").text(&ctx).unwrap(), "5432");
/// assert_eq!(
///     ValuePath::new("db.user").get(&ctx).unwrap_err().to_string(),
///     "values.db.user is not published"
/// );
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

    /// The name the value is published under: the path's first part.
    ///
    /// ```
    /// assert_eq!(init_core::ValuePath::new("db.password").name(), "db");
    /// ```
    pub fn name(&self) -> &str {
        self.0.split('.').next().unwrap_or_default()
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
    /// assert_eq!(
    ///     err.to_string(),
    ///     "value path \"db..password\": expected names separated by dots"
    /// );
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

    /// The read this path stands for in the plan's data-flow check (`values.db.password`),
    /// located at `origin` (`environment variable PGPASSWORD`) for its messages.
    ///
    /// ```
    /// let r = init_core::ValuePath::new("db.password").reference("environment variable PGPASSWORD");
    /// assert_eq!(r.to_string(), "values.db.password");
    /// assert_eq!(r.origin(), Some("environment variable PGPASSWORD"));
    /// ```
    pub fn reference(&self, origin: impl Into<String>) -> Reference {
        Reference::value(&self.0).at(origin)
    }

    /// The value at this path in what `ctx` has published.
    ///
    /// # Errors
    ///
    /// A [permanent](StepError::permanent) error when nothing is there:
    /// `values.db.password is not published`.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish("pki", serde_json::json!({ "ca_chain": ["root", "intermediate"] }));
    /// assert_eq!(init_core::ValuePath::new("pki.ca_chain.1").get(&ctx).unwrap(), "intermediate");
    /// assert!(init_core::ValuePath::new("pki.ca_chain.2").get(&ctx).unwrap_err().is_permanent());
    /// ```
    pub fn get(&self, ctx: &Context) -> Result<Value, StepError> {
        let mut parts = self.0.split('.');
        parts
            .next()
            .and_then(|name| ctx.value(name))
            .and_then(|root| parts.try_fold(root, child))
            .ok_or_else(|| StepError::permanent(format!("values.{} is not published", self.0)))
    }

    /// The value at this path as text: a string as it is, anything else as compact JSON
    /// (`5432`, `true`, `{"a":1}`), the form an environment variable or a file gets.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish("flags", serde_json::json!({ "debug": true }));
    /// assert_eq!(init_core::ValuePath::new("flags").text(&ctx).unwrap(), r#"{"debug":true}"#);
    /// ```
    pub fn text(&self, ctx: &Context) -> Result<String, StepError> {
        Ok(match self.get(ctx)? {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }
}

/// Key `part` of an object, or element `part` of an array.
fn child(value: Value, part: &str) -> Option<Value> {
    match value {
        Value::Object(mut map) => map.remove(part),
        Value::Array(mut items) => {
            let index = part.parse::<usize>().ok().filter(|&i| i < items.len())?;
            Some(items.swap_remove(index))
        }
        _ => None,
    }
}

impl fmt::Display for ValuePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ValuePath {
    fn from(path: &str) -> Self {
        Self::new(path)
    }
}

impl From<String> for ValuePath {
    fn from(path: String) -> Self {
        Self(path)
    }
}

impl From<&String> for ValuePath {
    fn from(path: &String) -> Self {
        Self::new(path.as_str())
    }
}
