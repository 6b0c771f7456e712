//! Sequences inside concurrent groups: a member that runs its steps in order beside the
//! group's other members, on tokio's paused clock.

mod support;

use std::time::Duration;

use init_core::{Context, Outcome as PlanOutcome, Plan, Sequence, StepExt, StepStatus};
use support::{Outcome, Scripted};
use tokio::time::Instant;

fn sleep_ok(name: &str, secs: u64) -> Scripted {
    Scripted::new(name, [Outcome::SleepOk(Duration::from_secs(secs))])
}

#[tokio::test(start_paused = true)]
async fn a_sequence_runs_its_steps_in_order_beside_the_other_members() {
    let login = sleep_ok("vault-login", 1);
    let read = sleep_ok("db-credentials", 1);
    let postgres = sleep_ok("postgres", 1);
    let redis = sleep_ok("redis", 2);
    let origin = Instant::now();

    let report = Plan::new("p")
        .concurrently((
            redis.clone(),
            Sequence::new()
                .step(login.clone())
                .step(read.clone())
                .step(postgres.clone()),
        ))
        .step(Scripted::ok("render"))
        .run(&Context::new())
        .await;

    assert!(report.is_success(), "{report:?}");
    // The sequence takes 3 s, Redis 2 s at the same time: the group takes 3 s.
    assert_eq!(Instant::now() - origin, Duration::from_secs(3));
    assert_eq!(login.offsets(origin), [Duration::ZERO]);
    assert_eq!(read.offsets(origin), [Duration::from_secs(1)]);
    assert_eq!(postgres.offsets(origin), [Duration::from_secs(2)]);
    assert_eq!(redis.offsets(origin), [Duration::ZERO]);
    // The report lists every step of the group, member by member, in plan order.
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "redis",
            "vault-login",
            "db-credentials",
            "postgres",
            "render"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_sibling_cancels_the_running_step_of_a_sequence_and_skips_the_rest() {
    let login = sleep_ok("vault-login", 1);
    let read = Scripted::new("db-credentials", [Outcome::Hang]);
    let postgres = Scripted::ok("postgres");
    let origin = Instant::now();

    let report = Plan::new("p")
        .concurrently((
            Scripted::new("redis", [Outcome::SleepFail(Duration::from_secs(2))]),
            Sequence::new()
                .step(login.clone())
                .step(read.clone())
                .step(postgres.clone()),
        ))
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::Failed);
    assert_eq!(Instant::now() - origin, Duration::from_secs(2));
    let status = |name| report.step(name).unwrap().status;
    assert_eq!(status("redis"), StepStatus::Failed);
    assert_eq!(status("vault-login"), StepStatus::Succeeded);
    assert_eq!(status("db-credentials"), StepStatus::Cancelled);
    assert_eq!(status("postgres"), StepStatus::Skipped);
    assert_eq!(postgres.attempts(), 0);
    assert_eq!(
        report.failure_line().unwrap(),
        "step \"redis\" failed after 1 attempt in 2.0s: failed after sleeping"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_inside_a_sequence_ends_it_and_cancels_the_siblings() {
    let redis = Scripted::new("redis", [Outcome::Hang]);
    let after = Scripted::ok("postgres");

    let report = Plan::new("p")
        .concurrently((
            redis.clone(),
            Sequence::new()
                .step(Scripted::new(
                    "vault-login",
                    [Outcome::Permanent("permission denied (403)")],
                ))
                .step(after.clone()),
        ))
        .step(Scripted::ok("render"))
        .run(&Context::new())
        .await;

    assert_eq!(report.outcome, PlanOutcome::Failed);
    let status = |name| report.step(name).unwrap().status;
    assert_eq!(status("vault-login"), StepStatus::Failed);
    assert_eq!(status("postgres"), StepStatus::Skipped);
    assert_eq!(status("redis"), StepStatus::Cancelled);
    assert_eq!(status("render"), StepStatus::Skipped);
    assert_eq!(after.attempts(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_optional_failure_inside_a_sequence_lets_it_go_on() {
    let after = Scripted::ok("postgres");
    let report = Plan::new("p")
        .concurrently((
            Scripted::ok("redis"),
            Sequence::new()
                .step(Scripted::new("metrics", [Outcome::Permanent("down")]).optional())
                .step(after.clone()),
        ))
        .run(&Context::new())
        .await;
    assert!(report.is_success());
    assert_eq!(after.attempts(), 1);
}

#[test]
fn names_stay_unique_across_sequences_and_an_empty_sequence_is_refused() {
    let err = Plan::new("p")
        .step(Scripted::ok("db"))
        .concurrently((Sequence::new().step(Scripted::ok("db")), Sequence::new()))
        .validate(&Context::new())
        .unwrap_err();
    assert_eq!(
        err.problems(),
        [
            "duplicate step name \"db\"",
            "a sequence in a concurrent group has no steps"
        ]
    );
}

#[test]
fn a_group_takes_steps_of_different_types_without_boxing_and_a_list_built_at_run_time() {
    let listed: Vec<Box<dyn init_core::Step>> =
        vec![Scripted::ok("a").boxed(), Scripted::ok("b").boxed()];
    let plan = Plan::new("p")
        .concurrently((Scripted::ok("x"), Scripted::ok("y").optional()))
        .concurrently(listed);
    assert_eq!(plan.step_names(), ["x", "y", "a", "b"]);
}

#[test]
fn the_dry_run_outline_shows_a_sequence_as_steps_that_follow_each_other() {
    let plan = Plan::new("p").concurrently((
        Scripted::ok("redis"),
        Sequence::new()
            .step(Scripted::ok("login"))
            .step(Scripted::ok("postgres")),
    ));
    let outline = plan.outline();
    let lines: Vec<&str> = outline
        .lines()
        .filter(|l| !l.trim_start().starts_with("publishes"))
        .collect();
    assert!(lines[1].starts_with("  1. | redis "), "{outline}");
    assert!(lines[2].starts_with("  1. | login "), "{outline}");
    assert!(lines[3].starts_with("  1. |   then postgres "), "{outline}");
}
