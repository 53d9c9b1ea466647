//! The builder: settings, views, storage, and starting a runtime.

use std::fmt;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::faults::Faults;
use crate::hub::Hub;
use crate::sequencer::{Combiner, Sequencer, Sequencing};
use crate::storage::{self, is_plain_file_name, SharedHead, Storage, Upcasters};
use crate::sync::{channel::bounded, thread, Arc};
use crate::view::{HistoryBound, View, ViewKey};

use super::open::{checkpoints_for, open_log, opener, Opener};
use super::views::{self, ViewFactory, ViewSetup};
use super::{Parts, Runtime};

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
    keep_snapshots: usize,
    disk_snapshot_every: u64,
    keep_disk_snapshots: usize,
    max_append_events: usize,
    spare_copies: usize,
    faults: Faults,
    storage: Option<(Storage, Opener<E>)>,
    archiving: super::Policy,
    upcasters: Upcasters<E>,
    dedupe_window: usize,
    sequencing: Sequencing,
    /// Names that become file names (persisted views'), checked before
    /// anything is opened.
    file_names: Vec<String>,
    /// Each persisted view's check of its snapshot files.
    checks: Vec<(String, crate::storage::SnapshotCheck)>,
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
            .field("keep_snapshots", &self.keep_snapshots)
            .field("disk_snapshot_every", &self.disk_snapshot_every)
            .field("keep_disk_snapshots", &self.keep_disk_snapshots)
            .field("max_append_events", &self.max_append_events)
            .field("spare_copies", &self.spare_copies)
            .field("storage", &self.storage.as_ref().map(|(s, _)| s))
            .field("upcasters", &self.upcasters)
            .finish()
    }
}

impl<E: Event> Builder<E> {
    pub(super) fn new() -> Builder<E> {
        Builder {
            views: Vec::new(),
            max_batch: 1024,
            queue_capacity: 1024,
            snapshot_every: 0,
            keep_snapshots: 64,
            disk_snapshot_every: 10_000,
            keep_disk_snapshots: 2,
            max_append_events: 64 * 1024,
            spare_copies: 2,
            faults: Faults::default(),
            storage: None,
            upcasters: Upcasters::default(),
            dedupe_window: 65_536,
            sequencing: Sequencing::default(),
            file_names: Vec::new(),
            checks: Vec::new(),
            archiving: super::Policy::default(),
        }
    }

    /// Registers a view under `name`, starting from `initial`.
    pub fn view<V: View<E>>(mut self, name: impl Into<String>, initial: V) -> Self {
        let name = name.into();
        self.views
            .push((name.clone(), views::in_memory(&name, initial)));
        self
    }

    /// Registers a view under `key`'s name, starting from `initial`, whose
    /// type the key fixes: see [`ViewKey`].
    pub fn view_keyed<V: View<E>>(self, key: ViewKey<V>, initial: V) -> Self {
        self.view(key.name(), initial)
    }

