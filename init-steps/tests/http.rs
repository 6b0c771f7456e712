//! `HttpWait` against real HTTP and HTTPS servers on loopback ports (axum, rustls, a CA made
//! with rcgen), run inside a real plan.
#![cfg(feature = "http")]

mod support {
    pub(crate) mod tls_server;
}
#[path = "support/logs.rs"]
mod logs;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use init_core::{
    Context, Outcome, Plan, Report, Retry, Step, StepExt, StepStatus, ValidateContext,
};
use init_steps::http::HttpWait;
use support::tls_server::{TestCa, serve_tls, serve_tls_switching};

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn run(step: impl Step + 'static) -> Report {
    Plan::new("test").step(step).run(&Context::new()).await
}

/// What a test server answers, request after request (the last answer repeats), and what it
/// saw.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Vec<(u16, &'static str)>>,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<(Method, HeaderMap)>>>,
}

impl Script {
    fn new(answers: &[(u16, &'static str)]) -> Self {
        Self {
            answers: Arc::new(answers.to_vec()),
            ..Self::default()
        }
    }

    fn statuses(codes: &[u16]) -> Self {
        Self::new(&codes.iter().map(|&c| (c, "")).collect::<Vec<_>>())
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/", get(answer))
            .route("/health", get(answer))
            .with_state(self.clone())
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn answer(State(script): State<Script>, method: Method, headers: HeaderMap) -> Response {
    let n = script.requests.fetch_add(1, Ordering::SeqCst);
    script.seen.lock().unwrap().push((method, headers));
    let (code, body) = script.answers[n.min(script.answers.len() - 1)];
    let mut response = (StatusCode::from_u16(code).unwrap(), body).into_response();
    if code == 302 {
        let location = header::HeaderValue::from_static("/target");
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

#[tokio::test]
async fn waits_through_unready_statuses_until_a_2xx() {
    let script = Script::statuses(&[503, 404, 500, 204]);
    let addr = serve(script.router()).await;

    let wait = HttpWait::get(format!("http://{addr}/health"));
    let report = run(wait.timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 4);
    assert_eq!(script.requests(), 4);
}

#[tokio::test]
async fn an_unready_status_times_out_naming_url_status_and_expectation() {
    let script = Script::statuses(&[503]);
    let addr = serve(script.router()).await;

    let wait = HttpWait::get(format!("http://{addr}/health?token=abc")).status("200,204");
    let report = run(wait.timeout(Duration::from_millis(500))).await;

    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(report.exit_code(), 124);
    let step = &report.steps[0];
    assert_eq!(step.name, format!("GET http://{addr}/health"));
    assert_eq!(
        step.error.as_deref(),
        Some(&*format!(
            "http://{addr}/health: HTTP 503 Service Unavailable: expected 200,204"
        ))
    );
}

#[tokio::test]
async fn a_404_can_be_the_expected_status() {
    let script = Script::statuses(&[404]);
    let addr = serve(script.router()).await;

    let report = run(HttpWait::get(format!("http://{addr}/")).status("404")).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 1);
}

#[tokio::test]
async fn refused_credentials_fail_at_once() {
    let script = Script::statuses(&[401]);
    let addr = serve(script.router()).await;

    let report = run(HttpWait::get(format!("http://{addr}/"))).await;

    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.exit_code(), 1);
    let step = &report.steps[0];
    assert_eq!((step.status, step.attempts), (StepStatus::Failed, 1));
    assert_eq!(
        step.error.as_deref(),
        Some(&*format!(
            "http://{addr}/: HTTP 401 Unauthorized: expected 2xx"
        ))
    );
}

#[tokio::test]
async fn redirects_are_not_followed_unless_asked() {
    let script = Script::statuses(&[302]);
    let target = Script::statuses(&[200]);
    let router = script.router().merge(
        Router::new()
            .route("/target", get(answer))
            .with_state(target.clone()),
    );
    let addr = serve(router).await;
    let url = format!("http://{addr}/");

    let not_followed = run(HttpWait::get(&url).timeout(Duration::from_millis(300))).await;
    let expected_3xx = run(HttpWait::get(&url).status("3xx")).await;
    let followed = run(HttpWait::get(&url).follow_redirects()).await;

    let error = not_followed.steps[0].error.as_deref().unwrap();
    assert!(
        error.starts_with(&format!(
            "{url}: HTTP 302 Found: expected 2xx (redirects are not followed"
        )),
        "{error}"
    );
    assert!(expected_3xx.is_success(), "{expected_3xx:?}");
    assert!(followed.is_success(), "{followed:?}");
    assert_eq!(
        target.requests(),
        1,
        "only the wait that follows redirects reached /target"
    );
}

#[tokio::test]
async fn redirects_to_another_origin_are_not_followed_with_credentials() {
    let elsewhere = Script::statuses(&[200]);
    let elsewhere_addr = serve(elsewhere.router()).await;
    let location = format!("http://{elsewhere_addr}/");
    let redirect = Router::new().route(
        "/",
        get(move || {
            let location = location.clone();
            async move { (StatusCode::FOUND, [(header::LOCATION, location)]) }
        }),
    );
    let addr = serve(redirect).await;

    let wait = HttpWait::get(format!("http://{addr}/"))
        .header("Authorization", "Bearer s3cr3t-t0ken")
        .follow_redirects();
    let report = run(wait.timeout(Duration::from_millis(300))).await;

    assert_eq!(report.outcome, Outcome::TimedOut);
    let error = report.steps[0].error.as_deref().unwrap();
    assert!(error.contains("HTTP 302 Found: expected 2xx"), "{error}");
    assert_eq!(
        elsewhere.requests(),
        0,
        "the other host never saw the token"
    );
}

/// `/hops/{n}` redirects to `/hops/{n - 1}`, and `/hops/0` answers 200: a chain of `n`
/// redirects.
fn redirect_chain() -> Router {
    Router::new().route(
        "/hops/{n}",
        get(|Path(n): Path<u32>| async move {
            if n == 0 {
                StatusCode::OK.into_response()
            } else {
                let next = format!("/hops/{}", n - 1);
                (StatusCode::FOUND, [(header::LOCATION, next)]).into_response()
            }
        }),
    )
}

#[tokio::test]
async fn ten_redirects_are_followed_and_eleven_fail_at_once_naming_the_count() {
    let addr = serve(redirect_chain()).await;

    let ten = run(HttpWait::get(format!("http://{addr}/hops/10")).follow_redirects()).await;
    assert!(ten.is_success(), "{ten:?}");

    let url = format!("http://{addr}/hops/11");
    let eleven = run(HttpWait::get(&url)
        .follow_redirects()
        .timeout(Duration::from_secs(20)))
    .await;
    assert_eq!(eleven.outcome, Outcome::Failed, "{eleven:?}");
    assert_eq!(eleven.steps[0].attempts, 1, "a redirect loop is permanent");
    assert_eq!(
        eleven.steps[0].error.as_deref(),
        Some(&*format!("{url}: more than 10 redirects"))
    );
}

#[tokio::test]
async fn a_redirect_from_https_to_http_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let plain = Script::statuses(&[200]);
    let plain_addr = serve(plain.router()).await;
    // The same host, one step down: only the scheme (and port) changes.
    let location = format!("http://127.0.0.1:{}/", plain_addr.port());
    let downgrade = Router::new().route(
        "/",
        get(move || {
            let location = location.clone();
            async move {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, location)],
                )
            }
        }),
    );
    let addr = serve_tls(downgrade, &ca.issue_server(&["127.0.0.1"]), None).await;

