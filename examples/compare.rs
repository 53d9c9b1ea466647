//! rwlog against the locks a user would otherwise pick, measured side by
//! side in one process.
//!
//! Every contender holds the same `HashMap<u64, u64>` of 100k keys (std's
//! hasher) and does the same work. Each scenario runs every contender in
//! turn (A B C … A B C …) for several rounds, so drift of the machine hits
//! all alike, and reports the median round. Prints a table, then one JSON
//! line per scenario and contender.
//!
//! ```text
//! cargo run --release --example compare              # the full matrix (~4 min on 2 cores)
//! cargo run --release --example compare -- --quick   # shorter windows (~1 min)
//! cargo run --release --example compare -- --svg compare.svg
//! cargo run --release --example compare -- --only reads_2r --only replay
//! cargo run --release --example compare -- --only reads_2r_1w --contender rwlog
//! cargo run --release --example compare -- --replot docs/compare-2026-11-23-final.txt --svg compare.svg
//! ```

#[path = "../benches/support/contenders.rs"]
mod contenders;

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use contenders::{fill, kv_runtime, Contender, Keys, Kind, Kv, Set, KEYS};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rwlog::{Position, StreamId};

struct Options {
    quick: bool,
    svg: Option<PathBuf>,
    only: Vec<String>,
    /// Contender labels to keep (exact match); empty keeps all.
    contenders: Vec<String>,
    /// Draw the chart from a saved run's JSON lines instead of measuring.
    replot: Option<PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        svg: None,
        only: Vec::new(),
        contenders: Vec::new(),
        replot: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--svg" => o.svg = Some(args.next().ok_or("--svg needs a file name")?.into()),
            "--only" => o
                .only
                .push(args.next().ok_or("--only needs a scenario name")?),
            "--replot" => {
                o.replot = Some(args.next().ok_or("--replot needs a file name")?.into())
            }
            "--contender" => o
                .contenders
                .push(args.next().ok_or("--contender needs a contender label")?),
            "-h" | "--help" => return Err(
                "usage: compare [--quick] [--svg FILE] [--only SCENARIO]... [--contender LABEL]... [--replot RUN.txt --svg FILE]"
                    .into(),
            ),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(o)
}

/// How long each measurement runs and how many rounds each scenario gets.
struct Budget {
    window: Duration,
    rounds: usize,
    log_events: u64,
    travel_samples: usize,
}

enum Work {
    /// Threads reading, writing, or (mix) both, as fast as they can.
    Throughput {
        readers: usize,
        writers: usize,
        mix: Option<(usize, u64)>,
    },
    /// One reader timing every read while one writer saturates.
    ReadLatency,
    /// rwlog only: acknowledgement latency of `append`.
    AppendLatency { saturating: bool },
    /// rwlog only: rebuild the view from the whole log.
    Replay,
    /// rwlog only: `view_at` a random position, snapshots every 100k.
    TimeTravel,
    /// rwlog only: appends through `submit` to a log on disk with
    /// `Durability::Fsync`.
    DurableWrites { writers: usize },
    /// rwlog only: reopen a 1M-event log on disk (verify every frame,
    /// decode, rebuild the view).
    Recovery,
    /// rwlog only: commands through writer actors, from 64 concurrent
    /// clients, over this many shards.
    Actors { shards: usize },
}

