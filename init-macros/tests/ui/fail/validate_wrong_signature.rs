use initkit::prelude::*;

fn check_config() -> bool {
    true
}

#[init_step(validate = check_config)]
async fn migrate() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = migrate;
}
