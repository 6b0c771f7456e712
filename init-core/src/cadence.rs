//! The wait cadence: how soon a readiness wait polls again after a failure that is cheap to
//! retry (a refused connection, a server that is starting up or has too many connections).
//! One schedule for every wait, TCP, HTTP and the databases alike, applied by the executor to
//! an error marked [`StepError::with_wait_cadence`](crate::StepError::with_wait_cadence).
//!
//! The schedule trades how soon a server that comes up is noticed against the CPU a long wait
//! costs. Each poll costs a connection attempt and an executor round (about 0.1 ms of CPU in a
//! gVisor sandbox, where every system call is dear): polling every 10 ms costs ~13 ms of CPU
//! per second waited, every 25 ms about 5. Servers started together with their clients
//! usually come up within the first seconds, so the first [`FAST_FOR`] polls every [`FAST`]
//! (noticed within ~5 ms on average); after that every [`STEADY`] (within ~13 ms on average,
//! 25 ms at worst) for a fraction of the CPU.

use std::time::Duration;

/// The poll interval at the start of a step.
pub(crate) const FAST: Duration = Duration::from_millis(10);

/// How long a step polls every [`FAST`], counted from its first attempt.
pub(crate) const FAST_FOR: Duration = Duration::from_secs(1);

/// The poll interval once [`FAST_FOR`] has passed.
pub(crate) const STEADY: Duration = Duration::from_millis(25);

/// The wait before the next poll of a step that started `waited` ago.
pub(crate) fn next_poll(waited: Duration) -> Duration {
    if waited < FAST_FOR { FAST } else { STEADY }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_fast_for_the_first_second_then_steadily() {
        assert_eq!(next_poll(Duration::ZERO), FAST);
        assert_eq!(next_poll(FAST_FOR - Duration::from_millis(1)), FAST);
        assert_eq!(next_poll(FAST_FOR), STEADY);
        assert_eq!(next_poll(Duration::from_secs(3600)), STEADY);
    }
}
