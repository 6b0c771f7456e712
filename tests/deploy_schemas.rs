//! The Kubernetes manifests in `deploy/` checked against the Kubernetes OpenAPI schemas, offline,
//! with the pinned `kubernetes-validate` (strict: an unknown or misspelt field fails, as
//! `kubectl apply --validate=strict` would). `tests/deploy.rs` checks their cross-references.
//!
//! The Helm chart's templates are not checked here: rendering Go templates needs Helm, which
//! this machine does not have.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_kubernetes_manifests_pass_the_kubernetes_schemas_strictly() {
    let Some(validator) = test_servers::kubernetes_validate() else {
        return;
    };
    let manifest = repo().join("deploy/kubernetes/deployment.yaml");
    let verdict = test_servers::validate_manifests(&validator, &[&manifest]);
    assert!(verdict.passed, "{}", verdict.output);
    // Every resource of the file was checked, not only the first.
    for resource in [
        "configmap/orders-templates",
        "persistentvolumeclaim/orders-data",
        "deployment/orders",
    ] {
        assert!(
            verdict
                .output
                .contains(&format!("passed for resource {resource}")),
            "{resource} not checked:\n{}",
            verdict.output
        );
    }
}

#[test]
fn a_misspelt_field_in_a_manifest_fails_the_schema_check_naming_it() {
    let Some(validator) = test_servers::kubernetes_validate() else {
        return;
    };
    let text = std::fs::read_to_string(repo().join("deploy/kubernetes/deployment.yaml"))
        .expect("read the deployment manifest");
    assert!(text.contains("terminationMessagePolicy: FallbackToLogsOnError"));
    let broken = text.replace(
        "terminationMessagePolicy: FallbackToLogsOnError",
        "terminationMessagePolicyy: FallbackToLogsOnError",
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("deployment.yaml");
    std::fs::write(&path, broken).expect("write the broken manifest");

    let verdict = test_servers::validate_manifests(&validator, &[Path::new(&path)]);
    assert!(!verdict.passed, "{}", verdict.output);
    assert!(
        verdict
            .output
            .contains("'terminationMessagePolicyy' was unexpected"),
        "{}",
        verdict.output
    );
}
