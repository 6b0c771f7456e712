use initkit::prelude::*;

#[init_step(timeout = "30s", attempt_timeout = "2m")]
async fn migrate() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = migrate;
}
