//! The scenarios only rwlog runs: acknowledgement latency, durable writes,
//! recovery, writer actors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rwlog::StreamId;

use crate::contenders::{self, kv_runtime_for, Keys, Kind, Kv, Set};
use crate::measure::{histogram, latency_sample, record, Sample};

pub(crate) fn append_latency(kind: Kind, saturating: bool, window: Duration) -> Sample {
    let rt = kv_runtime_for(kind);
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..if saturating { 2 } else { 0 })
        .map(|i| {
            let (w, stop) = (rt.writer(), Arc::clone(&stop));
            thread::spawn(move || {
                let stream = StreamId::from(format!("load-{i}"));
                let mut keys = Keys::new(50 + i);
                let mut last = None;
                while !stop.load(Ordering::Relaxed) {
                    last = Some(
                        w.submit(
                            &stream,
                            Set {
                                key: keys.next(),
                                value: 0,
                            },
                        )
                        .expect("submit"),
                    );
                }
                if let Some(t) = last {
                    t.wait().expect("ack");
                }
            })
        })
        .collect();
    let w = rt.writer();
    let stream = StreamId::from("measured");
    let mut keys = Keys::new(77);
    let mut h = histogram();
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < window {
        let t = Instant::now();
        w.append(
            &stream,
            Set {
                key: keys.next(),
                value: n,
            },
        )
        .expect("append");
        record(&mut h, t.elapsed());
        n += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.join().expect("load thread");
    }
    let mut s = latency_sample(&h);
    s.writes_per_s = Some(n as f64 / secs);
    s
}

/// A log on disk under a temporary directory, removed afterwards.
pub(crate) fn durable_runtime(dir: &std::path::Path, kind: Kind) -> rwlog::Runtime<Set> {
    rwlog::Runtime::<Set>::builder()
        .sequencing(kind.sequencing())
        .storage(rwlog::Storage::dir(dir).durability(rwlog::Durability::Fsync))
        .view("kv", Kv(contenders::prefilled()))
        .build()
        .expect("durable runtime")
}

pub(crate) fn durable_writes(kind: Kind, writers: usize, window: Duration) -> Sample {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = durable_runtime(dir.path(), kind);
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|i| {
            let (w, stop) = (rt.writer(), Arc::clone(&stop));
            thread::spawn(move || {
                let stream = StreamId::from(format!("w{i}"));
                let mut keys = Keys::new(i as u64 + 1);
                let (mut n, mut last) = (0u64, None);
                while !stop.load(Ordering::Relaxed) {
                    last = Some(
                        w.submit(
                            &stream,
                            Set {
                                key: keys.next(),
                                value: n,
                            },
                        )
                        .expect("submit"),
                    );
                    n += 1;
                }
                if let Some(t) = last {
                    t.wait().expect("ack");
                }
                n
            })
        })
        .collect();
    thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let n: u64 = handles.into_iter().map(|h| h.join().expect("writer")).sum();
    let secs = t0.elapsed().as_secs_f64();
    let stats = rt.stats();
    Sample {
        writes_per_s: Some(n as f64 / secs),
        events_per_fsync: Some(stats.mean_batch),
        ..Sample::default()
    }
}

pub(crate) fn recovery(dir: &std::path::Path, events: u64) -> Sample {
    let t = Instant::now();
    let rt = durable_runtime(dir, Kind::Rwlog);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(rt.head().0, events);
    Sample {
        events_per_s: Some(events as f64 / secs),
        p50_ns: Some(secs * 1e9),
        ..Sample::default()
    }
}

/// An aggregate per key stream: every command sets the key.
#[derive(Default)]
struct Slot;

impl rwlog::Aggregate for Slot {
    type Command = Set;
    type Event = Set;
    type Error = std::convert::Infallible;

    fn handle(&self, command: &Set) -> Result<Vec<Set>, Self::Error> {
        Ok(vec![command.clone()])
    }

    fn apply(&mut self, _: &Set) {}
}

pub(crate) fn actors(kind: Kind, shards: usize, window: Duration) -> Sample {
    let rt = kv_runtime_for(kind);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("tokio");
    let actors = {
        let _guard = tokio.enter();
        rt.actors::<Slot>(shards).expect("actors")
    };
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let done = tokio.block_on(async {
        let clients: Vec<_> = (0..64u64)
            .map(|c| {
                let (actors, stop) = (actors.clone(), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut keys = Keys::new(c + 1);
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = keys.next();
                        let stream = format!("k{}", key % 1000);
                        actors
                            .send(stream, Set { key, value: n })
                            .await
                            .expect("command");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        tokio::time::sleep(window).await;
        stop.store(true, Ordering::Relaxed);
        let mut total = 0;
        for c in clients {
            total += c.await.expect("client");
        }
        total
    });
    let secs = t0.elapsed().as_secs_f64();
    Sample {
        writes_per_s: Some(done as f64 / secs),
        ..Sample::default()
    }
}