struct Scenario {
    name: &'static str,
    threads: &'static str,
    work: Work,
    contenders: Vec<(Kind, &'static str)>,
}

/// One measurement; `None` where a field does not apply.
#[derive(Clone, Default)]
struct Sample {
    reads_per_s: Option<f64>,
    writes_per_s: Option<f64>,
    events_per_s: Option<f64>,
    p50_ns: Option<f64>,
    p99_ns: Option<f64>,
    p999_ns: Option<f64>,
    events_per_fsync: Option<f64>,
}

fn scenarios() -> Vec<Scenario> {
    let maps = || {
        Kind::MAPS
            .iter()
            .map(|k| (*k, k.name()))
            .collect::<Vec<_>>()
    };
    // The read scenarios also measure rwlog's hot-loop reader.
    let reads = || {
        let mut v = maps();
        v.insert(1, (Kind::RwlogCached, Kind::RwlogCached.name()));
        v
    };
    let plus = |mut v: Vec<(Kind, &'static str)>, extra: Kind| {
        v.push((extra, extra.name()));
        v
    };
    let writers = || {
        Kind::WRITERS
            .iter()
            .map(|k| (*k, k.name()))
            .collect::<Vec<_>>()
    };
    let rw = |name, threads, readers, writers| Scenario {
        name,
        threads,
        work: Work::Throughput {
            readers,
            writers,
            mix: None,
        },
        contenders: Vec::new(),
    };
    let mut v = vec![
        Scenario {
            contenders: reads(),
            ..rw("reads_1r", "1r", 1, 0)
        },
        Scenario {
            contenders: reads(),
            ..rw("reads_2r", "2r", 2, 0)
        },
        Scenario {
            contenders: reads(),
            ..rw("reads_4r", "4r", 4, 0)
        },
        Scenario {
            contenders: plus(reads(), Kind::RwlogDeepQueue),
            ..rw("reads_2r_1w", "2r+1w", 2, 1)
        },
        Scenario {
            contenders: writers(),
            ..rw("writes_1w", "1w", 0, 1)
        },
        Scenario {
            contenders: writers(),
            ..rw("writes_2w", "2w", 0, 2)
        },
        Scenario {
            contenders: writers(),
            ..rw("writes_4w", "4w", 0, 4)
        },
    ];
    for (name, pct) in [("mix_90_10", 90), ("mix_99_1", 99)] {
        v.push(Scenario {
            name,
            threads: "2rw",
            work: Work::Throughput {
                readers: 0,
                writers: 0,
                mix: Some((2, pct)),
            },
            contenders: maps(),
        });
    }
    v.push(Scenario {
        name: "read_latency_1w",
        threads: "1r+1w",
        work: Work::ReadLatency,
        contenders: plus(reads(), Kind::Unshared),
    });
    v.push(Scenario {
        name: "append_latency",
        threads: "1w",
        work: Work::AppendLatency { saturating: false },
        contenders: vec![(Kind::RwlogAppend, "rwlog append (idle)")],
    });
    v.push(Scenario {
        name: "append_latency",
        threads: "1w+2 submitting",
        work: Work::AppendLatency { saturating: true },
        contenders: vec![(Kind::RwlogAppend, "rwlog append (saturated)")],
    });
    v.push(Scenario {
        name: "replay",
        threads: "1",
        work: Work::Replay,
        contenders: vec![(Kind::Rwlog, "rwlog view_at(head), no snapshots")],
    });
    for (name, shards, label) in [
        ("actors_1s", 1, "rwlog actors, 1 shard"),
        ("actors_2s", 2, "rwlog actors, 2 shards"),
        ("actors_4s", 4, "rwlog actors, 4 shards"),
    ] {
        v.push(Scenario {
            name,
            threads: "64 clients",
            work: Work::Actors { shards },
            contenders: vec![(Kind::Rwlog, label)],
        });
    }
    v.push(Scenario {
        name: "durable_writes_2w",
        threads: "2w",
        work: Work::DurableWrites { writers: 2 },
        contenders: vec![(Kind::Rwlog, "rwlog submit, Fsync")],
    });
    v.push(Scenario {
        name: "recovery",
        threads: "1",
        work: Work::Recovery,
        contenders: vec![(Kind::Rwlog, "rwlog reopen 1M events")],
    });
    v.push(Scenario {
        name: "time_travel",
        threads: "1",
        work: Work::TimeTravel,
        contenders: vec![(Kind::Rwlog, "rwlog view_at(random), snapshots/100k")],
    });
    v
}

fn main() {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Some(run) = &opts.replot {
        let Some(path) = &opts.svg else {
            eprintln!("--replot needs --svg FILE");
            std::process::exit(2);
        };
        match std::fs::read_to_string(run)
            .map_err(|e| e.to_string())
            .and_then(|text| saved_rows(&text))
        {
            Ok(rows) => write_chart(path, &rows),
            Err(e) => {
                eprintln!("could not read a saved run from {}: {e}", run.display());
                std::process::exit(1);
            }
        }
        return;
    }
    let budget = if opts.quick {
        Budget {
            window: Duration::from_millis(250),
            rounds: 3,
            log_events: 1_000_000,
            travel_samples: 15,
        }
    } else {
        Budget {
            window: Duration::from_millis(800),
            rounds: 5,
            log_events: 1_000_000,
            travel_samples: 41,
        }
    };
    let scenarios: Vec<_> = scenarios()
        .into_iter()
        .filter(|s| opts.only.is_empty() || opts.only.iter().any(|o| o == s.name))
        .map(|mut s| {
            if !opts.contenders.is_empty() {
                s.contenders
                    .retain(|(_, label)| opts.contenders.iter().any(|c| c == label));
            }
            s
        })
        .filter(|s| !s.contenders.is_empty())
        .collect();
    if scenarios.is_empty() {
        eprintln!(
            "no scenario matches --only {:?} with --contender {:?}",
            opts.only, opts.contenders
        );
        std::process::exit(2);
    }
    let steps: usize = scenarios
        .iter()
        .map(|s| s.contenders.len() * budget.rounds)
        .sum();
    let progress = ProgressBar::new(steps as u64);
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );

    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    for s in &scenarios {
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); s.contenders.len()];
        let prepared = prepare(s, &budget, &progress);
        for round in 0..budget.rounds {
            for (i, (kind, label)) in s.contenders.iter().enumerate() {
                progress.set_message(format!(
                    "{} · {label} · round {}/{}",
                    s.name,
                    round + 1,
                    budget.rounds
                ));
                samples[i].push(measure(s, *kind, &budget, prepared.as_ref()));
                progress.inc(1);
            }
        }
        for ((kind, label), runs) in s.contenders.iter().zip(samples) {
            rows.push(Row {
                scenario: s.name,
                threads: s.threads,
                contender: label,
                kind: *kind,
                median: median(&runs),
                ratio: None,
            });
        }
    }
    progress.finish_and_clear();
    fill_ratios(&mut rows);
    print_table(&rows, started.elapsed(), opts.quick);
    for r in &rows {
        println!("{}", r.json());
    }
    if let Some(path) = &opts.svg {
        write_chart(path, &rows);
    }
}

