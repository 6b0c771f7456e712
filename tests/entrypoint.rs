//! The exec hand-off of `examples/entrypoint.rs` (`Plan::run_main_then_exec`), run as a real
//! process: the program it execs keeps the PID, gets the environment and the rendered files, and
//! its exit code and signals are the process's.
#![cfg(all(feature = "tcp", feature = "template"))]

mod example_bin;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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
