//! Several writer threads move money between accounts while reader threads
//! check, in every snapshot they load, that the total is conserved.
//!
//! A transfer is one atomic append of two events (a debit and a credit) to a
//! "transfers" stream, so no snapshot can show one without the other.
//!
//! Run: `cargo run --release --example bank [-- SECONDS]`

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rwlog::{Event, Recorded, Runtime, View};

const ACCOUNTS: u64 = 1_000;
const START_BALANCE: i64 = 1_000;
const WRITERS: u64 = 3;
const READERS: u64 = 2;

#[derive(Clone, Debug)]
enum Bank {
    Debited { account: u64, amount: i64 },
    Credited { account: u64, amount: i64 },
}

impl Event for Bank {}

#[derive(Clone, Default)]
struct Ledger(HashMap<u64, i64>);

impl View<Bank> for Ledger {
    fn apply(&mut self, e: &Recorded<Bank>) {
        match *e.payload() {
            Bank::Debited { account, amount } => *self.0.entry(account).or_default() -= amount,
            Bank::Credited { account, amount } => *self.0.entry(account).or_default() += amount,
        }
    }
}

fn main() -> Result<(), rwlog::Error> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let opening: HashMap<u64, i64> = (0..ACCOUNTS).map(|a| (a, START_BALANCE)).collect();
    let expected_total = ACCOUNTS as i64 * START_BALANCE;
    let rt = Runtime::<Bank>::builder()
        .view("ledger", Ledger(opening))
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let w = rt.writer_named(format!("teller-{t}"));
            let stop = Arc::clone(&stop);
            thread::spawn(move || -> Result<u64, rwlog::Error> {
                let mut x = t * 7919 + 1;
                let mut transfers = 0;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (from, to, amount) =
                        (x % ACCOUNTS, (x >> 20) % ACCOUNTS, (x >> 40) as i64 % 50);
                    w.append_batch(
                        "transfers",
                        [
                            Bank::Debited {
                                account: from,
                                amount,
                            },
                            Bank::Credited {
                                account: to,
                                amount,
                            },
                        ],
                    )?;
                    transfers += 1;
                }
                Ok(transfers)
            })
        })
        .collect();

    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let r = rt.reader::<Ledger>("ledger")?;
            let stop = Arc::clone(&stop);
            Ok(thread::spawn(move || {
                let (mut loads, mut bad) = (0u64, 0u64);
                let mut last = rwlog::Position::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    let s = r.latest();
                    assert!(s.position() >= last, "a reader went back in time");
                    last = s.position();
                    if s.0.values().sum::<i64>() != expected_total {
                        bad += 1;
                    }
                    loads += 1;
                }
                (loads, bad)
            }))
        })
        .collect::<Result<_, rwlog::Error>>()?;

    let started = Instant::now();
    thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let transfers: u64 = writers
        .into_iter()
        .map(|h| h.join().expect("writer thread"))
        .sum::<Result<u64, _>>()?;
    let (loads, bad) = readers
        .into_iter()
        .map(|h| h.join().expect("reader thread"))
        .fold((0, 0), |(l, b), (l2, b2)| (l + l2, b + b2));
    let elapsed = started.elapsed().as_secs_f64();

    let final_total: i64 = rt.reader::<Ledger>("ledger")?.strong()?.0.values().sum();
    let stats = rt.stats();
    println!("{WRITERS} writers, {READERS} readers, {ACCOUNTS} accounts, {seconds} s");
    println!(
        "transfers: {transfers} ({:.0}/s), events: {}, batches: {} (mean {:.1} events)",
        transfers as f64 / elapsed,
        stats.appended,
        stats.batches,
        stats.mean_batch
    );
    println!(
        "snapshots checked by readers: {loads} ({:.0}/s), with a wrong total: {bad}",
        loads as f64 / elapsed
    );
    println!("final total: {final_total} (expected {expected_total})");
    if bad > 0 || final_total != expected_total {
        eprintln!("MONEY WAS CREATED OR DESTROYED");
        std::process::exit(1);
    }
    println!("total conserved in every snapshot");
    Ok(())
}
