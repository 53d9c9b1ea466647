//! The event log: every event ever appended, in order, readable without a
//! lock while the sequencer appends.

mod cold;
mod front;
mod iter;
mod memory;

use std::collections::HashMap;
use std::ops::{Bound, RangeBounds};
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::event::{Batch, Event, EventRef, Timestamp};
use crate::position::{Position, StreamId};
use crate::sync::{Index, Mutex};

#[cfg(feature = "durable")]
pub(crate) use cold::Cold;
pub(crate) use iter::LastBatch;
pub use iter::{LogIter, StreamIter};
use memory::{Slots, Table};

/// The log of a [`Runtime`](crate::Runtime), from [`Runtime::log`](crate::Runtime::log).
///
/// Reads take no lock: events at or below [`head`](Log::head) are written
/// once and never change. Iterators read the log as it was when they were
/// made: later appends are not included (use
/// [`Runtime::subscribe`](crate::Runtime::subscribe) to follow the log).
///
/// ```
/// use rwlog::{Event, Position, Runtime};
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct Note(&'static str);
/// impl Event for Note {}
///
/// let rt = Runtime::<Note>::builder().build()?;
/// let w = rt.writer();
/// w.append("a", Note("one"))?;
/// w.append("b", Note("two"))?;
/// w.append("a", Note("three"))?;
///
/// let log = rt.log();
/// assert_eq!(log.head(), Position(3));
/// let all: Vec<_> = log.read_all(..).map(|e| e.payload().0).collect();
/// assert_eq!(all, ["one", "two", "three"]);
/// let back: Vec<_> = log.read_backward(..).map(|e| e.payload().0).collect();
/// assert_eq!(back, ["three", "two", "one"]);
/// let a: Vec<_> = log.read_stream("a", 1).map(|e| (e.version(), e.payload().0)).collect();
/// assert_eq!(a, [(1, "one"), (2, "three")]);
/// # Ok::<(), rwlog::Error>(())
/// ```
pub struct Log<E> {
    slots: Slots<E>,
    /// Stream id -> positions of its events held in memory.
    streams: Index<StreamId, Positions>,
    /// The id and time of the event just before the first held (nil and 0
    /// for none), so a checkpoint or snapshot taken there can still be
    /// checked and time never goes back.
    before_first: Mutex<front::Edge>,
}

/// The positions of one stream's events the log holds, after those it
/// no longer holds (archived): `kept[i]` holds version `archived + i + 1`.
#[derive(Default)]
struct Positions {
    archived: u64,
    kept: Vec<Position>,
}

impl<E> std::fmt::Debug for Log<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("head", &self.head())
            .field("streams", &self.streams.len())
            .finish()
    }
}

