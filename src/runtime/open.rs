//! Opening storage for the builder: a log directory or a shared log, and
//! where projections keep their checkpoints.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;
use crate::event::{Batch, Event, Recorded};
use crate::faults::Faults;
use crate::log::Log;
use crate::projection::Checkpoints;
#[cfg(feature = "durable")]
use crate::storage::{self, CheckpointFiles};
use crate::storage::{
    DirInfo, Engine, RecoveryReport, Registered, SharedHead, Start, Storage, Store, Upcasters,
};
use crate::sync::{Arc, Mutex};

/// What opening durable storage gives the builder.
pub(super) struct Opened<E> {
    pub(super) events: Vec<Recorded<E>>,
    /// Where the log starts, if its front was archived.
    pub(super) start: Option<Start>,
    /// With a memory window: where the log's memory starts and how it reads
    /// what is before.
    #[cfg(feature = "durable")]
    pub(super) cold: Option<crate::storage::ColdStart<E>>,
    pub(super) store: Box<dyn Store<E>>,
    /// A log directory's facts.
    pub(super) info: Option<DirInfo>,
    pub(super) report: Option<RecoveryReport>,
    /// A shared log's head, for strong reads and the tailer's wake-ups.
    pub(super) shared: Option<Arc<dyn SharedHead>>,
}

/// Opens durable storage (the builder knows `E: Serialize` only here).
pub(super) type Opener<E> = Box<dyn FnOnce(Arc<Upcasters<E>>, &Registered) -> Result<Opened<E>>>;

/// Opens durable storage, timing the recovery.
pub(super) fn open_storage<E>(
    open: Opener<E>,
    upcasters: Arc<Upcasters<E>>,
    views: &Registered,
) -> Result<Opened<E>> {
    let started = std::time::Instant::now();
    let opened = open(upcasters, views)?;
    tracing::info!(
        events = opened.events.len(),
        ms = started.elapsed().as_millis() as u64,
        "recovered the log"
    );
    Ok(opened)
}

/// Opens storage, if there is any, and the log as recovered: from its
/// horizon if its front was archived (or a shared log's process starts
/// from its restart point), its events one batch, kept whole like any
/// other. Also what opening storage gave, but its events.
#[allow(clippy::type_complexity)]
pub(super) fn open_log<E>(
    opener: Option<Opener<E>>,
    upcasters: Upcasters<E>,
    views: &Registered,
    faults: Faults,
) -> Result<(Log<E>, Batch<E>, Option<Opened<E>>)> {
    let mut opened = match opener {
        Some(open) => Some(open_storage(open, Arc::new(upcasters), views)?),
        None => None,
    };
    let events = opened.as_mut().map(|o| std::mem::take(&mut o.events));
    let recovered: Batch<E> = Arc::new(events.unwrap_or_default().into());
    let log = match opened.as_mut().and_then(|o| o.start.take()) {
        Some(s) => Log::starting_at(faults, s.first, (s.before_id, s.before_time), s.versions),
        None => Log::new(faults),
    };
    #[cfg(feature = "durable")]
    let log = match opened.as_mut().and_then(|o| o.cold.take()) {
        Some(c) => log.hold_from(c.held, c.window, c.reader, c.streams),
        None => log,
    };
    log.append(&recovered);
    Ok((log, recovered, opened))
}

/// Where projections keep checkpoints: the log's directory, if it has one.
pub(super) fn checkpoints_for(dir: Option<&DirInfo>) -> Checkpoints {
    match dir {
        #[cfg(feature = "durable")]
        Some(info) => Checkpoints::Dir(CheckpointFiles::new(info)),
        #[cfg(not(feature = "durable"))]
        Some(info) => match *info {},
        None => Checkpoints::Memory(Mutex::new(Default::default())),
    }
}

/// How `build` opens `storage`: nothing to open for a log in memory.
pub(super) fn opener<E: Event + Serialize + DeserializeOwned>(
    storage: &Storage,
) -> Option<Opener<E>> {
    match &storage.engine {
        Engine::Memory => None,
        #[cfg(feature = "durable")]
        Engine::Dir(options) => {
            let options = options.clone();
            Some(Box::new(move |upcasters, _views| {
                let recovered = storage::open::<E>(&options, &upcasters)?;
                Ok(Opened {
                    events: recovered.events,
                    start: recovered.horizon.as_ref().map(|h| h.start()),
                    cold: recovered.cold,
                    store: Box::new(recovered.writer),
                    info: Some(recovered.info),
                    report: Some(recovered.report),
                    shared: None,
                })
            }))
        }
        #[cfg(feature = "postgres")]
        Engine::Postgres(options) => {
            let options = options.clone();
            Some(Box::new(move |upcasters, views| {
                let opened = storage::postgres::open::<E>(&options, upcasters, views)?;
                tracing::debug!(log_id = %opened.log_id, "a shared log");
                Ok(Opened {
                    events: opened.events,
                    start: opened.start,
                    cold: None,
                    store: Box::new(opened.store),
                    info: opened.local,
                    report: None,
                    shared: Some(Arc::new(opened.head)),
                })
            }))
        }
    }
}
