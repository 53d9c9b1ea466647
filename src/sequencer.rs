//! The sequencer: the one thread that orders every append.
//!
//! It drains a batch of commands from the queue, checks each one's expected
//! version, gives the accepted events contiguous positions and a timestamp,
//! appends them to the log, folds them into every view and publishes each
//! view once, then acknowledges the writers.

use std::collections::HashMap;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::Batch;
use crate::event::{Event, Recorded, Timestamp};
use crate::hub::Hub;
use crate::position::{Position, StreamId};
use crate::storage::Store;
use crate::sync::channel::{Receiver, TryRecvError};
use crate::sync::{self, Arc};
use crate::view::ViewDriver;
use crate::write::{AppendCmd, Appended, Msg, Reply};

/// How long the idle sequencer polls the queue before parking.
const SPINS: u32 = sync::budget(128);
const YIELDS: u32 = sync::budget(64);

/// A batch as assigned: its records, and each command's answer.
struct Assigned<E> {
    records: Vec<Recorded<E>>,
    acks: Vec<(Reply, Result<Appended>)>,
    rejected: u64,
}

/// The sequencer thread's state.
pub(crate) struct Sequencer<E> {
    rx: Receiver<Msg<E>>,
    shared: Arc<Hub<E>>,
    views: Vec<Box<dyn ViewDriver<E>>>,
    max_batch: usize,
    /// Every stream's current version. The sequencer is the only writer of
    /// streams, so its own map is authoritative and needs no lock.
    versions: HashMap<StreamId, u64, foldhash::fast::RandomState>,
    last_stamp: Timestamp,
    ids: Ids,
    store: Option<Box<dyn Store<E>>>,
    /// Set once the store failed: every later append is refused, so the
    /// versions and remembered ids of the failed batch are never read again
    /// and need no rollback; reopening rebuilds them from the log.
    failed: Option<(std::io::ErrorKind, String)>,
    dedupe: Dedupe,
}

/// The sequencer's source of event ids: UUID v7 (RFC 9562), the batch's
/// millisecond timestamp followed by 74 bits that are unique within this
/// sequencer and random across sequencers.
///
/// The 74 bits are a 42-bit counter (rand_a and the top of rand_b, the
/// RFC's "fixed bit-length dedicated counter" method: ids of one sequencer
/// sort in the order it gave them, except once every 2^42 ids, when the
/// counter wraps within a millisecond) over a 32-bit random salt drawn
/// once. The counter starts at a random value too. Drawing fresh random bits for every
/// event cost about a quarter of the sequencer's instructions per event.
struct Ids {
    counter: u64,
    salt: u64,
}

impl Ids {
    const COUNTER_BITS: u32 = 42;

    fn new() -> Ids {
        let seed = Uuid::new_v4().as_u128();
        Ids {
            counter: (seed as u64) >> (64 - Self::COUNTER_BITS),
            salt: (seed >> 64) as u64 & 0xFFFF_FFFF,
        }
    }

    fn next(&mut self, millis: u64) -> Uuid {
        let counter = self.counter & ((1 << Self::COUNTER_BITS) - 1);
        self.counter = self.counter.wrapping_add(1);
        // rand_a: the counter's top 12 bits; rand_b: its other 30 bits, then
        // the salt.
        let rand_a = (counter >> 30) as u128;
        let rand_b = ((counter & ((1 << 30) - 1)) as u128) << 32 | self.salt as u128;
        let bits = (millis as u128 & ((1 << 48) - 1)) << 80
            | 0x7 << 76
            | rand_a << 64
            | 0b10 << 62
            | rand_b;
        Uuid::from_u128(bits)
    }
}

/// The acknowledgements of recent appends whose first event carried an id
/// from the writer, so that a retried append is acknowledged again instead
/// of written twice.
///
/// Invariant: `acks` holds exactly the ids in `order`, at most `window`.
struct Dedupe {
    window: usize,
    acks: HashMap<Uuid, Appended, foldhash::fast::RandomState>,
    order: std::collections::VecDeque<Uuid>,
}

impl Dedupe {
    fn get(&self, id: &Uuid) -> Option<Appended> {
        self.acks.get(id).copied()
    }

