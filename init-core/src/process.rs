//! The process contract: `run_main` and `run_main_then_exec` (runtime, logging, signals, exit
//! codes, the JSON report and the Kubernetes termination message).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::atomic::write_atomically;
use crate::context::Context;
use crate::logging::LogSettings;
use crate::panic::Hook;
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::report::{Outcome, Report};
use crate::termination::{one_line, termination_message};

/// Where Kubernetes reads the termination message by default.
const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

impl Plan {
    /// Runs the plan as the whole process: the entry point of an init binary.
    ///
    /// 1. Reads `INITKIT_LOG` (env-filter syntax, default `info`) and `INITKIT_LOG_FORMAT`
    ///    (`text` or `json`) and logs to stderr, every line redacted.
    /// 2. With `INITKIT_DRY_RUN=1`, prints the plan's outline, validates it and exits.
    /// 3. Runs the plan on a current-thread runtime. SIGTERM and SIGINT cancel the work in
    ///    flight (its futures are dropped, child processes started with `kill_on_drop` die).
    /// 4. Writes the JSON report to `INITKIT_REPORT` when set (atomically: a temporary file in
    ///    the same directory, fsync, rename, fsync of the directory), and one line to the
    ///    termination message file (`INITKIT_TERMINATION_LOG`, default `/dev/termination-log`
    ///    when it exists), at most 4096 bytes, redacted.
    /// 5. A panic (a bug in a step's code) ends the run at once: a panic hook writes the report
    ///    and the termination message (`step "migrate" failed after 1 attempt in 0.2s:
    ///    panicked at src/main.rs:12:5: ...`, redacted) and exits 101. It does so before any
    ///    unwinding, so a build with the release profile's `panic = "abort"` behaves exactly as
    ///    a test build does; code that unwinds and catches its own panics still ends the run.
    ///    The step's child processes are not killed (when it runs as PID 1, they end with it).
    ///
    /// | exit | when |
    /// |---|---|
    /// | 0 | every step succeeded or was skipped |
    /// | 1 | a step failed (permanent error or attempts exhausted) |
    /// | 2 | invalid plan or configuration, found before anything ran |
    /// | 101 | a step panicked (a bug in its code; the code of an uncaught Rust panic) |
    /// | 124 | a step timeout or the plan deadline ran out |
    /// | 130 / 143 | SIGINT / SIGTERM |
    ///
    /// ```no_run
    /// use init_core::Plan;
    ///
    /// fn main() -> std::process::ExitCode {
    ///     Plan::new("orders-init").run_main()
    /// }
    /// ```
    pub fn run_main(self) -> ExitCode {
        ExitCode::from(self.run_main_code())
    }

    /// [`run_main`](Self::run_main), returning the exit code as a number, for a `main` that
    /// does more before it exits or calls [`std::process::exit`] itself.
    ///
    /// ```no_run
    /// let code = init_core::Plan::new("p").run_main_code();
    /// std::process::exit(i32::from(code));
    /// ```
    pub fn run_main_code(&self) -> u8 {
        run_process(self, &Env::process()).exit_code
    }

    /// Runs the plan like [`run_main`](Self::run_main) and, when it succeeds, replaces this
    /// process with `argv` (`execve`, the program looked up in `PATH`): the program keeps the
    /// PID, the environment, and owns the signals and the exit code, as with dockerize. On
    /// failure, returns the plan's exit code; when the program cannot be executed, 127 (not
    /// found) or 126 (not executable). An empty `argv` is a configuration error (exit 2)
    /// found before anything runs.
    ///
    /// ```no_run
    /// use init_core::Plan;
    ///
    /// fn main() -> std::process::ExitCode {
    ///     let argv: Vec<String> = std::env::args().skip(1).collect();
    ///     Plan::new("entrypoint").run_main_then_exec(argv)
    /// }
    /// ```
    pub fn run_main_then_exec<I, S>(self, argv: I) -> ExitCode
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let env = Env::process();
        if argv.is_empty() {
            eprintln!("initkit: no program to exec: expected a command after the plan's arguments");
            write_termination_message(&env, "no program to exec: expected a command");
            return ExitCode::from(Outcome::Invalid.exit_code());
        }
        let finished = run_process(&self, &env);
        let ctx = match finished.ctx {
            Some(ctx) if finished.exit_code == 0 && !finished.dry_run => ctx,
            _ => return ExitCode::from(finished.exit_code),
        };
        if let Err(code) = finish_cleanups(&ctx) {
            return ExitCode::from(code);
        }
        exec(&argv, &env, &self, &ctx)
    }
}

