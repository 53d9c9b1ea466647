//! Starting the views: each from its newest usable snapshot (persisted
//! views) or its initial state, caught up with the recovered log.

#[cfg(feature = "durable")]
use serde::de::DeserializeOwned;
#[cfg(feature = "durable")]
use serde::Serialize;

use crate::error::{Error, Result};
use crate::faults::Faults;
use crate::log::Log;
use crate::position::Position;
use crate::storage::DirInfo;
#[cfg(feature = "durable")]
use crate::storage::{LogFacts, SnapshotFiles};
use crate::sync::Arc;
#[cfg(feature = "durable")]
use crate::view::Persist;
use crate::view::{
    AnyView, DiskSnapshots, HistoryBound, Publisher, Snapshot, View, ViewDriver, ViewState,
};

/// What a view needs to start: its settings, and the events recovered from
/// disk (empty for an in-memory log) to catch up on.
pub(super) struct ViewSetup<'a, E> {
    pub(super) history: HistoryBound,
    /// Persisted views: a snapshot on disk about every this many events
    /// (0: none), keeping the newest `disk_keep`.
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    pub(super) disk_every: u64,
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    pub(super) disk_keep: usize,
    pub(super) spares: usize,
    pub(super) faults: Faults,
    /// The log as recovered (from its first position: 1, a horizon or a
    /// restart point; older events perhaps read from disk).
    pub(super) log: &'a Log<E>,
    /// The log directory, for views whose snapshots persist.
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    pub(super) dir: Option<&'a DirInfo>,
}

impl<'a, E> ViewSetup<'a, E> {
    /// A setup for the recovered log (the other settings at their
    /// defaults, to be set).
    pub(super) fn of(log: &'a Log<E>, dir: Option<&'a DirInfo>) -> ViewSetup<'a, E> {
        ViewSetup {
            history: HistoryBound { every: 0, keep: 0 },
            disk_every: 0,
            disk_keep: 1,
            spares: 1,
            faults: Faults::default(),
            log,
            dir,
        }
    }
}

/// Starts one view.
pub(super) type ViewFactory<E> =
    Box<dyn FnOnce(ViewSetup<'_, E>) -> Result<(Box<dyn ViewDriver<E>>, Arc<dyn AnyView>)>>;

/// A started view: the sequencer's side, and the runtime's.
type Started<E> = (Box<dyn ViewDriver<E>>, Arc<dyn AnyView>);

/// A view whose state lives in memory only.
pub(super) fn in_memory<V: View<E>, E: Send + Sync + 'static>(
    name: &str,
    initial: V,
) -> ViewFactory<E> {
    let name: Arc<str> = Arc::from(name);
    Box::new(move |setup| {
        rebuildable(&name, Position::ZERO, setup.log.first())?;
        Ok(start(name, initial, setup, None, None))
    })
}

/// A view folded from `from` needs the events after it: refused if they
/// were archived.
fn rebuildable(name: &str, from: Position, first: Position) -> Result<()> {
    if from.next() >= first {
        return Ok(());
    }
    tracing::error!(view = %name, from = %from, first = %first,
        "the view has no snapshot at or after the log's horizon and cannot be rebuilt");
    Err(Error::Archived {
        requested: from.next(),
        first_available: first,
    })
}

/// A view whose snapshots are also written to the log's directory, and
/// which starts from the newest one that fits the recovered log.
#[cfg(feature = "durable")]
pub(super) fn persisted<V, E>(name: &str, initial: V) -> ViewFactory<E>
where
    V: View<E> + Serialize + DeserializeOwned,
    E: Send + Sync + 'static,
{
    let name: Arc<str> = Arc::from(name);
    Box::new(move |setup| {
        let Some(info) = setup.dir else {
            return Ok(start(name, initial, setup, None, None));
        };
        let files = SnapshotFiles::new(info, &name);
        let base = newest_snapshot::<V, E>(&files, info, &setup)?;
        rebuildable(
            &name,
            base.as_ref().map_or(Position::ZERO, |b| b.position),
            setup.log.first(),
        )?;
        let keep = setup.disk_keep;
        let write: Persist<V> = Box::new(move |s: &Snapshot<V>, event_id| {
            files.write(s.position, event_id, &s.state)?;
            files.prune(keep).map(drop)
        });
        let disk = DiskSnapshots {
            write,
            every: setup.disk_every,
            last: base.as_ref().map_or(0, |b| b.position.0),
        };
        Ok(start(name, initial, setup, base, Some(disk)))
    })
}

/// Brings a view up to the recovered log from `base` (or `initial`).
fn start<V: View<E>, E: Send + Sync + 'static>(
    name: Arc<str>,
    initial: V,
    setup: ViewSetup<'_, E>,
    base: Option<Snapshot<V>>,
    disk: Option<DiskSnapshots<V>>,
) -> Started<E> {
    let state = ViewState::new(name, initial, setup.history);
    state.recover(base, setup.log);
    let publisher = Publisher::<V, E>::new(Arc::clone(&state), setup.spares, setup.faults, disk);
    (Box::new(publisher), state)
}

/// Starts every view from the recovered events: the sequencer's side of
/// each, and the runtime's.
#[allow(clippy::type_complexity)]
pub(super) fn start_all<E>(
    factories: Vec<(String, ViewFactory<E>)>,
    setup: &ViewSetup<'_, E>,
) -> Result<(Vec<Box<dyn ViewDriver<E>>>, Vec<Arc<dyn AnyView>>)> {
    let mut drivers = Vec::with_capacity(factories.len());
    let mut views = Vec::with_capacity(factories.len());
    for (_, factory) in factories {
        let (driver, view) = factory(ViewSetup { ..*setup })?;
        drivers.push(driver);
        views.push(view);
    }
    Ok((drivers, views))
}

/// The newest snapshot on disk that fits the recovered log.
#[cfg(feature = "durable")]
fn newest_snapshot<V, E>(
    files: &SnapshotFiles,
    info: &DirInfo,
    setup: &ViewSetup<'_, E>,
) -> Result<Option<Snapshot<V>>>
where
    V: View<E> + DeserializeOwned,
{
    let log = setup.log;
    let id_at = |p: Position| log.id_at(p);
    let facts = LogFacts {
        log_id: info.log_id,
        head: log.head(),
        first: log.first(),
        id_at: &id_at,
    };
    let loaded = files.load_newest::<V>(&facts)?;
    Ok(loaded.map(|(position, state)| Snapshot { position, state }))
}