    fn insert(&mut self, id: Uuid, ack: Appended) {
        if self.window == 0 || self.acks.insert(id, ack).is_some() {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.window {
            if let Some(old) = self.order.pop_front() {
                self.acks.remove(&old);
            }
        }
    }
}

impl<E: Event> Sequencer<E> {
    pub(crate) fn new(
        rx: Receiver<Msg<E>>,
        shared: Arc<Hub<E>>,
        views: Vec<Box<dyn ViewDriver<E>>>,
        max_batch: usize,
        store: Option<Box<dyn Store<E>>>,
        dedupe_window: usize,
    ) -> Sequencer<E> {
        let mut dedupe = Dedupe {
            window: dedupe_window,
            acks: HashMap::default(),
            order: std::collections::VecDeque::new(),
        };
        // Continue where a recovered log left off. Its newest ids are
        // remembered one event at a time (the grouping of events into
        // appends is not stored).
        let mut versions: HashMap<StreamId, u64, _> = HashMap::default();
        let mut last_stamp = Timestamp::from_nanos(0);
        let remembered_from = shared.log.head().0.saturating_sub(dedupe_window as u64);
        for e in shared.log.read_all(..) {
            versions.insert(e.stream.clone(), e.version);
            last_stamp = e.recorded_at;
            if e.position.0 > remembered_from {
                let ack = Appended {
                    position: e.position,
                    version: e.version,
                    count: 1,
                };
                dedupe.insert(e.id, ack);
            }
        }
        Sequencer {
            rx,
            shared,
            views,
            max_batch,
            versions,
            last_stamp,
            ids: Ids::new(),
            store,
            failed: None,
            dedupe,
        }
    }

    /// The error every append gets once the store has failed.
    fn storage_error(&self) -> Option<Error> {
        self.failed.as_ref().map(|(kind, message)| {
            Error::Io(std::io::Error::new(
                *kind,
                format!("the log could not be written ({message}); the runtime takes no more appends until reopened"),
            ))
        })
    }

