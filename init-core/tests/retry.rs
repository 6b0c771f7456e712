//! Retry behaviour of the executor: what is retried, how often, and after which delays.

mod support;

use std::time::Duration;

use init_core::{
    Context, Outcome as PlanOutcome, Plan, Retry, Step, StepError, StepExt, StepStatus, async_trait,
};
use support::{Outcome, Scripted, exact_retry, ms};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn retries_transient_errors_until_success() {
    let step = Scripted::new(
        "flaky",
        [
            Outcome::Transient("refused"),
            Outcome::Transient("refused"),
            Outcome::Ok,
        ],
    );
    let origin = Instant::now();
    let report = Plan::new("p").step(step.clone()).run(&Context::new()).await;

    assert!(report.is_success());
    let line = report.step("flaky").unwrap();
    assert_eq!(line.status, StepStatus::Succeeded);
    assert_eq!(line.attempts, 3);
    // Delays follow the policy exactly: 100 ms, then 200 ms.
    assert_eq!(step.offsets(origin), [ms(0), ms(100), ms(300)]);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried() {
    let step = Scripted::new("forbidden", [Outcome::Permanent("permission denied (403)")]);
    let report = Plan::new("p").step(step.clone()).run(&Context::new()).await;

    assert_eq!(report.outcome, PlanOutcome::Failed);
    assert_eq!(report.exit_code(), 1);
    assert_eq!(step.attempts(), 1);
    let line = report.step("forbidden").unwrap();
    assert_eq!(line.error.as_deref(), Some("permission denied (403)"));
    assert!(!line.timed_out);
}

#[tokio::test(start_paused = true)]
async fn fails_with_the_last_error_when_attempts_run_out() {
    let step = Scripted::new("db", [Outcome::Transient("db:5432: connection refused")])
        .retry(exact_retry().with_max_attempts(4));
    let origin = Instant::now();
    let report = Plan::new("p").step(step).run(&Context::new()).await;

    assert_eq!(report.outcome, PlanOutcome::Failed);
    let line = report.step("db").unwrap();
    assert_eq!(line.attempts, 4);
    assert_eq!(line.elapsed, ms(100 + 200 + 400));
    assert_eq!(
        report.failure_line().unwrap(),
        "step \"db\" failed after 4 attempts in 0.7s: db:5432: connection refused"
    );
    assert_eq!(Instant::now() - origin, ms(700));
}

#[tokio::test(start_paused = true)]
async fn delays_grow_up_to_the_max_delay() {
    let retry = Retry::new()
        .with_initial_delay(ms(100))
        .with_max_delay(ms(300))
        .with_max_attempts(5)
        .without_jitter();
    let step = Scripted::new("s", [Outcome::Transient("no")]);
    let origin = Instant::now();
    Plan::new("p")
        .step(step.clone().retry(retry))
        .run(&Context::new())
        .await;
    assert_eq!(
        step.offsets(origin),
        [ms(0), ms(100), ms(300), ms(600), ms(900)]
    );
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_stay_within_their_bounds() {
    for seed in 0..20 {
        let retry = Retry::new()
            .with_initial_delay(ms(100))
            .with_max_delay(ms(800))
            .with_max_attempts(6)
            .with_jitter_seed(seed);
        let step = Scripted::new("s", [Outcome::Transient("no")]);
        let origin = Instant::now();
        Plan::new("p")
            .step(step.clone().retry(retry))
            .run(&Context::new())
            .await;
        let offsets = step.offsets(origin);
        assert_eq!(offsets.len(), 6);
        let bases = [100, 200, 400, 800, 800];
        for (i, base) in bases.iter().enumerate() {
            let gap = offsets[i + 1] - offsets[i];
            assert!(
                gap >= ms(*base) && gap < ms(2 * base),
                "seed {seed}, delay {i}: {gap:?} not in [{base}ms, {}ms)",
                2 * base
            );
        }
    }
}

/// A step that fails with a hint about when to try again, until its `succeed_at`-th attempt.
#[derive(Debug)]
struct Hinted {
    log: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
    hint: Hint,
    succeed_at: usize,
}

#[derive(Debug, Clone, Copy)]
enum Hint {
    /// A step's own poll interval (a file not there yet).
    Poll(Duration),
    /// The wait cadence (a refused port).
    WaitCadence,
    /// A server's `Retry-After`.
    RetryAfter(Duration),
}

impl Hinted {
    fn new(
        hint: Hint,
        succeed_at: usize,
    ) -> (Self, std::sync::Arc<std::sync::Mutex<Vec<Instant>>>) {
        let log = std::sync::Arc::default();
        let step = Self {
            log: std::sync::Arc::clone(&log),
            hint,
            succeed_at,
        };
        (step, log)
    }
}

#[async_trait]
impl Step for Hinted {
    fn name(&self) -> &str {
        "hinted"
    }
    async fn run(&self, _: &Context) -> Result<(), StepError> {
        let mut log = self.log.lock().unwrap();
        log.push(Instant::now());
        if log.len() >= self.succeed_at {
            return Ok(());
        }
        let error = StepError::transient("busy");
        Err(match self.hint {
            Hint::Poll(d) => error.with_poll_after(d),
            Hint::WaitCadence => error.with_wait_cadence(),
            Hint::RetryAfter(d) => error.with_retry_after(d),
        })
    }
}

fn offsets(log: &std::sync::Mutex<Vec<Instant>>, origin: Instant) -> Vec<Duration> {
    log.lock().unwrap().iter().map(|t| *t - origin).collect()
}

#[tokio::test(start_paused = true)]
async fn a_poll_hint_replaces_the_backoff_delay() {
    let (step, log) = Hinted::new(Hint::Poll(ms(10)), 4);
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(step.retry(exact_retry()))
        .run(&Context::new())
        .await;
    assert!(report.is_success());
    assert_eq!(offsets(&log, origin), [ms(0), ms(10), ms(20), ms(30)]);
}

#[tokio::test(start_paused = true)]
async fn the_wait_cadence_polls_every_10ms_at_first_then_slows_to_100ms() {
    let (step, log) = Hinted::new(Hint::WaitCadence, usize::MAX);
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(
            step.retry(exact_retry().without_max_attempts())
                .timeout(Duration::from_secs(10)),
        )
        .run(&Context::new())
        .await;
    assert_eq!(report.outcome, PlanOutcome::TimedOut);
    let offsets = offsets(&log, origin);
    let gaps: Vec<Duration> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
    // Every 10 ms for the first quarter second, 4 % of the time waited after that, 100 ms
    // from 2.5 s on; never faster than the poll before.
    assert!(gaps[..26].iter().all(|g| *g == ms(10)), "{gaps:?}");
    let (last, gaps) = gaps.split_last().unwrap();
    assert!(gaps.windows(2).all(|w| w[0] <= w[1]), "{gaps:?}");
    assert!(*last <= ms(100), "the last one is cut to the deadline");
    // Polled at 997 ms (4 % of it: 39 ms), so next at 1036 ms.
    let at = offsets.iter().position(|t| *t == ms(997)).unwrap();
    assert_eq!(offsets[at + 1], ms(1_036), "{offsets:?}");
    assert!(gaps[gaps.len() - 70..].iter().all(|g| *g == ms(100)));
    // A 10 s wait: 161 polls (a flat 10 ms cadence would make 1001).
    assert_eq!(offsets.len(), 161);
    assert_eq!(offsets.last(), Some(&ms(10_000)));
}

#[tokio::test(start_paused = true)]
async fn the_wait_cadence_replaces_even_a_long_backoff_and_retry_after_still_wins() {
    let slow = exact_retry().with_initial_delay(Duration::from_secs(5));
    let (cadence, cadence_log) = Hinted::new(Hint::WaitCadence, 3);
    let (hinted, hinted_log) = Hinted::new(Hint::RetryAfter(ms(700)), 2);
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(cadence.named("cadence").retry(slow))
        .step(hinted.named("retry-after").retry(exact_retry()))
        .run(&Context::new())
        .await;
    assert!(report.is_success());
    assert_eq!(offsets(&cadence_log, origin), [ms(0), ms(10), ms(20)]);
    assert_eq!(offsets(&hinted_log, origin), [ms(20), ms(720)]);
}

#[tokio::test(start_paused = true)]
async fn a_poll_hint_of_zero_still_waits_ten_milliseconds() {
    let (step, log) = Hinted::new(Hint::Poll(Duration::ZERO), 4);
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(step.retry(exact_retry()))
        .run(&Context::new())
        .await;
    assert!(report.is_success());
    assert_eq!(offsets(&log, origin), [ms(0), ms(10), ms(20), ms(30)]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_zero_still_waits_the_policy_delay() {
    // Before: a zero hint replaced the backoff, 154 attempts in 200 ms of a real server.
    let (step, log) = Hinted::new(Hint::RetryAfter(Duration::ZERO), usize::MAX);
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(
            step.retry(exact_retry().without_max_attempts())
                .timeout(ms(200)),
        )
        .run(&Context::new())
        .await;
    assert_eq!(report.outcome, PlanOutcome::TimedOut);
    // 100 ms, then the 200 ms delay is cut to the deadline: the last attempt happens there.
    assert_eq!(offsets(&log, origin), [ms(0), ms(100), ms(200)]);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_hint_longer_than_the_backoff_is_honoured() {
    let (step, log) = Hinted::new(Hint::RetryAfter(Duration::from_secs(7)), 3);
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(step.retry(exact_retry()))
        .run(&Context::new())
        .await;
    assert!(report.is_success());
    assert_eq!(offsets(&log, origin), [ms(0), ms(7_000), ms(14_000)]);
}

#[tokio::test(start_paused = true)]
async fn a_backoff_longer_than_the_retry_after_hint_wins() {
    let retry = exact_retry().with_initial_delay(ms(500));
    let (step, log) = Hinted::new(Hint::RetryAfter(ms(100)), 3);
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(step.retry(retry))
        .run(&Context::new())
        .await;
    assert!(report.is_success());
    assert_eq!(offsets(&log, origin), [ms(0), ms(500), ms(1_500)]);
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_hint_is_cut_to_the_timeout_without_a_panic() {
    let (step, log) = Hinted::new(Hint::RetryAfter(Duration::MAX), usize::MAX);
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(step.retry(exact_retry()).timeout(Duration::from_secs(1)))
        .run(&Context::new())
        .await;
    assert_eq!(report.outcome, PlanOutcome::TimedOut);
    assert_eq!(offsets(&log, origin), [ms(0), ms(1_000)]);
}

#[tokio::test(start_paused = true)]
async fn a_huge_poll_hint_without_a_timeout_waits_at_most_the_duration_bound() {
    let (step, log) = Hinted::new(Hint::Poll(Duration::MAX), 2);
    let origin = Instant::now();
    let report = Plan::new("p")
        .step(step.retry(exact_retry()))
        .run(&Context::new())
        .await;
    assert!(report.is_success());
    assert_eq!(
        offsets(&log, origin),
        [Duration::ZERO, init_core::MAX_DURATION]
    );
}

/// A hand-written step whose error comes from `?` on a standard error.
#[derive(Debug)]
struct ParsesPort(std::sync::Arc<std::sync::atomic::AtomicU32>);

#[async_trait]
impl Step for ParsesPort {
    fn name(&self) -> &str {
        "parse"
    }
    async fn run(&self, _: &Context) -> Result<(), StepError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _port: u16 = "not a port".parse()?;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn an_unclassified_error_from_question_mark_is_retried() {
    let runs = std::sync::Arc::default();
    let report = Plan::new("p")
        .step(ParsesPort(std::sync::Arc::clone(&runs)).retry(exact_retry().with_max_attempts(3)))
        .run(&Context::new())
        .await;
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(
        report.step("parse").unwrap().error.as_deref(),
        Some("invalid digit found in string")
    );
}

#[test]
fn io_errors_are_classified_by_kind() {
    use std::io::{Error, ErrorKind};
    let refused = StepError::from(Error::from(ErrorKind::ConnectionRefused));
    let denied = StepError::from(Error::from(ErrorKind::PermissionDenied));
    assert!(refused.is_transient());
    assert!(denied.is_permanent());
    assert_eq!(
        denied.context("/config/app.toml").to_string(),
        "/config/app.toml: permission denied"
    );
    // The errno adds nothing for the reader; it is left out.
    let os = StepError::from(Error::from_raw_os_error(111)).context("db:5432");
    assert_eq!(os.to_string(), "db:5432: connection refused");
    assert!(os.is_transient());
}
