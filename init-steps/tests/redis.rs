//! `RedisWait` against a real Redis 7 started by `test-servers`: the `default` password and an
//! ACL user, a wrong password, a missing key that appears, a refused port, TLS (`verify-full`
//! with the right and a wrong CA, `require`), and the password kept out of errors.
#![cfg(feature = "redis")]

#[path = "support/refusing_port.rs"]
mod refusing_port;
#[path = "support/tls_server.rs"]
mod tls_server;

use std::time::Duration;

use init_core::{Context, Plan, Step, StepExt, StepStatus, ValidateContext};
use init_steps::redis::{RedisWait, TlsMode};
use refusing_port::RefusingPort;
use test_servers::{Redis, redis};
use tls_server::TestCa;

#[tokio::test]
async fn the_default_password_gets_pong() {
    let Some(server) = redis() else { return };
    let ctx = Context::with_env([("REDIS_PASSWORD", server.password())]);

    let result = RedisWait::new(server.addr())
        .password_from_env("REDIS_PASSWORD")
        .run(&ctx)
        .await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn an_acl_user_logs_in_with_its_password_from_a_published_value() {
    let Some(server) = redis() else { return };
    let ctx = Context::new();
    ctx.publish_secret(
        "cache",
        serde_json::json!({"password": server.acl_password()}),
    );

    let result = RedisWait::new(server.addr())
        .user(server.acl_user())
        .password_from_value("cache.password")
        .run(&ctx)
        .await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn an_acl_user_and_password_both_from_published_values_log_in() {
    let Some(server) = redis() else { return };
    let ctx = Context::new();
    ctx.publish_secret(
        "cache",
        serde_json::json!({"user": server.acl_user(), "password": server.acl_password()}),
    );
    let wait = RedisWait::new(server.addr())
        .user_from_value("cache.user")
        .password_from_value("cache.password");
    let reads: Vec<String> = wait.reads().iter().map(ToString::to_string).collect();

    let result = wait.run(&ctx).await;

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(reads, ["values.cache.user", "values.cache.password"]);
    // A user nobody published fails the step, naming the path.
    let missing = RedisWait::new(server.addr())
        .user_from_value("cache.nobody")
        .password_from_value("cache.password")
        .run(&ctx)
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("cache.nobody"), "{missing}");
}

#[tokio::test]
async fn a_wrong_password_is_permanent_after_one_attempt_and_never_shown() {
    let Some(server) = redis() else { return };
    let ctx = Context::with_env([("REDIS_PASSWORD", "wrong-redis-password")]);
    let wait = RedisWait::new(server.addr()).password_from_env("REDIS_PASSWORD");

    let report = Plan::new("t")
        .step(wait.timeout(Duration::from_secs(10)))
        .run(&ctx)
        .await;

    let error = report.steps[0].error.clone().unwrap();
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].attempts, 1);
    assert!(error.contains("WRONGPASS"), "{error}");
    assert!(!error.contains("wrong-redis-password"), "{error}");
}

#[tokio::test]
async fn no_password_where_one_is_required_is_permanent_noauth() {
    let Some(server) = redis() else { return };

    let err = RedisWait::new(server.addr())
        .run(&Context::new())
        .await
        .unwrap_err();

    assert!(err.is_permanent());
    assert!(err.to_string().contains("PING: NOAUTH"), "{err}");
}

#[tokio::test]
async fn key_exists_waits_until_the_key_is_set() {
    let Some(server) = redis() else { return };
    let ctx = Context::with_env([("REDIS_PASSWORD", server.password())]);
    server.cli(&["DEL", "redis-wait:ready"]).unwrap();
    let wait = RedisWait::new(server.addr())
        .password_from_env("REDIS_PASSWORD")
        .key_exists("redis-wait:ready");

    let missing = wait.run(&ctx).await.unwrap_err();
    server.cli(&["SET", "redis-wait:ready", "1"]).unwrap();
    let found = wait.run(&ctx).await;

    assert!(missing.is_transient());
    assert!(
        missing
            .to_string()
            .ends_with("key \"redis-wait:ready\" does not exist yet")
    );
    assert!(found.is_ok(), "{found:?}");
}

#[tokio::test]
async fn a_refused_connection_asks_for_the_wait_cadence() {
    let refusing = RefusingPort::new();
    let port = refusing.port;

    let err = RedisWait::new(format!("127.0.0.1:{port}"))
        .run(&Context::new())
        .await
        .unwrap_err();

    assert!(err.is_transient());
    assert!(err.at_wait_cadence());
}

#[tokio::test]
async fn tls_to_a_server_without_tls_fails() {
    let Some(server) = redis() else { return };

    let err = RedisWait::new(server.addr())
        .tls(TlsMode::Require)
        .connect_timeout(Duration::from_secs(2))
        .run(&Context::new())
        .await
        .unwrap_err();

    assert!(
        err.to_string()
            .starts_with(&format!("redis {}", server.addr())),
        "{err}"
    );
}

/// `RedisWait` for the TLS port of `server`, logged in with the `default` password.
fn over_tls(server: &Redis) -> (RedisWait, Context) {
    let addr = format!("{}:{}", server.host(), server.tls_port().unwrap());
    let ctx = Context::with_env([("REDIS_PASSWORD", server.password())]);
    (
        RedisWait::new(addr).password_from_env("REDIS_PASSWORD"),
        ctx,
    )
}

#[tokio::test]
async fn verify_full_with_the_ca_file_gets_pong_over_tls() {
    let Some(server) = Redis::start_tls() else {
        return;
    };
    let (wait, ctx) = over_tls(&server);

    let result = wait
        .tls(TlsMode::VerifyFull)
        .ca_file(server.ca_file().unwrap())
        .run(&ctx)
        .await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn verify_full_with_a_wrong_ca_fails_permanently_after_one_attempt() {
    let Some(server) = Redis::start_tls() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::new("other ca").write(dir.path(), "other-ca");
    let (wait, ctx) = over_tls(&server);

    let report = Plan::new("t")
        .step(
            wait.tls(TlsMode::VerifyFull)
                .ca_file(&other_ca)
                .timeout(Duration::from_secs(10)),
        )
        .run(&ctx)
        .await;

    let error = report.steps[0].error.clone().unwrap();
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(report.steps[0].attempts, 1);
    assert!(error.contains("certificate"), "{error}");
}

#[tokio::test]
async fn require_gets_pong_over_tls_without_checking_the_certificate() {
    let Some(server) = Redis::start_tls() else {
        return;
    };
    let (wait, ctx) = over_tls(&server);

    let result = wait.tls(TlsMode::Require).run(&ctx).await;

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn bad_input_is_invalid_at_validation() {
    let cx = ValidateContext::with_env([("HOME", "/")]);
    let cases = [
        (
            RedisWait::new("cache"),
            "address \"cache\": expected host:port",
        ),
        (RedisWait::new("cache:0"), "expected host:port"),
        (
            RedisWait::new("cache:6379").password_from_env("NOPE"),
            "environment variable NOPE is not set",
        ),
        (
            RedisWait::new("cache:6379").user("app"),
            "an ACL user needs a password",
        ),
        (
            RedisWait::new("cache:6379").ca_file("/ca.pem"),
            "a ca file needs tls mode verify-full",
        ),
    ];
    for (wait, expected) in cases {
        let err = wait.validate(&cx).unwrap_err();
        assert!(
            err.is_invalid() && err.to_string().contains(expected),
            "{err}"
        );
    }
}