    /// Runs until the shutdown marker (or until every sender is gone).
    pub(crate) fn run(mut self) {
        let mut cmds = Vec::new();
        let mut stop = false;
        while !stop {
            let Some(first) = self.receive() else { break };
            let mut events = 0;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append(cmd) => {
                        events += cmd.events.len();
                        cmds.push(cmd);
                    }
                    Msg::Shutdown => {
                        stop = true;
                        break;
                    }
                }
                if events < self.max_batch {
                    next = self.rx.try_recv().ok();
                }
            }
            self.process(&mut cmds);
        }
        // The gate guarantees nothing follows the marker; answer anything
        // that did anyway rather than leave a writer waiting.
        while let Ok(msg) = self.rx.try_recv() {
            if let Msg::Append(cmd) = msg {
                cmds.push(cmd);
            }
        }
        self.process(&mut cmds);
    }

    /// The next message, spinning and yielding briefly before parking: a
    /// writer waiting for its ack is usually about to send the next append,
    /// and waking a parked thread costs tens of microseconds.
    fn receive(&self) -> Option<Msg<E>> {
        for i in 0..SPINS + YIELDS {
            match self.rx.try_recv() {
                Ok(msg) => return Some(msg),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) if i < SPINS => sync::spin_loop(),
                Err(TryRecvError::Empty) => sync::yield_now(),
            }
        }
        self.rx.recv().ok()
    }

    fn process(&mut self, cmds: &mut Vec<AppendCmd<E>>) {
        if cmds.is_empty() {
            return;
        }
        let _span = tracing::debug_span!("batch", commands = cmds.len()).entered();
        if self.failed.is_some() {
            for cmd in cmds.drain(..) {
                let error = self.storage_error().unwrap_or(Error::Closed);
                cmd.reply.send(Err(error));
            }
            return;
        }
        let assigned = self.assign(cmds);
        self.commit(assigned);
    }

    /// Checks each command (dedupe, expected version), gives the accepted
    /// events their positions, versions, ids and the batch's timestamp, and
    /// stages them with the store. A command the store cannot take (an
    /// event too large) is rejected alone.
    fn assign(&mut self, cmds: &mut Vec<AppendCmd<E>>) -> Assigned<E> {
        let stamp = Timestamp::now().max(self.last_stamp);
        self.last_stamp = stamp;
        let millis = stamp.as_nanos() / 1_000_000;
        let head = self.shared.log.head().0;
        // Exactly the events offered: this vector becomes the stored batch.
        let offered = cmds.iter().map(|c| c.events.len()).sum();
        let mut records: Vec<Recorded<E>> = Vec::with_capacity(offered);
        let mut acks = Vec::with_capacity(cmds.len());
        let mut rejected = 0u64;
        for cmd in cmds.drain(..) {
            let first_id = cmd.events.first_id();
            if let Some(original) = first_id.and_then(|id| self.dedupe.get(&id)) {
                // Already in the log: acknowledge it again, write nothing.
                acks.push((cmd.reply, Ok(original)));
                continue;
            }
            // One hash lookup for a known stream: the slot found here is
            // the one updated below.
            let slot = self.versions.get_mut(&cmd.stream);
            let current = slot.as_deref().copied().unwrap_or(0);
            if !cmd.expected.matches(current) {
                rejected += 1;
                let conflict = Error::Conflict {
                    stream: cmd.stream,
                    expected: cmd.expected,
                    actual: current,
                };
                acks.push((cmd.reply, Err(conflict)));
                continue;
            }
            let start = records.len();
            let first = head + 1 + start as u64;
            for (i, e) in (0..).zip(cmd.events.into_iter()) {
                records.push(Recorded {
                    position: Position(first + i),
                    stream: cmd.stream.clone(),
                    version: current + 1 + i,
                    id: e.id.unwrap_or_else(|| self.ids.next(millis)),
                    recorded_at: stamp,
                    schema_version: E::SCHEMA_VERSION,
                    metadata: e.metadata,
                    payload: e.payload,
                });
            }
            if let Some(store) = &mut self.store {
                if let Err(e) = store.stage(&records[start..]) {
                    records.truncate(start);
                    rejected += 1;
                    acks.push((cmd.reply, Err(e)));
                    continue;
                }
            }
            let count = (records.len() - start) as u64;
            let ack = Appended {
                position: Position(first + count - 1),
                version: current + count,
                count,
            };
            if let Some(id) = first_id {
                self.dedupe.insert(id, ack);
            }
            match slot {
                Some(version) => *version = current + count,
                None => {
                    self.versions.insert(cmd.stream, current + count);
                }
            }
            acks.push((cmd.reply, Ok(ack)));
        }
        Assigned {
            records,
            acks,
            rejected,
        }
    }

    /// Makes the batch durable, appends it to the log, publishes every view
    /// once, wakes readers, and only then answers the writers.
    fn commit(&mut self, assigned: Assigned<E>) {
        let Assigned {
            records,
            acks,
            rejected,
        } = assigned;
        let appended = records.len() as u64;
        if appended > 0 {
            if let Some(store) = &mut self.store {
                if let Err(e) = store.commit() {
                    self.fail(e, acks);
                    return;
                }
            }
            let batch: Batch<E> = Arc::new(records);
            self.shared.log.append(&batch);
            for view in &mut self.views {
                view.publish(&batch);
            }
            self.shared.counters.record_batch(appended);
        }
        self.shared.counters.record_rejected(rejected);
        // Readers waiting for these positions re-check now; writers learn
        // their positions only after the views show them.
        self.shared.signal.notify();
        for (reply, result) in acks {
            reply.send(result);
        }
    }

    /// The store failed: refuse this batch and every later append.
    fn fail(&mut self, e: std::io::Error, acks: Vec<(Reply, Result<Appended>)>) {
        tracing::error!(error = %e, "the log could not be written; refusing appends from now on");
        let _ = self.shared.storage_failure.set(e.to_string());
        self.failed = Some((e.kind(), e.to_string()));
        for (reply, result) in acks {
            let result = match result {
                Ok(_) => Err(self.storage_error().unwrap_or(Error::Closed)),
                Err(e) => Err(e),
            };
            reply.send(result);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Ids;

    #[test]
    fn ids_are_v7_with_the_batch_time_and_increase_within_a_millisecond() {
        let mut ids = Ids::new();
        let millis = 1_764_000_000_123;
        let all: Vec<_> = (0..10_000).map(|_| ids.next(millis)).collect();
        for id in &all {
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            let (secs, nanos) = id.get_timestamp().expect("v7 timestamp").to_unix();
            assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, millis);
        }
        // Strictly increasing (the counter only wraps after 2^42 ids, and
        // the test starts far enough below that, or sees one wrap at most).
        let wraps = all.windows(2).filter(|w| w[0] >= w[1]).count();
        assert!(wraps <= 1, "{wraps} decreases");
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn two_sequencers_give_different_ids_for_the_same_millisecond() {
        let (mut a, mut b) = (Ids::new(), Ids::new());
        let from_a: std::collections::HashSet<_> = (0..1000).map(|_| a.next(7)).collect();
        assert!((0..1000).all(|_| !from_a.contains(&b.next(7))));
    }
}
