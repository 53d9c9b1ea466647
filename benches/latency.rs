//! Latency: how long an `append` takes to be acknowledged (idle runtime),
//! and how long one read takes while a writer runs (criterion's
//! distribution; the compare example reports p99 and p99.9).

#[path = "support/contenders.rs"]
mod contenders;

use rwlog::StreamId;

use contenders::{kv_runtime, Set};
use criterion::{criterion_group, criterion_main, Criterion};

fn append_ack(c: &mut Criterion) {
    let rt = kv_runtime(0);
    let w = rt.writer();
    let stream = StreamId::from("bench");
    let mut n = 0;
    c.bench_function("append_ack_idle", |b| {
        b.iter(|| {
            n += 1;
            w.append(
                &stream,
                Set {
                    key: n % contenders::KEYS,
                    value: n,
                },
            )
            .expect("append")
        })
    });
    let mut n = 0;
    c.bench_function("submit_enqueue", |b| {
        b.iter(|| {
            n += 1;
            w.submit(
                &stream,
                Set {
                    key: n % contenders::KEYS,
                    value: n,
                },
            )
            .expect("submit")
        })
    });
}

criterion_group!(benches, append_ack);
criterion_main!(benches);
