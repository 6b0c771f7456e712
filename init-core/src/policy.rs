//! Policies: how often a step is retried, how long it may take, and what its failure means.

use std::fmt;
use std::time::Duration;

use backon::BackoffBuilder;

use crate::duration::{EXPECTED, MAX_DURATION};

/// Retry with exponential backoff and jitter.
///
/// The delay before attempt `n + 1` is `initial_delay * multiplier^(n - 1)`, capped at
/// `max_delay`; with jitter, a random part in `[0, delay)` is added (so each delay lies in
/// `[delay, 2 * delay)`), which spreads a thousand replicas apart. The delays come from
/// [`backon`]. A server's hint ([`StepError::with_retry_after`](crate::StepError::with_retry_after))
/// can lengthen a delay, never shorten it; a wait's poll hint
/// ([`StepError::with_poll_after`](crate::StepError::with_poll_after), at least 10 ms) replaces
/// it. The time left of the step's timeout caps every delay either way. Every delay is at most
/// [`MAX_DURATION`] (365 days), checked by [`validate`](Self::validate).
///
/// # Default
///
/// [`Retry::new`] (also `Default`): initial delay 200 ms, max delay 10 s, multiplier 2, jitter on,
/// at most 5 attempts. [`Retry::wait`], for readiness waits: initial delay 100 ms, max delay 1 s,
/// multiplier 2, jitter on, no attempt limit (bound it with a timeout).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use init_core::Retry;
///
/// let retry = Retry::new()
///     .with_initial_delay(Duration::from_millis(100))
///     .with_max_delay(Duration::from_secs(2))
///     .with_max_attempts(4)
///     .without_jitter();
/// let delays: Vec<_> = retry.delays().collect();
/// assert_eq!(delays, [100, 200, 400].map(Duration::from_millis));
/// ```
#[derive(Clone, Copy, PartialEq)]
pub struct Retry {
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f32,
    jitter: bool,
    jitter_seed: Option<u64>,
    max_attempts: Option<u32>,
}

impl Retry {
    /// The default retry for steps that do work: 200 ms to 10 s, ×2, jitter, 5 attempts.
    ///
    /// ```
    /// assert_eq!(init_core::Retry::new().max_attempts(), Some(5));
    /// ```
    pub const fn new() -> Self {
        Self {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: true,
            jitter_seed: None,
            max_attempts: Some(5),
        }
    }

