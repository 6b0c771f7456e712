//! Data flow: what a step publishes ([`Publication`]) and what it reads ([`Reference`]), and
//! the check [`Plan::validate`](crate::Plan::validate) makes with them: every read is satisfied
//! by a step that runs before it, or by the environment, so a typo in `values.db.pasword` is
//! exit 2 in milliseconds instead of a failure after every wait.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A value a step publishes with [`Context::publish`](crate::Context::publish) or
/// [`publish_secret`](crate::Context::publish_secret): its name and, when the step knows them,
/// the keys of the object it publishes (a `KvRead` with `fields`, a PKI certificate's parts).
///
/// With keys, a read of `values.<name>.<key>` is checked against them; without, only the name.
///
/// # Examples
///
/// ```
/// use init_core::Publication;
///
/// let db = Publication::new("db").with_keys(["username", "password"]);
/// assert_eq!(db.name(), "db");
/// assert_eq!(db.keys().unwrap().len(), 2);
/// assert_eq!(db.to_string(), "values.db{password,username}");
/// assert_eq!(Publication::new("settings").keys(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    name: String,
    keys: Option<BTreeSet<String>>,
}

impl Publication {
    /// A published value called `name`, whose keys are not known.
    ///
    /// ```
    /// assert_eq!(init_core::Publication::new("db").name(), "db");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            keys: None,
        }
    }

    /// The value is an object with exactly these top-level keys.
    ///
    /// ```
    /// let p = init_core::Publication::new("tls").with_keys(["certificate", "private_key"]);
    /// assert!(p.keys().unwrap().contains("certificate"));
    /// ```
    #[must_use]
    pub fn with_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys = Some(keys.into_iter().map(Into::into).collect());
        self
    }

    /// The name it is published under.
    ///
    /// ```
    /// assert_eq!(init_core::Publication::new("db").name(), "db");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its top-level keys, when known.
    ///
    /// ```
    /// assert!(init_core::Publication::new("db").keys().is_none());
    /// ```
    pub fn keys(&self) -> Option<&BTreeSet<String>> {
        self.keys.as_ref()
    }
}

impl fmt::Display for Publication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "values.{}", self.name)?;
        if let Some(keys) = &self.keys {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            write!(f, "{{{}}}", keys.join(","))?;
        }
        Ok(())
    }
}

/// Where a [`Reference`] reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A value published by an earlier step (`values.db.password` in a template).
    Value,
    /// An environment variable (`env.HOME` in a template).
    Env,
}

/// A value a step reads: a published value's path (`db.password`) or an environment variable,
/// where in the step's input it appears (a template's file and line), and whether the read is
/// guarded (`default(..)`, `is defined`, `required`), so that a missing value is handled.
///
/// # Examples
///
/// ```
/// use init_core::Reference;
///
/// let r = Reference::value("db.password").at("app.toml.j2:3");
/// assert_eq!(r.to_string(), "values.db.password");
/// assert_eq!(r.path(), ["db", "password"]);
/// assert_eq!(r.origin(), Some("app.toml.j2:3"));
/// assert!(!r.is_guarded());
/// assert!(Reference::env("HOME").guarded().is_guarded());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    source: Source,
    path: Vec<String>,
    guarded: bool,
    origin: Option<String>,
}

impl Reference {
    /// A read of the published value at dotted `path` (`db.password`: key `password` of the
    /// value published as `db`).
    ///
    /// ```
    /// assert_eq!(init_core::Reference::value("db").path(), ["db"]);
    /// ```
    pub fn value(path: &str) -> Self {
        Self {
            source: Source::Value,
            path: path.split('.').map(str::to_owned).collect(),
            guarded: false,
            origin: None,
        }
    }

    /// A read of environment variable `name`.
    ///
    /// ```
    /// assert_eq!(init_core::Reference::env("HOME").to_string(), "env.HOME");
    /// ```
    pub fn env(name: &str) -> Self {
        Self {
            source: Source::Env,
            path: vec![name.to_owned()],
            guarded: false,
            origin: None,
        }
    }

