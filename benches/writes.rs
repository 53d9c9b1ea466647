//! How fast can writers write? Writes only, at 1, 2 and 4 writer threads;
//! rwlog both through `submit` (acknowledged in bulk) and `append` (each
//! waits for its acknowledgement). Every write counts once it is visible.

#[path = "support/contenders.rs"]
mod contenders;
#[path = "support/parallel.rs"]
mod parallel;

use parallel::Mix;

use std::sync::Arc;

use contenders::{Contender, Kind};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn writes(c: &mut Criterion) {
    let mut g = c.benchmark_group("writes");
    g.throughput(Throughput::Elements(1));
    for threads in [1usize, 2, 4] {
        for kind in Kind::WRITERS {
            if kind == Kind::ArcSwap {
                // Clones 100k entries per write: milliseconds each, see compare.
                continue;
            }
            g.bench_with_input(
                BenchmarkId::new(kind.name(), format!("{threads}w")),
                &threads,
                |b, &t| {
                    b.iter_custom(|iters| {
                        // A fresh contender per sample bounds rwlog's log growth.
                        let contender = Arc::new(Contender::new(kind));
                        parallel::timed(
                            &contender,
                            Mix {
                                readers: 0,
                                writers: t,
                                mixers: 0,
                                read_pct: 0,
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

criterion_group!(benches, writes);
criterion_main!(benches);
