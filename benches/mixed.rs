//! Mixed workloads: 90% and 99% reads on 2 threads that each read and write.

#[path = "support/contenders.rs"]
mod contenders;
#[path = "support/parallel.rs"]
mod parallel;

use parallel::Mix;

use std::sync::Arc;

use contenders::{Contender, Kind};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn mixed(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixed");
    g.throughput(Throughput::Elements(1));
    for read_pct in [90u64, 99] {
        for kind in Kind::MAPS {
            if kind == Kind::ArcSwap && read_pct == 90 {
                continue;
            }
            g.bench_with_input(
                BenchmarkId::new(kind.name(), format!("{read_pct}_{}", 100 - read_pct)),
                &read_pct,
                |b, &p| {
                    b.iter_custom(|iters| {
                        let contender = Arc::new(Contender::new(kind));
                        parallel::timed(
                            &contender,
                            Mix {
                                readers: 0,
                                writers: 0,
                                mixers: 2,
                                read_pct: p,
                            },
                            iters,
                        )
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, mixed);
criterion_main!(benches);
