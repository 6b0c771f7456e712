use initkit::prelude::*;

fn check_config(_: &ValidateContext<'_>) -> Result<(), StepError> {
    Ok(())
}

#[init_step(validate = "check_config")]
async fn migrate() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = migrate;
    let _ = check_config;
}
