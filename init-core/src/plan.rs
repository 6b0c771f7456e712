//! `Plan`: the ordered steps and concurrent groups of one init binary, checked before anything
//! runs.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::context::Context;
use crate::exec_env::ExecEnv;
use crate::executor;
use crate::group::{Group, Member};
use crate::plan_check;
use crate::report::{Outcome, Report};
use crate::secret_env::SecretEnv;
use crate::stage::Stage;
use crate::step::Step;
use crate::value_path::ValuePath;

/// The steps of an init binary, in order, with concurrent groups, an optional overall deadline
/// and an optional state directory for `once` steps.
///
/// [`run`](Self::run) first validates everything ([`validate`](Self::validate)): every step's
/// configuration, every policy, unique names. A plan that fails validation runs nothing and
/// reports [`Outcome::Invalid`] (exit code 2). Then the stages run in order; a failed step
/// aborts the plan unless it is optional, and an aborting failure in a group cancels its
/// siblings.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use init_core::prelude::*;
///
/// # #[derive(Debug)] struct Noop(&'static str);
/// # #[async_trait] impl Step for Noop {
/// #     fn name(&self) -> &str { self.0 }
/// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
/// # }
/// let plan = Plan::new("orders-init")
///     .concurrently([Noop("postgres").boxed(), Noop("redis").boxed()])
///     .step(Noop("migrate"))
///     .with_deadline(Duration::from_secs(300));
/// assert_eq!(plan.step_names(), ["postgres", "redis", "migrate"]);
/// assert!(plan.validate(&Context::new()).is_ok());
/// ```
pub struct Plan {
    name: String,
    stages: Vec<Stage>,
    deadline: Option<Duration>,
    state_dir: Option<PathBuf>,
    secret_env: SecretEnv,
    exec_env: ExecEnv,
}

