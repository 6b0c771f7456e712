//! `Command`: runs a program (an argv, or a shell script when asked) as one attempt, streams its
//! output into the step's logs, and kills its whole process group when the attempt is dropped.
//!
//! # Exit statuses
//!
//! | the program | the attempt |
//! |---|---|
//! | exits with 0 | succeeds |
//! | exits with a code listed in [`Command::transient_exit_codes`] | fails, transient (retried) |
//! | exits with any other code | fails, permanent |
//! | is killed by `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGABRT` or `SIGSYS` (it crashed) | fails, permanent |
//! | is killed by any other signal (the OOM killer, an operator, a node under pressure) | fails, transient |
//! | is a shell (a [`shell`](Command::shell) script, or `sh`, `bash`, `dash`, `ash`, `ksh`, `mksh`, `zsh`) and exits with `128+n` for a signal `n` | as if killed by signal `n` |
//! | cannot be started: not found, not executable, not a program (`ENOEXEC`), a symlink loop | fails, permanent |
//! | cannot be started for lack of resources (`ENOMEM`, `EAGAIN`, `EMFILE`, `ENFILE`) or a program still being written (`ETXTBSY`) | fails, transient |
//!
//! A shell reports a child killed by a signal as exit status `128+n` (137 for `SIGKILL`), so an
//! OOM kill inside `sh -c` is transient like a direct one. A code listed in
//! [`Command::transient_exit_codes`] is transient whatever it means.
//!
//! # The error message
//!
//! A failure's message names the program, the status and the most informative line of its
//! stderr: the last line that looks like an error (it contains `error`, `fatal`, `fail`,
//! `denied`, `panic`, `refused`, `cannot`, `unable`, `no such` or `not found`, in any case, or
//! starts with `E:`), else the last line that is not only punctuation (a `^` under a SQL
//! error says nothing). So `psql` failing reads `psql: exited with code 3: psql:001.sql:3:
//! ERROR:  syntax error at or near "CREAT"`, not `... code 3: ^`. At a failure the last ten
//! stderr lines are also logged in one event (`warn`, field `stderr_tail`), masked like all
//! output.
//!
//! # Process groups, cancellation and zombies
//!
//! Each run starts the program in a new process group. When the executor drops the attempt
//! (cancellation, an attempt timeout, the step's or the plan's deadline), the whole group gets
//! `SIGTERM` at once, in the drop itself, so a process that exits right after (SIGTERM to the
//! init binary) still stops its children; a background thread then waits up to the grace period
//! ([`Command::kill_grace`], default 5 s) and sends `SIGKILL` to whatever is left, and reaps the
//! program. When the program exits by itself, processes it left behind in its group are stopped
//! the same way: a command's processes do not outlive its step.
//! `Plan::run_main_then_exec` waits for these
//! background stops (SIGKILL after the grace, reaping) to finish before it execs the program.
//!
//! No zombies: the program itself is always reaped (by the runtime, or by the kill thread).
//! Processes of its group that were orphaned and handed to us (we are PID 1 in the container, or
//! a subreaper) are reaped by a `waitpid` on the group, which never touches children that other
//! code started. A process that leaves the group (`setsid`, a daemon) is out of reach; in a
//! container it dies with PID 1, but if your tool daemonizes, run the init binary under an init
//! such as `tini`. If the init binary itself exits (`run_main`) before the grace period ends,
//! the group got `SIGTERM` but not `SIGKILL`; as PID 1 of a container, its exit makes the kernel
//! kill the rest. Nobody reads the program's output after that: a program that must clean up on
//! `SIGTERM` (release a lock) should ignore `SIGPIPE`, as `examples/migrations/migrate.sh` does.
//!
//! While the group stops, its output is still read and logged, so a program that shuts down
//! cleanly (rolls back, releases a lock, says so) is not killed by `SIGPIPE` on the way. After
//! the program exits by itself, its output is awaited for at most half a second more: a process
//! it left in the background may keep the pipes open.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use async_trait::async_trait;
use init_core::{
    Context, ErrorClass, Publication, Reference, Step, StepError, ValidateContext, ValuePath,
    classify_io,
};
use nix::errno::Errno;
use nix::sys::signal::Signal;

use crate::process_group::{self, RunError, Stream, Tail};

