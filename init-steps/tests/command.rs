//! `Command`: real child processes started through `sh` and coreutils, their output captured from
//! tracing, their exit statuses classified, and their process groups stopped when an attempt is
//! dropped.
#![cfg(feature = "command")]

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use init_core::{
    Context, Outcome, Plan, Retry, Step, StepError, StepExt, StepStatus, ValidateContext,
};
use init_steps::command::Command;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::MakeWriter;

/// Log lines written by a subscriber installed for the current thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Self, DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The process state letter from `/proc/<pid>/stat` (`None` once it has been reaped).
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn is_running(pid: i32) -> bool {
    state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Polls `cond` every 10 ms, for at most 10 s (generous: real processes on a busy machine).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Runs the step until the file `ready` appears in `dir`, then drops the attempt's future
/// (what the executor does on cancellation or timeout).
async fn drop_when_ready(step: &Command, dir: &Path) {
    let ctx = Context::new();
    let ready = dir.join("ready");
    tokio::select! {
        result = step.run(&ctx) => panic!("the command ended by itself: {result:?}"),
        () = file_appears(&ready) => {}
    }
}

async fn file_appears(path: &Path) {
    eventually(&format!("{} exists", path.display()), || path.exists()).await;
}

/// Runs one attempt of `step` with an empty context, which must fail.
async fn run_err(step: Command) -> StepError {
    step.run(&Context::new()).await.unwrap_err()
}

#[tokio::test]
async fn succeeds_when_the_program_exits_with_zero() {
    let result = Command::new(["true"]).run(&Context::new()).await;
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn passes_arguments_as_they_are_without_a_shell() {
    let (logs, _guard) = Logs::capture();
    Command::new(["printf", "%s|\n", "a b", "$HOME", "*", "; echo no"])
        .run(&Context::new())
        .await
        .unwrap();
    let text = logs.text();
    for line in ["a b|", "$HOME|", "*|", "; echo no|"] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[tokio::test]
async fn shell_runs_a_script_with_sh() {
    let (logs, _guard) = Logs::capture();
    Command::shell("echo hello | tr a-z A-Z")
        .run(&Context::new())
        .await
        .unwrap();
    assert!(logs.text().contains("HELLO"), "{}", logs.text());
}

#[tokio::test]
async fn streams_each_line_into_the_step_span_with_secrets_redacted() {
    let (logs, _guard) = Logs::capture();
    let ctx = Context::new();
    ctx.register_secret("hunter2-secret");
    let plan = Plan::new("p").step(
        Command::shell("echo 'applying 001_init'; echo 'password=hunter2-secret' >&2")
            .named("migrate"),
    );
    let report = plan.run(&ctx).await;
    assert!(report.is_success(), "{report:?}");
    let text = logs.text();
    let applying = text
        .lines()
        .find(|l| l.contains("applying 001_init"))
        .unwrap_or_else(|| panic!("no stdout line in:\n{text}"));
    // The executor's span for the step (its field names are the executor's business).
    assert!(
        applying.contains("step{") && applying.contains("migrate"),
        "{applying}"
    );
    assert!(applying.contains("stream=\"stdout\""), "{applying}");
    let password = text.lines().find(|l| l.contains("password=")).unwrap();
    assert!(password.contains("stream=\"stderr\""), "{password}");
    assert!(password.contains("password=[redacted]"), "{password}");
    assert!(!text.contains("hunter2-secret"), "{text}");
}

#[tokio::test]
async fn a_nonzero_exit_is_permanent_and_names_the_last_stderr_line() {
    let err = run_err(Command::shell(
        "echo 'one' >&2; echo 'schema is newer than this binary' >&2; echo out; exit 3",
    ))
    .await;
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "sh: exited with code 3: schema is newer than this binary"
    );
}

#[tokio::test]
async fn the_error_message_is_redacted_and_names_the_program() {
    let ctx = Context::new();
    ctx.register_secret("s3cr3t-token");
    let err = Command::new(["sh", "-c", "echo \"bad token s3cr3t-token\" >&2; exit 1"])
        .run(&ctx)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "sh: exited with code 1: bad token [redacted]"
    );
}

#[tokio::test]
async fn listed_exit_codes_are_transient() {
    let err = run_err(Command::shell("exit 75").transient_exit_codes([69, 75])).await;
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.to_string(), "sh: exited with code 75");
    let err = run_err(Command::shell("exit 76").transient_exit_codes([75])).await;
    assert!(err.is_permanent(), "{err:?}");
}