impl Plan {
    /// An empty plan called `name` (the name appears in the report and the logs).
    ///
    /// ```
    /// assert_eq!(init_core::Plan::new("orders-init").name(), "orders-init");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            stages: Vec::new(),
            deadline: None,
            state_dir: None,
            secret_env: SecretEnv::default(),
            exec_env: ExecEnv::default(),
        }
    }

    /// The plan's name.
    ///
    /// ```
    /// assert_eq!(init_core::Plan::new("p").name(), "p");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends a step that runs after everything before it.
    ///
    /// ```
    /// # use init_core::prelude::*;
    /// # #[derive(Debug)] struct Noop;
    /// # #[async_trait] impl Step for Noop {
    /// #     fn name(&self) -> &str { "noop" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// let plan = Plan::new("p").step(Noop);
    /// assert_eq!(plan.step_names(), ["noop"]);
    /// ```
    #[must_use]
    pub fn step(mut self, step: impl Step + 'static) -> Self {
        // A step given already boxed is kept as it is, not boxed again.
        self.stages
            .extend(step.into_steps().into_iter().map(Stage::One));
        self
    }

    /// Appends a group whose members run at once; all must succeed (optional ones aside), and
    /// an aborting failure cancels the others. A member is a step, or a [`Sequence`](crate::Sequence) of steps
    /// that run in order (log in, read the credentials, then wait for the database with them,
    /// beside a wait for Redis).
    ///
    /// The group is a tuple of members of any types, an array or a `Vec` (see [`Group`]).
    ///
    /// ```
    /// # use init_core::prelude::*;
    /// # #[derive(Debug)] struct Noop(&'static str);
    /// # #[async_trait] impl Step for Noop {
    /// #     fn name(&self) -> &str { self.0 }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// # #[derive(Debug)] struct Other;
    /// # #[async_trait] impl Step for Other {
    /// #     fn name(&self) -> &str { "other" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// let plan = Plan::new("p")
    ///     .concurrently((Noop("redis"), Sequence::new().step(Noop("login")).step(Other)))
    ///     .concurrently([Noop("a").boxed(), Noop("b").boxed()]);
    /// assert_eq!(plan.step_names(), ["redis", "login", "other", "a", "b"]);
    /// ```
    #[must_use]
    pub fn concurrently(mut self, group: impl Group) -> Self {
        self.stages.push(Stage::Group(group.into_members()));
        self
    }

    /// Bounds the whole run; when it passes, the running step is stopped and the plan ends
    /// with [`Outcome::TimedOut`] (exit code 124). Validation refuses zero and anything above
    /// [`MAX_DURATION`](crate::MAX_DURATION) (365 days).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let plan = init_core::Plan::new("p").with_deadline(Duration::from_secs(120));
    /// assert_eq!(plan.deadline(), Some(Duration::from_secs(120)));
    /// ```
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The directory where `once` steps record that they succeeded (an `emptyDir` shared by
    /// the pod's init containers survives their restarts). It is created when needed.
    ///
    /// ```
    /// let plan = init_core::Plan::new("p").with_state_dir("/run/initkit");
    /// assert_eq!(plan.state_dir().unwrap(), std::path::Path::new("/run/initkit"));
    /// ```
    #[must_use]
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Names environment variables that hold secrets, besides the
    /// [default list](SecretEnv#default) (`VAULT_TOKEN`, `*PASSWORD`, `*_KEY`, ...): a name, or
    /// a pattern with `*` at its start or end. Their values are registered with the redactor
    /// before validation and the first step, and a template that reads one is written `0o600`.
    ///
    /// ```
    /// let plan = init_core::Plan::new("p").secret_env(["DATABASE_URL", "ORDERS_*"]);
    /// assert!(plan.secret_env_names().matches("DATABASE_URL"));
    /// assert!(plan.secret_env_names().matches("VAULT_TOKEN"));
    /// ```
    #[must_use]
    pub fn secret_env<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.secret_env = self.secret_env.with(names);
        self
    }

    /// The environment variables this plan treats as secret.
    ///
    /// ```
    /// assert!(init_core::Plan::new("p").secret_env_names().matches("PGPASSWORD"));
    /// ```
    pub fn secret_env_names(&self) -> &SecretEnv {
        &self.secret_env
    }

    /// Exports a published value to the program that
    /// [`run_main_then_exec`](Self::run_main_then_exec) execs, as environment variable `name`
    /// (what vault-env does): `path` is a [`ValuePath`] (`db.password` is field `password` of
    /// the value published as `db`); a string is passed as it is, anything else as JSON. The
    /// value is read after the plan succeeded and is never logged; nothing published there
    /// fails the hand-off (exit 1, the program does not start). The path's syntax, the name and
    /// duplicates are checked by [`validate`](Self::validate).
    ///
    /// Unless [`exec_keep_vault_env`](Self::exec_keep_vault_env) is set, the program gets no
    /// `VAULT_*` variable from this process (no `VAULT_TOKEN`), except one exported here.
    /// [`run_main`](Self::run_main) execs nothing and ignores this.
    ///
    /// ```
    /// let plan = init_core::Plan::new("entrypoint").exec_env("DB_PASSWORD", "db.password");
    /// assert_eq!(
    ///     plan.validate(&init_core::Context::new()).unwrap_err().to_string(),
    ///     "exec environment variable DB_PASSWORD: values.db.password is not published by any step of the plan"
    /// );
    /// let bad = init_core::Plan::new("entrypoint").exec_env("DB_PASSWORD", "db..password");
    /// assert_eq!(
    ///     bad.validate(&init_core::Context::new()).unwrap_err().to_string(),
    ///     "exec environment variable DB_PASSWORD: value path \"db..password\": expected names separated by dots"
    /// );
    /// ```
    #[must_use]
    pub fn exec_env(mut self, name: impl Into<String>, path: impl Into<ValuePath>) -> Self {
        self.exec_env.export(name.into(), path.into());
        self
    }

    /// Keeps this process's `VAULT_*` variables (`VAULT_ADDR`, `VAULT_TOKEN`, ...) in the
    /// environment of the program that [`run_main_then_exec`](Self::run_main_then_exec) execs;
    /// by default they are removed, so the program does not inherit the init's Vault token.
    ///
    /// ```
    /// let plan = init_core::Plan::new("entrypoint").exec_keep_vault_env();
    /// # let _ = plan;
    /// ```
    #[must_use]
    pub fn exec_keep_vault_env(mut self) -> Self {
        self.exec_env.keep_vault();
        self
    }

    #[cfg(feature = "run-main")]
    pub(crate) fn exec_environment(&self) -> &ExecEnv {
        &self.exec_env
    }

    /// The overall deadline, if any.
    ///
    /// ```
    /// assert_eq!(init_core::Plan::new("p").deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The state directory, if any.
    ///
    /// ```
    /// assert_eq!(init_core::Plan::new("p").state_dir(), None);
    /// ```
    pub fn state_dir(&self) -> Option<&Path> {
        self.state_dir.as_deref()
    }

    /// The names of all steps, in plan order.
    ///
    /// ```
    /// assert!(init_core::Plan::new("p").step_names().is_empty());
    /// ```
    pub fn step_names(&self) -> Vec<&str> {
        self.stages
            .iter()
            .flat_map(Stage::steps)
            .map(Step::name)
            .collect()
    }

    /// Checks everything before anything runs: every step's
    /// [`validate`](crate::Step::validate), every policy, unique non-empty names, no empty
    /// group or sequence, a state directory when a step is `once`, a deadline above zero and at
    /// most [`MAX_DURATION`](crate::MAX_DURATION) (365 days), and the
    /// data flow: every value a step [reads](crate::Step::reads) is published by a step that
    /// runs before it (not by a sibling of its concurrent group) or set in the environment,
    /// unless the read is guarded (a default, a test). After a step that does not say what it
    /// [publishes](crate::Step::publishes), a name that no step declared is not refused.
    ///
    /// Steps see `ctx`'s environment (the one [`run`](Self::run) gives them), so a variable
    /// they read is checked here; [`run`](Self::run) and [`run_main`](Self::run_main) call
    /// this with the context they run with.
    ///
    /// # Errors
    ///
    /// A [`PlanError`] listing every problem found, each naming the step.
    ///
    /// ```
    /// # use init_core::prelude::*;
    /// # #[derive(Debug)] struct Noop;
    /// # #[async_trait] impl Step for Noop {
    /// #     fn name(&self) -> &str { "db" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// let err = Plan::new("p").step(Noop).step(Noop).validate(&Context::new()).unwrap_err();
    /// assert_eq!(err.to_string(), "duplicate step name \"db\"");
    /// ```
    pub fn validate(&self, ctx: &Context) -> Result<(), PlanError> {
        let problems = plan_check::problems(
            &plan_check::Parts {
                stages: &self.stages,
                deadline: self.deadline,
                has_state_dir: self.state_dir.is_some(),
                secret_env: &self.secret_env,
                exec_env: &self.exec_env,
            },
            ctx,
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PlanError { problems })
        }
    }

    /// Validates, then runs every stage with `ctx` and reports what happened. Never panics on
    /// a step's error; a plan that fails validation runs no step.
    ///
    /// ```
    /// # use init_core::prelude::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let report = Plan::new("empty").run(&Context::new()).await;
    /// assert!(report.is_success());
    /// # });
    /// ```
    pub async fn run(&self, ctx: &Context) -> Report {
        self.run_until(ctx, std::future::pending()).await
    }

    /// Like [`run`](Self::run), and when `stop` completes first its outcome ends the run: the
    /// context is cancelled, in-flight attempts are dropped (their steps reported
    /// `cancelled`) and the rest is skipped. [`run_main`](Self::run_main) passes the signal
    /// handler here.
    ///
    /// ```
    /// # use init_core::prelude::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let report = Plan::new("p").run_until(&Context::new(), std::future::pending()).await;
    /// assert!(report.is_success());
    /// # });
    /// ```
    pub async fn run_until(&self, ctx: &Context, stop: impl Future<Output = Outcome>) -> Report {
        // Before validation: a validation error may quote a variable's value.
        ctx.register_secret_env(&self.secret_env);
        if let Err(err) = self.validate(ctx) {
            let mut report = Report::new(&self.name);
            report.outcome = Outcome::Invalid;
            report.error = Some(ctx.redact(&err.to_string()));
            tracing::error!(plan = %self.name, error = %report.error.as_deref().unwrap_or_default(), "plan is invalid");
            return report;
        }
        let run = executor::Run {
            name: &self.name,
            stages: &self.stages,
            deadline: self.deadline,
            state_dir: self.state_dir.as_deref(),
        };
        executor::run(&run, ctx, stop).await
    }

    /// A readable outline of the plan for `INITKIT_DRY_RUN`: one line per step with its
    /// policy, groups indented together. `run_main` prints it through the redactor, like every
    /// other text it shows.
    ///
    /// ```
    /// let outline = init_core::Plan::new("p").outline();
    /// assert!(outline.starts_with("plan \"p\""));
    /// ```
    pub fn outline(&self) -> String {
        use fmt::Write;
        let mut out = format!("plan \"{}\"", self.name);
        if let Some(deadline) = self.deadline {
            let _ = write!(out, " (deadline {deadline:?})");
        }
        out.push('\n');
        for (i, stage) in self.stages.iter().enumerate() {
            match stage {
                Stage::One(step) => outline_step(&mut out, i + 1, "", step.as_ref()),
                Stage::Group(members) => {
                    for member in members {
                        for (j, step) in member.iter().enumerate() {
                            let prefix = if j == 0 { "| " } else { "|   then " };
                            outline_step(&mut out, i + 1, prefix, step.as_ref());
                        }
                    }
                }
            }
        }
        out
    }
}

