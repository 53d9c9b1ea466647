//! Materialized views and their publication: the double-buffered snapshot
//! swap at the heart of rwlog.
//!
//! Each view keeps two or more copies of its state: the published one, which
//! readers load through an `arc_swap::ArcSwap`, and spares. To publish a
//! batch, the sequencer takes a spare no reader holds, applies to it the
//! batches it missed and the new one, and swaps it in; the old published copy
//! becomes a spare. A reader preempted while holding a copy (common when
//! threads outnumber cores) pins only that copy: the sequencer uses another.
//! Only if every spare is held past a bounded wait does it clone the
//! published copy, so it never waits without bound. A spare that falls more
//! than 65,536 events behind (the newest is always free, so it is never
//! taken) is dropped rather than kept with every batch it missed. Events are
//! therefore applied to several copies, so [`View::apply`] must be
//! deterministic.
//!
//! The number of spares is [`Builder::spare_copies`](crate::Builder::spare_copies)
//! (default 2: three copies of the state in all).

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;

use crate::event::Recorded;
use crate::faults::Faults;
use crate::log::Batch;
use crate::position::Position;
use crate::snapshot::History;
use crate::sync::{self, Arc, ArcSwap, AtomicU64, OnceLock, Ordering};

/// State folded from events: what readers read.
///
/// `apply` must be deterministic: given the same state and event it must
/// make the same change, because rwlog applies every event to both copies of
/// a view (see the [module docs](crate::view)). It must not block for long:
/// it runs on the sequencer thread, before appends are acknowledged.
///
/// If `apply` panics, the view is marked failed: it stops advancing and its
/// readers get [`Error::ViewFailed`](crate::Error::ViewFailed) from every
/// read that waits for a newer position. The log, the writers and the other
/// views go on.
///
/// ```
/// use std::collections::HashMap;
/// use rwlog::{Event, Recorded, View};
///
/// #[derive(Clone, Debug)]
/// enum Account { Deposited(u64), Withdrawn(u64) }
/// impl Event for Account {}
///
/// #[derive(Clone, Default)]
/// struct Balances(HashMap<String, i64>);
///
/// impl View<Account> for Balances {
///     fn apply(&mut self, e: &Recorded<Account>) {
///         let b = self.0.entry(e.stream().to_string()).or_default();
///         match e.payload() {
///             Account::Deposited(n) => *b += *n as i64,
///             Account::Withdrawn(n) => *b -= *n as i64,
///         }
///     }
/// }
/// ```
pub trait View<E>: Clone + Send + Sync + 'static {
    /// Folds one event into the state.
    fn apply(&mut self, event: &Recorded<E>);
}

/// An immutable state of a view, tagged with the log position it reflects:
/// exactly the fold of events `1..=position` over the view's initial state.
///
/// Derefs to the state, so `snapshot.len()` calls the state's method.
///
/// ```
/// use rwlog::{Event, Position, Recorded, Runtime, View};
///
/// #[derive(Clone)]
/// struct Word(&'static str);
/// impl Event for Word {}
/// #[derive(Clone, Default)]
/// struct Words(Vec<&'static str>);
/// impl View<Word> for Words {
///     fn apply(&mut self, e: &Recorded<Word>) { self.0.push(e.payload().0) }
/// }
///
/// let rt = Runtime::<Word>::builder().view("words", Words::default()).build()?;
/// rt.writer().append_batch("w", [Word("a"), Word("b")])?;
/// let then = rt.view_at::<Words>("words", Position(1))?;
/// assert_eq!((then.position(), then.0.len()), (Position(1), 1)); // deref to Words
/// assert_eq!(then.into_state().0, ["a"]);
/// # Ok::<(), rwlog::Error>(())
/// ```
#[derive(Clone)]
pub struct Snapshot<V> {
    pub(crate) position: Position,
    pub(crate) state: V,
}

impl<V> Snapshot<V> {
    /// The position of the last event folded into this state
    /// (`Position::ZERO` for the initial state).
    pub fn position(&self) -> Position {
        self.position
    }

    /// The state.
    pub fn state(&self) -> &V {
        &self.state
    }

    /// Takes the state out.
    pub fn into_state(self) -> V {
        self.state
    }

    pub(crate) fn apply<E>(&mut self, event: &Recorded<E>)
    where
        V: View<E>,
    {
        self.state.apply(event);
        self.position = event.position;
    }
}

