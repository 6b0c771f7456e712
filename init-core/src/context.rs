//! `Context`: what steps share during a run (environment, published values and secrets, typed
//! extras, the redactor and cancellation).

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::cleanup::Cleanups;
use crate::redact::Redactor;
use crate::secret_env::SecretEnv;

/// The state every step of a plan shares.
///
/// - **Environment**: read through [`env`](Self::env), so tests can inject one with
///   [`with_env`](Self::with_env) instead of touching the process environment.
/// - **Published values**: [`publish`](Self::publish) and [`publish_secret`](Self::publish_secret)
///   store JSON values by name, each with its secret flag; templates see them as
///   `{{ values.db.password }}`. Every string and number inside a secret value is registered
///   with the [`Redactor`]; a secret name is never downgraded to plain.
/// - **Secret environment variables**: [`register_secret_env`](Self::register_secret_env)
///   (the plan calls it before step one).
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
    /// The published values and which names are secret, under one lock; replaced (copied on
    /// write) when a snapshot is alive.
    published: RwLock<Arc<PublishedState>>,
    /// The environment variables registered as secret.
    secret_env: RwLock<BTreeSet<String>>,
    /// The paths of short secret values already warned about (one warning each).
    warned: RwLock<BTreeSet<String>>,
    extras: RwLock<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    redactor: Redactor,
    cleanups: Cleanups,
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
                published: RwLock::default(),
                secret_env: RwLock::default(),
                warned: RwLock::default(),
                extras: RwLock::default(),
                redactor,
                cleanups: Cleanups::new(),
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
    /// A name that was published as a secret stays a secret (as a sensitive HTTP header
    /// stays sensitive): the new value is registered like [`publish_secret`](Self::publish_secret)'s.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish("region", "eu-west-1");
    /// assert_eq!(ctx.value("region").unwrap(), "eu-west-1");
    ///
    /// ctx.publish_secret("db", "hunter2-pass");
    /// ctx.publish("db", "other-password");
    /// assert!(ctx.is_secret("db"));
    /// assert_eq!(ctx.redact("other-password"), "[redacted]");
    /// ```
    pub fn publish(&self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        let value = value.into();
        if self.is_secret(&name) {
            self.register_secret_value(&name, &value);
        }
        self.store(name, value, false);
    }

    /// Publishes a secret value: like [`publish`](Self::publish), and every string and number
    /// inside it is registered with the redactor first (see
    /// [`register_secret_value`](Self::register_secret_value)), so it never reaches a log line,
    /// an error, the report or the termination message.
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
        self.register_secret_value(&name, &value);
        self.store(name, value, true);
    }

    /// Publishes an object whose fields are secret except `plain_fields` (a KV secret's
    /// `username`, say): the plain fields are not registered, so their values stay readable in
    /// logs. The name counts as secret (templates reading it are written `0o600`) when any
    /// other field is left, or when it already was.
    ///
    /// ```
    /// use serde_json::json;
    /// let ctx = init_core::Context::new();
    /// ctx.publish_secret_except("db", json!({"username": "orders", "password": "hunter2-pass"}), ["username"]);
    /// assert_eq!(ctx.redact("user orders, password hunter2-pass"), "user orders, password [redacted]");
    /// assert!(ctx.is_secret("db"));
    /// ```
    pub fn publish_secret_except<I, S>(
        &self,
        name: impl Into<String>,
        value: Value,
        plain_fields: I,
    ) where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let name = name.into();
        let plain: Vec<S> = plain_fields.into_iter().collect();
        let is_plain = |key: &str| plain.iter().any(|p| p.as_ref() == key);
        let secret = match &value {
            Value::Object(map) => {
                let mut secret = false;
                for (key, field) in map.iter().filter(|(k, _)| !is_plain(k)) {
                    self.register_secret_value(&format!("{name}.{key}"), field);
                    secret = true;
                }
                secret
            }
            other => {
                self.register_secret_value(&name, other);
                true
            }
        };
        self.store(name, value, secret);
    }

    fn store(&self, name: String, value: Value, secret: bool) {
        let mut state = write(&self.shared.published);
        let state = Arc::make_mut(&mut state);
        if secret {
            state.secret.insert(name.clone());
        }
        state.values.insert(name, value);
    }

    /// The value published under `name`.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// assert_eq!(ctx.value("missing"), None);
    /// ```
    pub fn value(&self, name: &str) -> Option<Value> {
        read(&self.shared.published).values.get(name).cloned()
    }

    /// Every published value, as one JSON object (a deep copy; [`published`](Self::published)
    /// is the cheap read-only view).
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish("a", 1);
    /// assert_eq!(ctx.values()["a"], 1);
    /// ```
    pub fn values(&self) -> Value {
        Value::Object(read(&self.shared.published).values.clone())
    }

    /// A read-only snapshot of every published value with its secret flag, taken in one piece
    /// (what templates read). Cheap: it shares the values with the context until the next
    /// publish.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish_secret("db", "hunter2-pass");
    /// let published = ctx.published();
    /// ctx.publish("later", 1);
    /// assert!(published.is_secret("db"));
    /// assert!(published.get("later").is_none());
    /// ```
    pub fn published(&self) -> Published {
        Published(Arc::clone(&read(&self.shared.published)))
    }

    /// Whether the value published under `name` is a secret.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish("plain", "x");
    /// assert!(!ctx.is_secret("plain"));
    /// ```
    pub fn is_secret(&self, name: &str) -> bool {
        read(&self.shared.published).secret.contains(name)
    }

    /// Registers a secret that is not published (a token, a password read from a file), so the
    /// redactor masks it. A value shorter than [`MIN_SECRET_LEN`](crate::MIN_SECRET_LEN)
    /// characters cannot be masked; use [`register_secret_value`](Self::register_secret_value)
    /// to have that logged.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.register_secret("hvs.CAESIJ");
    /// assert_eq!(ctx.redact("token hvs.CAESIJ"), "token [redacted]");
    /// ```
    pub fn register_secret(&self, secret: &str) {
        self.shared.redactor.register(secret);
    }

    /// Registers every string and number inside `value` (a secret read from Vault, whether it
    /// is published or only written to files); `path` names it in the one warning logged when
    /// some parts are shorter than [`MIN_SECRET_LEN`](crate::MIN_SECRET_LEN) characters and so
    /// cannot be masked in free text (the warning names their paths, never their values; each
    /// path is warned about once).
    /// Booleans, nulls and object keys are not registered.
    ///
    /// ```
    /// use serde_json::json;
    /// let ctx = init_core::Context::new();
    /// ctx.register_secret_value("db", &json!({"password": "hunter2-pass", "pin": 12345678, "replicas": "1"}));
    /// assert_eq!(ctx.redact("hunter2-pass 12345678 1"), "[redacted] [redacted] 1");
    /// ```
    pub fn register_secret_value(&self, path: &str, value: &Value) {
        let mut short = Vec::new();
        register_leaves(&self.shared.redactor, path, value, &mut short);
        let mut warned = write(&self.shared.warned);
        short.retain(|path| warned.insert(path.clone()));
        drop(warned);
        if !short.is_empty() {
            tracing::warn!(
                values = %short.join(", "),
                "secret values shorter than {} characters cannot be masked in logs; \
                 initkit never prints them, make sure your own code does not either",
                crate::MIN_SECRET_LEN
            );
        }
    }

    /// Registers the value of every environment variable that `secret_env` names (see
    /// [`SecretEnv`]), and remembers the names, so that a template reading one is written
    /// `0o600`. The executor calls it with the plan's list before validation.
    ///
    /// ```
    /// let ctx = init_core::Context::with_env([("DB_PASSWORD", "hunter2-pass"), ("HOME", "/home/app")]);
    /// ctx.register_secret_env(&init_core::SecretEnv::default());
    /// assert!(ctx.is_secret_env("DB_PASSWORD"));
    /// assert!(!ctx.is_secret_env("HOME"));
    /// assert_eq!(ctx.redact("hunter2-pass"), "[redacted]");
    /// ```
    pub fn register_secret_env(&self, secret_env: &SecretEnv) {
        let mut short = Vec::new();
        let mut names = write(&self.shared.secret_env);
        for (name, value) in self.env_vars() {
            if secret_env.matches(&name) {
                if !value.is_empty() && !self.shared.redactor.register(&value) {
                    short.push(format!("env.{name}"));
                }
                names.insert(name);
            }
        }
        drop(names);
        if !short.is_empty() {
            tracing::warn!(
                values = %short.join(", "),
                "secret environment variables shorter than {} characters cannot be masked in logs",
                crate::MIN_SECRET_LEN
            );
        }
    }

    /// Whether environment variable `name` holds a secret: registered by
    /// [`register_secret_env`](Self::register_secret_env), or named by the
    /// [default list](SecretEnv#default).
    ///
    /// ```
    /// let ctx = init_core::Context::with_env([("VAULT_TOKEN", "hvs.x")]);
    /// assert!(ctx.is_secret_env("VAULT_TOKEN"));
    /// ```
    pub fn is_secret_env(&self, name: &str) -> bool {
        read(&self.shared.secret_env).contains(name) || SecretEnv::default().matches(name)
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

    /// The clean-ups still in flight (a child process group being stopped after its attempt
    /// ended); [`run_main_then_exec`](crate::Plan::run_main_then_exec) waits for them before
    /// it execs the program.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// let guard = ctx.cleanups().begin();
    /// assert_eq!(ctx.child().cleanups().pending(), 1);
    /// drop(guard);
    /// ```
    pub fn cleanups(&self) -> &Cleanups {
        &self.shared.cleanups
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
    #[must_use]
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
        let values: Vec<String> = read(&self.shared.published)
            .values
            .keys()
            .cloned()
            .collect();
        f.debug_struct("Context")
            .field("values", &values)
            .field("redactor", &self.shared.redactor)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// Registers the strings and numbers inside `value`; collects the paths of those too short.
fn register_leaves(redactor: &Redactor, path: &str, value: &Value, short: &mut Vec<String>) {
    let mut leaf = |text: &str| {
        if !text.is_empty() && !redactor.register(text) {
            short.push(path.to_owned());
        }
    };
    match value {
        Value::String(s) => leaf(s),
        Value::Number(n) => leaf(&n.to_string()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                register_leaves(redactor, &format!("{path}[{i}]"), item, short);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                register_leaves(redactor, &format!("{path}.{key}"), item, short);
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// The published values with their secret flags.
#[derive(Debug, Clone, Default)]
struct PublishedState {
    values: Map<String, Value>,
    secret: BTreeSet<String>,
}

/// A read-only snapshot of the published values and their secret flags (see
/// [`Context::published`]); cloning it is cheap.
///
/// ```
/// let ctx = init_core::Context::new();
/// ctx.publish("region", "eu-west-1");
/// let published = ctx.published();
/// assert_eq!(published.get("region").unwrap(), "eu-west-1");
/// assert_eq!(published.values().len(), 1);
/// ```
#[derive(Clone)]
pub struct Published(Arc<PublishedState>);

impl Published {
    /// Every published value by name.
    ///
    /// ```
    /// assert!(init_core::Context::new().published().values().is_empty());
    /// ```
    pub fn values(&self) -> &Map<String, Value> {
        &self.0.values
    }

    /// The value published under `name`.
    ///
    /// ```
    /// assert!(init_core::Context::new().published().get("x").is_none());
    /// ```
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.values.get(name)
    }

    /// Whether the value published under `name` is a secret.
    ///
    /// ```
    /// let ctx = init_core::Context::new();
    /// ctx.publish_secret("k", "hunter2-pass");
    /// assert!(ctx.published().is_secret("k"));
    /// ```
    pub fn is_secret(&self, name: &str) -> bool {
        self.0.secret.contains(name)
    }
}

impl fmt::Debug for Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only, never values.
        f.debug_struct("Published")
            .field("names", &self.0.values.keys().collect::<Vec<_>>())
            .field("secret", &self.0.secret)
            .finish()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
