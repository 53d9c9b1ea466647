//! Views: state folded from events, published as immutable snapshots.
//!
//! [`View`] is what users implement; [`Snapshot`] is what readers load.
//! The sequencer publishes each view through its publisher (`publisher`);
//! the runtime keeps copies for time travel (`history`).

mod history;
mod key;
mod map;
mod publisher;

pub(crate) use history::{replay, History};
pub use key::ViewKey;
pub use map::{Map, MapEvent};
pub(crate) use publisher::Publisher;

use std::any::Any;
use std::fmt;
use std::ops::Deref;

use crate::event::{Batch, Recorded};
use crate::position::Position;
use crate::sync::{self, Arc, ArcSwap, AtomicU64, OnceLock, Ordering};

/// State folded from events: what readers read.
///
/// `apply` must be deterministic: given the same state and event it must
/// make the same change, because rwlog applies every event to several
/// copies of a view. It must not block for long: it runs wherever the
/// sequencer runs (a writer's thread with [`Sequencing::Combining`](crate::Sequencing),
/// the sequencer thread otherwise), before appends are acknowledged.
///
/// # How a view is published
///
/// Each view keeps several copies of its state: the published one, which
/// readers load with one atomic load, and up to
/// [`Builder::spare_copies`](crate::Builder::spare_copies) spares (default
/// 2: three copies in all). To publish a batch, the sequencer takes a spare
/// no reader holds, applies to it the batches it missed and the new one,
/// and swaps it in; the copy it replaced becomes a spare. A reader
/// preempted while holding a copy pins only that copy. Only if every spare
/// is held past a bounded wait does the sequencer clone the published copy,
/// so it never waits for a reader without bound. A spare that falls more
/// than 65,536 events behind is let go rather than kept with every batch it
/// missed.
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
pub(crate) struct ViewState<V> {
    pub(crate) name: Arc<str>,
    pub(crate) current: Arc<ArcSwap<Snapshot<V>>>,
    failure: OnceLock<String>,
    pub(crate) history: History<V>,
    /// Publications that had to clone because a reader held the spare.
    clones: AtomicU64,
}

impl<V> ViewState<V> {
    pub(crate) fn new(name: Arc<str>, initial: V, history: HistoryBound) -> Arc<ViewState<V>>
    where
        V: Clone,
    {
        let start = Snapshot {
            position: Position::ZERO,
            state: initial,
        };
        Arc::new(ViewState {
            name,
            history: History::new(history.every, history.keep, start.clone()),
            current: Arc::new(ArcSwap::from_pointee(start)),
            failure: OnceLock::new(),
            clones: AtomicU64::new(0),
        })
    }

    pub(crate) fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Brings the view up to the head of `log` (as recovered) before the
    /// sequencer starts: from `base` (a snapshot loaded from disk) if
    /// given, else from the initial state. Keeps snapshots on the way as
    /// publication would. A panicking `apply` fails the view, as it would
    /// live.
    pub(crate) fn recover<E>(&self, base: Option<Snapshot<V>>, log: &crate::log::Log<E>)
    where
        V: View<E>,
    {
        let from = base.as_ref().map_or(Position::ZERO, |b| b.position);
        let events = log.read_all(from.next()..);
        if base.is_none() && events.len() == 0 {
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
            events.for_each_ref(|e| {
                state.apply(e);
                if self.history.due(state.position) {
                    self.history.record(state.clone());
                }
            });
            state
        });
        match outcome {
            Ok(state) => {
                // Short of the head: a read from disk failed on the way (a
                // log with a memory window), and the view must not go on
                // from a state that lacks events.
                if state.position < log.head() {
                    let why = log.read_failure().unwrap_or_default();
                    let _ = self.failure.set(format!(
                        "the events after position {} could not be read to rebuild it: {why}",
                        state.position
                    ));
                }
                self.current.store(Arc::new(state));
            }
            Err(payload) => {
                let _ = self.failure.set(sync::panic_message(&*payload));
            }
        }
    }
}

/// Writes a snapshot of a view to disk (persisted views only), given the id
/// of the event at its position, and prunes the older ones.
pub(crate) type Persist<V> = Box<dyn Fn(&Snapshot<V>, uuid::Uuid) -> std::io::Result<()> + Send>;

/// The in-memory copies a view keeps for time travel: one about every
/// `every` events (0: none), at most `keep` of them (0: no bound).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HistoryBound {
    pub(crate) every: u64,
    pub(crate) keep: usize,
}

/// A persisted view's snapshots on disk: `write` about every `every`
/// events (0: never), counted from `last`, the position of the newest one.
pub(crate) struct DiskSnapshots<V> {
    pub(crate) write: Persist<V>,
    pub(crate) every: u64,
    pub(crate) last: u64,
}

impl<V> DiskSnapshots<V> {
    /// Whether a snapshot should be written now that the view reached
    /// `position`.
    pub(crate) fn due(&self, position: Position) -> bool {
        crosses(self.every, self.last, position.0)
    }
}

/// Whether a view that reached `position` has crossed a multiple of `every`
/// since `last` (the position of its last copy); never for `every == 0`.
pub(crate) fn crosses(every: u64, last: u64, position: u64) -> bool {
    every > 0 && position / every > last / every
}

/// A view of any state type: what the runtime keeps of each view, for
/// stats and lookups by name.
pub(crate) trait AnyView: Send + Sync {
    fn name(&self) -> &str;
    fn position(&self) -> Position;
    fn failure(&self) -> Option<&str>;
    fn clones(&self) -> u64;
    fn snapshots_kept(&self) -> usize;
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn type_name(&self) -> &'static str;
}

impl<V: Send + Sync + 'static> AnyView for ViewState<V> {
    fn name(&self) -> &str {
        &self.name
    }

    fn position(&self) -> Position {
        self.current.load().position
    }

    fn failure(&self) -> Option<&str> {
        ViewState::failure(self)
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

    /// A persisted view's newest snapshot on disk (its position); `None`
    /// for a view in memory only.
    fn on_disk(&self) -> Option<Position> {
        None
    }
}
