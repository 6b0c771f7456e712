//! Steps made by `#[init_step]` run inside a real `Plan` (paused clock), and each argument shows
//! in what the plan reports.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use initkit::prelude::*;
use initkit::{Outcome, StepStatus};
use tokio::time::Instant;

/// Shared with the steps through the context: when each attempt started.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<Instant>>>);

impl Attempts {
    /// Records an attempt and returns its number, from 1.
    fn record(ctx: &Context) -> usize {
        let attempts = ctx.get::<Attempts>().expect("the test inserts `Attempts`");
        let mut starts = attempts.0.lock().unwrap();
        starts.push(Instant::now());
        starts.len()
    }

    fn starts(&self) -> Vec<Instant> {
        self.0.lock().unwrap().clone()
    }
}

fn context() -> (Context, Attempts) {
    let ctx = Context::with_env([("INITKIT_TEST", "1")]);
    let attempts = Attempts::default();
    ctx.insert(attempts.clone());
    (ctx, attempts)
}

#[init_step(retries = 3, backoff(initial = "10ms", max = "10ms"))]
async fn succeeds_on_third(ctx: &Context) -> Result<(), StepError> {
    match Attempts::record(ctx) {
        n if n < 3 => Err(StepError::transient(format!("attempt {n}: not yet"))),
        _ => Ok(()),
    }
}

#[tokio::test(start_paused = true)]
async fn retries_transient_errors_until_success() {
    let (ctx, attempts) = context();
    let report = Plan::new("p").step(succeeds_on_third).run(&ctx).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 3);
    assert_eq!(attempts.starts().len(), 3);
}

#[init_step(retries = 2, backoff(initial = "10ms", max = "10ms"))]
async fn always_fails(ctx: &Context) -> Result<(), StepError> {
    Attempts::record(ctx);
    Err(StepError::transient("down"))
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_the_retries_and_reports_every_attempt() {
    let (ctx, _) = context();
    let report = Plan::new("p").step(always_fails).run(&ctx).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let step = report.step("always-fails").unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(step.attempts, 3);
    assert_eq!(step.error.as_deref(), Some("down"));
}

#[init_step(retries = 0)]
async fn single_attempt(ctx: &Context) -> Result<(), StepError> {
    Attempts::record(ctx);
    Err(StepError::transient("down"))
}

#[tokio::test(start_paused = true)]
async fn zero_retries_means_one_attempt() {
    let (ctx, _) = context();
    let report = Plan::new("p").step(single_attempt).run(&ctx).await;
    assert_eq!(report.steps[0].attempts, 1);
    assert_eq!(report.steps[0].status, StepStatus::Failed);
}

#[init_step(retries = 2, backoff(initial = "1s", max = "1s"))]
async fn waits_between_attempts(ctx: &Context) -> Result<(), StepError> {
    Attempts::record(ctx);
    Err(StepError::transient("down"))
}

#[tokio::test(start_paused = true)]
async fn backoff_sets_the_delay_between_attempts() {
    let (ctx, attempts) = context();
    Plan::new("p").step(waits_between_attempts).run(&ctx).await;
    let starts = attempts.starts();
    assert_eq!(starts.len(), 3);
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        // Jitter adds up to one more delay: each gap lies in [1s, 2s).
        assert!(
            gap >= Duration::from_secs(1) && gap < Duration::from_secs(2),
            "{gap:?}"
        );
    }
}

