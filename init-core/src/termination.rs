//! The termination message: the one line `kubectl describe pod` shows for the run.

use crate::redact::Redactor;
use crate::report::Report;
use crate::text::truncate_utf8;

/// Kubernetes keeps at most 4096 bytes of a termination message.
const TERMINATION_MESSAGE_MAX: usize = 4096;

/// The one line Kubernetes shows in `kubectl describe pod` for this run: why it failed (or that
/// it succeeded), on one line, at most 4096 bytes (cut at a character boundary). It is made from
/// the [redacted](Report::redacted) report, so names and errors are masked while the counts and
/// times initkit writes around them never are.
///
/// ```
/// use init_core::{Outcome, Redactor, Report, StepReport, StepStatus};
///
/// let mut report = Report::new("orders-init");
/// report.outcome = Outcome::Failed;
/// let mut step = StepReport::new("vault-db", StepStatus::Failed);
/// step.attempts = 1;
/// step.error = Some("secret/orders/db: permission denied (403)".into());
/// report.steps.push(step);
/// let line = init_core::termination_message(&report, &Redactor::new());
/// assert_eq!(line, "step \"vault-db\" failed after 1 attempt in 0.0s: secret/orders/db: permission denied (403)");
/// ```
pub fn termination_message(report: &Report, redactor: &Redactor) -> String {
    let report = report.redacted(redactor);
    let line = match report.failure_line() {
        Some(line) => line,
        None => format!(
            "plan \"{}\" succeeded: {} steps in {:.1}s",
            report.plan,
            report.steps.len(),
            report.elapsed.as_secs_f64()
        ),
    };
    one_line(&line)
}

/// `text` on one line (line breaks become spaces), at most 4096 bytes.
pub(crate) fn one_line(text: &str) -> String {
    truncate_utf8(&text.replace(['\n', '\r'], " "), TERMINATION_MESSAGE_MAX).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_termination_line_is_cut_at_a_character_boundary() {
        let text = "é".repeat(3000); // 6000 bytes
        let cut = one_line(&text);
        assert!(cut.len() <= TERMINATION_MESSAGE_MAX);
        assert_eq!(cut.len(), 4096);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
