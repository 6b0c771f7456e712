use initkit::prelude::*;

#[init_step(optional = true)]
async fn migrate() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = migrate;
}
