//! The contenders of rwlog's benchmarks, shared by `benches/` and
//! `examples/compare.rs`. Every contender holds the same state, a
//! `HashMap<u64, u64>` of `KEYS` keys with the same hasher (foldhash, fixed
//! seed: what a user tuning a hot map would pick over std's SipHash), and
//! does the same work: `get(key)` and `set(key, value)`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use rwlog::{CachedReader, Event, Reader, Recorded, Runtime, StreamId, Ticket, View, Writer};

/// Keys in every contender's map.
pub const KEYS: u64 = 100_000;

/// The hasher every contender's map uses.
pub type Hasher = foldhash::fast::FixedState;

/// The state every contender holds.
pub type Map = HashMap<u64, u64, Hasher>;

fn hasher() -> Hasher {
    foldhash::fast::FixedState::with_seed(0x5eed)
}

/// The map every contender starts from: key k holds k.
pub fn prefilled() -> Map {
    let mut m = Map::with_capacity_and_hasher(KEYS as usize, hasher());
    m.extend((0..KEYS).map(|k| (k, k)));
    m
}

/// rwlog's event: set a key.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Set {
    pub key: u64,
    pub value: u64,
}

impl Event for Set {}

/// rwlog's view: the map, fed by `Set` events.
#[derive(Clone)]
pub struct Kv(pub Map);

impl View<Set> for Kv {
    fn apply(&mut self, e: &Recorded<Set>) {
        let s = e.payload();
        self.0.insert(s.key, s.value);
    }
}

/// Builds an rwlog runtime over the prefilled map.
pub fn kv_runtime(snapshot_every: u64) -> Runtime<Set> {
    kv_builder()
        .snapshot_every(snapshot_every)
        .build()
        .expect("runtime")
}

/// An rwlog runtime over the prefilled map, sequenced as `kind` says
/// (`Sequencing::Thread` for the thread-mode kinds).
pub fn kv_runtime_for(kind: Kind) -> Runtime<Set> {
    kv_builder()
        .sequencing(kind.sequencing())
        .build()
        .expect("runtime")
}

fn kv_builder() -> rwlog::Builder<Set> {
    Runtime::<Set>::builder().view("kv", Kv(prefilled()))
}

/// The queue capacity of [`Kind::RwlogDeepQueue`].
pub const DEEP_QUEUE: usize = 65_536;

