//! The in-memory event store: append-only chunks of write-once slots.

use crate::event::Recorded;
use crate::faults::Faults;
use crate::sync::{Arc, ArcSwap, AtomicU64, OnceLock, Ordering};

/// Slots per chunk. A chunk is allocated whole when the log reaches it.
/// Small under loom, where every slot is an object loom tracks.
const CHUNK: usize = if cfg!(loom) { 4 } else { 1 << 14 };

type Slot<E> = OnceLock<Arc<Recorded<E>>>;

/// One fixed-size run of slots.
pub(crate) struct Chunk<E> {
    slots: Box<[Slot<E>]>,
}

impl<E> Chunk<E> {
    fn new() -> Chunk<E> {
        Chunk {
            slots: (0..CHUNK).map(|_| OnceLock::new()).collect(),
        }
    }
}

/// The chunk directory: chunk `i` holds positions `i * CHUNK + 1 ..= (i + 1) * CHUNK`.
pub(crate) type Directory<E> = Arc<Vec<Arc<Chunk<E>>>>;

/// Append-only storage of recorded events.
///
/// Invariant: every slot at a position `<= head` is written and never
/// changes; slots above `head` are not read. One thread (the sequencer)
/// appends; any number of threads read without a lock.
pub(crate) struct Slots<E> {
    dir: ArcSwap<Vec<Arc<Chunk<E>>>>,
    head: AtomicU64,
    faults: Faults,
}

impl<E> Slots<E> {
    pub(crate) fn new(faults: Faults) -> Slots<E> {
        Slots {
            dir: ArcSwap::from_pointee(Vec::new()),
            head: AtomicU64::new(0),
            faults,
        }
    }

    /// The highest readable position (0 when empty).
    pub(crate) fn head(&self) -> u64 {
        // Acquire pairs with the Release store in `append`: a reader that sees
        // head >= p also sees slot p written and the directory that holds it.
        self.head.load(Ordering::Acquire)
    }

    /// Appends events whose positions continue the log. Only the sequencer
    /// calls this, so appends never race each other.
    pub(crate) fn append(&self, batch: &[Arc<Recorded<E>>]) {
        let Some(last) = batch.last() else { return };
        let mut dir = self.dir.load_full();
        let needed = usize::try_from(last.position.0)
            .unwrap_or(usize::MAX)
            .div_ceil(CHUNK);
        if dir.len() < needed {
            let mut grown = Vec::with_capacity(needed.max(dir.len() * 2));
            grown.extend(dir.iter().cloned());
            grown.resize_with(needed, || Arc::new(Chunk::new()));
            dir = Arc::new(grown);
            // Readers load the directory only after loading the head, and the
            // head store below is Release, so they see this directory.
            self.dir.store(Arc::clone(&dir));
        }
        for rec in batch {
            let (c, s) = locate(rec.position.0);
            let written = dir[c].slots[s].set(Arc::clone(rec));
            debug_assert!(written.is_ok(), "slot {} written twice", rec.position);
        }
        // Release pairs with the Acquire load in `head`: the slots written
        // above are visible to whoever sees the new head.
        let order = if self.faults.relaxed_head() {
            Ordering::Relaxed
        } else {
            Ordering::Release
        };
        self.head.store(last.position.0, order);
    }

    /// The head and a directory covering every position up to it.
    pub(crate) fn snapshot(&self) -> (u64, Directory<E>) {
        let head = self.head();
        (head, self.dir.load_full())
    }

    /// The event at `position`, if it is at or below the head.
    pub(crate) fn get(&self, position: u64) -> Option<Arc<Recorded<E>>> {
        if position == 0 || position > self.head() {
            return None;
        }
        read(&self.dir.load(), position)
    }
}

/// Reads a position known to be at or below a head loaded before `dir`.
pub(crate) fn read<E>(dir: &[Arc<Chunk<E>>], position: u64) -> Option<Arc<Recorded<E>>> {
    let (c, s) = locate(position);
    dir.get(c)?.slots.get(s)?.get().cloned()
}

fn locate(position: u64) -> (usize, usize) {
    let index = usize::try_from(position - 1).unwrap_or(usize::MAX);
    (index / CHUNK, index % CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timestamp;
    use crate::position::{Position, StreamId};

    fn rec(p: u64) -> Arc<Recorded<u64>> {
        Arc::new(Recorded {
            position: Position(p),
            stream: StreamId::from("s"),
            version: p,
            id: uuid::Uuid::nil(),
            recorded_at: Timestamp::from_nanos(p),
            schema_version: 1,
            metadata: None,
            payload: p * 10,
        })
    }

    #[test]
    fn reads_across_chunk_boundaries() {
        let slots = Slots::new(Faults::default());
        let n = (CHUNK * 2 + 3) as u64;
        let batch: Vec<_> = (1..=n).map(rec).collect();
        slots.append(&batch[..10]);
        assert_eq!(slots.head(), 10);
        assert!(slots.get(11).is_none());
        slots.append(&batch[10..]);
        assert_eq!(slots.head(), n);
        for p in [1, CHUNK as u64, CHUNK as u64 + 1, n] {
            assert_eq!(slots.get(p).map(|r| r.payload), Some(p * 10));
        }
        assert!(slots.get(0).is_none());
        assert!(slots.get(n + 1).is_none());
    }
}