/// How long a command's processes get between `SIGTERM` and `SIGKILL` by default.
const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// At most this much of a stderr line goes into the error message (and the log at failure).
const MAX_ERROR_LINE: usize = 512;
/// How many of the last stderr lines are logged when the command fails.
const TAIL_LINES: usize = 10;
/// Programs that report a child killed by signal `n` as exit status `128+n`.
const SHELLS: [&str; 7] = ["sh", "bash", "dash", "ash", "ksh", "mksh", "zsh"];

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
/// See the [module docs](self) for how exit statuses are classified and how the process group is
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
    name: String,
    program: Program,
    env: Vec<(OsString, EnvSource)>,
    current_dir: Option<PathBuf>,
    transient_exit_codes: Vec<i32>,
    grace: Duration,
}

#[derive(Clone)]
enum Program {
    Argv(Vec<OsString>),
    Shell(String),
}

#[derive(Clone)]
enum EnvSource {
    Literal(OsString),
    /// A dotted path into the context's published values (`db.password`).
    Value(ValuePath),
}

impl Command {
    /// Runs `argv` without a shell: `argv[0]` is the program (looked up in `PATH` when it has
    /// no `/`), the rest are its arguments, passed as they are.
    ///
    /// An empty argv is reported by [`validate`](Step::validate).
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
    /// let step = Command::new(["migrate", "up"]).env("RUST_LOG", "info");
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
    /// let step = Command::new(["migrate", "up"]).env_from_value("PGPASSWORD", "db.password");
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
    /// let step = Command::new(["./bin/migrate"]).current_dir("/app");
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
    /// let step = Command::new(["migrate", "up"]).transient_exit_codes([69, 75]);
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
    /// let step = Command::new(["migrate", "up"]).kill_grace(Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// What error messages call the program: its file name, or `sh` for a script.
    fn label(&self) -> String {
        match &self.program {
            Program::Argv(argv) => argv
                .first()
                .map_or_else(String::new, |p| p.to_string_lossy().into_owned()),
            Program::Shell(_) => "sh".to_owned(),
        }
    }

    fn argv(&self) -> Vec<&OsStr> {
        match &self.program {
            Program::Argv(argv) => argv.iter().map(OsString::as_os_str).collect(),
            Program::Shell(script) => vec![OsStr::new("sh"), OsStr::new("-c"), OsStr::new(script)],
        }
    }

    /// Whether the program is a shell, which reports a child killed by a signal as `128+n`.
    fn is_shell(&self) -> bool {
        match &self.program {
            Program::Shell(_) => true,
            Program::Argv(argv) => argv
                .first()
                .and_then(|p| Path::new(p).file_name())
                .and_then(OsStr::to_str)
                .is_some_and(|name| SHELLS.contains(&name)),
        }
    }

    /// The `tokio` command for one attempt (the process-group runner adds the pipes and the
    /// group).
    fn command(&self, ctx: &Context) -> Result<tokio::process::Command, StepError> {
        let argv = self.argv();
        let mut cmd = tokio::process::Command::new(argv[0]);
        cmd.args(&argv[1..]).env_clear().envs(ctx.env_vars());
        for (key, source) in &self.env {
            match source {
                EnvSource::Literal(value) => cmd.env(key, value),
                EnvSource::Value(path) => cmd.env(key, published(ctx, path, key)?),
            };
        }
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        Ok(cmd)
    }