    /// The read handles a missing value itself (a default, a test, `required`'s own error).
    ///
    /// ```
    /// assert!(init_core::Reference::value("x").guarded().is_guarded());
    /// ```
    #[must_use]
    pub fn guarded(mut self) -> Self {
        self.guarded = true;
        self
    }

    /// Where the read appears, for messages (`app.toml.j2:3`, `env DB_PASSWORD`).
    ///
    /// ```
    /// assert_eq!(init_core::Reference::env("A").at("f:1").origin(), Some("f:1"));
    /// ```
    #[must_use]
    pub fn at(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Values or the environment.
    ///
    /// ```
    /// assert_eq!(init_core::Reference::env("A").source(), init_core::Source::Env);
    /// ```
    pub fn source(&self) -> Source {
        self.source
    }

    /// The path's parts: the published name then its keys, or the variable's name.
    ///
    /// ```
    /// assert_eq!(init_core::Reference::value("a.b.c").path().len(), 3);
    /// ```
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// Whether a missing value is handled by the reader.
    ///
    /// ```
    /// assert!(!init_core::Reference::value("x").is_guarded());
    /// ```
    pub fn is_guarded(&self) -> bool {
        self.guarded
    }

    /// Where the read appears, if the step said.
    ///
    /// ```
    /// assert_eq!(init_core::Reference::value("x").origin(), None);
    /// ```
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.source {
            Source::Value => "values",
            Source::Env => "env",
        };
        write!(f, "{prefix}.{}", self.path.join("."))
    }
}

/// Who reads a reference, which says where its value must come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    /// A step: from a step that runs before it.
    Step,
    /// The program `run_main_then_exec` execs: from any step of the plan.
    Program,
}

/// What the steps before a point of the plan have published, as far as they said.
#[derive(Debug, Clone, Default)]
pub(crate) struct Available {
    /// Name -> keys (`None`: some publisher of the name did not say its keys).
    names: BTreeMap<String, Option<BTreeSet<String>>>,
    /// A step before did not say what it publishes: a name no one declared may still come.
    unknown: bool,
}

impl Available {
    /// Adds what a step declares (`None`: it did not say).
    pub(crate) fn add(&mut self, publications: Option<Vec<Publication>>) {
        let Some(publications) = publications else {
            self.unknown = true;
            return;
        };
        for p in publications {
            match self.names.get_mut(&p.name) {
                None => {
                    self.names.insert(p.name, p.keys);
                }
                Some(keys) => match (keys.as_mut(), p.keys) {
                    (Some(known), Some(more)) => known.extend(more),
                    _ => *keys = None,
                },
            }
        }
    }

    /// Adds everything `other` has (the members of a concurrent group, after it).
    pub(crate) fn merge(&mut self, other: Available) {
        self.unknown |= other.unknown;
        for (name, keys) in other.names {
            self.add(Some(vec![Publication { name, keys }]));
        }
    }

    /// Why `reference` cannot be satisfied here, or `None` when it can (or cannot be refuted).
    pub(crate) fn check(
        &self,
        reference: &Reference,
        env: &BTreeMap<String, String>,
        reader: Reader,
    ) -> Option<String> {
        if reference.guarded {
            return None;
        }
        let at = reference
            .origin
            .as_deref()
            .map(|o| format!("{o}: "))
            .unwrap_or_default();
        match reference.source {
            Source::Env => {
                let name = &reference.path[0];
                if env.contains_key(name) {
                    return None;
                }
                let hint = closest(name, env.keys().map(String::as_str))
                    .map(|c| format!(" (did you mean env.{c}?)"))
                    .unwrap_or_default();
                Some(format!(
                    "{at}{reference} is not set in the environment{hint}"
                ))
            }
            Source::Value => {
                let name = &reference.path[0];
                let Some(keys) = self.names.get(name) else {
                    if self.unknown {
                        return None;
                    }
                    let hint = closest(name, self.names.keys().map(String::as_str))
                        .map(|c| format!(" (did you mean values.{c}?)"))
                        .unwrap_or_default();
                    let publishers = match reader {
                        Reader::Step => "any step before this one",
                        Reader::Program => "any step of the plan",
                    };
                    return Some(format!(
                        "{at}{reference} is not published by {publishers}{hint}"
                    ));
                };
                let (Some(keys), Some(key)) = (keys, reference.path.get(1)) else {
                    return None;
                };
                if keys.contains(key) {
                    return None;
                }
                let hint = closest(key, keys.iter().map(String::as_str))
                    .map(|c| format!(" (did you mean values.{name}.{c}?)"))
                    .unwrap_or_default();
                let known: Vec<&str> = keys.iter().map(String::as_str).collect();
                Some(format!(
                    "{at}{reference}: values.{name} has no key \"{key}\" (it has: {}){hint}",
                    known.join(", ")
                ))
            }
        }
    }
}

