use initkit::prelude::*;

#[init_step]
async fn migrate(ctx: &Context, url: String) -> Result<(), StepError> {
    let _ = (ctx, url);
    Ok(())
}

fn main() {
    let _ = migrate;
}
