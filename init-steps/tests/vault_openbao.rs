//! The `vault` steps against a real Vault-compatible server: OpenBao 2.7 in dev mode, started by
//! `test-servers` on a free loopback port (one server for this test binary; each test mounts its
//! engines and auth methods at paths of its own). Logins (token, token file, AppRole plain, from
//! a file and response-wrapped, JWT with static keys, Kubernetes through a TokenReview stand-in
//! served over HTTPS), KV v1 and v2 with versions, deletions and destructions, namespaces, PKI,
//! TLS and mutual TLS, and revocation.
//!
//! Faults a real server cannot show on demand (runs of 503, 429, dropped connections, standby
//! redirects, a seal in the middle of a plan) are in `vault.rs`, against the double.
#![cfg(feature = "vault")]

#[path = "support/jwt.rs"]
mod jwt;
#[path = "support/logs.rs"]
mod logs;
mod support {
    pub mod tls_server;
}

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use init_core::{Context, Outcome, Plan, Report, Retry, Step, StepExt, StepReport, StepStatus};
use init_steps::vault::{
    KvRead, PkiIssue, Vault, VaultRead, VaultReady, VaultRevoke, VaultSession,
};
use jwt::{JwtKey, service_account_claims, unix_time};
use serde_json::{Value, json};
use support::tls_server::{TestCa, serve_tls};
use test_servers::{Api, OpenBao};

/// Quick retries, so a wrongly transient error shows as several attempts in milliseconds.
fn fast() -> Retry {
    Retry::new()
        .with_initial_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(50))
        .with_max_attempts(3)
}

/// A name no other test of this binary uses (mounts, roles, policies on the shared server).
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    format!("{prefix}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A context whose environment points the Vault steps at `addr`, plus `extra`.
fn env(addr: &str, extra: &[(&str, &str)]) -> Context {
    let mut vars = vec![("VAULT_ADDR".to_owned(), addr.to_owned())];
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Context::with_env(vars)
}

fn step<'a>(report: &'a Report, name: &str) -> &'a StepReport {
    report
        .step(name)
        .unwrap_or_else(|| panic!("no step {name} in {report:?}"))
}

