//! The runtime: the façade over everything else. Handles for writing and
//! reading, time travel, subscriptions, actors, projections, stats and
//! shutdown.

#[cfg(feature = "durable")]
mod archive;
mod builder;
#[cfg(feature = "jsonl")]
mod jsonl;
mod open;
#[cfg(feature = "durable")]
mod ops;
mod projections;
mod shared_map;
mod stats;
mod views;

pub use builder::Builder;
#[cfg(feature = "jsonl")]
pub use jsonl::Imported;
pub use shared_map::SharedMap;
pub use stats::{ProjectionStats, Stats, ViewStats};

use std::fmt;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::hub::Hub;
use crate::log::Log;
use crate::position::Position;
use crate::projection::{Checkpoints, ProjectionState};
use crate::read::{Reader, Timeline};
use crate::sequencer::Combiner;
use crate::storage::RecoveryReport;
use crate::subscription::Subscription;
use crate::sync::channel::Sender;
use crate::sync::{self, thread, Arc, Mutex};
use crate::view::{AnyView, Snapshot, View, ViewKey, ViewState};
use crate::write::{AppendCmd, Drain, Writer};

/// An rwlog runtime: the log, its views and the sequencer thread.
///
/// Handles from [`writer`](Runtime::writer) and [`reader`](Runtime::reader)
/// are independent of the runtime value and may outlive it. Dropping the
/// runtime shuts it down as [`shutdown`](Runtime::shutdown) does.
///
/// ```
/// use std::collections::HashMap;
/// use rwlog::{Event, Recorded, Runtime, View};
///
/// #[derive(Clone, Debug)]
/// enum Account { Deposited(u64), Withdrawn(u64) }
/// impl Event for Account {}
///
/// #[derive(Clone, Default)]
/// struct Balances(HashMap<String, i64>);
/// impl View<Account> for Balances {
///     fn apply(&mut self, e: &Recorded<Account>) {
///         let b = self.0.entry(e.stream().to_string()).or_default();
///         match e.payload() {
///             Account::Deposited(n) => *b += *n as i64,
///             Account::Withdrawn(n) => *b -= *n as i64,
///         }
///     }
/// }
///
/// let rt = Runtime::<Account>::builder()
///     .view("balances", Balances::default())
///     .build()?;
/// let w = rt.writer();
/// w.append("alice", Account::Deposited(10))?;
/// let ack = w.append("alice", Account::Withdrawn(3))?;
///
/// let balances = rt.reader::<Balances>("balances")?;
/// assert_eq!(balances.at_least(ack.position)?.0["alice"], 7);
///
/// // Time travel: the state after the first event.
/// assert_eq!(rt.view_at::<Balances>("balances", rwlog::Position(1))?.0["alice"], 10);
/// rt.shutdown()?;
/// assert!(matches!(w.append("alice", Account::Deposited(1)), Err(rwlog::Error::Closed)));
/// # Ok::<(), rwlog::Error>(())
/// ```
///
/// A `Runtime` is a handle: clones share one runtime (one log, one
/// sequencer, the same views). [`shutdown`](Runtime::shutdown) through any
/// clone shuts it down for all; dropping the last clone shuts it down too.
pub struct Runtime<E: Event> {
    inner: Arc<Shared<E>>,
}

