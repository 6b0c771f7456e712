//! The run report: the plan's outcome and, per step, status, attempts, elapsed time and the
//! redacted error. Serializes to JSON.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::redact::Redactor;

/// How a step ended.
///
/// ```
/// assert_eq!(serde_json::to_string(&init_core::StepStatus::Skipped).unwrap(), "\"skipped\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// An attempt succeeded.
    Succeeded,
    /// A permanent error, the attempts ran out, or the step's time ran out.
    Failed,
    /// Not run: its `once` marker says it already succeeded, or an earlier step aborted the plan.
    Skipped,
    /// Stopped by a signal, the plan deadline, or a failed sibling in its group.
    Cancelled,
}

/// How the plan ended, which decides the exit code.
///
/// ```
/// use init_core::Outcome;
/// assert_eq!(Outcome::TimedOut.exit_code(), 124);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step succeeded or was skipped (optional failures included). Exit 0.
    Succeeded,
    /// A step failed: a permanent error or its attempts ran out. Exit 1.
    Failed,
    /// Validation refused the plan before anything ran. Exit 2.
    Invalid,
    /// A step's timeout or the plan deadline ran out. Exit 124.
    TimedOut,
    /// SIGINT stopped the run. Exit 130.
    Interrupted,
    /// SIGTERM stopped the run. Exit 143.
    Terminated,
    /// A step panicked (a bug in its code): the run stopped there. Exit 101, the code of an
    /// uncaught Rust panic, with the report and the termination message written all the same
    /// (under `panic = "abort"` too).
    Panicked,
}

impl Outcome {
    /// The process exit code for this outcome (the table under "Process contract" in the README).
    ///
    /// ```
    /// use init_core::Outcome;
    /// assert_eq!(Outcome::Succeeded.exit_code(), 0);
    /// assert_eq!(Outcome::Terminated.exit_code(), 143);
    /// ```
    pub const fn exit_code(self) -> u8 {
        match self {
            Self::Succeeded => 0,
            Self::Failed => 1,
            Self::Invalid => 2,
            Self::TimedOut => 124,
            Self::Interrupted => 130,
            Self::Terminated => 143,
            Self::Panicked => 101,
        }
    }
}

/// One step's line in the [`Report`].
///
/// ```
/// use init_core::{StepReport, StepStatus};
/// let step = StepReport::new("postgres", StepStatus::Skipped);
/// assert_eq!(step.attempts, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StepReport {
    /// The step's name.
    pub name: String,
    /// How it ended.
    pub status: StepStatus,
    /// How many attempts started.
    pub attempts: u32,
    /// Wall time from the first attempt to the end, sleeps included.
    #[serde(rename = "elapsed_ms", serialize_with = "millis")]
    pub elapsed: Duration,
    /// Whether the step's timeout or the plan deadline ended it.
    pub timed_out: bool,
    /// Whether the step was optional (its failure did not abort the plan).
    pub optional: bool,
    /// The last error, redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the step panicked (its error then says `panicked at ...`).
    #[serde(skip)]
    pub(crate) panicked: bool,
}

impl StepReport {
    /// A line with no attempts, no error and no time.
    ///
    /// ```
    /// let line = init_core::StepReport::new("x", init_core::StepStatus::Succeeded);
    /// assert_eq!(line.error, None);
    /// ```
    pub fn new(name: impl Into<String>, status: StepStatus) -> Self {
        Self {
            name: name.into(),
            status,
            attempts: 0,
            elapsed: Duration::ZERO,
            timed_out: false,
            optional: false,
            error: None,
            panicked: false,
        }
    }

    /// One line for logs and the termination message, e.g.
    /// `step "vault-db" failed after 5 attempts in 31.2s: secret/orders/db: permission denied (403)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use init_core::{StepReport, StepStatus};
    /// let mut line = StepReport::new("vault-db", StepStatus::Failed);
    /// line.attempts = 5;
    /// line.elapsed = Duration::from_millis(31_200);
    /// line.error = Some("secret/orders/db: permission denied (403)".into());
    /// assert_eq!(
    ///     line.summary(),
    ///     "step \"vault-db\" failed after 5 attempts in 31.2s: secret/orders/db: permission denied (403)"
    /// );
    /// ```
    pub fn summary(&self) -> String {
        let verb = match (self.status, self.timed_out) {
            (StepStatus::Failed, true) => "timed out",
            (StepStatus::Failed, false) => "failed",
            (StepStatus::Succeeded, _) => "succeeded",
            (StepStatus::Skipped, _) => "was skipped",
            (StepStatus::Cancelled, _) => "was cancelled",
        };
        let attempts = match self.attempts {
            1 => "1 attempt".to_owned(),
            n => format!("{n} attempts"),
        };
        let mut line = format!(
            "step \"{}\" {verb} after {attempts} in {}",
            self.name,
            seconds(self.elapsed)
        );
        if let Some(error) = &self.error {
            line.push_str(": ");
            line.push_str(error);
        }
        line
    }
}

