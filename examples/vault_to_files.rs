//! The flagship init container: fetch secrets from Vault and write them to a shared volume.
//!
//! It waits for Vault to be unsealed and active, logs in with the pod's Kubernetes
//! service-account token, reads the `orders/db` secret from the KV v2 engine at `secret`, issues
//! a TLS certificate from the PKI engine at `pki`, renders the application's config file from a
//! template that uses both (mode 0600), and revokes its Vault token at the end.
//!
//! It needs a Vault. Configure it with the Vault CLI's variables (`VAULT_ADDR`, and when
//! needed `VAULT_NAMESPACE`, `VAULT_CACERT`, `VAULT_CLIENT_CERT`/`VAULT_CLIENT_KEY`) and these:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `VAULT_ROLE` | `orders` | the Kubernetes auth role, and the PKI role |
//! | `APP_TEMPLATE` | `/templates/app.toml.j2` | the template of the config file |
//! | `CONFIG_DIR` | `/config` | where `app.toml` and `db.env` go |
//! | `TLS_DIR` | `/tls` | where `tls.crt`, `tls.key` and `ca.crt` go |
//! | `CERT_COMMON_NAME` | `orders.default.svc` | the certificate's name |
//!
//! A template such as:
//!
//! ```text
//! [database]
//! user = "{{ values.db.username }}"
//! password = "{{ values.db.password }}"
//!
//! [tls]
//! serial = "{{ values.tls.serial_number }}"
//! ```
//!
//! Run `cargo run --example vault_to_files --features vault,template -- --help` for the usage.

use std::process::ExitCode;
use std::time::Duration;

use initkit::Render;
use initkit::prelude::*;
use initkit::{KvRead, PkiIssue, Vault, VaultReady, VaultRevoke};

const USAGE: &str = "\
vault_to_files: an init container that logs in to Vault with the pod's service account,
renders a config file from a KV v2 secret, and issues a TLS certificate.

environment:
  VAULT_ADDR        Vault's address, such as https://vault.vault:8200 (required)
  VAULT_NAMESPACE   Vault Enterprise namespace (optional)
  VAULT_CACERT      PEM file of the CA that signed Vault's certificate (optional)
  VAULT_ROLE        Kubernetes auth role and PKI role (default: orders)
  APP_TEMPLATE      template of the config file (default: /templates/app.toml.j2)
  CONFIG_DIR        where app.toml and db.env are written (default: /config)
  TLS_DIR           where tls.crt, tls.key and ca.crt are written (default: /tls)
  CERT_COMMON_NAME  the certificate's common name (default: orders.default.svc)
  INITKIT_LOG       log filter, such as debug (default: info)
  INITKIT_DRY_RUN   1 to validate and print the plan without running it
";

fn var(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn main() -> ExitCode {
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if std::env::var("VAULT_ADDR").map_or(true, |v| v.trim().is_empty()) {
        eprintln!(
            "vault_to_files: VAULT_ADDR is not set: expected Vault's address, such as \
             https://vault.vault:8200 (see --help)"
        );
        return ExitCode::from(2);
    }
    let role = var("VAULT_ROLE", "orders");
    let config = std::path::PathBuf::from(var("CONFIG_DIR", "/config"));
    let tls = std::path::PathBuf::from(var("TLS_DIR", "/tls"));

    Plan::new("vault-to-files")
        .with_deadline(Duration::from_secs(300))
        .step(VaultReady::new().timeout(Duration::from_secs(120)))
        .step(Vault::from_env().kubernetes_login(role.clone()))
        .step(
            KvRead::v2("secret", "orders/db")
                .fields(["username", "password"])
                .publish_secret("db")
                .write_env(config.join("db.env")),
        )
        .step(
            PkiIssue::new(role, var("CERT_COMMON_NAME", "orders.default.svc"))
                .ttl(Duration::from_secs(24 * 3600))
                .certificate_file(tls.join("tls.crt"))
                .private_key_file(tls.join("tls.key"))
                .ca_chain_file(tls.join("ca.crt"))
                .publish("tls"),
        )
        .step(
            Render::file(
                var("APP_TEMPLATE", "/templates/app.toml.j2"),
                config.join("app.toml"),
            )
            .mode(0o600),
        )
        .step(VaultRevoke::new())
        .run_main()
}
