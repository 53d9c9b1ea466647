//! Opening storage for the builder: a log directory or a shared log, and
//! where projections keep their checkpoints.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;
use crate::event::{Event, Recorded};
use crate::projection::Checkpoints;
#[cfg(feature = "durable")]
use crate::storage::{self, CheckpointFiles};
use crate::storage::{
    DirInfo, Engine, RecoveryReport, SharedHead, Start, Storage, Store, Upcasters,
};
use crate::sync::{Arc, Mutex};

/// What opening durable storage gives the builder.
pub(super) struct Opened<E> {
    pub(super) events: Vec<Recorded<E>>,
    /// Where the log starts, if its front was archived.
    pub(super) start: Option<Start>,
    pub(super) store: Box<dyn Store<E>>,
    /// A log directory's facts.
    pub(super) info: Option<DirInfo>,
    pub(super) report: Option<RecoveryReport>,
    /// A shared log's head, for strong reads and the tailer's wake-ups.
    pub(super) shared: Option<Arc<dyn SharedHead>>,
}

/// Opens durable storage (the builder knows `E: Serialize` only here).
pub(super) type Opener<E> = Box<dyn FnOnce(Arc<Upcasters<E>>) -> Result<Opened<E>>>;

/// Opens durable storage, timing the recovery.
pub(super) fn open_storage<E>(open: Opener<E>, upcasters: Arc<Upcasters<E>>) -> Result<Opened<E>> {
    let started = std::time::Instant::now();
    let opened = open(upcasters)?;
    tracing::info!(
        events = opened.events.len(),
        ms = started.elapsed().as_millis() as u64,
        "recovered the log"
    );
    Ok(opened)
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
            Some(Box::new(move |upcasters| {
                let recovered = storage::open::<E>(&options, &upcasters)?;
                Ok(Opened {
                    events: recovered.events,
                    start: recovered.horizon.as_ref().map(|h| h.start()),
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
            Some(Box::new(move |upcasters| {
                let opened = storage::postgres::open::<E>(&options, upcasters)?;
                tracing::debug!(log_id = %opened.log_id, "a shared log");
                Ok(Opened {
                    events: opened.events,
                    start: None,
                    store: Box::new(opened.store),
                    info: None,
                    report: None,
                    shared: Some(Arc::new(opened.head)),
                })
            }))
        }
    }
}
