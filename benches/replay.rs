//! History: rebuilding a view from the log (replay) and time travel to a
//! random position with snapshots every 100k events.

#[path = "support/contenders.rs"]
mod contenders;

use std::hint::black_box;

use contenders::{fill, kv_runtime, Keys, Kv, Set};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rwlog::{Position, Runtime};

const EVENTS: u64 = 1_000_000;

fn filled(snapshot_every: u64) -> Runtime<Set> {
    let rt = kv_runtime(snapshot_every);
    fill(&rt, EVENTS, 7);
    rt
}

fn replay(c: &mut Criterion) {
    let rt = filled(0);
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(EVENTS));
    g.bench_function("view_at_head_1M", |b| {
        b.iter(|| {
            black_box(
                rt.view_at::<Kv>("kv", rt.head())
                    .expect("view_at")
                    .position(),
            )
        })
    });
    g.finish();
}

fn time_travel(c: &mut Criterion) {
    let rt = filled(100_000);
    let mut keys = Keys::new(3);
    let mut g = c.benchmark_group("time_travel");
    g.sample_size(20);
    g.bench_function("view_at_random_1M_snapshots_100k", |b| {
        b.iter(|| {
            let p = Position(1 + (keys.next() * 7919 + keys.next()) % EVENTS);
            black_box(rt.view_at::<Kv>("kv", p).expect("view_at").position())
        })
    });
    g.finish();
}

criterion_group!(benches, replay, time_travel);
criterion_main!(benches);
