//! Progress of a long transfer, logged at a steady cadence (every [`EVERY`] of wall time,
//! never per chunk): bytes so far, the percentage and the time left when the length is known,
//! and the rate. An init container's log is all a user sees while a large artifact arrives.

use std::time::Duration;

use tokio::time::Instant;

/// How often a progress line is logged.
pub(crate) const EVERY: Duration = Duration::from_secs(5);

/// Counts the bytes of one transfer and says when a progress line is due.
#[derive(Debug)]
pub(crate) struct Progress {
    /// The length announced, when there is one.
    length: Option<u64>,
    bytes: u64,
    started: Instant,
    next: Instant,
}

impl Progress {
    /// Starts counting now, for a transfer of `length` bytes when known.
    pub(crate) fn new(length: Option<u64>) -> Self {
        let started = Instant::now();
        Self {
            length,
            bytes: 0,
            started,
            next: started + EVERY,
        }
    }

    /// When the next line is due (a transfer that stalls still logs then).
    pub(crate) fn next_report(&self) -> Instant {
        self.next
    }

    /// Counts `bytes` more; logs a line about `what` if one is due.
    pub(crate) fn advance(&mut self, bytes: u64, what: &str) {
        self.bytes += bytes;
        if Instant::now() >= self.next {
            self.report(what);
        }
    }

    /// Logs a line about `what` now, and schedules the next one [`EVERY`] later.
    pub(crate) fn report(&mut self, what: &str) {
        let now = Instant::now();
        self.next = now + EVERY;
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let rate = if elapsed > 0.0 {
            self.bytes as f64 / elapsed
        } else {
            0.0
        };
        let mut summary = format!("{} received", human_bytes(self.bytes as f64));
        let (mut percent, mut eta_s) = (None, None);
        if let Some(length) = self.length.filter(|&l| l > 0) {
            let pct = (self.bytes.min(length) * 100 / length).min(100);
            percent = Some(pct);
            summary = format!(
                "{} of {} ({pct}%)",
                human_bytes(self.bytes as f64),
                human_bytes(length as f64)
            );
            if rate > 0.0 {
                let left = (length.saturating_sub(self.bytes) as f64 / rate).ceil() as u64;
                eta_s = Some(left);
            }
        }
        summary.push_str(&format!(", {}/s", human_bytes(rate)));
        if let Some(left) = eta_s {
            summary.push_str(&format!(", about {} left", human_duration(left)));
        }
        tracing::info!(
            target: "initkit::progress",
            url = %what,
            bytes = self.bytes,
            total_bytes = self.length,
            percent,
            rate_bytes_per_s = rate.round() as u64,
            eta_s,
            "downloading: {summary}"
        );
    }
}

/// `1536.0` → `1.5 KiB`.
fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `125` → `2m05s`.
fn human_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_a_person_would_write_them() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(512.0 * 1024.0 * 1024.0), "512.0 MiB");
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(125), "2m05s");
        assert_eq!(human_duration(7260), "2h01m");
    }
}
