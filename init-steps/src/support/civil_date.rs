//! Calendar dates from Unix time (proleptic Gregorian, UTC), for the names and log fields that
//! show a moment as a date: the atomic set's timestamped directories, a certificate's expiry.

/// The UTC date and time of day of `unix` seconds: `(year, month, day, hour, minute, second)`.
pub(crate) fn civil_from_unix(unix: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = unix.div_euclid(86_400);
    let tod = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, tod / 3600, tod % 3600 / 60, tod % 60)
}
