//! The runtime: builder, handles, time travel, stats and shutdown.

use std::fmt;
use std::time::SystemTime;

use crate::error::{Error, Result};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::event::Batch;
use crate::event::{Event, Recorded, Timestamp};
use crate::faults::Faults;
use crate::log::Log;
use crate::position::Position;
use crate::reader::{Reader, Timeline};
use crate::sequencer::Durable;
use crate::sequencer::{Gate, Msg, Sequencer};
use crate::signal::Signal;
use crate::storage::Upcasters;
use crate::storage::{self, DirInfo, DirOptions, RecoveryReport, SnapshotFiles, Storage};
use crate::subscription::Subscription;
use crate::sync::channel::{bounded, Receiver, Sender};
use crate::sync::{self, thread, Arc, AtomicBool, AtomicU64, Mutex, OnceLock, Ordering};
use crate::view::{AnyView, Publisher, Snapshot, View, ViewDriver, ViewState};
use crate::writer::Writer;

/// What the runtime's handles share.
pub(crate) struct Shared<E> {
    pub(crate) log: Log<E>,
    pub(crate) signal: Signal,
    pub(crate) gate: Arc<Gate>,
    /// Set when the sequencer thread has ended: nothing is published again.
    pub(crate) exited: AtomicBool,
    pub(crate) stats: Counters,
    /// Why the durable log failed, once it has.
    pub(crate) storage_failure: OnceLock<String>,
}

/// Counters written by the sequencer only.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    appended: AtomicU64,
    batches: AtomicU64,
    rejected: AtomicU64,
}

