//! The wait cadence: how soon a readiness wait polls again after a failure that is cheap to
//! retry (a refused connection, a server that is starting up or has too many connections).
//! One schedule for every wait, TCP, HTTP and the databases alike, applied by the executor to
//! an error marked [`StepError::with_wait_cadence`](crate::StepError::with_wait_cadence).
//!
//! The schedule trades how soon a server that comes up is noticed against the CPU a long wait
//! burns. Each poll is a connection attempt plus a wake-up of the process: in a gVisor sandbox
//! (where these figures were measured) 0.16 ms of CPU when polling every 10 ms, 0.25 ms or
//! more at longer intervals (an idle process wakes up dearer), so a flat 10 ms cadence costs
//! ~13 ms of CPU per second waited and a flat 25 ms one ~10. The interval therefore grows with
//! the time already waited: 4 % of it ([`SHARE`]), never less than [`FASTEST`] nor more than
//! [`SLOWEST`]. A server started together with its clients (the common case: a pod, a compose
//! file) comes up within the first second and is noticed within 10 to 40 ms of it, ~8 ms in
//! the median; a server that has been down for seconds is polled every 100 ms (as
//! wait-for-them does throughout), and a 10 s wait makes 161 attempts instead of ~900 (under 5
//! ms of CPU per second waited instead of 13; `scripts/measure-wait-for.sh`).

use std::time::Duration;

/// The shortest poll interval, at the start of a step.
pub(crate) const FASTEST: Duration = Duration::from_millis(10);

/// The longest poll interval, reached after two and a half seconds of waiting.
pub(crate) const SLOWEST: Duration = Duration::from_millis(100);

/// The interval is the time waited divided by this (4 %).
pub(crate) const SHARE: u64 = 25;

/// The wait before the next poll of a step that started `waited` ago (whole milliseconds, as
/// tokio's timer counts).
pub(crate) fn next_poll(waited: Duration) -> Duration {
    let share = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX) / SHARE;
    Duration::from_millis(share).clamp(FASTEST, SLOWEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_interval_is_four_percent_of_the_time_waited_between_10_and_100_ms() {
        assert_eq!(next_poll(Duration::ZERO), ms(10));
        assert_eq!(next_poll(ms(260)), ms(10));
        assert_eq!(next_poll(ms(500)), ms(20));
        assert_eq!(next_poll(ms(1_000)), ms(40));
        assert_eq!(next_poll(ms(2_000)), ms(80));
        assert_eq!(next_poll(ms(2_500)), ms(100));
        assert_eq!(next_poll(Duration::from_secs(3_600)), ms(100));
        assert_eq!(next_poll(Duration::MAX), ms(100));
    }
}
