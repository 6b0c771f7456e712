//! `Context`: what steps share during a run (environment, published values and secrets, typed
//! extras, the redactor and cancellation).

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::redact::Redactor;

/// The state every step of a plan shares.
///
/// - **Environment**: read through [`env`](Self::env), so tests can inject one with
///   [`with_env`](Self::with_env) instead of touching the process environment.
/// - **Published values**: [`publish`](Self::publish) and [`publish_secret`](Self::publish_secret)
///   store JSON values by name; templates see them as `{{ values.db.password }}`. Every string
///   inside a secret value is registered with the [`Redactor`].
/// - **Typed extras**: [`insert`](Self::insert) and [`get`](Self::get), one value per type (a
///   step made by `#[init_step]` returning `Result<T, _>` inserts its `T`).
/// - **Cancellation**: [`cancellation`](Self::cancellation) is tripped by SIGTERM, the plan
///   deadline or a failed sibling in a concurrent group.
///
/// A `Context` is cheap to clone; clones share everything.
///
/// # Examples
///
/// ```
/// use init_core::Context;
/// use serde_json::json;
///
/// let ctx = Context::with_env([("HOME", "/home/app")]);
/// assert_eq!(ctx.env("HOME").as_deref(), Some("/home/app"));
///
/// ctx.publish_secret("db", json!({ "user": "orders", "password": "hunter2" }));
/// assert_eq!(ctx.value("db").unwrap()["user"], "orders");
/// assert_eq!(ctx.redact("password is hunter2"), "password is [redacted]");
/// ```
#[derive(Clone)]
pub struct Context {
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

struct Shared {
    env: Env,
    values: RwLock<Map<String, Value>>,
    secret_names: RwLock<Vec<String>>,
    extras: RwLock<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    redactor: Redactor,
}

enum Env {
    Process,
    Fixed(BTreeMap<String, String>),
}

impl Context {
    /// A context over the process environment, with a fresh redactor and cancellation token.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// assert!(!ctx.cancellation().is_cancelled());
    /// ```
    pub fn new() -> Self {
        Self::build(Env::Process, Redactor::new())
    }

    /// A context whose environment is exactly `vars` (the process environment is not read).
    ///
    /// ```
    /// let ctx = init_core::Context::with_env([("VAULT_ADDR", "http://127.0.0.1:8200")]);
    /// assert_eq!(ctx.env("VAULT_ADDR").as_deref(), Some("http://127.0.0.1:8200"));
    /// assert_eq!(ctx.env("PATH"), None);
    /// ```
    pub fn with_env<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::build(Env::Fixed(vars), Redactor::new())
    }

    /// A context over the process environment that registers secrets with `redactor` (the one
    /// the log writer uses).
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// let ctx = init_core::Context::with_redactor(redactor.clone());
    /// ctx.register_secret("t0ken-value");
    /// assert_eq!(redactor.redact("t0ken-value"), "[redacted]");
    /// ```
    pub fn with_redactor(redactor: Redactor) -> Self {
        Self::build(Env::Process, redactor)
    }

    fn build(env: Env, redactor: Redactor) -> Self {
        Self {
            shared: Arc::new(Shared {
                env,
                values: RwLock::default(),
                secret_names: RwLock::default(),
                extras: RwLock::default(),
                redactor,
            }),
            cancel: CancellationToken::new(),
        }
    }

    /// The value of environment variable `key`, or `None` when it is unset or not UTF-8.
    ///
    /// ```
    /// let ctx = init_core::Context::with_env([("A", "1")]);
    /// assert_eq!(ctx.env("A").as_deref(), Some("1"));
    /// ```
    pub fn env(&self, key: &str) -> Option<String> {
        match &self.shared.env {
            Env::Process => std::env::var(key).ok(),
            Env::Fixed(vars) => vars.get(key).cloned(),
        }
    }

    /// The whole environment, sorted by name (variables that are not UTF-8 are left out).
    ///
    /// ```
    /// let ctx = init_core::Context::with_env([("B", "2"), ("A", "1")]);
    /// assert_eq!(ctx.env_vars().keys().collect::<Vec<_>>(), ["A", "B"]);
    /// ```
    pub fn env_vars(&self) -> BTreeMap<String, String> {
        match &self.shared.env {
            Env::Process => std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            Env::Fixed(vars) => vars.clone(),
        }
    }

    /// Publishes a value under `name` for later steps and templates (`{{ values.name }}`),
    /// replacing any earlier value of that name.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish("region", "eu-west-1");
    /// assert_eq!(ctx.value("region").unwrap(), "eu-west-1");
    /// ```
    pub fn publish(&self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        write(&self.shared.secret_names).retain(|n| n != &name);
        write(&self.shared.values).insert(name, value.into());
    }

