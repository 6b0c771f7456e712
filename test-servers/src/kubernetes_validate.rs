//! `kubernetes-validate`: the offline checker of manifests against the Kubernetes OpenAPI schemas
//! (PyPI package `kubernetes-validate`, pinned in `scripts/test-requirements.txt`), for the tests
//! of `deploy/`. Not a server, but found, skipped and required under CI the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{StartError, host, owned_or_skip};

/// The Kubernetes version the manifests are checked against: the newest the pinned package
/// ships schemas for.
pub const KUBERNETES_VERSION: &str = "1.37.0";

/// What `kubernetes-validate` said of a set of manifests.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Whether every resource passed.
    pub passed: bool,
    /// Its output (one line per resource: `passed`, or the schema error).
    pub output: String,
}

/// The `kubernetes-validate` program, or `None` after printing one line naming the install
/// command (the caller returns, the test is skipped).
///
/// # Panics
///
/// Under CI (`CI=true`) when it is not installed.
///
/// # Examples
///
/// ```no_run
/// let Some(validator) = test_servers::kubernetes_validate() else { return };
/// let verdict = test_servers::validate_manifests(&validator, &["deploy/kubernetes/deployment.yaml".as_ref()]);
/// assert!(verdict.passed, "{}", verdict.output);
/// ```
pub fn kubernetes_validate() -> Option<PathBuf> {
    let candidate = host::tools_dir().join("venv/bin/kubernetes-validate");
    let found = host::find_program("kubernetes-validate", &[candidate]).ok_or_else(|| {
        StartError::missing(
            "kubernetes-validate",
            "kubernetes-validate",
            "PyPI package kubernetes-validate",
        )
    });
    owned_or_skip(found)
}

/// Checks `manifests` (YAML files, several documents each) strictly: an unknown field, a wrong
/// type or a missing required field fails.
///
/// # Panics
///
/// When the program cannot be run at all.
pub fn validate_manifests(program: &Path, manifests: &[&Path]) -> Verdict {
    let output = Command::new(program)
        .args(["--strict", "--no-warn", "-k", KUBERNETES_VERSION])
        .args(manifests)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    Verdict {
        passed: output.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}
