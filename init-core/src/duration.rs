//! The bound on every duration a user gives (timeouts, the plan deadline, retry delays, grace
//! periods), so that adding one to the clock can never overflow.

use std::time::Duration;

use crate::error::StepError;

/// The longest timeout, deadline, retry delay or grace period initkit accepts: 365 days.
///
/// `Instant + Duration` panics when the sum overflows, and tokio's timer cannot sleep past
/// about two years; a bound well inside both keeps every deadline exact and every addition
/// safe. An init container that should wait longer than a year wants no bound at all: leave
/// the setting unset. [`Plan::validate`](crate::Plan::validate) refuses a larger value (exit
/// code 2), naming the setting; steps check theirs with [`check_duration`].
///
/// ```
/// use std::time::Duration;
/// assert_eq!(init_core::MAX_DURATION, Duration::from_secs(365 * 24 * 60 * 60));
/// ```
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// What the error messages say is expected of a duration.
pub(crate) const EXPECTED: &str = "a duration of at most 365 days";

/// Checks a duration a user gave for `setting`, for a step's
/// [`validate`](crate::Step::validate): at most [`MAX_DURATION`].
///
/// # Errors
///
/// An [invalid](StepError::invalid) error naming the setting, the value and the bound.
///
/// ```
/// use std::time::Duration;
/// use init_core::check_duration;
///
/// assert!(check_duration("kill_grace", Duration::from_secs(5)).is_ok());
/// let err = check_duration("kill_grace", Duration::MAX).unwrap_err();
/// assert!(err.is_invalid());
/// assert_eq!(
///     err.to_string(),
///     "kill_grace = 18446744073709551615.999999999s: expected a duration of at most 365 days"
/// );
/// ```
pub fn check_duration(setting: &str, value: Duration) -> Result<(), StepError> {
    if value > MAX_DURATION {
        Err(StepError::invalid(format!(
            "{setting} = {value:?}: expected {EXPECTED}"
        )))
    } else {
        Ok(())
    }
}
