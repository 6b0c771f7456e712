//! # initkit
//!
//! Build your own Kubernetes init-container binary: a small, typed program that prepares a pod
//! (waits for dependencies, fetches secrets, renders configuration, sets permissions, runs
//! migrations) and exits 0 only when the main container can safely start.
//!
//! Everything is here, at the top level: the core ([`Plan`], [`Step`], [`Policy`],
//! [`Context`], the [`Report`]), `#[init_step]` (feature `macros`), and every ready step, each
//! family behind its Cargo feature ([`TcpWait`] with `tcp`, [`KvRead`] with `vault`, ...).
//! [`prelude`] holds what a `main.rs` usually needs in one import. Under the hood the crate is
//! a facade over `init-core`, `init-macros` and `init-steps`; a crate that defines its own
//! steps can depend on `init-core` alone (without its `run-main` feature, no logging stack).
//!
//! ```no_run
//! use initkit::{Plan, TcpWait};
//!
//! fn main() -> std::process::ExitCode {
//!     Plan::new("orders-init")
//!         .step(TcpWait::new("postgres:5432"))
//!         .run_main()
//! }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use init_core::*;

/// Everything a plan's `main.rs` usually needs, in one import.
///
/// ```
/// use initkit::prelude::*;
/// let plan = Plan::new("example");
/// assert_eq!(plan.name(), "example");
/// ```
pub mod prelude {
    #[doc(inline)]
    pub use init_core::prelude::*;

    /// The `#[init_step]` whose generated code names `::initkit` (it shadows the glob's
    /// `init_core` flavour).
    #[cfg(feature = "macros")]
    #[doc(inline)]
    pub use init_macros::init_step_initkit as init_step;
}

#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
#[doc(inline)]
pub use init_macros::init_step_initkit as init_step;

/// Re-exports one family's step types (a `use` tree), labelled with the feature that enables
/// them.
macro_rules! family {
    ($feature:literal: $($tree:tt)+) => {
        #[cfg(feature = $feature)]
        #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
        #[doc(inline)]
        pub use $($tree)+;
    };
}

family!("tcp": init_steps::tcp::TcpWait);
family!("http": init_steps::http::HttpWait);
family!("fs": init_steps::fs::{Chmod, Chown, CopyFile, EnsureDir, FileWait, WriteFile});
family!("template": init_steps::template::Render);
family!("vault": init_steps::vault::{
    AppRoleLogin, JwtLogin, KUBERNETES_TOKEN_FILE, KubernetesLogin, KvRead, PkiIssue, TokenLogin,
    Vault, VaultReady, VaultRead, VaultRevoke, VaultSession,
});
family!("download": init_steps::download::Download);
family!("command": init_steps::command::Command);
family!("certs": init_steps::certs::{CaBundle, Expired});
family!("postgres": init_steps::postgres::PostgresWait);
family!("mysql": init_steps::mysql::MysqlWait);
family!("postgres-migrate": init_steps::postgres::PostgresMigrate);
family!("redis": init_steps::redis::RedisWait);
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "mysql", feature = "redis")))
)]
#[doc(inline)]
pub use init_steps::TlsMode;