    /// Publishes a secret value: like [`publish`](Self::publish), and every string inside it is
    /// registered with the redactor first, so it never reaches a log line, an error, the report
    /// or the termination message. (Numbers, booleans and object keys are not registered: a
    /// secret number would otherwise blank out every port that shares its digits.)
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish_secret("api-key", "k-123456");
    /// assert!(ctx.is_secret("api-key"));
    /// assert_eq!(ctx.redact("key k-123456"), "key [redacted]");
    /// ```
    pub fn publish_secret(&self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        let value = value.into();
        register_leaves(&self.shared.redactor, &value);
        let mut names = write(&self.shared.secret_names);
        if !names.contains(&name) {
            names.push(name.clone());
        }
        drop(names);
        write(&self.shared.values).insert(name, value);
    }

    /// The value published under `name`.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// assert_eq!(ctx.value("missing"), None);
    /// ```
    pub fn value(&self, name: &str) -> Option<Value> {
        read(&self.shared.values).get(name).cloned()
    }

    /// Every published value, as one JSON object (what templates see as `values`).
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish("a", 1);
    /// assert_eq!(ctx.values()["a"], 1);
    /// ```
    pub fn values(&self) -> Value {
        Value::Object(read(&self.shared.values).clone())
    }

    /// Whether the value published under `name` is a secret.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish("plain", "x");
    /// assert!(!ctx.is_secret("plain"));
    /// ```
    pub fn is_secret(&self, name: &str) -> bool {
        read(&self.shared.secret_names).iter().any(|n| n == name)
    }

    /// Registers a secret that is not published (a token, a password read from a file), so the
    /// redactor hides it.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.register_secret("hvs.CAESIJ");
    /// assert_eq!(ctx.redact("token hvs.CAESIJ"), "token [redacted]");
    /// ```
    pub fn register_secret(&self, secret: &str) {
        self.shared.redactor.register(secret);
    }

    /// Stores a typed value for later steps; one value per type, a later insert replaces it.
    ///
    /// ```
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct SchemaVersion(u32);
    /// let ctx = init_core::Context::new();
    /// ctx.insert(SchemaVersion(42));
    /// assert_eq!(ctx.get::<SchemaVersion>(), Some(SchemaVersion(42)));
    /// ```
    pub fn insert<T: Any + Send + Sync>(&self, value: T) {
        write(&self.shared.extras).insert(TypeId::of::<T>(), Box::new(value));
    }

    /// A clone of the typed value stored for `T`.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// assert_eq!(ctx.get::<u64>(), None);
    /// ```
    pub fn get<T: Any + Send + Sync + Clone>(&self) -> Option<T> {
        read(&self.shared.extras)
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    /// The redactor that every secret of this context is registered with.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish_secret("k", "value-1");
    /// assert_eq!(ctx.redactor().len(), 1);
    /// ```
    pub fn redactor(&self) -> &Redactor {
        &self.shared.redactor
    }

    /// `text` with every known secret hidden (see [`Redactor::redact`]).
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// assert_eq!(ctx.redact("https://u:p@h"), "https://u:[redacted]@h");
    /// ```
    pub fn redact(&self, text: &str) -> String {
        self.shared.redactor.redact(text).into_owned()
    }

    /// The cancellation token of the work in progress. The executor drops an attempt's future
    /// when it trips, so steps only need it to stop work they started outside that future (a
    /// child process, a spawned task).
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.cancellation().cancel();
    /// assert!(ctx.cancellation().is_cancelled());
    /// ```
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// A context sharing everything with this one but cancelled separately: cancelling the
    /// parent cancels the child, not the reverse. The executor gives each member of a
    /// concurrent group one.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// let child = ctx.child();
    /// child.cancellation().cancel();
    /// assert!(!ctx.cancellation().is_cancelled());
    /// ```
    pub fn child(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            cancel: self.cancel.child_token(),
        }
    }
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: Vec<String> = read(&self.shared.values).keys().cloned().collect();
        f.debug_struct("Context")
            .field("values", &values)
            .field("redactor", &self.shared.redactor)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

fn register_leaves(redactor: &Redactor, value: &Value) {
    match value {
        Value::String(s) => redactor.register(s),
        Value::Array(items) => items.iter().for_each(|v| register_leaves(redactor, v)),
        Value::Object(map) => map.values().for_each(|v| register_leaves(redactor, v)),
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
