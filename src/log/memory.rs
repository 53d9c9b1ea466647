//! The in-memory event store: each batch the sequencer appends is kept
//! whole, its events inline in one vector, and append-only chunks map every
//! position to the batch that holds it.

use crate::event::{Batch, EventRef};
use crate::faults::Faults;
use crate::sync::{Arc, ArcSwap, AtomicU64, Guard, Mutex, OnceLock, Ordering};

use super::cold::Cold;

/// Entries per chunk. A chunk is allocated whole when the log reaches it.
/// One under loom, where every entry is an object loom tracks and where
/// every append then grows the chunk tables readers load.
const CHUNK: usize = if cfg!(loom) { 1 } else { 1 << 14 };

/// A growable array of write-once entries that readers index without a lock:
/// fixed-size chunks behind a table of chunks that is replaced (never changed) when
/// it grows or lets go of its front.
struct Chunked<T> {
    chunks: ArcSwap<Span<T>>,
    /// Taken by whoever replaces the table (the sequencer growing it, or
    /// the log letting go of its front), so neither loses the other's.
    replacing: Mutex<()>,
}

/// The chunks held: `chunks[k]` is chunk number `base + k`, holding indexes
/// from `(base + k) * CHUNK`. Chunks before `base` are not held (let go, or
/// never made: a log that starts after a horizon costs nothing for it).
pub(crate) struct Span<T> {
    base: usize,
    chunks: Vec<Arc<[T]>>,
}

impl<T> Span<T> {
    /// The number of the first chunk not held at the end.
    fn end(&self) -> usize {
        self.base + self.chunks.len()
    }
}

/// The chunks of a [`Chunked`] array, as loaded.
type Chunks<T> = Arc<Span<T>>;

impl<T> Chunked<T> {
    fn new() -> Chunked<T> {
        Chunked {
            chunks: ArcSwap::from_pointee(Span {
                base: 0,
                chunks: Vec::new(),
            }),
            replacing: Mutex::new(()),
        }
    }

    /// The chunks, grown (and published) to cover index `i` if they do not
    /// yet. Only the sequencer grows them. A table that holds no chunk
    /// starts at the chunk of index `from` (the front the log holds).
    fn covering(&self, i: usize, from: usize, fresh: impl Fn() -> T) -> Guard<Span<T>> {
        let chunks = self.chunks.load();
        let needed = i / CHUNK + 1;
        if chunks.end() >= needed {
            return chunks;
        }
        drop(chunks);
        let _replacing = self.replacing.lock();
        let span = self.chunks.load();
        let base = match span.chunks.is_empty() {
            true => span.base.max(from / CHUNK),
            false => span.base,
        };
        let mut grown = Vec::with_capacity((needed - base).max(span.chunks.len() * 2));
        grown.extend(span.chunks.iter().cloned());
        while base + grown.len() < needed {
            grown.push((0..CHUNK).map(|_| fresh()).collect());
        }
        self.chunks.store(Arc::new(Span {
            base,
            chunks: grown,
        }));
        self.chunks.load()
    }

    /// Lets go of every chunk wholly below index `from` (readers that
    /// loaded the table before keep theirs until they drop it).
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    fn release_below(&self, from: usize) {
        let _replacing = self.replacing.lock();
        let span = self.chunks.load();
        let whole = from / CHUNK;
        if whole <= span.base {
            return;
        }
        let gone = (whole - span.base).min(span.chunks.len());
        self.chunks.store(Arc::new(Span {
            base: whole,
            chunks: span.chunks[gone..].to_vec(),
        }));
    }
}

fn entry<T>(span: &Span<T>, i: usize) -> Option<&T> {
    let k = (i / CHUNK).checked_sub(span.base)?;
    span.chunks.get(k)?.get(i % CHUNK)
}

/// Append-only storage of recorded events.
///
/// Invariant: for every position `first <= p <= head`, `batch_of[p - 1]`
/// holds a number `b` such that `batches[b - 1]` is written and holds `p`;
/// neither changes while `p` is at or above `first`. Positions below
/// `first` (archived, or never held: a log recovered from a horizon) are
/// not read; their chunks are let go.
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
    /// The first position held in memory (1 unless the front was let go).
    first: AtomicU64,
    /// The first position readable: `first`, or below it with a cold
    /// source that reads the positions in between from disk.
    floor: AtomicU64,
    cold: Option<Arc<dyn Cold<E>>>,
    /// With a cold source: how many of the newest events stay in memory
    /// (about: they go a chunk at a time).
    window: u64,
    faults: Faults,
}

