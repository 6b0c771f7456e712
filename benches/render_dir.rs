//! `Render::dir` writing N small files into one directory, N = 1,000, 3,000 and 10,000: the
//! abandoned-temp-file sweep runs once per directory per step run, so the time per file
//! (criterion's throughput, in elements) stays flat as the directory grows.
//!
//! Run: `cargo bench --bench render_dir`. Before the once-per-directory sweep, each file
//! rescanned the directory: 1.1 ms a file at 1,000 files, 1.65 ms at 3,000.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use initkit::Render;
use initkit::prelude::*;

fn render_dir(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("render_dir");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for n in [1_000_u64, 3_000, 10_000] {
        let dir = tempfile::tempdir().expect("temp dir");
        let src = dir.path().join("templates");
        std::fs::create_dir(&src).expect("the template dir");
        for i in 0..n {
            std::fs::write(src.join(format!("f{i}.conf")), "key = {{ env.HOME }}\n")
                .expect("write a template");
        }
        let step = Render::dir(&src, dir.path().join("out"));
        let ctx = Context::with_env([("HOME", "/home/app")]);
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| runtime.block_on(step.run(&ctx)).expect("rendered"));
        });
    }
    group.finish();
}

criterion_group!(benches, render_dir);
criterion_main!(benches);