    let url = format!("https://{addr}/");
    let wait = HttpWait::get(&url)
        .ca_file(ca.write(dir.path(), "ca"))
        .follow_redirects()
        .timeout(Duration::from_secs(20));
    let report = run(wait).await;

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert_eq!(report.steps[0].attempts, 1);
    assert_eq!(
        report.steps[0].error.as_deref(),
        Some(&*format!(
            "{url}: refusing a redirect from https to plain http"
        ))
    );
    assert_eq!(plain.requests(), 0);
}

#[tokio::test]
async fn head_requests_are_sent_as_head() {
    let script = Script::statuses(&[200]);
    let addr = serve(script.router()).await;

    let report = run(HttpWait::head(format!("http://{addr}/health"))).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(script.seen.lock().unwrap()[0].0, Method::HEAD);
}

#[tokio::test]
async fn waits_until_the_body_contains_the_text() {
    let script = Script::new(&[(200, "starting"), (200, "starting"), (200, "ready: yes")]);
    let addr = serve(script.router()).await;

    let wait = HttpWait::get(format!("http://{addr}/")).body_containing("ready");
    let report = run(wait.timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 3);
}

#[tokio::test]
async fn waits_until_the_json_values_match() {
    let script = Script::new(&[
        (200, "<html>proxy is starting</html>"),
        (200, r#"{"status":"DOWN"}"#),
        (
            200,
            r#"{"status":"UP","components":{"db":{"status":"DOWN"}}}"#,
        ),
        (
            200,
            r#"{"status":"UP","components":{"db":{"status":"UP"}}}"#,
        ),
    ]);
    let addr = serve(script.router()).await;

    let wait = HttpWait::get(format!("http://{addr}/health"))
        .json("/status", "UP")
        .json("/components/db/status", "UP");
    let report = run(wait.timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 4);
}

#[tokio::test]
async fn json_mismatches_say_what_was_found() {
    let cases = [
        (
            r#"{"status":"DOWN"}"#,
            r#""/status" is "DOWN", expected "UP""#,
        ),
        (
            r#"{"state":"UP"}"#,
            r#"no "/status" in the JSON body, expected "UP""#,
        ),
        (
            "<html></html>",
            "body is not JSON: expected value at line 1 column 1",
        ),
    ];
    for (body, expected) in cases {
        let script = Script::new(&[(200, body)]);
        let addr = serve(script.router()).await;

        let wait = HttpWait::get(format!("http://{addr}/")).json("/status", "UP");
        let report = run(wait.timeout(Duration::from_millis(300))).await;

        assert_eq!(report.outcome, Outcome::TimedOut);
        assert_eq!(
            report.steps[0].error.as_deref(),
            Some(&*format!("http://{addr}/: {expected}"))
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_fails_at_once() {
    let script = Script::new(&[(200, "0123456789 ready")]);
    let addr = serve(script.router()).await;

    let wait = HttpWait::get(format!("http://{addr}/"))
        .body_containing("ready")
        .max_size(8);
    let report = run(wait).await;

    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.steps[0].attempts, 1);
    assert_eq!(
        report.steps[0].error.as_deref(),
        Some(&*format!(
            "http://{addr}/: response body is larger than the 8-byte limit"
        ))
    );
}

#[tokio::test]
async fn sends_headers_and_registers_credential_values_as_secrets() {
    let script = Script::statuses(&[200]);
    let addr = serve(script.router()).await;
    let ctx = Context::new();

    let wait = HttpWait::get(format!("http://{addr}/"))
        .header("Accept", "application/json")
        .header("Authorization", "Bearer s3cr3t-t0ken")
        .secret_header("X-Probe", "pr0be-value");
    let debug = format!("{wait:?}");
    let report = Plan::new("test").step(wait).run(&ctx).await;

    assert!(report.is_success(), "{report:?}");
    let seen = script.seen.lock().unwrap();
    let headers = &seen[0].1;
    assert_eq!(headers["accept"], "application/json");
    assert_eq!(headers["authorization"], "Bearer s3cr3t-t0ken");
    assert_eq!(headers["x-probe"], "pr0be-value");
    assert_eq!(
        ctx.redact("s3cr3t-t0ken pr0be-value application/json"),
        "[redacted] [redacted] application/json"
    );
    assert!(
        !debug.contains("s3cr3t") && !debug.contains("pr0be"),
        "{debug}"
    );
    assert!(debug.contains("application/json"), "{debug}");
}

#[tokio::test]
async fn a_server_that_starts_late_is_noticed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let script = Script::statuses(&[200]);
    let router = script.router();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        axum::serve(listener, router).await
    });

    let report =
        run(HttpWait::get(format!("http://{addr}/")).timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    // A refused connection is polled again within 50 ms, not on the growing backoff.
    assert!(
        report.steps[0].attempts >= 4,
        "{} attempts",
        report.steps[0].attempts
    );
}

/// A loopback listener that accepts connections and then does what `handle` does with each.
async fn raw_server(
    handle: fn(tokio::net::TcpStream, &mut Vec<tokio::net::TcpStream>),
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            handle(stream, &mut held);
        }
    });
    addr
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_each_request_and_backs_off() {
    let addr = raw_server(|stream, held| held.push(stream)).await;

    let wait = HttpWait::get(format!("http://{addr}/health?sig=s3cr3t"))
        .request_timeout(Duration::from_millis(200));
    let report = run(wait.timeout(Duration::from_millis(1500))).await;

    assert_eq!(report.outcome, Outcome::TimedOut);
    let step = &report.steps[0];
    assert_eq!(
        step.error.as_deref(),
        Some(&*format!(
            "http://{addr}/health: timed out: error sending request: operation timed out"
        )),
        "the URL is named once, without its query"
    );
    // 200 ms per attempt plus a backoff of 100 ms, 200 ms, 400 ms (each up to twice that with
    // jitter), not the fast polling of a refused connection.
    assert!(
        (2..=6).contains(&step.attempts),
        "{} attempts",
        step.attempts
    );
}

