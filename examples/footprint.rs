//! The memory a durable log costs, and how fast it reads back: fills a log
//! directory with `--events` events (default 10,000,000, about 100 bytes
//! each) in batches of 1,000, shuts down, and reopens it in a child process
//! of its own (so nothing of the filling is resident), which reports the
//! resident memory of the open runtime (VmRSS from /proc/self/status), the
//! time to reopen, and the rate of reading the whole log forward from
//! position 1 and of a subscription catching up from position 1. With
//! `--window N` it reopens it a second time with a memory window of N
//! events (`Storage::memory_window`) and checks that both reads gave the
//! same events (a digest of every position, stream, version, id and
//! payload).
//!
//! ```text
//! cargo run --release --example footprint -- --events 10000000 --window 1000000
//! cargo run --release --example footprint -- --events 1000000 --streams 1000000
//! ```

use std::time::Instant;

use rwlog::{Durability, Event, Position, Runtime, Storage};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Reading {
    sensor: u32,
    value: f64,
    note: String,
}

impl Event for Reading {}

fn reading(i: u64) -> Reading {
    Reading {
        sensor: (i % 1000) as u32,
        value: i as f64 * 0.5,
        note: format!("reading number {i:>12} of the run"),
    }
}

/// A field of /proc/self/status in KiB (Linux), 0 elsewhere.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn open(dir: &std::path::Path, window: Option<u64>) -> Runtime<Reading> {
    let storage = Storage::dir(dir).durability(Durability::Buffered);
    let storage = match window {
        Some(n) => storage.memory_window(n),
        None => storage,
    };
    Runtime::<Reading>::builder()
        .storage(storage)
        .build()
        .expect("open the log")
}

/// Runs the reopening child; returns the digest it printed.
fn reopen(
    dir: &std::path::Path,
    events: u64,
    window: Option<u64>,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["--events", &events.to_string(), "--reopen"])
        .arg(dir);
    if let Some(n) = window {
        cmd.args(["--window", &n.to_string()]);
    }
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    if !out.status.success() {
        return Err(format!("the reopening process failed: {}", out.status).into());
    }
    let digest = text.lines().find_map(|l| l.strip_prefix("digest "));
    Ok(digest.ok_or("no digest printed")?.to_owned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut events: u64 = 10_000_000;
    let mut streams: u64 = 1024;
    let mut reopen_dir = None;
    let mut window = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => events = args.next().ok_or("--events needs a number")?.parse()?,
            "--streams" => streams = args.next().ok_or("--streams needs a number")?.parse()?,
            "--reopen" => {
                reopen_dir = Some(std::path::PathBuf::from(
                    args.next().ok_or("--reopen needs a directory")?,
                ))
            }
            "--window" => window = Some(args.next().ok_or("--window needs a number")?.parse()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if let Some(dir) = reopen_dir {
        return measure(&dir, events, window);
    }
    let root = tempfile::tempdir()?;
    let dir = root.path().join("log");
    {
        let rt = open(&dir, None);
        let w = rt.writer();
        // Batches of 1,000 events, or smaller so that every stream gets one.
        let per = (events / streams.max(1)).clamp(1, 1000);
        for chunk in 0..events.div_ceil(per) {
            let from = chunk * per;
            let to = (from + per).min(events);
            w.append_batch(
                format!("sensor-{}", chunk % streams.max(1)),
                (from..to).map(reading),
            )?;
        }
        rt.shutdown()?;
    }
    let bytes: u64 = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "events {events}, on disk {:.2} GiB",
        bytes as f64 / (1u64 << 30) as f64
    );
    println!("\neverything in memory:\n");
    let whole = reopen(&dir, events, None)?;
    if let Some(n) = window {
        println!("\na memory window of {n} events:\n");
        let windowed = reopen(&dir, events, Some(n))?;
        if windowed != whole {
            return Err(format!("the windowed reads differ: {windowed} against {whole}").into());
        }
        println!("\nboth reads gave the same events (digest {whole})");
    }
    Ok(())
}

/// Folds an event into a digest (FNV-1a over its position, version,
/// stream, id and payload).
fn digest(h: u64, e: &rwlog::Recorded<Reading>) -> u64 {
    let p = e.payload();
    let text = format!(
        "{}{}{}{}{}{}{}",
        e.position(),
        e.version(),
        e.stream(),
        e.id(),
        p.sensor,
        p.value,
        p.note
    );
    text.bytes()
        .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// In a process of its own: reopen, measure, read.
fn measure(
    dir: &std::path::Path,
    events: u64,
    window: Option<u64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let rt = open(dir, window);
    let reopened = started.elapsed();
    let rss = status_kib("VmRSS:");

    let started = Instant::now();
    let mut n = 0u64;
    let mut sum = 0u64;
    for e in rt.log().read_all(Position(1)..) {
        n += 1;
        sum = sum.wrapping_add(u64::from(e.payload().sensor));
    }
    let read = started.elapsed();
    assert_eq!(n, events);

    let started = Instant::now();
    let mut sub = rt.subscribe(Position(1));
    let mut seen = 0u64;
    while seen < events {
        match sub.try_next() {
            Some(e) => {
                seen += 1;
                sum = sum.wrapping_add(e.position().0);
            }
            None => break,
        }
    }
    let caught_up = started.elapsed();
    assert_eq!(seen, events);
    std::hint::black_box(sum);
    // The digests, untimed: of the read and of a subscription.
    let fnv = 0xcbf2_9ce4_8422_2325u64;
    let read_digest = rt.log().read_all(..).fold(fnv, |h, e| digest(h, &e));
    let sub_digest = rt
        .subscribe(Position(1))
        .take(events as usize)
        .fold(fnv, |h, e| digest(h, &e));

    let gib = |kib: u64| kib as f64 / (1 << 20) as f64;
    assert_eq!(
        read_digest, sub_digest,
        "the subscription gave other events than the read"
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!("| resident memory of the reopened runtime (VmRSS) | {:.2} GiB ({:.0} bytes per event; {:.2} GiB before opening) |", gib(rss), (rss.saturating_sub(before)) as f64 * 1024.0 / events as f64, gib(before));
    println!(
        "| reopen (recovery: every frame read and checked) | {:.2} s, {:.2}M events/s |",
        reopened.as_secs_f64(),
        events as f64 / reopened.as_secs_f64() / 1e6
    );
    println!(
        "| read the whole log forward from position 1 | {:.2} s, {:.1}M events/s |",
        read.as_secs_f64(),
        events as f64 / read.as_secs_f64() / 1e6
    );
    println!(
        "| a subscription catching up from position 1 | {:.2} s, {:.1}M events/s |",
        caught_up.as_secs_f64(),
        events as f64 / caught_up.as_secs_f64() / 1e6
    );
    println!("digest {read_digest:016x}");
    Ok(())
}