/// Draws the chart to `path`, or exits with the error.
fn write_chart(path: &std::path::Path, rows: &[Row]) {
    match svg(path, rows) {
        Ok(()) => eprintln!("chart written to {}", path.display()),
        Err(e) => {
            eprintln!("could not write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

/// What the rwlog-only history scenarios build once, before their rounds:
/// a log of `budget.log_events` events, in memory or on disk.
enum Prepared {
    Memory(rwlog::Runtime<Set>),
    Disk(tempfile::TempDir),
}

fn prepare(s: &Scenario, budget: &Budget, progress: &ProgressBar) -> Option<Prepared> {
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
        let rt = durable_runtime(dir.path());
        fill(&rt, budget.log_events, 11);
        return Some(Prepared::Disk(dir));
    }
    let rt = kv_runtime(every);
    fill(&rt, budget.log_events, 7);
    Some(Prepared::Memory(rt))
}

fn measure(s: &Scenario, kind: Kind, budget: &Budget, prepared: Option<&Prepared>) -> Sample {
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
        (Work::AppendLatency { saturating }, _) => append_latency(*saturating, budget.window),
        (Work::Replay, Some(Prepared::Memory(rt))) => {
            let t = Instant::now();
            let s = rt.view_at::<Kv>("kv", rt.head()).expect("view_at");
            let elapsed = t.elapsed().as_secs_f64();
            assert_eq!(s.position(), rt.head());
            black_box(s.0.len());
            Sample {
                events_per_s: Some(rt.head().0 as f64 / elapsed),
                p50_ns: Some(elapsed * 1e9),
                ..Sample::default()
            }
        }
        (Work::DurableWrites { writers }, _) => durable_writes(*writers, budget.window),
        (Work::Recovery, Some(Prepared::Disk(dir))) => recovery(dir.path(), budget.log_events),
        (Work::Actors { shards }, _) => actors(*shards, budget.window),
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

fn throughput(
    kind: Kind,
    readers: usize,
    writers: usize,
    mix: Option<(usize, u64)>,
    window: Duration,
) -> Sample {
    let c = Arc::new(Contender::new(kind));
    let stop = Arc::new(AtomicBool::new(false));
    let mixers = mix.map_or(0, |(n, _)| n);
    let start = Arc::new(Barrier::new(readers + writers + mixers + 1));
    let mut handles = Vec::new();
    for i in 0..readers {
        let (mut r, stop, start) = (c.reader(), Arc::clone(&stop), Arc::clone(&start));
        handles.push(thread::spawn(move || {
            let mut keys = Keys::new(i as u64 + 1);
            let mut n = 0u64;
            start.wait();
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..256 {
                    black_box(r.get(keys.next()));
                }
                n += 256;
            }
            (n, 0u64)
        }));
    }
    for i in 0..writers {
        let (mut w, stop, start) = (c.writer(i), Arc::clone(&stop), Arc::clone(&start));
        handles.push(thread::spawn(move || {
            let mut keys = Keys::new(100 + i as u64);
            let mut n = 0u64;
            start.wait();
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..16 {
                    w.set(keys.next(), n);
                    n += 1;
                }
            }
            w.flush();
            (0u64, n)
        }));
    }
    if let Some((n, read_pct)) = mix {
        for i in 0..n {
            let (mut r, mut w) = (c.reader(), c.writer(1000 + i));
            let (stop, start) = (Arc::clone(&stop), Arc::clone(&start));
            handles.push(thread::spawn(move || {
                let mut keys = Keys::new(200 + i as u64);
                let (mut reads, mut writes) = (0u64, 0u64);
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        let k = keys.next();
                        if k % 100 < read_pct {
                            black_box(r.get(k));
                            reads += 1;
                        } else {
                            w.set(k, writes);
                            writes += 1;
                        }
                    }
                }
                w.flush();
                (reads, writes)
            }));
        }
    }
    start.wait();
    let t0 = Instant::now();
    thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let read_window = t0.elapsed().as_secs_f64();
    let (mut reads, mut writes) = (0, 0);
    for h in handles {
        let (r, w) = h.join().expect("bench thread");
        reads += r;
        writes += w;
    }
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

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1));
}