/// Runs `one` as the only step of a plan and returns its report line.
async fn run_alone(one: impl Step + 'static, ctx: &Context) -> StepReport {
    let name = one.name().to_owned();
    let report = Plan::new("p").step(one).run(ctx).await;
    step(&report, &name).clone()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Mounts a KV engine of `version` (1 or 2) at `mount`.
fn mount_kv(api: &Api, mount: &str, version: u8) {
    api.write(
        &format!("sys/mounts/{mount}"),
        json!({"type": "kv", "options": {"version": version.to_string()}}),
    );
}

/// Writes a KV v2 secret; returns the new version.
fn kv2_put(api: &Api, mount: &str, path: &str, data: Value) -> u64 {
    let reply = api.write(&format!("{mount}/data/{path}"), json!({ "data": data }));
    reply["data"]["version"].as_u64().unwrap()
}

/// An ACL policy `name` allowing `capabilities` on each of `paths`.
fn policy(api: &Api, name: &str, paths: &[&str], capabilities: &[&str]) {
    let rules: String = paths
        .iter()
        .map(|p| {
            format!(
                "path \"{p}\" {{ capabilities = {} }}\n",
                json!(capabilities)
            )
        })
        .collect();
    api.write(
        &format!("sys/policies/acl/{name}"),
        json!({ "policy": rules }),
    );
}

/// A child token with `policies` and no default policy's extras.
fn token_with(api: &Api, policies: &[&str]) -> String {
    let reply = api.write(
        "auth/token/create",
        json!({"policies": policies, "ttl": "10m", "no_default_policy": false}),
    );
    reply["auth"]["client_token"].as_str().unwrap().to_owned()
}

/// Whether `token` is still valid on the server.
fn token_is_alive(bao: &OpenBao, token: &str) -> bool {
    bao.api()
        .token(Some(token))
        .request("GET", "auth/token/lookup-self", None)
        .is_ok()
}

/// A KV v2 mount holding `orders/db`, and a policy `<mount>-read` that may read it: the usual
/// set-up. Returns (mount, policy).
fn orders_kv(api: &Api) -> (String, String) {
    let mount = unique("kv");
    mount_kv(api, &mount, 2);
    kv2_put(
        api,
        &mount,
        "orders/db",
        json!({"username": "orders", "password": "pa$$-\"w0rd\"-1", "port": 5432}),
    );
    let name = format!("{mount}-read");
    policy(api, &name, &[&format!("{mount}/data/orders/*")], &["read"]);
    (mount, name)
}

/// Enables an AppRole auth method with role `migrator` bound to `policy`; returns the mount and
/// the role ID.
fn approle(api: &Api, policy: &str) -> (String, String) {
    let mount = unique("approle");
    api.write(&format!("sys/auth/{mount}"), json!({"type": "approle"}));
    api.write(
        &format!("auth/{mount}/role/migrator"),
        json!({"token_policies": [policy], "token_ttl": "10m"}),
    );
    let role_id = api.read(&format!("auth/{mount}/role/migrator/role-id"))["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (mount, role_id)
}

fn secret_id(api: &Api, mount: &str) -> String {
    api.write(&format!("auth/{mount}/role/migrator/secret-id"), json!({}))["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn vault_ready_sees_the_real_server_active_and_unsealed() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let line = run_alone(VaultReady::new(), &env(&bao.addr(), &[])).await;
    assert_eq!(
        (line.status, line.attempts),
        (StepStatus::Succeeded, 1),
        "{line:?}"
    );
}

#[tokio::test]
async fn token_file_login_uses_the_given_token_and_revoke_leaves_it_alive() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (mount, read) = orders_kv(&api);
    let token = token_with(&api, &[&read]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let ctx = env(&bao.addr(), &[]);
    let report = Plan::new("p")
        .step(Vault::from_env().token_file_login(&file))
        .step(KvRead::v2(&mount, "orders/db").publish_secret("db"))
        .step(VaultRevoke::new())
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(ctx.value("db").unwrap()["username"], "orders");
    let session = ctx.get::<VaultSession>().unwrap();
    assert_eq!(session.token(), token, "the file's token, trimmed");
    assert!(!session.is_from_login());
    assert!(token_is_alive(bao, &token), "a given token is not revoked");
}

#[tokio::test]
async fn token_login_checks_vault_token_and_an_unknown_one_is_refused_at_once() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (mount, read) = orders_kv(&api);
    let token = token_with(&api, &[&read]);
    let ctx = env(&bao.addr(), &[("VAULT_TOKEN", &token)]);
    let report = Plan::new("p")
        .step(Vault::from_env().token_login())
        .step(
            KvRead::v2(&mount, "orders/db")
                .field("port")
                .publish_secret("db"),
        )
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(ctx.value("db").unwrap(), json!({"port": 5432}));

    let login = Vault::from_env().token_login().retry(fast());
    let line = run_alone(login, &env(&bao.addr(), &[("VAULT_TOKEN", "s.unknown")])).await;
    assert_eq!(line.attempts, 1);
    assert_eq!(
        line.error.as_deref(),
        Some("auth/token/lookup-self: HTTP 403 Forbidden: permission denied")
    );
}

#[tokio::test]
async fn approle_login_with_a_secret_id_given_or_read_from_a_file() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (kv, read) = orders_kv(&api);
    let (mount, role_id) = approle(&api, &read);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret-id");
    std::fs::write(&file, format!("{}\n", secret_id(&api, &mount))).unwrap();

    for login in [
        Vault::from_env()
            .approle_login(&role_id)
            .mount(&mount)
            .secret_id(secret_id(&api, &mount)),
        Vault::from_env()
            .approle_login(&role_id)
            .mount(&mount)
            .secret_id_file(&file),
    ] {
        let ctx = env(&bao.addr(), &[]);
        let report = Plan::new("p")
            .step(login)
            .step(KvRead::v2(&kv, "orders/db").publish_secret("db"))
            .run(&ctx)
            .await;
        assert!(report.is_success(), "{report:?}");
        assert_eq!(ctx.value("db").unwrap()["password"], "pa$$-\"w0rd\"-1");
        assert!(ctx.get::<VaultSession>().unwrap().is_from_login());
    }

    let login = Vault::from_env()
        .approle_login(&role_id)
        .mount(&mount)
        .secret_id("wrong")
        .retry(fast());
    let line = run_alone(login, &env(&bao.addr(), &[])).await;
    assert_eq!(line.attempts, 1);
    assert_eq!(
        line.error.as_deref(),
        Some(
            format!("auth/{mount}/login: HTTP 400 Bad Request: invalid role or secret ID").as_str()
        )
    );
}

/// A secret ID for role `migrator` of `mount`, response-wrapped: the wrapping token.
fn wrapped_secret_id(api: &Api, mount: &str) -> String {
    let reply = api
        .clone()
        .wrap_ttl("60s")
        .write(&format!("auth/{mount}/role/migrator/secret-id"), json!({}));
    reply["wrap_info"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn approle_login_unwraps_a_response_wrapped_secret_id_once() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (kv, read) = orders_kv(&api);
    let (mount, role_id) = approle(&api, &read);
    let wrapping = wrapped_secret_id(&api, &mount);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrapped-secret-id");
    std::fs::write(&file, format!("{wrapping}\n")).unwrap();
    let login = || {
        Vault::from_env()
            .approle_login(&role_id)
            .mount(&mount)
            .wrapped_secret_id_file(&file)
            .retry(fast())
    };

    let (logs, guard) = logs::capture();
    let ctx = env(&bao.addr(), &[]);
    let report = Plan::new("p")
        .step(login())
        .step(KvRead::v2(&kv, "orders/db").publish_secret("db"))
        .run(&ctx)
        .await;
    drop(guard);
    assert!(report.is_success(), "{report:?}");
    assert!(ctx.get::<VaultSession>().unwrap().is_from_login());
    let logs = logs.text();
    let line = logs
        .lines()
        .find(|l| l.contains("unwrapped the approle secret_id"))
        .unwrap();
    assert!(
        line.contains(&format!("auth/{mount}/role/migrator/secret-id")),
        "{line}"
    );
    assert!(
        !logs.contains(&wrapping),
        "the wrapping token reached the logs"
    );

    // A wrapping token works once: a second use (a restarted container, or an interceptor
    // that got there first) is refused at once, saying what it means.
    let line = run_alone(login(), &env(&bao.addr(), &[])).await;
    assert_eq!(line.attempts, 1, "{line:?}");
    let error = line.error.unwrap();
    assert!(
        error.starts_with("sys/wrapping/lookup: HTTP 400 Bad Request: the approle wrapped secret_id is not valid: it expired, or it was unwrapped already"),
        "{error}"
    );
    assert!(error.ends_with("deliver a new one"), "{error}");
}

#[tokio::test]
async fn a_wrapping_token_that_does_not_wrap_a_secret_id_is_refused_and_left_unused() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (_, read) = orders_kv(&api);
    let (mount, role_id) = approle(&api, &read);
    // Anyone with a token can wrap anything: this one was made by sys/wrapping/wrap.
    let swapped = api.clone().wrap_ttl("60s").write(
        "sys/wrapping/wrap",
        json!({"secret_id": "chosen-by-someone-else"}),
    )["wrap_info"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let login = Vault::from_env()
        .approle_login(&role_id)
        .mount(&mount)
        .wrapped_secret_id(&swapped)
        .retry(fast());
    let line = run_alone(login, &env(&bao.addr(), &[])).await;
    assert_eq!(line.attempts, 1);
    assert_eq!(
        line.error.as_deref(),
        Some(
            format!(
                "approle wrapped secret_id: the wrapping token was made by \"sys/wrapping/wrap\", not by auth/{mount}/role/<role>/secret-id: refusing it (was it swapped on the way?)"
            )
            .as_str()
        )
    );
    // Looked up, never unwrapped: the evidence is still there to investigate.
    let lookup = bao
        .api()
        .token(None)
        .write("sys/wrapping/lookup", json!({"token": swapped}));
    assert_eq!(lookup["data"]["creation_path"], "sys/wrapping/wrap");
}

#[tokio::test]
async fn an_unwrapped_secret_id_is_kept_for_the_steps_next_attempt() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (mount, _) = approle(&api, "default");
    // A login that unwraps, then fails (a role ID that does not exist): the next attempt in this
    // process must not need the spent wrapping token.
    let login = Vault::from_env()
        .approle_login("no-such-role-id")
        .mount(&mount)
        .wrapped_secret_id(wrapped_secret_id(&api, &mount));
    let ctx = env(&bao.addr(), &[]);
    for attempt in 1..=2 {
        let error = login.run(&ctx).await.unwrap_err().to_string();
        assert_eq!(
            error,
            format!("auth/{mount}/login: HTTP 400 Bad Request: invalid role or secret ID"),
            "attempt {attempt}"
        );
    }
}

/// OpenBao's Kubernetes auth method asks this stand-in of the Kubernetes API's TokenReview
/// (<https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-review-v1/>)
/// whether a service-account token is valid. It knows `accounts` (token -> (namespace, name,
/// uid)) and answers only a caller with the reviewer's token. Returns its address and CA.
async fn token_review_stand_in(
    reviewer_jwt: &str,
    accounts: Vec<(String, (&'static str, &'static str, &'static str))>,
) -> (String, TestCa) {
    use axum::http::{HeaderMap, StatusCode};
    let ca = TestCa::new("kubernetes test CA");
    let server = ca.issue_server(&["127.0.0.1"]);
    let expected = format!("Bearer {reviewer_jwt}");
    let accounts = Arc::new(accounts);
    let review = move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
        let accounts = Arc::clone(&accounts);
        let expected = expected.clone();
        async move {
            let caller = headers.get("authorization").and_then(|v| v.to_str().ok());
            if caller != Some(expected.as_str()) {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"kind": "Status"})),
                );
            }
            let token = body["spec"]["token"].as_str().unwrap_or_default();
            let status = match accounts.iter().find(|(t, _)| t == token) {
                Some((_, (namespace, name, uid))) => json!({
                    "authenticated": true,
                    "user": {
                        "username": format!("system:serviceaccount:{namespace}:{name}"),
                        "uid": uid,
                        "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{namespace}")],
                    },
                    "audiences": ["https://kubernetes.default.svc"],
                }),
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            };
            let reply = json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": body["spec"],
                "status": status,
            });
            (StatusCode::CREATED, axum::Json(reply))
        }
    };
    let router = axum::Router::new().route(
        "/apis/authentication.k8s.io/v1/tokenreviews",
        axum::routing::post(review),
    );
    let addr = serve_tls(router, &server, None).await;
    (format!("https://{addr}"), ca)
}

