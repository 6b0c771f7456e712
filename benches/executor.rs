//! The executor's own cost per step: a `Plan` of N boxed no-op steps (default policies, no
//! subscriber) against a hand-written loop awaiting the same N boxed steps, for N in 1, 100 and
//! 10 000.
//!
//! Run: `cargo bench --bench executor`. Targets (issue 2): the plan costs less than 1 µs per step
//! more than the hand loop, and its per-step cost at 10 000 steps is within 1.5x of that at 100.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use initkit::prelude::*;

/// A step that does nothing, named so that every name in a plan is unique.
#[derive(Debug)]
struct Noop(String);

#[async_trait]
impl Step for Noop {
    fn name(&self) -> &str {
        &self.0
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        Ok(())
    }
}

fn steps(n: usize) -> Vec<Box<dyn Step>> {
    (0..n).map(|i| Noop(format!("step-{i}")).boxed()).collect()
}

/// The same steps in a plan. (`Plan::step` boxes its argument, so the steps go in unboxed:
/// each is then one box, as in the hand loop.)
fn plan_of(n: usize) -> Plan {
    (0..n).fold(Plan::new("bench"), |plan, i| {
        plan.step(Noop(format!("step-{i}")))
    })
}

fn executor_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ctx = Context::new();
    let mut group = c.benchmark_group("executor_overhead");
    for n in [1usize, 100, 10_000] {
        group.throughput(Throughput::Elements(n as u64));

        let boxed = steps(n);
        group.bench_with_input(BenchmarkId::new("hand_loop", n), &boxed, |b, boxed| {
            b.iter(|| {
                runtime.block_on(async {
                    for step in boxed {
                        black_box(step.run(&ctx).await).expect("no-op succeeds");
                    }
                })
            });
        });

        let plan = plan_of(n);
        group.bench_with_input(BenchmarkId::new("plan", n), &plan, |b, plan| {
            b.iter(|| {
                let report = runtime.block_on(plan.run(&ctx));
                assert!(report.is_success());
                black_box(report)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, executor_overhead);
criterion_main!(benches);
