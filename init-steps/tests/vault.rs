//! The `vault` steps end to end: real plans, a real tokio runtime and real loopback HTTP
//! against a stateful double of Vault's API (`support/vault_double.rs`).
#![cfg(feature = "vault")]

#[path = "support/logs.rs"]
mod logs;
#[path = "support/vault_double.rs"]
mod vault_double;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use init_core::{Context, Outcome, Plan, Report, Retry, Step, StepExt, StepReport, StepStatus};
use init_steps::vault::{KvRead, PkiIssue, Vault, VaultReady, VaultRevoke, VaultSession};
use serde_json::json;
use vault_double::{Health, ROOT_TOKEN, VaultDouble, fake_jwt, service_account_jwt};

/// Quick retries, so transient-error tests take milliseconds.
fn fast() -> Retry {
    Retry::new()
        .with_initial_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(50))
        .with_max_attempts(5)
}

fn env_for(double: &VaultDouble, extra: &[(&str, &str)]) -> Context {
    let mut vars = vec![("VAULT_ADDR".to_owned(), double.url())];
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Context::with_env(vars)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
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

/// Reads `secret/orders/db` and publishes it as `db`, with quick retries.
fn read_orders_db() -> impl Step {
    KvRead::v2("secret", "orders/db")
        .publish_secret("db")
        .retry(fast())
}

/// A double with a KV v2 mount `secret` holding `orders/db`, and a Kubernetes role `orders`
/// bound to service account `orders` in namespace `prod`, allowed `secret/data/orders/`.
async fn orders_vault() -> VaultDouble {
    let double = VaultDouble::start().await;
    double.enable_kv_v2("secret");
    double.kv_put(
        "secret",
        "orders/db",
        json!({"username": "orders", "password": "pa$$-\"w0rd\"-1", "port": 5432}),
    );
    double.add_kubernetes_role(
        "kubernetes",
        "orders",
        &["orders"],
        &["prod"],
        &["secret/data/orders/"],
    );
    double
}

fn sa_token_file(dir: &Path, namespace: &str, name: &str) -> (std::path::PathBuf, String) {
    let jwt = service_account_jwt(namespace, name);
    let path = dir.join("token");
    // The kubelet's file has no newline, but a hand-made one often does: it is trimmed.
    std::fs::write(&path, format!("{jwt}\n")).unwrap();
    (path, jwt)
}

#[tokio::test]
async fn kubernetes_login_then_kv_v2_read_publishes_the_secret_and_writes_files() {
    let double = orders_vault().await;
    let dir = tempfile::tempdir().unwrap();
    let (token_file, jwt) = sa_token_file(dir.path(), "prod", "orders");
    let out = dir.path().join("secrets");
    let plan = Plan::new("orders-init")
        .step(VaultReady::new())
        .step(
            Vault::from_env()
                .kubernetes_login("orders")
                .jwt_file(&token_file),
        )
        .step(
            KvRead::v2("secret", "orders/db")
                .publish_secret("db")
                .write_json(out.join("db.json"))
                .write_env(out.join("db.env"))
                .write_field("password", out.join("password")),
        );
    let ctx = env_for(&double, &[]);
    let report = plan.run(&ctx).await;
    assert!(report.is_success(), "{report:?}");

    let db = ctx.value("db").unwrap();
    assert_eq!(db["username"], "orders");
    assert_eq!(db["port"], 5432);
    assert!(ctx.is_secret("db"));
    assert_eq!(
        std::fs::read_to_string(out.join("password")).unwrap(),
        "pa$$-\"w0rd\"-1"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("db.json")).unwrap()).unwrap();
    assert_eq!(
        json,
        json!({"username": "orders", "password": "pa$$-\"w0rd\"-1", "port": 5432})
    );
    assert_eq!(
        std::fs::read_to_string(out.join("db.env")).unwrap(),
        "password=\"pa\\$\\$-\\\"w0rd\\\"-1\"\nport=\"5432\"\nusername=\"orders\"\n"
    );
    for file in ["db.json", "db.env", "password"] {
        assert_eq!(mode(&out.join(file)), 0o600, "{file}");
    }

    // The login sent the trimmed JWT; the read used the token the login got, not the root one.
    let requests = double.requests();
    let login = requests
        .iter()
        .find(|r| r.path == "/v1/auth/kubernetes/login")
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&login.body).unwrap();
    assert_eq!(body, json!({"role": "orders", "jwt": jwt}));
    let session = ctx.get::<VaultSession>().unwrap();
    assert!(session.is_from_login());
    let read = requests
        .iter()
        .find(|r| r.path == "/v1/secret/data/orders/db")
        .unwrap();
    assert_eq!(read.header("x-vault-token"), Some(session.token()));
    assert!(
        requests
            .iter()
            .all(|r| r.header("x-vault-request") == Some("true"))
    );
    assert!(
        requests
            .iter()
            .all(|r| r.header("x-vault-namespace").is_none())
    );
}

#[tokio::test]
async fn the_namespace_goes_on_every_request_except_sys_health() {
    let double = orders_vault().await;
    let dir = tempfile::tempdir().unwrap();
    let (token_file, _) = sa_token_file(dir.path(), "prod", "orders");
    let plan = Plan::new("p")
        .step(VaultReady::new())
        .step(
            Vault::from_env()
                .kubernetes_login("orders")
                .jwt_file(&token_file),
        )
        .step(KvRead::v2("secret", "orders/db").publish_secret("db"));
    let report = plan
        .run(&env_for(&double, &[("VAULT_NAMESPACE", "team-a/")]))
        .await;
    assert!(report.is_success(), "{report:?}");
    for request in double.requests() {
        let expected = (request.path != "/v1/sys/health").then_some("team-a");
        assert_eq!(
            request.header("x-vault-namespace"),
            expected,
            "{}",
            request.path
        );
    }
}

#[tokio::test]
async fn kv_v1_reads_the_whole_secret_or_the_chosen_fields() {
    let double = VaultDouble::start().await;
    double.enable_kv_v1("kv");
    double.kv_put(
        "kv",
        "app/api",
        json!({"key": "k-1", "region": "eu", "extra": "x"}),
    );
    let plan = Plan::new("p")
        .step(KvRead::v1("kv", "app/api").publish_secret("all"))
        .step(
            KvRead::v1("kv", "app/api")
                .fields(["key", "region"])
                .publish_secret("some")
                .named("some"),
        );
    // No login step: VAULT_TOKEN is used.
    let ctx = env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]);
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
    assert!(double.requests().iter().all(|r| r.path == "/v1/kv/app/api"));
}

