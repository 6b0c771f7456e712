//! The `Command` builder: the program (an argv or a script), its environment, working
//! directory, transient exit codes and kill grace.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use init_core::ValuePath;

/// How long a command's processes get between `SIGTERM` and `SIGKILL` by default.
const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Runs a program as a step: one attempt is one run of the program.
///
/// [`new`](Self::new) takes an argv and runs it without a shell (no quoting, no expansion);
/// [`shell`](Self::shell) runs a script with `sh -c`, when you want a shell. The program gets the
/// context's environment (non-UTF-8 variables are left out) plus [`env`](Self::env) and
/// [`env_from_value`](Self::env_from_value), its standard input is empty, and every line it
/// writes to stdout or stderr becomes a tracing event (field `stream`) inside the step's span,
/// with known secrets masked in the stream before it is cut into lines (a line longer than 8 KiB
/// is logged in pieces; a secret across a cut is still masked).
///
/// See the [module docs](super) for how exit statuses are classified and how the process group is
/// stopped when the attempt is dropped.
///
/// # Default
///
/// | setting | default |
/// |---|---|
/// | name | the file name of the program (`migrate` for `/bin/migrate`), `sh` for a script |
/// | working directory | the init binary's own |
/// | transient exit codes | none |
/// | kill grace | 5 s |
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use init_core::prelude::*;
/// use init_steps::command::Command;
///
/// let plan = Plan::new("orders-init")
///     .step(
///         Command::new(["/app/bin/migrate", "up"])
///             .env("MIGRATIONS_DIR", "/app/migrations")
///             .env_from_value("DATABASE_PASSWORD", "db.password")
///             .transient_exit_codes([75]) // EX_TEMPFAIL
///             .timeout(Duration::from_secs(120)),
///     )
///     .step(Command::shell("test -s /config/app.toml").named("config-present"));
/// assert_eq!(plan.step_names(), ["migrate", "config-present"]);
/// ```
#[derive(Clone)]
pub struct Command {
    pub(super) name: String,
    pub(super) program: Program,
    pub(super) env: Vec<(OsString, EnvSource)>,
    pub(super) current_dir: Option<PathBuf>,
    pub(super) transient_exit_codes: Vec<i32>,
    pub(super) grace: Duration,
}

#[derive(Clone)]
pub(super) enum Program {
    Argv(Vec<OsString>),
    Shell(String),
}

#[derive(Clone)]
pub(super) enum EnvSource {
    Literal(OsString),
    /// A dotted path into the context's published values (`db.password`).
    Value(ValuePath),
}

impl Command {
    /// Runs `argv` without a shell: `argv[0]` is the program (looked up in `PATH` when it has
    /// no `/`), the rest are its arguments, passed as they are.
    ///
    /// An empty argv is reported by [`validate`](init_core::Step::validate).
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::command::Command;
    ///
    /// let step = Command::new(["/usr/local/bin/migrate", "-path", "/migrations", "up"]);
    /// assert_eq!(step.name(), "migrate");
    /// assert!(step.validate(&init_core::ValidateContext::process()).is_ok());
    /// ```
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let name = argv
            .first()
            .and_then(|p| Path::new(p).file_name())
            .map_or_else(
                || "command".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
        Self::build(name, Program::Argv(argv))
    }

    /// Runs `script` with `sh -c`: pipes, redirections and `$VARIABLES` work as in a shell.
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::command::Command;
    ///
    /// let step = Command::shell("pg_isready -h \"$PGHOST\" && echo ready");
    /// assert_eq!(step.name(), "sh");
    /// ```
    pub fn shell(script: impl Into<String>) -> Self {
        Self::build("sh".to_owned(), Program::Shell(script.into()))
    }

    fn build(name: String, program: Program) -> Self {
        Self {
            name,
            program,
            env: Vec::new(),
            current_dir: None,
            transient_exit_codes: Vec::new(),
            grace: DEFAULT_GRACE,
        }
    }