    /// The most events the sequencer takes into one batch (default 1024).
    /// One append is never split, so a batch can exceed this by one append.
    pub fn max_batch(self, n: usize) -> Self {
        self.with(|b| b.max_batch = n)
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
    /// each hand-off should carry more (BENCHMARKS.md measures one case).
    pub fn queue_capacity(self, n: usize) -> Self {
        self.with(|b| b.queue_capacity = n)
    }

    /// Keeps a copy of every view about every `n` events in memory, for
    /// time travel (default 0: none; time travel then replays from the
    /// start). Each copy is a clone of the view's state; how many are kept
    /// is bounded by [`keep_snapshots`](Builder::keep_snapshots). Snapshots
    /// on disk have their own cadence:
    /// [`disk_snapshot_every`](Builder::disk_snapshot_every).
    pub fn snapshot_every(self, n: u64) -> Self {
        self.with(|b| b.snapshot_every = n)
    }

    /// The most in-memory copies each view keeps for time travel, besides
    /// its initial state (default 64; 0: no bound). Past it, every other
    /// copy is dropped and the spacing doubles: the copies still cover the
    /// whole history, time travel to any position replays at most about two
    /// spacings of events, and memory stays at most `n + 1` states.
    pub fn keep_snapshots(self, n: usize) -> Self {
        self.with(|b| b.keep_snapshots = n)
    }

    /// Writes a snapshot of each [persisted view](Builder::persisted_view)
    /// to the log's directory about every `n` events (default 10,000; 0:
    /// never), whatever the in-memory cadence. Reopening starts from the
    /// newest valid one and replays only the events after it.
    pub fn disk_snapshot_every(self, n: u64) -> Self {
        self.with(|b| b.disk_snapshot_every = n)
    }

    /// How many snapshots of each persisted view stay on disk (default 2, at
    /// least 1): after each one written, older ones are removed. More than
    /// one lets a reopen fall back on an older snapshot should the newest be
    /// damaged (it otherwise replays from the start of the log).
    pub fn keep_disk_snapshots(self, n: usize) -> Self {
        self.with(|b| b.keep_disk_snapshots = n)
    }

    /// The most spare copies of each view's state (default 2, at least 1).
    ///
    /// The sequencer publishes into a spare no reader holds. With more
    /// threads than cores, a reader is sometimes preempted while holding a
    /// copy; with several spares another is free, and the sequencer need not
    /// clone the state. Spares are made only when needed: a view whose
    /// readers never pin a copy keeps one. Memory: up to `1 + n` copies.
    pub fn spare_copies(self, n: usize) -> Self {
        self.with(|b| b.spare_copies = n)
    }

    /// Breaks one protocol step on purpose, for loom's broken-variant
    /// models (`--cfg loom` builds only).
    #[cfg(loom)]
    pub fn faults(self, faults: Faults) -> Self {
        self.with(|b| b.faults = faults)
    }

    fn with(mut self, set: impl FnOnce(&mut Self)) -> Self {
        set(&mut self);
        self
    }

    /// How many recent appends are remembered for idempotence (default
    /// 65536; 0 turns it off). An append whose first event carries an id
    /// (given with [`NewEvent::with_id`](crate::NewEvent::with_id)) that a
    /// remembered append also carried is not written again: it is
    /// acknowledged with the original append's position and version. After
    /// a reopen, the newest `n` events are remembered one by one.
    pub fn dedupe_window(self, n: usize) -> Self {
        self.with(|b| b.dedupe_window = n)
    }

    /// Who runs the sequencer (default [`Sequencing::Combining`]: writers,
    /// whenever nobody else does; the sequencer thread for async tasks and
    /// to take over from a writer). [`Sequencing::Thread`] keeps every view's
    /// `apply` and every file sync off the writers' threads.
    pub fn sequencing(self, sequencing: Sequencing) -> Self {
        self.with(|b| b.sequencing = sequencing)
    }

    /// The most events one append may carry (default 65536).
    pub fn max_append_events(self, n: usize) -> Self {
        self.with(|b| b.max_append_events = n)
    }

    /// Starts the sequencer thread.
    ///
    /// Errors: [`Error::DuplicateView`] for two views of one name,
    /// [`Error::Config`] for a zero batch size, queue capacity or append
    /// limit, [`Error::Io`] if the sequencer thread cannot be started, and
    /// the errors of opening a log directory (see
    /// [`storage`](Builder::storage)).
    pub fn build(self) -> Result<Runtime<E>> {
        self.validate()?;
        let settings = self.settings();
        let views = self.registered();
        let opener = self.storage.map(|(_, open)| open);
        let (log, recovered, opened) = open_log(opener, self.upcasters, &views, settings.faults)?;
        let (store, dir, report, shared) = match opened {
            Some(o) => (Some(o.store), o.info, o.report, o.shared),
            None => (None, None, None, None),
        };
        let setup = ViewSetup {
            history: HistoryBound {
                every: self.snapshot_every,
                keep: self.keep_snapshots,
            },
            disk_every: self.disk_snapshot_every,
            disk_keep: self.keep_disk_snapshots,
            spares: settings.spare_copies,
            faults: settings.faults,
            ..ViewSetup::of(&log, dir.as_ref())
        };
        let (drivers, views) = views::start_all(self.views, &setup)?;
        drop(recovered);
        let hub = Arc::new(Hub::new(log, settings.faults, shared.clone()));
        let sequencer = Sequencer::new(
            Arc::clone(&hub),
            drivers,
            settings.max_batch,
            store,
            settings.dedupe_window,
            self.disk_snapshot_every,
        );
        let (tx, rx) = bounded(self.queue_capacity);
        let combiner = Combiner::new(rx, sequencer, self.sequencing, settings.faults);
        let (combiner, thread) = spawn_sequencer(combiner, Arc::clone(&hub))?;
        if let Some(shared) = &shared {
            wake_for_foreign(shared.as_ref(), &combiner);
        }
        Ok(Runtime::new(Parts {
            hub,
            tx,
            combiner,
            views,
            thread,
            checkpoints: Arc::new(checkpoints_for(dir.as_ref())),
            max_append_events: self.max_append_events,
            recovery: report,
            // A shared log's local directory holds no segments: no backup
            // or archiving of it.
            dir: dir
                .as_ref()
                .filter(|_| shared.is_none())
                .map(storage::dir_identity),
            persisted: self.file_names,
            archiving: self.archiving,
        }))
    }

    fn settings(&self) -> Settings {
        Settings {
            max_batch: self.max_batch,
            spare_copies: self.spare_copies,
            dedupe_window: self.dedupe_window,
            faults: self.faults,
        }
    }

    /// The views as opening storage needs to know them.
    fn registered(&self) -> crate::storage::Registered {
        crate::storage::Registered {
            persisted: self.checks.clone(),
            in_memory: self.views.len().saturating_sub(self.file_names.len()),
        }
    }

    fn validate(&self) -> Result<()> {
        let limits = [
            (self.max_batch, "max_batch must be at least 1"),
            (self.queue_capacity, "queue_capacity must be at least 1"),
            (
                self.max_append_events,
                "max_append_events must be at least 1",
            ),
            (self.spare_copies, "spare_copies must be at least 1"),
            (
                self.keep_disk_snapshots,
                "keep_disk_snapshots must be at least 1",
            ),
        ];
        if let Some((_, why)) = limits.iter().find(|(n, _)| *n == 0) {
            return Err(Error::Config(why));
        }
        let on_dir = self.storage.as_ref().is_some_and(|(s, _)| s.is_dir());
        if self.archiving.retain.is_some() && !on_dir {
            return Err(Error::Config(
                "retain archives the segments of a log directory: use it with Storage::dir",
            ));
        }
        if self.archiving.retain.is_some() && self.file_names.len() < self.views.len() {
            return Err(Error::Config(
                "retain needs every view persisted (Builder::persisted_view): an in-memory view \
                 could not be rebuilt without the archived events",
            ));
        }
        if !self.file_names.iter().all(|n| is_plain_file_name(n)) {
            return Err(Error::Config(
                "a persisted view's name may use only letters, digits, '-', '_' and '.'",
            ));
        }
        let mut names = std::collections::HashSet::new();
        match self
            .views
            .iter()
            .find(|(name, _)| !names.insert(name.as_str()))
        {
            Some((name, _)) => Err(Error::DuplicateView(name.clone())),
            None => Ok(()),
        }
    }
}

/// The builder's settings that outlive `build`'s first steps.
struct Settings {
    max_batch: usize,
    spare_copies: usize,
    dedupe_window: usize,
    faults: Faults,
}

/// The tailer of a shared log wakes the sequencer thread to adopt other
/// processes' appends (holding it weakly: it must not keep it alive).
fn wake_for_foreign<E: Event>(shared: &dyn SharedHead, combiner: &Arc<Combiner<E>>) {
    let combiner = Arc::downgrade(combiner);
    shared.set_wake(Box::new(move || {
        if let Some(c) = combiner.upgrade() {
            c.hand_off();
        }
    }));
}

/// Starts the sequencer thread, with the guard that answers everyone when
/// it ends.
fn spawn_sequencer<E: Event>(
    combiner: Combiner<E>,
    hub: Arc<Hub<E>>,
) -> Result<(Arc<Combiner<E>>, thread::JoinHandle<()>)> {
    let combiner = Arc::new(combiner);
    let exit = ExitGuard {
        hub,
        combiner: Arc::clone(&combiner),
    };
    let runs = Arc::clone(&combiner);
    let thread = thread::Builder::new()
        .name("rwlog-sequencer".into())
        .spawn(move || {
            let _exit = exit;
            runs.run_thread();
        })
        .map_err(Error::Io)?;
    Ok((combiner, thread))
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
        self.storage = opener::<E>(&storage).map(|open| (storage, open));
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
    #[cfg(feature = "durable")]
    pub fn upcaster<Old, F>(mut self, from_schema_version: u32, upcast: F) -> Self
    where
        Old: DeserializeOwned,
        F: Fn(Old) -> E + Send + Sync + 'static,
    {
        self.upcasters.add(from_schema_version, upcast);
        self
    }

    /// Keeps this much of a durable log and archives the rest, about once a
    /// second and on [`Runtime::apply_retention`]: see
    /// [`Runtime::archive_before`] for what archiving does and what it
    /// waits for. Every view must be [persisted](Builder::persisted_view).
    ///
    /// Errors from `build`: [`Error::Config`] if a view is not persisted.
    #[cfg(feature = "durable")]
    pub fn retain(self, retention: crate::storage::Retention) -> Self {
        self.with(|b| b.archiving.retain = Some(retention))
    }

    /// Where archived segments go: moved to the log directory's `archive/`
    /// (the default) or deleted.
    #[cfg(feature = "durable")]
    pub fn archive_mode(self, mode: crate::storage::ArchiveMode) -> Self {
        self.with(|b| b.archiving.mode = mode)
    }

    /// Registers a view whose snapshots are also written to the log's
    /// directory (every [`disk_snapshot_every`](Builder::disk_snapshot_every)
    /// events, default 10,000, keeping the newest
    /// [`keep_disk_snapshots`](Builder::keep_disk_snapshots): temp file,
    /// fsync, rename, directory fsync), so that reopening starts
    /// from the newest valid one instead of replaying the whole log. A
    /// damaged snapshot is skipped in favour of an older one or a replay.
    /// With an in-memory log this is [`view`](Builder::view).
    ///
    /// The name must be a plain file name: letters, digits, `-`, `_`, `.`.
    #[cfg(feature = "durable")]
    pub fn persisted_view<V>(mut self, name: impl Into<String>, initial: V) -> Self
    where
        V: View<E> + Serialize + DeserializeOwned,
    {
        let name = name.into();
        self.file_names.push(name.clone());
        let check = Arc::new(storage::usable_snapshot::<V>);
        self.checks.push((name.clone(), check));
        self.views
            .push((name.clone(), views::persisted(&name, initial)));
        self
    }
}

/// Runs when the sequencer thread ends, normally or by a panic: no writer
/// may be left waiting and no reader may wait for a publication that will
/// never come.
struct ExitGuard<E: Event> {
    hub: Arc<Hub<E>>,
    combiner: Arc<Combiner<E>>,
}

impl<E: Event> Drop for ExitGuard<E> {
    fn drop(&mut self) {
        let gate = &self.hub.gate;
        if !gate.is_closed() {
            // Died without a shutdown: close the gate ourselves, draining so
            // that senders blocked on a full queue get through it.
            gate.close_draining(|| self.combiner.drop_queued());
        }
        // Dropping an unanswered command answers its writer `Closed`.
        self.combiner.drop_queued();
        self.hub.set_exited();
    }
}