#[tokio::test]
async fn a_server_that_closes_at_once_is_waited_for() {
    let addr = raw_server(|stream, _| drop(stream)).await;

    let report =
        run(HttpWait::get(format!("http://{addr}/")).timeout(Duration::from_millis(500))).await;

    assert_eq!(report.outcome, Outcome::TimedOut, "transient, not failed");
    let error = report.steps[0].error.as_deref().unwrap();
    assert!(
        error.starts_with(&format!("http://{addr}/: error sending request")),
        "{error}"
    );
    assert!(report.steps[0].attempts > 1);
}

#[tokio::test]
async fn waits_on_ipv6_loopback() {
    let listener = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = Script::statuses(&[200]);
    let router = script.router();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let report = run(HttpWait::get(format!("http://[::1]:{port}/"))).await;

    assert!(report.is_success(), "{report:?}");
}

#[tokio::test]
async fn trusts_a_private_ca_from_a_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let script = Script::statuses(&[200]);
    let addr = serve_tls(
        script.router(),
        &ca.issue_server(&["localhost", "127.0.0.1"]),
        None,
    )
    .await;

    let wait = HttpWait::get(format!("https://localhost:{}/", addr.port()))
        .ca_file(ca.write(dir.path(), "ca"));
    let report = run(wait).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(script.requests(), 1);
}

