//! Readers: lock-free loads of a view's published snapshot, at the
//! consistency level each read asks for.

use std::fmt;
use std::ops::Deref;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::Timestamp;
use crate::position::Position;
use crate::signal::Signal;
use crate::sync::{Arc, Cache, Guard};
use crate::view::{Snapshot, ViewState};

mod wait;

/// A boxed future of a [`Timeline`]'s.
pub(crate) type Pending<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What a reader needs of the runtime, without its event type.
pub(crate) trait Timeline: Send + Sync {
    /// The log's head: every acknowledged append is at or below it.
    fn head(&self) -> Position;
    /// The head of the whole log: for a log other processes append to, the
    /// database's (a round trip, which also wakes the sequencer to adopt
    /// what it has not); else [`head`](Timeline::head).
    fn shared_head(&self) -> Result<Position>;
    /// [`shared_head`](Timeline::shared_head) without blocking the thread.
    fn shared_head_async(&self) -> Pending<'_, Result<Position>>;
    /// When the event at `position` was recorded.
    fn recorded_at(&self, position: Position) -> Option<Timestamp>;
    /// Notified after every published batch and when the sequencer exits.
    fn signal(&self) -> &Signal;
    /// Whether the sequencer has exited: nothing will be published again.
    fn exited(&self) -> bool;
    /// Why the log's storage failed, if it did: nothing more is adopted or
    /// appended.
    fn storage_failure(&self) -> Option<String>;
}

/// Whether a view follows the log; from [`Reader::health`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// The view follows the log.
    Advancing,
    /// Its `apply` panicked: it stays at its last good snapshot.
    Failed {
        /// The position of that snapshot.
        position: Position,
        /// The panic's message.
        message: String,
    },
}

/// How far behind the head a [`Reader::bounded`] read may be.
///
/// ```
/// use rwlog::Staleness;
/// use std::time::Duration;
/// let by_count = Staleness::positions(100);
/// let by_time = Staleness::time(Duration::from_millis(5));
/// assert_ne!(by_count, by_time);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Staleness {
    /// At most this many positions behind the head.
    Positions(u64),
    /// Missing no event recorded more than this long ago.
    Time(Duration),
}

impl Staleness {
    /// At most `n` positions behind the head.
    pub const fn positions(n: u64) -> Staleness {
        Staleness::Positions(n)
    }

    /// Missing no event recorded more than `d` ago.
    pub const fn time(d: Duration) -> Staleness {
        Staleness::Time(d)
    }
}

/// A loaded snapshot, borrowed from the view without touching any counter
/// shared with other readers. Derefs to [`Snapshot`], which derefs to the
/// state.
///
/// Hold it briefly: while it is held, the sequencer cannot reuse this copy
/// and uses another spare (or, if all are held, clones the state). To keep
/// a snapshot for long, take it out with [`into_arc`](SnapshotRef::into_arc).
///
/// ```
/// use rwlog::{Event, Recorded, Runtime, View};
///
/// #[derive(Clone)]
/// struct Add(i64);
/// impl Event for Add {}
/// #[derive(Clone, Default)]
/// struct Sum(i64);
/// impl View<Add> for Sum {
///     fn apply(&mut self, e: &Recorded<Add>) { self.0 += e.payload().0 }
/// }
///
/// let rt = Runtime::<Add>::builder().view("sum", Sum::default()).build()?;
/// let r = rt.reader::<Sum>("sum")?;
/// rt.writer().append("n", Add(2))?;
/// let kept = r.latest().into_arc();          // an owned, immutable snapshot
/// rt.writer().append("n", Add(3))?;
/// assert_eq!((kept.position().0, kept.0), (1, 2)); // unchanged
/// assert_eq!(r.latest().0, 5);
/// # Ok::<(), rwlog::Error>(())
/// ```
pub struct SnapshotRef<V>(Guard<Snapshot<V>>);

impl<V> SnapshotRef<V> {
    /// Turns the borrow into an owned, shareable `Arc`.
    pub fn into_arc(self) -> Arc<Snapshot<V>> {
        Guard::into_inner(self.0)
    }
}

impl<V> Deref for SnapshotRef<V> {
    type Target = Snapshot<V>;

    fn deref(&self) -> &Snapshot<V> {
        &self.0
    }
}

