use initkit::prelude::*;

#[init_step]
fn migrate(ctx: &Context) -> Result<(), StepError> {
    let _ = ctx;
    Ok(())
}

fn main() {
    let _ = migrate;
}