/// A few quick attempts, so that a retried failure shows as `attempts == 3`.
fn three_quick_attempts() -> Retry {
    Retry::new()
        .with_initial_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(20))
        .with_max_attempts(3)
}

#[tokio::test]
async fn an_untrusted_certificate_is_retried_by_a_wait_saying_what_did_not_verify() {
    // An ingress serves a placeholder certificate while it starts: a wait outlasts it, and
    // when it does not go away the error says what did not verify.
    let ca = TestCa::new("unknown ca");
    let script = Script::statuses(&[200]);
    let addr = serve_tls(script.router(), &ca.issue_server(&["127.0.0.1"]), None).await;

    let wait = HttpWait::get(format!("https://{addr}/"));
    let report = run(wait.retry(three_quick_attempts())).await;

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert_eq!(report.exit_code(), 1);
    let step = &report.steps[0];
    assert_eq!(step.attempts, 3, "a wait retries an unknown issuer");
    let error = step.error.as_deref().unwrap();
    assert!(
        error.starts_with(&format!(
            "https://{addr}/: TLS certificate did not verify: the server's certificate is signed by an unknown issuer"
        )),
        "{error}"
    );
    assert_eq!(script.requests(), 0);
}

#[tokio::test]
async fn an_untrusted_certificate_behind_a_host_name_is_retried_by_a_wait() {
    // With a name (not an IP) the platform verifier checks the chain, and hyper reports the
    // failure differently: it must still be classified, and say what did not verify.
    let ca = TestCa::new("unknown ca");
    let script = Script::statuses(&[200]);
    let addr = serve_tls(script.router(), &ca.issue_server(&["localhost"]), None).await;
    let url = format!("https://localhost:{}/", addr.port());

    let report = run(HttpWait::get(url.clone()).retry(three_quick_attempts())).await;

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    let step = &report.steps[0];
    assert_eq!(step.attempts, 3);
    assert!(
        step.error.as_deref().unwrap().starts_with(&format!(
            "{url}: TLS certificate did not verify: the server's certificate is signed by an unknown issuer"
        )),
        "{:?}",
        step.error
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_retried_by_a_wait() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let script = Script::statuses(&[200]);
    let addr = serve_tls(script.router(), &ca.issue_server(&["other.example"]), None).await;

    let wait = HttpWait::get(format!("https://{addr}/")).ca_file(ca.write(dir.path(), "ca"));
    let report = run(wait.retry(three_quick_attempts())).await;

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert_eq!(report.steps[0].attempts, 3);
    let error = report.steps[0].error.as_deref().unwrap();
    assert!(
        error.contains("TLS certificate did not verify: the server's certificate is not valid for this host name"),
        "{error}"
    );
}

#[tokio::test]
async fn a_wait_outlasts_an_ingress_placeholder_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    // What ingress-nginx serves until the real certificate is there: self-made, another name.
    let placeholder = TestCa::new("Kubernetes Ingress Controller Fake Certificate")
        .issue_server(&["ingress.local"]);
    let script = Script::statuses(&[200]);
    let addr = serve_tls_switching(
        script.router(),
        &placeholder,
        &ca.issue_server(&["127.0.0.1"]),
        2,
        None,
    )
    .await;

    let wait = HttpWait::get(format!("https://{addr}/")).ca_file(ca.write(dir.path(), "ca"));
    let report = run(wait.retry(three_quick_attempts())).await;

    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.steps[0].attempts, 3);
    assert_eq!(script.requests(), 1);
}

