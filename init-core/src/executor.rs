//! The executor: runs a validated plan's stages in order, and each step's attempts under its
//! policy (retry, attempt timeout, step timeout, plan deadline, cancellation, `once` markers).

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;
use tracing::Instrument;

use crate::cadence;
use crate::context::Context;
use crate::duration::MAX_DURATION;
use crate::error::{MIN_POLL_AFTER, StepError};
use crate::once_marker::OnceMarker;
use crate::panic::{self, Guarded, Panicked};
use crate::policy::OnFailure;
use crate::report::{Outcome, Report, StepReport, StepStatus};
use crate::stage::Stage;
use crate::step::Step;

/// Attempt failures that repeat the previous error are logged at `debug` in between these
/// `warn` lines, so a wait that polls a refused port every few milliseconds stays readable.
const REPEAT_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// What the executor runs: a validated plan's parts.
pub(crate) struct Run<'a> {
    pub(crate) name: &'a str,
    pub(crate) stages: &'a [Stage],
    pub(crate) deadline: Option<Duration>,
    pub(crate) state_dir: Option<&'a Path>,
}

/// Runs `run`'s stages with `ctx` until they end or `stop` completes, and reports.
pub(crate) async fn run(
    run: &Run<'_>,
    ctx: &Context,
    stop: impl Future<Output = Outcome>,
) -> Report {
    let start = Instant::now();
    let mut report = Report::new(run.name);
    // Validation bounds the deadline; a sum past the clock's range means no deadline at all.
    let deadline = run.deadline.and_then(|d| start.checked_add(d));
    let stages = run_stages(run, ctx, deadline);
    let mut stages = pin!(stages);
    let mut stop = pin!(stop);
    let (steps, mut outcome) = tokio::select! {
        biased;
        done = &mut stages => done,
        stopped = &mut stop => {
            // Cancelling the context makes every in-flight attempt and sleep return at its next
            // poll; the stages then mark what is left as skipped.
            ctx.cancellation().cancel();
            let (steps, _) = stages.await;
            (steps, stopped)
        }
    };
    if outcome == Outcome::Succeeded && ctx.cancellation().is_cancelled() {
        outcome = Outcome::Terminated;
    }
    report.steps = steps;
    report.outcome = outcome;
    report.elapsed = start.elapsed();
    let exit_code = report.exit_code();
    match report.outcome {
        Outcome::Succeeded => tracing::info!(
            plan = run.name,
            elapsed_ms = millis(report.elapsed),
            "plan succeeded"
        ),
        // The failed step has logged its own line already.
        Outcome::Failed | Outcome::TimedOut => {
            tracing::error!(plan = run.name, exit_code, "plan failed")
        }
        Outcome::Panicked => tracing::error!(
            plan = run.name,
            exit_code,
            "{}; this is a bug in the step",
            report.failure_line().unwrap_or_default()
        ),
        _ => tracing::error!(
            plan = run.name,
            exit_code,
            "{}",
            report.failure_line().unwrap_or_default()
        ),
    }
    report
}

async fn run_stages(
    run: &Run<'_>,
    ctx: &Context,
    deadline: Option<Instant>,
) -> (Vec<StepReport>, Outcome) {
    let mut steps = Vec::with_capacity(run.stages.len());
    let mut outcome = Outcome::Succeeded;
    let state_dir = run.state_dir;
    // Each step's index in plan order, for the panic hook's record.
    let mut next_index = 0;
    for stage in run.stages {
        let index = next_index;
        next_index += stage.steps().count();
        let past_deadline = deadline.is_some_and(|d| Instant::now() >= d);
        if outcome != Outcome::Succeeded || ctx.cancellation().is_cancelled() || past_deadline {
            if past_deadline && outcome == Outcome::Succeeded {
                outcome = Outcome::TimedOut;
            }
            steps.extend(
                stage
                    .steps()
                    .map(|s| StepReport::new(s.name(), StepStatus::Skipped)),
            );
            continue;
        }
        let first_new = steps.len();
        match stage {
            Stage::One(step) => {
                steps.push(run_step(step.as_ref(), ctx, deadline, state_dir, index).await);
            }
            Stage::Group(members) => {
                steps.extend(run_group(members, ctx, deadline, state_dir, index).await);
            }
        }
        for r in &steps[first_new..] {
            if r.panicked {
                // A bug ends the run, optional step or not.
                outcome = Outcome::Panicked;
            } else if r.status == StepStatus::Failed && !r.optional && outcome == Outcome::Succeeded
            {
                outcome = if r.timed_out {
                    Outcome::TimedOut
                } else {
                    Outcome::Failed
                };
            }
        }
    }
    (steps, outcome)
}

