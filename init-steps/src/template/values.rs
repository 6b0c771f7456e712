//! The values a render reads: the template's root context (`values`, `env`) and the tracker
//! that records what was read and which lookup found nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use init_core::Published;
use minijinja::value::{Enumerator, Object, ObjectRepr, Serde, Value};
use serde_json::Value as Json;

/// What a render looked up: the published values it read (top-level names), the environment
/// variables it read, and the last lookup that found nothing (named in an undefined-value
/// error).
#[derive(Debug, Default)]
pub(super) struct Tracker {
    pub(super) read: Mutex<BTreeSet<String>>,
    pub(super) env_read: Mutex<BTreeSet<String>>,
    pub(super) missing: Mutex<Option<String>>,
}

impl Tracker {
    fn missing(&self, name: String) {
        *lock(&self.missing) = Some(name);
    }

    /// `value` was tested or given a default: when it is the missing one, it is forgotten.
    pub(super) fn handled(&self, value: &Value) {
        if value.is_undefined() {
            *lock(&self.missing) = None;
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The template's root context: `values` and `env`.
#[derive(Debug)]
pub(super) struct Root {
    pub(super) values: Published,
    pub(super) env: Arc<BTreeMap<String, String>>,
    pub(super) tracker: Arc<Tracker>,
}

impl Object for Root {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "values" => Some(Value::from_object(Values {
                published: self.values.clone(),
                tracker: Arc::clone(&self.tracker),
            })),
            "env" => Some(Value::from_object(EnvVars {
                vars: Arc::clone(&self.env),
                tracker: Arc::clone(&self.tracker),
            })),
            other => {
                self.tracker.missing(other.to_owned());
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["values", "env"])
    }
}

/// `values`: records which published values the template reads.
#[derive(Debug)]
struct Values {
    published: Published,
    tracker: Arc<Tracker>,
}

impl Object for Values {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        match self.published.get(key) {
            Some(value) => {
                lock(&self.tracker.read).insert(key.to_owned());
                Some(node(value, format!("values.{key}"), &self.tracker))
            }
            None => {
                self.tracker.missing(format!("values.{key}"));
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // Iterating (or serializing) `values` reads all of them.
        let names = self.published.values().keys();
        lock(&self.tracker.read).extend(names.clone().cloned());
        Enumerator::Values(names.map(|k| Value::from(k.as_str())).collect())
    }
}

/// `env`: the environment, recording missing names.
#[derive(Debug)]
struct EnvVars {
    vars: Arc<BTreeMap<String, String>>,
    tracker: Arc<Tracker>,
}

impl Object for EnvVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        match self.vars.get(key) {
            Some(value) => {
                lock(&self.tracker.env_read).insert(key.to_owned());
                Some(Value::from(value.as_str()))
            }
            None => {
                self.tracker.missing(format!("env.{key}"));
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // Iterating (or serializing) `env` reads all of it.
        lock(&self.tracker.env_read).extend(self.vars.keys().cloned());
        Enumerator::Values(self.vars.keys().map(|k| Value::from(k.as_str())).collect())
    }
}

/// A JSON object or array inside `values`, recording missing keys by their full path.
#[derive(Debug)]
struct Node {
    json: Json,
    path: String,
    tracker: Arc<Tracker>,
}

fn node(json: &Json, path: String, tracker: &Arc<Tracker>) -> Value {
    match json {
        Json::Object(_) | Json::Array(_) => Value::from_object(Node {
            json: json.clone(),
            path,
            tracker: Arc::clone(tracker),
        }),
        Json::String(s) => Value::from(s.as_str()),
        other => Value::from(Serde(other)),
    }
}

impl Object for Node {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.json {
            Json::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (found, path) = match &self.json {
            Json::Object(map) => {
                let key = key.as_str()?;
                (map.get(key), format!("{}.{key}", self.path))
            }
            Json::Array(items) => {
                let index = usize::try_from(key.clone()).ok()?;
                (items.get(index), format!("{}[{index}]", self.path))
            }
            _ => return None,
        };
        match found {
            Some(value) => Some(node(value, path, &self.tracker)),
            None => {
                self.tracker.missing(path);
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match &self.json {
            Json::Object(map) => {
                Enumerator::Values(map.keys().map(|k| Value::from(k.as_str())).collect())
            }
            Json::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }
}