#[tokio::test]
async fn a_certificate_not_valid_yet_is_transient_and_retried_once_it_is_valid() {
    // A certificate issued a moment ago, by an issuer whose clock is ahead of ours.
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let not_before = SystemTime::now() + Duration::from_secs(2);
    let server = ca.issue_server_valid_from(&["127.0.0.1"], not_before);
    let script = Script::statuses(&[200]);
    let addr = serve_tls(script.router(), &server, None).await;

    let (logs, guard) = logs::capture();
    let wait = HttpWait::get(format!("https://{addr}/")).ca_file(ca.write(dir.path(), "ca"));
    let report = run(wait.timeout(Duration::from_secs(20))).await;
    drop(guard);

    assert!(report.is_success(), "{report:?}");
    // The first attempt says how long the certificate is not valid for, and the retry waits
    // that long instead of polling the handshake every second.
    assert_eq!(report.steps[0].attempts, 2, "{}", logs.text());
    assert!(
        logs.text().contains(
            "TLS certificate did not verify: the server's certificate is not valid yet (for another"
        ),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn a_certificate_not_valid_for_days_yet_fails_at_once_blaming_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let not_before = SystemTime::now() + Duration::from_secs(2 * 86_400);
    let server = ca.issue_server_valid_from(&["127.0.0.1"], not_before);
    let addr = serve_tls(Script::statuses(&[200]).router(), &server, None).await;

    let wait = HttpWait::get(format!("https://{addr}/")).ca_file(ca.write(dir.path(), "ca"));
    let report = run(wait.timeout(Duration::from_secs(20))).await;

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert_eq!(report.steps[0].attempts, 1);
    let error = report.steps[0].error.as_deref().unwrap();
    assert!(
        error.contains("is not valid yet (for another 17"),
        "{error}"
    );
    assert!(
        error.ends_with("is this machine's clock behind, or the certificate dated in the future?"),
        "{error}"
    );
}

#[tokio::test]
async fn insecure_skips_verification_when_asked() {
    let ca = TestCa::new("unknown ca");
    let script = Script::statuses(&[200]);
    let addr = serve_tls(script.router(), &ca.issue_server(&["other.example"]), None).await;

    let (logs, guard) = logs::capture();
    let report = run(HttpWait::get(format!("https://{addr}/")).insecure()).await;
    drop(guard);

    assert!(report.is_success(), "{report:?}");
    let warning = format!(
        "WARN init_steps::support::http_client: message=GET https://{addr}/: TLS certificate verification is OFF (insecure)"
    );
    assert!(logs.text().contains(&warning), "{}", logs.text());
}

#[tokio::test]
async fn presents_a_client_certificate_for_mtls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let clients = TestCa::new("client ca");
    let script = Script::statuses(&[200]);
    let server = ca.issue_server(&["127.0.0.1"]);
    let addr = serve_tls(script.router(), &server, Some(&clients)).await;
    let ca_file = ca.write(dir.path(), "ca");
    let (cert, key) = clients
        .issue_client("orders-init")
        .write(dir.path(), "client");

    let with_cert = HttpWait::get(format!("https://{addr}/"))
        .ca_file(&ca_file)
        .client_cert(cert, key);
    let report = run(with_cert).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(script.requests(), 1);

    let stranger = TestCa::new("unknown client ca").issue_client("orders-init");
    let (bad_cert, bad_key) = stranger.write(dir.path(), "stranger");
    let cases = [
        (
            HttpWait::get(format!("https://{addr}/")).ca_file(&ca_file),
            "the server requires a client certificate, and none was configured",
        ),
        (
            HttpWait::get(format!("https://{addr}/"))
                .ca_file(&ca_file)
                .client_cert(bad_cert, bad_key),
            "the server refused the client certificate (UnknownCA)",
        ),
    ];
    for (wait, expected) in cases {
        let report = run(wait.timeout(Duration::from_secs(20))).await;

        assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
        assert_eq!(report.steps[0].attempts, 1);
        assert_eq!(
            report.steps[0].error.as_deref(),
            Some(&*format!(
                "https://{addr}/: TLS certificate did not verify: {expected}"
            ))
        );
    }
    assert_eq!(
        script.requests(),
        1,
        "no request got past the handshake without a trusted certificate"
    );
}