#[tokio::test]
async fn kubernetes_login_is_checked_by_openbao_through_the_token_review_api() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (kv, read) = orders_kv(&api);
    let key = JwtKey::new();
    let orders = key.sign(&service_account_claims("prod", "orders", "uid-orders"));
    let billing = key.sign(&service_account_claims("prod", "billing", "uid-billing"));
    let dev = key.sign(&service_account_claims("dev", "orders", "uid-dev"));
    let unknown = key.sign(&service_account_claims("prod", "orders", "uid-gone"));
    let (host, ca) = token_review_stand_in(
        "reviewer-jwt",
        vec![
            (orders.clone(), ("prod", "orders", "uid-orders")),
            (billing.clone(), ("prod", "billing", "uid-billing")),
            (dev.clone(), ("dev", "orders", "uid-dev")),
        ],
    )
    .await;
    let mount = unique("k8s");
    api.write(&format!("sys/auth/{mount}"), json!({"type": "kubernetes"}));
    api.write(
        &format!("auth/{mount}/config"),
        json!({
            "kubernetes_host": host,
            "kubernetes_ca_cert": ca.pem(),
            "token_reviewer_jwt": "reviewer-jwt",
            "disable_local_ca_jwt": true,
        }),
    );
    api.write(
        &format!("auth/{mount}/role/orders"),
        json!({
            "bound_service_account_names": ["orders"],
            "bound_service_account_namespaces": ["prod"],
            "token_policies": [read],
            "token_ttl": "10m",
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let token_file = |jwt: &str| {
        let path = dir.path().join(unique("token"));
        // The kubelet's file has no newline, a hand-made one often does: it is trimmed.
        std::fs::write(&path, format!("{jwt}\n")).unwrap();
        path
    };
    let login = |jwt: &str| {
        Vault::from_env()
            .kubernetes_login("orders")
            .mount(&mount)
            .jwt_file(token_file(jwt))
    };

    let ctx = env(&bao.addr(), &[]);
    let out = dir.path().join("secrets");
    let report = Plan::new("orders-init")
        .step(VaultReady::new())
        .step(login(&orders))
        .step(
            KvRead::v2(&kv, "orders/db")
                .publish_secret("db")
                .write_json(out.join("db.json"))
                .write_env(out.join("db.env"))
                .write_field("password", out.join("password")),
        )
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");
    let session = ctx.get::<VaultSession>().unwrap();
    assert!(session.is_from_login());
    let me = bao
        .api()
        .token(Some(session.token()))
        .read("auth/token/lookup-self");
    assert_eq!(me["data"]["meta"]["service_account_name"], "orders");
    assert_eq!(me["data"]["meta"]["service_account_namespace"], "prod");
    assert_eq!(
        std::fs::read_to_string(out.join("password")).unwrap(),
        "pa$$-\"w0rd\"-1"
    );
    let written: Value =
        serde_json::from_slice(&std::fs::read(out.join("db.json")).unwrap()).unwrap();
    assert_eq!(
        written,
        json!({"username": "orders", "password": "pa$$-\"w0rd\"-1", "port": 5432})
    );
    assert_eq!(
        std::fs::read_to_string(out.join("db.env")).unwrap(),
        "password=\"pa\\$\\$-\\\"w0rd\\\"-1\"\nport=\"5432\"\nusername=\"orders\"\n"
    );
    for file in ["db.json", "db.env", "password"] {
        assert_eq!(mode(&out.join(file)), 0o600, "{file}");
    }

    // What the role does not bind, and a token the TokenReview API does not know: refused at
    // once, saying why in OpenBao's words.
    for (jwt, expected) in [
        (
            &billing,
            "HTTP 403 Forbidden: service account name not authorized",
        ),
        (&dev, "HTTP 403 Forbidden: namespace not authorized"),
        (&unknown, "HTTP 403 Forbidden: permission denied"),
    ] {
        let line = run_alone(login(jwt).retry(fast()), &env(&bao.addr(), &[])).await;
        assert_eq!(line.attempts, 1, "{line:?}");
        assert_eq!(
            line.error.as_deref(),
            Some(format!("auth/{mount}/login (role \"orders\"): {expected}").as_str()),
        );
    }
}

#[tokio::test]
async fn jwt_login_verifies_the_signature_with_static_keys_and_checks_bound_claims() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (kv, read) = orders_kv(&api);
    let key = JwtKey::new();
    let mount = unique("jwt");
    api.write(&format!("sys/auth/{mount}"), json!({"type": "jwt"}));
    api.write(
        &format!("auth/{mount}/config"),
        json!({"jwt_validation_pubkeys": [key.public_key_pem()], "jwt_supported_algs": ["ES256"]}),
    );
    api.write(
        &format!("auth/{mount}/role/deploy"),
        json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["vault"],
            "bound_subject": "repo:acme/orders",
            "token_policies": [read],
            "token_ttl": "10m",
        }),
    );
    let claims = |sub: &str| json!({"sub": sub, "aud": "vault", "iss": "https://ci.example", "iat": unix_time(0), "exp": unix_time(600)});
    let ctx = env(&bao.addr(), &[]);
    let report = Plan::new("p")
        .step(
            Vault::from_env()
                .jwt_login("deploy")
                .mount(&mount)
                .jwt(key.sign(&claims("repo:acme/orders"))),
        )
        .step(KvRead::v2(&kv, "orders/db").publish_secret("db"))
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");

    let attempt = |jwt: String| {
        let login = Vault::from_env()
            .jwt_login("deploy")
            .mount(&mount)
            .jwt(jwt)
            .retry(fast());
        let addr = bao.addr();
        async move { run_alone(login, &env(&addr, &[])).await }
    };
    let line = attempt(key.sign(&claims("repo:acme/other"))).await;
    assert_eq!(line.attempts, 1);
    let error = line.error.unwrap();
    // OpenBao checks the bound subject while it validates the token (the double said "error
    // validating claims").
    assert_eq!(
        error,
        format!(
            "auth/{mount}/login (role \"deploy\"): HTTP 400 Bad Request: error validating token: invalid subject (sub) claim"
        )
    );

    let forged = JwtKey::new().sign(&claims("repo:acme/orders"));
    let line = attempt(forged).await;
    assert_eq!(line.attempts, 1);
    let error = line.error.unwrap();
    assert!(error.contains("signature"), "{error}");
    assert!(error.contains(": HTTP 400 Bad Request: "), "{error}");
}