    /// The default retry for readiness waits: 100 ms to 1 s, ×2, jitter, no attempt limit.
    ///
    /// ```
    /// assert_eq!(init_core::Retry::wait().max_attempts(), None);
    /// ```
    pub const fn wait() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: true,
            jitter_seed: None,
            max_attempts: None,
        }
    }

    /// One attempt, no retry.
    ///
    /// ```
    /// assert_eq!(init_core::Retry::never().delays().count(), 0);
    /// ```
    pub const fn never() -> Self {
        Self::new().with_max_attempts(1)
    }

    /// The delay before the second attempt.
    ///
    /// ```
    /// use std::time::Duration;
    /// let retry = init_core::Retry::new().with_initial_delay(Duration::from_secs(1));
    /// assert_eq!(retry.initial_delay(), Duration::from_secs(1));
    /// ```
    #[must_use]
    pub const fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The longest delay between two attempts (before jitter).
    ///
    /// ```
    /// use std::time::Duration;
    /// let retry = init_core::Retry::new().with_max_delay(Duration::from_secs(30));
    /// assert_eq!(retry.max_delay(), Duration::from_secs(30));
    /// ```
    #[must_use]
    pub const fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// How much each delay grows; at least 1 (1 keeps the delay constant).
    ///
    /// ```
    /// let retry = init_core::Retry::new().with_multiplier(1.5);
    /// assert_eq!(retry.multiplier(), 1.5);
    /// ```
    #[must_use]
    pub const fn with_multiplier(mut self, multiplier: f32) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// At most `attempts` attempts in all (the first one included); at least 1.
    ///
    /// ```
    /// assert_eq!(init_core::Retry::new().with_max_attempts(3).max_attempts(), Some(3));
    /// ```
    #[must_use]
    pub const fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// No attempt limit: retry until the step's timeout or the plan's deadline.
    ///
    /// ```
    /// assert_eq!(init_core::Retry::new().without_max_attempts().max_attempts(), None);
    /// ```
    #[must_use]
    pub const fn without_max_attempts(mut self) -> Self {
        self.max_attempts = None;
        self
    }

    /// Exact delays, no random part.
    ///
    /// ```
    /// assert!(!init_core::Retry::new().without_jitter().has_jitter());
    /// ```
    #[must_use]
    pub const fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// Jitter from a seeded generator, for reproducible delays (tests).
    ///
    /// ```
    /// let retry = init_core::Retry::new().with_jitter_seed(7);
    /// let a: Vec<_> = retry.delays().collect();
    /// let b: Vec<_> = retry.delays().collect();
    /// assert_eq!(a, b);
    /// ```
    #[must_use]
    pub const fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter = true;
        self.jitter_seed = Some(seed);
        self
    }

    /// The delay before the second attempt.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(init_core::Retry::new().initial_delay(), Duration::from_millis(200));
    /// ```
    pub const fn initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// The longest delay before jitter.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(init_core::Retry::new().max_delay(), Duration::from_secs(10));
    /// ```
    pub const fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// How much each delay grows.
    ///
    /// ```
    /// assert_eq!(init_core::Retry::new().multiplier(), 2.0);
    /// ```
    pub const fn multiplier(&self) -> f32 {
        self.multiplier
    }

    /// The attempt limit, if any.
    ///
    /// ```
    /// assert_eq!(init_core::Retry::never().max_attempts(), Some(1));
    /// ```
    pub const fn max_attempts(&self) -> Option<u32> {
        self.max_attempts
    }

    /// Whether a random part is added to each delay.
    ///
    /// ```
    /// assert!(init_core::Retry::new().has_jitter());
    /// ```
    pub const fn has_jitter(&self) -> bool {
        self.jitter
    }

    /// The delays between attempts, in order: one fewer than the attempt limit, or endless,
    /// rounded to whole microseconds.
    ///
    /// # Panics
    ///
    /// Never for a retry that passed [`validate`](Self::validate); the executor validates every
    /// policy before it runs anything.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let retry = init_core::Retry::new().without_jitter();
    /// assert_eq!(retry.delays().count(), 4);
    /// assert_eq!(retry.delays().next(), Some(Duration::from_millis(200)));
    /// ```
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        let mut builder = backon::ExponentialBuilder::new()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_factor(self.multiplier);
        builder = match self.max_attempts {
            Some(n) => builder.with_max_times(n.saturating_sub(1) as usize),
            None => builder.without_max_times(),
        };
        if self.jitter {
            builder = builder.with_jitter();
            if let Some(seed) = self.jitter_seed {
                builder = builder.with_jitter_seed(seed);
            }
        }
        // backon computes in f32; round to whole microseconds so 200ms stays 200ms.
        builder
            .build()
            .map(|d| Duration::from_micros((d.as_secs_f64() * 1e6).round() as u64))
    }

    /// Checks the settings: an error names the field, the value and what is expected.
    ///
    /// # Errors
    ///
    /// A multiplier below 1 (or not a number), a zero initial delay, a delay above
    /// [`MAX_DURATION`](crate::MAX_DURATION) (365 days), a max delay below the initial delay,
    /// or a zero attempt limit.
    ///
    /// ```
    /// let err = init_core::Retry::new().with_multiplier(0.0).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid policy: multiplier = 0: expected a number of at least 1");
    /// ```
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(PolicyError::new(
                "multiplier",
                self.multiplier,
                "a number of at least 1",
            ));
        }
        if self.initial_delay.is_zero() {
            return Err(PolicyError::new(
                "initial_delay",
                "0s",
                "a delay greater than zero",
            ));
        }
        for (field, value) in [
            ("initial_delay", self.initial_delay),
            ("max_delay", self.max_delay),
        ] {
            if value > MAX_DURATION {
                return Err(PolicyError::new(field, format!("{value:?}"), EXPECTED));
            }
        }
        if self.max_delay < self.initial_delay {
            return Err(PolicyError::new(
                "max_delay",
                format!("{:?}", self.max_delay),
                "a delay of at least initial_delay",
            )
            .with_detail(format!("initial_delay = {:?}", self.initial_delay)));
        }
        if self.max_attempts == Some(0) {
            return Err(PolicyError::new("max_attempts", 0, "at least 1"));
        }
        Ok(())
    }
}

