//! What a panicking step leaves behind. The executor catches a panic in an attempt and reports
//! the step as failed; under `run_main` a panic hook does more, since with the release
//! profile's `panic = "abort"` nothing can be caught: it writes the report and the termination
//! message, naming the step that panicked, and exits with code 101.
//!
//! The hook knows the step from a thread-local index that the executor sets while it polls an
//! attempt (or validates a step), and the other steps from the progress the executor records
//! while the hook is armed.
// Without `run-main` no panic hook is installed, so its half of this file is unused.
#![cfg_attr(not(feature = "run-main"), allow(dead_code))]

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::task::{Context as TaskContext, Poll};

use tokio::time::Instant;

use crate::error::StepError;
use crate::redact::Redactor;
use crate::report::{Outcome, Report, StepReport, StepStatus};

thread_local! {
    /// The index (in plan order) of the step this thread is running user code of, if any.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Whether a hook is installed and the executor should record its progress.
static ARMED: AtomicBool = AtomicBool::new(false);

/// The run so far, for the hook: what each step has done.
static LIVE: Mutex<Option<Live>> = Mutex::new(None);

struct Live {
    plan: String,
    start: Instant,
    steps: Vec<Slot>,
}

struct Slot {
    report: StepReport,
    /// When the step started, while it runs.
    running_since: Option<Instant>,
}

/// Marks the current thread as running user code of the step at `index` until dropped.
pub(crate) struct InStep {
    previous: Option<usize>,
}

impl InStep {
    pub(crate) fn enter(index: usize) -> Self {
        Self {
            previous: CURRENT.with(|c| c.replace(Some(index))),
        }
    }
}

impl Drop for InStep {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// A panic caught in an attempt: its message.
pub(crate) struct Panicked(pub(crate) String);

type Attempt<'a> = Pin<Box<dyn Future<Output = Result<(), StepError>> + Send + 'a>>;

/// One attempt of the step at `index`, polled with the thread marked as running it and with
/// any panic caught (with `panic = "unwind"`; with `"abort"` the hook has ended the process).
pub(crate) struct Guarded<'a> {
    index: usize,
    attempt: Attempt<'a>,
}

impl<'a> Guarded<'a> {
    pub(crate) fn new(index: usize, attempt: Attempt<'a>) -> Self {
        Self { index, attempt }
    }
}

impl Future for Guarded<'_> {
    type Output = Result<Result<(), StepError>, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let _in_step = InStep::enter(self.index);
        let attempt = &mut self.attempt;
        match std::panic::catch_unwind(AssertUnwindSafe(|| attempt.as_mut().poll(cx))) {
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(Panicked(payload_text(payload.as_ref())))),
        }
    }
}

/// Records that the step at `index` started its `attempts`-th attempt (when armed).
pub(crate) fn attempt_started(index: usize, attempts: u32) {
    with_live(|live| {
        if let Some(slot) = live.steps.get_mut(index) {
            slot.running_since.get_or_insert_with(Instant::now);
            slot.report.attempts = attempts;
        }
    });
}

/// Records how the step at `index` ended (when armed).
pub(crate) fn finished(index: usize, report: &StepReport) {
    with_live(|live| {
        if let Some(slot) = live.steps.get_mut(index) {
            slot.report = report.clone();
            slot.running_since = None;
        }
    });
}

fn with_live(f: impl FnOnce(&mut Live)) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(live) = live.as_mut() {
        f(live);
    }
}

/// A panic hook, as `std::panic::take_hook` returns it.
type PanicHook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// The panic hook of one `run_main`: installed by [`Hook::install`], the previous hook back
/// when dropped.
pub(crate) struct Hook {
    previous: Option<PanicHook>,
}

impl Hook {
    /// Arms the progress record for `plan` (`steps` in plan order) and installs a hook that,
    /// on any panic, hands the report of the run so far to `finish` (which writes it out), and
    /// exits with [`Outcome::Panicked`]'s code.
    pub(crate) fn install(
        plan: &str,
        steps: &[&str],
        redactor: Redactor,
        finish: impl Fn(&Report) + Send + Sync + 'static,
    ) -> Self {
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Live {
            plan: plan.to_owned(),
            start: Instant::now(),
            steps: steps
                .iter()
                .map(|name| Slot {
                    report: StepReport::new(*name, StepStatus::Skipped),
                    running_since: None,
                })
                .collect(),
        });
        ARMED.store(true, Ordering::Relaxed);
        let previous = std::panic::take_hook();
        let finish = Arc::new(finish);
        std::panic::set_hook(Box::new(move |info| {
            let text = redactor.redact(&describe(info)).into_owned();
            let report = report_so_far(CURRENT.with(Cell::get), text);
            finish(&report);
            std::process::exit(i32::from(Outcome::Panicked.exit_code()));
        }));
        Self {
            previous: Some(previous),
        }
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        ARMED.store(false, Ordering::Relaxed);
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(previous) = self.previous.take()
            && !std::thread::panicking()
        {
            drop(std::panic::take_hook());
            std::panic::set_hook(previous);
        }
    }
}

/// The report when the step at `current` (or code outside any step) panicked with `text`:
/// that step failed, the other running ones cancelled, the rest as recorded.
fn report_so_far(current: Option<usize>, text: String) -> Report {
    let live = match LIVE.try_lock() {
        Ok(live) => Some(live),
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        // Only the executor's own bookkeeping holds the lock, never user code.
        Err(TryLockError::WouldBlock) => None,
    };
    let Some(live) = live.as_ref().and_then(|l| l.as_ref()) else {
        let mut report = Report::new("");
        report.outcome = Outcome::Panicked;
        report.error = Some(text);
        return report;
    };
    let now = Instant::now();
    let mut report = Report::new(live.plan.clone());
    report.outcome = Outcome::Panicked;
    report.elapsed = now - live.start;
    let mut named = false;
    for (index, slot) in live.steps.iter().enumerate() {
        let mut step = slot.report.clone();
        if let Some(since) = slot.running_since {
            step.elapsed = now - since;
            if current == Some(index) {
                step.status = StepStatus::Failed;
                step.panicked = true;
                step.error = Some(text.clone());
                named = true;
            } else {
                step.status = StepStatus::Cancelled;
            }
        } else if current == Some(index) {
            // It panicked in `validate` (or before its first attempt).
            step.status = StepStatus::Failed;
            step.panicked = true;
            step.error = Some(text.clone());
            named = true;
        }
        report.steps.push(step);
    }
    if !named {
        report.error = Some(text);
    }
    report
}

/// `panicked at src/main.rs:10:5: the message`.
fn describe(info: &PanicHookInfo<'_>) -> String {
    let message = payload_text(info.payload());
    match info.location() {
        Some(at) => format!("panicked at {at}: {message}"),
        None => format!("panicked: {message}"),
    }
}

/// The message a panic carries (`panic!("...")` makes a `&str` or a `String`).
fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a value that is not text".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_an_attempt_is_caught_with_its_message() {
        let attempt: Attempt<'static> = Box::pin(async { panic!("boom {}", 42) });
        let out = futures_util::FutureExt::now_or_never(Guarded::new(3, attempt)).unwrap();
        assert!(matches!(out, Err(Panicked(m)) if m == "boom 42"));
        assert_eq!(CURRENT.with(Cell::get), None, "the step mark is cleared");
    }
}