#[tokio::test]
async fn a_signal_is_transient_but_a_crash_is_permanent() {
    let err = run_err(Command::shell("kill -TERM $$")).await;
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.to_string(), "sh: killed by signal 15 (SIGTERM)");
    let err = run_err(Command::shell("kill -SEGV $$")).await;
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(err.to_string(), "sh: killed by signal 11 (SIGSEGV)");
}

#[tokio::test]
async fn a_missing_program_is_permanent() {
    let err = run_err(Command::new(["/nonexistent/bin/migrate", "up"])).await;
    assert!(err.is_permanent(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("/nonexistent/bin/migrate: cannot start: no such file"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_working_directory_is_named_in_the_error() {
    let err = run_err(Command::new(["true"]).current_dir("/nonexistent/work")).await;
    assert!(err.is_permanent(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("true: cannot start in /nonexistent/work: no such file"),
        "{err}"
    );
}

#[tokio::test]
async fn the_program_gets_the_context_environment_extra_variables_and_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var("PATH").unwrap();
    let ctx = Context::with_env([("FROM_CONTEXT", "ctx-value"), ("PATH", path.as_str())]);
    ctx.publish_secret(
        "db",
        serde_json::json!({ "password": "pw-123", "port": 5432 }),
    );
    Command::shell(r#"printf '%s\n' "$FROM_CONTEXT" "$EXTRA" "$DB_PASSWORD" "$DB_PORT" "${HOME:-unset}" "$(pwd)" > out"#)
        .env("EXTRA", "first")
        .env("EXTRA", "second")
        .env_from_value("DB_PASSWORD", "db.password")
        .env_from_value("DB_PORT", "db.port")
        .current_dir(dir.path())
        .run(&ctx)
        .await
        .unwrap();
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
    let cwd = dir.path().canonicalize().unwrap();
    let expected = format!(
        "ctx-value\nsecond\npw-123\n5432\nunset\n{}\n",
        cwd.display()
    );
    assert_eq!(out, expected);
}

#[tokio::test]
async fn a_value_that_was_not_published_is_a_permanent_error() {
    let err = run_err(Command::new(["true"]).env_from_value("DB_PASSWORD", "db.password")).await;
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        "environment variable DB_PASSWORD: values.db.password is not published"
    );
}

#[test]
fn validation_rejects_configurations_that_cannot_run() {
    let cases: Vec<(Command, &str)> = vec![
        (
            Command::new(Vec::<String>::new()),
            "command: expected a program, got an empty argv",
        ),
        (
            Command::new([""]),
            "command: expected a program, got an empty name",
        ),
        (
            Command::shell("  "),
            "sh: expected a script, got an empty one",
        ),
        (
            Command::new(["echo", "a\0b"]),
            "echo: argument \"a\\0b\": expected no NUL byte",
        ),
        (
            Command::new(["true"]).env("A=B", "x"),
            "true: environment variable \"A=B\": expected a name without '=' or NUL",
        ),
        (
            Command::new(["true"]).env_from_value("A", "db..password"),
            "true: environment variable A: value path \"db..password\": expected names separated by dots",
        ),
        (
            Command::new(["true"]).transient_exit_codes([75, 0]),
            "true: transient exit code 0: expected 1 to 255",
        ),
    ];
    for (step, message) in cases {
        let err = step.validate(&ValidateContext::process()).unwrap_err();
        assert!(err.is_invalid());
        assert_eq!(err.to_string(), message);
    }
    assert!(
        Command::new(["true"])
            .transient_exit_codes([1, 255])
            .validate(&ValidateContext::process())
            .is_ok()
    );
}

#[test]
fn debug_output_names_variables_but_never_their_values() {
    let step = Command::new(["migrate"]).env("DATABASE_URL", "postgres://u:pw-456@db/orders");
    let debug = format!("{step:?}");
    assert!(debug.contains("DATABASE_URL"), "{debug}");
    assert!(!debug.contains("pw-456"), "{debug}");
}

/// A leader and a background child that both write a file when they get SIGTERM, after
/// printing a line (which would kill them with SIGPIPE if their stdout were closed).
const TWO_PROCESSES_THAT_STOP_ON_SIGTERM: &str = r#"
trap 'echo leader stopping; echo term > leader.term; exit 0' TERM
sh -c 'trap "echo child stopping; echo term > child.term; exit 0" TERM; echo $$ > child.pid; while :; do sleep 0.05; done' &
echo $$ > leader.pid
while [ ! -s child.pid ]; do sleep 0.01; done
echo ready > ready
wait
"#;

#[tokio::test]
async fn dropping_the_attempt_sends_sigterm_to_the_whole_group_and_keeps_its_output_open() {
    let dir = tempfile::tempdir().unwrap();
    let step = Command::shell(TWO_PROCESSES_THAT_STOP_ON_SIGTERM).current_dir(dir.path());
    drop_when_ready(&step, dir.path()).await;
    // The attempt's future is gone: both processes got SIGTERM and could still write.
    file_appears(&dir.path().join("leader.term")).await;
    file_appears(&dir.path().join("child.term")).await;
    let leader = read_pid(&dir.path().join("leader.pid"));
    let child = read_pid(&dir.path().join("child.pid"));
    eventually("the child has exited", || !is_running(child)).await;
    // We are the leader's parent: once reaped, it leaves no zombie.
    eventually("the leader is reaped", || state(leader).is_none()).await;
}

/// A leader that ignores SIGTERM.
const IGNORES_SIGTERM: &str =
    "trap '' TERM; echo $$ > leader.pid; echo ready > ready; while :; do sleep 0.05; done";

#[tokio::test]
async fn a_program_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let step = Command::shell(IGNORES_SIGTERM)
        .current_dir(dir.path())
        .kill_grace(Duration::from_secs(2));
    drop_when_ready(&step, dir.path()).await;
    let leader = read_pid(&dir.path().join("leader.pid"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        is_running(leader),
        "SIGKILL came before the grace period ended"
    );
    eventually("the leader is killed and reaped", || {
        state(leader).is_none()
    })
    .await;
}

#[tokio::test]
async fn a_zero_grace_period_kills_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let step = Command::shell(IGNORES_SIGTERM)
        .current_dir(dir.path())
        .kill_grace(Duration::ZERO);
    drop_when_ready(&step, dir.path()).await;
    let dropped = std::time::Instant::now();
    let leader = read_pid(&dir.path().join("leader.pid"));
    eventually("the leader is killed and reaped", || {
        state(leader).is_none()
    })
    .await;
    // Well within the default grace period (5 s), which would also end in a kill.
    assert!(
        dropped.elapsed() < Duration::from_secs(2),
        "killed after {:?}",
        dropped.elapsed()
    );
}

#[tokio::test]
async fn a_step_timeout_stops_the_command_and_the_plan_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let step = Command::shell("echo $$ > leader.pid; exec sleep 60")
        .current_dir(dir.path())
        .retry(Retry::never())
        .timeout(Duration::from_millis(500));
    let report = Plan::new("p").step(step).run(&Context::new()).await;
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    let leader = read_pid(&dir.path().join("leader.pid"));
    eventually("the command is stopped and reaped", || {
        state(leader).is_none()
    })
    .await;
}

#[tokio::test]
async fn cancelling_the_plan_stops_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::new();
    let plan = Plan::new("p")
        .step(Command::shell(TWO_PROCESSES_THAT_STOP_ON_SIGTERM).current_dir(dir.path()));
    let ready = dir.path().join("ready");
    let cancel = async {
        file_appears(&ready).await;
        ctx.cancellation().cancel();
    };
    let (report, ()) = tokio::join!(plan.run(&ctx), cancel);
    assert_eq!(report.steps[0].status, StepStatus::Cancelled);
    file_appears(&dir.path().join("leader.term")).await;
    file_appears(&dir.path().join("child.term")).await;
}

#[tokio::test]
async fn processes_left_behind_are_stopped_when_the_program_exits() {
    let dir = tempfile::tempdir().unwrap();
    Command::shell("sleep 60 > /dev/null 2>&1 & echo $! > bg.pid")
        .current_dir(dir.path())
        .run(&Context::new())
        .await
        .unwrap();
    let bg = read_pid(&dir.path().join("bg.pid"));
    eventually("the background process is stopped", || !is_running(bg)).await;
}

#[tokio::test]
async fn a_background_process_holding_the_output_open_does_not_hold_up_the_step() {
    let started = std::time::Instant::now();
    Command::shell("sleep 60 &")
        .run(&Context::new())
        .await
        .unwrap();
    // The drain wait is half a second; a minute would mean we waited for the pipe's end.
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn orphaned_members_of_the_group_are_reaped_when_we_are_their_reaper() {
    // As PID 1 of a container we inherit orphans; a subreaper does too.
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    Command::shell("sh -c 'echo $$ > bg.pid; exec sleep 60' > /dev/null 2>&1 & while [ ! -s bg.pid ]; do sleep 0.01; done")
        .current_dir(dir.path())
        .run(&Context::new())
        .await
        .unwrap();
    let bg = read_pid(&dir.path().join("bg.pid"));
    // Stopped, then reaped by us: no zombie is left.
    eventually("the orphan is reaped", || state(bg).is_none()).await;
}

#[tokio::test]
async fn a_secret_across_the_8_kib_line_cut_is_masked() {
    let (logs, _guard) = Logs::capture();
    let secret = "s3cr3t-across-the-cut";
    let ctx = Context::new();
    ctx.register_secret(secret);
    // 8 KiB cut lands in the middle of the secret: 8180 bytes, then the secret.
    let script = format!("printf '%8180s' '' | tr ' ' x; printf '{secret}tail\\n'");
    let plan = Plan::new("p").step(Command::shell(script).named("long"));
    assert!(plan.run(&ctx).await.is_success());
    let text = logs.text();
    assert!(text.contains("[redacted]"), "{text}");
    for piece in ["s3cr3t-acr", "oss-the-cut", "across"] {
        assert!(!text.contains(piece), "{piece} in {text}");
    }
}

#[tokio::test]
async fn vault_token_is_masked_in_a_command_before_any_vault_step() {
    let (logs, _guard) = Logs::capture();
    let ctx = Context::with_env([
        ("VAULT_TOKEN", "hvs.CAESIJtoken"),
        ("PATH", "/usr/bin:/bin"),
    ]);
    let plan = Plan::new("p").step(Command::shell("echo \"token is $VAULT_TOKEN\"").named("env"));
    assert!(plan.run(&ctx).await.is_success());
    let text = logs.text();
    assert!(text.contains("token is [redacted]"), "{text}");
    assert!(!text.contains("hvs.CAESIJtoken"), "{text}");
}

#[tokio::test]
async fn a_kill_grace_beyond_the_bound_is_invalid_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let step = Command::shell(format!("touch {}", marker.display())).kill_grace(Duration::MAX);
    assert_eq!(
        step.validate(&ValidateContext::process())
            .unwrap_err()
            .to_string(),
        "sh: kill_grace = 18446744073709551615.999999999s: expected a duration of at most 365 days"
    );
    let report = Plan::new("p").step(step).run(&Context::new()).await;
    assert_eq!(report.outcome, Outcome::Invalid);
    assert!(!marker.exists(), "the program ran");
    assert!(
        Command::new(["true"])
            .kill_grace(init_core::MAX_DURATION)
            .validate(&ValidateContext::process())
            .is_ok()
    );
}

#[tokio::test]
async fn a_direct_sigkill_is_transient() {
    let err = run_err(Command::shell("kill -9 $$")).await;
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.to_string(), "sh: killed by signal 9 (SIGKILL)");
}

