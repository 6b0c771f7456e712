use initkit::prelude::*;

struct Migrations;

impl Migrations {
    #[init_step]
    async fn migrate(&self) -> Result<(), StepError> {
        Ok(())
    }
}

fn main() {
    let _ = Migrations::migrate;
}