/// What a reader needs to read every position up to the head it loaded
/// first: the two chunk tables, as loaded after the head.
pub(crate) struct Table<E> {
    batch_of: Chunks<AtomicU64>,
    batches: Chunks<OnceLock<Batch<E>>>,
    /// The first position readable through this table.
    pub(crate) first: u64,
    /// The first position these chunks hold (the ones from `first` up to
    /// it are read from `cold`).
    held: u64,
    cold: Option<Arc<dyn Cold<E>>>,
}

impl<E> Slots<E> {
    /// An empty store whose first event will be at `first` (1, or the
    /// horizon of a log whose front was archived), so its head is
    /// `first - 1`.
    pub(crate) fn new(faults: Faults, first: u64) -> Slots<E> {
        let first = first.max(1);
        Slots {
            batch_of: Chunked::new(),
            batches: Chunked::new(),
            batch_count: AtomicU64::new(0),
            head: AtomicU64::new(first - 1),
            first: AtomicU64::new(first),
            floor: AtomicU64::new(first),
            cold: None,
            window: u64::MAX,
            faults,
        }
    }

    /// Reads the positions from the first readable one up to `held` from
    /// `cold` instead of memory: the store's first event will be at
    /// `held`. Before anything is appended only.
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    pub(crate) fn hold_from(&mut self, held: u64, window: u64, cold: Arc<dyn Cold<E>>) {
        let held = held.max(self.floor.load(Ordering::Relaxed));
        self.first = AtomicU64::new(held);
        self.head = AtomicU64::new(held - 1);
        self.cold = Some(cold);
        self.window = window;
    }

    /// The first position readable.
    pub(crate) fn first(&self) -> u64 {
        self.floor.load(Ordering::Acquire)
    }

    /// The first position held in memory.
    pub(crate) fn held(&self) -> u64 {
        self.first.load(Ordering::Acquire)
    }

    /// The cold source's last read failure, if any.
    pub(crate) fn cold_failure(&self) -> Option<String> {
        self.cold.as_ref().and_then(|c| c.failure())
    }

    /// With a cold source, lets go of the memory of the events before the
    /// newest `window` once a chunk's worth is past it (they stay readable
    /// from the cold source). The sequencer calls this after appending.
    fn trim(&self) {
        if self.cold.is_none() {
            return;
        }
        let (head, held) = (self.head(), self.held());
        let in_memory = (head + 1).saturating_sub(held);
        if in_memory > self.window.saturating_add(CHUNK as u64) {
            let kept = self.release(head + 1 - self.window);
            if let Some(b) = index(kept) {
                self.compact_batches(b);
            }
        }
    }

    /// Empties the batch table's entries before index `b` in the chunk that
    /// holds it: the batches wholly below the window are freed then, not
    /// only with their whole chunk (16,384 batches, which may hold many
    /// more events than the window). The sequencer's only (no entry of the
    /// table is written meanwhile); readers holding the old chunk keep it.
    fn compact_batches(&self, b: usize) {
        let _replacing = self.batches.replacing.lock();
        let span = self.batches.chunks.load();
        let Some(k) = (b / CHUNK).checked_sub(span.base) else {
            return;
        };
        let Some(chunk) = span.chunks.get(k) else {
            return;
        };
        let cut = b % CHUNK;
        if chunk[..cut].iter().all(|e| e.get().is_none()) {
            return;
        }
        let fresh: Arc<[OnceLock<Batch<E>>]> = chunk
            .iter()
            .enumerate()
            .map(|(j, e)| {
                let kept = OnceLock::new();
                if let Some(batch) = e.get().filter(|_| j >= cut) {
                    let _ = kept.set(Arc::clone(batch));
                }
                kept
            })
            .collect();
        let mut chunks = span.chunks.clone();
        chunks[k] = fresh;
        self.batches.chunks.store(Arc::new(Span {
            base: span.base,
            chunks,
        }));
    }

