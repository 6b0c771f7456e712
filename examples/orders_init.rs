//! `orders_init`: the init container a team would ship for an `orders` service.
//!
//! 1. logs in to Vault with an AppRole (`VAULT_ROLE_ID`, the secret ID read from a file);
//! 2. reads the credentials from KV v2 (`username`, `password`, `redis_password`), published as
//!    secrets under `db`;
//! 3. waits for PostgreSQL (logging in with those credentials) and Redis (`AUTH` + `PING`) at
//!    once;
//! 4. renders the application's config file (mode 0600);
//! 5. applies the SQL migrations (each once, however many replicas start together);
//! 6. revokes its Vault token.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `VAULT_ADDR` | (required) | Vault's address (and the Vault CLI's other `VAULT_*` variables) |
//! | `VAULT_ROLE_ID` | (required) | the AppRole's role ID |
//! | `VAULT_SECRET_ID_FILE` | `/vault/approle/secret-id` | the file holding the secret ID |
//! | `VAULT_APPROLE_MOUNT` | `approle` | where the AppRole auth method is mounted |
//! | `KV_MOUNT` | `secret` | the KV v2 engine's mount |
//! | `KV_PATH` | `orders/db` | the secret holding `username`, `password`, `redis_password` |
//! | `POSTGRES_ADDR` | `postgres:5432` | PostgreSQL's address |
//! | `POSTGRES_DB` | `orders` | the database |
//! | `REDIS_ADDR` | `redis:6379` | Redis's address |
//! | `APP_TEMPLATE` | `/templates/app.toml.j2` | the config template (`examples/orders/app.toml.j2`) |
//! | `CONFIG_DIR` | `/config` | where `app.toml` is written |
//! | `MIGRATIONS_DIR` | `/migrations` | the `V<n>__<name>.sql` files (`examples/orders/migrations`) |
//!
//! `cargo build --release --example orders_init --features vault,template,postgres-migrate,redis`;
//! `tests/orders_init.rs` runs it against OpenBao, PostgreSQL and Redis.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use initkit::RedisWait;
use initkit::Render;
use initkit::prelude::*;
use initkit::{KvRead, Vault, VaultRevoke};
use initkit::{PostgresMigrate, PostgresWait};

fn var(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn main() -> ExitCode {
    let postgres = var("POSTGRES_ADDR", "postgres:5432");
    let database = var("POSTGRES_DB", "orders");
    let config = PathBuf::from(var("CONFIG_DIR", "/config"));

    Plan::new("orders-init")
        .with_deadline(Duration::from_secs(600))
        .step(
            Vault::from_env()
                .approle_login(var("VAULT_ROLE_ID", ""))
                .mount(var("VAULT_APPROLE_MOUNT", "approle"))
                .secret_id_file(var("VAULT_SECRET_ID_FILE", "/vault/approle/secret-id")),
        )
        .step(
            KvRead::v2(var("KV_MOUNT", "secret"), var("KV_PATH", "orders/db"))
                .fields(["username", "password", "redis_password"])
                .plain_fields(["username"])
                .publish_secret("db"),
        )
        .concurrently((
            PostgresWait::new(&postgres)
                .database(&database)
                .user_from_value("db.username")
                .password_from_value("db.password")
                .timeout(Duration::from_secs(120)),
            RedisWait::new(var("REDIS_ADDR", "redis:6379"))
                .password_from_value("db.redis_password")
                .timeout(Duration::from_secs(120)),
        ))
        .step(
            Render::file(
                var("APP_TEMPLATE", "/templates/app.toml.j2"),
                config.join("app.toml"),
            )
            .mode(0o600),
        )
        .step(
            PostgresMigrate::new(&postgres)
                .database(&database)
                .user_from_value("db.username")
                .password_from_value("db.password")
                .dir(var("MIGRATIONS_DIR", "/migrations"))
                .lock_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(300)),
        )
        .step(VaultRevoke::new())
        .run_main()
}
