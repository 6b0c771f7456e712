//! Doc comments and visibility carry over to the generated step, so `missing_docs` is satisfied
//! by the function's own docs; attributes other than docs stay on the function.
#![deny(missing_docs)]

mod steps {
    use initkit::prelude::*;

    /// Creates the schema.
    #[init_step(retries = 2)]
    #[allow(clippy::unused_async)]
    pub async fn migrate(ctx: &Context) -> Result<(), StepError> {
        let _ = ctx;
        Ok(())
    }

    /// Reads the schema version.
    #[init_step]
    pub(crate) async fn schema_version() -> Result<u32, std::io::Error> {
        Ok(3)
    }

    /// Compiled out with its `Step` impl.
    #[cfg(any())]
    #[init_step]
    pub async fn never_built() -> Result<(), StepError> {
        Ok(())
    }
}

pub use steps::migrate;

fn main() {
    use initkit::prelude::*;
    let plan = Plan::new("p").step(migrate).step(steps::schema_version);
    assert_eq!(plan.step_names(), ["migrate", "schema-version"]);
    let copy = migrate;
    assert_eq!(format!("{copy:?}"), "migrate");
}