#[init_step(timeout = "5s", backoff(initial = "1s", max = "1s"), retries = 100)]
async fn never_ready(ctx: &Context) -> Result<(), StepError> {
    Attempts::record(ctx);
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn timeout_ends_the_step_and_the_plan_times_out() {
    let (ctx, _) = context();
    let start = Instant::now();
    let report = Plan::new("p").step(never_ready).run(&ctx).await;
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(report.exit_code(), 124);
    let step = &report.steps[0];
    assert!(step.timed_out);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[init_step(
    attempt_timeout = "2s",
    retries = 2,
    backoff(initial = "100ms", max = "100ms")
)]
async fn hangs_once(ctx: &Context) -> Result<(), StepError> {
    if Attempts::record(ctx) == 1 {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_cuts_a_hanging_attempt_and_retries() {
    let (ctx, attempts) = context();
    let report = Plan::new("p").step(hangs_once).run(&ctx).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 2);
    let starts = attempts.starts();
    let gap = starts[1] - starts[0];
    assert!(
        gap >= Duration::from_millis(2100) && gap < Duration::from_millis(2200),
        "{gap:?}"
    );
}

#[init_step(optional, retries = 0)]
async fn seed_demo_data() -> Result<(), StepError> {
    Err(StepError::permanent("demo data: not found (404)"))
}

#[init_step]
async fn after_optional(ctx: &Context) -> Result<(), StepError> {
    Attempts::record(ctx);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn optional_step_fails_and_the_plan_goes_on() {
    let (ctx, attempts) = context();
    let report = Plan::new("p")
        .step(seed_demo_data)
        .step(after_optional)
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");
    let optional = report.step("seed-demo-data").unwrap();
    assert_eq!(optional.status, StepStatus::Failed);
    assert!(optional.optional);
    assert_eq!(
        report.step("after-optional").unwrap().status,
        StepStatus::Succeeded
    );
    assert_eq!(attempts.starts().len(), 1);
}

#[init_step(once)]
async fn create_schema(ctx: &Context) -> Result<(), StepError> {
    Attempts::record(ctx);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn once_skips_the_step_on_a_rerun_with_the_same_state_dir() {
    let state = tempfile::tempdir().unwrap();
    let plan = Plan::new("p")
        .with_state_dir(state.path())
        .step(create_schema);
    let (ctx, attempts) = context();

    let first = plan.run(&ctx).await;
    assert_eq!(first.steps[0].status, StepStatus::Succeeded);
    let second = plan.run(&ctx).await;
    assert!(second.is_success());
    assert_eq!(second.steps[0].status, StepStatus::Skipped);
    assert_eq!(attempts.starts().len(), 1);
}

#[derive(Clone, Debug, PartialEq)]
struct SchemaVersion(u32);

#[init_step]
async fn migrate() -> Result<SchemaVersion, std::io::Error> {
    Ok(SchemaVersion(42))
}

#[init_step(retries = 0)]
async fn check_schema(ctx: &Context) -> Result<(), StepError> {
    match ctx.get::<SchemaVersion>() {
        Some(SchemaVersion(42)) => Ok(()),
        other => Err(StepError::permanent(format!("schema version {other:?}"))),
    }
}

#[tokio::test(start_paused = true)]
async fn returned_value_is_readable_by_the_next_step() {
    let (ctx, _) = context();
    let report = Plan::new("p")
        .step(migrate)
        .step(check_schema)
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(ctx.get::<SchemaVersion>(), Some(SchemaVersion(42)));
}

#[tokio::test(start_paused = true)]
async fn a_failed_step_inserts_nothing() {
    #[init_step(retries = 0)]
    async fn fails_before_value() -> Result<SchemaVersion, StepError> {
        Err(StepError::permanent("no schema"))
    }
    let (ctx, _) = context();
    let report = Plan::new("p").step(fails_before_value).run(&ctx).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(ctx.get::<SchemaVersion>(), None);
}

#[init_step(name = "cache")]
async fn warm_cache() -> Result<(), StepError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn name_overrides_the_kebab_case_function_name() {
    let (ctx, _) = context();
    let plan = Plan::new("p").step(warm_cache).step(after_optional);
    assert_eq!(plan.step_names(), ["cache", "after-optional"]);
    let report = plan.run(&ctx).await;
    assert_eq!(report.steps[0].name, "cache");
}

#[init_step(retries = 3, backoff(initial = "10ms", max = "10ms"))]
async fn permanent_failure(ctx: &Context) -> Result<(), StepError> {
    Attempts::record(ctx);
    Err(StepError::permanent(
        "secret/orders/db: permission denied (403)",
    ))
}

#[tokio::test(start_paused = true)]
async fn a_permanent_step_error_keeps_its_class_and_is_not_retried() {
    let (ctx, _) = context();
    let report = Plan::new("p").step(permanent_failure).run(&ctx).await;
    let step = &report.steps[0];
    assert_eq!(step.attempts, 1);
    assert_eq!(
        step.error.as_deref(),
        Some("secret/orders/db: permission denied (403)")
    );
}

#[init_step(retries = 3, backoff(initial = "10ms", max = "10ms"))]
async fn read_only_config(ctx: &Context) -> Result<(), std::io::Error> {
    Attempts::record(ctx);
    Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
}

#[init_step(retries = 2, backoff(initial = "10ms", max = "10ms"))]
async fn boxed_failure(ctx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Attempts::record(ctx);
    Err("upstream said no".into())
}

#[tokio::test(start_paused = true)]
async fn io_errors_are_classified_and_boxed_errors_are_retried() {
    let (ctx, attempts) = context();
    let report = Plan::new("p").step(read_only_config).run(&ctx).await;
    assert_eq!(
        report.steps[0].attempts, 1,
        "permission denied is permanent"
    );
    assert_eq!(report.steps[0].error.as_deref(), Some("permission denied"));
    assert_eq!(attempts.starts().len(), 1);

    let (ctx, _) = context();
    let report = Plan::new("p").step(boxed_failure).run(&ctx).await;
    assert_eq!(
        report.steps[0].attempts, 3,
        "a boxed error counts as transient"
    );
    assert_eq!(report.steps[0].error.as_deref(), Some("upstream said no"));
}

/// A service's own error type, as `#[derive(thiserror::Error)]` writes it.
#[derive(Debug)]
enum WarmError {
    Unreachable(&'static str),
}

impl std::fmt::Display for WarmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(cache) => write!(f, "cache {cache}: not reachable"),
        }
    }
}

impl std::error::Error for WarmError {}

#[init_step(retries = 1, backoff(initial = "10ms", max = "10ms"))]
async fn warm_remote_cache(ctx: &Context) -> Result<(), WarmError> {
    Attempts::record(ctx);
    Err(WarmError::Unreachable("redis:6379"))
}

#[tokio::test(start_paused = true)]
async fn a_custom_error_type_converts_and_counts_as_transient() {
    let (ctx, attempts) = context();
    let report = Plan::new("p").step(warm_remote_cache).run(&ctx).await;
    assert_eq!(
        report.steps[0].attempts, 2,
        "unclassified errors are retried"
    );
    assert_eq!(attempts.starts().len(), 2);
    assert_eq!(
        report.steps[0].error.as_deref(),
        Some("cache redis:6379: not reachable")
    );
}

#[tokio::test(start_paused = true)]
async fn context_parameter_may_be_ignored_with_an_underscore() {
    #[init_step]
    async fn ignores_context(_: &Context) -> Result<u8, StepError> {
        Ok(7)
    }
    let (ctx, _) = context();
    assert!(
        Plan::new("p")
            .step(ignores_context)
            .run(&ctx)
            .await
            .is_success()
    );
    assert_eq!(ctx.get::<u8>(), Some(7));
}

#[test]
fn arguments_become_the_same_policy_as_the_builder() {
    #[init_step(
        retries = 4,
        timeout = "1m30s",
        attempt_timeout = "10s",
        backoff(initial = "500ms", max = "4s"),
        optional,
        once
    )]
    async fn everything() -> Result<(), StepError> {
        Ok(())
    }
    let expected = Policy::new()
        .with_retry(
            Retry::new()
                .with_max_attempts(5)
                .with_initial_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(4)),
        )
        .with_timeout(Duration::from_secs(90))
        .with_attempt_timeout(Duration::from_secs(10))
        .with_on_failure(OnFailure::Continue)
        .with_once(true);
    assert_eq!(everything.policy(), expected);
    assert_eq!(everything.name(), "everything");
    assert_eq!(warm_cache.policy(), Policy::new());
}