/// Appends `events` random sets to one stream through `submit` and waits
/// until the last is acknowledged (so all are).
pub fn fill(rt: &Runtime<Set>, events: u64, seed: u64) {
    let w = rt.writer();
    let stream = StreamId::from("history");
    let mut keys = Keys::new(seed);
    let mut last = None;
    for i in 0..events {
        let set = Set {
            key: keys.next(),
            value: i,
        };
        last = Some(w.submit(&stream, set).expect("submit"));
    }
    if let Some(t) = last {
        t.wait().expect("ack");
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// rwlog, writes through `Writer::submit` (acknowledged in bulk at the end).
    Rwlog,
    /// rwlog, writes through `Writer::append` (each waits for its ack).
    RwlogAppend,
    /// rwlog, reading through a `CachedReader` (a pointer compare while the
    /// view is unchanged) instead of `Reader::latest`; writes as `Rwlog`.
    RwlogCached,
    /// rwlog through `submit` with a queue of `DEEP_QUEUE` appends instead of
    /// the default 1024: a writer can run further ahead of the sequencer,
    /// which matters when threads outnumber cores and either may be
    /// descheduled for a whole time slice.
    RwlogDeepQueue,
    StdRwLock,
    ParkingLot,
    /// `ArcSwap<HashMap>`: a bare load + lookup to read, clone-per-write.
    ArcSwap,
    /// evmap (left-right), publishing every `EVMAP_PUBLISH_EVERY` writes.
    Evmap,
    /// rwlog with `Sequencing::Thread`: a sequencer thread does every
    /// batch (writes through `submit`).
    RwlogThread,
    /// rwlog with `Sequencing::Thread`, writes through `append`.
    RwlogThreadAppend,
    /// dashmap: a sharded map of locks. No snapshot of several keys.
    DashMap,
    /// scc's `HashMap`: fine-grained locking. No snapshot of several keys.
    Scc,
    /// papaya: a lock-free map with epoch reclamation. No snapshot of
    /// several keys.
    Papaya,
    /// Not a map: the naive way to keep events in PostgreSQL, one INSERT
    /// per event into a table keyed by a bigserial (the compare example's
    /// PostgreSQL scenarios only).
    PlainInsert,
    /// Not a contender but the floor under every one: each thread works on a
    /// private map of its own, so nothing is shared and nothing is
    /// synchronized. What remains is the cost of the lookup itself (cache
    /// and TLB misses on a 100k-key map) on this machine.
    Unshared,
}

/// evmap's single write handle, shared by the writer threads, with the count
/// of writes since it last published.
type EvWriter = Arc<Mutex<(evmap::handles::WriteHandle<u64, u64, (), Hasher>, u64)>>;

/// How many writes evmap batches before it publishes them to readers.
pub const EVMAP_PUBLISH_EVERY: u64 = 1000;

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rwlog => "rwlog",
            Kind::RwlogAppend => "rwlog (append)",
            Kind::RwlogDeepQueue => "rwlog, queue_capacity 64k",
            Kind::RwlogCached => "rwlog, cached()",
            Kind::StdRwLock => "std RwLock",
            Kind::ParkingLot => "parking_lot RwLock",
            Kind::ArcSwap => "arc-swap clone-per-write",
            Kind::Evmap => "evmap",
            Kind::RwlogThread => "rwlog, thread mode",
            Kind::RwlogThreadAppend => "rwlog (append), thread mode",
            Kind::DashMap => "dashmap",
            Kind::Scc => "scc HashMap",
            Kind::Papaya => "papaya",
            Kind::Unshared => "HashMap, unshared (floor)",
            Kind::PlainInsert => "plain INSERT per event, bigserial",
        }
    }

    /// How an rwlog kind sequences.
    pub fn sequencing(self) -> rwlog::Sequencing {
        match self {
            Kind::RwlogThread | Kind::RwlogThreadAppend => rwlog::Sequencing::Thread,
            _ => rwlog::Sequencing::Combining,
        }
    }

    /// The contenders of read and mixed scenarios.
    pub const MAPS: [Kind; 8] = [
        Kind::Rwlog,
        Kind::StdRwLock,
        Kind::ParkingLot,
        Kind::ArcSwap,
        Kind::Evmap,
        Kind::DashMap,
        Kind::Scc,
        Kind::Papaya,
    ];

    /// Every kind, for looking one up by name.
    pub const ALL: [Kind; 14] = [
        Kind::Rwlog,
        Kind::RwlogAppend,
        Kind::RwlogCached,
        Kind::RwlogDeepQueue,
        Kind::RwlogThread,
        Kind::RwlogThreadAppend,
        Kind::StdRwLock,
        Kind::ParkingLot,
        Kind::ArcSwap,
        Kind::Evmap,
        Kind::DashMap,
        Kind::Scc,
        Kind::Papaya,
        Kind::Unshared,
    ];

    /// The contenders of write scenarios: rwlog every way.
    pub const WRITERS: [Kind; 11] = [
        Kind::Rwlog,
        Kind::RwlogAppend,
        Kind::RwlogThread,
        Kind::RwlogThreadAppend,
        Kind::StdRwLock,
        Kind::ParkingLot,
        Kind::ArcSwap,
        Kind::Evmap,
        Kind::DashMap,
        Kind::Scc,
        Kind::Papaya,
    ];
}

/// A per-thread read handle.
pub trait Reads: Send {
    fn get(&mut self, key: u64) -> u64;
}

