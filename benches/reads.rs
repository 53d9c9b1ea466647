//! How fast can readers read? Reads only, at 1, 2 and 4 reader threads, and
//! reads while one writer writes as fast as it can.

#[path = "support/contenders.rs"]
mod contenders;
#[path = "support/parallel.rs"]
mod parallel;

use parallel::Mix;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use contenders::{Contender, Keys, Kind};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn reads(c: &mut Criterion) {
    let mut g = c.benchmark_group("reads");
    g.throughput(Throughput::Elements(1));
    for threads in [1usize, 2, 4] {
        for kind in Kind::MAPS {
            let contender = Arc::new(Contender::new(kind));
            g.bench_with_input(
                BenchmarkId::new(kind.name(), format!("{threads}r")),
                &threads,
                |b, &t| {
                    b.iter_custom(|iters| {
                        parallel::timed(
                            &contender,
                            Mix {
                                readers: t,
                                writers: 0,
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

fn reads_with_writer(c: &mut Criterion) {
    let mut g = c.benchmark_group("reads_1w");
    g.throughput(Throughput::Elements(1));
    for kind in Kind::MAPS {
        let contender = Arc::new(Contender::new(kind));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (mut w, stop) = (contender.writer(0), Arc::clone(&stop));
            thread::spawn(move || {
                let mut keys = Keys::new(5);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    w.set(keys.next(), n);
                    n += 1;
                }
                w.flush();
            })
        };
        let mut r = contender.reader();
        let mut keys = Keys::new(9);
        g.bench_function(kind.name(), |b| b.iter(|| black_box(r.get(keys.next()))));
        stop.store(true, Ordering::Relaxed);
        writer.join().expect("writer");
    }
    g.finish();
}

criterion_group!(benches, reads, reads_with_writer);
criterion_main!(benches);
