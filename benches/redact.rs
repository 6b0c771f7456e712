//! The cost of masking secrets: `Redactor::redact` on one log line, and `StreamMasker` on a
//! program's output read in 4 KiB pieces, with 1 and 50 secrets registered (each in ~11
//! forms), plus a 1.7 KiB PEM key (registered whole and line by line).
//!
//! Run: `cargo bench --bench redact`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use initkit::Redactor;

fn redactor(secrets: usize) -> Redactor {
    let redactor = Redactor::new();
    for i in 0..secrets {
        redactor.register(&format!("s3cr3t-value-{i:04}-\"quoted\"\\"));
    }
    let key: String = (0..26)
        .map(|i| format!("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC{i:012}\n"))
        .collect();
    redactor.register(&format!(
        "-----BEGIN PRIVATE KEY-----\n{key}-----END PRIVATE KEY-----\n"
    ));
    redactor
}

fn bench(c: &mut Criterion) {
    let line = "2026-01-01T00:00:00.000000Z  INFO step{step=\"migrate\"}: applying migration \
                0042_add_orders_index on postgres://orders@db:5432/orders (12 statements)";
    let output: String = (0..512).map(|i| format!("{line} #{i}\n")).collect();
    let mut group = c.benchmark_group("redact");
    for secrets in [1, 50] {
        let r = redactor(secrets);
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_with_input(BenchmarkId::new("line", secrets), &r, |b, r| {
            b.iter(|| black_box(r.redact(black_box(line))))
        });
        group.throughput(Throughput::Bytes(output.len() as u64));
        group.bench_with_input(BenchmarkId::new("stream_4k", secrets), &r, |b, r| {
            b.iter(|| {
                let mut stream = r.stream();
                let mut n = 0;
                for chunk in output.as_bytes().chunks(4096) {
                    n += stream.push_bytes(chunk).len();
                }
                n + stream.finish().len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