#[tokio::test]
async fn a_shell_reporting_a_sigkilled_child_as_137_is_transient_like_a_direct_kill() {
    // The inner shell is killed (as by the OOM killer); the outer one says so on stderr and
    // exits 128+9.
    let script = r#"sh -c 'kill -9 $$'; exit $?"#;
    for step in [Command::shell(script), Command::new(["sh", "-c", script])] {
        let err = run_err(step).await;
        assert!(err.is_transient(), "{err:?}");
        assert_eq!(
            err.to_string(),
            "sh: exited with code 137, a process it ran was killed by signal 9 (SIGKILL): Killed"
        );
    }
}

#[tokio::test]
async fn a_shell_reporting_a_crashed_child_as_139_is_permanent_like_a_direct_crash() {
    let err = run_err(Command::shell(r#"sh -c 'kill -SEGV $$'; exit $?"#)).await;
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "sh: exited with code 139, a process it ran was killed by signal 11 (SIGSEGV): Segmentation fault"
    );
}

#[tokio::test]
async fn exit_code_137_from_a_program_that_is_not_a_shell_is_an_ordinary_exit_code() {
    // `env` runs the shell, so the program is `env`, whose 137 means what it says.
    let err = run_err(Command::new(["env", "sh", "-c", "exit 137"])).await;
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(err.to_string(), "env: exited with code 137");
}

#[tokio::test]
async fn a_listed_exit_code_stays_transient_even_when_it_looks_like_a_signal() {
    let err = run_err(Command::shell("exit 139").transient_exit_codes([139])).await;
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.to_string(), "sh: exited with code 139");
}