impl<V> Deref for Snapshot<V> {
    type Target = V;

    fn deref(&self) -> &V {
        &self.state
    }
}

impl<V: fmt::Debug> fmt::Debug for Snapshot<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("position", &self.position)
            .field("state", &self.state)
            .finish()
    }
}

/// What readers and the runtime share of one view.
///
/// Invariant: `current` only ever moves forward in position, and each value
/// it holds is never mutated after it was stored.
pub(crate) struct ViewShared<V> {
    pub(crate) name: Arc<str>,
    pub(crate) current: Arc<ArcSwap<Snapshot<V>>>,
    failure: OnceLock<String>,
    pub(crate) history: History<V>,
    /// Publications that had to clone because a reader held the spare.
    clones: AtomicU64,
}

impl<V> ViewShared<V> {
    pub(crate) fn new(name: Arc<str>, initial: V, snapshot_every: u64) -> Arc<ViewShared<V>>
    where
        V: Clone,
    {
        let start = Snapshot {
            position: Position::ZERO,
            state: initial,
        };
        Arc::new(ViewShared {
            name,
            history: History::new(snapshot_every, start.clone()),
            current: Arc::new(ArcSwap::from_pointee(start)),
            failure: OnceLock::new(),
            clones: AtomicU64::new(0),
        })
    }

    pub(crate) fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Brings the view up to the end of `events` (a recovered log) before
    /// the sequencer starts: from `base` (a snapshot loaded from disk) if
    /// given, else from the initial state. Keeps snapshots on the way as
    /// publication would. A panicking `apply` fails the view, as it would
    /// live.
    pub(crate) fn recover<E>(&self, base: Option<Snapshot<V>>, events: &[Recorded<E>])
    where
        V: View<E>,
    {
        if base.is_none() && events.is_empty() {
            return;
        }
        let outcome = sync::catch_unwind(|| {
            let mut state = match base {
                Some(b) => {
                    if b.position > Position::ZERO {
                        self.history.record(b.clone());
                    }
                    b
                }
                None => Snapshot::clone(&self.current.load()),
            };
            let start = state.position;
            for e in events.iter().filter(|e| e.position > start) {
                state.apply(e);
                if self.history.due(state.position) {
                    self.history.record(state.clone());
                }
            }
            state
        });
        match outcome {
            Ok(state) => self.current.store(Arc::new(state)),
            Err(payload) => {
                let _ = self.failure.set(sync::panic_message(&*payload));
            }
        }
    }
}

/// Writes a snapshot of a view to disk (persisted views only), given the id
/// of the event at its position.
pub(crate) type Persist<V> = Box<dyn Fn(&Snapshot<V>, uuid::Uuid) -> std::io::Result<()> + Send>;

/// The type-erased face of a view, for stats and lookups by name.
pub(crate) trait ViewStatus: Send + Sync {
    fn name(&self) -> &str;
    fn position(&self) -> Position;
    fn failure(&self) -> Option<&str>;
    fn clones(&self) -> u64;
    fn snapshots_kept(&self) -> usize;
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn type_name(&self) -> &'static str;
}

impl<V: Send + Sync + 'static> ViewStatus for ViewShared<V> {
    fn name(&self) -> &str {
        &self.name
    }

    fn position(&self) -> Position {
        self.current.load().position
    }

    fn failure(&self) -> Option<&str> {
        ViewShared::failure(self)
    }

    fn clones(&self) -> u64 {
        self.clones.load(Ordering::Relaxed)
    }

    fn snapshots_kept(&self) -> usize {
        self.history.len()
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<V>()
    }
}

/// The sequencer's side of one view.
pub(crate) trait ViewDriver<E>: Send {
    /// Applies a batch and publishes the result once.
    fn publish(&mut self, batch: &Batch<E>);
}

/// How many times to look for a free spare before yielding, then before
/// cloning.
const SPINS: u32 = sync::budget(64);
const YIELDS: u32 = sync::budget(64);

/// The most events an older spare may fall behind the published copy. While
/// the newest spare is free (no reader holds it) the older ones are never
/// taken, and every batch they missed is kept to catch them up: without a
/// bound, that list grows for as long as the runtime runs, and the first
/// publication that does take such a spare replays all of it. Past this
/// lag the spare is dropped instead; should all spares be held later, the
/// pool grows again by a clone.
const MAX_LAG: u64 = 1 << 16;

