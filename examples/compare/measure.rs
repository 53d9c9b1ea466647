//! Measuring one contender on one scenario: a timed window of threads, or
//! a latency histogram.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use rwlog::Position;

use crate::contenders::{fill, kv_runtime, Contender, Keys, Kind, Kv, Set};
use crate::parallel::{Mix, Run, Workers};
use crate::rwlog_only;
use crate::scenarios::{Budget, Scenario, Work};

/// One measurement; `None` where a field does not apply.
#[derive(Clone, Default)]
pub(crate) struct Sample {
    pub(crate) reads_per_s: Option<f64>,
    pub(crate) writes_per_s: Option<f64>,
    pub(crate) events_per_s: Option<f64>,
    pub(crate) p50_ns: Option<f64>,
    pub(crate) p99_ns: Option<f64>,
    pub(crate) p999_ns: Option<f64>,
    pub(crate) events_per_fsync: Option<f64>,
}

pub(crate) fn median(runs: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> Option<f64>| {
        let mut v: Vec<f64> = runs.iter().filter_map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        (!v.is_empty()).then(|| v[v.len() / 2])
    };
    Sample {
        reads_per_s: pick(|s| s.reads_per_s),
        writes_per_s: pick(|s| s.writes_per_s),
        events_per_s: pick(|s| s.events_per_s),
        p50_ns: pick(|s| s.p50_ns),
        p99_ns: pick(|s| s.p99_ns),
        p999_ns: pick(|s| s.p999_ns),
        events_per_fsync: pick(|s| s.events_per_fsync),
    }
}

/// What the rwlog-only history scenarios build once, before their rounds:
/// a log of `budget.log_events` events, in memory or on disk.
pub(crate) enum Prepared {
    Memory(rwlog::Runtime<Set>),
    Disk(tempfile::TempDir),
}

pub(crate) fn prepare(s: &Scenario, budget: &Budget, progress: &ProgressBar) -> Option<Prepared> {
    let every = match s.work {
        Work::Replay => 0,
        Work::TimeTravel => 100_000,
        Work::Recovery => u64::MAX,
        _ => return None,
    };
    progress.set_message(format!(
        "{} · building a {}-event log",
        s.name, budget.log_events
    ));
    if every == u64::MAX {
        let dir = tempfile::tempdir().expect("temp dir");
        let rt = rwlog_only::durable_runtime(dir.path(), Kind::Rwlog);
        fill(&rt, budget.log_events, 11);
        return Some(Prepared::Disk(dir));
    }
    let rt = kv_runtime(every);
    fill(&rt, budget.log_events, 7);
    Some(Prepared::Memory(rt))
}

pub(crate) fn measure(
    s: &Scenario,
    kind: Kind,
    budget: &Budget,
    prepared: Option<&Prepared>,
) -> Sample {
    match (&s.work, prepared) {
        (
            Work::Throughput {
                readers,
                writers,
                mix,
            },
            _,
        ) => throughput(kind, *readers, *writers, *mix, budget.window),
        (Work::ReadLatency, _) => read_latency(kind, budget.window),
        (Work::AppendLatency { saturating }, _) => {
            rwlog_only::append_latency(kind, *saturating, budget.window)
        }
        (Work::Replay, Some(Prepared::Memory(rt))) => {
            // One below the head: the view's own state answers for the
            // head itself, and this measures the replay.
            let at = rwlog::Position(rt.head().0 - 1);
            let t = Instant::now();
            let s = rt.view_at::<Kv>("kv", at).expect("view_at");
            let elapsed = t.elapsed().as_secs_f64();
            assert_eq!(s.position(), at);
            black_box(s.0.len());
            Sample {
                events_per_s: Some(at.0 as f64 / elapsed),
                p50_ns: Some(elapsed * 1e9),
                ..Sample::default()
            }
        }
        (Work::DurableWrites { writers }, _) => {
            rwlog_only::durable_writes(kind, *writers, budget.window)
        }
        (Work::Recovery, Some(Prepared::Disk(dir))) => {
            rwlog_only::recovery(dir.path(), budget.log_events)
        }
        (Work::Actors { shards }, _) => rwlog_only::actors(kind, *shards, budget.window),
        #[cfg(feature = "postgres")]
        (Work::Pg(work), _) => crate::postgres::measure(work, kind, budget.window),
        (Work::TimeTravel, Some(Prepared::Memory(rt))) => {
            let mut keys = Keys::new(3);
            let mut h = histogram();
            for _ in 0..budget.travel_samples {
                let p = Position(1 + (keys.next() * 7919 + keys.next()) % rt.head().0);
                let t = Instant::now();
                let s = rt.view_at::<Kv>("kv", p).expect("view_at");
                record(&mut h, t.elapsed());
                assert_eq!(s.position(), p);
            }
            latency_sample(&h)
        }
        _ => Sample::default(),
    }
}

