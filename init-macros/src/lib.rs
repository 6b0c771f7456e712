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

/// `#[init_step]` for crates that depend on `init-core` and `init-macros`: the generated code
/// names `::init_core` (change it with `crate = "..."`). With the `initkit` facade, use
/// `initkit::prelude::init_step` instead, which is the same macro naming `::initkit`.
///
#[doc = include_str!("init_step.md")]
#[proc_macro_attribute]
pub fn init_step(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::init_step(args.into(), item.into(), DefaultCrate::InitCore).into()
}

/// `#[init_step]` for crates that depend on the `initkit` facade: the generated code names
/// `::initkit` (change it with `crate = "..."`). Re-exported as `initkit::prelude::init_step`;
/// with `init-core` and `init-macros` as direct dependencies, use `init_core::init_step`.
///
#[doc = include_str!("init_step.md")]
#[proc_macro_attribute]
pub fn init_step_initkit(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::init_step(args.into(), item.into(), DefaultCrate::Initkit).into()
}
