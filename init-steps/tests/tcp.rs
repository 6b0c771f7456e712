//! `TcpWait` against real loopback sockets, run inside a real plan.
#![cfg(feature = "tcp")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use init_core::{Context, Outcome, Plan, Report, Step, StepExt, StepStatus, ValidateContext};
use init_steps::tcp::TcpWait;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

#[path = "support/logs.rs"]
mod logs;

/// A port that is bound but not listening: connections are refused until `listen` is called,
/// and no other process can take the port in between.
fn closed_port(ip: &str) -> (TcpSocket, SocketAddr) {
    let addr: SocketAddr = format!("{ip}:0").parse().unwrap();
    let socket = if addr.is_ipv6() {
        TcpSocket::new_v6().unwrap()
    } else {
        TcpSocket::new_v4().unwrap()
    };
    socket.bind(addr).unwrap();
    let local = socket.local_addr().unwrap();
    (socket, local)
}

/// Accepts connections forever, closing each at once, and counts them.
fn accept_and_close(listener: TcpListener) -> Arc<AtomicUsize> {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    accepted
}

/// How many connections `counter` counted, once the accept loop has drained its queue (every
/// connection a finished step made is queued already).
async fn settled(counter: &AtomicUsize) -> usize {
    tokio::time::sleep(Duration::from_millis(100)).await;
    counter.load(Ordering::SeqCst)
}

/// A listener whose accept queue is full, so a new connection gets no answer at all. Keep the
/// returned parts alive for as long as the port must stay silent.
async fn silent_port() -> (Vec<TcpStream>, TcpListener, SocketAddr) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(stream) => queued.push(stream.unwrap()),
            Err(_) => return (queued, listener, addr),
        }
    }
    panic!("the accept queue of {addr} never filled up");
}

async fn run(step: impl Step + 'static) -> Report {
    Plan::new("test").step(step).run(&Context::new()).await
}

#[tokio::test]
async fn waits_for_a_port_that_opens_late_polling_it_quickly() {
    let (socket, addr) = closed_port("127.0.0.1");
    let opener = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        accept_and_close(socket.listen(16).unwrap())
    });

    let report = run(TcpWait::new(addr.to_string()).timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    let step = &report.steps[0];
    // A refused port is polled at the wait cadence (10 to 20 ms apart in the first 500 ms);
    // the backoff (100 ms, 200 ms, ...) would make at most 4 attempts in 500 ms.
    assert!(step.attempts >= 8, "only {} attempts", step.attempts);
    assert_eq!(settled(&opener.await.unwrap()).await, 1);
}

#[tokio::test]
async fn a_port_that_stays_closed_times_out_naming_the_target() {
    let (_socket, addr) = closed_port("127.0.0.1");

    let report =
        run(TcpWait::new(format!("tcp://{addr}")).timeout(Duration::from_millis(300))).await;

    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(report.exit_code(), 124);
    let step = &report.steps[0];
    assert_eq!(step.name, format!("tcp {addr}"));
    assert_eq!(step.status, StepStatus::Failed);
    assert!(step.timed_out);
    assert_eq!(
        step.error.as_deref(),
        Some(&*format!("{addr}: connection refused"))
    );
}

#[tokio::test]
async fn a_listener_that_closes_at_once_counts_as_ready() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = accept_and_close(listener);

    let report = run(TcpWait::new(addr.to_string()).timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 1);
    assert_eq!(settled(&accepted).await, 1);
}

#[tokio::test]
async fn a_port_that_never_answers_times_out_each_connect_and_backs_off() {
    let (_queued, _listener, addr) = silent_port().await;
    let wait = TcpWait::new(addr.to_string())
        .connect_timeout(Duration::from_millis(200))
        .timeout(Duration::from_millis(1500));

    let report = run(wait).await;

    assert_eq!(report.outcome, Outcome::TimedOut);
    let step = &report.steps[0];
    assert_eq!(
        step.error.as_deref(),
        Some(&*format!("{addr}: no answer within 200ms"))
    );
    // 200 ms per attempt plus a backoff of 100 ms, 200 ms, 400 ms (each up to twice that with
    // jitter): far fewer attempts than the fast polling of a refused port would make.
    assert!(
        (2..=6).contains(&step.attempts),
        "{} attempts",
        step.attempts
    );
}

#[tokio::test]
async fn waits_on_ipv6_loopback() {
    let (socket, addr) = closed_port("[::1]");
    assert_eq!(addr.to_string(), format!("[::1]:{}", addr.port()));
    let opener = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        accept_and_close(socket.listen(16).unwrap())
    });

    let report = run(TcpWait::new(addr.to_string()).timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    assert!(report.steps[0].attempts > 1);
    assert_eq!(settled(&opener.await.unwrap()).await, 1);
}

#[tokio::test]
async fn resolves_a_host_name() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = accept_and_close(listener);

    let report =
        run(TcpWait::new(format!("localhost:{port}")).timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(settled(&accepted).await, 1);
}

