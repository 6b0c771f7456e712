//! `FileWait` against real files and directories in a temporary directory, run inside a real plan.
#![cfg(feature = "fs")]

use std::time::Duration;

use init_core::{Context, Outcome, Plan, Report, Step, StepExt, StepStatus, ValidateContext};
use init_steps::fs::FileWait;

async fn run(step: impl Step + 'static) -> Report {
    Plan::new("test").step(step).run(&Context::new()).await
}

/// Runs `write` after `delay`, on another task.
fn later(delay: Duration, write: impl FnOnce() + Send + 'static) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        write();
    })
}

#[tokio::test]
async fn waits_for_a_file_that_appears_late() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ready");
    let target = path.clone();
    let writer = later(Duration::from_millis(300), move || {
        std::fs::write(target, "").unwrap()
    });

    let report = run(FileWait::new(&path).timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    assert!(report.steps[0].attempts > 1);
    writer.await.unwrap();
}

#[tokio::test]
async fn a_missing_file_times_out_saying_it_does_not_exist_yet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ready");

    let report = run(FileWait::new(&path).timeout(Duration::from_millis(300))).await;

    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(report.exit_code(), 124);
    let step = &report.steps[0];
    assert_eq!(step.name, format!("file {}", path.display()));
    assert_eq!(
        step.error.as_deref(),
        Some(&*format!("{}: does not exist yet", path.display()))
    );
    // Polled every 100 ms, not on a backoff that grows towards a second.
    assert!(step.attempts >= 3, "{} attempts", step.attempts);
}

#[tokio::test]
async fn an_existing_directory_counts_as_existing() {
    let dir = tempfile::tempdir().unwrap();

    let report = run(FileWait::new(dir.path())).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 1);
}

#[tokio::test]
async fn non_empty_waits_until_the_file_has_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "").unwrap();
    let target = path.clone();
    let writer = later(Duration::from_millis(300), move || {
        std::fs::write(target, "s3cr3t").unwrap()
    });

    let report = run(FileWait::new(&path)
        .non_empty()
        .timeout(Duration::from_secs(20)))
    .await;

    assert!(report.is_success(), "{report:?}");
    assert!(report.steps[0].attempts > 1);
    writer.await.unwrap();
}

#[tokio::test]
async fn an_empty_file_times_out_saying_it_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "").unwrap();

    let report = run(FileWait::new(&path)
        .non_empty()
        .timeout(Duration::from_millis(300)))
    .await;

    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(
        report.steps[0].error.as_deref(),
        Some(&*format!("{}: is empty", path.display()))
    );
}

#[tokio::test]
async fn non_empty_waits_until_a_directory_has_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("certs");
    std::fs::create_dir(&shared).unwrap();
    let entry = shared.join("tls.crt");
    let writer = later(Duration::from_millis(300), move || {
        std::fs::write(entry, "x").unwrap()
    });

    let report = run(FileWait::new(&shared)
        .non_empty()
        .timeout(Duration::from_secs(20)))
    .await;

    assert!(report.is_success(), "{report:?}");
    assert!(report.steps[0].attempts > 1);
    writer.await.unwrap();
}

#[tokio::test]
async fn containing_waits_for_the_string_to_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, "starting\n").unwrap();
    let target = path.clone();
    let writer = later(Duration::from_millis(300), move || {
        std::fs::write(target, "starting\nlistening on :8080\n").unwrap();
    });

    let wait = FileWait::new(&path).containing("listening on");
    let report = run(wait.timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    assert!(report.steps[0].attempts > 1);
    writer.await.unwrap();
}

#[tokio::test]
async fn containing_says_what_is_missing_and_how_much_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, "0123456789 ready").unwrap();

    let short = FileWait::new(&path).containing("ready").max_size(10);
    let report = run(short.timeout(Duration::from_millis(300))).await;

    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(
        report.steps[0].error.as_deref(),
        Some(&*format!(
            "{}: does not contain \"ready\" in its first 10 bytes yet",
            path.display()
        ))
    );
    let whole = FileWait::new(&path).containing("ready").max_size(16);
    assert!(run(whole).await.is_success());
}

#[tokio::test]
async fn containing_on_a_directory_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();

    let report = run(FileWait::new(dir.path()).containing("ready")).await;

    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.exit_code(), 1);
    let step = &report.steps[0];
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(step.attempts, 1);
    assert_eq!(
        step.error.as_deref(),
        Some(&*format!(
            "{}: is a directory, expected a file",
            dir.path().display()
        ))
    );
}

#[tokio::test]
async fn a_path_below_a_regular_file_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let path = file.join("ready");

    let report = run(FileWait::new(&path)).await;

    assert_eq!(report.outcome, Outcome::Failed);
    let step = &report.steps[0];
    assert_eq!(step.attempts, 1);
    assert_eq!(
        step.error.as_deref(),
        Some(&*format!("{}: not a directory", path.display()))
    );
}

#[tokio::test]
async fn bad_settings_fail_validation_before_anything_runs() {
    let cases = [
        (FileWait::new(""), "file wait: expected a path, got \"\""),
        (
            FileWait::new("/shared/ready").containing(""),
            "file /shared/ready: containing \"\": expected a non-empty string",
        ),
        (
            FileWait::new("/shared/ready").max_size(0),
            "file /shared/ready: read limit 0: expected at least 1 byte",
        ),
    ];
    for (wait, expected) in cases {
        let err = wait.validate(&ValidateContext::process()).unwrap_err();
        assert!(err.is_invalid());
        assert_eq!(err.to_string(), expected);
        let report = run(wait).await;
        assert_eq!(report.exit_code(), 2);
    }
}
