//! `ValidateContext`: what a step's `validate` may look at (the plan's environment), so that
//! configuration read from the environment is checked before anything runs.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::context::Context;

/// What [`Step::validate`](crate::Step::validate) sees: the environment the plan will run with
/// (the same one its [`Context`] gives [`run`](crate::Step::run), so a test that injects one
/// with [`Context::with_env`] validates against it too).
///
/// [`Plan::validate`](crate::Plan::validate) builds one from the plan's context; a step's own
/// tests can build one with [`new`](Self::new), [`with_env`](Self::with_env) or
/// [`process`](Self::process).
///
/// # Examples
///
/// ```
/// use init_core::{Context, ValidateContext};
///
/// let ctx = Context::with_env([("VAULT_ADDR", "http://127.0.0.1:8200")]);
/// let cx = ValidateContext::new(&ctx);
/// assert_eq!(cx.env("VAULT_ADDR").as_deref(), Some("http://127.0.0.1:8200"));
/// assert_eq!(cx.env("VAULT_TOKEN"), None);
/// ```
#[derive(Debug, Clone)]
pub struct ValidateContext<'a> {
    ctx: Cow<'a, Context>,
}

impl<'a> ValidateContext<'a> {
    /// A validation context over `ctx`'s environment.
    ///
    /// ```
    /// let ctx = init_core::Context::with_env([("A", "1")]);
    /// let cx = init_core::ValidateContext::new(&ctx);
    /// assert_eq!(cx.env("A").as_deref(), Some("1"));
    /// ```
    pub fn new(ctx: &'a Context) -> Self {
        Self {
            ctx: Cow::Borrowed(ctx),
        }
    }

    /// A validation context over exactly `vars` (the process environment is not read), for a
    /// step's tests.
    ///
    /// ```
    /// let cx = init_core::ValidateContext::with_env([("A", "1")]);
    /// assert_eq!(cx.env("A").as_deref(), Some("1"));
    /// assert_eq!(cx.env("PATH"), None);
    /// ```
    pub fn with_env<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> ValidateContext<'static>
    where
        K: Into<String>,
        V: Into<String>,
    {
        ValidateContext {
            ctx: Cow::Owned(Context::with_env(vars)),
        }
    }

    /// A validation context over the process environment.
    ///
    /// ```
    /// let cx = init_core::ValidateContext::process();
    /// assert_eq!(cx.env("PATH"), std::env::var("PATH").ok());
    /// ```
    pub fn process() -> ValidateContext<'static> {
        ValidateContext {
            ctx: Cow::Owned(Context::new()),
        }
    }

    /// The value of environment variable `key` as the plan will see it, or `None` when it is
    /// unset or not UTF-8.
    ///
    /// ```
    /// let ctx = init_core::Context::with_env([("PORT", "8080")]);
    /// assert_eq!(init_core::ValidateContext::new(&ctx).env("PORT").as_deref(), Some("8080"));
    /// ```
    pub fn env(&self, key: &str) -> Option<String> {
        self.ctx.env(key)
    }

    /// The whole environment, sorted by name (see [`Context::env_vars`]).
    ///
    /// ```
    /// let ctx = init_core::Context::with_env([("B", "2"), ("A", "1")]);
    /// let cx = init_core::ValidateContext::new(&ctx);
    /// assert_eq!(cx.env_vars().keys().collect::<Vec<_>>(), ["A", "B"]);
    /// ```
    pub fn env_vars(&self) -> BTreeMap<String, String> {
        self.ctx.env_vars()
    }
}
