use initkit::prelude::*;

#[derive(Debug)]
struct MigrationFailed;

#[init_step]
async fn migrate() -> Result<(), MigrationFailed> {
    Err(MigrationFailed)
}

fn main() {
    let _ = migrate;
}