#[tokio::test]
async fn kv_v1_reads_the_whole_secret_or_the_chosen_fields() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let mount = unique("kvone");
    mount_kv(&api, &mount, 1);
    api.write(
        &format!("{mount}/app/api"),
        json!({"key": "k-1", "region": "eu", "extra": "x"}),
    );
    let some = KvRead::v1(&mount, "app/api")
        .fields(["key", "region"])
        .publish_secret("some");
    // The data-flow check knows the chosen fields: they are the published keys.
    assert_eq!(
        some.publishes().unwrap()[0].to_string(),
        "values.some{key,region}"
    );
    let plan = Plan::new("p")
        .step(KvRead::v1(&mount, "app/api").publish_secret("all"))
        .step(some.named("some"));
    // No login step: VAULT_TOKEN is used.
    let ctx = env(&bao.addr(), &[("VAULT_TOKEN", bao.root_token())]);
    let report = plan.run(&ctx).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        ctx.value("all").unwrap(),
        json!({"key": "k-1", "region": "eu", "extra": "x"})
    );
    assert_eq!(
        ctx.value("some").unwrap(),
        json!({"key": "k-1", "region": "eu"})
    );
    assert!(ctx.is_secret("all") && ctx.is_secret("some"));
}

#[tokio::test]
async fn kv_v2_reads_the_latest_or_the_version_asked_for() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (mount, _) = orders_kv(&api);
    assert_eq!(
        kv2_put(&api, &mount, "orders/db", json!({"password": "second"})),
        2
    );
    let plan = Plan::new("p")
        .step(
            KvRead::v2(&mount, "orders/db")
                .version(1)
                .field("password")
                .publish_secret("v1"),
        )
        .step(
            KvRead::v2(&mount, "orders/db")
                .publish_secret("latest")
                .named("latest"),
        );
    let ctx = env(&bao.addr(), &[("VAULT_TOKEN", bao.root_token())]);
    assert!(plan.run(&ctx).await.is_success());
    assert_eq!(
        ctx.value("v1").unwrap(),
        json!({"password": "pa$$-\"w0rd\"-1"})
    );
    assert_eq!(ctx.value("latest").unwrap(), json!({"password": "second"}));
}