/// A per-thread write handle.
pub trait Writes: Send {
    fn set(&mut self, key: u64, value: u64);
    /// Waits until every write so far is visible to readers.
    fn flush(&mut self);
}

/// One contender's shared state, made fresh for each measurement.
pub enum Contender {
    Rwlog {
        rt: Runtime<Set>,
        append: bool,
        cached: bool,
    },
    Std(Arc<RwLock<Map>>),
    ParkingLot(Arc<parking_lot::RwLock<Map>>),
    ArcSwap(Arc<arc_swap::ArcSwap<Map>>),
    Evmap {
        w: EvWriter,
        r: Mutex<evmap::handles::ReadHandle<u64, u64, (), Hasher>>,
    },
    DashMap(Arc<dashmap::DashMap<u64, u64, Hasher>>),
    Scc(Arc<scc::HashMap<u64, u64, Hasher>>),
    Papaya(Arc<papaya::HashMap<u64, u64, Hasher>>),
    Unshared,
}

impl Contender {
    pub fn new(kind: Kind) -> Contender {
        match kind {
            Kind::Rwlog => Contender::Rwlog {
                rt: kv_runtime(0),
                append: false,
                cached: false,
            },
            Kind::RwlogAppend => Contender::Rwlog {
                rt: kv_runtime(0),
                append: true,
                cached: false,
            },
            Kind::RwlogCached => Contender::Rwlog {
                rt: kv_runtime(0),
                append: false,
                cached: true,
            },
            Kind::RwlogDeepQueue => Contender::Rwlog {
                rt: kv_builder()
                    .queue_capacity(DEEP_QUEUE)
                    .build()
                    .expect("runtime"),
                append: false,
                cached: false,
            },
            Kind::StdRwLock => Contender::Std(Arc::new(RwLock::new(prefilled()))),
            Kind::ParkingLot => {
                Contender::ParkingLot(Arc::new(parking_lot::RwLock::new(prefilled())))
            }
            Kind::ArcSwap => {
                Contender::ArcSwap(Arc::new(arc_swap::ArcSwap::from_pointee(prefilled())))
            }
            Kind::Evmap => {
                let options = evmap::Options::default().with_capacity(KEYS as usize);
                // SAFETY: evmap requires a deterministic hasher (the same
                // input always hashes the same); a fixed-seed foldhash is.
                let options = unsafe { options.with_hasher(hasher()) };
                let (mut w, r) = options.construct();
                for (k, v) in prefilled() {
                    w.insert(k, v);
                }
                w.publish();
                Contender::Evmap {
                    w: Arc::new(Mutex::new((w, 0))),
                    r: Mutex::new(r),
                }
            }
            Kind::RwlogThread | Kind::RwlogThreadAppend => Contender::Rwlog {
                rt: kv_builder()
                    .sequencing(rwlog::Sequencing::Thread)
                    .build()
                    .expect("runtime"),
                append: kind == Kind::RwlogThreadAppend,
                cached: false,
            },
            Kind::DashMap => {
                let m = dashmap::DashMap::with_capacity_and_hasher(KEYS as usize, hasher());
                for (k, v) in prefilled() {
                    m.insert(k, v);
                }
                Contender::DashMap(Arc::new(m))
            }
            Kind::Scc => {
                let m = scc::HashMap::with_capacity_and_hasher(KEYS as usize, hasher());
                for (k, v) in prefilled() {
                    m.upsert_sync(k, v);
                }
                Contender::Scc(Arc::new(m))
            }
            Kind::Papaya => {
                let m = papaya::HashMap::with_capacity_and_hasher(KEYS as usize, hasher());
                let pinned = m.pin();
                for (k, v) in prefilled() {
                    pinned.insert(k, v);
                }
                drop(pinned);
                Contender::Papaya(Arc::new(m))
            }
            Kind::Unshared => Contender::Unshared,
            Kind::PlainInsert => panic!("{} holds no map", kind.name()),
        }
    }

