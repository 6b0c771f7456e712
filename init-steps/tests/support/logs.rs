//! A tracing subscriber that records every span and event, at every level (TRACE included),
//! from every crate (hyper-util's connection logs too), with every field, unredacted, into a
//! buffer: what a test searches for secrets.
//!
//! reqwest logs through the `log` crate, which initkit does not bridge into tracing, so its
//! records never reach a log line; hyper and hyper-util's tracing events land here.
#![allow(dead_code)]

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The captured text.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<String>>);

impl Captured {
    pub(crate) fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// The process-wide subscriber: it formats every event and hands it to the buffer of the
/// thread it happens on, if that thread is capturing. (A global subscriber, because a
/// thread-local default races with other tests over tracing's cached callsite interest.)
struct Capture {
    next_id: AtomicU64,
}

thread_local! {
    static BUFFER: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = format!("span {}:", span.metadata().name());
        span.record(&mut Fields(&mut line));
        push(line);
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = String::from("record:");
        values.record(&mut Fields(&mut line));
        push(line);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut line = format!("{} {}:", meta.level(), meta.target());
        event.record(&mut Fields(&mut line));
        push(line);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn push(line: String) {
    BUFFER.with(|buffer| {
        if let Some(captured) = &*buffer.borrow() {
            let mut out = captured.0.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    });
}

/// Stops the capture on this thread when dropped.
pub(crate) struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        BUFFER.with(|buffer| buffer.borrow_mut().take());
    }
}

/// Captures everything logged on this thread until the guard is dropped. Use it in a
/// current-thread runtime test, so every task logs on this thread.
pub(crate) fn capture() -> (Captured, CaptureGuard) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(Capture {
            next_id: AtomicU64::new(0),
        })
        .expect("no other global subscriber in this test binary");
    });
    let out = Captured::default();
    BUFFER.with(|buffer| *buffer.borrow_mut() = Some(out.clone()));
    (out, CaptureGuard(()))
}