#[tokio::test]
async fn a_deleted_or_destroyed_kv_v2_version_fails_at_once_saying_so() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (mount, _) = orders_kv(&api);
    kv2_put(&api, &mount, "orders/db", json!({"password": "v2"}));
    kv2_put(&api, &mount, "orders/db", json!({"password": "v3"}));
    // DELETE on data/ soft-deletes the latest version; destroy/ removes one for good
    // (<https://openbao.org/api-docs/secret/kv/kv-v2/>).
    api.delete(&format!("{mount}/data/orders/db"));
    api.write(
        &format!("{mount}/destroy/orders/db"),
        json!({"versions": [2]}),
    );
    let deleted_at =
        api.read(&format!("{mount}/metadata/orders/db"))["data"]["versions"]["3"]["deletion_time"]
            .as_str()
            .unwrap()
            .to_owned();
    let ctx = env(&bao.addr(), &[("VAULT_TOKEN", bao.root_token())]);

    let read = KvRead::v2(&mount, "orders/db")
        .publish_secret("db")
        .retry(fast());
    let line = run_alone(read, &ctx).await;
    assert_eq!((line.status, line.attempts), (StepStatus::Failed, 1));
    assert_eq!(
        line.error.as_deref(),
        Some(
            format!(
                "{mount}/orders/db: version 3 was deleted at {deleted_at} (kv v2; undelete it or read another version) (404)"
            )
            .as_str()
        )
    );

    let read = KvRead::v2(&mount, "orders/db")
        .version(2)
        .publish_secret("db")
        .retry(fast());
    let line = run_alone(read, &ctx).await;
    assert_eq!(line.attempts, 1);
    assert_eq!(
        line.error.as_deref(),
        Some(
            format!(
                "{mount}/orders/db (version 2): version 2 was destroyed (kv v2; read another version or write a new one) (404)"
            )
            .as_str()
        )
    );

    // Version 1 is still there.
    let read = KvRead::v2(&mount, "orders/db")
        .version(1)
        .publish_secret("db");
    assert_eq!(run_alone(read, &ctx).await.status, StepStatus::Succeeded);
}

#[tokio::test]
async fn permission_denied_is_permanent_and_names_the_path() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (mount, read) = orders_kv(&api);
    kv2_put(&api, &mount, "billing/db", json!({"password": "other"}));
    let token = token_with(&api, &[&read]);
    let ctx = env(&bao.addr(), &[("VAULT_TOKEN", &token)]);
    let report = Plan::new("orders-init")
        .step(Vault::from_env().token_login())
        .step(
            KvRead::v2(&mount, "billing/db")
                .publish_secret("db")
                .named("vault-db")
                .retry(fast()),
        )
        .run(&ctx)
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    let line = step(&report, "vault-db");
    assert_eq!(line.attempts, 1);
    // OpenBao sends "1 error occurred:\n\t* permission denied\n\n": matched and flattened.
    let expected = format!("{mount}/billing/db: HTTP 403 Forbidden: permission denied");
    assert_eq!(line.error.as_deref(), Some(expected.as_str()));
    let message = init_core::termination_message(&report, ctx.redactor());
    assert!(
        message.starts_with("step \"vault-db\" failed after 1 attempt in ")
            && message.ends_with(&format!(": {expected}")),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_secret_or_mount_is_a_permanent_404_and_v1_of_a_v2_mount_says_so() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (mount, _) = orders_kv(&api);
    let ctx = env(&bao.addr(), &[("VAULT_TOKEN", bao.root_token())]);
    let cases = [
        (
            KvRead::v2(&mount, "orders/nope"),
            format!("{mount}/orders/nope: HTTP 404 Not Found"),
        ),
        (
            KvRead::v2("nomount", "a"),
            "nomount/a: HTTP 404 Not Found: no handler for route \"nomount/data/a\". route entry not found."
                .to_owned(),
        ),
        (
            KvRead::v1(&mount, "orders/db"),
            format!("{mount}/orders/db: the mount is KV version 2: use KvRead::v2 (404)"),
        ),
    ];
    for (read, expected) in cases {
        let line = run_alone(read.publish_secret("x").retry(fast()), &ctx).await;
        assert_eq!(
            (line.attempts, line.error.as_deref()),
            (1, Some(expected.as_str()))
        );
    }

    let err = KvRead::v2(&mount, "orders/db")
        .field("pasword")
        .publish_secret("db")
        .run(&ctx)
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("{mount}/orders/db: no field \"pasword\" (fields: password, port, username)")
    );
}