/// Named like the bindings a hand-written `Step::run` would use: the expansion must not confuse
/// them with its own.
mod bindings {
    use initkit::prelude::*;

    #[init_step]
    pub(super) async fn ctx(context: &Context) -> Result<(), StepError> {
        context.publish("ctx", true);
        Ok(())
    }

    #[init_step]
    pub(super) async fn value() -> Result<u16, StepError> {
        Ok(8080)
    }

    #[init_step(retries = 0)]
    pub(super) async fn error() -> Result<(), std::io::Error> {
        Err(std::io::Error::other("refused by design"))
    }
}

#[tokio::test(start_paused = true)]
async fn step_functions_may_share_names_with_the_generated_bindings() {
    let (ctx, _) = context();
    let report = Plan::new("p")
        .step(bindings::ctx)
        .step(bindings::value)
        .step(bindings::error.optional())
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(ctx.value("ctx"), Some(true.into()));
    assert_eq!(ctx.get::<u16>(), Some(8080));
    assert_eq!(report.steps[2].error.as_deref(), Some("refused by design"));
}

#[init_step(wait)]
async fn ready_on_ninth(ctx: &Context) -> Result<(), StepError> {
    match Attempts::record(ctx) {
        n if n < 9 => Err(StepError::transient(format!("attempt {n}: not ready"))),
        _ => Ok(()),
    }
}

