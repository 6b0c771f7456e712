//! `Cleanups`: work that outlives the attempt that started it (stopping a child process group:
//! `SIGKILL` after a grace period, reaping), counted so that
//! [`Plan::run_main_then_exec`](crate::Plan::run_main_then_exec) can wait for it before it
//! replaces the process with another program.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};

/// The clean-ups in flight for one run, shared by every clone of a [`Context`](crate::Context)
/// (see [`Context::cleanups`](crate::Context::cleanups)).
///
/// A step that leaves work running after its attempt is dropped (a thread that sends `SIGKILL`
/// to a process group after a grace period and reaps it) takes a [`CleanupGuard`] with
/// [`begin`](Self::begin) and keeps it until that work is done. Before it `execve`s the program,
/// [`run_main_then_exec`](crate::Plan::run_main_then_exec) waits until none is left, so nothing a
/// step started outlives the plan under the program. [`run_main`](crate::Plan::run_main) does not
/// wait: its exit ends the container, and the kernel stops what is left.
///
/// Register only work that ends by itself within a bounded time: the exec waits for all of it.
///
/// # Examples
///
/// ```
/// let ctx = init_core::Context::new();
/// let guard = ctx.cleanups().begin();
/// let cleanups = ctx.cleanups().clone();
/// let worker = std::thread::spawn(move || {
///     // ... SIGKILL the group, reap it ...
///     drop(guard);
/// });
/// cleanups.wait();
/// assert_eq!(cleanups.pending(), 0);
/// worker.join().unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Cleanups {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<usize>,
    idle: Condvar,
}

impl Cleanups {
    /// A registry with nothing in flight.
    ///
    /// ```
    /// assert_eq!(init_core::Cleanups::new().pending(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a clean-up in flight until the returned guard is dropped.
    ///
    /// ```
    /// let cleanups = init_core::Cleanups::new();
    /// let guard = cleanups.begin();
    /// assert_eq!(cleanups.pending(), 1);
    /// drop(guard);
    /// assert_eq!(cleanups.pending(), 0);
    /// ```
    pub fn begin(&self) -> CleanupGuard {
        *lock(&self.shared.pending) += 1;
        CleanupGuard {
            shared: Arc::clone(&self.shared),
        }
    }

    /// How many clean-ups are in flight.
    ///
    /// ```
    /// assert_eq!(init_core::Cleanups::new().pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        *lock(&self.shared.pending)
    }

    /// Blocks the calling thread until no clean-up is in flight.
    ///
    /// ```
    /// let cleanups = init_core::Cleanups::new();
    /// cleanups.wait(); // nothing in flight: returns at once
    /// ```
    pub fn wait(&self) {
        let mut pending = lock(&self.shared.pending);
        while *pending > 0 {
            pending = self
                .shared
                .idle
                .wait(pending)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl fmt::Debug for Cleanups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cleanups")
            .field("pending", &self.pending())
            .finish()
    }
}

/// One clean-up in flight (see [`Cleanups::begin`]); dropping it marks the clean-up done.
///
/// ```
/// let cleanups = init_core::Cleanups::new();
/// let guard = cleanups.begin();
/// std::thread::spawn(move || drop(guard)).join().unwrap();
/// assert_eq!(cleanups.pending(), 0);
/// ```
#[must_use = "the clean-up counts as done when the guard is dropped"]
pub struct CleanupGuard {
    shared: Arc<Shared>,
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        let mut pending = lock(&self.shared.pending);
        *pending = pending.saturating_sub(1);
        if *pending == 0 {
            self.shared.idle.notify_all();
        }
    }
}

impl fmt::Debug for CleanupGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CleanupGuard").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wait_returns_when_the_last_guard_is_dropped() {
        let cleanups = Cleanups::new();
        let (a, b) = (cleanups.begin(), cleanups.begin());
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let cleanups = cleanups.clone();
            std::thread::spawn(move || {
                cleanups.wait();
                tx.send(()).unwrap();
            })
        };
        drop(a);
        // One guard is left: the waiter must still be blocked.
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        drop(b);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
    }
}