    fn classify(&self, status: ExitStatus, error_line: Option<&str>) -> Result<(), StepError> {
        use std::os::unix::process::ExitStatusExt;
        let label = self.label();
        let with_line = |message: String| match error_line {
            Some(line) => format!("{message}: {}", shorten(line, MAX_ERROR_LINE)),
            None => message,
        };
        if let Some(code) = status.code() {
            if code == 0 {
                return Ok(());
            }
            if self.transient_exit_codes.contains(&code) {
                return Err(StepError::transient(with_line(format!(
                    "{label}: exited with code {code}"
                ))));
            }
            // A shell's `128+n`: a process it ran was killed by signal `n`.
            let signal = code
                .checked_sub(128)
                .filter(|_| self.is_shell())
                .and_then(|n| Signal::try_from(n).ok());
            return Err(match signal {
                Some(sig) => {
                    let message = with_line(format!(
                        "{label}: exited with code {code}, a process it ran was killed by signal {} ({})",
                        sig as i32,
                        sig.as_str()
                    ));
                    if is_crash(sig) {
                        StepError::permanent(message)
                    } else {
                        StepError::transient(message)
                    }
                }
                None => {
                    StepError::permanent(with_line(format!("{label}: exited with code {code}")))
                }
            });
        }
        let signal = status.signal().unwrap_or_default();
        let (name, crashed) = match Signal::try_from(signal) {
            Ok(sig) => (sig.as_str(), is_crash(sig)),
            Err(_) => ("unknown signal", false),
        };
        let message = with_line(format!("{label}: killed by signal {signal} ({name})"));
        Err(if crashed {
            StepError::permanent(message)
        } else {
            StepError::transient(message)
        })
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

#[async_trait]
impl Step for Command {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn reads(&self) -> Vec<Reference> {
        self.env
            .iter()
            .filter_map(|(key, source)| match source {
                EnvSource::Value(path) if path.check().is_ok() => {
                    Some(path.reference(format!("environment variable {}", key.to_string_lossy())))
                }
                _ => None,
            })
            .collect()
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        match &self.program {
            Program::Argv(argv) => match argv.first() {
                None => {
                    return Err(StepError::invalid(
                        "command: expected a program, got an empty argv",
                    ));
                }
                Some(p) if p.is_empty() => {
                    return Err(StepError::invalid(
                        "command: expected a program, got an empty name",
                    ));
                }
                Some(_) => {}
            },
            Program::Shell(script) if script.trim().is_empty() => {
                return Err(StepError::invalid(
                    "sh: expected a script, got an empty one",
                ));
            }
            Program::Shell(_) => {}
        }
        let label = self.label();
        for arg in self.argv() {
            if arg.as_encoded_bytes().contains(&0) {
                return Err(StepError::invalid(format!(
                    "{label}: argument {:?}: expected no NUL byte",
                    arg.to_string_lossy()
                )));
            }
        }
        for (key, source) in &self.env {
            let bytes = key.as_encoded_bytes();
            if bytes.is_empty() || bytes.contains(&b'=') || bytes.contains(&0) {
                return Err(StepError::invalid(format!(
                    "{label}: environment variable {:?}: expected a name without '=' or NUL",
                    key.to_string_lossy()
                )));
            }
            match source {
                EnvSource::Literal(value) if value.as_encoded_bytes().contains(&0) => {
                    return Err(StepError::invalid(format!(
                        "{label}: environment variable {}: expected a value without NUL",
                        key.to_string_lossy()
                    )));
                }
                EnvSource::Value(path) => {
                    if let Err(err) = path.check() {
                        return Err(StepError::invalid(format!(
                            "{label}: environment variable {}: {err}",
                            key.to_string_lossy()
                        )));
                    }
                }
                EnvSource::Literal(_) => {}
            }
        }
        init_core::check_duration("kill_grace", self.grace).map_err(|e| e.context(&label))?;
        if let Some(code) = self
            .transient_exit_codes
            .iter()
            .find(|c| !(1..=255).contains(*c))
        {
            return Err(StepError::invalid(format!(
                "{label}: transient exit code {code}: expected 1 to 255"
            )));
        }
        Ok(())
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let label = self.label();
        let mut cmd = self.command(ctx)?;
        let mut stderr = Stderr::default();
        let mut on_line = |stream: Stream, line: &str| {
            process_group::log_line(stream, line);
            if stream == Stream::Stderr {
                stderr.push(line);
            }
        };
        let status = match process_group::run(&mut cmd, ctx, self.grace, &mut on_line).await {
            Ok(status) => status,
            Err(RunError::Spawn(err)) => {
                return Err(spawn_error(&label, self.current_dir.as_deref(), err));
            }
            Err(RunError::Wait(err)) => {
                return Err(StepError::transient(format!("{label}: wait")).with_source(err));
            }
        };
        let result = self.classify(status, stderr.error_line());
        if result.is_err() && !stderr.tail.is_empty() {
            let tail: Vec<_> = stderr
                .tail
                .lines()
                .map(|line| shorten(line, MAX_ERROR_LINE))
                .collect();
            tracing::warn!(
                program = %label,
                stderr_tail = ?tail,
                "command failed; the last {} lines of its stderr",
                tail.len()
            );
        }
        result
    }
}

/// What is kept of a command's stderr (already masked): its last lines, the last line that
/// looks like an error, and the last line with more than punctuation.
#[derive(Debug)]
struct Stderr {
    tail: Tail,
    last_error: Option<String>,
    last_text: Option<String>,
}

impl Default for Stderr {
    fn default() -> Self {
        Self {
            tail: Tail::new(TAIL_LINES),
            last_error: None,
            last_text: None,
        }
    }
}

impl Stderr {
    fn push(&mut self, line: &str) {
        self.tail.push(line);
        if looks_like_error(line) {
            self.last_error = Some(line.to_owned());
        }
        if line
            .chars()
            .any(|c| !c.is_whitespace() && !c.is_ascii_punctuation())
        {
            self.last_text = Some(line.to_owned());
        }
    }

    /// The line the error message shows (see the [module docs](self#the-error-message)).
    fn error_line(&self) -> Option<&str> {
        self.last_error.as_deref().or(self.last_text.as_deref())
    }
}

/// Whether `line` reads like an error rather than context (a caret, a hint, a source line).
fn looks_like_error(line: &str) -> bool {
    const WORDS: [&str; 10] = [
        "error",
        "fatal",
        "fail",
        "denied",
        "panic",
        "refused",
        "cannot",
        "unable",
        "no such",
        "not found",
    ];
    let lower = line.to_lowercase();
    line.trim_start().starts_with("E:") || WORDS.iter().any(|w| lower.contains(w))
}

/// The value published under `path`, as an environment value.
fn published(ctx: &Context, path: &ValuePath, key: &OsStr) -> Result<OsString, StepError> {
    path.text(ctx)
        .map(OsString::from)
        .map_err(|e| e.context(format!("environment variable {}", key.to_string_lossy())))
}

/// A program that cannot be started: one that is missing, not executable, not a program or
/// behind a symlink loop is permanent (it is the same on every attempt), a lack of resources
/// (`ENOMEM`, `EAGAIN`, no file descriptor left) or a program still being written (`ETXTBSY`)
/// transient.
fn spawn_error(label: &str, dir: Option<&Path>, err: io::Error) -> StepError {
    let class = match err.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ENOMEM | Errno::EAGAIN | Errno::EMFILE | Errno::ENFILE | Errno::ETXTBSY) => {
            ErrorClass::Transient
        }
        Some(
            Errno::ENOENT
            | Errno::EACCES
            | Errno::EPERM
            | Errno::ENOEXEC
            | Errno::ELOOP
            | Errno::ENOTDIR
            | Errno::EISDIR
            | Errno::ENAMETOOLONG
            | Errno::E2BIG,
        ) => ErrorClass::Permanent,
        _ => match err.kind() {
            io::ErrorKind::NotFound => ErrorClass::Permanent,
            kind => classify_io(kind),
        },
    };
    // The kernel says "not found" for a missing working directory too: name the right thing.
    let context = match dir {
        Some(dir) if err.kind() == io::ErrorKind::NotFound && !dir.is_dir() => {
            format!("{label}: cannot start in {}", dir.display())
        }
        _ => format!("{label}: cannot start"),
    };
    StepError::with_class(class, context).with_source(err)
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn shorten(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    format!("{}…", init_core::__private::truncate_utf8(text, max)).into()
}

/// Signals that mean the program crashed: another attempt would crash too.
fn is_crash(signal: Signal) -> bool {
    matches!(
        signal,
        Signal::SIGSEGV
            | Signal::SIGBUS
            | Signal::SIGILL
            | Signal::SIGFPE
            | Signal::SIGABRT
            | Signal::SIGSYS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(errno: Errno) -> ErrorClass {
        spawn_error("migrate", None, io::Error::from_raw_os_error(errno as i32)).class()
    }

    #[test]
    fn spawn_errors_for_lack_of_resources_are_transient() {
        for errno in [
            Errno::ENOMEM,
            Errno::EAGAIN,
            Errno::EMFILE,
            Errno::ENFILE,
            Errno::ETXTBSY,
        ] {
            assert_eq!(class_of(errno), ErrorClass::Transient, "{errno}");
        }
    }

    #[test]
    fn spawn_errors_that_repeat_on_every_attempt_are_permanent() {
        for errno in [
            Errno::ENOENT,
            Errno::EACCES,
            Errno::ENOEXEC,
            Errno::ELOOP,
            Errno::ENOTDIR,
            Errno::ENAMETOOLONG,
        ] {
            assert_eq!(class_of(errno), ErrorClass::Permanent, "{errno}");
        }
    }

    #[test]
    fn error_like_lines_are_recognised_and_context_is_not() {
        for line in [
            "psql: error: connection to server failed",
            "FATAL:  password authentication failed for user \"orders\"",
            "E: Unable to locate package foo",
            "thread 'main' panicked at src/main.rs:3:5",
            "open /data: permission denied",
        ] {
            assert!(looks_like_error(line), "{line}");
        }
        for line in [
            "        ^",
            "LINE 1: CREAT TABLE orders",
            "HINT:  try again",
        ] {
            assert!(!looks_like_error(line), "{line}");
        }
    }
}