/// One line of [`Plan::outline`] for `step`, with its data flow on the lines after it.
fn outline_step(out: &mut String, position: usize, prefix: &str, step: &dyn Step) {
    use fmt::Write;
    let p = step.policy();
    let r = p.retry();
    let attempts = r
        .max_attempts()
        .map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    let _ = write!(
        out,
        "{position:>3}. {prefix}{} attempts={attempts} backoff={:?}..{:?}",
        step.name(),
        r.initial_delay(),
        r.max_delay(),
    );
    if let Some(t) = p.attempt_timeout() {
        let _ = write!(out, " attempt_timeout={t:?}");
    }
    if let Some(t) = p.timeout() {
        let _ = write!(out, " timeout={t:?}");
    }
    if p.on_failure() == crate::OnFailure::Continue {
        out.push_str(" optional");
    }
    if p.once() {
        out.push_str(" once");
    }
    out.push('\n');
    let reads = step.reads();
    if !reads.is_empty() {
        let reads: Vec<String> = reads
            .iter()
            .map(|r| match r.origin() {
                Some(origin) => format!("{r} ({origin})"),
                None => r.to_string(),
            })
            .collect();
        let _ = writeln!(out, "       reads {}", reads.join(", "));
    }
    match step.publishes() {
        None => out.push_str("       publishes (not declared)\n"),
        Some(publications) if publications.is_empty() => {}
        Some(publications) => {
            let names: Vec<String> = publications.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, "       publishes {}", names.join(", "));
        }
    }
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("name", &self.name)
            .field("steps", &self.step_names())
            .field("deadline", &self.deadline)
            .field("state_dir", &self.state_dir)
            .field("secret_env", &self.secret_env)
            .field("exec_env", &self.exec_env.names())
            .finish()
    }
}

/// Why a plan was refused before it ran: every problem found, each naming the step.
///
/// ```
/// # use init_core::{Context, Plan};
/// let plan = Plan::new("p").with_deadline(std::time::Duration::ZERO);
/// let err = plan.validate(&Context::new()).unwrap_err();
/// assert_eq!(err.problems().len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    problems: Vec<String>,
}

impl PlanError {
    /// Each problem, one line each.
    ///
    /// ```
    /// # use init_core::{Context, Plan};
    /// let plan = Plan::new("p").with_deadline(std::time::Duration::ZERO);
    /// let err = plan.validate(&Context::new()).unwrap_err();
    /// assert!(err.problems()[0].starts_with("deadline"));
    /// ```
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("; "))
    }
}

impl std::error::Error for PlanError {}