/// Runs a group's members at once, each member's steps in order. An aborting failure cancels
/// the whole group: the siblings' running steps are cancelled and what is left is skipped.
async fn run_group(
    members: &[Vec<Box<dyn Step>>],
    ctx: &Context,
    deadline: Option<Instant>,
    state_dir: Option<&Path>,
    first_index: usize,
) -> Vec<StepReport> {
    let group = ctx.child();
    // Each member's first step's plan-order index: the members' steps are numbered in turn.
    let starts = members.iter().scan(first_index, |next, sequence| {
        let start = *next;
        *next += sequence.len();
        Some(start)
    });
    let reports = join_all(members.iter().zip(starts).map(|(sequence, start)| {
        let member = group.child();
        let group = &group;
        async move {
            let mut reports = Vec::with_capacity(sequence.len());
            let mut ended = false;
            for (i, step) in sequence.iter().enumerate() {
                if ended || member.cancellation().is_cancelled() {
                    reports.push(StepReport::new(step.name(), StepStatus::Skipped));
                    continue;
                }
                let report = run_step(step.as_ref(), &member, deadline, state_dir, start + i).await;
                match report.status {
                    StepStatus::Failed if !report.optional || report.panicked => {
                        group.cancellation().cancel();
                        ended = true;
                    }
                    StepStatus::Cancelled => ended = true,
                    _ => {}
                }
                reports.push(report);
            }
            reports
        }
    }))
    .await;
    reports.into_iter().flatten().collect()
}

/// Runs one step to its end: attempts, sleeps, timeouts, marker. Never panics on its error.
pub(crate) async fn run_step(
    step: &dyn Step,
    ctx: &Context,
    plan_deadline: Option<Instant>,
    state_dir: Option<&Path>,
    index: usize,
) -> StepReport {
    // The field is `step`, not `name`: in JSON logs a span's own name sits in the same object.
    let span = tracing::info_span!("step", step = step.name());
    let report = attempts(step, ctx, plan_deadline, state_dir, index)
        .instrument(span)
        .await;
    panic::finished(index, &report);
    report
}

async fn attempts(
    step: &dyn Step,
    ctx: &Context,
    plan_deadline: Option<Instant>,
    state_dir: Option<&Path>,
    index: usize,
) -> StepReport {
    let policy = step.policy();
    let mut report = StepReport::new(step.name(), StepStatus::Succeeded);
    report.optional = policy.on_failure() == OnFailure::Continue;

    let marker = policy
        .once()
        .then(|| state_dir.map(|dir| OnceMarker::new(dir, step.name())))
        .flatten();
    if let Some(marker) = &marker
        && marker.exists()
    {
        tracing::info!(marker = %marker, "already succeeded in an earlier run; skipped");
        report.status = StepStatus::Skipped;
        return report;
    }

    let start = Instant::now();
    // Validation bounds every duration; `checked_add` keeps a policy that changed since (a
    // hand-written `policy()` is called again here) from panicking.
    let deadline = earliest(
        policy.timeout().and_then(|t| start.checked_add(t)),
        plan_deadline,
    );
    let mut delays = None;
    let mut last_error: Option<String> = None;
    let mut last_warned: Option<(String, Instant)> = None;
    let cancelled = ctx.cancellation().cancelled();
    let mut cancelled = pin!(cancelled);

    loop {
        if ctx.cancellation().is_cancelled() {
            return finish_cancelled(report, start, last_error);
        }
        report.attempts += 1;
        panic::attempt_started(index, report.attempts);
        // Read the clock only when an attempt timeout needs it.
        let attempt_limit = policy
            .attempt_timeout()
            .and_then(|t| Instant::now().checked_add(t));
        let limit = earliest(attempt_limit, deadline);
        let attempt = Guarded::new(index, step.run(ctx));
        // The attempt is polled first: one that is ready at once never touches the token.
        let result = tokio::select! {
            biased;
            result = with_limit(limit, attempt) => result,
            () = &mut cancelled => {
                return finish_cancelled(report, start, last_error);
            }
        };
        let result = match result {
            Ok(Err(Panicked(message))) => return finish_panicked(report, ctx, start, &message),
            Ok(Ok(result)) => Ok(result),
            Err(elapsed) => Err(elapsed),
        };
        let error = match result {
            Ok(Ok(())) => {
                report.elapsed = start.elapsed();
                if let Some(marker) = &marker {
                    marker.record();
                }
                tracing::info!(
                    attempts = report.attempts,
                    elapsed_ms = millis(report.elapsed),
                    "step succeeded"
                );
                return report;
            }
            Ok(Err(error)) => error,
            Err(Elapsed) => match policy.attempt_timeout() {
                // `limit` is the attempt's own bound or the step's deadline, whichever came first.
                Some(t) if limit == attempt_limit => {
                    StepError::transient(format!("attempt timed out after {}", format_duration(t)))
                }
                _ => {
                    // The attempt ran into the step's deadline: the error worth reporting is
                    // the one before it, if any.
                    let error = last_error.or_else(|| {
                        Some("the attempt was still running at the deadline".to_owned())
                    });
                    return finish_failed(report, start, error, true);
                }
            },
        };
        let text = ctx.redact(&error.to_string());
        if !error.is_transient() {
            let class = if error.is_invalid() {
                "invalid configuration"
            } else {
                "permanent error"
            };
            tracing::debug!(attempt = report.attempts, error = %text, "attempt failed with a {class}; not retrying");
            return finish_failed(report, start, Some(text), false);
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return finish_failed(report, start, Some(text), true);
        }
        let delays = delays.get_or_insert_with(|| policy.retry().delays());
        let Some(backoff) = delays.next() else {
            tracing::warn!(attempt = report.attempts, error = %text, "attempt failed; no attempts left");
            return finish_failed(report, start, Some(text), false);
        };
        let delay = next_delay(&error, backoff, now.saturating_duration_since(start));
        // The last attempt happens at the deadline, not before.
        let wake = earliest(now.checked_add(delay), deadline);
        let pause = wake.map_or(delay, |w| w.saturating_duration_since(now));
        log_attempt_failure(&mut last_warned, report.attempts, &text, pause, now);
        last_error = Some(text);
        let sleep = match wake {
            Some(wake) => tokio::time::sleep_until(wake),
            None => tokio::time::sleep(delay),
        };
        tokio::select! {
            biased;
            () = &mut cancelled => return finish_cancelled(report, start, last_error),
            () = sleep => {}
        }
    }
}