/// Threads reading, writing or both for `window`; their rates.
pub(crate) fn throughput(
    kind: Kind,
    readers: usize,
    writers: usize,
    mix: Option<(usize, u64)>,
    window: Duration,
) -> Sample {
    let c = Arc::new(Contender::new(kind));
    let stop = Arc::new(AtomicBool::new(false));
    let (mixers, read_pct) = mix.unwrap_or((0, 0));
    let mix = Mix {
        readers,
        writers,
        mixers,
        read_pct,
    };
    let workers = Workers::spawn(&c, mix, Run::Until(Arc::clone(&stop)));
    workers.go();
    let t0 = Instant::now();
    thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let read_window = t0.elapsed().as_secs_f64();
    let (reads, writes) = workers.join();
    // Writes count until every one is visible to readers (rwlog's submit
    // backlog is drained and published inside this window).
    let write_window = t0.elapsed().as_secs_f64();
    drop(c);
    Sample {
        reads_per_s: (readers + mixers > 0).then(|| reads as f64 / read_window),
        writes_per_s: (writers + mixers > 0).then(|| writes as f64 / write_window),
        ..Sample::default()
    }
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

pub(crate) fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1));
}

pub(crate) fn latency_sample(h: &Histogram<u64>) -> Sample {
    Sample {
        p50_ns: Some(h.value_at_quantile(0.5) as f64),
        p99_ns: Some(h.value_at_quantile(0.99) as f64),
        p999_ns: Some(h.value_at_quantile(0.999) as f64),
        ..Sample::default()
    }
}

pub(crate) fn read_latency(kind: Kind, window: Duration) -> Sample {
    let c = Arc::new(Contender::new(kind));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(3));
    let writer = {
        let (mut w, stop, start) = (c.writer(0), Arc::clone(&stop), Arc::clone(&start));
        thread::spawn(move || {
            let mut keys = Keys::new(5);
            let mut n = 0u64;
            start.wait();
            while !stop.load(Ordering::Relaxed) {
                w.set(keys.next(), n);
                n += 1;
            }
            w.flush();
            n
        })
    };
    let reader = {
        let (mut r, stop, start) = (c.reader(), Arc::clone(&stop), Arc::clone(&start));
        thread::spawn(move || {
            let mut keys = Keys::new(9);
            let mut h = histogram();
            start.wait();
            while !stop.load(Ordering::Relaxed) {
                let k = keys.next();
                let t = Instant::now();
                black_box(r.get(k));
                record(&mut h, t.elapsed());
            }
            h
        })
    };
    start.wait();
    let t0 = Instant::now();
    thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let h = reader.join().expect("reader");
    let secs = t0.elapsed().as_secs_f64();
    let writes = writer.join().expect("writer");
    let mut s = latency_sample(&h);
    s.reads_per_s = Some(h.len() as f64 / secs);
    s.writes_per_s = Some(writes as f64 / t0.elapsed().as_secs_f64());
    s
}