fn latency_sample(h: &Histogram<u64>) -> Sample {
    Sample {
        p50_ns: Some(h.value_at_quantile(0.5) as f64),
        p99_ns: Some(h.value_at_quantile(0.99) as f64),
        p999_ns: Some(h.value_at_quantile(0.999) as f64),
        ..Sample::default()
    }
}

fn read_latency(kind: Kind, window: Duration) -> Sample {
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

fn append_latency(saturating: bool, window: Duration) -> Sample {
    let rt = kv_runtime(0);
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
fn durable_runtime(dir: &std::path::Path) -> rwlog::Runtime<Set> {
    rwlog::Runtime::<Set>::builder()
        .storage(rwlog::Storage::dir(dir).durability(rwlog::Durability::Fsync))
        .view("kv", Kv(contenders::prefilled()))
        .build()
        .expect("durable runtime")
}

fn durable_writes(writers: usize, window: Duration) -> Sample {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = durable_runtime(dir.path());
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

fn recovery(dir: &std::path::Path, events: u64) -> Sample {
    let t = Instant::now();
    let rt = durable_runtime(dir);
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

fn actors(shards: usize, window: Duration) -> Sample {
    let rt = kv_runtime(0);
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

fn median(runs: &[Sample]) -> Sample {
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

struct Row {
    scenario: &'static str,
    threads: &'static str,
    contender: &'static str,
    kind: Kind,
    median: Sample,
    ratio: Option<f64>,
}

impl Row {
    /// The scenario's headline number, higher is better: reads/s for reads
    /// and mixes, writes/s for writes, 1/p99.9 for read latency.
    fn headline(&self) -> Option<f64> {
        let m = &self.median;
        if self.scenario == "read_latency_1w" {
            m.p999_ns.map(|p| 1.0 / p)
        } else if self.scenario.starts_with("writes") {
            m.writes_per_s
        } else {
            m.reads_per_s
        }
    }

    fn json(&self) -> String {
        let m = &self.median;
        serde_json::json!({
            "scenario": self.scenario,
            "contender": self.contender,
            "threads": self.threads,
            "reads_per_s": m.reads_per_s.map(f64::round),
            "writes_per_s": m.writes_per_s.map(f64::round),
            "events_per_s": m.events_per_s.map(f64::round),
            "p50_ns": m.p50_ns,
            "p99_ns": m.p99_ns,
            "p999_ns": m.p999_ns,
            "ratio_vs_std_rwlock": self.ratio.map(|r| (r * 1000.0).round() / 1000.0),
            "events_per_fsync": m.events_per_fsync.map(|e| (e * 10.0).round() / 10.0),
        })
        .to_string()
    }
}

/// The rows of a saved run that the chart draws: its JSON lines (other lines
/// are skipped) of named contenders, with the ratios as printed. Only what
/// the chart needs is filled in.
fn saved_rows(text: &str) -> Result<Vec<Row>, String> {
    let field = |v: &serde_json::Value, name: &str| -> Result<&'static str, String> {
        let s = v[name]
            .as_str()
            .ok_or_else(|| format!("a JSON line without {name:?}"))?;
        // A short-lived command: the names live as long as the process.
        Ok(String::leak(s.to_owned()))
    };
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let contender = field(&v, "contender")?;
        // Rows of the rwlog-only scenarios carry their own labels and no
        // ratio: the chart has no bar for them.
        let Some(kind) = Kind::ALL.into_iter().find(|k| k.name() == contender) else {
            continue;
        };
        rows.push(Row {
            scenario: field(&v, "scenario")?,
            threads: field(&v, "threads")?,
            contender,
            kind,
            median: Sample::default(),
            ratio: v["ratio_vs_std_rwlock"].as_f64(),
        });
    }
    if rows.is_empty() {
        return Err("no JSON lines in the file".into());
    }
    Ok(rows)
}

fn fill_ratios(rows: &mut [Row]) {
    let baselines: Vec<(&str, f64)> = rows
        .iter()
        .filter(|r| r.kind == Kind::StdRwLock)
        .filter_map(|r| Some((r.scenario, r.headline()?)))
        .collect();
    for r in rows.iter_mut() {
        let base = baselines
            .iter()
            .find(|(s, _)| *s == r.scenario)
            .map(|(_, b)| *b);
        r.ratio = match (r.headline(), base) {
            (Some(h), Some(b)) if b > 0.0 => Some(h / b),
            _ => None,
        };
    }
}

fn rate(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x >= 1e6 => format!("{:.2}M", x / 1e6),
        Some(x) if x >= 1e3 => format!("{:.1}k", x / 1e3),
        Some(x) => format!("{x:.0}"),
    }
}

fn nanos(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x >= 1e6 => format!("{:.2} ms", x / 1e6),
        Some(x) if x >= 1e3 => format!("{:.1} µs", x / 1e3),
        Some(x) => format!("{x:.0} ns"),
    }
}

fn print_table(rows: &[Row], took: Duration, quick: bool) {
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "rwlog compare: HashMap<u64, u64> of {KEYS} keys, median of {} rounds, {} cores, {:.0} s{}",
        if quick { 3 } else { 5 },
        cores,
        took.as_secs_f64(),
        if quick { " (--quick)" } else { "" }
    );
    println!("×std = the scenario's headline (reads/s; writes/s for writes_*; 1/p99.9 for read_latency_1w) over std RwLock's: higher is better.");
    println!("rwlog write rates count events sequenced, logged and applied to the view.\n");
    let header = format!(
        "{:<18} {:<38} {:>16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "scenario", "contender", "threads", "reads/s", "writes/s", "p50", "p99", "p99.9", "×std"
    );
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count()));
    let mut last = "";
    for r in rows {
        if !last.is_empty() && last != r.scenario {
            println!();
        }
        last = r.scenario;
        let m = &r.median;
        let writes = m.writes_per_s.or(m.events_per_s);
        println!(
            "{:<18} {:<38} {:>16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            r.scenario,
            r.contender,
            r.threads,
            rate(m.reads_per_s),
            rate(writes),
            nanos(m.p50_ns),
            nanos(m.p99_ns),
            nanos(m.p999_ns),
            r.ratio.map_or("-".into(), |x| format!("{x:.2}")),
        );
    }
    println!("\nreplay and recovery report events/s in the writes/s column and their one-shot time as p50.");
    for r in rows.iter().filter(|r| r.median.events_per_fsync.is_some()) {
        println!(
            "{}: {:.1} events per fsync (one write + one fdatasync per batch).",
            r.scenario,
            r.median.events_per_fsync.unwrap_or_default()
        );
    }
    println!();
}

