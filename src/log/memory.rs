//! The in-memory event store: each batch the sequencer appends is kept
//! whole, its events inline in one vector, and append-only chunks map every
//! position to the batch that holds it.

use crate::event::{Batch, EventRef};
use crate::faults::Faults;
use crate::sync::{Arc, ArcSwap, AtomicU64, Guard, OnceLock, Ordering};

/// Entries per chunk. A chunk is allocated whole when the log reaches it.
/// One under loom, where every entry is an object loom tracks and where
/// every append then grows the chunk tables readers load.
const CHUNK: usize = if cfg!(loom) { 1 } else { 1 << 14 };

/// A growable array of write-once entries that readers index without a lock:
/// fixed-size chunks behind a table of chunks that is replaced (never changed) when
/// it grows.
struct Chunked<T> {
    chunks: ArcSwap<Vec<Arc<[T]>>>,
}

/// The chunks of a [`Chunked`] array, as loaded.
type Chunks<T> = Arc<Vec<Arc<[T]>>>;

impl<T> Chunked<T> {
    fn new() -> Chunked<T> {
        Chunked {
            chunks: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// The chunks, grown (and published) to cover index `i` if they do not
    /// yet. Only the sequencer grows them.
    fn covering(&self, i: usize, fresh: impl Fn() -> T) -> Guard<Vec<Arc<[T]>>> {
        let chunks = self.chunks.load();
        let needed = i / CHUNK + 1;
        if chunks.len() >= needed {
            return chunks;
        }
        let mut grown = Vec::with_capacity(needed.max(chunks.len() * 2));
        grown.extend(chunks.iter().cloned());
        grown.resize_with(needed, || (0..CHUNK).map(|_| fresh()).collect());
        self.chunks.store(Arc::new(grown));
        self.chunks.load()
    }
}

fn entry<T>(chunks: &[Arc<[T]>], i: usize) -> Option<&T> {
    chunks.get(i / CHUNK)?.get(i % CHUNK)
}

/// Append-only storage of recorded events.
///
/// Invariant: for every position `p <= head`, `batch_of[p - 1]` holds a
/// number `b` such that `batches[b - 1]` is written and holds `p`; neither
/// ever changes.
/// Entries above the head are not read. One thread (the sequencer) appends;
/// any number of threads read without a lock.
pub(crate) struct Slots<E> {
    /// The number (from 1) of position `p`'s batch at index `p - 1` (0: not
    /// written yet).
    batch_of: Chunked<AtomicU64>,
    batches: Chunked<OnceLock<Batch<E>>>,
    /// Batches appended so far; written by the sequencer only.
    batch_count: AtomicU64,
    head: AtomicU64,
    faults: Faults,
}

/// What a reader needs to read every position up to the head it loaded
/// first: the two chunk tables, as loaded after the head.
pub(crate) struct Table<E> {
    batch_of: Chunks<AtomicU64>,
    batches: Chunks<OnceLock<Batch<E>>>,
}

impl<E> Slots<E> {
    pub(crate) fn new(faults: Faults) -> Slots<E> {
        Slots {
            batch_of: Chunked::new(),
            batches: Chunked::new(),
            batch_count: AtomicU64::new(0),
            head: AtomicU64::new(0),
            faults,
        }
    }

    /// The highest readable position (0 when empty).
    pub(crate) fn head(&self) -> u64 {
        // Acquire pairs with the Release store in `append`: a reader that sees
        // head >= p also sees position p's entry, its batch and the
        // chunk tables that hold them.
        self.head.load(Ordering::Acquire)
    }

    /// Appends a batch whose positions continue the log. Only the sequencer
    /// calls this, so appends never race each other.
    pub(crate) fn append(&self, batch: &Batch<E>) {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return;
        };
        let number = self.batch_count.load(Ordering::Relaxed) + 1;
        self.batch_count.store(number, Ordering::Relaxed);
        let b = index(number).unwrap_or(usize::MAX);
        let batches = self.batches.covering(b, OnceLock::new);
        let written = entry(&batches, b).map(|slot| slot.set(Arc::clone(batch)));
        debug_assert!(
            matches!(written, Some(Ok(()))),
            "batch {number} not written once"
        );
        let top = index(last.position.0).unwrap_or(usize::MAX);
        let batch_of = self.batch_of.covering(top, || AtomicU64::new(0));
        for p in first.position.0..=last.position.0 {
            // Relaxed: readers reach this entry only through the head,
            // stored with Release below.
            if let Some(e) = index(p).and_then(|i| entry(&batch_of, i)) {
                e.store(number, Ordering::Relaxed);
            }
        }
        // Release pairs with the Acquire load in `head`: the entries and the
        // batch written above are visible to whoever sees the new head.
        let order = if self.faults.relaxed_head() {
            Ordering::Relaxed
        } else {
            Ordering::Release
        };
        self.head.store(last.position.0, order);
    }

    /// The head and a table covering every position up to it.
    pub(crate) fn snapshot(&self) -> (u64, Table<E>) {
        let head = self.head();
        let table = Table {
            batch_of: self.batch_of.chunks.load_full(),
            batches: self.batches.chunks.load_full(),
        };
        (head, table)
    }

    /// The event at `position`, if it is at or below the head.
    pub(crate) fn get(&self, position: u64) -> Option<EventRef<E>> {
        EventRef::new(self.batch(position)?, position)
    }

    /// The batch holding `position`, if it is at or below the head.
    pub(crate) fn batch(&self, position: u64) -> Option<Batch<E>> {
        if position == 0 || position > self.head() {
            return None;
        }
        let (batch_of, batches) = (self.batch_of.chunks.load(), self.batches.chunks.load());
        batch_at(&batch_of, &batches, position)
    }
}

impl<E> Table<E> {
    /// The batch holding a position known to be at or below a head loaded
    /// before this table.
    pub(crate) fn batch(&self, position: u64) -> Option<Batch<E>> {
        batch_at(&self.batch_of, &self.batches, position)
    }

