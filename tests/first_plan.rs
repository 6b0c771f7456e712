//! The plan a service team writes first (waits, a Vault login, a secret, a rendered config, a
//! migration), written exactly as the team would: it must keep compiling against the facade, and
//! validate everything except the template that only exists in the image.

#![cfg(all(
    feature = "macros",
    feature = "tcp",
    feature = "vault",
    feature = "template"
))]

use initkit::prelude::*;
use initkit::steps::{
    tcp::TcpWait,
    template::Render,
    vault::{KvRead, Vault},
};

#[init_step(timeout = "2m", retries = 3)]
async fn migrate(_ctx: &Context) -> Result<(), StepError> {
    Ok(())
}

fn design_plan() -> Plan {
    Plan::new("orders-init")
        .concurrently([
            TcpWait::new("postgres:5432").boxed(),
            TcpWait::new("redis:6379").boxed(),
        ])
        .step(Vault::from_env().kubernetes_login("orders"))
        .step(KvRead::v2("secret", "orders/db").publish_secret("db"))
        .step(Render::file("/templates/app.toml.j2", "/config/app.toml").mode(0o600))
        .step(migrate)
}

#[test]
fn the_first_plan_builds_the_steps_it_lists() {
    let plan = design_plan();
    let names = plan.step_names();
    assert_eq!(names.len(), 6, "{names:?}");
    assert_eq!(names[..2], ["tcp postgres:5432", "tcp redis:6379"]);
    assert_eq!(names[5], "migrate");
    let outline = plan.outline();
    assert!(outline.contains("migrate attempts=4"), "{outline}");
    assert!(outline.contains("timeout=120s"), "{outline}");
}

#[test]
fn the_first_plan_validates_all_but_the_missing_template() {
    // The environment the pod gives it: the Vault steps check `VAULT_ADDR` at validation.
    let env = Context::with_env([("VAULT_ADDR", "https://vault.vault:8200")]);
    let err = design_plan().validate(&env).unwrap_err();
    assert_eq!(err.problems().len(), 1, "{err}");
    assert!(
        err.problems()[0].contains("/templates/app.toml.j2"),
        "{}",
        err.problems()[0]
    );
}
