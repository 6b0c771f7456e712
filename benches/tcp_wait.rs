//! How fast a `TcpWait` notices a port that opens: a plan waits on a loopback port that is
//! bound but not listening (connections are refused), the port starts listening at a random
//! moment of the poll cycle, and the time from `listen` to the end of the plan is measured.
//! For scale, the same plan against a port that is already open.
//!
//! Run: `cargo bench --bench tcp_wait`. Target (issue 4): a port that opens is noticed within
//! 30 ms median, 60 ms at most; `scripts/measure-wait-for.sh` measures the release binary of
//! `examples/wait_for` the same way, from outside the process.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use initkit::TcpWait;
use initkit::prelude::*;
use tokio::net::TcpSocket;

/// A loopback port that refuses connections until `listen` is called on the socket.
fn closed_port() -> (TcpSocket, SocketAddr) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let addr = socket.local_addr().expect("local address");
    (socket, addr)
}

/// A small deterministic generator, so that the port opens at a different phase of the
/// 10 ms poll cycle each time without a dependency on `rand`.
struct XorShift(u64);

impl XorShift {
    fn next_delay(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let micros = u64::try_from(max.as_micros()).expect("small");
        Duration::from_micros(self.0 % micros)
    }
}

/// One measurement: the time from `listen` to the plan's end.
async fn notice_once(delay: Duration) -> Duration {
    let (socket, addr) = closed_port();
    let plan = Plan::new("bench").step(TcpWait::new(addr.to_string()));
    let ctx = Context::new();
    let waiting = tokio::spawn(async move { plan.run(&ctx).await });
    tokio::time::sleep(delay).await;
    let opened = Instant::now();
    let _listener = socket.listen(16).expect("listen");
    let report = waiting.await.expect("plan task");
    let noticed = opened.elapsed();
    assert!(report.is_success(), "{report:?}");
    noticed
}

fn tcp_wait(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("tcp_wait");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));

    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    group.bench_function("notice_port_opening", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Let the wait poll a few times first, then open at a random moment.
                    let delay =
                        Duration::from_millis(20) + random.next_delay(Duration::from_millis(20));
                    total += notice_once(delay).await;
                }
                total
            })
        });
    });

    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("listener");
    let open = listener.local_addr().expect("local address").to_string();
    let plan = Plan::new("bench").step(TcpWait::new(open));
    let ctx = Context::new();
    group.bench_function("port_already_open", |b| {
        b.iter(|| {
            let report = runtime.block_on(plan.run(&ctx));
            assert!(report.is_success(), "{report:?}");
            // Drain the accept queue so that it never fills up.
            runtime.block_on(async {
                let _ = listener.accept().await;
            });
        });
    });
    group.finish();
}

criterion_group!(benches, tcp_wait);
criterion_main!(benches);
