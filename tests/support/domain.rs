//! A small domain shared by the integration tests: events that add to a key,
//! a map view, and an order-sensitive checksum view that makes any missing,
//! duplicated or reordered event visible.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rwlog::{Event, EventRef, Position, Recorded, View};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Add {
    pub key: u64,
    pub amount: i64,
}

impl Event for Add {
    fn event_type(&self) -> &'static str {
        if self.amount >= 0 {
            "Credit"
        } else {
            "Debit"
        }
    }
}

pub fn add(key: u64, amount: i64) -> Add {
    Add { key, amount }
}

/// key -> sum of amounts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sums(pub BTreeMap<u64, i64>);

impl View<Add> for Sums {
    fn apply(&mut self, e: &Recorded<Add>) {
        *self.0.entry(e.payload().key).or_default() += e.payload().amount;
    }
}

/// A fold that depends on every event and on their order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    pub count: u64,
    pub hash: u64,
    pub last: Position,
}

impl Checksum {
    pub fn step(&mut self, e: &Recorded<Add>) {
        let x = e.position().0 ^ (e.payload().key << 20) ^ (e.payload().amount as u64) << 40;
        self.hash = self
            .hash
            .wrapping_mul(0x100_0000_01b3)
            .wrapping_add(x ^ e.version());
        self.count += 1;
        self.last = e.position();
    }
}

impl View<Add> for Checksum {
    fn apply(&mut self, e: &Recorded<Add>) {
        self.step(e);
    }
}

/// The reference model: checksums of every prefix of the log, index p = the
/// fold of events 1..=p.
pub fn prefix_checksums(events: &[EventRef<Add>]) -> Vec<Checksum> {
    let mut out = vec![Checksum::default()];
    let mut c = Checksum::default();
    for e in events {
        c.step(e);
        out.push(c.clone());
    }
    out
}

include!("rng.rs");

/// A runtime whose only view is a [`Sums`] named "sums", configured further
/// by `configure`: the runtime most tests start from.
pub fn sums_runtime(
    configure: impl FnOnce(rwlog::Builder<Add>) -> rwlog::Builder<Add>,
) -> rwlog::Runtime<Add> {
    let builder = rwlog::Runtime::<Add>::builder().view("sums", Sums::default());
    configure(builder).build().unwrap()
}

/// A key that makes [`Held`] block in `apply` until its valve opens.
pub const HOLD: u64 = u64::MAX;

/// A latch shared between a test and a view.
#[derive(Clone, Default)]
pub struct Valve(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Valve {
    pub fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    pub fn wait(&self) {
        let mut open = self.0 .0.lock().unwrap();
        while !*open {
            open = self.0 .1.wait(open).unwrap();
        }
    }
}

/// A sum view that stalls the sequencer on a `HOLD` event until the valve
/// opens: it keeps the log head ahead of the published view on demand.
#[derive(Clone, Default)]
pub struct Held {
    pub valve: Valve,
    pub sum: i64,
}

impl View<Add> for Held {
    fn apply(&mut self, e: &Recorded<Add>) {
        if e.payload().key == HOLD {
            self.valve.wait();
        }
        self.sum += e.payload().amount;
    }
}

/// A runtime whose only view is a [`Held`] named "held", configured further
/// by `configure`, and the valve that releases it. Its sequencer is a
/// thread of its own (`Sequencing::Thread`), so that a held view stalls that
/// thread, not the test's.
pub fn held_runtime(
    configure: impl FnOnce(rwlog::Builder<Add>) -> rwlog::Builder<Add>,
) -> (rwlog::Runtime<Add>, Valve) {
    let held = Held::default();
    let valve = held.valve.clone();
    let builder = rwlog::Runtime::<Add>::builder()
        .sequencing(rwlog::Sequencing::Thread)
        .view("held", held);
    (configure(builder).build().unwrap(), valve)
}

/// Waits (bounded) until the log head reaches `p`: the sequencer has
/// appended it and is now publishing.
pub fn wait_for_head<E>(log: &rwlog::Log<E>, p: Position) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log.head() < p {
        assert!(
            std::time::Instant::now() < deadline,
            "the log never reached {p}"
        );
        std::thread::yield_now();
    }
}

/// The same domain, serializable, for the durable log's tests.
pub mod durable {
    use std::collections::BTreeMap;

    use rwlog::{Event, Recorded, View};
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Put {
        pub key: u64,
        pub amount: i64,
    }

    impl Event for Put {}

    /// key -> sum, persisted.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Totals(pub BTreeMap<u64, i64>);

    impl View<Put> for Totals {
        fn apply(&mut self, e: &Recorded<Put>) {
            *self.0.entry(e.payload().key).or_default() += e.payload().amount;
        }
    }

    /// The fold of a log, for comparison with the view.
    pub fn fold<'a>(events: impl Iterator<Item = &'a Recorded<Put>>) -> Totals {
        let mut t = Totals::default();
        for e in events {
            t.apply(e);
        }
        t
    }
}