    pub fn reader(&self) -> Box<dyn Reads> {
        match self {
            Contender::Rwlog { rt, cached, .. } => {
                let reader = rt.reader::<Kv>("kv").expect("kv view");
                if *cached {
                    Box::new(RwlogCachedRead(reader.cached()))
                } else {
                    Box::new(RwlogRead(reader))
                }
            }
            Contender::Std(m) => Box::new(StdRead(Arc::clone(m))),
            Contender::ParkingLot(m) => Box::new(PlRead(Arc::clone(m))),
            Contender::ArcSwap(m) => Box::new(SwapRead(Arc::clone(m))),
            Contender::Evmap { r, .. } => Box::new(EvRead(r.lock().expect("lock").clone())),
            Contender::DashMap(m) => Box::new(DashRead(Arc::clone(m))),
            Contender::Scc(m) => Box::new(SccMap(Arc::clone(m))),
            Contender::Papaya(m) => Box::new(PapayaMap(Arc::clone(m))),
            Contender::Unshared => Box::new(Private(prefilled())),
        }
    }

    pub fn writer(&self, id: usize) -> Box<dyn Writes> {
        match self {
            Contender::Rwlog { rt, append, .. } => Box::new(RwlogWrite {
                w: rt.writer(),
                stream: StreamId::from(format!("writer-{id}")),
                append: *append,
                last: None,
            }),
            Contender::Std(m) => Box::new(StdWrite(Arc::clone(m))),
            Contender::ParkingLot(m) => Box::new(PlWrite(Arc::clone(m))),
            Contender::ArcSwap(m) => Box::new(SwapWrite(Arc::clone(m))),
            Contender::Evmap { w, .. } => Box::new(EvWrite(Arc::clone(w))),
            Contender::DashMap(m) => Box::new(DashRead(Arc::clone(m))),
            Contender::Scc(m) => Box::new(SccMap(Arc::clone(m))),
            Contender::Papaya(m) => Box::new(PapayaMap(Arc::clone(m))),
            Contender::Unshared => Box::new(Private(prefilled())),
        }
    }

    /// The rwlog runtime, for rwlog-only scenarios.
    pub fn runtime(&self) -> Option<&Runtime<Set>> {
        match self {
            Contender::Rwlog { rt, .. } => Some(rt),
            _ => None,
        }
    }
}

struct RwlogRead(Reader<Kv>);

impl Reads for RwlogRead {
    fn get(&mut self, key: u64) -> u64 {
        self.0.latest().0.get(&key).copied().unwrap_or(0)
    }
}

struct RwlogCachedRead(CachedReader<Kv>);

impl Reads for RwlogCachedRead {
    fn get(&mut self, key: u64) -> u64 {
        self.0.load().0.get(&key).copied().unwrap_or(0)
    }
}

struct RwlogWrite {
    w: Writer<Set>,
    stream: StreamId,
    append: bool,
    last: Option<Ticket>,
}

impl Writes for RwlogWrite {
    fn set(&mut self, key: u64, value: u64) {
        let event = Set { key, value };
        if self.append {
            self.w.append(&self.stream, event).expect("append");
        } else {
            self.last = Some(self.w.submit(&self.stream, event).expect("submit"));
        }
    }

    fn flush(&mut self) {
        // One writer's appends are sequenced in order: its last ack covers all.
        if let Some(t) = self.last.take() {
            t.wait().expect("ack");
        }
    }
}

struct StdRead(Arc<RwLock<Map>>);

impl Reads for StdRead {
    fn get(&mut self, key: u64) -> u64 {
        self.0.read().expect("lock").get(&key).copied().unwrap_or(0)
    }
}

struct StdWrite(Arc<RwLock<Map>>);

impl Writes for StdWrite {
    fn set(&mut self, key: u64, value: u64) {
        self.0.write().expect("lock").insert(key, value);
    }

    fn flush(&mut self) {}
}