#[tokio::test]
async fn a_symlink_loop_as_the_program_is_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("migrate");
    std::os::unix::fs::symlink(&program, &program).unwrap();
    let err = run_err(Command::new([&program])).await;
    assert!(err.is_permanent(), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "{}: cannot start: too many levels of symbolic links",
            program.display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_program_that_is_not_executable_is_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("migrate");
    std::fs::write(&program, "#!/bin/sh\nexit 0\n").unwrap();
    let err = run_err(Command::new([&program])).await;
    assert!(err.is_permanent(), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "{}: cannot start: permission denied",
            program.display()
        )),
        "{err}"
    );
}

/// What `psql` prints for a bad migration: the error, the offending line, a caret under it.
const PSQL_SYNTAX_ERROR: &str = r#"
echo 'psql:001_init.sql:3: ERROR:  syntax error at or near "CREAT"' >&2
echo 'LINE 1: CREAT TABLE orders (id int);' >&2
echo '        ^' >&2
exit 3
"#;

#[tokio::test]
async fn the_error_message_shows_the_line_that_looks_like_an_error_not_the_caret_under_it() {
    let err = run_err(Command::shell(PSQL_SYNTAX_ERROR)).await;
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(
        err.to_string(),
        r#"sh: exited with code 3: psql:001_init.sql:3: ERROR:  syntax error at or near "CREAT""#
    );
}