#[tokio::test(start_paused = true)]
async fn wait_polls_past_the_default_attempt_limit_at_the_wait_cadence() {
    assert_eq!(ready_on_ninth.policy(), Policy::wait());
    let (ctx, attempts) = context();
    let report = Plan::new("p").step(ready_on_ninth).run(&ctx).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 9);
    // The wait cadence: delays capped at 1 s plus at most as much jitter (the default
    // policy's would have grown past 3 s by the seventh attempt).
    let starts = attempts.starts();
    let longest = starts.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(longest < Duration::from_secs(2), "{longest:?}");
}

/// Reads `values.<path>`, as a template or a command would.
#[derive(Debug)]
struct Reader(&'static str);

#[async_trait]
impl Step for Reader {
    fn name(&self) -> &str {
        "reader"
    }

    fn reads(&self) -> Vec<initkit::Reference> {
        vec![initkit::Reference::value(self.0).at("app.toml.j2:1")]
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let name = self.0.split('.').next().unwrap_or_default();
        ctx.value(name)
            .map(drop)
            .ok_or_else(|| StepError::permanent(format!("{name} is not published")))
    }
}

#[init_step(publishes("db": ["username", "password"]))]
async fn read_db(ctx: &Context) -> Result<(), StepError> {
    ctx.publish_secret(
        "db",
        serde_json::json!({ "username": "orders", "password": "hunter2-pass" }),
    );
    Ok(())
}

#[tokio::test]
async fn a_step_that_declares_what_it_publishes_satisfies_a_later_reader() {
    let ctx = Context::with_env([("HOME", "/")]);
    let plan = Plan::new("p").step(read_db).step(Reader("db.password"));
    assert_eq!(plan.validate(&ctx), Ok(()));
    let report = plan.run(&ctx).await;
    assert!(report.is_success(), "{report:?}");
}

#[tokio::test]
async fn a_key_the_step_does_not_declare_is_refused_with_the_closest_one() {
    let ctx = Context::with_env([("HOME", "/")]);
    let report = Plan::new("p")
        .step(read_db)
        .step(Reader("db.pasword"))
        .run(&ctx)
        .await;
    assert_eq!(report.outcome, Outcome::Invalid);
    assert_eq!(report.exit_code(), 2);
    assert_eq!(
        report.error.as_deref(),
        Some(
            "step \"reader\": app.toml.j2:1: values.db.pasword: values.db has no key \
             \"pasword\" (it has: password, username) (did you mean values.db.password?)"
        )
    );
    assert_eq!(ctx.value("db"), None, "a step ran");
}

/// The step's configuration: `CACHE_TTL` holds whole seconds.
fn check_cache_ttl(cx: &ValidateContext<'_>) -> Result<(), StepError> {
    match cx.env("CACHE_TTL") {
        Some(ttl) if ttl.parse::<u32>().is_ok() => Ok(()),
        Some(ttl) => Err(StepError::invalid(format!(
            "CACHE_TTL = {ttl:?}: expected whole seconds, e.g. 300"
        ))),
        None => Err(StepError::invalid("CACHE_TTL is not set")),
    }
}

#[init_step(validate = check_cache_ttl)]
async fn configure_cache(ctx: &Context) -> Result<(), StepError> {
    Attempts::record(ctx);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_failing_validate_function_is_exit_2_naming_the_step_before_anything_runs() {
    let ctx = Context::with_env([("CACHE_TTL", "5m")]);
    let attempts = Attempts::default();
    ctx.insert(attempts.clone());
    let report = Plan::new("p").step(configure_cache).run(&ctx).await;
    assert_eq!(report.outcome, Outcome::Invalid);
    assert_eq!(report.exit_code(), 2);
    assert_eq!(
        report.error.as_deref(),
        Some("step \"configure-cache\": CACHE_TTL = \"5m\": expected whole seconds, e.g. 300")
    );
    assert!(attempts.starts().is_empty(), "the step ran");

    let ctx = Context::with_env([("CACHE_TTL", "300")]);
    ctx.insert(attempts.clone());
    let report = Plan::new("p").step(configure_cache).run(&ctx).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(attempts.starts().len(), 1);
}