impl<E> Log<E> {
    /// Appends a batch whose positions continue the log. Sequencer only.
    pub(crate) fn append(&self, batch: &Batch<E>) {
        // Index first: a reader that finds a position in the index before the
        // head covers it skips it (see `read_stream`), never a wrong event.
        // One update of the shared index per stream in the batch, however
        // its events interleave with other streams' (each update takes a
        // shard lock); each stream's positions stay in order.
        if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
            if first.stream == last.stream && batch.iter().all(|r| r.stream == first.stream) {
                // One stream (one append, or several to the same stream).
                let new = batch.iter().map(|r| r.position);
                self.streams
                    .update(&first.stream, |positions| positions.kept.extend(new));
                self.slots.append(batch);
                return;
            }
        }
        let mut by_stream: HashMap<&StreamId, Vec<Position>, foldhash::fast::RandomState> =
            HashMap::default();
        for run in batch.chunk_by(|a, b| a.stream == b.stream) {
            by_stream
                .entry(&run[0].stream)
                .or_default()
                .extend(run.iter().map(|r| r.position));
        }
        for (stream, new) in by_stream {
            self.streams
                .update(stream, |positions| positions.kept.extend(new));
        }
        self.slots.append(batch);
    }

    /// The position of the last appended event (`Position::ZERO` when empty).
    pub fn head(&self) -> Position {
        Position(self.slots.head())
    }

    /// The event at `position`, or `None` if it is 0 or above the head.
    pub fn get(&self, position: Position) -> Option<EventRef<E>> {
        self.slots.get(position.0)
    }

    /// The batch holding `position`, if it is at or below the head. A batch
    /// is published whole: every position in it is at or below the head.
    pub(crate) fn batch(&self, position: Position) -> Option<Batch<E>> {
        self.slots.batch(position.0)
    }

    /// The current version of a stream (0 if it has no events): the
    /// version of its last event at or below the [`head`](Log::head), so
    /// [`read_stream`](Log::read_stream) called afterwards returns at least
    /// this many events.
    pub fn stream_version(&self, stream: &str) -> u64 {
        // The index is updated before the head is raised (see `append`):
        // leave out the positions of a batch not yet readable. Loading the
        // head first means every position counted is readable.
        let head = self.head();
        self.streams
            .read(stream, |p| {
                let unreadable = p.kept.iter().rev().take_while(|q| **q > head).count();
                p.archived + (p.kept.len() - unreadable) as u64
            })
            .unwrap_or(0)
    }

    /// Events in a range of positions, oldest first. The range is clipped to
    /// the log: `read_all(..)` reads everything. The iterator is
    /// double-ended: `.rev()` reads newest first.
    ///
    /// After [archiving](crate::Runtime::archive_before) the log starts at
    /// [`first`](Log::first), and so does the range; use
    /// [`try_read_all`](Log::try_read_all) to be told when part of it is
    /// gone.
    pub fn read_all(&self, range: impl RangeBounds<Position>) -> LogIter<E> {
        let (head, table) = self.slots.snapshot();
        let start = match range.start_bound() {
            Bound::Included(p) => p.0,
            Bound::Excluded(p) => p.0.saturating_add(1),
            Bound::Unbounded => 1,
        }
        .max(table.first);
        let end = match range.end_bound() {
            Bound::Included(p) => p.0,
            Bound::Excluded(p) => p.0.saturating_sub(1),
            Bound::Unbounded => head,
        }
        .min(head);
        LogIter::new(table, start, end)
    }

    /// [`read_all`](Log::read_all), refusing a range that starts before the
    /// log's [`first`](Log::first) position (an unbounded start reads from
    /// there).
    ///
    /// Errors: [`Error::Archived`] naming the first position still held.
    pub fn try_read_all(&self, range: impl RangeBounds<Position>) -> Result<LogIter<E>> {
        let start = match range.start_bound() {
            Bound::Included(p) => Some(*p),
            Bound::Excluded(p) => Some(p.next()),
            Bound::Unbounded => None,
        };
        let iter = self.read_all(range);
        match start {
            Some(start) if start < Position(iter.first()) => Err(Error::Archived {
                requested: start,
                first_available: Position(iter.first()),
            }),
            _ => Ok(iter),
        }
    }

    /// Events in a range of positions, newest first.
    pub fn read_backward(&self, range: impl RangeBounds<Position>) -> std::iter::Rev<LogIter<E>> {
        self.read_all(range).rev()
    }

    /// The events of one stream from `from_version` on (versions start at 1;
    /// 0 reads from the start too), oldest first.
    ///
    /// After [archiving](crate::Runtime::archive_before) the versions whose
    /// events are gone are skipped; use
    /// [`try_read_stream`](Log::try_read_stream) to be told.
    pub fn read_stream(&self, stream: &str, from_version: u64) -> StreamIter<E> {
        self.stream_from(stream, from_version).1
    }

    /// [`read_stream`](Log::read_stream), refusing to start at a version
    /// whose event was archived.
    ///
    /// Errors: [`Error::Archived`] naming the log's first position.
    pub fn try_read_stream(&self, stream: &str, from_version: u64) -> Result<StreamIter<E>> {
        let (archived, iter) = self.stream_from(stream, from_version);
        if from_version.max(1) <= archived {
            return Err(Error::Archived {
                requested: Position::ZERO,
                first_available: self.first(),
            });
        }
        Ok(iter)
    }

    /// A stream's archived version count, and its events from
    /// `from_version` on that the log holds.
    fn stream_from(&self, stream: &str, from_version: u64) -> (u64, StreamIter<E>) {
        let (head, table) = self.slots.snapshot();
        let (archived, positions) = self
            .streams
            .read(stream, |p| {
                let skip = from_version.saturating_sub(1).saturating_sub(p.archived);
                let skip = usize::try_from(skip).unwrap_or(usize::MAX);
                let kept = p.kept.iter().skip(skip).copied();
                (p.archived, kept.take_while(|q| q.0 <= head).collect())
            })
            .unwrap_or_default();
        (archived, StreamIter::new(table, positions))
    }

    /// The number of distinct streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Events recorded within a time range, oldest first (none if an event
    /// older than a memory window could not be read from disk while looking
    /// for the range's ends: see [`read_failure`](Log::read_failure)).
    pub fn read_time_range(&self, range: impl RangeBounds<SystemTime>) -> LogIter<E> {
        let (head, table) = self.slots.snapshot();
        let start = match range.start_bound() {
            Bound::Included(t) => first_after(&table, head, |ts| ts < stamp(t)),
            Bound::Excluded(t) => first_after(&table, head, |ts| ts <= stamp(t)),
            Bound::Unbounded => Some(table.first),
        };
        let end = match range.end_bound() {
            Bound::Included(t) => first_after(&table, head, |ts| ts <= stamp(t)).map(|p| p - 1),
            Bound::Excluded(t) => first_after(&table, head, |ts| ts < stamp(t)).map(|p| p - 1),
            Bound::Unbounded => Some(head),
        };
        match (start, end) {
            (Some(start), Some(end)) => LogIter::new(table, start, end),
            // A read from disk failed on the way (see `read_failure`).
            _ => LogIter::new(table, 1, 0),
        }
    }

    /// The last position recorded at or before `time`, if any (`None` also
    /// if an event older than a memory window could not be read from disk
    /// on the way: see [`read_failure`](Log::read_failure)).
    pub fn position_at(&self, time: SystemTime) -> Option<Position> {
        let (head, table) = self.slots.snapshot();
        // `None` too if a read from disk failed on the way (see
        // `read_failure`).
        let after = first_after(&table, head, |ts| ts <= stamp(&time))?;
        (after > table.first).then(|| Position(after - 1))
    }
}