#[tokio::test]
async fn kv_v2_reads_the_version_asked_for() {
    let double = orders_vault().await;
    double.kv_put("secret", "orders/db", json!({"password": "second"}));
    let plan = Plan::new("p")
        .step(
            KvRead::v2("secret", "orders/db")
                .version(1)
                .field("password")
                .publish_secret("v1"),
        )
        .step(
            KvRead::v2("secret", "orders/db")
                .publish_secret("latest")
                .named("latest"),
        );
    let ctx = env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    assert!(plan.run(&ctx).await.is_success());
    assert_eq!(ctx.value("v1").unwrap()["password"], "pa$$-\"w0rd\"-1");
    assert_eq!(ctx.value("latest").unwrap(), json!({"password": "second"}));
    assert!(
        double
            .requests()
            .iter()
            .any(|r| r.path == "/v1/secret/data/orders/db?version=1")
    );
}

#[tokio::test]
async fn a_deleted_or_destroyed_kv_v2_version_fails_at_once_saying_so() {
    let double = orders_vault().await;
    double.kv_put("secret", "orders/db", json!({"password": "v2"}));
    double.kv_put("secret", "orders/db", json!({"password": "v3"}));
    double.kv_delete("secret", "orders/db", 3);
    double.kv_destroy("secret", "orders/db", 2);
    let ctx = env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]);

    let line = run_alone(read_orders_db(), &ctx).await;
    assert_eq!((line.status, line.attempts), (StepStatus::Failed, 1));
    let error = line.error.as_deref().unwrap();
    assert!(
        error.starts_with("secret/orders/db: version 3 was deleted at 2024-05-01T10:00:00"),
        "{error}"
    );

    let read = KvRead::v2("secret", "orders/db")
        .version(2)
        .publish_secret("db")
        .retry(fast());
    let line = run_alone(read, &ctx).await;
    assert_eq!(line.attempts, 1);
    assert!(
        line.error
            .as_deref()
            .unwrap()
            .starts_with("secret/orders/db (version 2): version 2 was destroyed")
    );
}