/// The publishing half of a view: owned by the sequencer thread.
///
/// Invariant: every spare's position is a batch boundary at or below the
/// published position, every spare but the newest is at most [`MAX_LAG`]
/// events behind it, and `recent` holds every batch published after the
/// oldest spare's position, in order.
pub(crate) struct Publisher<V, E> {
    shared: Arc<ViewShared<V>>,
    /// Retired copies readers may still hold, oldest first; empty after a
    /// failure.
    spares: Vec<Arc<Snapshot<V>>>,
    /// The batches the spares missed.
    recent: VecDeque<Batch<E>>,
    /// The most spares kept: a reader preempted while holding one copy then
    /// costs nothing as long as another is free.
    max_spares: usize,
    faults: Faults,
    persist: Option<Persist<V>>,
}

impl<V: View<E>, E> Publisher<V, E> {
    pub(crate) fn new(
        shared: Arc<ViewShared<V>>,
        max_spares: usize,
        faults: Faults,
        persist: Option<Persist<V>>,
    ) -> Publisher<V, E> {
        let spare = Arc::new(Snapshot::clone(&shared.current.load()));
        Publisher {
            shared,
            spares: vec![spare],
            recent: VecDeque::new(),
            max_spares: max_spares.max(1),
            faults,
            persist,
        }
    }

    /// Brings a copy up to `batch`: a free spare (newest first, it has the
    /// least to catch up), else, after a bounded wait, a clone of the
    /// published copy.
    fn advance(&mut self, batch: &Batch<E>) -> Arc<Snapshot<V>> {
        if let Some(mut spare) = self.take_free_spare() {
            if let Some(copy) = Arc::get_mut(&mut spare) {
                let behind = copy.position;
                // `recent` is in position order: skip what the copy has.
                let from = self
                    .recent
                    .partition_point(|b| b.last().is_none_or(|e| e.position <= behind));
                let missed = self.recent.range(from..);
                for e in missed.flat_map(|b| b.iter()).chain(batch.iter()) {
                    copy.apply(e);
                }
                return spare;
            }
        }
        self.shared.clones.fetch_add(1, Ordering::Relaxed);
        let mut copy = Snapshot::clone(&self.shared.current.load());
        for e in batch.iter() {
            copy.apply(e);
        }
        Arc::new(copy)
    }

    /// Removes and returns a spare no reader holds. The newest spare is
    /// worth a few spins (it is one batch behind; readers hold a copy for
    /// nanoseconds unless preempted); then any free spare, newest first;
    /// while the pool may still grow, give up there (the caller clones and
    /// the pool gains a copy); once it is full, keep looking for the whole
    /// bounded budget.
    fn take_free_spare(&mut self) -> Option<Arc<Snapshot<V>>> {
        let newest = self.spares.len().checked_sub(1)?;
        for _ in 0..SPINS {
            if Arc::get_mut(&mut self.spares[newest]).is_some() {
                return self.spares.pop();
            }
            sync::spin_loop();
        }
        let patience = if self.spares.len() < self.max_spares {
            1
        } else {
            YIELDS
        };
        for _ in 0..patience {
            // arc-swap turns every reader's outstanding borrow of a replaced
            // value into a real reference count when it is swapped out, so
            // `get_mut` is honest about readers.
            if let Some(free) = (0..self.spares.len())
                .rev()
                .find(|&k| Arc::get_mut(&mut self.spares[k]).is_some())
            {
                return Some(self.spares.remove(free));
            }
            sync::yield_now();
        }
        None
    }

    /// Under the `torn_publish` fault, the published state with only the
    /// first half of `batch` applied, tagged with the batch's last position.
    fn torn(&self, batch: &Batch<E>) -> Option<Arc<Snapshot<V>>> {
        if !self.faults.torn_publish() || batch.len() < 2 {
            return None;
        }
        let mut torn = Snapshot::clone(&self.shared.current.load());
        for e in &batch[..batch.len() / 2] {
            torn.apply(e);
        }
        torn.position = batch.last()?.position;
        Some(Arc::new(torn))
    }