struct PlRead(Arc<parking_lot::RwLock<Map>>);

impl Reads for PlRead {
    fn get(&mut self, key: u64) -> u64 {
        self.0.read().get(&key).copied().unwrap_or(0)
    }
}

struct PlWrite(Arc<parking_lot::RwLock<Map>>);

impl Writes for PlWrite {
    fn set(&mut self, key: u64, value: u64) {
        self.0.write().insert(key, value);
    }

    fn flush(&mut self) {}
}

struct SwapRead(Arc<arc_swap::ArcSwap<Map>>);

impl Reads for SwapRead {
    fn get(&mut self, key: u64) -> u64 {
        self.0.load().get(&key).copied().unwrap_or(0)
    }
}

struct SwapWrite(Arc<arc_swap::ArcSwap<Map>>);

impl Writes for SwapWrite {
    fn set(&mut self, key: u64, value: u64) {
        self.0.rcu(|m| {
            let mut m = Map::clone(m);
            m.insert(key, value);
            m
        });
    }

    fn flush(&mut self) {}
}

struct EvRead(evmap::handles::ReadHandle<u64, u64, (), Hasher>);

impl Reads for EvRead {
    fn get(&mut self, key: u64) -> u64 {
        self.0.get_one(&key).map(|v| *v).unwrap_or(0)
    }
}

struct EvWrite(EvWriter);

impl Writes for EvWrite {
    fn set(&mut self, key: u64, value: u64) {
        let mut g = self.0.lock().expect("lock");
        let (w, n) = &mut *g;
        w.update(key, value);
        *n += 1;
        if *n % EVMAP_PUBLISH_EVERY == 0 {
            w.publish();
        }
    }

    fn flush(&mut self) {
        self.0.lock().expect("lock").0.publish();
    }
}

/// dashmap, read and written in place.
struct DashRead(Arc<dashmap::DashMap<u64, u64, Hasher>>);

impl Reads for DashRead {
    fn get(&mut self, key: u64) -> u64 {
        self.0.get(&key).map(|v| *v).unwrap_or(0)
    }
}

impl Writes for DashRead {
    fn set(&mut self, key: u64, value: u64) {
        self.0.insert(key, value);
    }

    fn flush(&mut self) {}
}

/// scc's map, read and written in place.
struct SccMap(Arc<scc::HashMap<u64, u64, Hasher>>);

impl Reads for SccMap {
    fn get(&mut self, key: u64) -> u64 {
        self.0.read_sync(&key, |_, v| *v).unwrap_or(0)
    }
}

impl Writes for SccMap {
    fn set(&mut self, key: u64, value: u64) {
        self.0.upsert_sync(key, value);
    }

    fn flush(&mut self) {}
}

/// papaya's map, read and written in place.
struct PapayaMap(Arc<papaya::HashMap<u64, u64, Hasher>>);

impl Reads for PapayaMap {
    fn get(&mut self, key: u64) -> u64 {
        self.0.pin().get(&key).copied().unwrap_or(0)
    }
}

impl Writes for PapayaMap {
    fn set(&mut self, key: u64, value: u64) {
        self.0.pin().insert(key, value);
    }

    fn flush(&mut self) {}
}

/// A map only its own thread touches: [`Kind::Unshared`].
struct Private(Map);

impl Reads for Private {
    fn get(&mut self, key: u64) -> u64 {
        self.0.get(&key).copied().unwrap_or(0)
    }
}

impl Writes for Private {
    fn set(&mut self, key: u64, value: u64) {
        self.0.insert(key, value);
    }

    fn flush(&mut self) {}
}

include!("../../tests/support/rng.rs");

/// A fast, deterministic key generator, one per thread.
pub struct Keys(Rng);

impl Keys {
    pub fn new(seed: u64) -> Keys {
        Keys(Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1))
    }

    pub fn next(&mut self) -> u64 {
        self.0.below(KEYS)
    }
}
