//! The Vault client: its configuration from the Vault CLI's environment variables
//! (`config.rs`), the session a login step leaves in the context (`session.rs`), the paths of
//! Vault's API (`path.rs`), one HTTP request to it (`api.rs`) and the secret strings that travel
//! through them (`secret.rs`).

mod api;
mod config;
mod path;
mod secret;
mod session;

pub(crate) use api::{Api, Reply, string_list};
pub use config::Vault;
pub(crate) use config::no_token;
pub(crate) use path::{ApiPath, validate_path};
pub(crate) use secret::Secret;
pub(crate) use session::TokenSource;
pub use session::VaultSession;
