//! The process contract on a real child process: exit codes, signals, the termination message,
//! the JSON report, JSON logs and redaction at trace level.
//!
//! The child is this test binary itself, started with `--ignored --exact child_entry` and the
//! scenario in `INITKIT_TEST_SCENARIO`; `child_entry` builds that scenario's plan and exits
//! with `Plan::run_main_code`.
#![cfg(feature = "run-main")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use init_core::{Context, Plan, Policy, Retry, Step, StepError, StepExt, async_trait};

const SECRET: &str = "s3cr3t-Value-42";

/// A step that does what its scenario says.
#[derive(Debug)]
struct Act {
    name: &'static str,
    action: Action,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Succeed,
    FailPermanently,
    Hang,
    SpawnChildAndWait,
    LeakSecret,
    LongError,
    /// A bug: panics with a secret in its message.
    Panic,
    /// A bug in `validate`.
    PanicInValidate,
}

#[async_trait]
impl Step for Act {
    fn name(&self) -> &str {
        self.name
    }

    fn policy(&self) -> Policy {
        Policy::new().with_retry(Retry::never())
    }

    fn validate(&self, _: &init_core::ValidateContext<'_>) -> Result<(), StepError> {
        if matches!(self.action, Action::PanicInValidate) {
            panic!("validate is not implemented");
        }
        Ok(())
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        match self.action {
            Action::Succeed => Ok(()),
            Action::FailPermanently => Err(StepError::permanent(
                "secret/orders/db: permission denied (403)",
            )),
            Action::Hang => std::future::pending().await,
            Action::SpawnChildAndWait => {
                let mut child = tokio::process::Command::new("sleep")
                    .arg("1000")
                    .kill_on_drop(true)
                    .spawn()?;
                let pid = child.id().expect("running child has a pid");
                let pid_file = ctx.env("INITKIT_TEST_PIDFILE").expect("pid file path");
                std::fs::write(pid_file, pid.to_string())?;
                child.wait().await?;
                Ok(())
            }
            Action::LeakSecret => {
                ctx.publish_secret("db", serde_json::json!({ "password": SECRET }));
                tracing::trace!("the password is {SECRET}");
                tracing::info!(password = SECRET, "a field with the secret");
                Err(StepError::permanent(format!(
                    "login failed with password {SECRET}"
                )))
            }
            Action::LongError => Err(StepError::permanent("x".repeat(10_000))),
            Action::Panic => {
                ctx.publish_secret("db", serde_json::json!({ "password": SECRET }));
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _port: u16 = SECRET
                    .parse()
                    .unwrap_or_else(|e| panic!("cannot parse {SECRET}: {e:?}"));
                Ok(())
            }
            Action::PanicInValidate => Ok(()),
        }
    }
}

