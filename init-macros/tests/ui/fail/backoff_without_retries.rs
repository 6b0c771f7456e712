use initkit::prelude::*;

#[init_step(retries = 0, backoff(initial = "1s", max = "5s"))]
async fn migrate() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = migrate;
}