    /// The event at such a position.
    pub(crate) fn read(&self, position: u64) -> Option<EventRef<E>> {
        EventRef::new(self.batch(position)?, position)
    }
}

fn batch_at<E>(
    batch_of: &[Arc<[AtomicU64]>],
    batches: &[Arc<[OnceLock<Batch<E>>]>],
    position: u64,
) -> Option<Batch<E>> {
    let number = entry(batch_of, index(position)?)?.load(Ordering::Relaxed);
    entry(batches, index(number)?)?.get().cloned()
}

/// The array index of a position or batch number (both count from 1);
/// `None` for 0.
fn index(n: u64) -> Option<usize> {
    usize::try_from(n.checked_sub(1)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Recorded;
    use crate::position::Position;

    fn rec(p: u64) -> Recorded<u64> {
        Recorded::for_test(p, "s", p, p * 10)
    }

    fn batch(range: std::ops::RangeInclusive<u64>) -> Batch<u64> {
        Arc::new(range.map(rec).collect())
    }

    #[test]
    fn reads_across_batches_and_chunk_boundaries() {
        let slots = Slots::new(Faults::default());
        let n = (CHUNK * 2 + 3) as u64;
        slots.append(&batch(1..=10));
        assert_eq!(slots.head(), 10);
        assert!(slots.get(11).is_none());
        // Many one-event batches: the batch table grows past a chunk too.
        for p in 11..=(CHUNK as u64 + 20) {
            slots.append(&batch(p..=p));
        }
        slots.append(&batch(CHUNK as u64 + 21..=n));
        assert_eq!(slots.head(), n);
        for p in [
            1,
            10,
            11,
            CHUNK as u64,
            CHUNK as u64 + 1,
            CHUNK as u64 + 21,
            n,
        ] {
            let e = slots.get(p).expect("written");
            assert_eq!((e.position(), e.payload), (Position(p), p * 10));
        }
        assert!(slots.get(0).is_none());
        assert!(slots.get(n + 1).is_none());
        let (head, table) = slots.snapshot();
        assert_eq!(head, n);
        assert_eq!(table.read(n).map(|e| e.payload), Some(n * 10));
        assert_eq!(table.batch(5).map(|b| b.len()), Some(10));
    }
}