impl Counters {
    pub(crate) fn record_batch(&self, events: u64) {
        self.appended.fetch_add(events, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_rejected(&self, n: u64) {
        if n > 0 {
            self.rejected.fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl<E: Event> Timeline for Shared<E> {
    fn head(&self) -> Position {
        self.log.head()
    }

    fn recorded_at(&self, position: Position) -> Option<Timestamp> {
        self.log.get(position).map(|r| r.recorded_at)
    }

    fn signal(&self) -> &Signal {
        &self.signal
    }

    fn exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }
}

/// What a view needs to start: its settings, and the events recovered from
/// disk (empty for an in-memory log) to catch up on.
struct ViewSetup<'a, E> {
    every: u64,
    spares: usize,
    faults: Faults,
    recovered: &'a [Recorded<E>],
    /// The log directory, for views whose snapshots persist.
    dir: Option<&'a DirInfo>,
}

type ViewFactory<E> =
    Box<dyn FnOnce(ViewSetup<'_, E>) -> Result<(Box<dyn ViewDriver<E>>, Arc<dyn AnyView>)>>;

/// What opening a log directory gives the builder.
struct Opened<E> {
    events: Vec<Recorded<E>>,
    store: Box<dyn Durable<E>>,
    info: DirInfo,
    report: RecoveryReport,
}

/// Opens a log directory (the builder knows `E: Serialize` only here).
type Opener<E> = Box<dyn FnOnce(&DirOptions, &Upcasters<E>) -> Result<Opened<E>>>;

/// Configures and starts a [`Runtime`]; from [`Runtime::builder`].
///
/// ```
/// use rwlog::{Event, Runtime, Error};
///
/// #[derive(Clone)]
/// struct Tick;
/// impl Event for Tick {}
///
/// let rt = Runtime::<Tick>::builder()
///     .max_batch(256)
///     .queue_capacity(4096)
///     .snapshot_every(10_000)
///     .build()?;
/// assert!(rt.writer().append("t", Tick).is_ok());
/// assert!(matches!(Runtime::<Tick>::builder().max_batch(0).build(), Err(Error::Config(_))));
/// # Ok::<(), rwlog::Error>(())
/// ```
pub struct Builder<E> {
    views: Vec<(String, ViewFactory<E>)>,
    max_batch: usize,
    queue_capacity: usize,
    snapshot_every: u64,
    max_append: usize,
    spare_copies: usize,
    faults: Faults,
    storage: Option<(DirOptions, Opener<E>)>,
    upcasters: Upcasters<E>,
    dedupe_window: usize,
}

impl<E> fmt::Debug for Builder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field(
                "views",
                &self.views.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("max_batch", &self.max_batch)
            .field("queue_capacity", &self.queue_capacity)
            .field("snapshot_every", &self.snapshot_every)
            .field("max_append", &self.max_append)
            .field("spare_copies", &self.spare_copies)
            .field("storage", &self.storage.as_ref().map(|(d, _)| d))
            .field("upcasters", &self.upcasters)
            .finish()
    }
}

impl<E: Event> Builder<E> {
    fn new() -> Builder<E> {
        Builder {
            views: Vec::new(),
            max_batch: 1024,
            queue_capacity: 1024,
            snapshot_every: 0,
            max_append: 64 * 1024,
            spare_copies: 2,
            faults: Faults::default(),
            storage: None,
            upcasters: Upcasters::default(),
            dedupe_window: 65_536,
        }
    }

    /// Registers a view under `name`, starting from `initial`.
    pub fn view<V: View<E>>(mut self, name: impl Into<String>, initial: V) -> Self {
        let name = name.into();
        let shared_name: Arc<str> = Arc::from(name.as_str());
        let factory: ViewFactory<E> = Box::new(move |setup| {
            let shared = ViewState::new(shared_name, initial, setup.every);
            shared.recover(None, setup.recovered);
            let driver: Box<dyn ViewDriver<E>> = Box::new(Publisher::<V, E>::new(
                Arc::clone(&shared),
                setup.spares,
                setup.faults,
                None,
            ));
            Ok((driver, shared as Arc<dyn AnyView>))
        });
        self.views.push((name, factory));
        self
    }

    /// The most events the sequencer takes into one batch (default 1024).
    /// One append is never split, so a batch can exceed this by one append.
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }

    /// How many appends may wait in the queue before writers wait for room
    /// (default 1024). The queue is allocated whole (about 100 bytes per
    /// append plus the event's own size), and under saturation an append
    /// waits behind every queued one.
    ///
    /// With a core for each busy thread, a deeper queue adds latency and
    /// little throughput. When busy threads outnumber cores it can add a
    /// lot: a writer that finds the queue full, or a sequencer that finds
    /// it empty, sleeps, and may then wait a whole time slice for a core, so
    /// each hand-off should carry more. In the compare example's
    /// `reads_2r_1w` (two spinning readers, one writer, two cores), 65,536
    /// instead of 1,024 took the writer from ~0.4M to ~1.5M events/s.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }

    /// Keeps a snapshot of every view about every `n` events, for time
    /// travel (default 0: none; time travel then replays from the start).
    /// Each snapshot is a clone of the view's state, kept in memory.
    pub fn snapshot_every(mut self, n: u64) -> Self {
        self.snapshot_every = n;
        self
    }

    /// The most spare copies of each view's state (default 2, at least 1).
    ///
    /// The sequencer publishes into a spare no reader holds. With more
    /// threads than cores, a reader is sometimes preempted while holding a
    /// copy; with several spares another is free, and the sequencer need not
    /// clone the state. Spares are made only when needed: a view whose
    /// readers never pin a copy keeps one. Memory: up to `1 + n` copies.
    pub fn spare_copies(mut self, n: usize) -> Self {
        self.spare_copies = n;
        self
    }

    /// Breaks one protocol step on purpose, for loom's broken-variant
    /// models (`--cfg loom` builds only).
    #[cfg(loom)]
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// How many recent appends are remembered for idempotence (default
    /// 65536; 0 turns it off). An append whose first event carries an id
    /// (given with [`NewEvent::with_id`](crate::NewEvent::with_id)) that a
    /// remembered append also carried is not written again: it is
    /// acknowledged with the original append's position and version. After
    /// a reopen, the newest `n` events are remembered one by one.
    pub fn dedupe_window(mut self, n: usize) -> Self {
        self.dedupe_window = n;
        self
    }

    /// The most events one append may carry (default 65536).
    pub fn max_append_events(mut self, n: usize) -> Self {
        self.max_append = n;
        self
    }

    /// Starts the sequencer thread.
    ///
    /// Errors: [`Error::DuplicateView`] for two views of one name,
    /// [`Error::Config`] for a zero batch size, queue capacity or append
    /// limit, [`Error::Io`] if the sequencer thread cannot be started.
    pub fn build(self) -> Result<Runtime<E>> {
        if self.max_batch == 0 {
            return Err(Error::Config("max_batch must be at least 1"));
        }
        if self.queue_capacity == 0 {
            return Err(Error::Config("queue_capacity must be at least 1"));
        }
        if self.max_append == 0 {
            return Err(Error::Config("max_append_events must be at least 1"));
        }
        if self.spare_copies == 0 {
            return Err(Error::Config("spare_copies must be at least 1"));
        }
        let mut names = std::collections::HashSet::new();
        for (name, _) in &self.views {
            if !names.insert(name.as_str()) {
                return Err(Error::DuplicateView(name.clone()));
            }
        }
        let (recovered, store, dir, report) = match self.storage {
            Some((options, open)) => {
                let started = std::time::Instant::now();
                let opened = open(&options, &self.upcasters)?;
                tracing::info!(
                    events = opened.events.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "recovered the log"
                );
                (
                    opened.events,
                    Some(opened.store),
                    Some(opened.info),
                    Some(opened.report),
                )
            }
            None => (Vec::new(), None, None, None),
        };
        // The recovered log is one batch, kept whole like any other.
        let recovered: Batch<E> = Arc::new(recovered);
        let log = Log::new(self.faults);
        log.append(&recovered);
        let mut drivers = Vec::with_capacity(self.views.len());
        let mut views = Vec::with_capacity(self.views.len());
        for (_, factory) in self.views {
            let (driver, status) = factory(ViewSetup {
                every: self.snapshot_every,
                spares: self.spare_copies,
                faults: self.faults,
                recovered: &recovered,
                dir: dir.as_ref(),
            })?;
            drivers.push(driver);
            views.push(status);
        }
        drop(recovered);
        let (tx, rx) = bounded(self.queue_capacity);
        let shared = Arc::new(Shared {
            log,
            signal: Signal::new(self.faults),
            gate: Arc::new(Gate::new(self.faults)),
            exited: AtomicBool::new(false),
            stats: Counters::default(),
            storage_failure: OnceLock::new(),
        });
        let sequencer = Sequencer::new(
            rx.clone(),
            Arc::clone(&shared),
            drivers,
            self.max_batch,
            store,
            self.dedupe_window,
        );
        let exit = ExitGuard {
            shared: Arc::clone(&shared),
            rx,
        };
        let thread = thread::Builder::new()
            .name("rwlog-sequencer".into())
            .spawn(move || {
                let _exit = exit;
                sequencer.run();
            })
            .map_err(Error::Io)?;
        let checkpoints = Arc::new(match &dir {
            Some(info) => crate::projection::Checkpoints::Dir(storage::CheckpointFiles::new(info)),
            None => crate::projection::Checkpoints::Memory(Mutex::new(Default::default())),
        });
        Ok(Runtime {
            shared,
            checkpoints: Mutex::new(Some(checkpoints)),
            projections: Mutex::new(Vec::new()),
            tx,
            views,
            thread: Mutex::new(Some(thread)),
            max_append: self.max_append,
            recovery: report,
        })
    }
}

impl<E: Event + Serialize + DeserializeOwned> Builder<E> {
    /// Where the log lives: [`Storage::memory`] (the default) or
    /// [`Storage::dir`]. With a directory, `build` recovers the log (verifying
    /// every record), rebuilds the views from their newest valid snapshot
    /// plus the log, and continues positions and stream versions.
    ///
    /// Errors from `build`: [`Error::Corrupt`] naming the damaged file and
    /// offset, [`Error::NoUpcaster`], [`Error::Io`].
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage.dir.map(|options| {
            let open: Opener<E> = Box::new(|options, upcasters| {
                let recovered = storage::open::<E>(options, upcasters)?;
                Ok(Opened {
                    events: recovered.events,
                    store: Box::new(recovered.writer),
                    info: recovered.info,
                    report: recovered.report,
                })
            });
            (options, open)
        });
        self
    }

    /// Registers how to read events stored with an older `schema_version`
    /// of `E`: decode them as an `Old`, then turn that into an `E`. Used
    /// whenever the log is read from disk, so replay, time travel and
    /// subscriptions all see the current type.
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use rwlog::{Event, Runtime};
    ///
    /// #[derive(Deserialize)]
    /// enum AccountV1 { Deposited(u64) }
    ///
    /// #[derive(Clone, Serialize, Deserialize)]
    /// enum Account { Deposited { amount: u64, currency: String } }
    /// impl Event for Account {
    ///     const SCHEMA_VERSION: u32 = 2;
    /// }
    ///
    /// let builder = Runtime::<Account>::builder().upcaster(1, |old: AccountV1| match old {
    ///     AccountV1::Deposited(amount) => Account::Deposited { amount, currency: "EUR".into() },
    /// });
    /// # let _ = builder;
    /// ```
    pub fn upcaster<Old, F>(mut self, from_schema_version: u32, upcast: F) -> Self
    where
        Old: DeserializeOwned,
        F: Fn(Old) -> E + Send + Sync + 'static,
    {
        self.upcasters.add(from_schema_version, upcast);
        self
    }

    /// Registers a view whose snapshots are also written to the log's
    /// directory (every [`snapshot_every`](Builder::snapshot_every) events:
    /// temp file, fsync, rename, directory fsync), so that reopening starts
    /// from the newest valid one instead of replaying the whole log. A
    /// damaged snapshot is skipped in favour of an older one or a replay.
    /// With an in-memory log this is [`view`](Builder::view).
    ///
    /// The name must be a plain file name: letters, digits, `-`, `_`, `.`.
    pub fn persisted_view<V>(mut self, name: impl Into<String>, initial: V) -> Self
    where
        V: View<E> + Serialize + DeserializeOwned,
    {
        let name = name.into();
        let shared_name: Arc<str> = Arc::from(name.as_str());
        let plain = storage::is_plain_file_name(&name);
        let factory: ViewFactory<E> = Box::new(move |setup| {
            if !plain {
                return Err(Error::Config(
                    "a persisted view's name may use only letters, digits, '-', '_' and '.'",
                ));
            }
            let shared = ViewState::new(Arc::clone(&shared_name), initial, setup.every);
            let files = setup.dir.map(|info| SnapshotFiles::new(info, &shared_name));
            let base = match (&files, setup.dir) {
                (Some(files), Some(info)) => {
                    let id_at = |p: Position| {
                        let i = usize::try_from(p.0.checked_sub(1)?).ok()?;
                        setup.recovered.get(i).map(|e| e.id)
                    };
                    let facts = storage::LogFacts {
                        log_id: info.log_id,
                        head: Position(setup.recovered.len() as u64),
                        id_at: &id_at,
                    };
                    files.load_newest::<V>(&facts)?
                }
                _ => None,
            };
            let base = base.map(|(position, state)| Snapshot { position, state });
            shared.recover(base, setup.recovered);
            let persist = files.map(|files| -> crate::view::Persist<V> {
                Box::new(move |s: &Snapshot<V>, event_id| {
                    files.write(s.position, event_id, &s.state)
                })
            });
            let driver: Box<dyn ViewDriver<E>> = Box::new(Publisher::<V, E>::new(
                Arc::clone(&shared),
                setup.spares,
                setup.faults,
                persist,
            ));
            Ok((driver, shared as Arc<dyn AnyView>))
        });
        self.views.push((name, factory));
        self
    }
}

/// Runs when the sequencer thread ends, normally or by a panic: no writer
/// may be left waiting and no reader may wait for a publication that will
/// never come.
struct ExitGuard<E> {
    shared: Arc<Shared<E>>,
    rx: Receiver<Msg<E>>,
}

impl<E> Drop for ExitGuard<E> {
    fn drop(&mut self) {
        let gate = &self.shared.gate;
        if !gate.is_closed() {
            // Died without a shutdown: close the gate ourselves, draining so
            // that senders blocked on a full queue get through it.
            gate.close_draining(|| while self.rx.try_recv().is_ok() {});
        }
        // Dropping an unanswered command answers its writer `Closed`.
        while self.rx.try_recv().is_ok() {}
        // Release pairs with the Acquire load in `Timeline::exited`.
        self.shared.exited.store(true, Ordering::Release);
        self.shared.signal.notify();
    }
}

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
pub struct Runtime<E: Event> {
    shared: Arc<Shared<E>>,
    /// Where projections keep checkpoints; `None` once shut down (a durable
    /// log's checkpoints hold its directory's lock).
    checkpoints: Mutex<Option<Arc<crate::projection::Checkpoints>>>,
    projections: Mutex<Vec<Arc<crate::projection::ProjectionShared>>>,
    tx: Sender<Msg<E>>,
    views: Vec<Arc<dyn AnyView>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
    max_append: usize,
    recovery: Option<RecoveryReport>,
}

impl<E: Event> fmt::Debug for Runtime<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("head", &self.shared.log.head())
            .field(
                "views",
                &self.views.iter().map(|v| v.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<E: Event> Runtime<E> {
    /// A builder for a runtime whose events are `E`.
    pub fn builder() -> Builder<E> {
        Builder::new()
    }

    /// A handle for appending events.
    pub fn writer(&self) -> Writer<E> {
        Writer::new(
            self.tx.clone(),
            Arc::clone(&self.shared.gate),
            None,
            self.max_append,
        )
    }

    /// A handle whose appends carry `id` as their metadata's writer id
    /// (unless an append sets its own).
    pub fn writer_named(&self, id: impl Into<String>) -> Writer<E> {
        let id: Arc<str> = Arc::from(id.into());
        Writer::new(
            self.tx.clone(),
            Arc::clone(&self.shared.gate),
            Some(id),
            self.max_append,
        )
    }

    /// A reader of the view registered as `name`, whose state is a `V`.
    ///
    /// Errors: [`Error::UnknownView`], or [`Error::ViewType`] if the view
    /// holds another type.
    pub fn reader<V: View<E>>(&self, name: &str) -> Result<Reader<V>> {
        let view = self.view::<V>(name)?;
        let timeline: Arc<dyn Timeline> = Arc::clone(&self.shared) as Arc<dyn Timeline>;
        Ok(Reader::new(view, timeline))
    }

    /// The log.
    pub fn log(&self) -> &Log<E> {
        &self.shared.log
    }

    /// The position of the last appended event.
    pub fn head(&self) -> Position {
        self.shared.log.head()
    }

    /// What recovery found and did when the log's directory was opened
    /// (`None` for an in-memory log): cuts, files set aside, an accepted
    /// loss. Each of them was also logged at `warn`.
    pub fn recovery(&self) -> Option<&RecoveryReport> {
        self.recovery.as_ref()
    }

    /// The state of a view just after the event at `position`: the newest
    /// kept snapshot at or before it, plus a replay of the events between.
    ///
    /// Errors: [`Error::PositionOutOfRange`] for position 0 or beyond the
    /// head; [`Error::ViewFailed`] if the view's `apply` panics on the way.
    pub fn view_at<V: View<E>>(&self, name: &str, position: Position) -> Result<Snapshot<V>> {
        let view = self.view::<V>(name)?;
        let head = self.shared.log.head();
        if position == Position::ZERO || position > head {
            return Err(Error::PositionOutOfRange {
                requested: position,
                head,
            });
        }
        let base = view
            .history
            .nearest(position)
            .ok_or(Error::PositionOutOfRange {
                requested: position,
                head,
            })?;
        let log = &self.shared.log;
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
        let position = self
            .shared
            .log
            .position_at(time)
            .ok_or(Error::BeforeFirstEvent { requested: time })?;
        self.view_at(name, position)
    }

    /// Every event from `from` on: first those already in the log, then live
    /// ones as they are appended, with no gap and no duplicate. Iterate it
    /// (blocking) or, with the `async` feature, use it as a `Stream`. It ends
    /// after the last event once the runtime has shut down.
    pub fn subscribe(&self, from: Position) -> Subscription<E> {
        Subscription::new(Arc::clone(&self.shared), from.max(Position::FIRST))
    }

    /// Starts `shards` writer actors for aggregates `A` (tokio tasks, on the
    /// current tokio runtime, or on a small one of their own when called
    /// outside one); see [`Actors`](crate::Actors).
    #[cfg(feature = "async")]
    pub fn actors<A>(&self, shards: usize) -> Result<crate::actor::Actors<A>>
    where
        A: crate::actor::Aggregate<Event = E>,
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
        A: crate::actor::Aggregate<Event = E>,
        E: Clone,
    {
        let source = Arc::clone(&self.shared) as Arc<dyn crate::actor::StreamSource<E>>;
        crate::actor::Actors::start(self.writer(), source, shards, options)
    }

    /// Starts an async projection: `projector` handles every event after
    /// the projection's checkpoint (from the start for a new name), on its
    /// own thread, saving the checkpoint every 1000 events (see
    /// [`projection_with`](Runtime::projection_with)). With a durable log the
    /// checkpoint is a file in the log's directory, so the projection
    /// resumes after a restart; otherwise it resumes when restarted under
    /// the same name in this runtime. Delivery is at least once.
    pub fn projection(
        &self,
        name: &str,
        projector: impl crate::projection::Projector<E>,
    ) -> Result<crate::projection::Projection> {
        self.projection_with(
            name,
            crate::projection::ProjectionOptions::default(),
            projector,
        )
    }

    /// [`projection`](Runtime::projection) with settings.
    ///
    /// Errors: [`Error::Closed`] after [`shutdown`](Runtime::shutdown);
    /// [`Error::Config`] for a name that is not a plain file name.
    pub fn projection_with(
        &self,
        name: &str,
        options: crate::projection::ProjectionOptions,
        projector: impl crate::projection::Projector<E>,
    ) -> Result<crate::projection::Projection> {
        let checkpoints = self.checkpoints.lock();
        let checkpoints = Arc::clone(checkpoints.as_ref().ok_or(Error::Closed)?);
        let (projection, state) = crate::projection::Projection::start(
            Arc::clone(&self.shared),
            checkpoints,
            name,
            options,
            projector,
        )?;
        let mut list = self.projections.lock();
        list.retain(|p| p.name != name);
        list.push(state);
        Ok(projection)
    }

    /// Counters and the state of every view.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.stats;
        let appended = c.appended.load(Ordering::Relaxed);
        let batches = c.batches.load(Ordering::Relaxed);
        Stats {
            head: self.shared.log.head(),
            appended,
            batches,
            mean_batch: if batches == 0 {
                0.0
            } else {
                appended as f64 / batches as f64
            },
            rejected: c.rejected.load(Ordering::Relaxed),
            queue_depth: self.tx.len(),
            storage_failure: self.shared.storage_failure.get().cloned(),
            views: self
                .views
                .iter()
                .map(|v| ViewStats {
                    name: v.name().to_owned(),
                    position: v.position(),
                    failure: v.failure().map(str::to_owned),
                    fallback_clones: v.clones(),
                    snapshots_kept: v.snapshots_kept(),
                })
                .collect(),
            projections: {
                let head = self.shared.log.head().0;
                let list = self.projections.lock();
                list.iter()
                    .map(|p| {
                        let handled = p.handled.load(Ordering::Acquire);
                        ProjectionStats {
                            name: p.name.clone(),
                            handled: Position(handled),
                            checkpoint: Position(p.saved.load(Ordering::Acquire)),
                            lag: head.saturating_sub(handled),
                            running: p.running.load(Ordering::Acquire),
                            failure: p.failure.get().cloned(),
                        }
                    })
                    .collect()
            },
        }
    }

    /// Stops taking appends, sequences and acknowledges every append already
    /// queued, and joins the sequencer thread; then stops every projection
    /// (each saves its checkpoint after the event it is handling). Afterwards
    /// every append returns [`Error::Closed`]; readers keep the final
    /// snapshots; a durable log's directory is free for another runtime.
    /// Calling it again does nothing.
    pub fn shutdown(&self) -> Result<()> {
        let handle = self.thread.lock().take();
        let Some(handle) = handle else { return Ok(()) };
        let _span = tracing::debug_span!("shutdown").entered();
        self.shared.gate.close();
        // Nothing can follow this marker into the queue (see `Gate`). If the
        // sequencer already died, the send fails and the join reports it.
        let _ = self.tx.send(Msg::Shutdown);
        let joined = handle
            .join()
            .map_err(|payload| Error::SequencerPanicked(sync::panic_message(&*payload)));
        let projections = self.projections.lock();
        for p in projections.iter() {
            p.stop_and_wait();
        }
        self.checkpoints.lock().take();
        joined
    }

    fn view<V: View<E>>(&self, name: &str) -> Result<Arc<ViewState<V>>> {
        let status = self
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

impl<E: Event> Drop for Runtime<E> {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "rwlog runtime shut down with an error");
        }
    }
}

/// A picture of the runtime's counters, from [`Runtime::stats`].
///
/// ```
/// use rwlog::{Event, Recorded, Runtime, View};
///
/// #[derive(Clone)]
/// struct Tick;
/// impl Event for Tick {}
/// #[derive(Clone, Default)]
/// struct Count(u64);
/// impl View<Tick> for Count {
///     fn apply(&mut self, _: &Recorded<Tick>) { self.0 += 1 }
/// }
///
/// let rt = Runtime::<Tick>::builder().view("count", Count::default()).build()?;
/// rt.writer().append_batch("t", [Tick, Tick, Tick])?;
/// let stats = rt.stats();
/// assert_eq!((stats.appended, stats.batches, stats.mean_batch), (3, 1, 3.0));
/// assert_eq!(stats.views[0].position.0, 3);
/// # Ok::<(), rwlog::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// The log's head.
    pub head: Position,
    /// Events appended since start.
    pub appended: u64,
    /// Batches sequenced (each published once per view).
    pub batches: u64,
    /// Mean events per batch.
    pub mean_batch: f64,
    /// Appends rejected by the sequencer: a version conflict, or an event
    /// the store refused (too large, or not encodable).
    pub rejected: u64,
    /// Appends waiting in the queue right now.
    pub queue_depth: usize,
    /// Why the durable log failed, if it has: the runtime then refuses
    /// appends until reopened.
    pub storage_failure: Option<String>,
    /// Each view's state.
    pub views: Vec<ViewStats>,
    /// Each projection started on this runtime.
    pub projections: Vec<ProjectionStats>,
}

/// One projection's state in [`Stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProjectionStats {
    /// The projection's name.
    pub name: String,
    /// The last event it handled.
    pub handled: Position,
    /// The last checkpoint it saved.
    pub checkpoint: Position,
    /// Events appended but not yet handled: head − handled.
    pub lag: u64,
    /// Whether its thread is still running.
    pub running: bool,
    /// Why it stopped, if its handler failed.
    pub failure: Option<String>,
}

/// One view's state in [`Stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ViewStats {
    /// The view's name.
    pub name: String,
    /// The position of its published snapshot.
    pub position: Position,
    /// Why it failed, if its `apply` panicked.
    pub failure: Option<String>,
    /// Publications that cloned the state because every spare copy was held
    /// by a reader (each one adds a spare, up to `spare_copies`).
    pub fallback_clones: u64,
    /// Snapshots kept in memory for time travel, the initial state included.
    pub snapshots_kept: usize,
}
