//! The plan's data-flow check: every read is satisfied by a step before it or by the
//! environment, refused in milliseconds otherwise, with the closest name as a hint.

use init_core::{
    Context, Outcome, Plan, Publication, Reference, Sequence, Step, StepError, async_trait,
};

/// A step that declares what it publishes and reads, and counts its runs.
#[derive(Debug, Clone, Default)]
struct Declared {
    name: &'static str,
    publishes: Option<Vec<Publication>>,
    reads: Vec<Reference>,
    runs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn step(name: &'static str) -> Declared {
    Declared {
        name,
        publishes: Some(Vec::new()),
        ..Declared::default()
    }
}

impl Declared {
    fn publishing(mut self, publication: Publication) -> Self {
        self.publishes
            .get_or_insert_with(Vec::new)
            .push(publication);
        self
    }

    fn undeclared(mut self) -> Self {
        self.publishes = None;
        self
    }

    fn reading(mut self, reference: Reference) -> Self {
        self.reads.push(reference);
        self
    }

    fn runs(&self) -> usize {
        self.runs.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl Step for Declared {
    fn name(&self) -> &str {
        self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        self.publishes.clone()
    }

    fn reads(&self) -> Vec<Reference> {
        self.reads.clone()
    }

    async fn run(&self, _: &Context) -> Result<(), StepError> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

fn kv() -> Declared {
    step("kv-db").publishing(Publication::new("db").with_keys(["username", "password"]))
}

fn problems(plan: &Plan, ctx: &Context) -> Vec<String> {
    plan.validate(ctx)
        .map_or_else(|e| e.problems().to_vec(), |()| Vec::new())
}

#[tokio::test]
async fn a_key_typo_is_refused_before_any_step_runs_naming_the_file_line_and_closest_key() {
    let wait = step("postgres");
    let plan = Plan::new("p")
        .step(wait.clone())
        .step(kv())
        .step(step("render").reading(Reference::value("db.pasword").at("app.toml.j2:3")));
    let report = plan.run(&Context::with_env([("HOME", "/")])).await;
    assert_eq!(report.outcome, Outcome::Invalid);
    assert_eq!(report.exit_code(), 2);
    assert_eq!(wait.runs(), 0);
    assert_eq!(
        report.error.unwrap(),
        "step \"render\": app.toml.j2:3: values.db.pasword: values.db has no key \"pasword\" \
         (it has: password, username) (did you mean values.db.password?)"
    );
}

#[test]
fn a_top_level_typo_names_the_closest_published_name() {
    let plan = Plan::new("p")
        .step(kv())
        .step(step("render").reading(Reference::value("bd.password").at("app.toml.j2:7")));
    assert_eq!(
        problems(&plan, &Context::with_env([("A", "1")])),
        [
            "step \"render\": app.toml.j2:7: values.bd.password is not published by any step \
          before this one (did you mean values.db?)"
        ]
    );
}

#[test]
fn without_known_keys_only_the_name_is_checked() {
    let plan = Plan::new("p")
        .step(step("kv").publishing(Publication::new("db")))
        .step(step("render").reading(Reference::value("db.anything.deeper")));
    assert!(problems(&plan, &Context::with_env([("A", "1")])).is_empty());
}

#[test]
fn a_read_before_its_publisher_is_refused() {
    let plan = Plan::new("p")
        .step(step("render").reading(Reference::value("db.password")))
        .step(kv());
    assert_eq!(
        problems(&plan, &Context::with_env([("A", "1")])),
        ["step \"render\": values.db.password is not published by any step before this one"]
    );
}

#[test]
fn an_unset_environment_variable_is_refused_and_a_set_one_passes() {
    let plan = Plan::new("p").step(
        step("render")
            .reading(Reference::env("DB_HOTS").at("app.toml.j2:1"))
            .reading(Reference::env("DB_HOST").at("app.toml.j2:2")),
    );
    assert_eq!(
        problems(&plan, &Context::with_env([("DB_HOST", "pg")])),
        [
            "step \"render\": app.toml.j2:1: env.DB_HOTS is not set in the environment \
          (did you mean env.DB_HOST?)"
        ]
    );
}

#[test]
fn guarded_reads_pass_whatever_is_published() {
    let plan = Plan::new("p").step(
        step("render")
            .reading(Reference::value("db.password").guarded())
            .reading(Reference::env("NOPE").guarded()),
    );
    assert!(problems(&plan, &Context::with_env([("A", "1")])).is_empty());
}

#[test]
fn after_a_step_that_does_not_declare_an_unknown_name_is_not_refused() {
    let plan = Plan::new("p")
        .step(kv())
        .step(step("custom").undeclared())
        .step(
            step("render")
                .reading(Reference::value("settings.port"))
                // A declared publisher's keys are still checked.
                .reading(Reference::value("db.pasword")),
        );
    assert_eq!(
        problems(&plan, &Context::with_env([("A", "1")])),
        [
            "step \"render\": values.db.pasword: values.db has no key \"pasword\" (it has: \
          password, username) (did you mean values.db.password?)"
        ]
    );
}

#[test]
fn a_read_satisfied_only_by_a_concurrent_sibling_is_refused() {
    let plan = Plan::new("p").concurrently((
        kv(),
        step("render").reading(Reference::value("db.password")),
    ));
    assert_eq!(
        problems(&plan, &Context::with_env([("A", "1")])),
        ["step \"render\": values.db.password is not published by any step before this one"]
    );
}

#[test]
fn a_read_satisfied_inside_its_own_sequence_or_by_an_earlier_group_is_accepted() {
    let plan = Plan::new("p")
        .concurrently((
            step("redis"),
            Sequence::new()
                .step(kv())
                .step(step("postgres").reading(Reference::value("db.password"))),
        ))
        .step(step("render").reading(Reference::value("db.username")));
    assert!(problems(&plan, &Context::with_env([("A", "1")])).is_empty());
}

#[test]
fn the_dry_run_outline_shows_what_each_step_reads_and_publishes() {
    let plan = Plan::new("p")
        .step(kv())
        .step(step("render").reading(Reference::value("db.password").at("app.toml.j2:3")))
        .step(step("custom").undeclared());
    let outline = plan.outline();
    assert!(
        outline.contains("       publishes values.db{password,username}\n"),
        "{outline}"
    );
    assert!(
        outline.contains("       reads values.db.password (app.toml.j2:3)\n"),
        "{outline}"
    );
    assert!(
        outline.contains("       publishes (not declared)\n"),
        "{outline}"
    );
}

#[test]
fn values_published_in_the_context_before_the_plan_count_as_published() {
    let ctx = Context::with_env([("A", "1")]);
    ctx.publish("app", serde_json::json!({ "port": 8080 }));
    let plan = Plan::new("p").step(
        step("render")
            .reading(Reference::value("app.port"))
            .reading(Reference::value("app.prot").at("app.conf.j2:1")),
    );
    assert_eq!(
        problems(&plan, &ctx),
        [
            "step \"render\": app.conf.j2:1: values.app.prot: values.app has no key \"prot\" \
          (it has: port) (did you mean values.app.port?)"
        ]
    );
}
