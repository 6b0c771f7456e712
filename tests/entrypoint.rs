//! The exec hand-off of `examples/entrypoint.rs` (`Plan::run_main_then_exec`), run as a real
//! process: the program it execs keeps the PID, gets the environment and the rendered files, and
//! its exit code and signals are the process's.
//!
//! The scenarios that need a plan the example cannot build (published secrets exported to the
//! program, a command step left stopping) run this test binary itself as the init binary:
//! `--ignored --exact child_entry`, with the scenario in `INITKIT_TEST_SCENARIO` and the
//! program to exec (a `sh -c` script) in `INITKIT_TEST_EXEC`.
#![cfg(all(feature = "tcp", feature = "template"))]

mod example_bin;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use initkit::prelude::*;

fn entrypoint() -> Command {
    let mut cmd = Command::new(example_bin::path("entrypoint"));
    cmd.env_remove("INITKIT_DRY_RUN")
        .env("INITKIT_LOG", "warn")
        .env("INITKIT_TERMINATION_LOG", "/dev/null");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .expect("the entrypoint example runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_execd_program_keeps_the_pid() {
    let mut child = entrypoint()
        .args(["--", "sh", "-c", "echo $$"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(line.trim(), pid.to_string());
}

#[test]
fn the_execd_program_gets_the_environment_and_its_arguments() {
    let output = run(entrypoint()
        .env("GREETING", "hello from the environment")
        .args([
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$GREETING\" \"$1\"",
            "sh",
            "two words",
        ]));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "hello from the environment|two words");
}

#[test]
fn the_exit_code_is_the_programs() {
    let output = run(entrypoint().args(["--", "sh", "-c", "exit 42"]));
    assert_eq!(output.status.code(), Some(42));
}

#[test]
fn signals_go_to_the_execd_program() {
    // initkit's own SIGTERM handling would exit 143; the program's trap exits 7.
    let mut child = entrypoint()
        .args([
            "--",
            "sh",
            "-c",
            "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(child.wait().unwrap().code(), Some(7));
}

#[test]
fn the_program_starts_after_the_port_accepts_and_the_file_is_rendered() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("app.toml.j2");
    std::fs::write(&template, "greeting = \"{{ env.GREETING }}\"\n").unwrap();
    let dest = dir.path().join("config/app.toml");
    let output = run(entrypoint().env("GREETING", "hi").args([
        "--wait".to_owned(),
        format!("127.0.0.1:{port}"),
        "--render".to_owned(),
        format!("{}={}", template.display(), dest.display()),
        "--".to_owned(),
        "cat".to_owned(),
        dest.display().to_string(),
    ]));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "greeting = \"hi\"\n");
}

#[test]
fn a_plan_that_fails_never_runs_the_program() {
    // A port nobody listens on, and a one-second deadline: exit 124, as timeout(1).
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let started = Instant::now();
    let output = run(entrypoint().args([
        "--timeout".to_owned(),
        "1".to_owned(),
        "--wait".to_owned(),
        format!("127.0.0.1:{port}"),
        "--".to_owned(),
        "echo".to_owned(),
        "the program ran".to_owned(),
    ]));
    assert_eq!(output.status.code(), Some(124), "{output:?}");
    assert_eq!(stdout(&output), "");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_timeout_beyond_the_duration_bound_exits_2_and_names_the_deadline() {
    // Before: `Instant + Duration` overflowed, a panic (exit 101, SIGABRT in release).
    let output = run(entrypoint().args([
        "--timeout",
        "18446744073709551615",
        "--",
        "echo",
        "the program ran",
    ]));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(stdout(&output), "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("deadline = 18446744073709551615s: expected a duration of at most 365 days"),
        "{stderr}"
    );
}

#[test]
fn a_program_that_is_not_found_exits_127() {
    let output = run(entrypoint().args(["--", "/nonexistent/app"]));
    assert_eq!(output.status.code(), Some(127));
}

#[test]
fn without_a_program_it_is_an_init_container() {
    let output = run(entrypoint().args(["--timeout", "5"]));
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn a_bad_command_line_exits_2() {
    for args in [
        &["--render", "no-equals-sign"][..],
        &["--timeout", "soon"],
        &["--wait"],
        &["--frobnicate"],
    ] {
        let output = run(entrypoint().args(args));
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    }
}

#[test]
fn a_dry_run_validates_without_running_anything() {
    let output = run(entrypoint().env("INITKIT_DRY_RUN", "1").args([
        "--wait",
        "postgres:5432",
        "--",
        "echo",
        "the program ran",
    ]));
    assert!(output.status.success(), "{output:?}");
    let out = stdout(&output);
    assert!(out.contains("tcp postgres:5432"), "{out}");
    assert!(!out.contains("the program ran"), "{out}");
    let bad = run(entrypoint()
        .env("INITKIT_DRY_RUN", "1")
        .args(["--wait", "postgres", "--", "true"]));
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
}

/// The secret a step publishes in the exec scenarios.
const DB_PASSWORD: &str = "pw-Exported-9f3c1a";

/// Publishes `db` as a secret, as a Vault KV read would.
#[derive(Debug)]
struct PublishDb;

#[async_trait]
impl Step for PublishDb {
    fn name(&self) -> &str {
        "vault-db"
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        ctx.publish_secret(
            "db",
            serde_json::json!({ "username": "orders", "password": DB_PASSWORD }),
        );
        tracing::debug!("published db");
        Ok(())
    }
}

fn plan_for(scenario: &str) -> Plan {
    let publish = Plan::new("exec").step(PublishDb);
    match scenario {
        "exec_env" => publish.exec_env("DB_PASSWORD", "db.password"),
        "exec_env_keep_vault" => publish
            .exec_env("DB_PASSWORD", "db.password")
            .exec_keep_vault_env(),
        "exec_env_missing" => publish.exec_env("DB_PASSWORD", "db.pasword"),
        "exec_env_invalid" => publish.exec_env("DB_PASSWORD", "db..password"),
        #[cfg(feature = "command")]
        "command_left_stopping" => {
            use initkit::Command;
            // Ignores SIGTERM, so only the SIGKILL after the grace period stops it.
            let step = Command::shell(
                "trap '' TERM; echo $$ > \"$LEADER_PID\"; while :; do sleep 0.05; done",
            )
            .kill_grace(Duration::from_secs(2))
            .named("stubborn")
            .retry(Retry::never())
            .timeout(Duration::from_secs(1))
            .optional();
            Plan::new("exec").step(step)
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
#[ignore = "entry point of the init processes that the exec tests start"]
fn child_entry() {
    let scenario = std::env::var("INITKIT_TEST_SCENARIO").expect("INITKIT_TEST_SCENARIO");
    let script = std::env::var("INITKIT_TEST_EXEC").expect("INITKIT_TEST_EXEC");
    let code = plan_for(&scenario).run_main_then_exec(["sh", "-c", &script]);
    // Only reached when the plan failed or the program could not be executed.
    let code = (0..=u8::MAX)
        .find(|&n| std::process::ExitCode::from(n) == code)
        .expect("an exit code is a byte");
    std::process::exit(i32::from(code));
}

/// This test binary as an init binary running `scenario`, then execing `sh -c script`.
fn init_then_exec(scenario: &str, script: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "child_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("INITKIT_TEST_SCENARIO", scenario)
    .env("INITKIT_TEST_EXEC", script)
    .env_remove("INITKIT_DRY_RUN")
    .env_remove("INITKIT_REPORT")
    .env("INITKIT_LOG", "trace")
    .env("INITKIT_TERMINATION_LOG", "/dev/null");
    cmd
}

/// What the exec'd program records: the variable it got, and its whole environment.
const RECORD_ENV: &str = r#"printf %s "$DB_PASSWORD" > "$OUT/password"; env > "$OUT/env""#;

#[test]
fn published_values_are_exported_to_the_execd_program_and_vault_variables_are_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let output = run(init_then_exec("exec_env", RECORD_ENV)
        .env("OUT", dir.path())
        .env("INITKIT_REPORT", &report)
        .env("VAULT_TOKEN", "hvs.init-only-token")
        .env("VAULT_ADDR", "http://127.0.0.1:8200"));
    assert!(output.status.success(), "{output:?}");
    let password = std::fs::read_to_string(dir.path().join("password")).unwrap();
    assert_eq!(password, DB_PASSWORD);
    let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
    assert!(
        env.lines().all(|l| !l.starts_with("VAULT_")),
        "a VAULT_ variable reached the program:\n{env}"
    );
    assert!(
        env.contains("OUT="),
        "the rest of the environment is kept:\n{env}"
    );
    // Logged at trace level, reported, never printed.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("plan succeeded; exec"), "{stderr}");
    assert!(
        stderr.contains("DB_PASSWORD"),
        "the exported name is logged: {stderr}"
    );
    for (what, text) in [
        ("stdout", stdout(&output)),
        ("stderr", stderr.into_owned()),
        ("report", std::fs::read_to_string(&report).unwrap()),
    ] {
        assert!(
            !text.contains(DB_PASSWORD),
            "the value is in the {what}:\n{text}"
        );
    }
}

#[test]
fn vault_variables_reach_the_program_when_kept() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(init_then_exec("exec_env_keep_vault", RECORD_ENV)
        .env("OUT", dir.path())
        .env("VAULT_TOKEN", "hvs.init-only-token"));
    assert!(output.status.success(), "{output:?}");
    let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
    assert!(
        env.lines().any(|l| l == "VAULT_TOKEN=hvs.init-only-token"),
        "{env}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("password")).unwrap(),
        DB_PASSWORD
    );
}

#[test]
fn an_exported_value_that_was_not_published_fails_without_running_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let output = run(init_then_exec("exec_env_missing", "echo the program ran")
        .env("INITKIT_TERMINATION_LOG", &log));
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(!stdout(&output).contains("the program ran"));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "exec environment variable DB_PASSWORD: values.db.pasword is not published"
    );
}

#[test]
fn a_malformed_exported_value_path_is_refused_before_any_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let output = run(init_then_exec("exec_env_invalid", "echo the program ran")
        .env("INITKIT_TERMINATION_LOG", &log));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(!stdout(&output).contains("the program ran"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("published db"), "a step ran: {stderr}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "plan \"exec\" is invalid: exec environment variable DB_PASSWORD: \
         value path \"db..password\": expected names separated by dots"
    );
}

#[cfg(feature = "command")]
#[test]
fn a_command_left_stopping_is_killed_and_reaped_before_the_program_starts() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("leader.pid");
    // The program looks for the step's shell (it ignored SIGTERM) as soon as it starts.
    let script = r#"pid=$(cat "$LEADER_PID"); if [ -e "/proc/$pid" ]; then echo "alive $pid"; else echo "gone $pid"; fi"#;
    let started = Instant::now();
    let output = run(init_then_exec("command_left_stopping", script)
        .env("LEADER_PID", &pid_file)
        .env("INITKIT_LOG", "info"));
    assert!(output.status.success(), "{output:?}");
    // The harness's own lines come first, on the same stdout.
    let out = stdout(&output);
    assert!(
        out.contains("gone ") && !out.contains("alive "),
        "{output:?}"
    );
    // The step's timeout (1 s), then its grace period (2 s) before SIGKILL.
    assert!(started.elapsed() >= Duration::from_secs(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("waiting for steps' child processes to stop before exec"),
        "{stderr}"
    );
}

#[cfg(feature = "command")]
#[test]
fn sigterm_while_waiting_for_a_command_to_stop_exits_143_without_running_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("leader.pid");
    let mut child = init_then_exec("command_left_stopping", "echo the program ran")
        .env("LEADER_PID", &pid_file)
        .env("INITKIT_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("waiting for steps' child processes to stop before exec") {
        line.clear();
        assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "no wait logged");
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    // Its group got SIGTERM, which it ignores; our exit ends it in a container (PID 1).
    let leader = std::fs::read_to_string(&pid_file).unwrap();
    let _ = Command::new("kill").args(["-KILL", leader.trim()]).status();
    assert_eq!(output.status.code(), Some(143), "{output:?}");
    assert!(!stdout(&output).contains("the program ran"), "{output:?}");
}
