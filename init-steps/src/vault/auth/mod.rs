//! The login steps, one file per auth method (Kubernetes, AppRole, JWT, a given token), each
//! leaving a [`VaultSession`](crate::vault::VaultSession) in the context; what they share
//! (`login.rs`: the connection, the `auth/<mount>/login` request, the step implementation; and
//! `secret_source.rs`: secrets given inline or read from files); and [`VaultRevoke`], which
//! revokes the token a login made.

mod approle;
mod jwt;
mod kubernetes;
mod login;
mod revoke;
mod secret_source;
mod token;

pub use approle::AppRoleLogin;
pub use jwt::JwtLogin;
pub use kubernetes::{KUBERNETES_TOKEN_FILE, KubernetesLogin};
pub use revoke::VaultRevoke;
pub use token::TokenLogin;

login::login_steps!(AppRoleLogin, JwtLogin, KubernetesLogin, TokenLogin);
