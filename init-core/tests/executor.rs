//! The executor's plan-level behaviour: order, optional steps, concurrent groups, `once`,
//! validation before anything runs, values between steps, redaction in the report.

mod support;

use std::time::Duration;

use init_core::{
    Context, Outcome as PlanOutcome, Plan, Policy, Retry, Step, StepError, StepExt, StepStatus,
    async_trait,
};
use support::{Outcome, Scripted, ms};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn steps_run_in_order() {
    let a = Scripted::new("a", [Outcome::SleepOk(ms(50))]);
    let b = Scripted::ok("b");
    let report = Plan::new("p")
        .step(a.clone())
        .step(b.clone())
        .run(&Context::new())
        .await;
    assert!(report.is_success());
    assert!(a.log.lock().unwrap()[0] < b.log.lock().unwrap()[0]);
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn an_optional_step_that_fails_lets_the_plan_continue() {
    let after = Scripted::ok("after");
    let report = Plan::new("p")
        .step(Scripted::new("warm-cache", [Outcome::Permanent("cache is down")]).optional())
        .step(after.clone())
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::Succeeded);
    assert_eq!(report.exit_code(), 0);
    let optional = report.step("warm-cache").unwrap();
    assert_eq!(optional.status, StepStatus::Failed);
    assert!(optional.optional);
    assert_eq!(after.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_aborting_failure_skips_the_rest() {
    let after = Scripted::ok("after");
    let report = Plan::new("p")
        .step(Scripted::new(
            "vault",
            [Outcome::Permanent("permission denied (403)")],
        ))
        .step(after.clone())
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::Failed);
    assert_eq!(report.step("after").unwrap().status, StepStatus::Skipped);
    assert_eq!(after.attempts(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_concurrent_group_runs_its_members_at_once() {
    let origin = Instant::now();
    let report = Plan::new("p")
        .concurrently([
            Scripted::new("postgres", [Outcome::SleepOk(Duration::from_secs(1))]).boxed(),
            Scripted::new("redis", [Outcome::SleepOk(Duration::from_secs(1))]).boxed(),
        ])
        .run(&Context::new())
        .await;
    assert!(report.is_success());
    assert_eq!(Instant::now() - origin, Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn an_aborting_failure_in_a_group_cancels_its_siblings() {
    let sibling = Scripted::new("redis", [Outcome::Hang]);
    let origin = Instant::now();
    let report = Plan::new("p")
        .concurrently([
            Scripted::new("postgres", [Outcome::SleepFail(Duration::from_secs(1))]).boxed(),
            sibling.clone().boxed(),
        ])
        .step(Scripted::ok("after"))
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::Failed);
    assert_eq!(Instant::now() - origin, Duration::from_secs(1));
    assert_eq!(report.step("postgres").unwrap().status, StepStatus::Failed);
    assert_eq!(report.step("redis").unwrap().status, StepStatus::Cancelled);
    assert_eq!(report.step("after").unwrap().status, StepStatus::Skipped);
    assert_eq!(
        report.failure_line().unwrap(),
        "step \"postgres\" failed after 1 attempt in 1.0s: failed after sleeping"
    );
}

#[tokio::test(start_paused = true)]
async fn an_optional_failure_in_a_group_does_not_cancel_its_siblings() {
    let report = Plan::new("p")
        .concurrently([
            Scripted::new("metrics", [Outcome::Permanent("down")])
                .optional()
                .boxed(),
            Scripted::new("postgres", [Outcome::SleepOk(Duration::from_secs(1))]).boxed(),
        ])
        .run(&Context::new())
        .await;
    assert!(report.is_success());
    assert_eq!(
        report.step("postgres").unwrap().status,
        StepStatus::Succeeded
    );
}

#[tokio::test(start_paused = true)]
async fn a_once_step_is_skipped_on_a_rerun() {
    let state = tempfile::tempdir().unwrap();
    let step = Scripted::ok("migrate").once();
    let plan = || {
        Plan::new("p")
            .step(step.clone())
            .with_state_dir(state.path())
    };

    let first = plan().run(&Context::new()).await;
    let second = plan().run(&Context::new()).await;

    assert_eq!(first.step("migrate").unwrap().status, StepStatus::Succeeded);
    assert_eq!(second.step("migrate").unwrap().status, StepStatus::Skipped);
    assert!(second.is_success());
    assert_eq!(step.inner().attempts(), 1);
    assert!(state.path().join("migrate.done").is_file());
}

#[tokio::test(start_paused = true)]
async fn the_once_marker_is_written_whole_with_no_temporary_file_left() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("not-yet-there");
    let report = Plan::new("p")
        .step(Scripted::ok("migrate").once())
        .with_state_dir(&dir)
        .run(&Context::new())
        .await;

    assert!(report.is_success());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["migrate.done"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("migrate.done")).unwrap(),
        "succeeded\n"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_once_step_runs_again_on_a_rerun() {
    let state = tempfile::tempdir().unwrap();
    let step = Scripted::new("migrate", [Outcome::Permanent("locked"), Outcome::Ok]).once();
    let plan = || {
        Plan::new("p")
            .step(step.clone())
            .with_state_dir(state.path())
    };
    assert!(!plan().run(&Context::new()).await.is_success());
    assert!(plan().run(&Context::new()).await.is_success());
    assert_eq!(step.inner().attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_validation_failure_runs_no_step_at_all() {
    let first = Scripted::ok("first");
    let report = Plan::new("p")
        .step(first.clone())
        .step(Scripted::ok("bad").invalid("address \"db\": expected host:port"))
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::Invalid);
    assert_eq!(report.exit_code(), 2);
    assert_eq!(first.attempts(), 0);
    assert!(report.steps.is_empty());
    assert_eq!(
        report.failure_line().unwrap(),
        "plan \"p\" is invalid: step \"bad\": address \"db\": expected host:port"
    );
}

#[tokio::test(start_paused = true)]
async fn duplicate_names_are_refused_naming_the_name() {
    let a = Scripted::ok("db");
    let report = Plan::new("p")
        .step(a.clone())
        .step(Scripted::ok("db"))
        .run(&Context::new())
        .await;
    assert_eq!(report.outcome, PlanOutcome::Invalid);
    assert_eq!(report.error.as_deref(), Some("duplicate step name \"db\""));
    assert_eq!(a.attempts(), 0);
}

#[tokio::test(start_paused = true)]
async fn invalid_policies_are_refused_naming_field_and_value() {
    let cases = [
        (
            Retry::new().with_multiplier(0.0),
            "step \"s\": invalid policy: multiplier = 0: expected a number of at least 1",
        ),
        (
            Retry::new().with_multiplier(-1.5),
            "step \"s\": invalid policy: multiplier = -1.5: expected a number of at least 1",
        ),
        (
            Retry::new()
                .with_initial_delay(Duration::from_secs(2))
                .with_max_delay(Duration::from_secs(1)),
            "step \"s\": invalid policy: max_delay = 1s: expected a delay of at least initial_delay (initial_delay = 2s)",
        ),
    ];
    for (retry, expected) in cases {
        let step = Scripted::ok("s");
        let report = Plan::new("p")
            .step(step.clone().retry(retry))
            .run(&Context::new())
            .await;
        assert_eq!(report.outcome, PlanOutcome::Invalid);
        assert_eq!(report.error.as_deref(), Some(expected));
        assert_eq!(step.attempts(), 0);
    }
    let zero_timeout = Plan::new("p")
        .step(Scripted::ok("s").timeout(Duration::ZERO))
        .validate(&Context::new())
        .unwrap_err();
    assert_eq!(
        zero_timeout.to_string(),
        "step \"s\": invalid policy: timeout = 0s: expected a duration greater than zero"
    );
}

#[test]
fn validation_lists_every_problem() {
    let err = Plan::new("p")
        .step(Scripted::ok("a").invalid("bad url"))
        .step(Scripted::ok("a"))
        .step(Scripted::ok("m").once())
        .concurrently(Vec::<Box<dyn Step>>::new())
        .validate(&Context::new())
        .unwrap_err();
    assert_eq!(
        err.problems(),
        [
            "step \"a\": bad url",
            "duplicate step name \"a\"",
            "step \"m\" is `once` but the plan has no state directory (Plan::with_state_dir)",
            "a concurrent group has no steps",
        ]
    );
}

/// Publishes a value and a typed extra for the next step.
#[derive(Debug)]
struct Producer;

#[derive(Debug, Clone, PartialEq)]
struct SchemaVersion(u32);

#[async_trait]
impl Step for Producer {
    fn name(&self) -> &str {
        "producer"
    }
    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        ctx.publish("region", "eu-west-1");
        ctx.insert(SchemaVersion(7));
        Ok(())
    }
}

#[derive(Debug)]
struct Consumer;

#[async_trait]
impl Step for Consumer {
    fn name(&self) -> &str {
        "consumer"
    }
    fn policy(&self) -> Policy {
        Policy::new().with_retry(Retry::never())
    }
    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let version = ctx
            .get::<SchemaVersion>()
            .ok_or_else(|| StepError::permanent("no schema version"))?;
        let region = ctx
            .value("region")
            .ok_or_else(|| StepError::permanent("no region"))?;
        ctx.publish(
            "seen",
            format!("{}@{}", version.0, region.as_str().unwrap_or_default()),
        );
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn later_steps_read_values_and_extras_of_earlier_ones() {
    let ctx = Context::new();
    let report = Plan::new("p").step(Producer).step(Consumer).run(&ctx).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(ctx.value("seen").unwrap(), "7@eu-west-1");
}

/// Publishes a secret, then fails with an error that embeds it.
#[derive(Debug)]
struct LeakyStep;

#[async_trait]
impl Step for LeakyStep {
    fn name(&self) -> &str {
        "leaky"
    }
    fn policy(&self) -> Policy {
        Policy::new().with_retry(Retry::never())
    }
    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        ctx.publish_secret("db", serde_json::json!({"password": "hunter2-very-secret"}));
        Err(StepError::permanent(
            "login failed for password hunter2-very-secret at postgres://app:pw1@db/x?token=abc",
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn secrets_are_redacted_from_the_report() {
    let ctx = Context::new();
    let report = Plan::new("p").step(LeakyStep).run(&ctx).await;
    let json = report.to_json();
    for secret in ["hunter2-very-secret", "pw1", "abc"] {
        assert!(!json.contains(secret), "{secret} leaked into {json}");
    }
    assert_eq!(
        report.step("leaky").unwrap().error.as_deref(),
        Some(
            "login failed for password [redacted] at postgres://app:[redacted]@db/x?token=[redacted]"
        )
    );
    let line = init_core::termination_message(&report, ctx.redactor());
    assert!(!line.contains("hunter2-very-secret"));
}

#[tokio::test(start_paused = true)]
async fn a_stop_signal_cancels_the_running_step_and_skips_the_rest() {
    let running = Scripted::new("wait", [Outcome::Hang]);
    let ctx = Context::new();
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(Scripted::ok("first"))
        .step(running.clone())
        .step(Scripted::ok("last"))
        .run_until(&ctx, async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            PlanOutcome::Terminated
        })
        .await;

    assert_eq!(report.outcome, PlanOutcome::Terminated);
    assert_eq!(report.exit_code(), 143);
    assert_eq!(Instant::now() - origin, Duration::from_secs(2));
    assert_eq!(report.step("first").unwrap().status, StepStatus::Succeeded);
    assert_eq!(report.step("wait").unwrap().status, StepStatus::Cancelled);
    assert_eq!(report.step("last").unwrap().status, StepStatus::Skipped);
    assert!(ctx.cancellation().is_cancelled());
    assert_eq!(
        report.failure_line().unwrap(),
        "plan \"p\" stopped by SIGTERM while running step \"wait\""
    );
}

#[tokio::test(start_paused = true)]
async fn the_report_serializes_to_json() {
    let report = Plan::new("orders-init")
        .step(Scripted::new(
            "db",
            [Outcome::Transient("refused"), Outcome::Ok],
        ))
        .run(&Context::new())
        .await;
    let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(value["plan"], "orders-init");
    assert_eq!(value["outcome"], "succeeded");
    assert_eq!(value["steps"][0]["name"], "db");
    assert_eq!(value["steps"][0]["status"], "succeeded");
    assert_eq!(value["steps"][0]["attempts"], 2);
    assert_eq!(value["steps"][0]["elapsed_ms"], 100);
}

/// A step whose code has a bug.
#[derive(Debug)]
struct Panics;

#[async_trait]
impl Step for Panics {
    fn name(&self) -> &str {
        "buggy"
    }
    async fn run(&self, _: &Context) -> Result<(), StepError> {
        tokio::task::yield_now().await;
        panic!("index out of bounds: the len is 0 but the index is 3")
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_step_fails_the_run_with_exit_code_101() {
    let after = Scripted::ok("after");
    let report = Plan::new("p")
        .step(Panics.optional())
        .step(after.clone())
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::Panicked);
    assert_eq!(report.exit_code(), 101);
    let line = report.step("buggy").unwrap();
    assert_eq!(line.status, StepStatus::Failed);
    assert_eq!(line.attempts, 1, "a panic is not retried");
    assert_eq!(
        line.error.as_deref(),
        Some("panicked: index out of bounds: the len is 0 but the index is 3")
    );
    // Optional or not, a bug ends the run.
    assert_eq!(report.step("after").unwrap().status, StepStatus::Skipped);
    assert_eq!(after.attempts(), 0);
    assert!(
        report.failure_line().unwrap().starts_with(
            "step \"buggy\" failed after 1 attempt in 0.0s: panicked: index out of bounds"
        ),
        "{:?}",
        report.failure_line()
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_member_cancels_its_group() {
    let sibling = Scripted::new("sibling", [Outcome::Hang]);
    let report = Plan::new("p")
        .concurrently([Panics.boxed(), sibling.clone().boxed()])
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::Panicked);
    assert_eq!(
        report.step("sibling").unwrap().status,
        StepStatus::Cancelled
    );
}