#[tokio::test]
async fn permission_denied_is_permanent_and_names_the_path_and_vaults_error() {
    let double = orders_vault().await;
    double.kv_put("secret", "billing/db", json!({"password": "other"}));
    let dir = tempfile::tempdir().unwrap();
    let (token_file, _) = sa_token_file(dir.path(), "prod", "orders");
    let plan = Plan::new("orders-init")
        .step(
            Vault::from_env()
                .kubernetes_login("orders")
                .jwt_file(&token_file),
        )
        .step(
            KvRead::v2("secret", "billing/db")
                .publish_secret("db")
                .named("vault-db")
                .retry(fast()),
        );
    let ctx = env_for(&double, &[]);
    let report = plan.run(&ctx).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let line = step(&report, "vault-db");
    assert_eq!(line.attempts, 1);
    // Vault sent "1 error occurred:\n\t* permission denied\n\n": matched and flattened.
    assert_eq!(
        line.error.as_deref(),
        Some("secret/billing/db: HTTP 403 Forbidden: permission denied")
    );
    let message = init_core::termination_message(&report, ctx.redactor());
    assert!(
        message.starts_with("step \"vault-db\" failed after 1 attempt in ")
            && message.ends_with(": secret/billing/db: HTTP 403 Forbidden: permission denied"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_secret_or_mount_is_a_permanent_404() {
    let double = orders_vault().await;
    let ctx = env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    let read = KvRead::v2("secret", "orders/nope")
        .publish_secret("x")
        .retry(fast());
    let line = run_alone(read, &ctx).await;
    assert_eq!(
        (line.attempts, line.error.as_deref()),
        (1, Some("secret/orders/nope: HTTP 404 Not Found"))
    );

    let read = KvRead::v2("nomount", "a").publish_secret("x").retry(fast());
    let line = run_alone(read, &ctx).await;
    assert_eq!(
        line.error.as_deref(),
        Some(
            "nomount/a: HTTP 404 Not Found: no handler for route \"nomount/data/a\". route entry not found."
        )
    );
}

#[tokio::test]
async fn a_kv_v1_read_of_a_v2_mount_says_to_use_v2() {
    let double = orders_vault().await;
    let ctx = env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    let read = KvRead::v1("secret", "orders/db")
        .publish_secret("x")
        .retry(fast());
    let line = run_alone(read, &ctx).await;
    assert_eq!(line.attempts, 1);
    assert_eq!(
        line.error.as_deref(),
        Some("secret/orders/db: the mount is KV version 2: use KvRead::v2 (404)")
    );
}

#[tokio::test]
async fn a_missing_field_names_the_fields_present_never_their_values() {
    let double = orders_vault().await;
    let ctx = env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    let read = KvRead::v2("secret", "orders/db")
        .field("pasword")
        .publish_secret("db");
    let err = read.run(&ctx).await.unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        "secret/orders/db: no field \"pasword\" (fields: password, port, username)"
    );
}

#[tokio::test]
async fn sealed_503s_are_retried_until_vault_answers() {
    let double = orders_vault().await;
    double.fail_next(3, 503, &["Vault is sealed"]);
    let ctx = env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    let line = run_alone(read_orders_db(), &ctx).await;
    assert_eq!(
        (line.status, line.attempts),
        (StepStatus::Succeeded, 4),
        "{line:?}"
    );
    assert_eq!(ctx.value("db").unwrap()["username"], "orders");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_transient_and_the_last_one_is_reported() {
    let double = orders_vault().await;
    double.fail_next(
        1,
        429,
        &["request path \"secret/data/orders/db\": rate limit quota exceeded"],
    );
    double.fail_next(1, 500, &["internal error"]);
    double.fail_next(3, 502, &[]);
    let ctx = env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    let line = run_alone(read_orders_db(), &ctx).await;
    assert_eq!((line.status, line.attempts), (StepStatus::Failed, 5));
    assert_eq!(
        line.error.as_deref(),
        Some("secret/orders/db: HTTP 502 Bad Gateway: a request to another vault node failed")
    );
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let double = orders_vault().await;
    double.drop_next(2);
    let ctx = env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    let line = run_alone(read_orders_db(), &ctx).await;
    assert_eq!(
        (line.status, line.attempts),
        (StepStatus::Succeeded, 3),
        "{line:?}"
    );
}

#[tokio::test]
async fn a_slow_answer_is_cut_by_the_attempt_timeout_and_retried() {
    let double = orders_vault().await;
    double.delay_next(Duration::from_secs(5));
    let ctx = env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    let started = std::time::Instant::now();
    let read = read_orders_db().attempt_timeout(Duration::from_millis(300));
    let line = run_alone(read, &ctx).await;
    assert_eq!(
        (line.status, line.attempts),
        (StepStatus::Succeeded, 2),
        "{line:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_redirect_to_another_host_never_carries_the_token() {
    let standby = VaultDouble::start().await;
    let active = orders_vault().await;
    // "localhost" is another host for the client, though the same machine.
    let elsewhere = active.url().replace("127.0.0.1", "localhost");
    standby.redirect_to(&elsewhere);
    let ctx = env_for(&standby, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    let read = KvRead::v2("secret", "orders/db")
        .publish_secret("db")
        .retry(fast().with_max_attempts(2));
    let line = run_alone(read, &ctx).await;
    assert_eq!(
        (line.status, line.attempts),
        (StepStatus::Failed, 2),
        "transient, retried"
    );
    let error = line.error.as_deref().unwrap();
    assert!(
        error.contains(&format!(
            "HTTP 307 Temporary Redirect: vault redirected to {elsewhere}/v1/secret/data/orders/db;"
        )),
        "{error}"
    );
    assert_eq!(standby.requests().len(), 2);
    assert!(
        active
            .requests()
            .iter()
            .all(|r| r.header("x-vault-token").is_none()),
        "the token reached another host"
    );
    assert!(active.requests().is_empty());
}

#[tokio::test]
async fn approle_login_reads_the_secret_id_file_and_a_wrong_one_fails_at_once() {
    let double = orders_vault().await;
    double.add_approle(
        "approle",
        "migrator",
        "role-id-1",
        Some("secret-id-1"),
        &["secret/data/orders/"],
    );
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret-id");
    std::fs::write(&secret_file, "secret-id-1\n").unwrap();
    let ctx = env_for(&double, &[]);
    let plan = Plan::new("p")
        .step(
            Vault::from_env()
                .approle_login("role-id-1")
                .secret_id_file(&secret_file),
        )
        .step(KvRead::v2("secret", "orders/db").publish_secret("db"));
    assert!(plan.run(&ctx).await.is_success());
    let login = double
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/auth/approle/login")
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&login.body).unwrap(),
        json!({"role_id": "role-id-1", "secret_id": "secret-id-1"})
    );

    let login = Vault::from_env()
        .approle_login("role-id-1")
        .secret_id("wrong")
        .retry(fast());
    let line = run_alone(login, &env_for(&double, &[])).await;
    assert_eq!(line.attempts, 1);
    assert_eq!(
        line.error.as_deref(),
        Some("auth/approle/login: HTTP 400 Bad Request: invalid role or secret ID")
    );
}

#[tokio::test]
async fn kubernetes_login_refuses_a_service_account_or_namespace_the_role_does_not_bind() {
    let double = orders_vault().await;
    let dir = tempfile::tempdir().unwrap();
    for (namespace, account, expected) in [
        (
            "prod",
            "billing",
            "HTTP 403 Forbidden: service account name not authorized",
        ),
        (
            "dev",
            "orders",
            "HTTP 403 Forbidden: namespace not authorized",
        ),
    ] {
        let (token_file, _) = sa_token_file(dir.path(), namespace, account);
        let login = Vault::from_env()
            .kubernetes_login("orders")
            .jwt_file(&token_file)
            .retry(fast());
        let line = run_alone(login, &env_for(&double, &[])).await;
        assert_eq!(line.attempts, 1);
        assert_eq!(
            line.error.as_deref(),
            Some(format!("auth/kubernetes/login (role \"orders\"): {expected}").as_str())
        );
    }
    let login = Vault::from_env()
        .kubernetes_login("nope")
        .mount("k8s")
        .jwt_file(dir.path().join("token"))
        .retry(fast());
    let line = run_alone(login, &env_for(&double, &[])).await;
    assert!(line.error.as_deref().unwrap().contains("auth/k8s/login"));
}

#[tokio::test]
async fn a_missing_service_account_token_file_fails_at_once_naming_the_file() {
    let double = orders_vault().await;
    let login = Vault::from_env()
        .kubernetes_login("orders")
        .jwt_file("/nonexistent/token")
        .retry(fast());
    let line = run_alone(login, &env_for(&double, &[])).await;
    assert_eq!(line.attempts, 1, "a missing file is permanent: {line:?}");
    assert_eq!(
        line.error.as_deref(),
        Some("kubernetes service-account token /nonexistent/token: no such file or directory")
    );
    assert!(double.requests().is_empty());
}

#[tokio::test]
async fn files_missing_when_the_step_runs_fail_at_once_naming_the_file() {
    let double = orders_vault().await;
    double.add_approle(
        "approle",
        "migrator",
        "role-id-1",
        Some("secret-id-1"),
        &["secret/"],
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = |name: &str| dir.path().join(name);
    let shown = |name: &str| missing(name).display().to_string();
    let cases: Vec<(Box<dyn Step>, String)> = vec![
        (
            Vault::from_env()
                .approle_login("role-id-1")
                .secret_id_file(missing("secret-id"))
                .boxed(),
            format!(
                "approle secret_id {}: no such file or directory",
                shown("secret-id")
            ),
        ),
        (
            Vault::from_env()
                .approle_login("role-id-1")
                .wrapped_secret_id_file(missing("wrapped"))
                .boxed(),
            format!(
                "approle wrapped secret_id {}: no such file or directory",
                shown("wrapped")
            ),
        ),
        (
            Vault::from_env()
                .jwt_login("ci")
                .jwt_file(missing("jwt"))
                .boxed(),
            format!("jwt {}: no such file or directory", shown("jwt")),
        ),
        (
            Vault::from_env().token_file_login(missing("token")).boxed(),
            format!(
                "vault token file {}: no such file or directory",
                shown("token")
            ),
        ),
        (
            Vault::from_env()
                .ca_file(missing("ca.pem"))
                .approle_login("role-id-1")
                .secret_id("secret-id-1")
                .boxed(),
            format!(
                "vault: CA file {}: no such file or directory",
                shown("ca.pem")
            ),
        ),
    ];
    for (login, expected) in cases {
        // The default policy of a one-shot step: five attempts over seconds, were it transient.
        let report = Plan::new("p").step(login).run(&env_for(&double, &[])).await;
        let line = &report.steps[0];
        assert_eq!(line.attempts, 1, "{line:?}");
        assert_eq!(line.status, StepStatus::Failed, "{line:?}");
        assert_eq!(line.error.as_deref(), Some(expected.as_str()));
    }
    assert!(double.requests().is_empty());
}

#[tokio::test]
async fn configured_files_that_exist_already_are_checked_at_validation() {
    let dir = tempfile::tempdir().unwrap();
    let a_dir = dir.path().join("a-directory");
    std::fs::create_dir(&a_dir).unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let shown = a_dir.display();
    let env = [
        ("VAULT_ADDR", "http://127.0.0.1:8200"),
        ("VAULT_TOKEN", ROOT_TOKEN),
    ];
    let cases: Vec<(Box<dyn Step>, String)> = vec![
        (
            Vault::from_env()
                .approle_login("r")
                .secret_id_file(&a_dir)
                .boxed(),
            format!(
                "step \"vault-login\": approle secret_id {shown}: expected a file, found a \
                 directory or another kind of entry"
            ),
        ),
        (
            Vault::from_env().jwt_login("ci").jwt_file(&a_dir).boxed(),
            format!("step \"vault-login\": jwt {shown}: expected a file"),
        ),
        (
            Vault::from_env()
                .kubernetes_login("orders")
                .jwt_file(&a_dir)
                .boxed(),
            format!(
                "step \"vault-login\": kubernetes service-account token {shown}: expected a file"
            ),
        ),
        (
            Vault::from_env().token_file_login(&a_dir).boxed(),
            format!("step \"vault-login\": vault token file {shown}: expected a file"),
        ),
        (
            Vault::from_env().ca_file(&not_pem).token_login().boxed(),
            format!(
                "step \"vault-login\": vault: CA file {}: expected PEM certificates",
                not_pem.display()
            ),
        ),
        (
            Vault::from_env()
                .client_cert(&not_pem, dir.path().join("key-to-come.pem"))
                .ready()
                .boxed(),
            format!(
                "step \"vault-ready\": vault: client certificate {}: expected PEM certificates",
                not_pem.display()
            ),
        ),
    ];
    for (step, expected) in cases {
        let error = refused_before_the_wait(step, &env).await;
        assert!(
            error.starts_with(&expected),
            "{error:?} does not start with {expected:?}"
        );
    }
}

/// A step that writes files, as a step before a login might (a secret fetched elsewhere, a CA
/// bundle assembled).
#[derive(Debug)]
struct WriteFiles(Vec<(std::path::PathBuf, String)>);

#[init_core::async_trait]
impl Step for WriteFiles {
    fn name(&self) -> &str {
        "write-files"
    }

    async fn run(&self, _: &Context) -> Result<(), init_core::StepError> {
        for (path, text) in &self.0 {
            std::fs::write(path, text).map_err(init_core::StepError::from_error)?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn files_an_earlier_step_writes_pass_validation_and_are_read_when_the_step_runs() {
    let (ca, cert, key) = vault_double::tls_identity();
    let double = VaultDouble::start_tls(&cert, &key).await;
    double.enable_kv_v2("secret");
    double.kv_put("secret", "orders/db", json!({"password": "written-later"}));
    double.add_approle(
        "approle",
        "migrator",
        "role-id-1",
        Some("secret-id-1"),
        &["secret/data/orders/"],
    );
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, secret_file) = (dir.path().join("ca.pem"), dir.path().join("secret-id"));
    let report = Plan::new("p")
        .step(WriteFiles(vec![
            (ca_file.clone(), ca),
            (secret_file.clone(), "secret-id-1\n".to_owned()),
        ]))
        .step(
            Vault::from_env()
                .ca_file(&ca_file)
                .approle_login("role-id-1")
                .secret_id_file(&secret_file),
        )
        .step(read_orders_db())
        .run(&env_for(&double, &[]))
        .await;
    assert!(report.is_success(), "{report:?}");
}

#[tokio::test]
async fn jwt_login_checks_the_roles_bound_claims() {
    let double = orders_vault().await;
    double.add_jwt_role(
        "ci",
        "deploy",
        "repo:acme/orders",
        "vault",
        &["secret/data/orders/"],
    );
    let good = fake_jwt(&json!({"sub": "repo:acme/orders", "aud": "vault"}));
    let ctx = env_for(&double, &[]);
    let report = Plan::new("p")
        .step(
            Vault::from_env()
                .jwt_login("deploy")
                .mount("ci")
                .jwt(good.clone()),
        )
        .step(KvRead::v2("secret", "orders/db").publish_secret("db"))
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");

    let bad = fake_jwt(&json!({"sub": "repo:acme/other", "aud": "vault"}));
    let login = Vault::from_env()
        .jwt_login("deploy")
        .mount("ci")
        .jwt(bad)
        .retry(fast());
    let error = run_alone(login, &env_for(&double, &[]))
        .await
        .error
        .unwrap();
    assert!(
        error.starts_with(
            "auth/ci/login (role \"deploy\"): HTTP 400 Bad Request: error validating claims"
        ),
        "{error}"
    );
    assert!(error.contains(": HTTP 400 Bad Request: "));
}

#[tokio::test]
async fn token_login_checks_the_token_and_revoke_leaves_a_given_token_alone() {
    let double = orders_vault().await;
    double.add_token("hvs.given", &["secret/data/orders/"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "hvs.given\n").unwrap();
    let ctx = env_for(&double, &[]);
    let report = Plan::new("p")
        .step(Vault::from_env().token_file_login(&file))
        .step(KvRead::v2("secret", "orders/db").publish_secret("db"))
        .step(VaultRevoke::new())
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");
    assert!(double.token_is_valid("hvs.given"));
    assert!(!double.requests().iter().any(|r| r.path.contains("revoke")));

    let login = Vault::from_env().token_login().retry(fast());
    let line = run_alone(login, &env_for(&double, &[("VAULT_TOKEN", "hvs.unknown")])).await;
    assert_eq!(line.attempts, 1);
    assert_eq!(
        line.error.as_deref(),
        Some("auth/token/lookup-self: HTTP 403 Forbidden: permission denied")
    );
}

#[tokio::test]
async fn revoke_revokes_the_token_a_login_made() {
    let double = orders_vault().await;
    let dir = tempfile::tempdir().unwrap();
    let (token_file, _) = sa_token_file(dir.path(), "prod", "orders");
    let ctx = env_for(&double, &[]);
    let report = Plan::new("p")
        .step(
            Vault::from_env()
                .kubernetes_login("orders")
                .jwt_file(&token_file),
        )
        .step(KvRead::v2("secret", "orders/db").publish_secret("db"))
        .step(VaultRevoke::new())
        .run(&ctx)
        .await;
    assert!(report.is_success(), "{report:?}");
    let token = ctx.get::<VaultSession>().unwrap().token().to_owned();
    assert!(!double.token_is_valid(&token));
    assert!(double.login_tokens().is_empty());
    // Revoking again (a rerun) counts an invalid token as revoked.
    assert!(VaultRevoke::new().run(&ctx).await.is_ok());
}

#[tokio::test]
async fn vault_ready_waits_for_an_unseal() {
    let double = Arc::new(VaultDouble::start().await);
    double.set_health(Health::Sealed);
    let unsealer = Arc::clone(&double);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        unsealer.set_health(Health::Active);
    });
    let ready = VaultReady::new().timeout(Duration::from_secs(10));
    let line = run_alone(ready, &env_for(&double, &[])).await;
    assert_eq!(line.status, StepStatus::Succeeded, "{line:?}");
    assert!(line.attempts > 1);
    assert!(double.requests().iter().all(|r| r.path == "/v1/sys/health"));
}

#[tokio::test]
async fn vault_ready_counts_a_standby_only_when_allowed() {
    let double = VaultDouble::start().await;
    double.set_health(Health::Standby);
    let ctx = env_for(&double, &[]);
    let line = run_alone(VaultReady::new().timeout(Duration::from_millis(600)), &ctx).await;
    assert!(line.timed_out);
    let error = line.error.as_deref().unwrap();
    assert!(
        error.contains("HTTP 429 Too Many Requests: vault is a standby node"),
        "{error}"
    );
    let line = run_alone(VaultReady::new().allow_standby(), &ctx).await;
    assert_eq!(line.status, StepStatus::Succeeded, "{line:?}");

    for (health, text) in [
        (
            Health::Uninitialized,
            "HTTP 501 Not Implemented: vault is not initialized",
        ),
        (Health::PerfStandby, "performance standby node"),
    ] {
        double.set_health(health);
        let err = VaultReady::new().run(&ctx).await.unwrap_err();
        assert!(
            err.is_transient() && err.to_string().contains(text),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_dr_secondary_or_a_node_removed_from_its_cluster_fails_vault_ready_at_once() {
    let double = VaultDouble::start().await;
    let ctx = env_for(&double, &[]);
    let address = double.url();
    for (health, expected) in [
        (
            Health::DrSecondary,
            "HTTP 472: vault is a disaster-recovery secondary, which serves no requests until \
             it is promoted; point VAULT_ADDR at the primary cluster",
        ),
        (
            Health::Removed,
            "HTTP 530: this vault node was removed from its cluster and will not rejoin by \
             itself; point VAULT_ADDR at a node of the cluster",
        ),
    ] {
        double.set_health(health);
        let ready = VaultReady::new().timeout(Duration::from_secs(60));
        let line = run_alone(ready, &ctx).await;
        assert_eq!(line.status, StepStatus::Failed, "{line:?}");
        assert!(!line.timed_out, "{line:?}");
        assert_eq!(line.attempts, 1, "{line:?}");
        let address = address.trim_end_matches('/');
        assert_eq!(
            line.error.as_deref(),
            Some(format!("vault at {address}/: {expected}").as_str())
        );
    }
}

/// An ingress in front of Vault: `sys/health` answers `status` (with the ingress's own body)
/// for the first `first` requests, then what an active Vault answers.
async fn ingress_before_vault(status: u16, first: usize) -> String {
    use axum::response::IntoResponse;
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let router = axum::Router::new().route(
        "/v1/sys/health",
        axum::routing::get(move || {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if n < first {
                    let status = axum::http::StatusCode::from_u16(status).unwrap();
                    (status, "default backend - not vault\n").into_response()
                } else {
                    axum::Json(json!({"initialized": true, "sealed": false, "standby": false}))
                        .into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn vault_ready_waits_through_an_ingress_404_but_not_a_refused_credential() {
    // A wait polls through what an ingress answers while it starts, as HttpWait does.
    let address = ingress_before_vault(404, 2).await;
    let ctx = Context::with_env([("VAULT_ADDR", address.as_str())]);
    let line = run_alone(VaultReady::new().retry(fast()), &ctx).await;
    assert_eq!(line.status, StepStatus::Succeeded, "{line:?}");
    assert_eq!(line.attempts, 3);

    let address = ingress_before_vault(403, usize::MAX).await;
    let ctx = Context::with_env([("VAULT_ADDR", address.as_str())]);
    let line = run_alone(VaultReady::new().retry(fast()), &ctx).await;
    assert_eq!(line.attempts, 1, "{line:?}");
    assert_eq!(
        line.error.as_deref(),
        Some("sys/health: HTTP 403 Forbidden")
    );
}

#[tokio::test]
async fn a_sealed_vault_makes_logins_transient() {
    let double = orders_vault().await;
    double.set_health(Health::Sealed);
    let dir = tempfile::tempdir().unwrap();
    let (token_file, _) = sa_token_file(dir.path(), "prod", "orders");
    let err = Vault::from_env()
        .kubernetes_login("orders")
        .jwt_file(&token_file)
        .run(&env_for(&double, &[]))
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        "auth/kubernetes/login (role \"orders\"): HTTP 503 Service Unavailable: vault is sealed"
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

#[tokio::test]
async fn pki_issue_writes_a_real_certificate_key_and_chain_and_logs_the_expiry() {
    let double = orders_vault().await;
    let ca = double.enable_pki("pki");
    double.add_pki_role(
        "pki",
        "orders",
        &["prod.svc"],
        true,
        Duration::from_secs(7 * 86400),
    );
    double.add_kubernetes_role(
        "kubernetes",
        "orders",
        &["orders"],
        &["prod"],
        &["secret/data/orders/", "pki/issue/orders"],
    );
    let dir = tempfile::tempdir().unwrap();
    let (token_file, _) = sa_token_file(dir.path(), "prod", "orders");
    let tls = dir.path().join("tls");
    let (logs, guard) = logs::capture();
    let ctx = env_for(&double, &[]);
    let report = Plan::new("p")
        .step(
            Vault::from_env()
                .kubernetes_login("orders")
                .jwt_file(&token_file),
        )
        .step(
            PkiIssue::new("orders", "orders.prod.svc")
                .alt_names(["api.orders.prod.svc"])
                .ip_sans(["127.0.0.1"])
                .ttl(Duration::from_secs(3600))
                .certificate_file(tls.join("tls.crt"))
                .private_key_file(tls.join("tls.key"))
                .ca_chain_file(tls.join("ca.crt"))
                .publish("tls"),
        )
        .run(&ctx)
        .await;
    drop(guard);
    assert!(report.is_success(), "{report:?}");

    let cert = std::fs::read_to_string(tls.join("tls.crt")).unwrap();
    let key = std::fs::read_to_string(tls.join("tls.key")).unwrap();
    assert_eq!(
        std::fs::read_to_string(tls.join("ca.crt")).unwrap().trim(),
        ca.trim()
    );
    assert!(
        cert.starts_with("-----BEGIN CERTIFICATE-----")
            && cert.ends_with("-----END CERTIFICATE-----\n")
    );
    assert!(key.contains("PRIVATE KEY-----"));
    assert_eq!(mode(&tls.join("tls.key")), 0o600);
    assert_eq!(mode(&tls.join("tls.crt")), 0o644);
    assert_eq!(mode(&tls.join("ca.crt")), 0o644);
    // Replaced together: each name is a link through `..data` into one timestamped directory.
    for name in ["tls.crt", "tls.key", "ca.crt"] {
        assert_eq!(
            std::fs::read_link(tls.join(name)).unwrap(),
            std::path::Path::new("..data").join(name)
        );
    }
    let stamped = std::fs::read_link(tls.join("..data")).unwrap();
    assert!(stamped.to_string_lossy().starts_with("..20"), "{stamped:?}");
    for name in ["orders.prod.svc", "api.orders.prod.svc", "127.0.0.1"] {
        verify_server_cert(&ca, &cert, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(verify_server_cert(&ca, &cert, "other.prod.svc").is_err());

    let published = ctx.value("tls").unwrap();
    assert_eq!(
        published["certificate"].as_str().unwrap().trim(),
        cert.trim()
    );
    assert!(!ctx.is_secret("tls"));
    assert!(ctx.is_secret("tls_key"));
    assert_eq!(
        ctx.value("tls_key").unwrap().as_str().unwrap().trim(),
        key.trim()
    );
    let expiration = published["expiration"].as_i64().unwrap();
    let in_an_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 3600;
    assert!((expiration - in_an_hour).abs() < 60);

    let logs = logs.text();
    let line = logs
        .lines()
        .find(|l| l.contains("issued certificate"))
        .unwrap();
    assert!(
        line.contains("expires_at=") && line.contains(published["serial_number"].as_str().unwrap()),
        "{line}"
    );
    let body_line = key.lines().nth(1).unwrap();
    assert!(
        !logs.contains(body_line),
        "the private key reached the logs"
    );
}

fn owner(path: &Path) -> (u32, u32) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.uid(), meta.gid())
}

#[tokio::test]
async fn pki_issue_owner_chowns_the_key_certificate_and_chain_and_the_key_stays_0600() {
    let double = VaultDouble::start().await;
    double.enable_pki("pki");
    double.add_pki_role(
        "pki",
        "web",
        &["example.com"],
        true,
        Duration::from_secs(86400),
    );
    let dir = tempfile::tempdir().unwrap();
    let (tls, chain_only) = (dir.path().join("tls"), dir.path().join("ca"));
    let report = Plan::new("p")
        .step(
            PkiIssue::new("web", "www.example.com")
                .certificate_file(tls.join("tls.crt"))
                .private_key_file(tls.join("tls.key"))
                .ca_chain_file(tls.join("ca.crt"))
                .owner(1234, 5678),
        )
        .step(
            PkiIssue::new("web", "api.example.com")
                .ca_chain_file(chain_only.join("ca.crt"))
                .owner(1234, 5678)
                .named("chain only"),
        )
        .run(&env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]))
        .await;
    assert!(report.is_success(), "{report:?}");
    for file in [
        tls.join("tls.key"),
        tls.join("tls.crt"),
        tls.join("ca.crt"),
        chain_only.join("ca.crt"),
    ] {
        assert_eq!(owner(&file), (1234, 5678), "{}", file.display());
    }
    assert_eq!(mode(&tls.join("tls.key")), 0o600);
    assert_eq!(mode(&tls.join("tls.crt")), 0o644);
    assert_eq!(mode(&chain_only.join("ca.crt")), 0o644);
}

#[tokio::test]
async fn kv_read_owner_chowns_every_file_and_they_stay_0600() {
    let double = orders_vault().await;
    let dir = tempfile::tempdir().unwrap();
    let (json_file, env_file) = (dir.path().join("db.json"), dir.path().join("db.env"));
    let read = KvRead::v2("secret", "orders/db")
        .write_json(&json_file)
        .write_env(&env_file)
        .owner(1234, 5678);
    let step = run_alone(read, &env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)])).await;
    assert_eq!(step.status, StepStatus::Succeeded, "{step:?}");
    for file in [&json_file, &env_file] {
        assert_eq!(owner(file), (1234, 5678), "{}", file.display());
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn pki_issue_for_a_name_the_role_does_not_allow_is_permanent() {
    let double = VaultDouble::start().await;
    double.enable_pki("pki_int");
    double.add_pki_role(
        "pki_int",
        "web",
        &["example.com"],
        false,
        Duration::from_secs(3600),
    );
    let issue = PkiIssue::new("web", "evil.example.org")
        .mount("pki_int")
        .publish("tls")
        .retry(fast());
    let line = run_alone(issue, &env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)])).await;
    assert_eq!(line.name, "vault-pki pki_int/web");
    assert_eq!(line.attempts, 1);
    assert_eq!(
        line.error.as_deref(),
        Some(
            "pki_int/issue/web: HTTP 400 Bad Request: common name evil.example.org not allowed by this role"
        )
    );
}

#[tokio::test]
async fn no_secret_reaches_logs_errors_the_report_or_the_termination_message() {
    let double = orders_vault().await;
    double.enable_pki("pki");
    double.add_pki_role(
        "pki",
        "orders",
        &["prod.svc"],
        true,
        Duration::from_secs(3600),
    );
    double.add_kubernetes_role(
        "kubernetes",
        "orders",
        &["orders"],
        &["prod"],
        &["secret/data/orders/", "pki/issue/"],
    );
    double.add_approle(
        "approle",
        "migrator",
        "role-id-1",
        Some("approle-secret-id-1"),
        &["secret/data/"],
    );
    let dir = tempfile::tempdir().unwrap();
    let (token_file, jwt) = sa_token_file(dir.path(), "prod", "orders");

    let (logs, guard) = logs::capture();
    // A plan that succeeds at everything, then fails on a path the token may not read.
    let ctx = env_for(&double, &[]);
    let report = Plan::new("orders-init")
        .step(VaultReady::new())
        .step(
            Vault::from_env()
                .kubernetes_login("orders")
                .jwt_file(&token_file),
        )
        .step(
            KvRead::v2("secret", "orders/db")
                .publish_secret("db")
                .write_env(dir.path().join("db.env")),
        )
        .step(PkiIssue::new("orders", "orders.prod.svc").publish("tls"))
        .step(
            KvRead::v2("secret", "billing/db")
                .publish_secret("billing")
                .retry(fast()),
        )
        .run(&ctx)
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    let login_token = ctx.get::<VaultSession>().unwrap().token().to_owned();
    let private_key = ctx.value("tls_key").unwrap().as_str().unwrap().to_owned();

    // A login that fails with a wrong secret ID, and one that fails on a sealed Vault.
    let approle_ctx = env_for(&double, &[]);
    let approle_report = Plan::new("approle")
        .step(
            Vault::from_env()
                .approle_login("role-id-1")
                .secret_id("wrong-secret-id-2")
                .retry(fast()),
        )
        .run(&approle_ctx)
        .await;
    let raw_error = Vault::from_env()
        .approle_login("role-id-1")
        .secret_id("wrong-secret-id-2")
        .run(&env_for(&double, &[]))
        .await
        .unwrap_err()
        .to_string();
    double.set_health(Health::Sealed);
    let sealed_ctx = env_for(&double, &[]);
    let sealed_report = Plan::new("sealed")
        .step(
            Vault::from_env()
                .kubernetes_login("orders")
                .jwt_file(&token_file)
                .retry(fast()),
        )
        .run(&sealed_ctx)
        .await;
    drop(guard);

    let secrets = [
        jwt.as_str(),
        login_token.as_str(),
        ROOT_TOKEN,
        "approle-secret-id-1",
        "wrong-secret-id-2",
        "pa$$-\"w0rd\"-1",
        private_key.lines().nth(1).unwrap(),
    ];
    let logs = logs.text();
    assert!(
        logs.contains("logged in to vault"),
        "the capture works: {logs}"
    );
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "low levels are captured"
    );
    let places = [
        ("logs", logs),
        ("report", report.to_json()),
        ("approle report", approle_report.to_json()),
        ("sealed report", sealed_report.to_json()),
        ("raw error", raw_error),
        (
            "termination message",
            init_core::termination_message(&report, ctx.redactor()),
        ),
        (
            "approle termination message",
            init_core::termination_message(&approle_report, approle_ctx.redactor()),
        ),
        (
            "session debug",
            format!("{:?}", ctx.get::<VaultSession>().unwrap()),
        ),
    ];
    for (place, text) in &places {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "a secret reached the {place}: {text}"
            );
        }
    }
    // The failures themselves are still explained.
    assert!(
        places[1]
            .1
            .contains("secret/billing/db: HTTP 403 Forbidden: permission denied")
    );
    assert!(
        places[2]
            .1
            .contains("HTTP 400 Bad Request: invalid role or secret ID")
    );
}

/// A step that records that it ran, then waits for an hour: a long wait before a Vault step.
#[derive(Debug, Default, Clone)]
struct LongWait {
    ran: Arc<std::sync::atomic::AtomicBool>,
}

#[init_core::async_trait]
impl Step for LongWait {
    fn name(&self) -> &str {
        "long-wait"
    }

    async fn run(&self, _: &Context) -> Result<(), init_core::StepError> {
        self.ran.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
}

/// Runs `[LongWait, one]` with `env` and returns the plan's error, checking that the plan was
/// refused as invalid (exit 2) before the wait ran.
async fn refused_before_the_wait(one: impl Step + 'static, env: &[(&str, &str)]) -> String {
    let wait = LongWait::default();
    let report = Plan::new("p")
        .step(wait.clone())
        .step(one)
        .run(&Context::with_env(env.iter().copied()))
        .await;
    assert_eq!(report.outcome, Outcome::Invalid, "{report:?}");
    assert_eq!(report.exit_code(), 2);
    assert!(
        !wait.ran.load(std::sync::atomic::Ordering::SeqCst),
        "the wait ran"
    );
    report.error.unwrap()
}

#[tokio::test]
async fn a_bad_vault_addr_fails_validation_before_the_wait_before_it_runs() {
    for (address, kind) in [
        ("vault:8200", "VAULT_ADDR \"vault:8200\""),
        ("ftp://vault:8200", "VAULT_ADDR \"ftp://vault:8200\""),
    ] {
        let error = refused_before_the_wait(
            read_orders_db(),
            &[("VAULT_ADDR", address), ("VAULT_TOKEN", ROOT_TOKEN)],
        )
        .await;
        assert_eq!(
            error,
            format!(
                "step \"vault-kv secret/orders/db\": {kind}: expected an http or https URL such \
                 as https://vault.vault:8200"
            )
        );
    }
}

#[tokio::test]
async fn an_unset_vault_addr_or_token_fails_validation_where_the_step_needs_it() {
    let error = refused_before_the_wait(
        Vault::from_env().kubernetes_login("orders"),
        &[("HOME", "/")],
    )
    .await;
    assert_eq!(
        error,
        "step \"vault-login\": VAULT_ADDR is not set: expected the vault address, such as \
         https://vault.vault:8200 (or Vault::address)"
    );
    let error = refused_before_the_wait(VaultReady::new(), &[("VAULT_ADDR", " ")]).await;
    assert!(
        error.starts_with("step \"vault-ready\": VAULT_ADDR is not set"),
        "{error}"
    );
    let error = refused_before_the_wait(
        Vault::from_env().token_login(),
        &[("VAULT_ADDR", "http://127.0.0.1:8200")],
    )
    .await;
    assert_eq!(
        error,
        "step \"vault-login\": VAULT_TOKEN is not set: expected a vault token (or \
         Vault::token, or Vault::token_file_login)"
    );
}

#[tokio::test]
async fn a_vault_step_after_a_login_needs_neither_vault_addr_nor_vault_token() {
    // The login names the address in code; the KV read uses its session. Validation cannot
    // see that the login comes first, so it must not demand VAULT_ADDR or VAULT_TOKEN.
    let double = orders_vault().await;
    let dir = tempfile::tempdir().unwrap();
    let (token_file, _) = sa_token_file(dir.path(), "prod", "orders");
    let report = Plan::new("p")
        .step(
            Vault::from_env()
                .address(double.url())
                .kubernetes_login("orders")
                .jwt_file(&token_file),
        )
        .step(read_orders_db())
        .run(&Context::with_env([("HOME", "/")]))
        .await;
    assert!(report.is_success(), "{report:?}");
}

#[tokio::test]
async fn bad_tls_variables_fail_validation_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = vault_double::tls_identity();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (ca, cert, key) = (
        write("ca.pem", &ca),
        write("client.pem", &cert),
        write("client.key", &key),
    );
    let not_pem = write("garbage.pem", "not a certificate\n");
    let missing = dir.path().join("missing.pem").to_str().unwrap().to_owned();
    let base = [
        ("VAULT_ADDR", "https://127.0.0.1:8200"),
        ("VAULT_TOKEN", ROOT_TOKEN),
    ];
    let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
        (
            vec![("VAULT_SKIP_VERIFY", "yes")],
            "VAULT_SKIP_VERIFY = \"yes\": expected true or false (or 1 or 0)".to_owned(),
        ),
        (
            vec![("VAULT_CLIENT_CERT", &cert)],
            "VAULT_CLIENT_CERT is set but VAULT_CLIENT_KEY is not: expected both, a PEM client \
             certificate and its private key, or neither"
                .to_owned(),
        ),
        (
            vec![("VAULT_CLIENT_KEY", &key)],
            "VAULT_CLIENT_KEY is set but VAULT_CLIENT_CERT is not: expected both, a PEM client \
             certificate and its private key, or neither"
                .to_owned(),
        ),
        (
            vec![("VAULT_CACERT", &missing)],
            format!(
                "VAULT_CACERT {missing}: no such file: expected a PEM file of CA certificates (a \
                 file that an earlier step writes is named in code, with Vault::ca_file or \
                 Vault::client_cert)"
            ),
        ),
        (
            vec![("VAULT_CACERT", &not_pem)],
            format!(
                "VAULT_CACERT {not_pem}: expected PEM certificates (-----BEGIN CERTIFICATE-----), \
                 found none"
            ),
        ),
        (
            vec![("VAULT_CLIENT_CERT", &not_pem), ("VAULT_CLIENT_KEY", &key)],
            format!(
                "VAULT_CLIENT_CERT {not_pem}: expected PEM certificates \
                 (-----BEGIN CERTIFICATE-----), found none"
            ),
        ),
        (
            // `*_KEY` variables are secret by default: the path is masked, the name is not.
            vec![("VAULT_CLIENT_CERT", &cert), ("VAULT_CLIENT_KEY", &not_pem)],
            "VAULT_CLIENT_KEY [redacted]: expected a PEM private key (-----BEGIN PRIVATE KEY-----)"
                .to_owned(),
        ),
    ];
    for (extra, expected) in cases {
        let mut env = base.to_vec();
        env.extend(extra);
        for step in [
            read_orders_db().boxed(),
            VaultReady::new().boxed(),
            Vault::from_env().approle_login("role-id-1").boxed(),
        ] {
            let name = step.name().to_owned();
            let error = refused_before_the_wait(step, &env).await;
            assert!(
                error.starts_with(&format!("step \"{name}\": {expected}")),
                "{error:?} does not start with {expected:?}"
            );
        }
    }
    // Good files pass.
    let mut env = base.to_vec();
    env.extend([
        ("VAULT_CACERT", ca.as_str()),
        ("VAULT_CLIENT_CERT", cert.as_str()),
        ("VAULT_CLIENT_KEY", key.as_str()),
        ("VAULT_SKIP_VERIFY", "false"),
    ]);
    let plan = Plan::new("p").step(read_orders_db());
    let result = plan.validate(&Context::with_env(env));
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn bad_configuration_is_refused_before_anything_runs() {
    let double = orders_vault().await;
    let report = Plan::new("p")
        .step(VaultReady::new())
        .step(
            Vault::from_env()
                .address("vault:8200")
                .kubernetes_login("orders"),
        )
        .step(KvRead::v1("kv", "a").version(2).publish_secret("x"))
        .step(
            PkiIssue::new("web", "w")
                .ip_sans(["not-an-ip"])
                .publish("tls"),
        )
        .run(&env_for(&double, &[]))
        .await;
    assert_eq!(report.outcome, Outcome::Invalid);
    let error = report.error.clone().unwrap();
    for expected in [
        "vault address \"vault:8200\": expected an http or https URL",
        "kv/a (version 2): version: expected no version for KV version 1",
        "ip_sans \"not-an-ip\": expected an IP address",
    ] {
        assert!(error.contains(expected), "{error}");
    }
    assert!(double.requests().is_empty());
}

#[tokio::test]
async fn vault_client_cert_and_key_authenticate_over_mutual_tls() {
    let (ca, cert, key) = vault_double::tls_identity();
    let (client_ca, client_cert, client_key) = vault_double::client_identity();
    let double = VaultDouble::start_mtls(&cert, &key, &client_ca).await;
    double.enable_kv_v2("secret");
    double.kv_put("secret", "orders/db", json!({"password": "mtls-secret"}));
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (ca_path, cert_path, key_path) = (
        write("ca.pem", &ca),
        write("client.pem", &client_cert),
        write("client.key", &client_key),
    );

    let ctx = env_for(
        &double,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("VAULT_CACERT", &ca_path),
            ("VAULT_CLIENT_CERT", &cert_path),
            ("VAULT_CLIENT_KEY", &key_path),
        ],
    );
    let line = run_alone(read_orders_db(), &ctx).await;
    assert_eq!(line.status, StepStatus::Succeeded, "{line:?}");
    assert_eq!(ctx.value("db").unwrap()["password"], "mtls-secret");

    // Without the client certificate the handshake is refused: permanent, and it says why.
    let ctx = env_for(
        &double,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("VAULT_CACERT", &ca_path)],
    );
    let line = run_alone(read_orders_db(), &ctx).await;
    assert_eq!(
        line.attempts, 1,
        "a refused client certificate is permanent"
    );
    let error = line.error.as_deref().unwrap();
    assert!(error.contains("requires a client certificate"), "{error}");
}

#[tokio::test]
async fn vault_cacert_trusts_a_private_ca_and_without_it_the_error_says_what_did_not_verify() {
    let (ca, cert, key) = vault_double::tls_identity();
    let double = VaultDouble::start_tls(&cert, &key).await;
    double.enable_kv_v2("secret");
    double.kv_put("secret", "orders/db", json!({"password": "tls-secret"}));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();

    let ca_path = ca_file.to_str().unwrap();
    let ctx = env_for(
        &double,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("VAULT_CACERT", ca_path)],
    );
    let line = run_alone(read_orders_db(), &ctx).await;
    assert_eq!(line.status, StepStatus::Succeeded, "{line:?}");
    assert!(double.url().starts_with("https://"));

    let ctx = env_for(&double, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    let line = run_alone(read_orders_db(), &ctx).await;
    assert_eq!(
        line.attempts, 1,
        "a certificate that does not verify is permanent"
    );
    let error = line.error.as_deref().unwrap();
    assert!(error.contains("TLS certificate did not verify"), "{error}");
    assert!(error.contains("unknown issuer"), "{error}");

    // VAULT_SKIP_VERIFY turns verification off, loudly.
    let (logs, guard) = logs::capture();
    let ctx = env_for(
        &double,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("VAULT_SKIP_VERIFY", "true")],
    );
    let line = run_alone(read_orders_db(), &ctx).await;
    drop(guard);
    assert_eq!(line.status, StepStatus::Succeeded, "{line:?}");
    assert!(logs.text().contains("TLS certificate verification is OFF"));
}

#[tokio::test]
async fn plain_kv_fields_stay_readable_and_the_others_are_masked() {
    let double = orders_vault().await;
    double.kv_put(
        "secret",
        "orders/app",
        json!({"username": "orders", "password": "hunter2-pass", "replicas": "1"}),
    );
    double.add_token("hvs.plain-fields-test", &["secret/data/orders/"]);
    let ctx = env_for(&double, &[("VAULT_TOKEN", "hvs.plain-fields-test")]);
    let report = run_alone(
        KvRead::v2("secret", "orders/app")
            .plain_fields(["username"])
            .publish_secret("app")
            .retry(fast()),
        &ctx,
    )
    .await;
    assert_eq!(
        report.status,
        init_core::StepStatus::Succeeded,
        "{report:?}"
    );
    assert!(ctx.is_secret("app"));
    assert_eq!(
        ctx.redact("plan=\"orders-init\" user \"orders\" password hunter2-pass replicas=1"),
        "plan=\"orders-init\" user \"orders\" password [redacted] replicas=1"
    );
}
