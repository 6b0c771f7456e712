//! `Render`: configuration files from minijinja templates (or envsubst-style templates), one file
//! or a directory tree, written atomically with the right mode, owner and an optional check.
//!
//! One concept per file: [`Render`] and its builder (`render.rs`), the template tree
//! (`tree.rs`), the minijinja environment (`environment.rs`) and our filters (`filters.rs`),
//! every filter refusing an undefined value (`strict.rs`),
//! checking and rendering a minijinja template (`jinja.rs`), the reference finder
//! (`references.rs`) and the lookup chains and `is defined` tests it follows (`lookups.rs`),
//! the values a render reads (`values.rs`), the envsubst syntax
//! (`envsubst.rs`) and the check command (`check.rs`).

mod check;
mod environment;
mod envsubst;
mod filters;
mod jinja;
mod lookups;
mod references;
mod render;
mod strict;
mod tree;
mod values;

pub use render::Render;