    /// Takes the copy just replaced as a spare and forgets what no spare
    /// needs any more.
    fn retire(&mut self, old: Arc<Snapshot<V>>, batch: &Batch<E>) {
        self.spares.push(old);
        if self.spares.len() > self.max_spares {
            // The oldest is held by a reader: let it go with them.
            self.spares.remove(0);
        }
        // Let go of older spares that fell more than `MAX_LAG` behind (the
        // newest, just retired, is one batch behind and always stays).
        let published = batch.last().map_or(0, |e| e.position.0);
        if let Some(newest) = self.spares.pop() {
            self.spares
                .retain(|s| published.saturating_sub(s.position.0) <= MAX_LAG);
            self.spares.push(newest);
        }
        self.recent.push_back(Arc::clone(batch));
        let oldest = self
            .spares
            .iter()
            .map(|s| s.position)
            .min()
            .unwrap_or(Position::ZERO);
        while self
            .recent
            .front()
            .is_some_and(|b| b.last().is_none_or(|e| e.position <= oldest))
        {
            self.recent.pop_front();
        }
    }
}

impl<V: View<E>, E: Send + Sync + 'static> ViewDriver<E> for Publisher<V, E> {
    fn publish(&mut self, batch: &Batch<E>) {
        if self.shared.failure.get().is_some() || batch.is_empty() {
            return;
        }
        let outcome = sync::catch_unwind(|| {
            let next = self.advance(batch);
            let kept = self
                .shared
                .history
                .due(next.position)
                .then(|| (*next).clone());
            (next, kept)
        });
        match outcome {
            Ok((next, kept)) => {
                let old = match self.torn(batch) {
                    // The broken variant: a half-applied state is visible,
                    // tagged with the batch's final position.
                    Some(torn) => {
                        let old = self.shared.current.swap(torn);
                        drop(self.shared.current.swap(next));
                        old
                    }
                    None => self.shared.current.swap(next),
                };
                self.retire(old, batch);
                if let Some(snapshot) = kept {
                    let last_id = batch.last().map(|e| e.id);
                    if let (Some(persist), Some(id)) = (&self.persist, last_id) {
                        // The batch is already durable; a snapshot that
                        // fails to write costs only replay time on reopen.
                        if let Err(e) = persist(&snapshot, id) {
                            tracing::warn!(view = %self.shared.name, error = %e, "could not write a snapshot");
                        }
                    }
                    self.shared.history.record(snapshot);
                }
            }
            Err(payload) => {
                // The copy being built is torn: drop it; the published copy
                // still holds the last good state.
                self.spares.clear();
                self.recent.clear();
                let message = sync::panic_message(&*payload);
                tracing::error!(view = %self.shared.name, %message, "view apply panicked; the view stops here");
                let _ = self.shared.failure.set(message);
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::event::Recorded;

    #[derive(Clone, Default)]
    struct Sum(u64);

    impl View<u64> for Sum {
        fn apply(&mut self, e: &Recorded<u64>) {
            self.0 += e.payload;
        }
    }

    fn batch(from: u64, n: u64) -> Batch<u64> {
        Arc::new(
            (from..from + n)
                .map(|p| Recorded::for_test(p, "s", p, p))
                .collect(),
        )
    }

    #[test]
    fn an_unused_spare_does_not_make_the_publisher_keep_every_batch() {
        let shared = ViewShared::new(Arc::from("sum"), Sum::default(), 0);
        let mut publisher: Publisher<Sum, u64> =
            Publisher::new(Arc::clone(&shared), 2, Faults::default(), None);
        let mut next = 1;
        publisher.publish(&batch(next, 1));
        next += 1;
        // A reader holds the published copy over two publications: the pool
        // grows to two spares by a clone.
        let held = shared.current.load_full();
        for _ in 0..2 {
            publisher.publish(&batch(next, 1));
            next += 1;
        }
        drop(held);
        assert_eq!(
            (
                publisher.spares.len(),
                shared.clones.load(Ordering::Relaxed)
            ),
            (2, 1)
        );
        // From here no reader holds a copy: the newest spare is always free,
        // so the older one is never taken to catch up.
        for _ in 0..200_000 {
            publisher.publish(&batch(next, 1));
            next += 1;
        }
        let expected: u64 = (1..next).sum();
        assert_eq!(shared.current.load().0, expected);
        let kept: usize = publisher.recent.iter().map(|b| b.len()).sum();
        assert!(
            kept <= MAX_LAG as usize,
            "{kept} events kept for a stale spare"
        );
        // Readers holding copies again: every publication is still exact.
        for _ in 0..3 {
            let held = shared.current.load_full();
            for _ in 0..3 {
                publisher.publish(&batch(next, 3));
                next += 3;
                assert_eq!(shared.current.load().0, (1..next).sum::<u64>());
            }
            drop(held);
        }
    }
}