/// What a run of a [`Plan`](crate::Plan) did.
///
/// ```
/// use init_core::{Outcome, Report};
/// let report = Report::new("orders-init");
/// assert_eq!(report.outcome, Outcome::Succeeded);
/// assert!(report.to_json().starts_with("{\"plan\":\"orders-init\""));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The plan's name.
    pub plan: String,
    /// How the run ended.
    pub outcome: Outcome,
    /// Wall time of the whole run.
    #[serde(rename = "elapsed_ms", serialize_with = "millis")]
    pub elapsed: Duration,
    /// One line per step, in plan order.
    pub steps: Vec<StepReport>,
    /// Why the plan is invalid, when validation refused it; what panicked, when code outside
    /// any step did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// An empty, successful report.
    ///
    /// ```
    /// assert!(init_core::Report::new("p").steps.is_empty());
    /// ```
    pub fn new(plan: impl Into<String>) -> Self {
        Self {
            plan: plan.into(),
            outcome: Outcome::Succeeded,
            elapsed: Duration::ZERO,
            steps: Vec::new(),
            error: None,
        }
    }

    /// Whether the plan succeeded (exit code 0).
    ///
    /// ```
    /// assert!(init_core::Report::new("p").is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        self.outcome == Outcome::Succeeded
    }

    /// The line of the named step.
    ///
    /// ```
    /// assert!(init_core::Report::new("p").step("x").is_none());
    /// ```
    pub fn step(&self, name: &str) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The process exit code (see [`Outcome::exit_code`]).
    ///
    /// ```
    /// assert_eq!(init_core::Report::new("p").exit_code(), 0);
    /// ```
    pub fn exit_code(&self) -> u8 {
        self.outcome.exit_code()
    }

    /// The one line that says why the run failed: the first failed step that aborted the plan
    /// (or, failing that, the first failed step), the step that panicked, the validation error,
    /// or the signal. `None` on success.
    ///
    /// ```
    /// let mut report = init_core::Report::new("p");
    /// report.outcome = init_core::Outcome::Invalid;
    /// report.error = Some("duplicate step name \"db\"".into());
    /// assert_eq!(report.failure_line().unwrap(), "plan \"p\" is invalid: duplicate step name \"db\"");
    /// ```
    pub fn failure_line(&self) -> Option<String> {
        match self.outcome {
            Outcome::Succeeded => None,
            Outcome::Invalid => Some(format!(
                "plan \"{}\" is invalid: {}",
                self.plan,
                self.error.as_deref().unwrap_or("validation failed")
            )),
            Outcome::Interrupted | Outcome::Terminated => {
                let signal = if self.outcome == Outcome::Interrupted {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                let running: Vec<&str> = self
                    .steps
                    .iter()
                    .filter(|s| s.status == StepStatus::Cancelled)
                    .map(|s| s.name.as_str())
                    .collect();
                Some(if running.is_empty() {
                    format!("plan \"{}\" stopped by {signal}", self.plan)
                } else {
                    format!(
                        "plan \"{}\" stopped by {signal} while running step \"{}\"",
                        self.plan,
                        running.join("\", \"")
                    )
                })
            }
            Outcome::Panicked => Some(match self.steps.iter().find(|s| s.panicked) {
                Some(step) => step.summary(),
                None => format!(
                    "plan \"{}\" {}",
                    self.plan,
                    self.error.as_deref().unwrap_or("panicked")
                ),
            }),
            Outcome::Failed | Outcome::TimedOut => {
                let failed = |optional: bool| {
                    self.steps
                        .iter()
                        .find(|s| s.status == StepStatus::Failed && s.optional == optional)
                };
                match failed(false).or_else(|| failed(true)) {
                    Some(step) => Some(step.summary()),
                    None => Some(format!(
                        "plan \"{}\" timed out after {}",
                        self.plan,
                        seconds(self.elapsed)
                    )),
                }
            }
        }
    }

    /// This report with every text it holds (the plan's name, each step's name and error)
    /// redacted by value, field by field: what `run_main` serializes and what the termination
    /// message is made from, so the JSON always parses and no count or time is ever masked.
    ///
    /// ```
    /// let redactor = init_core::Redactor::new();
    /// redactor.register("hunter2-pass");
    /// let mut report = init_core::Report::new("p");
    /// report.error = Some("bad \"hunter2-pass\"".into());
    /// let json = report.redacted(&redactor).to_json();
    /// let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    /// assert_eq!(value["error"], "bad \"[redacted]\"");
    /// ```
    #[must_use]
    pub fn redacted(&self, redactor: &Redactor) -> Self {
        let text = |s: &str| redactor.redact(s).into_owned();
        Self {
            plan: text(&self.plan),
            outcome: self.outcome,
            elapsed: self.elapsed,
            steps: self
                .steps
                .iter()
                .map(|step| StepReport {
                    name: text(&step.name),
                    error: step.error.as_deref().map(text),
                    ..step.clone()
                })
                .collect(),
            error: self.error.as_deref().map(text),
        }
    }

    /// The report as one line of JSON (as it is: see [`redacted`](Self::redacted)).
    ///
    /// ```
    /// let json = init_core::Report::new("p").to_json();
    /// let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    /// assert_eq!(value["outcome"], "succeeded");
    /// ```
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `31.2s`, `0.0s`, `125.0s`: one decimal, as people read it in `kubectl describe`.
fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
