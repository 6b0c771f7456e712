use initkit::prelude::*;

fn check_config(cx: &ValidateContext<'_>) -> Result<(), StepError> {
    match cx.env("CACHE_URL") {
        Some(_) => Ok(()),
        None => Err(StepError::invalid("CACHE_URL is not set")),
    }
}

#[init_step(wait, timeout = "1m", validate = check_config, publishes("cache": ["url"], "flags"))]
async fn cache_ready(ctx: &Context) -> Result<(), StepError> {
    ctx.publish("flags", true);
    Ok(())
}

#[init_step(publishes())]
async fn nothing_published() -> Result<(), StepError> {
    Ok(())
}

mod checks {
    use initkit::prelude::{StepError, ValidateContext};

    pub(crate) fn always(_: &ValidateContext<'_>) -> Result<(), StepError> {
        Ok(())
    }
}

#[init_step(validate = checks::always)]
async fn with_a_path() -> Result<(), StepError> {
    Ok(())
}

fn main() {
    assert_eq!(cache_ready.publishes().unwrap().len(), 2);
    assert_eq!(nothing_published.publishes(), Some(Vec::new()));
    assert_eq!(with_a_path.publishes(), None);
}
