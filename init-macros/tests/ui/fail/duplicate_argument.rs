use initkit::prelude::*;

#[init_step(timeout = "30s", retries = 3, timeout = "1m")]
async fn migrate() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = migrate;
}
