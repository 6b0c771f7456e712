//! # initkit
//!
//! Build your own Kubernetes init-container binary: a small, typed program that prepares a pod
//! (waits for dependencies, fetches secrets, renders configuration, sets permissions, runs
//! migrations) and exits 0 only when the main container can safely start.
//!
//! This crate is a facade over three crates:
//!
//! | crate | what it holds |
//! |---|---|
//! | [`init_core`] (as [`core`]) | [`Step`](prelude::Step), [`Plan`](prelude::Plan), policies, the report and the process contract |
//! | `init-macros` | `#[init_step]`, re-exported in the [`prelude`] with the `macros` feature |
//! | [`init_steps`] (as [`steps`]) | ready steps, one Cargo feature per family |
//!
//! ```no_run
//! use initkit::prelude::*;
//!
//! fn main() -> std::process::ExitCode {
//!     Plan::new("orders-init").run_main()
//! }
//! ```

#[doc(inline)]
pub use init_core as core;
#[doc(inline)]
pub use init_steps as steps;

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
#[doc(inline)]
pub use init_macros::init_step_initkit as init_step;

#[doc(hidden)]
pub use init_core::__private;
