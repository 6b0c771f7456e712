//! Checking (at validation) and rendering (at run time) one minijinja template, and the
//! `file:line: what` wording of its errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use init_core::{Context, Reference, StepError};
use minijinja::value::Value;
use minijinja::{Environment, ErrorKind};

use super::environment::{OUTSIDE, environment, loadable};
use super::references::find;
use super::tree::read_template;
use super::values::{Root, Tracker, lock};

/// Parses the template, checks that each filter and test it applies exists and that it reads
/// no variable but `values`, `env` and its own, follows the templates it includes, imports or
/// extends by a constant name, and returns what they all read (see
/// [`references`](super::references)).
pub(super) fn check_jinja(
    env: &Environment<'static>,
    root: &Path,
    path: &Path,
    source: &str,
) -> Result<Vec<Reference>, StepError> {
    let mut references = Vec::new();
    let mut seen = BTreeSet::from([path.to_path_buf()]);
    check_one(env, root, path, source, &mut references, &mut seen)?;
    Ok(references)
}

fn check_one(
    env: &Environment<'static>,
    root: &Path,
    path: &Path,
    source: &str,
    references: &mut Vec<Reference>,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<(), StepError> {
    let name = path.display().to_string();
    let tree = minijinja::machinery::parse(source, &name, env.syntax().clone())
        .map_err(|e| StepError::invalid(describe_error(&e, &name, root, None)))?;
    let found = find(&tree, &name, |var| env.globals().any(|(g, _)| g == var));
    let mut state = env.empty_state();
    let none = [Value::from(())];
    for (filter, line) in &found.filters {
        if state
            .apply_filter(filter, &none)
            .is_err_and(|e| e.kind() == ErrorKind::UnknownFilter)
        {
            return Err(StepError::invalid(format!(
                "{name}:{line}: unknown filter \"{filter}\""
            )));
        }
    }
    for (test, line) in &found.tests {
        if state
            .perform_test(test, &none)
            .is_err_and(|e| e.kind() == ErrorKind::UnknownTest)
        {
            return Err(StepError::invalid(format!(
                "{name}:{line}: unknown test \"{test}\""
            )));
        }
    }
    if let Some((var, line)) = found.unknown.first() {
        return Err(StepError::invalid(format!(
            "{name}:{line}: undefined value {var} (a template sees values and env)"
        )));
    }
    references.extend(found.references);
    for (load, line, required) in found.loads {
        let Some(file) = loadable(root, &load) else {
            return Err(StepError::invalid(format!(
                "{name}:{line}: template {load:?}: {OUTSIDE}"
            )));
        };
        if !seen.insert(file.clone()) || (!required && !file.exists()) {
            continue;
        }
        let source =
            read_template(&file).map_err(|e| StepError::invalid(format!("{name}:{line}: {e}")))?;
        check_one(env, root, &file, &source, references, seen)?;
    }
    Ok(())
}

/// Renders one template; returns the output and whether it read a secret value.
pub(super) fn render_jinja(
    root: &Path,
    path: &Path,
    source: &str,
    ctx: &Context,
) -> Result<(String, bool), StepError> {
    let tracker = Arc::new(Tracker::default());
    let env = environment(root, Some(&tracker));
    let name = path.display().to_string();
    let published = ctx.published();
    let context = Value::from_object(Root {
        values: published.clone(),
        env: Arc::new(ctx.env_vars()),
        tracker: Arc::clone(&tracker),
    });
    let result = env
        .template_from_named_str(&name, source)
        .and_then(|template| template.render(context));
    let output = result
        .map_err(|e| StepError::permanent(describe_error(&e, &name, root, Some(&tracker))))?;
    let secret = lock(&tracker.read).iter().any(|n| published.is_secret(n))
        || lock(&tracker.env_read).iter().any(|n| ctx.is_secret_env(n));
    Ok((output, secret))
}

/// `file:line: what`, naming the template that failed (an included one, maybe) and, for an
/// undefined value, the name that was missing.
fn describe_error(
    err: &minijinja::Error,
    main: &str,
    root: &Path,
    tracker: Option<&Tracker>,
) -> String {
    let file = match err.name() {
        Some(name) if name != main => root.join(name).display().to_string(),
        _ => main.to_owned(),
    };
    let what = match err.kind() {
        ErrorKind::UndefinedError => match tracker.and_then(|t| lock(&t.missing).clone()) {
            Some(missing) => format!("undefined value {missing}"),
            None => "undefined value".to_owned(),
        },
        ErrorKind::SyntaxError => match err.detail() {
            Some(detail) => format!("syntax error: {detail}"),
            None => "syntax error".to_owned(),
        },
        kind => match err.detail() {
            Some(detail) => detail.to_owned(),
            None => kind.to_string(),
        },
    };
    match err.line() {
        Some(line) => format!("{file}:{line}: {what}"),
        None => format!("{file}: {what}"),
    }
}
