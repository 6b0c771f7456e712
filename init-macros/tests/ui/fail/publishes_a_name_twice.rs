use initkit::prelude::*;

#[init_step(publishes("db": ["user"], "db"))]
async fn read_db() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    let _ = read_db;
}
