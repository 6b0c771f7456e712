//! Finds the binaries cargo built for this package's examples, for tests that run them.

use std::path::{Path, PathBuf};

/// `target/<profile>/examples/<name>`, next to the `deps/` directory that holds the running
/// test binary. `cargo test` builds the examples before it runs the tests (`cargo test --test
/// <file>` alone does not: build them with `cargo build --examples` first).
///
/// # Panics
///
/// When the example has not been built, or is older than its source file.
pub(crate) fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let bin = profile_dir.join("examples").join(name);
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.rs"));
    let built = std::fs::metadata(&bin).and_then(|m| m.modified());
    let changed = std::fs::metadata(&source).and_then(|m| m.modified());
    match (built, changed) {
        (Ok(built), Ok(changed)) if built >= changed => bin,
        (Ok(_), _) => panic!(
            "{} is older than {}: run `cargo test` (which builds the examples)",
            bin.display(),
            source.display()
        ),
        (Err(_), _) => panic!(
            "{} is not built: run `cargo test` without `--test`, or `cargo build --examples` with the example's features",
            bin.display()
        ),
    }
}
