//! Backup and restore of a durable log, timed: fills a log directory with
//! `--events` events (default 1,000,000, about 100 bytes each) in batches of
//! 1,000, backs it up while one writer keeps appending, restores the
//! backup (checking every frame), and reopens the restored directory.
//!
//! ```text
//! cargo run --release --example backup -- --events 1000000
//! ```

use std::time::Instant;

use rwlog::{Durability, Event, Runtime, Storage};
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
        note: format!("reading number {i:>12} of the backup run"),
    }
}

fn open(dir: &std::path::Path) -> Runtime<Reading> {
    Runtime::<Reading>::builder()
        .storage(Storage::dir(dir).durability(Durability::Buffered))
        .build()
        .expect("open the log")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut events: u64 = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => events = args.next().ok_or("--events needs a number")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let root = tempfile::tempdir()?;
    let rt = open(&root.path().join("log"));
    let w = rt.writer();
    let started = Instant::now();
    for chunk in 0..events.div_ceil(1000) {
        let from = chunk * 1000;
        let to = (from + 1000).min(events);
        w.append_batch(format!("sensor-{}", chunk % 64), (from..to).map(reading))?;
    }
    let filled = started.elapsed();

    // A writer keeps appending during the backup.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (w, stop) = (rt.writer(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = w.append("live", reading(n));
                n += 1;
            }
            n
        })
    };
    let started = Instant::now();
    let backup = rt.backup(root.path().join("backup"))?;
    let backed_up = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let live = busy.join().map_err(|_| "the writer panicked")?;
    rt.shutdown()?;

    let started = Instant::now();
    Runtime::<Reading>::restore(root.path().join("backup"), root.path().join("copy"))?;
    let restored = started.elapsed();
    let started = Instant::now();
    let copy = open(&root.path().join("copy"));
    let reopened = started.elapsed();
    assert_eq!(copy.log().head(), backup.head);

    let mb = backup.bytes as f64 / (1 << 20) as f64;
    println!(
        "events {events}, backup head {}, {:.1} MiB in {} files",
        backup.head, mb, backup.files
    );
    println!("| step | time | rate |");
    println!("|---|---|---|");
    println!(
        "| fill (batches of 1,000) | {:.2} s | {:.0} events/s |",
        filled.as_secs_f64(),
        events as f64 / filled.as_secs_f64()
    );
    println!(
        "| backup (1 writer appending meanwhile: {live} appends) | {:.2} s | {:.0} MiB/s, {:.0} events/s |",
        backed_up.as_secs_f64(),
        mb / backed_up.as_secs_f64(),
        backup.head.0 as f64 / backed_up.as_secs_f64()
    );
    println!(
        "| restore (every frame checked) | {:.2} s | {:.0} MiB/s |",
        restored.as_secs_f64(),
        mb / restored.as_secs_f64()
    );
    println!(
        "| open the restored log | {:.2} s | {:.0} events/s |",
        reopened.as_secs_f64(),
        backup.head.0 as f64 / reopened.as_secs_f64()
    );
    Ok(())
}
