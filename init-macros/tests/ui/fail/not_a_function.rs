use initkit::prelude::*;

#[init_step]
/// The migration.
#[derive(Debug)]
pub struct Migrate;

fn main() {
    let _ = Migrate;
}