/// The wait before the next attempt of a step that started `waited` ago: a server's hint or
/// the policy's backoff, whichever is longer (a `Retry-After: 0` never makes a request
/// storm); instead of the backoff, the wait cadence ([`cadence::next_poll`]) or a step's poll
/// hint (at least [`MIN_POLL_AFTER`]); never more than [`MAX_DURATION`].
fn next_delay(error: &StepError, backoff: Duration, waited: Duration) -> Duration {
    let delay = match (error.retry_after(), error.poll_after()) {
        (Some(hint), _) => hint.max(backoff),
        (None, Some(poll)) => poll.max(MIN_POLL_AFTER),
        (None, None) if error.at_wait_cadence() => cadence::next_poll(waited),
        (None, None) => backoff,
    };
    delay.min(MAX_DURATION)
}

fn log_attempt_failure(
    last_warned: &mut Option<(String, Instant)>,
    attempt: u32,
    text: &str,
    next: Duration,
    now: Instant,
) {
    let repeat = last_warned
        .as_ref()
        .is_some_and(|(prev, at)| prev == text && now - *at < REPEAT_LOG_INTERVAL);
    let next_delay_ms = millis(next);
    if repeat {
        tracing::debug!(attempt, error = %text, next_delay_ms, "attempt failed");
    } else {
        tracing::warn!(attempt, error = %text, next_delay_ms, "attempt failed");
        *last_warned = Some((text.to_owned(), now));
    }
}

fn finish_failed(
    mut report: StepReport,
    start: Instant,
    error: Option<String>,
    timed_out: bool,
) -> StepReport {
    report.status = StepStatus::Failed;
    report.elapsed = start.elapsed();
    report.timed_out = timed_out;
    report.error = error;
    if report.optional {
        tracing::warn!("{}; optional, continuing", report.summary());
    } else {
        tracing::error!("{}", report.summary());
    }
    report
}

fn finish_panicked(
    mut report: StepReport,
    ctx: &Context,
    start: Instant,
    message: &str,
) -> StepReport {
    report.status = StepStatus::Failed;
    report.elapsed = start.elapsed();
    report.panicked = true;
    report.error = Some(ctx.redact(&format!("panicked: {message}")));
    tracing::error!("{}", report.summary());
    report
}

fn finish_cancelled(mut report: StepReport, start: Instant, error: Option<String>) -> StepReport {
    report.status = StepStatus::Cancelled;
    report.elapsed = start.elapsed();
    report.error = error;
    tracing::warn!(attempts = report.attempts, "step cancelled");
    report
}

/// The attempt's own time ran out.
struct Elapsed;

async fn with_limit<F: Future>(limit: Option<Instant>, fut: F) -> Result<F::Output, Elapsed> {
    match limit {
        // `timeout_at` polls the future before the timer, so an attempt that starts at (or
        // after) its deadline still gets one poll: an answer that is ready at once counts.
        Some(limit) => tokio::time::timeout_at(limit, fut)
            .await
            .map_err(|_| Elapsed),
        None => Ok(fut.await),
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