    /// Sets environment variable `key` to `value` for the program (over the context's
    /// environment; a later call for the same key wins).
    ///
    /// ```
    /// use init_steps::command::Command;
    /// # use init_core::{Step, ValidateContext};
    /// let step = Command::new(["migrate", "up"]).env("RUST_LOG", "info");
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// // A name with `=` cannot be set.
    /// let bad = Command::new(["migrate", "up"]).env("A=B", "x");
    /// assert!(bad.validate(&ValidateContext::process()).is_err());
    /// ```
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env
            .push((key.into(), EnvSource::Literal(value.into())));
        self
    }

    /// Sets environment variable `key` to a value published by an earlier step, found by a
    /// [`ValuePath`] (`db.password` is field `password` of the value published as `db`). A string
    /// is passed as it is, anything else as JSON. A secret stays a secret: every string and number
    /// in it of at least [`MIN_SECRET_LEN`](init_core::MIN_SECRET_LEN) characters was
    /// registered with the redactor when it was published, so the program's output cannot leak
    /// it into the logs.
    ///
    /// The step declares the read, so [`Plan::validate`](init_core::Plan::validate) refuses a
    /// path that no earlier step publishes before anything runs; should the value still be
    /// missing when the step runs, the attempt fails (permanent).
    ///
    /// ```
    /// use init_steps::command::Command;
    /// # use init_core::{Step, ValidateContext};
    /// let step = Command::new(["migrate", "up"]).env_from_value("PGPASSWORD", "db.password");
    /// // The step declares the read, so the plan checks an earlier step publishes `db`.
    /// assert_eq!(step.reads().len(), 1);
    /// ```
    #[must_use]
    pub fn env_from_value(mut self, key: impl Into<OsString>, path: impl Into<ValuePath>) -> Self {
        self.env.push((key.into(), EnvSource::Value(path.into())));
        self
    }

    /// Runs the program in `dir` (which must exist when the step runs).
    ///
    /// ```
    /// use init_steps::command::Command;
    /// # use init_core::{Step, ValidateContext};
    /// let step = Command::new(["./bin/migrate"]).current_dir("/app");
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Exit codes that mean "try again later" (a transient error, retried by the policy);
    /// every other non-zero code is permanent. Replaces the list; codes must be in `1..=255`.
    ///
    /// ```
    /// use init_steps::command::Command;
    /// // sysexits.h: EX_UNAVAILABLE, EX_TEMPFAIL
    /// # use init_core::{Step, ValidateContext};
    /// let step = Command::new(["migrate", "up"]).transient_exit_codes([69, 75]);
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// let bad = Command::new(["migrate", "up"]).transient_exit_codes([0]);
    /// assert!(bad.validate(&ValidateContext::process()).is_err());
    /// ```
    #[must_use]
    pub fn transient_exit_codes(mut self, codes: impl IntoIterator<Item = i32>) -> Self {
        self.transient_exit_codes = codes.into_iter().collect();
        self
    }

    /// How long the program's process group gets between `SIGTERM` and `SIGKILL` when the
    /// attempt is cancelled or times out (default 5 s; zero sends `SIGKILL` right away; at most
    /// [`MAX_DURATION`](init_core::MAX_DURATION), checked by validation).
    ///
    /// ```
    /// use std::time::Duration;
    /// use init_steps::command::Command;
    /// # use init_core::{Step, ValidateContext};
    /// let step = Command::new(["migrate", "up"]).kill_grace(Duration::from_secs(2));
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// What error messages call the program: its file name, or `sh` for a script.
    pub(super) fn label(&self) -> String {
        match &self.program {
            Program::Argv(argv) => argv
                .first()
                .map_or_else(String::new, |p| p.to_string_lossy().into_owned()),
            Program::Shell(_) => "sh".to_owned(),
        }
    }

    pub(super) fn argv(&self) -> Vec<&OsStr> {
        match &self.program {
            Program::Argv(argv) => argv.iter().map(OsString::as_os_str).collect(),
            Program::Shell(script) => vec![OsStr::new("sh"), OsStr::new("-c"), OsStr::new(script)],
        }
    }
}

impl fmt::Debug for Command {
    /// Shows the program and the names of the variables it sets, never their values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: Vec<_> = self.env.iter().map(|(k, _)| k).collect();
        f.debug_struct("Command")
            .field("name", &self.name)
            .field("program", &self.label())
            .field("env", &env)
            .field("current_dir", &self.current_dir)
            .field("transient_exit_codes", &self.transient_exit_codes)
            .field("kill_grace", &self.grace)
            .finish()
    }
}