impl<V: fmt::Debug> fmt::Debug for SnapshotRef<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A handle for reading one view. Clone it freely; send it to other threads.
///
/// | read | returns | waits |
/// |---|---|---|
/// | [`latest`](Reader::latest) | the newest published snapshot (eventual) | never: one atomic load |
/// | [`at_least`](Reader::at_least) | a snapshot at or after a position (read-your-writes) | until the view reaches it |
/// | [`strong`](Reader::strong) | a snapshot including every append acknowledged before the call (linearizable) | until the view reaches the head |
/// | [`bounded`](Reader::bounded) | a snapshot at most so stale | only when the newest is too stale |
///
/// Successive loads by any one thread never go back in position.
///
/// ```
/// use rwlog::{Event, Recorded, Runtime, View};
///
/// #[derive(Clone)]
/// struct Add(u64);
/// impl Event for Add {}
///
/// #[derive(Clone, Default)]
/// struct Sum(u64);
/// impl View<Add> for Sum {
///     fn apply(&mut self, e: &Recorded<Add>) { self.0 += e.payload().0 }
/// }
///
/// let rt = Runtime::<Add>::builder().view("sum", Sum::default()).build()?;
/// let r = rt.reader::<Sum>("sum")?;
/// let ack = rt.writer().append("n", Add(5))?;
/// let s = r.at_least(ack.position)?;   // read-your-writes
/// assert_eq!(s.0, 5);
/// assert!(r.latest().position() >= ack.position); // the view was published before the ack
/// assert_eq!(r.strong()?.0, 5);
/// # Ok::<(), rwlog::Error>(())
/// ```
pub struct Reader<V> {
    view: Arc<ViewState<V>>,
    timeline: Arc<dyn Timeline>,
}

impl<V> Clone for Reader<V> {
    fn clone(&self) -> Self {
        Reader {
            view: Arc::clone(&self.view),
            timeline: Arc::clone(&self.timeline),
        }
    }
}

impl<V> fmt::Debug for Reader<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("view", &self.view.name)
            .field("position", &self.view.current.load().position)
            .finish()
    }
}

