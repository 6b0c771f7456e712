use initkit::prelude::*;

#[init_step]
struct Migrate;

fn main() {
    let _ = Migrate;
}
