//! Attempt timeouts, step timeouts and the plan deadline, on tokio's paused clock.

mod support;

use std::time::Duration;

use init_core::{Context, Outcome as PlanOutcome, Plan, Policy, Retry, StepExt, StepStatus};
use support::{Outcome, Scripted, ms};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn an_attempt_that_runs_out_of_time_is_a_transient_failure() {
    let step = Scripted::new("slow", [Outcome::Hang, Outcome::Hang, Outcome::Ok])
        .attempt_timeout(Duration::from_secs(1));
    let origin = Instant::now();
    let report = Plan::new("p").step(step.clone()).run(&Context::new()).await;

    assert!(report.is_success());
    assert_eq!(report.step("slow").unwrap().attempts, 3);
    // 1 s attempt, 100 ms sleep, 1 s attempt, 200 ms sleep, then success.
    assert_eq!(step.inner().offsets(origin), [ms(0), ms(1100), ms(2300)]);
}

#[tokio::test(start_paused = true)]
async fn attempts_that_keep_timing_out_report_the_attempt_timeout() {
    let step = Scripted::new("slow", [Outcome::Hang])
        .retry(support::exact_retry().with_max_attempts(2))
        .attempt_timeout(ms(500));
    let report = Plan::new("p").step(step).run(&Context::new()).await;

    assert_eq!(report.outcome, PlanOutcome::Failed);
    let line = report.step("slow").unwrap();
    assert_eq!(line.error.as_deref(), Some("attempt timed out after 500ms"));
    assert!(!line.timed_out, "attempts ran out, not the step's time");
}

#[tokio::test(start_paused = true)]
async fn a_step_timeout_ends_the_step_with_exit_code_124() {
    let step = Scripted::new("db", [Outcome::Hang]).timeout(Duration::from_secs(5));
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(step)
        .step(Scripted::ok("after"))
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::TimedOut);
    assert_eq!(report.exit_code(), 124);
    let line = report.step("db").unwrap();
    assert!(line.timed_out);
    assert_eq!(line.status, StepStatus::Failed);
    assert_eq!(
        line.error.as_deref(),
        Some("the attempt was still running at the deadline")
    );
    assert_eq!(Instant::now() - origin, Duration::from_secs(5));
    assert_eq!(report.step("after").unwrap().status, StepStatus::Skipped);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_caps_the_last_sleep_and_a_final_attempt_runs_at_it() {
    // Delays 1 s, 2 s, 4 s …: attempts at 0, 1, 3; the next would be at 7, past the 5 s
    // timeout, so the step sleeps until 5 s and tries once more there.
    let retry = Retry::new()
        .with_initial_delay(Duration::from_secs(1))
        .without_max_attempts()
        .without_jitter();
    let step = Scripted::new("db", [Outcome::Transient("db:5432: connection refused")]);
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(step.clone().retry(retry).timeout(Duration::from_secs(5)))
        .run(&Context::new())
        .await;

    let secs = Duration::from_secs;
    assert_eq!(step.offsets(origin), [secs(0), secs(1), secs(3), secs(5)]);
    let line = report.step("db").unwrap();
    assert!(line.timed_out);
    assert_eq!(line.attempts, 4);
    assert_eq!(
        report.failure_line().unwrap(),
        "step \"db\" timed out after 4 attempts in 5.0s: db:5432: connection refused"
    );
}

#[tokio::test(start_paused = true)]
async fn the_final_attempt_at_the_deadline_can_still_succeed() {
    let retry = Retry::new()
        .with_initial_delay(Duration::from_secs(4))
        .without_max_attempts()
        .without_jitter();
    let step = Scripted::new("db", [Outcome::Transient("not yet"), Outcome::Ok]);
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(step.clone().retry(retry).timeout(Duration::from_secs(3)))
        .run(&Context::new())
        .await;
    assert!(report.is_success());
    assert_eq!(
        step.offsets(origin),
        [Duration::ZERO, Duration::from_secs(3)]
    );
}