fn svg(path: &std::path::Path, rows: &[Row]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let scenarios: Vec<&str> = {
        let mut v: Vec<&str> = rows
            .iter()
            .filter(|r| r.ratio.is_some())
            .map(|r| r.scenario)
            .collect();
        v.dedup();
        v
    };
    // Every contender that has a ratio somewhere, in table order.
    let kinds: Vec<Kind> =
        rows.iter()
            .filter(|r| r.ratio.is_some())
            .fold(Vec::new(), |mut v, r| {
                if !v.contains(&r.kind) {
                    v.push(r.kind);
                }
                v
            });
    // Headroom above the tallest bar keeps the legend clear of the bars.
    let max = rows.iter().filter_map(|r| r.ratio).fold(1.0f64, f64::max) * 1000.0;
    let min = rows.iter().filter_map(|r| r.ratio).fold(1.0f64, f64::min) / 2.0;
    let root = SVGBackend::new(path, (1200, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "rwlog vs std RwLock (×, log scale; higher is better)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..scenarios.len() as f64, (min..max).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(scenarios.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 {
                scenarios.get(i).map_or(String::new(), |s| s.to_string())
            } else {
                String::new()
            }
        })
        .y_desc("× std RwLock")
        .draw()?;
    let width = 0.8 / kinds.len() as f64;
    for (k, kind) in kinds.iter().enumerate() {
        let color = Palette99::pick(k).mix(0.9);
        let bars: Vec<_> = rows
            .iter()
            .filter(|r| r.kind == *kind)
            .filter_map(|r| {
                let i = scenarios.iter().position(|s| *s == r.scenario)? as f64;
                let x0 = i + 0.1 + width * k as f64;
                Some(Rectangle::new(
                    [(x0, min), (x0 + width * 0.9, r.ratio?)],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(kind.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()?;
    root.present()?;
    Ok(())
}
