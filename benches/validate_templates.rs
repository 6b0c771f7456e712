//! `Plan::validate` of a plan of 1,000 `Render` steps, each with its own template file in a
//! temp dir (ten lines: values with known keys, a guarded value, an `is defined` block, a loop,
//! the environment, filters), after one step that publishes the values they read: every
//! template is read, parsed, its filters and tests checked, and each of its reads checked
//! against the steps before it and the environment.
//!
//! Run: `cargo bench --bench validate_templates`. Target (issue 13): under 50 ms, so validating
//! first never costs start-up time.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use initkit::Publication;
use initkit::Render;
use initkit::prelude::*;

/// Publishes `db` with known keys, like a `KvRead` with `fields`.
#[derive(Debug)]
struct KvDb;

#[async_trait]
impl Step for KvDb {
    fn name(&self) -> &str {
        "kv-db"
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(vec![
            Publication::new("db").with_keys(["username", "password", "hosts"]),
        ])
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        ctx.publish("db", serde_json::json!({}));
        Ok(())
    }
}

const TEMPLATE: &str = "\
# service {{ env.HOSTNAME | default(\"local\") }}
[db]
user = \"{{ values.db.username }}\"
password = {{ values.db.password | tojson }}
pool = {{ values.db.pool | default(10) }}
{% if values.tls is defined %}cert = \"{{ values.tls.cert | b64encode }}\"{% endif %}
{% for host in values.db.hosts %}host = \"{{ host | lower }}\"
{% endfor %}home = \"{{ env.HOME }}\"
checksum = \"{{ values.db.username | sha256 }}\"
";

fn validate_templates(c: &mut Criterion) {
    const N: usize = 1_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = (0..N).fold(Plan::new("bench").step(KvDb), |plan, i| {
        let src = dir.path().join(format!("t{i}.conf.j2"));
        std::fs::write(&src, TEMPLATE).expect("write a template");
        plan.step(Render::file(src, dir.path().join(format!("out/t{i}.conf"))))
    });
    let ctx = Context::with_env([("HOME", "/home/app")]);
    plan.validate(&ctx).expect("the plan is valid");
    c.bench_function("validate_1000_templates", |b| {
        b.iter(|| black_box(plan.validate(&ctx)).expect("the plan is valid"));
    });
}

criterion_group!(benches, validate_templates);
criterion_main!(benches);