impl<E: Event> Clone for Runtime<E> {
    fn clone(&self) -> Self {
        Runtime {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// What every clone of a [`Runtime`] shares.
struct Shared<E: Event> {
    hub: Arc<Hub<E>>,
    /// Where projections keep checkpoints; `None` once shut down (a durable
    /// log's checkpoints hold its directory's lock).
    checkpoints: Mutex<Option<Arc<Checkpoints>>>,
    projections: Mutex<Vec<Arc<ProjectionState>>>,
    tx: Sender<AppendCmd<E>>,
    combiner: Arc<Combiner<E>>,
    views: Vec<Arc<dyn AnyView>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
    max_append_events: usize,
    recovery: Option<RecoveryReport>,
    /// What backups and archiving need (the retention thread holds it
    /// weakly: never the runtime itself).
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    upkeep: Arc<Upkeep<E>>,
}

/// What backups and archiving of a log directory need.
#[cfg_attr(not(feature = "durable"), allow(dead_code))]
pub(crate) struct Upkeep<E> {
    hub: Arc<Hub<E>>,
    /// A log directory's path and log id.
    dir: Option<(std::path::PathBuf, uuid::Uuid)>,
    /// The persisted views' names, and how many views there are.
    persisted: Vec<String>,
    views: usize,
    archiving: Policy,
    /// The directory's owner (its checkpoints hold its lock) while the
    /// runtime runs; `None` once shut down. Taken by a backup or an
    /// archiving for as long as it runs, so that one runs at a time and a
    /// shutdown waits for it before it lets go of the directory.
    owner: Mutex<Option<Arc<Checkpoints>>>,
}

/// How a runtime archives its log's front: what to keep, where the rest
/// goes.
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(not(feature = "durable"), allow(dead_code))]
pub(crate) struct Policy {
    pub(crate) retain: Option<crate::storage::Retention>,
    pub(crate) mode: crate::storage::ArchiveMode,
}

impl<E: Event> fmt::Debug for Runtime<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("head", &self.inner.hub.log.head())
            .field(
                "views",
                &self
                    .inner
                    .views
                    .iter()
                    .map(|v| v.name())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What the builder starts a runtime with.
pub(crate) struct Parts<E> {
    pub(crate) hub: Arc<Hub<E>>,
    pub(crate) tx: Sender<AppendCmd<E>>,
    pub(crate) combiner: Arc<Combiner<E>>,
    pub(crate) views: Vec<Arc<dyn AnyView>>,
    pub(crate) thread: thread::JoinHandle<()>,
    pub(crate) checkpoints: Arc<Checkpoints>,
    pub(crate) max_append_events: usize,
    pub(crate) recovery: Option<RecoveryReport>,
    pub(crate) dir: Option<(std::path::PathBuf, uuid::Uuid)>,
    pub(crate) persisted: Vec<String>,
    pub(crate) archiving: Policy,
}

impl<E: Event> Runtime<E> {
    /// A builder for a runtime whose events are `E`.
    pub fn builder() -> Builder<E> {
        Builder::new()
    }

    pub(crate) fn new(parts: Parts<E>) -> Runtime<E> {
        let upkeep = Arc::new(Upkeep {
            hub: Arc::clone(&parts.hub),
            dir: parts.dir,
            views: parts.views.len(),
            persisted: parts.persisted,
            archiving: parts.archiving,
            owner: Mutex::new(Some(Arc::clone(&parts.checkpoints))),
        });
        let shared = Shared {
            hub: parts.hub,
            checkpoints: Mutex::new(Some(parts.checkpoints)),
            projections: Mutex::new(Vec::new()),
            tx: parts.tx,
            combiner: parts.combiner,
            views: parts.views,
            thread: Mutex::new(Some(parts.thread)),
            max_append_events: parts.max_append_events,
            recovery: parts.recovery,
            upkeep,
        };
        let inner = Arc::new(shared);
        #[cfg(feature = "durable")]
        if inner.upkeep.archiving.retain.is_some() {
            if let Err(e) = archive::spawn_retention(Arc::downgrade(&inner.upkeep)) {
                tracing::warn!(error = %e, "the retention thread could not start; call apply_retention");
            }
        }
        Runtime { inner }
    }

    /// A handle for appending events.
    pub fn writer(&self) -> Writer<E> {
        Writer::new(
            self.inner.tx.clone(),
            Arc::clone(&self.inner.hub.gate),
            Arc::clone(&self.inner.combiner) as Arc<dyn Drain<E>>,
            None,
            self.inner.max_append_events,
        )
    }

    /// A handle whose appends carry `id` as their metadata's writer id
    /// (unless an append sets its own).
    pub fn writer_named(&self, id: impl Into<String>) -> Writer<E> {
        let id: Arc<str> = Arc::from(id.into());
        Writer::new(
            self.inner.tx.clone(),
            Arc::clone(&self.inner.hub.gate),
            Arc::clone(&self.inner.combiner) as Arc<dyn Drain<E>>,
            Some(id),
            self.inner.max_append_events,
        )
    }

    /// A reader of the view registered as `name`, whose state is a `V`.
    ///
    /// Errors: [`Error::UnknownView`], or [`Error::ViewType`] if the view
    /// holds another type.
    pub fn reader<V: View<E>>(&self, name: &str) -> Result<Reader<V>> {
        let view = self.view::<V>(name)?;
        let timeline: Arc<dyn Timeline> = Arc::clone(&self.inner.hub) as Arc<dyn Timeline>;
        Ok(Reader::new(view, timeline))
    }

    /// The reader of the view registered with `key` (see [`ViewKey`]).
    ///
    /// Errors: [`Error::UnknownView`] if no view was registered under the
    /// key's name on this runtime; [`Error::ViewType`] if one was, by name,
    /// with another type.
    pub fn reader_for<V: View<E>>(&self, key: ViewKey<V>) -> Result<Reader<V>> {
        self.reader::<V>(key.name())
    }

    /// The log.
    pub fn log(&self) -> &Log<E> {
        &self.inner.hub.log
    }

    /// The position of the last appended event.
    pub fn head(&self) -> Position {
        self.inner.hub.log.head()
    }

    /// What recovery found and did when the log's directory was opened
    /// (`None` for an in-memory log): cuts, files set aside, an accepted
    /// loss. Each of them was also logged at `warn`.
    pub fn recovery(&self) -> Option<&RecoveryReport> {
        self.inner.recovery.as_ref()
    }

    /// The state of a view just after the event at `position`: the newest
    /// kept snapshot at or before it, plus a replay of the events between.
    ///
    /// Errors: [`Error::PositionOutOfRange`] for position 0 or beyond the
    /// head; [`Error::StateArchived`] if the nearest copy kept is older than
    /// the log's first position (after archiving, or after a reopen that
    /// started the view from a newer snapshot) and the replay would need
    /// archived events;
    /// [`Error::ViewFailed`] if the view's `apply` panics on the way.
    pub fn view_at<V: View<E>>(&self, name: &str, position: Position) -> Result<Snapshot<V>> {
        let view = self.view::<V>(name)?;
        let head = self.inner.hub.log.head();
        if position == Position::ZERO || position > head {
            return Err(Error::PositionOutOfRange {
                requested: position,
                head,
            });
        }
        // The view's current state answers for its own position (also
        // when no copy of its past is kept).
        let current = view.current.load_full();
        if current.position == position {
            return Ok(Snapshot::clone(&current));
        }
        let base = view
            .history
            .nearest(position)
            .ok_or(Error::PositionOutOfRange {
                requested: position,
                head,
            })?;
        let log = &self.inner.hub.log;
        if base.position < position && base.position.next() < log.first() {
            // The replay from the nearest copy needs archived events.
            return Err(Error::StateArchived {
                requested: position,
                nearest: base.position,
                first_available: log.first(),
            });
        }
        sync::catch_unwind(|| {
            crate::view::replay(&base, log.read_all(base.position.next()..=position))
        })
        .map_err(|payload| Error::ViewFailed {
            name: name.to_owned(),
            position: base.position,
            message: sync::panic_message(&*payload),
        })
    }

    /// The state of a view as of `time`: after the last event the sequencer
    /// stamped at or before it.
    ///
    /// Errors: [`Error::BeforeFirstEvent`] if no event is that old, and those
    /// of [`view_at`](Runtime::view_at).
    pub fn view_as_of<V: View<E>>(&self, name: &str, time: SystemTime) -> Result<Snapshot<V>> {
        let log = &self.inner.hub.log;
        let position = log.position_at(time).ok_or(match log.first() {
            Position::FIRST => Error::BeforeFirstEvent { requested: time },
            first => Error::Archived {
                requested: Position::ZERO,
                first_available: first,
            },
        })?;
        self.view_at(name, position)
    }

    /// Every event from `from` on: first those already in the log, then live
    /// ones as they are appended, with no gap and no duplicate. Iterate it
    /// (blocking) or, with the `async` feature, use it as a `Stream`. It ends
    /// after the last event once the runtime has shut down.
    pub fn subscribe(&self, from: Position) -> Subscription<E> {
        Subscription::new(Arc::clone(&self.inner.hub), from.max(Position::FIRST))
    }

    /// [`subscribe`](Runtime::subscribe) as a `futures_core::Stream`, for
    /// tasks: see [`SubscriptionStream`](crate::subscription::SubscriptionStream).
    #[cfg(feature = "async")]
    pub fn subscribe_stream(&self, from: Position) -> crate::subscription::SubscriptionStream<E> {
        self.subscribe(from).into_stream()
    }

    /// Starts `shards` writer actors for aggregates `A` (tokio tasks, on the
    /// current tokio runtime, or on a small one of their own when called
    /// outside one); see [`Actors`](crate::Actors).
    #[cfg(feature = "async")]
    pub fn actors<A>(&self, shards: usize) -> Result<crate::actor::Actors<A>>
    where
        A: crate::aggregate::Aggregate<Event = E>,
        E: Clone,
    {
        self.actors_with(shards, crate::actor::ActorOptions::default())
    }

    /// [`actors`](Runtime::actors) with settings.
    #[cfg(feature = "async")]
    pub fn actors_with<A>(
        &self,
        shards: usize,
        options: crate::actor::ActorOptions,
    ) -> Result<crate::actor::Actors<A>>
    where
        A: crate::aggregate::Aggregate<Event = E>,
        E: Clone,
    {
        let source = Arc::clone(&self.inner.hub) as Arc<dyn crate::actor::StreamSource<E>>;
        crate::actor::Actors::start(self.writer(), source, shards, options)
    }

    /// Counters and the state of every view and projection.
    pub fn stats(&self) -> Stats {
        let projections = self.inner.projections.lock();
        stats::collect(
            self.inner.hub.log.head(),
            self.inner.hub.counters.read(),
            self.inner.tx.len(),
            self.inner.hub.storage_failure.get().cloned(),
            &self.inner.views,
            &projections,
        )
    }

    /// Stops taking appends, sequences and acknowledges every append already
    /// queued, and joins the sequencer thread; then stops every projection
    /// (each saves its checkpoint after the event it is handling). Afterwards
    /// every append returns [`Error::Closed`]; readers keep the final
    /// snapshots; a durable log's directory is free for another runtime.
    /// Calling it again does nothing.
    pub fn shutdown(&self) -> Result<()> {
        self.inner.shutdown()
    }

    fn view<V: View<E>>(&self, name: &str) -> Result<Arc<ViewState<V>>> {
        let status = self
            .inner
            .views
            .iter()
            .find(|v| v.name() == name)
            .ok_or_else(|| Error::UnknownView {
                name: name.to_owned(),
            })?;
        let actual = status.type_name();
        Arc::clone(status)
            .as_any()
            .downcast::<ViewState<V>>()
            .map_err(|_| Error::ViewType {
                name: name.to_owned(),
                requested: std::any::type_name::<V>(),
                actual,
            })
    }
}

impl<E: Event> Shared<E> {
    fn shutdown(&self) -> Result<()> {
        let handle = self.thread.lock().take();
        let Some(handle) = handle else { return Ok(()) };
        let _span = tracing::debug_span!("shutdown").entered();
        // Writers waiting for room in a full queue make it themselves (or the
        // thread does): the wait ends. Then nothing enters the queue again
        // (see `Gate`), and the thread drains it and ends.
        self.hub.gate.close_draining(sync::yield_now);
        self.combiner.close();
        let joined = handle
            .join()
            .map_err(|payload| Error::SequencerPanicked(sync::panic_message(&*payload)));
        // Waits for a backup or an archiving that is running, then no new
        // one starts.
        self.upkeep.owner.lock().take();
        // No new projection from here on; the running ones are joined, so
        // nothing of this runtime holds a durable log's directory after.
        self.checkpoints.lock().take();
        let projections = self.projections.lock().clone();
        for p in projections {
            p.stop_and_join()?;
        }
        joined
    }
}

impl<E: Event> Drop for Shared<E> {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "rwlog runtime shut down with an error");
        }
    }
}
