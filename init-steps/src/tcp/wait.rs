//! [`TcpWait`], its builder and its [`Step`] implementation: which targets are still pending,
//! and one attempt over all of them at once.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use init_core::{Context, Policy, Publication, Step, StepError, ValidateContext, async_trait};

use super::connect::{combine, connect_any};
use super::resolve::Lookups;
use super::target::{Address, Target};

/// The default bound on one connection attempt to one address.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Waits until every target accepts a TCP connection.
///
/// A target is `host:port`, `tcp://host:port` or `[ipv6]:port`. Each attempt tries every target
/// that has not accepted yet, all at once; a host name is resolved again on every attempt (a
/// Kubernetes service may get its address late, or a new one), except that a successful lookup
/// is reused for up to a second while the port is polled quickly, so that polling does not
/// flood the cluster DNS. Every address a name resolves to is tried at once: the first that
/// accepts makes the target ready. A connection that is
/// accepted is closed at once; nothing is sent.
///
/// A target that accepted once counts as ready for the rest of the step, so a database is not
/// sent a connection every few milliseconds while another target is still down. When every
/// target is ready the step succeeds and forgets them, so running the same step again checks
/// everything again.
///
/// # Cadence and errors
///
/// Failures are transient: the executor tries again, and the error names the pending target and
/// why (`postgres:5432: connection refused`).
///
/// - When every pending target was resolved and refused the connection (or reset it), the next
///   attempt comes at the wait cadence ([`StepError::with_wait_cadence`]: every 10 ms at
///   first, growing with the time waited to 100 ms): a port that opens is noticed within
///   milliseconds to tens of milliseconds.
/// - A name that does not resolve (yet), an address that is unreachable, or a connection that
///   times out waits for the policy's backoff instead ([`Retry::wait`](init_core::Retry::wait):
///   100 ms growing to about 1 s), so that a thousand replicas do not flood the cluster DNS.
///
/// Targets in one `TcpWait` share that cadence; to poll one quickly while another backs off,
/// put them in separate steps of a [`Plan::concurrently`](init_core::Plan::concurrently) group.
///
/// # Default
///
/// Policy: [`Policy::wait`] (no attempt limit, 5 s attempt timeout: bound the wait with
/// [`StepExt::timeout`](init_core::StepExt::timeout) or the plan's deadline). Connect timeout
/// per address: 3 s, shorter than the attempt timeout so that the error says which target did
/// not answer. Name: `tcp ` followed by the targets, e.g. `tcp postgres:5432`.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use init_core::prelude::*;
/// use init_steps::tcp::TcpWait;
///
/// fn main() -> std::process::ExitCode {
///     Plan::new("orders-init")
///         .concurrently([
///             TcpWait::new("postgres:5432").boxed(),
///             TcpWait::new("tcp://redis:6379").timeout(Duration::from_secs(60)).boxed(),
///         ])
///         .run_main()
/// }
/// ```
#[derive(Debug)]
pub struct TcpWait {
    name: String,
    targets: Vec<Target>,
    connect_timeout: Duration,
    /// `ready[i]`: target `i` accepted during the current run of the step.
    ready: Mutex<Vec<bool>>,
    /// Each target's last successful lookup.
    resolved: Lookups,
}

impl TcpWait {
    /// Waits for one target: `host:port`, `tcp://host:port` or `[ipv6]:port`.
    ///
    /// The target is checked by [`validate`](Step::validate), before the plan runs.
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::tcp::TcpWait;
    ///
    /// let wait = TcpWait::new("tcp://postgres:5432");
    /// assert_eq!(wait.name(), "tcp postgres:5432");
    /// assert!(wait.validate(&init_core::ValidateContext::process()).is_ok());
    /// assert!(TcpWait::new("postgres").validate(&init_core::ValidateContext::process()).unwrap_err().is_invalid());
    /// ```
    pub fn new(target: impl Into<String>) -> Self {
        Self::all([target])
    }

