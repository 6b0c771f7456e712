//! `TcpWait`: waits until one or more TCP ports accept connections.
//!
//! One concept per file: [`TcpWait`], its builder and its step (`wait.rs`), the target syntax
//! (`target.rs`), name resolution and the reuse of a lookup (`resolve.rs`), and the connection
//! attempt with the classification of its failures (`connect.rs`).

mod connect;
mod resolve;
mod target;
mod wait;

pub use wait::TcpWait;