#[tokio::test]
async fn a_namespace_scopes_the_login_and_the_reads() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let namespace = unique("team");
    bao.api()
        .write(&format!("sys/namespaces/{namespace}"), json!({}));
    let inside = bao.api().namespace(&namespace);
    let (kv, read) = orders_kv(&inside);
    let (approle_mount, role_id) = approle(&inside, &read);
    let ctx = env(
        &bao.addr(),
        &[("VAULT_NAMESPACE", &format!("{namespace}/"))],
    );
    let report = Plan::new("p")
        .step(VaultReady::new())
        .step(
            Vault::from_env()
                .approle_login(&role_id)
                .mount(&approle_mount)
                .secret_id(secret_id(&inside, &approle_mount)),
        )
        .step(KvRead::v2(&kv, "orders/db").publish_secret("db"))
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(ctx.value("db").unwrap()["username"], "orders");
    assert_eq!(
        ctx.get::<VaultSession>().unwrap().namespace(),
        Some(namespace.as_str())
    );

    // The same mount does not exist outside the namespace.
    let root = env(&bao.addr(), &[("VAULT_TOKEN", bao.root_token())]);
    let line = run_alone(
        KvRead::v2(&kv, "orders/db")
            .publish_secret("db")
            .retry(fast()),
        &root,
    )
    .await;
    assert_eq!(line.attempts, 1);
    assert!(
        line.error
            .as_deref()
            .unwrap()
            .contains(": HTTP 404 Not Found"),
        "{line:?}"
    );
}

fn verify_server_cert(ca_pem: &str, cert_pem: &str, name: &str) -> Result<(), rustls::Error> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    verifier
        .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
        .map(|_| ())
}

/// Whether `key_pem` is the private key of `cert_pem`.
fn key_matches(cert_pem: &str, key_pem: &str) -> Result<(), rustls::Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = rustls::crypto::ring::default_provider();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let key = provider.key_provider.load_private_key(key)?;
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    rustls::sign::CertifiedKey::new(vec![cert], key).keys_match()
}

