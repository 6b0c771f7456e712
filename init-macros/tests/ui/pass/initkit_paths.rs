// A crate that depends on the `initkit` facade: the prelude's macro, and the `initkit` flavour
// named directly, generate code that names `::initkit`; `crate = "..."` points elsewhere.
use initkit::prelude::*;

#[init_step(timeout = "1m")]
async fn from_prelude() -> Result<(), StepError> {
    Ok(())
}

#[init_macros::init_step_initkit(once)]
async fn initkit_flavour() -> Result<(), StepError> {
    Ok(())
}

mod renamed {
    pub use initkit::*;
}

#[init_step(crate = "renamed", optional)]
async fn through_a_reexport() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let plan = Plan::new("p")
        .step(from_prelude)
        .step(initkit_flavour)
        .step(through_a_reexport);
    assert_eq!(
        plan.step_names(),
        ["from-prelude", "initkit-flavour", "through-a-reexport"]
    );
}