struct Finished {
    exit_code: u8,
    dry_run: bool,
    /// The context the plan ran with, when it ran.
    ctx: Option<Context>,
}

/// The process environment, read once.
struct Env {
    log: Result<LogSettings, String>,
    termination_log: Option<PathBuf>,
    report: Option<PathBuf>,
    dry_run: bool,
}

impl Env {
    fn process() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let termination_log = var("INITKIT_TERMINATION_LOG")
            .map(PathBuf::from)
            .or_else(|| {
                Path::new(DEFAULT_TERMINATION_LOG)
                    .exists()
                    .then(|| PathBuf::from(DEFAULT_TERMINATION_LOG))
            });
        Self {
            log: LogSettings::from_lookup(|k| std::env::var(k).ok()),
            termination_log,
            report: var("INITKIT_REPORT").map(PathBuf::from),
            dry_run: var("INITKIT_DRY_RUN").is_some_and(|v| !matches!(v.as_str(), "0" | "false")),
        }
    }
}

fn run_process(plan: &Plan, env: &Env) -> Finished {
    let redactor = Redactor::new();
    let settings = match &env.log {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("initkit: invalid configuration: {message}");
            write_termination_message(env, &one_line(&format!("invalid configuration: {message}")));
            return Finished {
                exit_code: Outcome::Invalid.exit_code(),
                dry_run: env.dry_run,
                ctx: None,
            };
        }
    };
    settings.install(redactor.clone());
    // Validation and the run see the same environment.
    let ctx = Context::with_redactor(redactor.clone());
    let _panics = {
        let (report, termination_log) = (env.report.clone(), env.termination_log.clone());
        let hook_redactor = redactor.clone();
        Hook::install(
            plan.name(),
            &plan.step_names(),
            redactor.clone(),
            move |report_so_far| {
                let line = termination_message(report_so_far, &hook_redactor);
                write_report(report.as_deref(), report_so_far, &hook_redactor);
                write_termination_line(termination_log.as_deref(), &line);
                tracing::error!(
                    exit_code = Outcome::Panicked.exit_code(),
                    "{line}; this is a bug in the step"
                );
            },
        )
    };

    if env.dry_run {
        // The same boundary as every other output: the outline and the error are redacted.
        ctx.register_secret_env(plan.secret_env_names());
        print!("{}", ctx.redact(&plan.outline()));
        let exit_code = match plan.validate(&ctx) {
            Ok(()) => {
                println!("plan is valid");
                0
            }
            Err(err) => {
                println!("plan is invalid: {}", ctx.redact(&err.to_string()));
                Outcome::Invalid.exit_code()
            }
        };
        return Finished {
            exit_code,
            dry_run: true,
            ctx: None,
        };
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("initkit: cannot start the runtime: {err}");
            return Finished {
                exit_code: Outcome::Failed.exit_code(),
                dry_run: false,
                ctx: None,
            };
        }
    };
    let report = runtime.block_on(async {
        let stop = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(term), Ok(int)) => Some((term, int)),
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(error = %err, "cannot handle SIGTERM/SIGINT; they will end the process without a report");
                None
            }
        };
        let stopped = async move {
            match stop {
                Some((mut term, mut int)) => tokio::select! {
                    _ = term.recv() => Outcome::Terminated,
                    _ = int.recv() => Outcome::Interrupted,
                },
                None => std::future::pending().await,
            }
        };
        plan.run_until(&ctx, stopped).await
    });
    // Blocking tasks still running (a DNS lookup, say) must not hold up the exit.
    runtime.shutdown_timeout(Duration::from_millis(20));

    write_report(env.report.as_deref(), &report, &redactor);
    write_termination_message(env, &termination_message(&report, &redactor));
    Finished {
        exit_code: report.exit_code(),
        dry_run: false,
        ctx: Some(ctx),
    }
}