#[tokio::test]
async fn a_ca_file_that_is_not_there_yet_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let script = Script::statuses(&[200]);
    let addr = serve_tls(script.router(), &ca.issue_server(&["127.0.0.1"]), None).await;
    let ca_file = dir.path().join("ca.pem");
    let pem = ca.pem().to_owned();
    let path = ca_file.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(path, pem).unwrap();
    });

    let wait = HttpWait::get(format!("https://{addr}/")).ca_file(&ca_file);
    let report = run(wait.timeout(Duration::from_secs(20))).await;

    assert!(report.is_success(), "{report:?}");
    assert!(report.steps[0].attempts > 1);
}

#[test]
fn tls_files_that_exist_already_must_hold_pem() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let issued = TestCa::new("test ca").issue_client("c");
    let (cert, key) = issued.write(dir.path(), "client");
    let missing = dir.path().join("later.pem");
    let cases = [
        (
            HttpWait::get("https://app/").ca_file(&not_pem),
            format!(
                "GET https://app/: CA file {}: expected PEM certificates (-----BEGIN CERTIFICATE-----), found none",
                not_pem.display()
            ),
        ),
        (
            HttpWait::get("https://app/").client_cert(&key, &key),
            format!(
                "GET https://app/: client certificate {}: expected PEM certificates",
                key.display()
            ),
        ),
        (
            HttpWait::get("https://app/").client_cert(&cert, &cert),
            format!(
                "GET https://app/: client key {}: expected a PEM private key",
                cert.display()
            ),
        ),
        (
            HttpWait::get("https://app/").ca_file(dir.path()),
            format!(
                "GET https://app/: CA file {}: expected a readable file",
                dir.path().display()
            ),
        ),
    ];
    for (wait, expected) in cases {
        let err = wait.validate(&ValidateContext::process()).unwrap_err();
        assert!(err.is_invalid(), "{err}");
        assert!(err.to_string().starts_with(&expected), "{err} / {expected}");
    }
    // Files that are good, or not there yet (an earlier step may write them), pass.
    let fine = HttpWait::get("https://app/")
        .ca_file(&missing)
        .client_cert(&cert, &key);
    assert!(fine.validate(&ValidateContext::process()).is_ok());
}