#[tokio::test]
async fn waits_for_every_target_connecting_once_to_each() {
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    let up_accepted = accept_and_close(up);
    let (late_socket, late_addr) = closed_port("127.0.0.1");
    let opener = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        accept_and_close(late_socket.listen(16).unwrap())
    });

    let wait = TcpWait::all([up_addr.to_string(), late_addr.to_string()]);
    let report = run(wait.timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    assert!(report.steps[0].attempts > 1);
    // The target that was up is not connected to again while the other one is pending.
    assert_eq!(settled(&up_accepted).await, 1);
    assert_eq!(settled(&opener.await.unwrap()).await, 1);
}

#[tokio::test]
async fn the_error_names_only_the_targets_still_pending() {
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    let _up_accepted = accept_and_close(up);
    let (_a, closed_a) = closed_port("127.0.0.1");
    let (_b, closed_b) = closed_port("[::1]");

    let wait = TcpWait::all([
        closed_a.to_string(),
        up_addr.to_string(),
        closed_b.to_string(),
    ]);
    let report = run(wait.timeout(Duration::from_millis(300))).await;

    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(
        report.steps[0].error.as_deref(),
        Some(&*format!(
            "{closed_a}: connection refused; {closed_b}: connection refused"
        ))
    );
}

#[tokio::test]
async fn each_failed_attempt_is_logged_with_the_pending_target_and_why() {
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    let _up_accepted = accept_and_close(up);
    let (_closed, closed) = closed_port("127.0.0.1");

    let (logs, guard) = logs::capture();
    let wait = TcpWait::all([up_addr.to_string(), closed.to_string()]);
    let report = run(wait.timeout(Duration::from_millis(500))).await;
    drop(guard);

    assert_eq!(report.outcome, Outcome::TimedOut);
    let logs = logs.text();
    for attempt in [1, 2, 12] {
        let line = format!("attempt={attempt} error={closed}: connection refused");
        assert!(logs.contains(&line), "no {line:?} in\n{logs}");
    }
    assert!(
        !logs.contains(&format!("error={up_addr}")),
        "the target that accepted is not named:\n{logs}"
    );
}

#[tokio::test]
async fn running_the_step_again_checks_every_target_again() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = accept_and_close(listener);
    let plan = Plan::new("twice").step(TcpWait::new(addr.to_string()));

    assert!(plan.run(&Context::new()).await.is_success());
    assert!(plan.run(&Context::new()).await.is_success());

    assert_eq!(settled(&accepted).await, 2);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_backs_off_and_says_so() {
    let wait = TcpWait::new("no-such-host.invalid:5432").timeout(Duration::from_millis(1200));

    let report = run(wait).await;

    assert_eq!(report.outcome, Outcome::TimedOut);
    let step = &report.steps[0];
    let error = step.error.as_deref().unwrap();
    assert!(
        error.starts_with("no-such-host.invalid:5432: cannot resolve no-such-host.invalid"),
        "{error}"
    );
    // Backoff of 100 ms, 200 ms, 400 ms (up to twice that with jitter), not fast polling.
    assert!(
        (2..=6).contains(&step.attempts),
        "{} attempts",
        step.attempts
    );
}

#[tokio::test]
async fn bad_targets_fail_validation_before_anything_runs() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = accept_and_close(listener);
    let cases = [
        ("postgres", "tcp target \"postgres\": expected host:port"),
        (
            "postgres:99999",
            "port \"99999\": expected a number from 1 to 65535",
        ),
        ("http://postgres:80", "scheme \"http\""),
        ("::1:5432", "an IPv6 address needs brackets"),
    ];
    for (target, expected) in cases {
        let plan = Plan::new("bad")
            .step(TcpWait::new(addr.to_string()))
            .step(TcpWait::new(target));

        let report = plan.run(&Context::new()).await;

        assert_eq!(report.outcome, Outcome::Invalid, "{target}");
        assert_eq!(report.exit_code(), 2);
        let error = report.error.as_deref().unwrap_or_default();
        assert!(
            error.contains(expected),
            "{target}: {error:?} lacks {expected:?}"
        );
    }
    assert_eq!(settled(&accepted).await, 0, "nothing ran");
}

#[test]
fn an_empty_target_list_and_a_zero_connect_timeout_are_invalid() {
    let empty = TcpWait::all(Vec::<String>::new())
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert_eq!(
        empty.to_string(),
        "tcp wait: expected at least one host:port target"
    );
    let zero = TcpWait::new("db:5432")
        .connect_timeout(Duration::ZERO)
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert!(zero.is_invalid());
    assert_eq!(
        zero.to_string(),
        "tcp db:5432: connect timeout 0s: expected a duration greater than zero"
    );
}

#[test]
fn waits_use_the_wait_policy() {
    assert_eq!(TcpWait::new("db:5432").policy(), init_core::Policy::wait());
}
