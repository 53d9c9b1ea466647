//! A bank whose balances live in a `RwLock<HashMap<u64, i64>>`, moved to
//! rwlog while it runs: writer and reader threads keep going through every
//! phase (shadow writes; 10 %, 50 %, 100 % of reads from rwlog, 10 % of
//! those verified; cut-over; a rollback; cut-over again), and the stats of
//! each phase are printed. README's "Migrating a running program" quotes
//! the three phases.
//!
//! Before the migration, a transfer was:
//!
//! ```text
//! let mut m = balances.write().unwrap();
//! *m.entry(from).or_default() -= amount;
//! *m.entry(to).or_default() += amount;
//! ```
//!
//! With `RWLOG_BREAK_FOLD=1` the new view folds one event wrongly (a
//! transfer to an account divisible by 250 credits one too many), and
//! verification names the accounts that diverged.
//!
//! ```text
//! cargo run --release --example migrate [-- MILLISECONDS_PER_PHASE]
//! RWLOG_BREAK_FOLD=1 cargo run --release --example migrate
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::Duration;

use rwlog::migrate::{DualWriter, LegacyLock, Migration, MigrationReader, MigrationStats};
use rwlog::{Event, Recorded, Runtime, View};

const ACCOUNTS: u64 = 1_000;
const START_BALANCE: i64 = 1_000;
const WRITERS: u64 = 2;
const READERS: u64 = 2;

#[derive(Clone, Debug)]
struct Transferred {
    from: u64,
    to: u64,
    amount: i64,
}

impl Event for Transferred {}

/// The new side: a view folded from the events.
#[derive(Clone, Default)]
struct Ledger {
    balances: HashMap<u64, i64>,
    broken: bool,
}

impl Ledger {
    fn new(balances: HashMap<u64, i64>, broken: bool) -> Ledger {
        Ledger { balances, broken }
    }
}

impl View<Transferred> for Ledger {
    fn apply(&mut self, e: &Recorded<Transferred>) {
        let t = e.payload();
        *self.balances.entry(t.from).or_default() -= t.amount;
        let wrong = i64::from(self.broken && t.to.is_multiple_of(250));
        *self.balances.entry(t.to).or_default() += t.amount + wrong;
    }
}

// types: begin
/// The old write path, as a function of the event.
fn old_transfer(m: &mut HashMap<u64, i64>, e: &Recorded<Transferred>) {
    let t = e.payload();
    *m.entry(t.from).or_default() -= t.amount;
    *m.entry(t.to).or_default() += t.amount;
}

/// Names for the handles' types, to keep them in fields or pass them on.
type OldStore = LegacyLock<HashMap<u64, i64>, fn(&mut HashMap<u64, i64>, &Recorded<Transferred>)>;
type Reads = MigrationReader<Transferred, OldStore, Ledger, u64, Option<i64>>;
// types: end

fn main() -> rwlog::Result<()> {
    let phase_ms = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let broken = std::env::var_os("RWLOG_BREAK_FOLD").is_some_and(|v| v != "0");
    let named = warnings_to_stderr();
    let opening: HashMap<u64, i64> = (0..ACCOUNTS).map(|a| (a, START_BALANCE)).collect();

    // shadow: begin
    let balances = Arc::new(RwLock::new(opening.clone())); // the program's state until now
    let rt = Runtime::<Transferred>::builder()
        .view("ledger", Ledger::new(opening, broken))
        .build()?;
    let legacy: OldStore = LegacyLock::new(Arc::clone(&balances), old_transfer);
    let migration = Migration::new(&rt, legacy);
    let writer = migration.writer(); // every write: the event, then the old state
    let reads: Reads = migration.reader(
        rt.reader::<Ledger>("ledger")?, // every read: from the old state, for now
        |l: &Ledger, a: &u64| l.balances.get(a).copied(),
        |m: &HashMap<u64, i64>, a: &u64| m.get(a).copied(),
    );
    // shadow: end
    let traffic = Traffic::start(&writer, &reads);
    let mut last = migration.stats();
    let mut phase = |name: &str| {
        thread::sleep(Duration::from_millis(phase_ms));
        last = print_phase(name, &last, migration.stats());
    };
    phase("shadow");

    // reads: begin
    migration.set_verify_share(10)?; // compare 10 % of rwlog reads with the old state
    for share in [10, 50, 100] {
        migration.set_read_share(share)?; // at once, blocking nobody
        phase(&format!("reads {share} %")); // traffic runs on; print the phase's stats
    }
    // reads: end

    // cut-over: begin
    migration.cut_over()?; // old state no longer written; views and projections at the head
    phase("cut over");
    let replayed = migration.rollback()?; // the old state gets the events it missed
    phase(&format!("rolled back ({replayed} events replayed)"));
    migration.cut_over()?;
    phase("cut over again");
    // cut-over: end

    traffic.stop();
    let stats = migration.stats();
    let total: i64 = reads.view_reader().strong()?.balances.values().sum();
    println!(
        "\nrwlog's total: {total} (expected {})",
        ACCOUNTS as i64 * START_BALANCE
    );
    let named = named.lock().map(|n| n.clone()).unwrap_or_default();
    println!(
        "discrepancies: {}; accounts named: {named:?}",
        stats.discrepancies
    );
    if !broken && (stats.discrepancies > 0 || total != ACCOUNTS as i64 * START_BALANCE) {
        eprintln!("the two sides disagree");
        std::process::exit(1);
    }
    Ok(())
}