impl Default for Retry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("initial_delay", &self.initial_delay)
            .field("max_delay", &self.max_delay)
            .field("multiplier", &self.multiplier)
            .field("jitter", &self.jitter)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// What a step's failure means for the plan.
///
/// ```
/// assert_eq!(init_core::OnFailure::default(), init_core::OnFailure::Abort);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// The plan stops and fails (the default).
    #[default]
    Abort,
    /// An optional step: reported as failed, and the plan goes on.
    Continue,
}

/// Everything the executor applies around a step: retry, timeouts, failure handling and
/// run-once markers. The same for built-in, macro-made and hand-written steps.
///
/// # Default
///
/// [`Retry::new`], no attempt timeout, no step timeout, [`OnFailure::Abort`], not `once`.
/// Readiness waits start from [`Policy::wait`] instead ([`Retry::wait`], attempt timeout 5 s).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use init_core::{OnFailure, Policy, Retry};
///
/// let policy = Policy::new()
///     .with_retry(Retry::new().with_max_attempts(3))
///     .with_attempt_timeout(Duration::from_secs(5))
///     .with_timeout(Duration::from_secs(60))
///     .with_on_failure(OnFailure::Continue)
///     .with_once(true);
/// assert!(policy.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    retry: Retry,
    attempt_timeout: Option<Duration>,
    timeout: Option<Duration>,
    on_failure: OnFailure,
    once: bool,
}

impl Policy {
    /// The default policy for steps that do work (see `# Default`).
    ///
    /// ```
    /// assert_eq!(init_core::Policy::new().timeout(), None);
    /// ```
    pub const fn new() -> Self {
        Self {
            retry: Retry::new(),
            attempt_timeout: None,
            timeout: None,
            on_failure: OnFailure::Abort,
            once: false,
        }
    }

    /// The default policy for readiness waits: [`Retry::wait`] and a 5 s attempt timeout.
    ///
    /// ```
    /// assert_eq!(init_core::Policy::wait().retry().max_attempts(), None);
    /// ```
    pub const fn wait() -> Self {
        Self {
            retry: Retry::wait(),
            attempt_timeout: Some(Duration::from_secs(5)),
            timeout: None,
            on_failure: OnFailure::Abort,
            once: false,
        }
    }

    /// Sets the retry.
    ///
    /// ```
    /// let p = init_core::Policy::new().with_retry(init_core::Retry::never());
    /// assert_eq!(p.retry().max_attempts(), Some(1));
    /// ```
    #[must_use]
    pub const fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Bounds one attempt; an attempt that runs out counts as a transient failure.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let p = init_core::Policy::new().with_attempt_timeout(Duration::from_secs(2));
    /// assert_eq!(p.attempt_timeout(), Some(Duration::from_secs(2)));
    /// ```
    #[must_use]
    pub const fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// No bound on one attempt (other than the step's timeout).
    ///
    /// ```
    /// assert_eq!(init_core::Policy::wait().without_attempt_timeout().attempt_timeout(), None);
    /// ```
    #[must_use]
    pub const fn without_attempt_timeout(mut self) -> Self {
        self.attempt_timeout = None;
        self
    }

