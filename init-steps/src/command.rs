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
//! | cannot be started: not found, not executable | fails, permanent |
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
//!
//! No zombies: the program itself is always reaped (by the runtime, or by the kill thread).
//! Processes of its group that were orphaned and handed to us (we are PID 1 in the container, or
//! a subreaper) are reaped by a `waitpid` on the group, which never touches children that other
//! code started. A process that leaves the group (`setsid`, a daemon) is out of reach; in a
//! container it dies with PID 1, but if your tool daemonizes, run the init binary under an init
//! such as `tini`. If the init binary itself exits before the grace period ends, the group got
//! `SIGTERM` but not `SIGKILL`; as PID 1 of a container, its exit makes the kernel kill the rest.
//! Nobody reads the program's output after that: a program that must clean up on `SIGTERM`
//! (release a lock) should ignore `SIGPIPE`, as `examples/migrations/migrate.sh` does.
//!
//! While the group stops, its output is still read and logged, so a program that shuts down
//! cleanly (rolls back, releases a lock, says so) is not killed by `SIGPIPE` on the way. After
//! the program exits by itself, its output is awaited for at most half a second more: a process
//! it left in the background may keep the pipes open.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::future::{Future, poll_fn};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::pin::{Pin, pin};
use std::process::{ExitStatus, Stdio};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use init_core::{Context, ErrorClass, Step, StepError, StreamMasker, ValidateContext, classify_io};
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::process::{Child, ChildStderr, ChildStdout};