    /// Lets go of every position below `first` (which must be at most the
    /// head + 1): reads below it find nothing from now on, and the memory
    /// of batches wholly below it is freed once no reader holds them.
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    pub(crate) fn release_before(&self, first: u64) {
        if first <= self.first() {
            return;
        }
        // Raised before the memory goes, as the held front is (see
        // `release`).
        let late = self.faults.late_first();
        if !late {
            self.floor.fetch_max(first, Ordering::Release);
        }
        if first > self.held() {
            let _ = self.release(first);
        }
        if late {
            self.floor.fetch_max(first, Ordering::Release);
        }
        if let Some(cold) = &self.cold {
            cold.release_before(first);
        }
    }

    /// Lets go of the memory below `first` (above the held front).
    /// Returns the number of the first batch kept.
    fn release(&self, first: u64) -> u64 {
        // The new first is stored before the tables lose anything: a reader
        // that loads a table and then the first never reads a position the
        // table no longer holds.
        let late = self.faults.late_first();
        if !late {
            self.first.fetch_max(first, Ordering::Release);
        }
        // The batch holding `first - 1` is published (the caller keeps
        // `first` at most the head + 1; the head is loaded first, so its
        // entries are seen): it and every later batch are kept, the ones
        // numbered before it are wholly below `first`. (Never the batch
        // count: the sequencer may be writing the next batch meanwhile.)
        let head = self.head();
        let number = {
            let batch_of = self.batch_of.chunks.load();
            index(first.saturating_sub(1).min(head))
                .and_then(|i| entry(&batch_of, i))
                .map_or(0, |e| e.load(Ordering::Relaxed))
        };
        if let Some(i) = index(first) {
            self.batch_of.release_below(i);
        }
        if let Some(b) = index(number) {
            self.batches.release_below(b);
        }
        if late {
            self.first.fetch_max(first, Ordering::Release);
        }
        number
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
        let batches = self.batches.covering(b, 0, OnceLock::new);
        let written = entry(&batches, b).map(|slot| slot.set(Arc::clone(batch)));
        debug_assert!(
            matches!(written, Some(Ok(()))),
            "batch {number} not written once"
        );
        let top = index(last.position.0).unwrap_or(usize::MAX);
        let from = index(self.held()).unwrap_or(0);
        let batch_of = self.batch_of.covering(top, from, || AtomicU64::new(0));
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
        self.trim();
    }

    /// The head and a table covering every position up to it.
    pub(crate) fn snapshot(&self) -> (u64, Table<E>) {
        let head = self.head();
        let batch_of = self.batch_of.chunks.load_full();
        let batches = self.batches.chunks.load_full();
        // Loaded after the tables: they hold every position from it on.
        let held = self.held();
        let table = Table {
            batch_of,
            batches,
            first: self.first(),
            held,
            cold: self.cold.clone(),
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
        if position < self.held() {
            return cold_batch(self.cold.as_ref(), self.first(), position);
        }
        batch_at(&batch_of, &batches, position)
    }
}

/// The batch holding `position` from the cold source, if it is at or above
/// the first readable position.
fn cold_batch<E>(cold: Option<&Arc<dyn Cold<E>>>, first: u64, position: u64) -> Option<Batch<E>> {
    if position < first {
        return None;
    }
    cold?.batch(position).ok()
}

impl<E> Table<E> {
    /// The batch holding a position known to be at or below a head loaded
    /// before this table.
    pub(crate) fn batch(&self, position: u64) -> Option<Batch<E>> {
        if position < self.held {
            return cold_batch(self.cold.as_ref(), self.first, position);
        }
        batch_at(&self.batch_of, &self.batches, position)
    }