    /// Bounds the whole step, attempts and sleeps together. The time left caps every attempt
    /// and every sleep; when the next sleep would pass the deadline, the step sleeps until the
    /// deadline and makes one last attempt there.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let p = init_core::Policy::new().with_timeout(Duration::from_secs(30));
    /// assert_eq!(p.timeout(), Some(Duration::from_secs(30)));
    /// ```
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// What a failure means: abort the plan (default) or continue.
    ///
    /// ```
    /// use init_core::{OnFailure, Policy};
    /// assert_eq!(Policy::new().with_on_failure(OnFailure::Continue).on_failure(), OnFailure::Continue);
    /// ```
    #[must_use]
    pub const fn with_on_failure(mut self, on_failure: OnFailure) -> Self {
        self.on_failure = on_failure;
        self
    }

    /// With `true`, a step that succeeded once records a marker in the plan's state directory
    /// and is skipped on a rerun (see [`Plan::with_state_dir`](crate::Plan::with_state_dir)).
    ///
    /// ```
    /// assert!(init_core::Policy::new().with_once(true).once());
    /// ```
    #[must_use]
    pub const fn with_once(mut self, once: bool) -> Self {
        self.once = once;
        self
    }

    /// The retry.
    ///
    /// ```
    /// assert_eq!(init_core::Policy::new().retry(), init_core::Retry::new());
    /// ```
    pub const fn retry(&self) -> Retry {
        self.retry
    }

    /// The bound on one attempt.
    ///
    /// ```
    /// assert_eq!(init_core::Policy::new().attempt_timeout(), None);
    /// ```
    pub const fn attempt_timeout(&self) -> Option<Duration> {
        self.attempt_timeout
    }

    /// The bound on the whole step.
    ///
    /// ```
    /// assert_eq!(init_core::Policy::wait().timeout(), None);
    /// ```
    pub const fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// What a failure means.
    ///
    /// ```
    /// assert_eq!(init_core::Policy::new().on_failure(), init_core::OnFailure::Abort);
    /// ```
    pub const fn on_failure(&self) -> OnFailure {
        self.on_failure
    }

    /// Whether the step runs only once across reruns.
    ///
    /// ```
    /// assert!(!init_core::Policy::new().once());
    /// ```
    pub const fn once(&self) -> bool {
        self.once
    }

