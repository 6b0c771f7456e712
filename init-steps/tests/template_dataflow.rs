//! `Render` in a plan's data-flow check: real template files in a temp dir, checked by
//! `Plan::validate` against what the steps before publish and the environment, before any
//! step runs.
#![cfg(feature = "template")]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use init_core::{
    Context, Outcome, Plan, Publication, Sequence, Step, StepError, StepStatus, async_trait,
};
use init_steps::template::Render;
use serde_json::{Value, json};

/// A user step that publishes `value` as `name`, declaring its keys or not, and counts its
/// runs.
#[derive(Debug, Clone)]
struct Publish {
    step: &'static str,
    published_as: &'static str,
    value: Value,
    keys_known: bool,
    runs: Arc<AtomicUsize>,
}

impl Publish {
    /// Declares the name and the keys of the object it publishes.
    fn with_keys(step: &'static str, name: &'static str, value: Value) -> Self {
        Self {
            step,
            published_as: name,
            value,
            keys_known: true,
            runs: Arc::default(),
        }
    }

    /// Declares the name only.
    fn without_keys(step: &'static str, name: &'static str, value: Value) -> Self {
        Self {
            keys_known: false,
            ..Self::with_keys(step, name, value)
        }
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Step for Publish {
    fn name(&self) -> &str {
        self.step
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        let publication = Publication::new(self.published_as);
        Some(vec![match (&self.value, self.keys_known) {
            (Value::Object(map), true) => publication.with_keys(map.keys().cloned()),
            _ => publication,
        }])
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        ctx.publish(self.published_as, self.value.clone());
        Ok(())
    }
}

fn db() -> Value {
    json!({ "username": "orders", "password": "hunter2" })
}

fn ctx() -> Context {
    Context::with_env([("HOME", "/home/app"), ("DB_HOST", "pg")])
}

/// A template file and the name of the step that renders it.
struct Template {
    path: PathBuf,
    step: String,
}

impl Template {
    fn display(&self) -> std::path::Display<'_> {
        self.path.display()
    }

    /// The problem `Plan::validate` reports for line `line` of this template.
    fn refused(&self, line: u32, what: &str) -> String {
        format!("step \"{}\": {}:{line}: {what}", self.step, self.display())
    }
}

/// A template `name` with `text` in `dir`, and a render of it into `dir/out/`.
fn render(dir: &Path, name: &str, text: &str) -> (Template, Render) {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    let dest = dir.join("out").join(name.trim_end_matches(".j2"));
    let step = Render::file(&path, dest);
    let step_name = step.name().to_owned();
    (
        Template {
            path,
            step: step_name,
        },
        step,
    )
}

fn problems(plan: &Plan) -> Vec<String> {
    plan.validate(&ctx())
        .map_or_else(|e| e.problems().to_vec(), |()| Vec::new())
}

#[tokio::test]
async fn a_nested_key_typo_is_refused_with_exit_2_before_any_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (src, step) = render(
        dir.path(),
        "app.toml.j2",
        "[db]\nuser = \"{{ values.db.username }}\"\npassword = \"{{ values.db.pasword }}\"\n",
    );
    let kv = Publish::with_keys("kv-db", "db", db());
    let plan = Plan::new("p").step(kv.clone()).step(step);
    let report = plan.run(&ctx()).await;
    assert_eq!(report.outcome, Outcome::Invalid);
    assert_eq!(report.exit_code(), 2);
    assert_eq!(kv.runs(), 0);
    assert_eq!(
        report.error.unwrap(),
        src.refused(
            3,
            "values.db.pasword: values.db has no key \"pasword\" \
             (it has: password, username) (did you mean values.db.password?)"
        )
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_top_level_typo_names_the_closest_published_name() {
    let dir = tempfile::tempdir().unwrap();
    let (src, step) = render(dir.path(), "app.toml.j2", "\n{{ values.bd.password }}\n");
    let plan = Plan::new("p")
        .step(Publish::with_keys("kv-db", "db", db()))
        .step(step);
    assert_eq!(
        problems(&plan),
        [src.refused(
            2,
            "values.bd.password is not published by any step before \
             this one (did you mean values.db?)"
        )]
    );
}

#[test]
fn with_unknown_keys_a_key_typo_passes_and_a_name_typo_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, keys_unknown) = render(dir.path(), "a.j2", "{{ values.db.pasword }}");
    let (src, name_typo) = render(dir.path(), "b.j2", "{{ values.dbb.password }}");
    let plan = Plan::new("p")
        .step(Publish::without_keys("kv-db", "db", db()))
        .step(keys_unknown)
        .step(name_typo);
    assert_eq!(
        problems(&plan),
        [src.refused(
            1,
            "values.dbb.password is not published by any step \
             before this one (did you mean values.db?)"
        )]
    );
}

