//! [`Lazy`]: a step's HTTP client, built on its first attempt and kept for the others.
//!
//! A client reads its CA and client-certificate files when it is built, and an earlier step
//! of the plan may write them, so it cannot be built with the step; building it on every
//! attempt would re-read the files and drop the connection pool each time.

use std::fmt;
use std::sync::OnceLock;

use init_core::StepError;

/// A value built once, on first use, and cloned out after (a `reqwest::Client` or a Vault API
/// handle: both are cheap `Arc` clones). A failed build is not kept: the next attempt tries
/// again (a CA file may appear meanwhile).
pub(crate) struct Lazy<T>(OnceLock<T>);

impl<T: Clone> Lazy<T> {
    pub(crate) const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// The value, built by `build` the first time it succeeds.
    pub(crate) fn get_or_build(
        &self,
        build: impl FnOnce() -> Result<T, StepError>,
    ) -> Result<T, StepError> {
        if let Some(value) = self.0.get() {
            return Ok(value.clone());
        }
        let value = build()?;
        // Two attempts never run at once; if they did, both values are equivalent.
        Ok(self.0.get_or_init(|| value).clone())
    }
}

impl<T: Clone> Default for Lazy<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A clone starts without a value: a copied builder gets its own client.
impl<T: Clone> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "built"
        } else {
            "not built"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_once_and_reuses_the_value() {
        let lazy = Lazy::new();
        let mut builds = 0;
        for _ in 0..3 {
            let value = lazy
                .get_or_build(|| {
                    builds += 1;
                    Ok(7)
                })
                .unwrap();
            assert_eq!(value, 7);
        }
        assert_eq!(builds, 1);
    }

    #[test]
    fn a_failed_build_is_tried_again() {
        let lazy = Lazy::new();
        assert!(
            lazy.get_or_build(|| Err(StepError::permanent("no CA file")))
                .is_err()
        );
        assert_eq!(lazy.get_or_build(|| Ok(1)).unwrap(), 1);
        assert_eq!(format!("{lazy:?}"), "built");
        assert_eq!(format!("{:?}", lazy.clone()), "not built");
    }
}
