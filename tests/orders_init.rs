//! `examples/orders_init.rs` run as a real process against OpenBao, PostgreSQL 15 and Redis 7:
//! AppRole login, KV v2 credentials, both waits, the rendered config, the migrations and the
//! revoked token; a second run (another replica) applies no migration. Prints the wall time of
//! each run (`--nocapture`).
#![cfg(all(
    feature = "vault",
    feature = "template",
    feature = "postgres-migrate",
    feature = "redis"
))]

mod example_bin;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

fn logs(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn orders_init_logs_in_reads_waits_renders_migrates_and_revokes() {
    let (Some(bao), Some(pg), Some(redis)) = (
        test_servers::openbao(),
        test_servers::postgres(),
        test_servers::redis(),
    ) else {
        return;
    };
    let api = bao.api();
    api.write(
        "sys/mounts/orders-kv",
        json!({"type": "kv", "options": {"version": "2"}}),
    );
    api.write(
        "orders-kv/data/orders/db",
        json!({"data": {
            "username": pg.user(),
            "password": pg.password(),
            "redis_password": redis.password(),
        }}),
    );
    api.write(
        "sys/policies/acl/orders-read",
        json!({"policy": "path \"orders-kv/data/orders/*\" { capabilities = [\"read\"] }"}),
    );
    api.write("sys/auth/orders-approle", json!({"type": "approle"}));
    api.write(
        "auth/orders-approle/role/orders",
        json!({"token_policies": ["orders-read"], "token_ttl": "10m"}),
    );
    let role_id = api.read("auth/orders-approle/role/orders/role-id")["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    pg.create_database("orders");
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/orders");

    let run = |replica: &str| {
        let secret_id =
            api.write("auth/orders-approle/role/orders/secret-id", json!({}))["data"]["secret_id"]
                .as_str()
                .unwrap()
                .to_owned();
        let secret_id_file = dir.path().join(format!("secret-id-{replica}"));
        std::fs::write(&secret_id_file, secret_id).unwrap();
        let config = dir.path().join(format!("config-{replica}"));
        std::fs::create_dir(&config).unwrap();
        let report = dir.path().join(format!("report-{replica}.json"));
        let started = Instant::now();
        let output = Command::new(example_bin::path("orders_init"))
            .env_clear()
            .env("INITKIT_LOG", "info")
            .env("INITKIT_TERMINATION_LOG", "/dev/null")
            .env("INITKIT_REPORT", &report)
            .env("VAULT_ADDR", bao.addr())
            .env("VAULT_ROLE_ID", &role_id)
            .env("VAULT_SECRET_ID_FILE", &secret_id_file)
            .env("VAULT_APPROLE_MOUNT", "orders-approle")
            .env("KV_MOUNT", "orders-kv")
            .env("POSTGRES_ADDR", pg.addr())
            .env("POSTGRES_DB", "orders")
            .env("REDIS_ADDR", redis.addr())
            .env("APP_TEMPLATE", examples.join("app.toml.j2"))
            .env("CONFIG_DIR", &config)
            .env("MIGRATIONS_DIR", examples.join("migrations"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        eprintln!("orders_init ({replica}): {:?} wall time", started.elapsed());
        let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        (output, config, report)
    };

    let (first, config, report) = run("first");

    assert_eq!(first.status.code(), Some(0), "{}", logs(&first));
    let steps: Vec<(&str, &str)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(steps.len(), 7, "{steps:?}");
    assert!(
        steps.iter().all(|(_, status)| *status == "succeeded"),
        "{steps:?}"
    );
    let app = config.join("app.toml");
    let text = std::fs::read_to_string(&app).unwrap();
    assert!(
        text.contains(&format!("password = \"{}\"", pg.password())),
        "rendered: {}",
        app.display()
    );
    assert_eq!(
        std::fs::metadata(&app).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        pg.query(
            "orders",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM refinery_schema_history"
        )
        .unwrap(),
        "1,2"
    );
    assert!(
        !logs(&first).contains(pg.password()),
        "a password in the logs"
    );
    assert!(
        !logs(&first).contains(redis.password()),
        "a password in the logs"
    );

    let (second, _, _) = run("second");

    assert_eq!(second.status.code(), Some(0), "{}", logs(&second));
    assert!(logs(&second).contains("applied=0"), "{}", logs(&second));
}