#[tokio::test]
async fn an_env_typo_is_refused_naming_the_closest_variable_before_any_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (src, step) = render(
        dir.path(),
        "env.j2",
        "home={{ env.HOME }}\nhost={{ env.DB_HOTS }}\n",
    );
    let kv = Publish::with_keys("kv-db", "db", db());
    let report = Plan::new("p").step(kv.clone()).step(step).run(&ctx()).await;
    assert_eq!(report.exit_code(), 2);
    assert_eq!(kv.runs(), 0);
    assert_eq!(
        report.error.unwrap(),
        src.refused(
            2,
            "env.DB_HOTS is not set in the environment \
             (did you mean env.DB_HOST?)"
        )
    );
}

#[test]
fn an_envsubst_template_declares_its_variables() {
    let dir = tempfile::tempdir().unwrap();
    let (src, step) = render(
        dir.path(),
        "app.env",
        "HOME=${HOME}\nREGION=${REGOIN:-eu}\nHOST=${DB_HOTS}\n",
    );
    let plan = Plan::new("p").step(step.envsubst());
    assert_eq!(
        problems(&plan),
        [src.refused(
            3,
            "env.DB_HOTS is not set in the environment \
             (did you mean env.DB_HOST?)"
        )]
    );
}

#[tokio::test]
async fn the_same_typos_behind_guards_pass_and_the_plan_renders() {
    let dir = tempfile::tempdir().unwrap();
    let (_, step) = render(
        dir.path(),
        "guarded.j2",
        "{{ values.db.pasword | default(\"none\") }}\n\
         {{ values.db.pasword | d(\"none\") }}\n\
         {{ values.settings | default({}) | tojson }}\n\
         {% if values.tls is defined %}{{ values.tls.cert }}{% endif %}\n\
         {% if values.db.pasword is undefined %}no{% endif %}\n\
         {{ values.db.password | required(\"the DB password is required\") }}\n\
         {{ env.DB_HOTS | default(\"localhost\") }}\n",
    );
    let dest = dir.path().join("out/guarded");
    let plan = Plan::new("p")
        .step(Publish::with_keys("kv-db", "db", db()))
        .step(step);
    assert!(problems(&plan).is_empty(), "{:?}", problems(&plan));
    let report = plan.run(&ctx()).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        fs::read_to_string(dest).unwrap(),
        "none\nnone\n{}\n\nno\nhunter2\nlocalhost\n"
    );
}

#[test]
fn a_guard_on_a_key_does_not_excuse_a_missing_parent() {
    // Strict undefined fails on `.pasword` of a missing `values.dbb` whatever the default.
    let dir = tempfile::tempdir().unwrap();
    let (src, step) = render(
        dir.path(),
        "a.j2",
        "{{ values.dbb.password | default(\"\") }}",
    );
    let plan = Plan::new("p")
        .step(Publish::with_keys("kv-db", "db", db()))
        .step(step);
    assert_eq!(
        problems(&plan),
        [src.refused(
            1,
            "values.dbb is not published by any step before this one \
             (did you mean values.db?)"
        )]
    );
}

#[test]
fn a_reference_satisfied_only_by_a_concurrent_sibling_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (src, step) = render(dir.path(), "app.j2", "{{ values.db.password }}");
    let plan = Plan::new("p").concurrently((Publish::with_keys("kv-db", "db", db()), step));
    assert_eq!(
        problems(&plan),
        [src.refused(
            1,
            "values.db.password is not published by any step \
             before this one"
        )]
    );
}

