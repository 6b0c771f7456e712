use initkit::prelude::*;

#[init_step(backoff(initial = "5s", max = "1s"))]
async fn migrate() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = migrate;
}