/// The candidate closest to `word` by edit distance, if close enough to be a typo of it.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, c)| (d, c))
        .map(|(_, c)| c)
}

/// Levenshtein distance, case-insensitive (a wrong case is a typo too).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("password", "pasword"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("DB_HOST", "db_host"), 0);
    }

    #[test]
    fn a_key_typo_names_the_closest_key() {
        let mut available = Available::default();
        available.add(Some(vec![
            Publication::new("db").with_keys(["username", "password"]),
        ]));
        let reference = Reference::value("db.pasword").at("app.toml.j2:3");
        assert_eq!(
            available
                .check(&reference, &env(&[]), Reader::Step)
                .unwrap(),
            "app.toml.j2:3: values.db.pasword: values.db has no key \"pasword\" (it has: \
             password, username) (did you mean values.db.password?)"
        );
        assert_eq!(
            available.check(&Reference::value("db.password"), &env(&[]), Reader::Step),
            None
        );
        assert_eq!(
            available.check(&reference.guarded(), &env(&[]), Reader::Step),
            None
        );
    }

    #[test]
    fn an_unknown_publisher_before_leaves_names_unrefuted_but_keys_of_known_ones_checked() {
        let mut available = Available::default();
        available.add(Some(vec![Publication::new("db").with_keys(["password"])]));
        available.add(None);
        assert_eq!(
            available.check(&Reference::value("anything"), &env(&[]), Reader::Step),
            None
        );
        assert!(
            available
                .check(&Reference::value("db.user"), &env(&[]), Reader::Step)
                .is_some()
        );
    }

    #[test]
    fn a_name_published_without_keys_accepts_every_key() {
        let mut available = Available::default();
        available.add(Some(vec![Publication::new("db").with_keys(["password"])]));
        available.add(Some(vec![Publication::new("db")]));
        assert_eq!(
            available.check(&Reference::value("db.user"), &env(&[]), Reader::Step),
            None
        );
    }

    #[test]
    fn an_unset_variable_names_the_closest_one_set() {
        let available = Available::default();
        let error = available
            .check(
                &Reference::env("DB_HOTS"),
                &env(&[("DB_HOST", "pg"), ("HOME", "/")]),
                Reader::Step,
            )
            .unwrap();
        assert_eq!(
            error,
            "env.DB_HOTS is not set in the environment (did you mean env.DB_HOST?)"
        );
        assert_eq!(
            available.check(
                &Reference::env("HOME"),
                &env(&[("HOME", "/")]),
                Reader::Step
            ),
            None
        );
    }

    #[test]
    fn a_far_name_gets_no_suggestion() {
        let mut available = Available::default();
        available.add(Some(vec![Publication::new("settings")]));
        assert_eq!(
            available
                .check(&Reference::value("db.password"), &env(&[]), Reader::Step)
                .unwrap(),
            "values.db.password is not published by any step before this one"
        );
    }

    #[test]
    fn a_program_read_says_no_step_of_the_plan_published_it() {
        let available = Available::default();
        assert_eq!(
            available
                .check(&Reference::value("db.password"), &env(&[]), Reader::Program)
                .unwrap(),
            "values.db.password is not published by any step of the plan"
        );
    }
}