impl<V: Send + Sync + 'static> Reader<V> {
    pub(crate) fn new(view: Arc<ViewState<V>>, timeline: Arc<dyn Timeline>) -> Reader<V> {
        Reader { view, timeline }
    }

    /// The view's name.
    pub fn name(&self) -> &str {
        &self.view.name
    }

    /// The newest published snapshot. Wait-free: one atomic load and a write
    /// to this thread's own slot, no lock, no counter shared with other
    /// readers. If the view failed, this is its last good state; see
    /// [`failure`](Reader::failure).
    pub fn latest(&self) -> SnapshotRef<V> {
        SnapshotRef(self.view.current.load())
    }

    /// A snapshot at `position` or later: read-your-writes, given the
    /// position of an acknowledged append. Waits (parked, not spinning) until
    /// the view reaches it.
    ///
    /// With a log shared through PostgreSQL, `position` may come from an
    /// append acknowledged in another process: the read waits until this
    /// process has adopted it.
    ///
    /// Errors: [`Error::PositionOutOfRange`] if `position` is beyond the log's
    /// head (no append has it yet, so waiting could be forever: use
    /// [`at_least_timeout`](Reader::at_least_timeout) to wait for future
    /// positions); [`Error::ViewFailed`] if the view failed before reaching
    /// it; [`Error::Postgres`] if a shared log's head cannot be read.
    pub fn at_least(&self, position: Position) -> Result<SnapshotRef<V>> {
        let mut head = self.timeline.head();
        if position > head {
            // Perhaps another process appended it.
            head = self.timeline.shared_head()?;
        }
        if position > head {
            return Err(Error::PositionOutOfRange {
                requested: position,
                head,
            });
        }
        self.wait_for(position, None)
    }

    /// Like [`at_least`](Reader::at_least), but also waits for positions not
    /// yet appended, up to `timeout` ([`Error::Timeout`] after it).
    pub fn at_least_timeout(
        &self,
        position: Position,
        timeout: Duration,
    ) -> Result<SnapshotRef<V>> {
        self.wait_for(position, Some(Instant::now() + timeout))
    }

    /// A snapshot that includes every append acknowledged before this call
    /// began, on any thread (a linearizable read). Waits at most for the
    /// batch in flight to be published.
    ///
    /// With a log shared through PostgreSQL: every append acknowledged in
    /// any process before the call began. The database's head is read (a
    /// round trip) and the read waits until this process has adopted up to
    /// it. Errors: [`Error::Postgres`] if the head cannot be read.
    pub fn strong(&self) -> Result<SnapshotRef<V>> {
        // Every acknowledged append is at or below the log head, which the
        // sequencer raises before it publishes and acknowledges a batch (a
        // shared log's, before it commits).
        let head = self.timeline.shared_head()?;
        self.wait_for(head, None)
    }

    /// A snapshot no staler than `bound`, waiting only if the newest
    /// published one is too stale.
    pub fn bounded(&self, bound: Staleness) -> Result<SnapshotRef<V>> {
        match self.fresh_enough(bound) {
            Ok(s) => Ok(s),
            Err(target) => self.wait_for(target, None),
        }
    }

    /// The newest snapshot if it is within `bound`, else the position to
    /// wait for.
    fn fresh_enough(&self, bound: Staleness) -> Result<SnapshotRef<V>, Position> {
        let head = self.timeline.head();
        let s = self.latest();
        let fresh = match bound {
            Staleness::Positions(n) => s.position.0.saturating_add(n) >= head.0,
            Staleness::Time(d) => {
                s.position >= head
                    || self
                        .timeline
                        .recorded_at(s.position.next())
                        .is_none_or(|t| {
                            Timestamp::now().as_nanos().saturating_sub(t.as_nanos()) <= nanos(d)
                        })
            }
        };
        if fresh {
            return Ok(s);
        }
        Err(match bound {
            Staleness::Positions(n) => Position(head.0 - n),
            Staleness::Time(_) => head,
        })
    }

    /// Why the view failed, if its `apply` panicked.
    pub fn failure(&self) -> Option<Error> {
        let message = self.view.failure()?;
        Some(self.failed(message))
    }

    /// Whether the view still follows the log. A view whose `apply`
    /// panicked keeps serving its last good snapshot from
    /// [`latest`](Reader::latest), advances no more, and says so here, in
    /// [`Stats`](crate::Stats) and in one `error` trace; waiting reads
    /// return [`Error::ViewFailed`].
    pub fn health(&self) -> Health {
        match self.view.failure() {
            None => Health::Advancing,
            Some(message) => Health::Failed {
                position: self.view.current.load().position,
                message: message.to_owned(),
            },
        }
    }

    /// A reader for hot loops that skips even the atomic load's slot write
    /// while the view has not changed. See [`CachedReader`].
    pub fn cached(&self) -> CachedReader<V> {
        CachedReader {
            cache: Cache::new(Arc::clone(&self.view.current)),
        }
    }

    fn failed(&self, message: &str) -> Error {
        Error::ViewFailed {
            name: self.view.name.to_string(),
            position: self.view.current.load().position,
            message: message.to_owned(),
        }
    }

    fn wait_for(&self, position: Position, deadline: Option<Instant>) -> Result<SnapshotRef<V>> {
        if let Some(done) = self.settled(position) {
            return done;
        }
        let reached = || {
            self.view.current.load().position >= position
                || self.view.failure().is_some()
                || self.timeline.exited()
                || self.timeline.storage_failure().is_some()
        };
        let _span = tracing::trace_span!("wait", view = %self.view.name, %position).entered();
        self.timeline.signal().wait_until(deadline, reached);
        self.settled(position).unwrap_or(Err(Error::Timeout {
            waiting_for: position,
        }))
    }

    /// How a wait for `position` ends now, if it does: a snapshot there or
    /// later, the view's failure, or the runtime's end.
    fn settled(&self, position: Position) -> Option<Result<SnapshotRef<V>>> {
        let s = self.latest();
        if s.position >= position {
            return Some(Ok(s));
        }
        drop(s);
        if let Some(message) = self.view.failure() {
            return Some(Err(self.failed(message)));
        }
        if self.timeline.exited() {
            return Some(Err(Error::Closed));
        }
        if let Some(why) = self.timeline.storage_failure() {
            let why = format!(
                "the log's storage failed ({why}): position {position} will not be reached"
            );
            return Some(Err(Error::Io(std::io::Error::other(why))));
        }
        None
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A per-thread reader for hot loops, from [`Reader::cached`].
///
/// ```
/// use rwlog::{Event, Recorded, Runtime, View};
///
/// #[derive(Clone)]
/// struct Add(i64);
/// impl Event for Add {}
/// #[derive(Clone, Default)]
/// struct Sum(i64);
/// impl View<Add> for Sum {
///     fn apply(&mut self, e: &Recorded<Add>) { self.0 += e.payload().0 }
/// }
///
/// let rt = Runtime::<Add>::builder().view("sum", Sum::default()).build()?;
/// let mut hot = rt.reader::<Sum>("sum")?.cached();
/// let mut total = 0;
/// for _ in 0..1000 {
///     total += hot.load().0; // a pointer compare while nothing changes
/// }
/// rt.writer().append("n", Add(4))?;
/// assert_eq!((total, hot.load().0), (0, 4));
/// # Ok::<(), rwlog::Error>(())
/// ```
///
/// [`load`](CachedReader::load) keeps a reference to the last snapshot it saw
/// and only re-loads when the view has published a newer one, so repeated
/// loads of an unchanged view are a single pointer comparison. It is not
/// `Clone`: make one per thread. While it holds an old snapshot the
/// sequencer cannot reuse that copy; an idle cached reader therefore costs
/// the sequencer one clone of the state. Drop it, or keep loading, to
/// avoid that.
pub struct CachedReader<V> {
    cache: Cache<Snapshot<V>>,
}

impl<V> CachedReader<V> {
    /// The newest published snapshot.
    pub fn load(&mut self) -> &Snapshot<V> {
        self.cache.load()
    }
}

impl<V> fmt::Debug for CachedReader<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedReader").finish_non_exhaustive()
    }
}
