//! Materialized views and their publication: the double-buffered snapshot
//! swap at the heart of rwlog.
//!
//! Each view keeps two copies of its state: the published one, which readers
//! load through an `arc_swap::ArcSwap`, and a spare. To publish a batch, the
//! sequencer waits (briefly) until no reader holds the spare, applies to it
//! the batch it missed and the new batch, and swaps it in; the old published
//! copy becomes the spare. If a reader keeps the spare too long, the sequencer
//! clones the published copy instead of waiting without bound. Every event is
//! therefore applied twice, so [`View::apply`] must be deterministic.

use std::any::Any;
use std::fmt;
use std::ops::Deref;

use crate::event::Recorded;
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

/// A batch of recorded events, shared by the log and every view.
pub(crate) type Batch<E> = Arc<[Arc<Recorded<E>>]>;

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
}

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

/// How many times to look at the spare before yielding, then before cloning.
const SPINS: u32 = 64;
const YIELDS: u32 = 64;

/// The publishing half of a view: owned by the sequencer thread.
pub(crate) struct Publisher<V, E> {
    shared: Arc<ViewShared<V>>,
    /// The copy readers are not given; `None` after a failure.
    spare: Option<Arc<Snapshot<V>>>,
    /// The batch published after the spare was last brought up to date.
    missed: Option<Batch<E>>,
}

impl<V: View<E>, E> Publisher<V, E> {
    pub(crate) fn new(shared: Arc<ViewShared<V>>) -> Publisher<V, E> {
        let spare = Arc::new(Snapshot::clone(&shared.current.load()));
        Publisher {
            shared,
            spare: Some(spare),
            missed: None,
        }
    }

    /// Brings a copy up to `batch`: the spare if no reader holds it, else a
    /// clone of the published copy.
    fn advance(&mut self, batch: &Batch<E>) -> Arc<Snapshot<V>> {
        if let Some(mut spare) = self.spare.take() {
            if acquire(&mut spare) {
                if let Some(copy) = Arc::get_mut(&mut spare) {
                    let missed = self.missed.take();
                    for e in missed.iter().flat_map(|b| b.iter()).chain(batch.iter()) {
                        copy.apply(e);
                    }
                    return spare;
                }
            }
        }
        self.shared.clones.fetch_add(1, Ordering::Relaxed);
        let mut copy = Snapshot::clone(&self.shared.current.load());
        for e in batch.iter() {
            copy.apply(e);
        }
        Arc::new(copy)
    }
}

/// Waits, boundedly, until this is the only reference to the spare.
/// arc-swap turns every reader's outstanding borrow of a replaced value into
/// a real reference count when it is swapped out, so the count is honest.
fn acquire<T>(spare: &mut Arc<T>) -> bool {
    for i in 0..SPINS + YIELDS {
        if Arc::get_mut(spare).is_some() {
            return true;
        }
        if i < SPINS {
            sync::spin_loop();
        } else {
            sync::yield_now();
        }
    }
    false
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
                let old = self.shared.current.swap(next);
                self.spare = Some(old);
                self.missed = Some(Arc::clone(batch));
                if let Some(snapshot) = kept {
                    self.shared.history.record(snapshot);
                }
            }
            Err(payload) => {
                // The copy being built is torn: drop it; the published copy
                // still holds the last good state.
                self.spare = None;
                self.missed = None;
                let message = sync::panic_message(&*payload);
                tracing::error!(view = %self.shared.name, %message, "view apply panicked; the view stops here");
                let _ = self.shared.failure.set(message);
            }
        }
    }
}
