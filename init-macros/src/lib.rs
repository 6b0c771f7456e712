//! `#[init_step]`: turns an `async fn` into an initkit `Step`.
//!
//! Use it through `initkit::prelude` (or `init_core::prelude` with the `macros` feature); the
//! macro's documentation lists its arguments. Two entry points share one implementation and
//! differ only in the crate the generated code names by default:
//!
//! | macro | default crate path | re-exported as |
//! |---|---|---|
//! | [`init_step`] | `::init_core` | `init_core::init_step`, `init_core::prelude::init_step` |
//! | [`init_step_initkit`] | `::initkit` | `initkit::prelude::init_step` |
//!
//! The crate follows tracing-attributes and tokio-macros: `args.rs` parses and checks the
//! arguments, `expand.rs` checks the signature and generates the `Step` impl.

mod args;
mod expand;

use proc_macro::TokenStream;

use crate::expand::DefaultCrate;

/// Turns an `async fn` into a [`Step`] whose generated code names `::init_core`: the flavour for
/// crates that depend on `init-core` and `init-macros` (re-exported as `init_core::init_step`).
/// With the `initkit` facade, use `initkit::prelude::init_step`, which names `::initkit`.
///
#[doc = include_str!("init_step.md")]
#[proc_macro_attribute]
pub fn init_step(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::init_step(args.into(), item.into(), DefaultCrate::InitCore).into()
}

/// Turns an `async fn` into a [`Step`] whose generated code names `::initkit`: the flavour that
/// the facade re-exports as `initkit::prelude::init_step`. With `init-core` and `init-macros` as
/// dependencies, use `init_core::init_step`, which names `::init_core`.
///
#[doc = include_str!("init_step.md")]
#[proc_macro_attribute]
pub fn init_step_initkit(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::init_step(args.into(), item.into(), DefaultCrate::Initkit).into()
}
