use initkit::prelude::*;

#[init_step]
async fn migrate(ctx: &Context) -> Option<u32> {
    let _ = ctx;
    Some(1)
}

fn main() {
    let _ = migrate;
}
