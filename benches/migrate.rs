//! What a migration costs a read: a `MigrationReader::get` at 0, 50 and 100 %
//! of reads served by rwlog, with verification off and at 10 % (and 100 %
//! at a 100 % share), against a plain `RwLock<HashMap>` read and a plain
//! rwlog `Reader::latest` read of the same 100k-key map, in the same run.
//! One reader thread, no writer.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, RwLock};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rwlog::migrate::{LegacyLock, Migration};
use rwlog::{Event, Recorded, Runtime, View};

const KEYS: u64 = 100_000;

#[derive(Clone, Debug)]
struct Set(u64, u64);
impl Event for Set {}

#[derive(Clone, Default)]
struct Table(HashMap<u64, u64>);
impl View<Set> for Table {
    fn apply(&mut self, e: &Recorded<Set>) {
        self.0.insert(e.payload().0, e.payload().1);
    }
}

fn old_set(m: &mut HashMap<u64, u64>, e: &Recorded<Set>) {
    m.insert(e.payload().0, e.payload().1);
}

/// Random keys, without touching anything shared.
struct Keys(u64);
impl Keys {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % KEYS
    }
}

fn reads(c: &mut Criterion) {
    let initial: HashMap<u64, u64> = (0..KEYS).map(|k| (k, k)).collect();
    let lock = Arc::new(RwLock::new(initial.clone()));
    let rt = Runtime::<Set>::builder()
        .view("table", Table(initial))
        .build()
        .unwrap();
    let legacy = LegacyLock::new(Arc::clone(&lock), old_set);
    let migration = Migration::new(&rt, legacy);
    let reader = rt.reader::<Table>("table").unwrap();
    let reads = migration.reader(
        reader.clone(),
        |t: &Table, k: &u64| t.0.get(k).copied(),
        |m: &HashMap<u64, u64>, k: &u64| m.get(k).copied(),
    );

    let mut g = c.benchmark_group("migrate_reads");
    g.throughput(Throughput::Elements(1));
    let mut keys = Keys(0x9E37_79B9_7F4A_7C15);
    g.bench_function("RwLock<HashMap>", |b| {
        b.iter(|| black_box(lock.read().unwrap().get(&keys.next()).copied()))
    });
    g.bench_function("rwlog Reader::latest", |b| {
        b.iter(|| black_box(reader.latest().0.get(&keys.next()).copied()))
    });
    for (share, verify) in [
        (0, 0),
        (50, 0),
        (100, 0),
        (0, 10),
        (50, 10),
        (100, 10),
        (100, 100),
    ] {
        migration.set_read_share(share).unwrap();
        migration.set_verify_share(verify).unwrap();
        let name = format!("migration {share}% rwlog, verify {verify}%");
        g.bench_function(name, |b| {
            b.iter(|| black_box(reads.get(&keys.next()).unwrap()))
        });
    }
    g.finish();
    assert_eq!(migration.stats().discrepancies, 0);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = reads
}
criterion_main!(benches);
