use initkit::prelude::*;

#[init_step(publishes("db": "password"))]
async fn read_db() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = read_db;
}
