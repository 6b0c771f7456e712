use initkit::prelude::*;

#[init_step(timeout = "30")]
async fn migrate() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = migrate;
}