/// A PKI engine at a fresh mount with a root CA, and role `orders` for `*.prod.svc`; returns
/// the mount and the CA certificate.
fn pki(api: &Api) -> (String, String) {
    let mount = unique("pki");
    api.write(
        &format!("sys/mounts/{mount}"),
        json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}}),
    );
    let root = api.write(
        &format!("{mount}/root/generate/internal"),
        json!({"common_name": "initkit test root", "ttl": "87600h", "key_type": "ec"}),
    );
    api.write(
        &format!("{mount}/roles/orders"),
        json!({"allowed_domains": ["prod.svc"], "allow_subdomains": true, "max_ttl": "168h", "key_type": "ec"}),
    );
    (
        mount,
        root["data"]["certificate"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn pki_issue_writes_a_certificate_that_verifies_against_the_chain_with_its_key() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (mount, ca) = pki(&api);
    let issuer = unique("pki-issuer");
    policy(
        &api,
        &issuer,
        &[&format!("{mount}/issue/orders")],
        &["update"],
    );
    let token = token_with(&api, &[&issuer]);
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let (logs, guard) = logs::capture();
    let ctx = env(&bao.addr(), &[("VAULT_TOKEN", &token)]);
    let issue = PkiIssue::new("orders", "orders.prod.svc")
        .mount(&mount)
        .alt_names(["api.orders.prod.svc"])
        .ip_sans(["127.0.0.1"])
        .ttl(Duration::from_secs(3600))
        .certificate_file(tls.join("tls.crt"))
        .private_key_file(tls.join("tls.key"))
        .ca_chain_file(tls.join("ca.crt"))
        .publish("tls");
    let declared = issue.publishes().unwrap();
    let report = Plan::new("p")
        .step(Vault::from_env().token_login())
        .step(issue)
        .run(&ctx)
        .await;
    drop(guard);
    assert!(report.is_success(), "{report:?}");
    assert!(report.step(&format!("vault-pki {mount}/orders")).is_some());

    let cert = std::fs::read_to_string(tls.join("tls.crt")).unwrap();
    let key = std::fs::read_to_string(tls.join("tls.key")).unwrap();
    let chain = std::fs::read_to_string(tls.join("ca.crt")).unwrap();
    assert_eq!(
        chain.trim(),
        ca.trim(),
        "the chain is the root that signed it"
    );
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(mode(&tls.join("tls.key")), 0o600);
    assert_eq!(mode(&tls.join("tls.crt")), 0o644);
    assert_eq!(mode(&tls.join("ca.crt")), 0o644);
    for name in ["orders.prod.svc", "api.orders.prod.svc", "127.0.0.1"] {
        verify_server_cert(&chain, &cert, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(verify_server_cert(&chain, &cert, "other.prod.svc").is_err());
    key_matches(&cert, &key).expect("the key is the certificate's");
    let (other_cert, _) = {
        let other = api.write(
            &format!("{mount}/issue/orders"),
            json!({"common_name": "x.prod.svc"}),
        );
        (
            other["data"]["certificate"].as_str().unwrap().to_owned(),
            (),
        )
    };
    assert!(
        key_matches(&other_cert, &key).is_err(),
        "the check can fail"
    );

    let published = ctx.value("tls").unwrap();
    assert_eq!(
        published["certificate"].as_str().unwrap().trim(),
        cert.trim()
    );
    // What the step declares for the data-flow check is what it publishes.
    let keys: std::collections::BTreeSet<String> =
        published.as_object().unwrap().keys().cloned().collect();
    assert_eq!(declared[0].name(), "tls");
    assert_eq!(declared[0].keys(), Some(&keys));
    assert_eq!(declared[1].name(), "tls_key");
    assert!(ctx.value("tls_key").unwrap().is_string());
    assert!(!ctx.is_secret("tls"));
    assert!(ctx.is_secret("tls_key"));
    let expiration = published["expiration"].as_i64().unwrap();
    assert!((expiration - unix_time(3600)).abs() < 60, "{expiration}");
    let logs = logs.text();
    let line = logs
        .lines()
        .find(|l| l.contains("issued certificate"))
        .unwrap();
    assert!(
        line.contains("expires_at=") && line.contains(published["serial_number"].as_str().unwrap()),
        "{line}"
    );
    assert!(
        !logs.contains(key.lines().nth(1).unwrap()),
        "the private key reached the logs"
    );
}

#[tokio::test]
async fn pki_issue_for_a_name_the_role_does_not_allow_is_permanent() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let (mount, _) = pki(&bao.api());
    let issue = PkiIssue::new("orders", "evil.example.org")
        .mount(&mount)
        .publish("tls")
        .retry(fast());
    let line = run_alone(
        issue,
        &env(&bao.addr(), &[("VAULT_TOKEN", bao.root_token())]),
    )
    .await;
    assert_eq!(line.attempts, 1);
    assert_eq!(
        line.error.as_deref(),
        Some(
            format!(
                "{mount}/issue/orders: HTTP 400 Bad Request: common name evil.example.org not allowed by this role"
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn revoke_kills_the_token_a_login_made_and_a_rerun_counts_it_revoked() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let (kv, read) = orders_kv(&api);
    let (mount, role_id) = approle(&api, &read);
    let ctx = env(&bao.addr(), &[]);
    let report = Plan::new("p")
        .step(
            Vault::from_env()
                .approle_login(&role_id)
                .mount(&mount)
                .secret_id(secret_id(&api, &mount)),
        )
        .step(KvRead::v2(&kv, "orders/db").publish_secret("db"))
        .step(VaultRevoke::new())
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");
    let token = ctx.get::<VaultSession>().unwrap().token().to_owned();
    assert!(
        !token_is_alive(bao, &token),
        "the token still works after revoke"
    );
    // Revoking again (a rerun) counts an invalid token as revoked.
    assert!(VaultRevoke::new().run(&ctx).await.is_ok());
    // And a read with it now fails.
    let line = run_alone(
        KvRead::v2(&kv, "orders/db")
            .publish_secret("again")
            .retry(fast()),
        &ctx,
    )
    .await;
    // ("orders" itself is a secret value of this plan, the username: the redactor masks it.)
    let error = line.error.unwrap();
    assert!(
        error.starts_with(&format!("{kv}/"))
            && error.ends_with("/db: HTTP 403 Forbidden: permission denied"),
        "{error}"
    );
}

#[tokio::test]
async fn vault_cacert_trusts_the_servers_ca_and_without_it_the_error_says_what_did_not_verify() {
    let Some(bao) = test_servers::openbao_tls() else {
        return;
    };
    let tls = bao.tls().unwrap();
    let (kv, _) = orders_kv(&bao.api());
    let read = || {
        KvRead::v2(&kv, "orders/db")
            .publish_secret("db")
            .retry(fast())
    };
    let ca = tls.ca_file().to_str().unwrap();
    let ctx = env(
        &tls.addr(),
        &[("VAULT_TOKEN", bao.root_token()), ("VAULT_CACERT", ca)],
    );
    let line = run_alone(read(), &ctx).await;
    assert_eq!(line.status, StepStatus::Succeeded, "{line:?}");
    assert_eq!(ctx.value("db").unwrap()["username"], "orders");

    let ctx = env(&tls.addr(), &[("VAULT_TOKEN", bao.root_token())]);
    let line = run_alone(read(), &ctx).await;
    assert_eq!(
        line.attempts, 1,
        "a certificate that does not verify is permanent"
    );
    let error = line.error.as_deref().unwrap();
    assert!(error.contains("TLS certificate did not verify"), "{error}");
    assert!(error.contains("unknown issuer"), "{error}");

    // VAULT_SKIP_VERIFY turns verification off, loudly.
    let (logs, guard) = logs::capture();
    let ctx = env(
        &tls.addr(),
        &[
            ("VAULT_TOKEN", bao.root_token()),
            ("VAULT_SKIP_VERIFY", "true"),
        ],
    );
    let line = run_alone(read(), &ctx).await;
    drop(guard);
    assert_eq!(line.status, StepStatus::Succeeded, "{line:?}");
    assert!(logs.text().contains("TLS certificate verification is OFF"));
}

#[tokio::test]
async fn vault_client_cert_and_key_pass_a_listener_that_requires_them() {
    let Some(bao) = test_servers::openbao_tls() else {
        return;
    };
    let tls = bao.tls().unwrap();
    let (kv, _) = orders_kv(&bao.api());
    let read = || {
        KvRead::v2(&kv, "orders/db")
            .publish_secret("db")
            .retry(fast())
    };
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let (ca, cert, key) = (
        path(tls.ca_file()),
        path(tls.client_cert_file()),
        path(tls.client_key_file()),
    );
    let ctx = env(
        &tls.mtls_addr(),
        &[
            ("VAULT_TOKEN", bao.root_token()),
            ("VAULT_CACERT", &ca),
            ("VAULT_CLIENT_CERT", &cert),
            ("VAULT_CLIENT_KEY", &key),
        ],
    );
    let line = run_alone(read(), &ctx).await;
    assert_eq!(line.status, StepStatus::Succeeded, "{line:?}");
    assert_eq!(ctx.value("db").unwrap()["port"], 5432);

    // Without the client certificate the handshake is refused: permanent, and it says why.
    let ctx = env(
        &tls.mtls_addr(),
        &[("VAULT_TOKEN", bao.root_token()), ("VAULT_CACERT", &ca)],
    );
    let line = run_alone(read(), &ctx).await;
    assert_eq!(
        line.attempts, 1,
        "a refused client certificate is permanent: {line:?}"
    );
    let error = line.error.as_deref().unwrap();
    assert!(error.contains("requires a client certificate"), "{error}");
}

/// A database secrets engine at a fresh mount, configured on the test's PostgreSQL, with role
/// `orders` that creates a login role valid for an hour
/// (<https://openbao.org/docs/secrets/databases/postgresql/>).
fn database_engine(api: &Api, pg: &test_servers::Postgres) -> String {
    let mount = unique("database");
    api.write(&format!("sys/mounts/{mount}"), json!({"type": "database"}));
    api.write(
        &format!("{mount}/config/pg"),
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!(
                "postgresql://{{{{username}}}}:{{{{password}}}}@{}/postgres?sslmode=disable",
                pg.addr()
            ),
            "username": pg.user(),
            "password": pg.password(),
            "allowed_roles": ["orders"],
        }),
    );
    api.write(
        &format!("{mount}/roles/orders"),
        json!({
            "db_name": "pg",
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
            ],
            "default_ttl": "1h",
            "max_ttl": "2h",
        }),
    );
    mount
}

#[tokio::test]
async fn dynamic_database_credentials_log_in_to_postgresql_and_outlive_vault_revoke() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let Some(pg) = test_servers::postgres() else {
        return;
    };
    let api = bao.api();
    let mount = database_engine(&api, pg);
    let reader = unique("creds");
    policy(
        &api,
        &reader,
        &[&format!("{mount}/creds/orders")],
        &["read"],
    );
    let (approle_mount, role_id) = approle(&api, &reader);
    let dir = tempfile::tempdir().unwrap();

    let (logs, guard) = logs::capture();
    let ctx = env(&bao.addr(), &[]);
    let report = Plan::new("orders-init")
        .step(
            Vault::from_env()
                .approle_login(&role_id)
                .mount(&approle_mount)
                .secret_id(secret_id(&api, &approle_mount)),
        )
        .step(
            VaultRead::new(format!("{mount}/creds/orders"))
                .publish_secret("pg")
                .write_field("password", dir.path().join("pg-password")),
        )
        .step(VaultRevoke::new())
        .run(&ctx)
        .await;
    drop(guard);
    assert!(report.is_success(), "{report:?}");
    assert!(
        report
            .step(&format!("vault-read {mount}/creds/orders"))
            .is_some()
    );
    let creds = ctx.value("pg").unwrap();
    assert!(ctx.is_secret("pg"));
    let user = creds["username"].as_str().unwrap();
    let password = creds["password"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pg-password")).unwrap(),
        password
    );
    assert_eq!(mode(&dir.path().join("pg-password")), 0o600);

    // The credentials are real: they log in to PostgreSQL.
    assert_eq!(
        pg.query_as(user, password, "postgres", "SELECT current_user")
            .unwrap(),
        user
    );
    assert!(pg.query_as(user, "wrong", "postgres", "SELECT 1").is_err());

    // The lease is logged (ID, TTL, renewable), the credentials never.
    let logs = logs.text();
    let line = logs
        .lines()
        .find(|l| l.contains("read vault secret"))
        .unwrap();
    assert!(
        line.contains(&format!("lease_id=\"{mount}/creds/orders/"))
            || line.contains(&format!("lease_id={mount}/creds/orders/")),
        "{line}"
    );
    assert!(
        line.contains("ttl_s=3600") && line.contains("renewable=true"),
        "{line}"
    );
    assert!(!logs.contains(password), "the password reached the logs");

    // VaultRevoke left the token alone: revoking it revokes its lease, and the role with it.
    let token = ctx.get::<VaultSession>().unwrap().token().to_owned();
    assert!(token_is_alive(bao, &token));
    assert!(logs.contains("not revoking the vault token"), "{logs}");
    api.write("auth/token/revoke", json!({"token": token}));
    // OpenBao revokes the token's leases in the background: the role goes within moments.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let refused = loop {
        match pg.query_as(user, password, "postgres", "SELECT 1") {
            Err(refused) => break refused,
            Ok(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(_) => panic!("{user} still logs in after its lease's token was revoked"),
        }
    };
    assert!(
        refused.contains("password authentication failed") || refused.contains("does not exist"),
        "{refused}"
    );
}

#[tokio::test]
async fn vault_read_posts_a_transit_decrypt_and_publishes_the_plaintext() {
    use base64::Engine as _;
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let api = bao.api();
    let mount = unique("transit");
    api.write(&format!("sys/mounts/{mount}"), json!({"type": "transit"}));
    api.write(&format!("{mount}/keys/orders"), json!({}));
    let plaintext = base64::engine::general_purpose::STANDARD.encode("data-key-1");
    let ciphertext = api.write(
        &format!("{mount}/encrypt/orders"),
        json!({ "plaintext": plaintext }),
    )["data"]["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    let ctx = env(&bao.addr(), &[("VAULT_TOKEN", bao.root_token())]);
    let decrypt = VaultRead::new(format!("{mount}/decrypt/orders"))
        .post(json!({ "ciphertext": ciphertext }))
        .field("plaintext")
        .publish_secret("key");
    let line = run_alone(decrypt, &ctx).await;
    assert_eq!(line.status, StepStatus::Succeeded, "{line:?}");
    assert_eq!(ctx.value("key").unwrap(), json!({ "plaintext": plaintext }));

    // A path that does not exist is a permanent 404 naming it.
    let missing = VaultRead::new(format!("{mount}/decrypt/nope"))
        .post(json!({ "ciphertext": ciphertext }))
        .publish_secret("x")
        .retry(fast());
    let line = run_alone(missing, &ctx).await;
    assert_eq!(line.attempts, 1, "{line:?}");
    assert!(
        line.error
            .as_deref()
            .unwrap()
            .starts_with(&format!("{mount}/decrypt/nope: ")),
        "{line:?}"
    );
}
