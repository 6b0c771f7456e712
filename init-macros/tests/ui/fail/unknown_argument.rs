use initkit::prelude::*;

#[init_step(retry = 3)]
async fn migrate() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = migrate;
}