/// How long a command's processes get between `SIGTERM` and `SIGKILL` by default.
const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// A line longer than this is logged in pieces of this size.
const MAX_LINE: usize = 8 * 1024;
/// At most this much of the last stderr line goes into the error message.
const MAX_ERROR_LINE: usize = 512;
/// After the program exits, how long its output may still take to reach end of file (a process
/// it left in the background may hold the pipes open).
const DRAIN: Duration = Duration::from_millis(500);
/// How often the kill thread looks at the group.
const POLL: Duration = Duration::from_millis(10);
/// How long the kill thread waits for the group to be reaped after `SIGKILL`.
const REAP_LIMIT: Duration = Duration::from_secs(2);

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
    Value(String),
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
    /// dotted path (`db.password` is field `password` of the value published as `db`). A string
    /// is passed as it is, anything else as JSON. A secret stays a secret: every string and number
    /// in it of at least [`MIN_SECRET_LEN`](init_core::MIN_SECRET_LEN) characters was
    /// registered with the redactor when it was published, so the program's output cannot leak
    /// it into the logs.
    ///
    /// The attempt fails (permanent) when nothing is published under that path.
    ///
    /// ```
    /// use init_steps::command::Command;
    /// let step = Command::new(["migrate", "up"]).env_from_value("PGPASSWORD", "db.password");
    /// ```
    #[must_use]
    pub fn env_from_value(mut self, key: impl Into<OsString>, path: impl Into<String>) -> Self {
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

    /// The `tokio` command for one attempt, in its own process group.
    fn command(&self, ctx: &Context) -> Result<tokio::process::Command, StepError> {
        let argv = self.argv();
        let mut cmd = tokio::process::Command::new(argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(ctx.env_vars())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
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

    fn classify(&self, status: ExitStatus, last_stderr: Option<&str>) -> Result<(), StepError> {
        use std::os::unix::process::ExitStatusExt;
        let label = self.label();
        let with_line = |message: String| match last_stderr {
            Some(line) => format!("{message}: {}", shorten(line, MAX_ERROR_LINE)),
            None => message,
        };
        if let Some(code) = status.code() {
            if code == 0 {
                return Ok(());
            }
            let message = with_line(format!("{label}: exited with code {code}"));
            return Err(if self.transient_exit_codes.contains(&code) {
                StepError::transient(message)
            } else {
                StepError::permanent(message)
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
                EnvSource::Value(path) if path.split('.').any(str::is_empty) => {
                    return Err(StepError::invalid(format!(
                        "{label}: environment variable {}: value path {path:?}: expected names separated by dots",
                        key.to_string_lossy()
                    )));
                }
                _ => {}
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
        let mut child = cmd
            .spawn()
            .map_err(|err| spawn_error(&label, self.current_dir.as_deref(), err))?;
        let Some(pid) = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .filter(|&p| p > 0)
        else {
            let _ = child.start_kill();
            return Err(StepError::transient(format!(
                "{label}: started without a process id"
            )));
        };
        // From here on, dropping the attempt (cancellation, timeout) stops the whole group.
        let mut group = Group {
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            leader: Some(child),
            pgid: Pid::from_raw(pid),
            grace: self.grace,
            ctx: ctx.clone(),
            span: tracing::Span::current(),
        };
        tracing::debug!(program = %label, pid, "command started");

        let mut no_line = None;
        let mut last_stderr = None;
        let status = {
            let mut out = pin!(pump(group.stdout.as_mut(), "stdout", ctx, &mut no_line));
            let mut err = pin!(pump(group.stderr.as_mut(), "stderr", ctx, &mut last_stderr));
            let (mut out_done, mut err_done) = (false, false);
            let mut drain = |cx: &mut std::task::Context<'_>| {
                out_done = out_done || out.as_mut().poll(cx).is_ready();
                err_done = err_done || err.as_mut().poll(cx).is_ready();
                out_done && err_done
            };
            let status = {
                let mut wait = pin!(wait(&mut group.leader));
                poll_fn(|cx| {
                    drain(cx);
                    wait.as_mut().poll(cx)
                })
                .await
            };
            // A process left in the background may hold the pipes open: log what arrives
            // soon, then stop waiting.
            let drained = poll_fn(|cx| {
                if drain(cx) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            });
            let _ = tokio::time::timeout(DRAIN, drained).await;
            status
        };
        // Stops what the program left behind in its group, if anything.
        drop(group);
        let status = status
            .map_err(|err| StepError::transient(format!("{label}: wait")).with_source(err))?;
        self.classify(status, last_stderr.as_deref())
    }
}

/// The value published under the dotted `path`, as an environment value.
fn published(ctx: &Context, path: &str, key: &OsStr) -> Result<OsString, StepError> {
    let mut parts = path.split('.');
    let first = parts.next().unwrap_or_default();
    let value = ctx
        .value(first)
        .and_then(|root| parts.try_fold(root, |v, part| v.get(part).cloned()));
    match value {
        Some(v) => Ok(v
            .as_str()
            .map_or_else(|| v.to_string(), str::to_owned)
            .into()),
        None => Err(StepError::permanent(format!(
            "environment variable {}: no value published as {path:?}",
            key.to_string_lossy()
        ))),
    }
}

/// A program that cannot be started: missing or not executable is permanent (it is the same on
/// every attempt), a lack of resources (`EAGAIN`, `ENOMEM`) transient.
fn spawn_error(label: &str, dir: Option<&Path>, err: io::Error) -> StepError {
    let class = match err.kind() {
        io::ErrorKind::NotFound => ErrorClass::Permanent,
        kind => classify_io(kind),
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
    format!("{}…", init_core::truncate_utf8(text, max)).into()
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

/// Reads `reader` to its end, logging each line (redacted) in the current span; keeps the last
/// non-empty line in `last`.
async fn pump<R>(reader: Option<R>, stream: &'static str, ctx: &Context, last: &mut Option<String>)
where
    R: AsyncRead + Unpin,
{
    let Some(mut reader) = reader else { return };
    let mut output = Output::new(ctx);
    let mut buf = vec![0; 4096];
    let mut emit = |line: &[u8]| log_line(stream, line, last);
    loop {
        match read(&mut reader, &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => output.push(&buf[..n], &mut emit),
        }
    }
    output.finish(&mut emit);
}

/// A program's output stream: masked first (a secret split across reads or across the line
/// cut is masked whole), then split into lines.
struct Output {
    masker: StreamMasker,
    lines: Lines,
}

impl Output {
    fn new(ctx: &Context) -> Self {
        Self {
            masker: ctx.redactor().stream(),
            lines: Lines::default(),
        }
    }

    fn push(&mut self, bytes: &[u8], emit: &mut impl FnMut(&[u8])) {
        let masked = self.masker.push_bytes(bytes);
        self.lines.push(masked.as_bytes(), emit);
    }

    fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        let masked = self.masker.finish();
        self.lines.push(masked.as_bytes(), emit);
        self.lines.finish(emit);
    }
}

/// Logs one line of the program's output (already masked) in the current span.
fn log_line(stream: &'static str, line: &[u8], last: &mut Option<String>) {
    let text = String::from_utf8_lossy(line);
    if !text.trim().is_empty() {
        tracing::info!(stream, "{text}");
        *last = Some(text.into_owned());
    }
}

/// Logs what the program still writes to `pipe` while it stops (blocking reads, until every
/// writer is gone), so a program that shuts down cleanly is not killed by `SIGPIPE`.
fn drain_pipe(pipe: io::Result<OwnedFd>, stream: &'static str, ctx: Context, span: tracing::Span) {
    let Ok(pipe) = pipe else { return };
    // If no thread can be started, the pipe is closed here.
    let _ = std::thread::Builder::new()
        .name("initkit-drain".to_owned())
        .spawn(move || {
            let _entered = span.enter();
            let mut file = std::fs::File::from(pipe);
            let mut output = Output::new(&ctx);
            let mut buf = vec![0; 4096];
            let mut emit = |line: &[u8]| log_line(stream, line, &mut None);
            loop {
                match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => output.push(&buf[..n], &mut emit),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            output.finish(&mut emit);
        });
}

/// One read, without tokio's `io-util`.
async fn read<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut read_buf = ReadBuf::new(buf);
        match Pin::new(&mut *reader).poll_read(cx, &mut read_buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(read_buf.filled().len())),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Splits a byte stream into lines (without `\n` or `\r\n`), cutting lines longer than
/// [`MAX_LINE`] into pieces.
#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    fn push(&mut self, mut bytes: &[u8], emit: &mut impl FnMut(&[u8])) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.partial.len();
            match bytes.iter().position(|&b| b == b'\n') {
                Some(i) if i <= room => {
                    self.partial.extend_from_slice(&bytes[..i]);
                    self.flush(emit);
                    bytes = &bytes[i + 1..];
                }
                _ => {
                    let take = bytes.len().min(room);
                    self.partial.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.partial.len() == MAX_LINE {
                        self.flush(emit);
                    }
                }
            }
        }
    }

    fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            self.flush(emit);
        }
    }

    fn flush(&mut self, emit: &mut impl FnMut(&[u8])) {
        let line = self.partial.strip_suffix(b"\r").unwrap_or(&self.partial);
        emit(line);
        self.partial.clear();
    }
}

/// The program's process group while an attempt owns it. Dropping it while anything of the group
/// is left (the attempt was cancelled or timed out while the program ran, or the program exited
/// and left processes behind) sends `SIGTERM` to the group at once and leaves the rest
/// (`SIGKILL` after the grace period, reaping) to a background thread.
#[derive(Debug)]
struct Group {
    /// The program, until it has been reaped.
    leader: Option<Child>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    /// The program's pid, which is the group's id; always positive.
    pgid: Pid,
    grace: Duration,
    /// For the lines the program writes while it stops.
    ctx: Context,
    span: tracing::Span,
}

impl Group {
    /// Sends `SIGTERM` to the group now; threads keep reading its output, send `SIGKILL` after
    /// the grace period, and reap.
    fn terminate(&mut self) {
        let (pgid, grace) = (self.pgid, self.grace);
        let first = if grace.is_zero() {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        };
        let _ = killpg(pgid, first);
        if let Some(pipe) = self.stdout.take() {
            drain_pipe(
                pipe.into_owned_fd(),
                "stdout",
                self.ctx.clone(),
                self.span.clone(),
            );
        }
        if let Some(pipe) = self.stderr.take() {
            drain_pipe(
                pipe.into_owned_fd(),
                "stderr",
                self.ctx.clone(),
                self.span.clone(),
            );
        }
        let leader = self.leader.take();
        let spawned = std::thread::Builder::new()
            .name("initkit-kill".to_owned())
            .spawn(move || reap_group(leader, pgid, grace));
        if spawned.is_err() {
            // No thread: do not leave anything running.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.leader.is_some() {
            self.terminate();
        } else if group_exists(self.pgid) {
            tracing::debug!(
                pgid = self.pgid.as_raw(),
                "command left processes behind; stopping them"
            );
            self.terminate();
        }
    }
}

/// Waits for the program to exit, and reaps it.
async fn wait(leader: &mut Option<Child>) -> io::Result<ExitStatus> {
    let Some(child) = leader.as_mut() else {
        return Err(io::Error::other("already reaped"));
    };
    let status = child.wait().await;
    *leader = None;
    status
}

/// Waits until the group is gone or `grace` has passed, then `SIGKILL`s it and reaps.
fn reap_group(mut leader: Option<Child>, pgid: Pid, grace: Duration) {
    // Validation bounds `grace`; a sum past the clock's range would mean "never": kill now.
    let deadline = Instant::now().checked_add(grace);
    let deadline = deadline.unwrap_or_else(Instant::now);
    let mut killed = grace.is_zero();
    loop {
        reap_members(pgid);
        if let Some(child) = &mut leader
            && !matches!(child.try_wait(), Ok(None))
        {
            // Exited and reaped, or reaped by `reap_members` (then `try_wait` fails).
            leader = None;
        }
        if leader.is_none() && !group_exists(pgid) {
            return;
        }
        let now = Instant::now();
        if !killed && now >= deadline {
            let _ = killpg(pgid, Signal::SIGKILL);
            killed = true;
        }
        if killed && now.saturating_duration_since(deadline) >= REAP_LIMIT {
            // Unreapable (not our children, or stuck in the kernel): the runtime's orphan
            // queue takes the program.
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// Reaps every exited member of the group that is our child: the orphans handed to us when
/// we are PID 1 or a subreaper. Only this group's processes are touched.
fn reap_members(pgid: Pid) {
    let group = Pid::from_raw(-pgid.as_raw());
    while let Ok(status) = waitpid(group, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Whether any process (a zombie included) is still in the group.
fn group_exists(pgid: Pid) -> bool {
    !matches!(killpg(pgid, None), Err(Errno::ESRCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        let mut emit = |l: &[u8]| out.push(l.to_vec());
        for chunk in chunks {
            lines.push(chunk, &mut emit);
        }
        lines.finish(&mut emit);
        out
    }

    #[test]
    fn lines_are_split_across_chunks_and_crlf_is_trimmed() {
        let out = split(&[b"one\r\ntw", b"o\nthr", b"ee"]);
        assert_eq!(out, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    }

    #[test]
    fn long_lines_are_cut_into_pieces() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut input = long.clone();
        input.extend_from_slice(b"\nend\n");
        let out = split(&[&input]);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1].len(), MAX_LINE);
        assert_eq!(out[2].len(), 10);
        assert_eq!(out[3], b"end");
    }

    #[test]
    fn a_line_of_exactly_the_maximum_is_one_line() {
        let mut input = vec![b'y'; MAX_LINE];
        input.push(b'\n');
        let out = split(&[&input]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), MAX_LINE);
    }
}
