//! HashiCorp Vault: log in, wait for Vault, read KV secrets and issue PKI certificates, over
//! Vault's HTTP API (<https://developer.hashicorp.com/vault/api-docs>) with reqwest and rustls.
//!
//! | step | made by | API |
//! |---|---|---|
//! | [`VaultReady`] | [`VaultReady::new`], [`Vault::ready`] | `GET sys/health` |
//! | [`KubernetesLogin`] | [`Vault::kubernetes_login`] | `POST auth/kubernetes/login` |
//! | [`AppRoleLogin`] | [`Vault::approle_login`] | `POST auth/approle/login` |
//! | [`JwtLogin`] | [`Vault::jwt_login`] | `POST auth/jwt/login` |
//! | [`TokenLogin`] | [`Vault::token_login`], [`Vault::token_file_login`] | `GET auth/token/lookup-self` |
//! | [`KvRead`] | [`KvRead::v2`], [`KvRead::v1`] | `GET <mount>/data/<path>`, `GET <mount>/<path>` |
//! | [`PkiIssue`] | [`PkiIssue::new`] | `POST <mount>/issue/<role>` |
//! | [`VaultRead`] | [`VaultRead::new`] | `GET <path>` (or `POST` with [`VaultRead::post`]): dynamic secrets, transit, any engine |
//! | [`VaultRevoke`] | [`VaultRevoke::new`] | `POST auth/token/revoke-self` |
//!
//! A login step stores a [`VaultSession`] (address, namespace, TLS client, token) in the
//! [`Context`](init_core::Context); the steps after it use it. The token, secret IDs, JWTs and
//! every secret value read are registered with the redactor the moment they are known, and never
//! logged: not in errors, the report or the termination message, at any log level. Vault's
//! answers are classified as Vault means them: 429, 5xx (sealed, standby) and connection
//! failures are transient; 400, 403, 404 and 405 permanent, naming the mount and path with
//! Vault's own errors.
//!
//! # Examples
//!
//! ```
//! use init_core::Plan;
//! use init_steps::vault::{KvRead, PkiIssue, Vault, VaultReady, VaultRevoke};
//!
//! let plan = Plan::new("orders-init")
//!     .step(VaultReady::new())
//!     .step(Vault::from_env().kubernetes_login("orders"))
//!     .step(KvRead::v2("secret", "orders/db").publish_secret("db").write_env("/secrets/db.env"))
//!     .step(
//!         PkiIssue::new("orders", "orders.prod.svc")
//!             .certificate_file("/tls/tls.crt")
//!             .private_key_file("/tls/tls.key"),
//!     )
//!     .step(VaultRevoke::new());
//! // The environment is checked before any step runs (exit 2), naming the variable.
//! let env = |addr| init_core::Context::with_env([("VAULT_ADDR", addr)]);
//! assert!(plan.validate(&env("https://vault.vault:8200")).is_ok());
//! let err = plan.validate(&env("vault:8200")).unwrap_err();
//! assert!(err.to_string().starts_with("step \"vault-ready\": VAULT_ADDR \"vault:8200\": expected"));
//! ```

mod auth;
mod client;
mod error;
mod health;
mod kv;
mod output;
mod pki;
mod pki_files;
mod pki_reply;
mod read;

pub use auth::{
    AppRoleLogin, JwtLogin, KUBERNETES_TOKEN_FILE, KubernetesLogin, TokenLogin, VaultRevoke,
};
pub use client::{Vault, VaultSession};
pub use health::VaultReady;
pub use kv::KvRead;
pub use pki::PkiIssue;
pub use read::VaultRead;