impl<E: Event> Log<E> {
    /// Events of one kind ([`Event::event_type`]) in a range of positions,
    /// oldest first.
    pub fn read_by_type<'a>(
        &self,
        event_type: &'a str,
        range: impl RangeBounds<Position>,
    ) -> impl Iterator<Item = EventRef<E>> + 'a {
        self.read_all(range)
            .filter(move |r| r.payload.event_type() == event_type)
    }
}

fn stamp(t: &SystemTime) -> Timestamp {
    Timestamp::from_system_time(*t)
}

/// The first position in `first..=head` whose timestamp fails `before`, or
/// `head + 1` (`None` if an event on the way cannot be read). Timestamps are non-decreasing along the log, so `before` holds
/// for a prefix of it: a binary search finds its end.
fn first_after<E>(table: &Table<E>, head: u64, before: impl Fn(Timestamp) -> bool) -> Option<u64> {
    let (mut lo, mut hi) = (table.first, head + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // `None` if a position at or below the head cannot be read (from
        // disk, below a memory window): no answer rather than a wrong one.
        match before(table.read(mid)?.recorded_at) {
            true => lo = mid + 1,
            false => hi = mid,
        }
    }
    Some(lo)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::event::Recorded;
    use crate::faults::Faults;
    use crate::sync::Arc;
    use uuid::Uuid;

    /// A log of `sizes.len()` batches of those sizes, events alternating
    /// between streams "a" and "b", payload = position.
    fn log_of(sizes: &[u64]) -> Log<u64> {
        let log = Log::new(Faults::default());
        let (mut p, mut versions) = (0, [0, 0]);
        for &n in sizes {
            let batch: Batch<u64> = Arc::new(
                (0..n)
                    .map(|_| {
                        p += 1;
                        let s = (p % 2) as usize;
                        versions[s] += 1;
                        Recorded::for_test(p, ["a", "b"][s], versions[s], p)
                    })
                    .collect(),
            );
            log.append(&batch);
        }
        log
    }

    #[test]
    fn iterators_cross_batches_in_both_directions() {
        let log = log_of(&[1, 5, 1, 1, 7, 2]);
        let head = log.head().0;
        assert_eq!(head, 17);
        let forward: Vec<u64> = log.read_all(..).map(|e| e.payload).collect();
        assert_eq!(forward, (1..=head).collect::<Vec<_>>());
        let backward: Vec<u64> = log.read_backward(..).map(|e| e.payload).collect();
        assert_eq!(backward, (1..=head).rev().collect::<Vec<_>>());
        // Alternating ends: the batch remembered from one end must not
        // answer for the other.
        let mut it = log.read_all(Position(2)..=Position(16));
        let mut ends = Vec::new();
        while let (Some(a), b) = (it.next(), it.next_back()) {
            ends.push(a.payload);
            ends.extend(b.map(|e| e.payload));
        }
        assert_eq!(ends, [2, 16, 3, 15, 4, 14, 5, 13, 6, 12, 7, 11, 8, 10, 9]);
        let a: Vec<(u64, u64)> = log
            .read_stream("a", 3)
            .map(|e| (e.version, e.payload))
            .collect();
        assert_eq!(a, [(3, 6), (4, 8), (5, 10), (6, 12), (7, 14), (8, 16)]);
        assert_eq!(log.stream_version("b"), 9);
        let at = Timestamp::from_nanos(75).to_system_time();
        assert_eq!(log.position_at(at), Some(Position(7)));
    }

    #[test]
    fn a_released_front_is_refused_by_the_checked_reads_and_skipped_by_the_others() {
        let log = log_of(&[1, 5, 1, 1, 7, 2]);
        log.release_before(Position(7));
        assert_eq!(log.first(), Position(7));
        let all: Vec<u64> = log.read_all(..).map(|e| e.payload).collect();
        assert_eq!(all, (7..=17).collect::<Vec<_>>());
        assert!(log.get(Position(6)).is_none());
        assert_eq!(log.get(Position(7)).map(|e| e.payload), Some(7));
        let err = log.try_read_all(Position(3)..).err();
        assert!(matches!(
            err,
            Some(Error::Archived {
                requested: Position(3),
                first_available: Position(7)
            })
        ));
        assert!(log.try_read_all(..).is_ok());
        assert_eq!(
            log.try_read_all(Position(7)..).map(|i| i.count()).ok(),
            Some(11)
        );
        // Stream "a" holds the even positions: versions 1..=3 are gone.
        assert_eq!(log.stream_version("a"), 8);
        let a: Vec<(u64, u64)> = log
            .read_stream("a", 1)
            .map(|e| (e.version, e.payload))
            .collect();
        assert_eq!(a[0], (4, 8));
        assert!(log.try_read_stream("a", 3).is_err());
        assert_eq!(log.try_read_stream("a", 5).map(|i| i.count()).ok(), Some(4));
        let mut before: Vec<_> = log.versions_before(Position(10)).into_iter().collect();
        before.sort();
        assert_eq!(before, [(StreamId::from("a"), 4), (StreamId::from("b"), 5)]);
        let at = Timestamp::from_nanos(45).to_system_time();
        assert_eq!(log.position_at(at), None, "position 4 is archived");
    }

    #[test]
    fn a_log_can_start_after_a_horizon() {
        let log: Log<u64> = Log::starting_at(
            Faults::default(),
            Position(101),
            (Uuid::from_u128(100), Timestamp::from_nanos(5)),
            [(StreamId::from("a"), 50)],
        );
        assert_eq!((log.first(), log.head()), (Position(101), Position(100)));
        assert_eq!(log.stream_version("a"), 50);
        assert_eq!(log.id_at(Position(100)), Some(Uuid::from_u128(100)));
        let batch: Batch<u64> = Arc::new(
            (101..=103)
                .map(|p| Recorded::for_test(p, "a", p - 50, p))
                .collect(),
        );
        log.append(&batch);
        assert_eq!(log.head(), Position(103));
        assert_eq!(log.stream_version("a"), 53);
        let a: Vec<u64> = log.read_stream("a", 52).map(|e| e.version).collect();
        assert_eq!(a, [52, 53]);
        assert_eq!(log.read_all(..).count(), 3);
        assert!(log.try_read_all(Position(100)..).is_err());
    }

    /// Reads from disk that fail: a time lookup across them gives no answer
    /// rather than a wrong one.
    #[cfg(feature = "durable")]
    #[test]
    fn a_time_lookup_that_cannot_read_gives_no_answer() {
        struct Unreadable;
        impl Cold<u64> for Unreadable {
            fn batch(&self, p: u64) -> std::result::Result<Batch<u64>, String> {
                Err(format!("position {p}: gone"))
            }
            fn failure(&self) -> Option<String> {
                Some("gone".into())
            }
            fn release_before(&self, _: u64) {}
        }
        let positions = (1..=100).map(Position).collect();
        let log: Log<u64> = Log::new(Faults::default()).hold_from(
            Position(101),
            1_000,
            Arc::new(Unreadable),
            vec![("a".into(), positions)],
        );
        let batch: Batch<u64> = Arc::new(
            (101..=110)
                .map(|p| Recorded::for_test(p, "a", p, p))
                .collect(),
        );
        log.append(&batch);
        let at = Timestamp::from_nanos(1_055).to_system_time();
        assert_eq!(log.position_at(at), None);
        assert_eq!(log.read_time_range(..at).count(), 0);
        assert_eq!(log.read_failure().as_deref(), Some("gone"));
        // What memory holds reads on.
        assert_eq!(log.read_all(Position(101)..).count(), 10);
    }
}
