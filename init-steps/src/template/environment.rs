//! The minijinja environment every template renders in.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, LazyLock};

use minijinja::value::{Rest, Value};
use minijinja::{AutoEscape, Environment, ErrorKind, State, UndefinedBehavior};

use super::filters::{
    filter_b64decode, filter_b64encode, filter_required, filter_sha256, filter_tojson,
};
use super::strict::add_strict_builtins;
use super::values::Tracker;

/// The environment templates are checked in at validation, built once: [`base`], no loader
/// (checking loads nothing).
pub(super) static CHECKER: LazyLock<Environment<'static>> = LazyLock::new(base);

/// The environment every template renders in: [`base`], includes confined to `root`; with the
/// render's `tracker` when rendering.
pub(super) fn environment(root: &Path, tracker: Option<&Arc<Tracker>>) -> Environment<'static> {
    let mut env = base();
    if let Some(tracker) = tracker {
        // A missing value that `default` or `is defined` handled is not the one a later
        // undefined-value error (on a value no tracker sees) should name.
        for name in ["default", "d"] {
            let tracker = Arc::clone(tracker);
            env.add_filter(
                name,
                move |state: &State<'_, '_>, value: &Value, args: Rest<Value>| {
                    tracker.handled(value);
                    minijinja::filters::default(state, value, args)
                },
            );
        }
        for (name, test) in [
            (
                "defined",
                minijinja::tests::is_defined as fn(&Value) -> bool,
            ),
            ("undefined", minijinja::tests::is_undefined),
        ] {
            let tracker = Arc::clone(tracker);
            env.add_test(name, move |value: &Value| {
                tracker.handled(value);
                test(value)
            });
        }
    }
    let root = root.to_path_buf();
    env.set_loader(move |name: &str| {
        let Some(path) = loadable(&root, name) else {
            return Err(minijinja::Error::new(
                ErrorKind::TemplateNotFound,
                format!("template {name:?}: {OUTSIDE}"),
            ));
        };
        match std::fs::read_to_string(path) {
            Ok(source) => Ok(Some(source)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(minijinja::Error::new(
                ErrorKind::TemplateNotFound,
                format!("template {name:?}: cannot read it"),
            )
            .with_source(e)),
        }
    });
    env
}

/// Why a template name [`loadable`] refuses cannot be loaded.
pub(super) const OUTSIDE: &str = "only paths inside the template directory can be loaded";

/// The file `{% include name %}` (or `import`, `extends`) loads: `name` under `root`, or `None`
/// for a name that could leave it (`..`, an absolute path).
pub(super) fn loadable(root: &Path, name: &str) -> Option<PathBuf> {
    let relative = Path::new(name);
    relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        .then(|| root.join(relative))
}

/// Strict undefined, no auto-escaping, the trailing newline kept, our filters, every filter
/// refusing an undefined value.
fn base() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.add_filter("required", filter_required);
    env.add_filter("b64encode", filter_b64encode);
    env.add_filter("b64decode", filter_b64decode);
    env.add_filter("tojson", filter_tojson);
    env.add_filter("sha256", filter_sha256);
    add_strict_builtins(&mut env);
    env
}