#[test]
fn bad_settings_fail_validation_naming_the_input() {
    let cases = [
        (
            HttpWait::get("app:8080/health"),
            "url \"app:8080/health\": scheme \"app\": expected an http:// or https:// URL",
        ),
        (
            HttpWait::get("not a url"),
            "url \"not a url\": expected an http:// or https:// URL",
        ),
        (
            HttpWait::get("ftp://app/"),
            "url \"ftp://app/\": scheme \"ftp\": expected an http:// or https:// URL",
        ),
        (
            HttpWait::get("http://app/").status("200,2xxx"),
            "GET http://app/: status \"2xxx\": expected status codes",
        ),
        (
            HttpWait::head("http://app/").body_containing("ok"),
            "HEAD http://app/: a HEAD answer has no body: body checks need GET",
        ),
        (
            HttpWait::get("http://app/").json("status", "UP"),
            "GET http://app/: JSON pointer \"status\": expected \"\" or a path starting with /",
        ),
        (
            HttpWait::get("http://app/").header("Bad Name", "x"),
            "GET http://app/: header name \"Bad Name\": expected a token",
        ),
        (
            HttpWait::get("http://app/").header("X-Token", "line\nbreak"),
            "GET http://app/: header \"X-Token\": expected a value of visible ASCII characters",
        ),
        (
            HttpWait::get("http://app/").max_size(0),
            "GET http://app/: max_size 0: expected at least one byte",
        ),
        (
            HttpWait::get("http://app/").request_timeout(Duration::ZERO),
            "GET http://app/: request timeout 0s: expected a duration greater than zero",
        ),
    ];
    for (wait, expected) in cases {
        let err = wait.validate(&ValidateContext::process()).unwrap_err();
        assert!(err.is_invalid(), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with(expected),
            "{message:?} does not start with {expected:?}"
        );
        assert!(!message.contains("break"), "header values are never shown");
    }
}

#[tokio::test]
async fn retry_after_zero_from_a_real_server_still_backs_off() {
    // Before: the zero hint replaced the backoff, 154 requests in 200 ms.
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    let router = Router::new().route(
        "/health",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "0")],
                    "busy",
                )
            }
        }),
    );
    let addr = serve(router).await;

    let wait = HttpWait::get(format!("http://{addr}/health")).timeout(Duration::from_secs(1));
    let report = run(wait).await;

    assert_eq!(report.outcome, Outcome::TimedOut);
    // The wait policy's delays are at least 100, 200 and 400 ms: attempts at 0, 0.1, 0.3 and
    // 0.7 s at the earliest, and a last one at the deadline.
    let n = requests.load(Ordering::SeqCst);
    assert!((2..=5).contains(&n), "{n} requests in one second");
}