    /// Checks the retry and the timeouts.
    ///
    /// # Errors
    ///
    /// Anything [`Retry::validate`] refuses, and a timeout or attempt timeout that is zero or
    /// above [`MAX_DURATION`](crate::MAX_DURATION) (365 days).
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = init_core::Policy::new().with_timeout(Duration::ZERO).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid policy: timeout = 0s: expected a duration greater than zero");
    /// ```
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.retry.validate()?;
        for (field, value) in [
            ("attempt_timeout", self.attempt_timeout),
            ("timeout", self.timeout),
        ] {
            match value {
                Some(Duration::ZERO) => {
                    return Err(PolicyError::new(
                        field,
                        "0s",
                        "a duration greater than zero",
                    ));
                }
                Some(value) if value > MAX_DURATION => {
                    return Err(PolicyError::new(field, format!("{value:?}"), EXPECTED));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::new()
    }
}

/// A policy setting that cannot work, naming the field, the value and what was expected.
///
/// ```
/// let err = init_core::Retry::new().with_max_attempts(0).validate().unwrap_err();
/// assert_eq!(err.field(), "max_attempts");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy: {field} = {value}: expected {expected}{detail}")]
pub struct PolicyError {
    field: &'static str,
    value: String,
    expected: &'static str,
    detail: String,
}

impl PolicyError {
    fn new(field: &'static str, value: impl fmt::Display, expected: &'static str) -> Self {
        Self {
            field,
            value: value.to_string(),
            expected,
            detail: String::new(),
        }
    }

    fn with_detail(mut self, detail: String) -> Self {
        self.detail = format!(" ({detail})");
        self
    }

    /// The name of the field that is wrong.
    ///
    /// ```
    /// let err = init_core::Retry::new().with_multiplier(-1.0).validate().unwrap_err();
    /// assert_eq!(err.field(), "multiplier");
    /// ```
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The value that was refused, as text.
    ///
    /// ```
    /// let err = init_core::Retry::new().with_multiplier(-1.0).validate().unwrap_err();
    /// assert_eq!(err.value(), "-1");
    /// ```
    pub fn value(&self) -> &str {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_the_multiplier_up_to_the_max() {
        let retry = Retry::new()
            .with_initial_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_millis(500))
            .with_max_attempts(6)
            .without_jitter();
        let delays: Vec<_> = retry.delays().collect();
        assert_eq!(delays, [100, 200, 400, 500, 500].map(Duration::from_millis));
    }

    #[test]
    fn jittered_delays_stay_within_one_to_two_times_the_base() {
        let base = Retry::new()
            .with_initial_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(1))
            .without_max_attempts()
            .without_jitter();
        for seed in 0..50 {
            let jittered = base.with_jitter_seed(seed);
            for (plain, jit) in base.delays().zip(jittered.delays()).take(8) {
                assert!(
                    jit >= plain && jit < plain * 2,
                    "seed {seed}: {jit:?} vs {plain:?}"
                );
            }
        }
    }

    #[test]
    fn without_max_attempts_is_endless() {
        assert_eq!(Retry::wait().delays().take(1000).count(), 1000);
    }

    #[test]
    fn refuses_bad_settings_naming_field_and_value() {
        let cases = [
            (Retry::new().with_multiplier(0.0), "multiplier = 0"),
            (Retry::new().with_multiplier(-2.0), "multiplier = -2"),
            (Retry::new().with_multiplier(f32::NAN), "multiplier = NaN"),
            (
                Retry::new().with_initial_delay(Duration::ZERO),
                "initial_delay = 0s",
            ),
            (
                Retry::new().with_max_delay(Duration::from_millis(10)),
                "max_delay = 10ms: expected a delay of at least initial_delay (initial_delay = 200ms)",
            ),
            (Retry::new().with_max_attempts(0), "max_attempts = 0"),
        ];
        for (retry, expected) in cases {
            let message = retry.validate().unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
        let err = Policy::new()
            .with_attempt_timeout(Duration::ZERO)
            .validate()
            .unwrap_err();
        assert_eq!(err.field(), "attempt_timeout");
    }

    #[test]
    fn durations_above_the_bound_are_refused_naming_the_field() {
        let huge = Duration::from_secs(u64::MAX);
        let just_over = MAX_DURATION + Duration::from_nanos(1);
        let retries = [
            (Retry::new().with_max_delay(huge), "max_delay"),
            (
                Retry::new()
                    .with_initial_delay(just_over)
                    .with_max_delay(huge),
                "initial_delay",
            ),
        ];
        for (retry, field) in retries {
            let err = retry.validate().unwrap_err();
            assert_eq!(err.field(), field);
            assert!(
                err.to_string()
                    .ends_with("expected a duration of at most 365 days"),
                "{err}"
            );
        }
        let policies = [
            (Policy::new().with_timeout(Duration::MAX), "timeout"),
            (
                Policy::new().with_attempt_timeout(just_over),
                "attempt_timeout",
            ),
        ];
        for (policy, field) in policies {
            assert_eq!(policy.validate().unwrap_err().field(), field);
        }
        let at_the_bound = Policy::new()
            .with_timeout(MAX_DURATION)
            .with_attempt_timeout(MAX_DURATION)
            .with_retry(Retry::new().with_max_delay(MAX_DURATION));
        assert!(at_the_bound.validate().is_ok());
    }
}