/// Writes the redacted report as JSON to `path`, if any, atomically; a failure is reported on
/// stderr (the run's outcome and exit code stand).
fn write_report(path: Option<&Path>, report: &Report, redactor: &Redactor) {
    if let Some(path) = path {
        let json = report.redacted(redactor).to_json() + "\n";
        if let Err(err) = write_atomically(path, json.as_bytes()) {
            eprintln!(
                "initkit: cannot write the report to {}: {err}",
                path.display()
            );
        }
    }
}

/// Writes `message` (already one line and capped) to the termination-message file, if any.
fn write_termination_message(env: &Env, message: &str) {
    write_termination_line(env.termination_log.as_deref(), message);
}

/// Writes `message` to `path` in place: `/dev/termination-log` is a file the kubelet mounts,
/// which a rename could not replace.
fn write_termination_line(path: Option<&Path>, message: &str) {
    if let Some(path) = path
        && let Err(err) = std::fs::write(path, message)
    {
        eprintln!(
            "initkit: cannot write the termination message to {}: {err}",
            path.display()
        );
    }
}

/// Waits until the clean-ups that steps left in flight are done (a command's process group
/// getting `SIGKILL` after its grace period and being reaped), so that nothing a step started
/// outlives the plan under the exec'd program. SIGTERM or SIGINT during the wait ends the
/// process with 143 or 130 instead of starting the program (the groups already had `SIGTERM`).
fn finish_cleanups(ctx: &Context) -> Result<(), u8> {
    let cleanups = ctx.cleanups().clone();
    let pending = cleanups.pending();
    if pending == 0 {
        return Ok(());
    }
    tracing::info!(
        pending,
        "waiting for steps' child processes to stop before exec"
    );
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        // No runtime, so no signal handling: still never exec over a running group.
        cleanups.wait();
        return Ok(());
    };
    let result = runtime.block_on(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            let _ = tokio::task::spawn_blocking(move || cleanups.wait()).await;
            return Ok(());
        };
        tokio::select! {
            _ = tokio::task::spawn_blocking(move || cleanups.wait()) => Ok(()),
            _ = term.recv() => Err(Outcome::Terminated),
            _ = int.recv() => Err(Outcome::Interrupted),
        }
    });
    // The blocked waiter, if a signal came first, must not hold up the exit.
    runtime.shutdown_background();
    result.map_err(|outcome| {
        tracing::warn!(
            exit_code = outcome.exit_code(),
            "signalled while steps' child processes stopped; not executing the program"
        );
        outcome.exit_code()
    })
}

fn exec(argv: &[OsString], env: &Env, plan: &Plan, ctx: &Context) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let program = &argv[0];
    let exec_env = plan.exec_environment();
    let mut cmd = std::process::Command::new(program);
    cmd.args(&argv[1..]);
    if let Err(message) = exec_env.apply(ctx, &mut cmd) {
        // Names the variable and the path, never a value.
        let message = ctx.redact(&message);
        eprintln!("initkit: {message}");
        write_termination_message(env, &one_line(&message));
        return ExitCode::from(Outcome::Failed.exit_code());
    }
    tracing::info!(
        program = %program.to_string_lossy(),
        exported = ?exec_env.names(),
        "plan succeeded; exec"
    );
    let err = cmd.exec();
    let code = match err.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    };
    let message = format!("exec {}: {err}", program.to_string_lossy());
    eprintln!("initkit: {message}");
    write_termination_message(env, &one_line(&message));
    ExitCode::from(code)
}