#[tokio::test(start_paused = true)]
async fn the_time_left_caps_an_attempt() {
    // The attempt timeout (10 s) is longer than the time left (2 s): the step ends at 2 s.
    let step = Scripted::new("slow", [Outcome::Hang])
        .with_default_policy(Policy::new().with_attempt_timeout(Duration::from_secs(10)))
        .timeout(Duration::from_secs(2));
    let origin = Instant::now();
    let report = Plan::new("p").step(step).run(&Context::new()).await;
    assert_eq!(report.outcome, PlanOutcome::TimedOut);
    assert_eq!(Instant::now() - origin, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn the_plan_deadline_stops_the_running_step() {
    let report = Plan::new("p")
        .step(Scripted::new(
            "first",
            [Outcome::SleepOk(Duration::from_secs(2))],
        ))
        .step(Scripted::new("second", [Outcome::Hang]))
        .step(Scripted::ok("third"))
        .with_deadline(Duration::from_secs(3))
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::TimedOut);
    assert_eq!(report.step("first").unwrap().status, StepStatus::Succeeded);
    let second = report.step("second").unwrap();
    assert_eq!(
        (second.status, second.timed_out),
        (StepStatus::Failed, true)
    );
    assert_eq!(second.elapsed, Duration::from_secs(1));
    assert_eq!(report.step("third").unwrap().status, StepStatus::Skipped);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_beyond_the_bound_is_invalid_not_a_panic() {
    // What `entrypoint --timeout 18446744073709551615` builds.
    let step = Scripted::ok("db");
    let report = Plan::new("p")
        .step(step.clone())
        .with_deadline(Duration::from_secs(u64::MAX))
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::Invalid);
    assert_eq!(report.exit_code(), 2);
    assert_eq!(
        report.error.as_deref(),
        Some("deadline = 18446744073709551615s: expected a duration of at most 365 days")
    );
    assert_eq!(step.attempts(), 0, "nothing runs");
}

#[tokio::test(start_paused = true)]
async fn step_timeouts_and_delays_beyond_the_bound_are_invalid_naming_the_step() {
    let huge = Duration::MAX;
    let report = Plan::new("p")
        .step(Scripted::ok("a").timeout(huge))
        .step(Scripted::ok("b").attempt_timeout(huge))
        .step(Scripted::ok("c").retry(Retry::new().with_max_delay(huge)))
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::Invalid);
    let error = report.error.unwrap();
    for expected in [
        "step \"a\": invalid policy: timeout = 18446744073709551615.999999999s",
        "step \"b\": invalid policy: attempt_timeout = 18446744073709551615.999999999s",
        "step \"c\": invalid policy: max_delay = 18446744073709551615.999999999s",
    ] {
        assert!(error.contains(expected), "{error:?} lacks {expected:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_deadline_at_the_bound_runs() {
    let report = Plan::new("p")
        .step(Scripted::ok("db").timeout(init_core::MAX_DURATION))
        .with_deadline(init_core::MAX_DURATION)
        .run(&Context::new())
        .await;
    assert!(report.is_success());
}

/// A hand-written step whose `policy()` answers differently once validation is over.
#[derive(Debug, Default)]
struct Fickle(std::sync::atomic::AtomicU32);

#[init_core::async_trait]
impl init_core::Step for Fickle {
    fn name(&self) -> &str {
        "fickle"
    }
    fn policy(&self) -> Policy {
        let calls = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let huge = if calls == 0 { ms(100) } else { Duration::MAX };
        Policy::new()
            .with_retry(Retry::never())
            .with_timeout(huge)
            .with_attempt_timeout(huge)
    }
    async fn run(&self, _: &Context) -> Result<(), init_core::StepError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_policy_that_grows_after_validation_cannot_overflow_the_clock() {
    let report = Plan::new("p")
        .step(Fickle::default())
        .with_deadline(Duration::from_secs(60))
        .run(&Context::new())
        .await;
    assert!(report.is_success());
}