#[tokio::test]
async fn a_reference_satisfied_by_a_step_inside_an_earlier_sequence_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (_, inside) = render(dir.path(), "inside.j2", "{{ values.db.username }}");
    let (_, after) = render(dir.path(), "after.j2", "{{ values.db.password }}");
    let plan = Plan::new("p")
        .concurrently((
            Publish::with_keys("settings", "settings", json!({ "port": 1 })),
            Sequence::new()
                .step(Publish::with_keys("kv-db", "db", db()))
                .step(inside),
        ))
        .step(after);
    assert!(problems(&plan).is_empty(), "{:?}", problems(&plan));
    let report = plan.run(&ctx()).await;
    assert!(report.is_success(), "{report:?}");
    assert!(
        report
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Succeeded)
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("out/after")).unwrap(),
        "hunter2"
    );
}

#[test]
fn a_tree_declares_the_reads_of_every_template_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("conf.d")).unwrap();
    fs::write(tree.join("a.conf.j2"), "{{ values.db.username }}").unwrap();
    fs::write(tree.join("conf.d/b.conf.j2"), "x\n{{ env.HOME }}").unwrap();
    let step = Render::dir(&tree, dir.path().join("out"));
    let reads: Vec<(String, String)> = step
        .reads()
        .iter()
        .map(|r| (r.to_string(), r.origin().unwrap().to_owned()))
        .collect();
    assert_eq!(
        reads,
        [
            (
                "values.db.username".to_owned(),
                format!("{}:1", tree.join("a.conf.j2").display())
            ),
            (
                "env.HOME".to_owned(),
                format!("{}:2", tree.join("conf.d/b.conf.j2").display())
            ),
        ]
    );
    assert_eq!(step.publishes(), Some(Vec::new()));
}

#[test]
fn a_tree_that_does_not_exist_yet_declares_nothing_and_fails_validation() {
    let dir = tempfile::tempdir().unwrap();
    let step = Render::dir(dir.path().join("later"), dir.path().join("out"));
    assert!(step.reads().is_empty());
    let problems = problems(&Plan::new("p").step(step));
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("cannot read the template directory"),
        "{problems:?}"
    );
}

#[test]
fn the_dry_run_outline_shows_what_a_render_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (src, step) = render(dir.path(), "app.j2", "\n\n{{ values.db.password }}");
    let plan = Plan::new("p")
        .step(Publish::with_keys("kv-db", "db", db()))
        .step(step);
    let outline = plan.outline();
    assert!(
        outline.contains(&format!("reads values.db.password ({}:3)\n", src.display())),
        "{outline}"
    );
}

#[tokio::test]
async fn a_misspelled_values_is_refused_before_any_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (src, step) = render(dir.path(), "app.j2", "ok\n{{ valeus.db.password }}\n");
    let kv = Publish::with_keys("kv-db", "db", db());
    let report = Plan::new("p").step(kv.clone()).step(step).run(&ctx()).await;
    assert_eq!(report.exit_code(), 2);
    assert_eq!(kv.runs(), 0);
    assert_eq!(
        report.error.unwrap(),
        src.refused(2, "undefined value valeus (a template sees values and env)")
    );
}

#[test]
fn a_typo_in_an_included_template_is_refused_naming_that_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("partials")).unwrap();
    let partial = dir.path().join("partials/db.j2");
    fs::write(
        &partial,
        "user={{ values.db.username }}\npass={{ values.db.pasword }}\n",
    )
    .unwrap();
    let (_, step) = render(
        dir.path(),
        "app.j2",
        "{% include \"partials/db.j2\" %}{% include \"partials/optional.j2\" ignore missing %}",
    );
    let plan = Plan::new("p")
        .step(Publish::with_keys("kv-db", "db", db()))
        .step(step);
    assert_eq!(
        problems(&plan),
        [format!(
            "step \"render {}\": {}:2: values.db.pasword: values.db has no key \"pasword\" \
             (it has: password, username) (did you mean values.db.password?)",
            dir.path().join("out/app").display(),
            partial.display()
        )]
    );
}

#[test]
fn a_missing_included_template_is_refused_naming_the_include() {
    let dir = tempfile::tempdir().unwrap();
    let (src, step) = render(dir.path(), "app.j2", "\n{% include \"nope.j2\" %}");
    let problems = problems(&Plan::new("p").step(step));
    let expected = src.refused(
        2,
        &format!(
            "{}: cannot read the template",
            dir.path().join("nope.j2").display()
        ),
    );
    assert!(problems[0].starts_with(&expected), "{problems:?}");
}