fn print_phase(name: &str, before: &MigrationStats, now: MigrationStats) -> MigrationStats {
    let d = |f: fn(&MigrationStats) -> u64| f(&now) - f(before);
    println!(
        "{name:<36} {:?}: reads legacy {:>9} rwlog {:>9} | verified {:>7} unverified {:>5} discrepancies {:>4} | writes {:>7} failed {}/{} | legacy at {}",
        now.phase,
        d(|s| s.legacy_reads),
        d(|s| s.rwlog_reads),
        d(|s| s.verified),
        d(|s| s.unverified),
        d(|s| s.discrepancies),
        d(|s| s.writes),
        now.failed_appends,
        now.failed_legacy_writes,
        now.legacy_position,
    );
    now
}

/// Writer and reader threads, running until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(writer: &DualWriter<Transferred, OldStore>, reads: &Reads) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for t in 0..WRITERS {
            let (w, stop) = (writer.clone(), Arc::clone(&stop));
            threads.push(thread::spawn(move || {
                let mut x = t * 7919 + 1;
                while !stop.load(Ordering::Relaxed) {
                    x = xorshift(x);
                    let (from, to) = (x % ACCOUNTS, (x >> 20) % ACCOUNTS);
                    let amount = (x >> 40) as i64 % 50;
                    w.append("transfers", Transferred { from, to, amount })
                        .expect("a transfer");
                }
            }));
        }
        for t in 0..READERS {
            let (r, stop) = (reads.clone(), Arc::clone(&stop));
            threads.push(thread::spawn(move || {
                let mut x = t * 104_729 + 3;
                while !stop.load(Ordering::Relaxed) {
                    x = xorshift(x);
                    r.get(&(x % ACCOUNTS)).expect("a read");
                }
            }));
        }
        Traffic { stop, threads }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("a traffic thread");
        }
    }
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Prints warnings to stderr and collects the accounts discrepancies name
/// (a subscriber of the example's own, to need no other crate).
fn warnings_to_stderr() -> Arc<Mutex<BTreeSet<String>>> {
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};

    struct Fields(String, Option<String>);
    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0 += &format!(" {}={value:?}", field.name());
            if field.name() == "key" {
                self.1 = Some(format!("{value:?}"));
            }
        }
    }
    struct Warnings(Arc<Mutex<BTreeSet<String>>>);
    impl tracing::Subscriber for Warnings {
        fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
            *m.level() <= tracing::Level::INFO
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &tracing::Event<'_>) {
            let mut fields = Fields(String::new(), None);
            e.record(&mut fields);
            if *e.metadata().level() == tracing::Level::WARN {
                eprintln!("  WARN{}", fields.0);
            }
            if let (Some(key), Ok(mut named)) = (fields.1, self.0.lock()) {
                named.insert(key);
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
    let named = Arc::new(Mutex::new(BTreeSet::new()));
    let _ = tracing::subscriber::set_global_default(Warnings(Arc::clone(&named)));
    named
}
