use initkit::prelude::*;

#[init_step]
async fn migrate<T: Default>(ctx: &Context) -> Result<T, StepError> {
    let _ = ctx;
    Ok(T::default())
}

fn main() {
    let _ = migrate::<u8>;
}
