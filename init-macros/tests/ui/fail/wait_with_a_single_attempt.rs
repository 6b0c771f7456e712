use initkit::prelude::*;

#[init_step(wait, retries = 0)]
async fn postgres_ready() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = postgres_ready;
}