    /// Waits until every one of `targets` accepts; they are tried at once.
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::tcp::TcpWait;
    ///
    /// let wait = TcpWait::all(["postgres:5432", "[::1]:6379"]);
    /// assert_eq!(wait.name(), "tcp postgres:5432 [::1]:6379");
    /// ```
    pub fn all<I, S>(targets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let targets: Vec<Target> = targets
            .into_iter()
            .map(|t| Target::parse(t.into()))
            .collect();
        let name = std::iter::once("tcp")
            .chain(targets.iter().map(Target::display))
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            name,
            ready: Mutex::new(vec![false; targets.len()]),
            resolved: Lookups::new(targets.len()),
            targets,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Bounds one connection attempt to one address (3 s by default). A connection that takes
    /// longer counts as a transient failure, on the policy's backoff. Keep it below the
    /// policy's attempt timeout, or the attempt is cut before the error can name the target.
    ///
    /// ```
    /// use std::time::Duration;
    /// use init_core::{Step, ValidateContext};
    /// use init_steps::tcp::TcpWait;
    ///
    /// let wait = TcpWait::new("postgres:5432").connect_timeout(Duration::from_secs(1));
    /// assert!(wait.validate(&ValidateContext::process()).is_ok());
    /// let zero = TcpWait::new("postgres:5432").connect_timeout(Duration::ZERO);
    /// assert!(zero.validate(&ValidateContext::process()).unwrap_err().is_invalid());
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    fn addresses(&self) -> Result<Vec<&Address>, StepError> {
        self.targets
            .iter()
            .map(|t| {
                t.address
                    .as_ref()
                    .map_err(|expected| StepError::invalid(t.describe_error(expected)))
            })
            .collect()
    }

    fn mark_ready(&self, index: usize) {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)[index] = true;
    }
}

#[async_trait]
impl Step for TcpWait {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        if self.targets.is_empty() {
            return Err(StepError::invalid(
                "tcp wait: expected at least one host:port target",
            ));
        }
        self.addresses()?;
        if self.connect_timeout.is_zero() {
            return Err(StepError::invalid(format!(
                "{}: connect timeout 0s: expected a duration greater than zero",
                self.name
            )));
        }
        Ok(())
    }

    fn policy(&self) -> Policy {
        Policy::wait()
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        let addresses = self.addresses()?;
        let pending: Vec<usize> = {
            let ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
            (0..addresses.len()).filter(|&i| !ready[i]).collect()
        };
        let mut checks: FuturesUnordered<_> = pending
            .into_iter()
            .map(|i| {
                let address = addresses[i];
                async move {
                    let result = match self.resolved.resolve(i, address).await {
                        Ok(addrs) => {
                            connect_any(&address.display, &addrs, self.connect_timeout).await
                        }
                        Err(failure) => Err(failure),
                    };
                    (i, result)
                }
            })
            .collect();
        let mut failures = Vec::new();
        // Each target is marked as soon as it accepts, so an attempt cut short by its timeout
        // still keeps what it learned.
        while let Some((i, result)) = checks.next().await {
            match result {
                Ok(()) => self.mark_ready(i),
                Err(failure) => failures.push((i, failure)),
            }
        }
        if failures.is_empty() {
            self.ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .fill(false);
            self.resolved.forget();
            return Ok(());
        }
        failures.sort_by_key(|(i, _)| *i);
        Err(combine(failures.into_iter().map(|(_, f)| f).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::resolve::RESOLVE_REUSE;
    use tokio::time::Instant;

    #[test]
    fn the_connect_timeout_is_three_seconds_by_default() {
        assert_eq!(
            TcpWait::new("postgres:5432").connect_timeout,
            Duration::from_secs(3)
        );
    }

    fn lookup_time(wait: &TcpWait) -> Option<Instant> {
        wait.resolved.looked_up_at(0)
    }

    // The paused clock: the lookup's age is tokio time, so the sleep past the reuse window is
    // instant and exact.
    #[tokio::test(start_paused = true)]
    async fn a_lookup_is_reused_for_a_second_while_the_port_refuses() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let wait = TcpWait::new(format!("localhost:{port}"));
        let ctx = Context::new();
        let refused = format!("localhost:{port}: connection refused");

        let err = wait.run(&ctx).await.unwrap_err();
        assert_eq!(err.to_string(), refused);
        assert!(err.at_wait_cadence());
        let first = lookup_time(&wait).expect("the lookup is remembered");
        assert_eq!(wait.run(&ctx).await.unwrap_err().to_string(), refused);
        assert_eq!(
            lookup_time(&wait),
            Some(first),
            "looked up again within a second"
        );

        tokio::time::sleep(RESOLVE_REUSE + Duration::from_millis(100)).await;
        assert_eq!(wait.run(&ctx).await.unwrap_err().to_string(), refused);
        assert!(
            lookup_time(&wait).unwrap() > first,
            "a lookup older than a second is repeated"
        );

        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert!(wait.run(&ctx).await.is_ok());
        assert_eq!(lookup_time(&wait), None, "success forgets the lookup");
        drop(listener);
    }
}