#[tokio::test]
async fn without_an_error_like_line_the_message_shows_the_last_line_with_words() {
    let err = run_err(Command::shell(
        "echo 'schema version 12 is newer than this binary' >&2; echo '  ---^---' >&2; echo '' >&2; exit 4",
    ))
    .await;
    assert_eq!(
        err.to_string(),
        "sh: exited with code 4: schema version 12 is newer than this binary"
    );
}

#[tokio::test]
async fn an_apt_style_e_prefix_counts_as_an_error_line() {
    let err = run_err(Command::shell(
        "echo 'E: Unable to locate package foo' >&2; echo 'Reading state information...' >&2; exit 100",
    ))
    .await;
    assert_eq!(
        err.to_string(),
        "sh: exited with code 100: E: Unable to locate package foo"
    );
}

#[tokio::test]
async fn the_last_ten_stderr_lines_are_logged_redacted_when_the_command_fails() {
    let (logs, _guard) = Logs::capture();
    let ctx = Context::new();
    ctx.register_secret("hunter2-secret");
    let script = "for i in 01 02 03 04 05 06 07 08 09 10 11 12 13 14; do echo \"line-$i\" >&2; done; \
                  echo 'login failed for password hunter2-secret' >&2; exit 1";
    let plan = Plan::new("p").step(
        Command::shell(script)
            .named("migrate")
            .retry(Retry::never()),
    );
    let report = plan.run(&ctx).await;
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(
        report.steps[0].error.as_deref(),
        Some("sh: exited with code 1: login failed for password [redacted]")
    );
    let text = logs.text();
    let tail = text
        .lines()
        .find(|l| l.contains("stderr_tail"))
        .unwrap_or_else(|| panic!("no stderr_tail event in:\n{text}"));
    assert!(tail.contains("WARN"), "{tail}");
    assert!(tail.contains("the last 10 lines of its stderr"), "{tail}");
    for kept in ["line-06", "line-14", "login failed for password [redacted]"] {
        assert!(tail.contains(kept), "{kept} missing: {tail}");
    }
    for dropped in ["line-01", "line-05"] {
        assert!(!tail.contains(dropped), "{dropped} kept: {tail}");
    }
    assert!(!text.contains("hunter2-secret"), "{text}");
}

#[tokio::test]
async fn a_command_that_succeeds_logs_no_stderr_tail() {
    let (logs, _guard) = Logs::capture();
    Command::shell("echo 'warning: deprecated flag' >&2")
        .run(&Context::new())
        .await
        .unwrap();
    assert!(!logs.text().contains("stderr_tail"), "{}", logs.text());
}

#[tokio::test]
async fn the_stop_after_a_drop_is_a_clean_up_in_flight_until_the_group_is_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::new();
    let step = Command::shell(IGNORES_SIGTERM)
        .current_dir(dir.path())
        .kill_grace(Duration::from_secs(1));
    let ready = dir.path().join("ready");
    tokio::select! {
        result = step.run(&ctx) => panic!("the command ended by itself: {result:?}"),
        () = file_appears(&ready) => {}
    }
    // The attempt is gone, the leader ignores SIGTERM: the kill thread has work in flight.
    assert_eq!(ctx.cleanups().pending(), 1);
    let leader = read_pid(&dir.path().join("leader.pid"));
    let cleanups = ctx.cleanups().clone();
    tokio::task::spawn_blocking(move || cleanups.wait())
        .await
        .unwrap();
    // Done means killed and reaped.
    assert_eq!(state(leader), None);
}
