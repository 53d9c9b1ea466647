//! Where the log starts and what it keeps of what came before: a log that
//! starts after an archived front (a horizon) or a restart point, the
//! events older than a memory window read from disk, and letting go of the
//! front when it is archived.

use uuid::Uuid;

use crate::event::Timestamp;
use crate::position::{Position, StreamId};
use crate::sync::{Index, Mutex};

#[cfg(feature = "durable")]
use super::cold::Cold;
use super::memory::Slots;
use super::{Log, Positions};

/// The event just before a first position: the first position, and the id
/// and time of the event before it.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "durable"), allow(dead_code))]
pub(super) struct Edge {
    pub(super) first: Position,
    pub(super) id: Uuid,
    pub(super) time: Timestamp,
}

impl<E> Log<E> {
    pub(crate) fn new(faults: crate::faults::Faults) -> Log<E> {
        let before = (Uuid::nil(), Timestamp::from_nanos(0));
        Log::starting_at(faults, Position::FIRST, before, std::iter::empty())
    }

    /// An empty log whose first event will be at `first`, the horizon of a
    /// log whose front was archived, with each stream's version before it.
    pub(crate) fn starting_at(
        faults: crate::faults::Faults,
        first: Position,
        before_first: (Uuid, Timestamp),
        versions: impl IntoIterator<Item = (StreamId, u64)>,
    ) -> Log<E> {
        let streams = Index::new();
        for (stream, version) in versions {
            streams.update(&stream, |p: &mut Positions| p.archived = version);
        }
        Log {
            slots: Slots::new(faults, first.0),
            streams,
            before_first: Mutex::new(Edge {
                first: Position(first.0.max(1)),
                id: before_first.0,
                time: before_first.1,
            }),
        }
    }

    /// Reads the positions from [`first`](Log::first) up to `held` from
    /// `cold` (a durable log's segments), keeping about the newest
    /// `window` events in memory from then on; `streams` are the positions
    /// of each stream's events from the first position up to `held`.
    /// Before anything is appended only.
    #[cfg(feature = "durable")]
    pub(crate) fn hold_from(
        mut self,
        held: Position,
        window: u64,
        cold: crate::sync::Arc<dyn Cold<E>>,
        streams: Vec<(StreamId, Vec<Position>)>,
    ) -> Log<E> {
        self.slots.hold_from(held.0, window, cold);
        for (stream, positions) in streams {
            self.streams.update(&stream, |p| p.kept.extend(positions));
        }
        self
    }

    /// The first position held in memory: the same as [`first`](Log::first)
    /// unless the log keeps a [memory window](crate::Storage::memory_window),
    /// whose older events are read from disk.
    pub fn in_memory_from(&self) -> Position {
        Position(self.slots.held())
    }

    /// Why a read of events older than the memory window last failed (a
    /// durable log with [`Storage::memory_window`](crate::Storage::memory_window)
    /// reads them from its segment files): such a read finds nothing, so a
    /// [`read_all`](Log::read_all) or a subscription ends early. `None` if
    /// no read failed.
    pub fn read_failure(&self) -> Option<String> {
        self.slots.cold_failure()
    }

    /// The id of the event at `position`, also for the one just before
    /// [`first`](Log::first).
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    pub(crate) fn id_at(&self, position: Position) -> Option<Uuid> {
        let edge = *self.before_first.lock();
        if position.next() == edge.first && position > Position::ZERO {
            return Some(edge.id);
        }
        self.get(position).map(|e| e.id)
    }

    /// The time of the last event, also when the log holds none after its
    /// horizon (0 for an empty log).
    pub(crate) fn last_time(&self) -> Timestamp {
        match self.get(self.head()) {
            Some(e) => e.recorded_at,
            None => self.before_first.lock().time,
        }
    }

    /// The first position the log holds: 1, unless the positions before it
    /// were archived (see [`Runtime::archive_before`](crate::Runtime::archive_before)).
    /// Reads start there; the `try_` reads refuse a range that starts
    /// before it with [`Error::Archived`](crate::Error::Archived).
    pub fn first(&self) -> Position {
        Position(self.slots.first())
    }

    /// Lets go of every position below `first` (at most the head + 1):
    /// reads, stream reads and time lookups start there from now on.
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    pub(crate) fn release_before(&self, first: Position) {
        let first = Position(first.0.min(self.head().0 + 1));
        if first <= self.first() {
            return;
        }
        if let Some(e) = self.get(Position(first.0 - 1)) {
            *self.before_first.lock() = Edge {
                first,
                id: e.id,
                time: e.recorded_at,
            };
        }
        // The stream index first: a reader loads the chunk tables before
        // it reads the index, so the positions it finds there are in the
        // tables it holds.
        self.streams.for_each(|_, p| {
            let gone = p.kept.partition_point(|q| *q < first);
            p.archived += gone as u64;
            p.kept.drain(..gone);
        });
        self.slots.release_before(first.0);
    }

    /// Lets go of every position below `first`, as archiving does: for the
    /// loom model of a reader racing it (loom builds only).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn release_before_for_model(&self, first: Position) {
        self.release_before(first);
    }

    /// Every stream's version counting only events before `position`.
    /// Exact for a position in `first..=head + 1`.
    pub(crate) fn versions_before(&self, position: Position) -> Vec<(StreamId, u64)> {
        let mut versions = Vec::with_capacity(self.streams.len());
        self.streams.for_each(|stream, p| {
            let held = p.kept.partition_point(|q| *q < position) as u64;
            versions.push((stream.clone(), p.archived + held));
        });
        versions
    }
}
