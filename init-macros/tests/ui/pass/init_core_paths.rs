// A crate that depends on `init-core` (feature `macros`) and `init-macros` directly: every way
// to name the macro generates code that names `::init_core`.
use init_core::prelude::*;

#[init_step(timeout = "1m")]
async fn from_prelude() -> Result<(), StepError> {
    Ok(())
}

#[init_core::init_step]
async fn from_core_root() -> Result<(), StepError> {
    Ok(())
}

#[init_macros::init_step(retries = 1)]
async fn from_macros_crate() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let plan = Plan::new("p")
        .step(from_prelude)
        .step(from_core_root)
        .step(from_macros_crate);
    assert_eq!(
        plan.step_names(),
        ["from-prelude", "from-core-root", "from-macros-crate"]
    );
}