fn plan_for(scenario: &str) -> Plan {
    let step = |name, action| Act { name, action };
    match scenario {
        "succeed" => Plan::new("demo").step(step("ready", Action::Succeed)),
        "fail" => Plan::new("demo").step(step("vault-db", Action::FailPermanently)),
        "invalid" => Plan::new("demo")
            .step(step("twin", Action::Succeed))
            .step(step("twin", Action::Succeed)),
        "timeout" => Plan::new("demo")
            .step(step("postgres", Action::Hang).timeout(Duration::from_millis(200))),
        "child" => Plan::new("demo").step(step("migrate", Action::SpawnChildAndWait)),
        "secret" => Plan::new("demo").step(step("vault-db", Action::LeakSecret)),
        "long" => Plan::new("demo").step(step("verbose", Action::LongError)),
        "panic" => Plan::new("demo")
            .step(step("ready", Action::Succeed))
            .concurrently([
                step("migrate", Action::Panic).boxed(),
                step("sibling", Action::Hang).boxed(),
            ])
            .step(step("after", Action::Succeed)),
        "panic_in_validate" => Plan::new("demo")
            .step(step("ready", Action::Succeed))
            .step(step("unfinished", Action::PanicInValidate)),
        "secret_outline" => {
            // A step name built from a secret environment variable.
            let token = std::env::var("APP_TOKEN").expect("APP_TOKEN");
            let name: &'static str = Box::leak(format!("register-{token}").into_boxed_str());
            Plan::new("demo").step(step(name, Action::Succeed))
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
#[ignore = "entry point of the child processes that the other tests start"]
fn child_entry() {
    let scenario = std::env::var("INITKIT_TEST_SCENARIO").expect("INITKIT_TEST_SCENARIO");
    let code = plan_for(&scenario).run_main_code();
    std::process::exit(i32::from(code));
}

/// A child process running `scenario`, with a clean `INITKIT_*` environment plus `env`.
fn child(scenario: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "child_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("INITKIT_TEST_SCENARIO", scenario)
    .env_remove("INITKIT_LOG")
    .env_remove("INITKIT_LOG_FORMAT")
    .env_remove("INITKIT_REPORT")
    .env_remove("INITKIT_DRY_RUN")
    .env("INITKIT_TERMINATION_LOG", "/dev/null")
    .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn run(scenario: &str, env: &[(&str, &str)]) -> Output {
    child(scenario, env).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[test]
fn exit_codes_follow_the_contract() {
    for (scenario, expected) in [
        ("succeed", 0),
        ("fail", 1),
        ("invalid", 2),
        ("timeout", 124),
    ] {
        let out = run(scenario, &[]);
        assert_eq!(
            out.status.code(),
            Some(expected),
            "scenario {scenario}: stderr {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_failure_writes_one_line_to_the_termination_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = temp_file(dir.path(), "termination-log");
    let out = run(
        "fail",
        &[("INITKIT_TERMINATION_LOG", log.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    let message = std::fs::read_to_string(&log).unwrap();
    assert!(
        message.starts_with("step \"vault-db\" failed after 1 attempt in 0.")
            && message.ends_with("s: secret/orders/db: permission denied (403)"),
        "{message:?}"
    );
    assert!(!message.contains('\n'));
}

#[test]
fn an_invalid_plan_says_why_in_the_termination_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = temp_file(dir.path(), "termination-log");
    let out = run(
        "invalid",
        &[("INITKIT_TERMINATION_LOG", log.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "plan \"demo\" is invalid: duplicate step name \"twin\""
    );
}

#[test]
fn the_termination_message_is_capped_at_4096_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = temp_file(dir.path(), "termination-log");
    let out = run(
        "long",
        &[("INITKIT_TERMINATION_LOG", log.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    let message = std::fs::read(&log).unwrap();
    assert_eq!(message.len(), 4096);
    assert!(message.starts_with(b"step \"verbose\" failed"));
}

#[test]
fn sigterm_while_a_step_waits_exits_143_and_kills_its_child_process() {
    stop_with_signal("TERM", 143);
}

#[test]
fn sigint_while_a_step_waits_exits_130() {
    stop_with_signal("INT", 130);
}

fn stop_with_signal(signal: &str, expected: i32) {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = temp_file(dir.path(), "pid");
    let log = temp_file(dir.path(), "termination-log");
    let mut process = child(
        "child",
        &[
            ("INITKIT_TEST_PIDFILE", pid_file.to_str().unwrap()),
            ("INITKIT_TERMINATION_LOG", log.to_str().unwrap()),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();

    // Wait (generously) until the step has started its own child.
    let started = Instant::now();
    let grandchild: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    };

    let status = Command::new("kill")
        .args([format!("-{signal}"), process.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_with_timeout(&mut process, Duration::from_secs(10));
    assert_eq!(exit, Some(expected));
    assert!(
        wait_until_dead(grandchild, Duration::from_secs(10)),
        "the step's child {grandchild} outlived the plan"
    );
    let message = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        message,
        format!("plan \"demo\" stopped by SIG{signal} while running step \"migrate\"")
    );
}

fn wait_with_timeout(process: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = process.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = process.kill();
    None
}

/// Dead means gone from /proc, or a zombie waiting for its new parent to reap it.
fn wait_until_dead(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) => {
                let state = stat
                    .rsplit(')')
                    .next()
                    .and_then(|s| s.split_whitespace().next());
                if matches!(state, Some("Z" | "X")) {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_secret_never_reaches_output_report_or_termination_message_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let report = temp_file(dir.path(), "report.json");
    let log = temp_file(dir.path(), "termination-log");
    for format in ["text", "json"] {
        let out = run(
            "secret",
            &[
                ("INITKIT_LOG", "trace"),
                ("INITKIT_LOG_FORMAT", format),
                ("INITKIT_REPORT", report.to_str().unwrap()),
                ("INITKIT_TERMINATION_LOG", log.to_str().unwrap()),
            ],
        );
        assert_eq!(out.status.code(), Some(1));
        let stdout = text(&out.stdout);
        let stderr = text(&out.stderr);
        let report = std::fs::read_to_string(&report).unwrap();
        let message = std::fs::read_to_string(&log).unwrap();
        for (what, content) in [
            ("stdout", &stdout),
            ("stderr", &stderr),
            ("report", &report),
            ("termination message", &message),
        ] {
            assert!(
                !content.contains(SECRET),
                "{format}: the secret leaked into {what}: {content}"
            );
        }
        // The lines that would have carried it are there, redacted.
        assert!(
            stderr.contains("the password is [redacted]"),
            "{format}: {stderr}"
        );
        assert!(stderr.contains("login failed with password [redacted]"));
        assert!(
            message.ends_with("login failed with password [redacted]"),
            "{message}"
        );
        assert!(report.contains("login failed with password [redacted]"));
    }
}

#[test]
fn every_json_log_line_parses() {
    let out = run(
        "fail",
        &[("INITKIT_LOG", "trace"), ("INITKIT_LOG_FORMAT", "json")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "expected log lines, got {stderr:?}");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            value.get("level").is_some() && value.get("timestamp").is_some(),
            "{line}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"step\"") && l.contains("vault-db"))
    );
}

#[test]
fn the_report_file_holds_the_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = temp_file(dir.path(), "report.json");
    let out = run("succeed", &[("INITKIT_REPORT", report.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(0));
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(value["plan"], "demo");
    assert_eq!(value["outcome"], "succeeded");
    assert_eq!(value["steps"][0]["name"], "ready");
}

#[test]
fn the_report_file_is_replaced_whole_and_no_temporary_file_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let report = temp_file(dir.path(), "report.json");
    // A longer report from an earlier run, and a reader holding it open.
    std::fs::write(&report, format!("{{\"old\":\"{}\"}}", "x".repeat(10_000))).unwrap();
    let reader = std::fs::File::open(&report).unwrap();
    let out = run("fail", &[("INITKIT_REPORT", report.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(1));

    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(value["outcome"], "failed");
    // Renamed over, not rewritten in place: the old file is intact for its reader.
    assert_eq!(reader.metadata().unwrap().len(), 10_010);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["report.json"]);
}

#[test]
fn a_report_that_cannot_be_written_is_reported_and_the_exit_code_stands() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("missing").join("report.json");
    let out = run("succeed", &[("INITKIT_REPORT", report.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("initkit: cannot write the report to ")
            && stderr.contains("missing/report.json: create "),
        "{stderr}"
    );
}

#[test]
fn the_dry_run_outline_is_redacted() {
    let out = run(
        "secret_outline",
        &[
            ("INITKIT_DRY_RUN", "1"),
            ("APP_TOKEN", "s3cr3t-outline-token"),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("1. register-[redacted] attempts="),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cr3t-outline-token"), "{stdout}");
}

#[test]
fn a_dry_run_prints_the_plan_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = temp_file(dir.path(), "pid");
    let out = run(
        "child",
        &[
            ("INITKIT_DRY_RUN", "1"),
            ("INITKIT_TEST_PIDFILE", pid_file.to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("plan \"demo\"") && stdout.contains("1. migrate attempts=1"),
        "{stdout}"
    );
    assert!(stdout.contains("plan is valid"));
    assert!(!pid_file.exists(), "a dry run started the step");
    assert_eq!(
        run("invalid", &[("INITKIT_DRY_RUN", "1")]).status.code(),
        Some(2)
    );
}

#[test]
fn bad_logging_configuration_exits_2_before_anything_runs() {
    let out = run("succeed", &[("INITKIT_LOG_FORMAT", "xml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(
        "initkit: invalid configuration: INITKIT_LOG_FORMAT = \"xml\": expected one of: text, json"
    ));
    let out = run("succeed", &[("INITKIT_LOG", "info,[[[")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("INITKIT_LOG = \"info,[[[\""));
}

#[test]
fn a_panicking_step_leaves_a_report_and_a_termination_message_and_exits_101() {
    let dir = tempfile::tempdir().unwrap();
    let report = temp_file(dir.path(), "report.json");
    let log = temp_file(dir.path(), "termination-log");
    let out = run(
        "panic",
        &[
            ("INITKIT_REPORT", report.to_str().unwrap()),
            ("INITKIT_TERMINATION_LOG", log.to_str().unwrap()),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(101), "{stderr}");

    let message = std::fs::read_to_string(&log).unwrap();
    assert!(
        message.starts_with("step \"migrate\" failed after 1 attempt in 0.")
            && message.contains("s: panicked at init-core/tests/process.rs:")
            && message.ends_with(": cannot parse [redacted]: ParseIntError { kind: InvalidDigit }"),
        "{message:?}"
    );

    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(value["outcome"], "panicked");
    let steps: Vec<(&str, &str)> = value["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("ready", "succeeded"),
            ("migrate", "failed"),
            ("sibling", "cancelled"),
            ("after", "skipped"),
        ]
    );
    assert_eq!(value["steps"][1]["attempts"], 1);
    assert!(
        value["steps"][1]["error"]
            .as_str()
            .unwrap()
            .starts_with("panicked at init-core/tests/process.rs:")
    );

    // The default hook would have printed the message as it is.
    for (what, content) in [
        ("stderr", &stderr),
        ("report", &value.to_string()),
        ("message", &message),
    ] {
        assert!(
            !content.contains(SECRET),
            "the secret leaked into {what}: {content}"
        );
    }
    assert!(stderr.contains("this is a bug in the step"), "{stderr}");
}

#[test]
fn a_panic_in_validate_names_the_step_and_exits_101() {
    let dir = tempfile::tempdir().unwrap();
    let report = temp_file(dir.path(), "report.json");
    let log = temp_file(dir.path(), "termination-log");
    let out = run(
        "panic_in_validate",
        &[
            ("INITKIT_REPORT", report.to_str().unwrap()),
            ("INITKIT_TERMINATION_LOG", log.to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(101), "{}", text(&out.stderr));
    let message = std::fs::read_to_string(&log).unwrap();
    assert!(
        message.starts_with("step \"unfinished\" failed after 0 attempts in 0.0s: panicked at ")
            && message.ends_with(": validate is not implemented"),
        "{message:?}"
    );
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(value["outcome"], "panicked");
    assert_eq!(value["steps"][0]["status"], "skipped");
    assert_eq!(value["steps"][1]["name"], "unfinished");
    assert_eq!(value["steps"][1]["status"], "failed");
}
