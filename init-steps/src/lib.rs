//! Ready-made steps for initkit plans, one Cargo feature per family.
//!
//! | step | module | feature |
//! |---|---|---|
//! | (added as the families land) | | |

#[cfg(feature = "http")]
#[allow(dead_code)] // Each family uses part of it.
mod http_client;
#[cfg(feature = "fs-writer")]
#[allow(dead_code)] // Each family uses part of it.
mod atomic;