    /// The event at such a position.
    pub(crate) fn read(&self, position: u64) -> Option<EventRef<E>> {
        EventRef::new(self.batch(position)?, position)
    }
}

fn batch_at<E>(
    batch_of: &Span<AtomicU64>,
    batches: &Span<OnceLock<Batch<E>>>,
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
        let slots = Slots::new(Faults::default(), 1);
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

    #[test]
    fn releasing_the_front_frees_whole_chunks_and_starting_late_allocates_none() {
        let slots = Slots::new(Faults::default(), 1);
        let n = (CHUNK * 3) as u64;
        for start in (1..=n).step_by(100) {
            slots.append(&batch(start..=(start + 99).min(n)));
        }
        let held = slots.batches.chunks.load().chunks.len();
        slots.release_before(CHUNK as u64 * 2 + 5);
        assert_eq!(slots.first(), CHUNK as u64 * 2 + 5);
        let batch_of = slots.batch_of.chunks.load();
        assert_eq!((batch_of.base, batch_of.chunks.len()), (2, 1));
        let batches = slots.batches.chunks.load();
        assert!(batches.chunks.len() <= held);
        assert!(slots.get(CHUNK as u64 * 2 + 4).is_none());
        assert_eq!(slots.get(n).map(|e| e.payload), Some(n * 10));
        let (_, table) = slots.snapshot();
        assert_eq!(table.first, CHUNK as u64 * 2 + 5);

        let late = Slots::new(Faults::default(), n + 1);
        assert_eq!(late.head(), n);
        late.append(&batch(n + 1..=n + 3));
        let chunks = late.batch_of.chunks.load();
        assert_eq!((chunks.base, chunks.chunks.len()), (3, 1));
        assert_eq!(late.get(n + 2).map(|e| e.payload), Some((n + 2) * 10));
    }

    /// Letting go of the front while the sequencer is midway through the
    /// next batch (its number taken, its entries not yet written) keeps
    /// that batch: the cut is made below the batch holding `first - 1`.
    #[test]
    fn releasing_up_to_the_head_keeps_a_batch_being_written() {
        let slots = Slots::new(Faults::default(), 1);
        let n = CHUNK as u64;
        for p in 1..n {
            slots.append(&batch(p..=p));
        }
        // The sequencer's first steps of appending batch n: its number,
        // its slot in the batch table.
        slots.batch_count.store(n, Ordering::Relaxed);
        let b = (n - 1) as usize;
        let table = slots.batches.covering(b, 0, OnceLock::new);
        assert!(entry(&table, b).is_some_and(|slot| slot.set(batch(n..=n)).is_ok()));
        drop(table);
        slots.release_before(n);
        // The sequencer finishes: the batch's entries, then the head.
        let batch_of = slots.batch_of.covering(b, 0, || AtomicU64::new(0));
        entry(&batch_of, b).unwrap().store(n, Ordering::Relaxed);
        slots.head.store(n, Ordering::Release);
        assert_eq!(slots.get(n).map(|e| e.payload), Some(n * 10));
        assert!(slots.get(n - 1).is_none());
    }

    /// A hostile first position costs nothing up front.
    #[test]
    fn a_log_starting_far_out_holds_no_chunks_before_it() {
        let far = (1u64 << 50) + 100;
        let slots: Slots<u64> = Slots::new(Faults::default(), far);
        slots.append(&batch(far..=far + 2));
        assert_eq!(slots.batch_of.chunks.load().chunks.len(), 1);
        assert_eq!(slots.get(far + 1).map(|e| e.payload), Some((far + 1) * 10));
    }

    struct NoCold;

    impl super::Cold<u64> for NoCold {
        fn batch(&self, _: u64) -> std::result::Result<Batch<u64>, String> {
            Err("none".into())
        }
        fn failure(&self) -> Option<String> {
            None
        }
        fn release_before(&self, _: u64) {}
    }

    /// The window lets go of the batches below it, not only of whole
    /// chunks of the batch table (16,384 batches: with 100-event batches,
    /// 1.6M events).
    #[test]
    fn the_window_lets_go_of_the_batches_themselves() {
        let mut slots: Slots<u64> = Slots::new(Faults::default(), 1);
        slots.hold_from(1, 1_000, Arc::new(NoCold));
        let mut early = None;
        for k in 0..10_000u64 {
            let b = batch(k * 100 + 1..=k * 100 + 100);
            if k == 10 {
                early = Some(Arc::clone(&b));
            }
            slots.append(&b);
        }
        assert_eq!(slots.head(), 1_000_000);
        assert!(slots.held() > 1_000_000 - 1_000 - CHUNK as u64);
        let early = early.unwrap();
        assert_eq!(
            Arc::strong_count(&early),
            1,
            "a batch far below the window is still held"
        );
        assert_eq!(slots.get(1_000_000).map(|e| e.payload), Some(10_000_000));
    }
}
