//! Async projections: handlers that follow the log on their own thread,
//! with a checkpoint to resume from.
//!
//! Delivery is at least once: a projection saves its checkpoint every
//! `checkpoint_every` events (and when stopped or failed), so after a crash
//! it sees again the events handled since the last save. Handlers should be
//! idempotent, or keep their own position.

use std::fmt;
use std::io;
use std::time::Duration;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{Event, Recorded};
use crate::hub::Hub;
use crate::log::Log;
use crate::position::Position;
use crate::storage::{is_plain_file_name, CheckpointFiles, LogFacts};
use crate::subscription::Subscription;
use crate::sync::{thread, Arc, AtomicBool, AtomicU64, Mutex, OnceLock, Ordering};

/// Why a projection's handler gave up.
pub type ProjectionError = Box<dyn std::error::Error + Send + Sync>;

/// Handles the events a projection follows. Closures
/// `FnMut(&Recorded<E>) -> Result<(), ProjectionError>` are projectors.
pub trait Projector<E>: Send + 'static {
    /// Handles one event; an error stops the projection (only it).
    fn handle(&mut self, event: &Recorded<E>) -> std::result::Result<(), ProjectionError>;
}

impl<E, F> Projector<E> for F
where
    F: FnMut(&Recorded<E>) -> std::result::Result<(), ProjectionError> + Send + 'static,
{
    fn handle(&mut self, event: &Recorded<E>) -> std::result::Result<(), ProjectionError> {
        self(event)
    }
}

/// Where checkpoints are kept.
#[derive(Debug)]
pub(crate) enum Checkpoints {
    /// In the runtime: a projection restarted under the same name resumes.
    Memory(Mutex<std::collections::HashMap<String, Position>>),
    /// In `<log dir>/projections/<name>.checkpoint`: survives restarts.
    Dir(CheckpointFiles),
}

impl Checkpoints {
    /// Where projection `name` resumes after: its checkpoint if it has one
    /// that fits the log, else the start.
    fn load<E>(&self, name: &str, log: &Log<E>) -> Result<Position> {
        match self {
            Checkpoints::Memory(map) => {
                let map = map.lock();
                Ok(map.get(name).copied().unwrap_or(Position::ZERO))
            }
            Checkpoints::Dir(files) => {
                let id_at = |p: Position| log.get(p).map(|e| e.id);
                let facts = LogFacts {
                    log_id: files.log_id(),
                    head: log.head(),
                    id_at: &id_at,
                };
                Ok(files.load(name, &facts)?.unwrap_or(Position::ZERO))
            }
        }
    }

    fn save(&self, name: &str, position: Position, event_id: Uuid) -> io::Result<()> {
        match self {
            Checkpoints::Memory(map) => {
                map.lock().insert(name.to_owned(), position);
                Ok(())
            }
            Checkpoints::Dir(files) => files.save(name, position, event_id),
        }
    }
}

/// What a projection's thread and its handle share.
#[derive(Debug)]
pub(crate) struct ProjectionState {
    pub(crate) name: String,
    /// The last event handled.
    pub(crate) handled: AtomicU64,
    /// The last checkpoint saved.
    pub(crate) saved: AtomicU64,
    pub(crate) failure: OnceLock<String>,
    pub(crate) running: AtomicBool,
    stop: AtomicBool,
}

impl ProjectionState {
    /// The position of the last event handled.
    pub(crate) fn handled(&self) -> Position {
        Position(self.handled.load(Ordering::Relaxed))
    }

    /// The position of the last checkpoint saved.
    pub(crate) fn saved(&self) -> Position {
        Position(self.saved.load(Ordering::Relaxed))
    }

    /// Whether the projection's thread is still running.
    pub(crate) fn is_running(&self) -> bool {
        // Acquire pairs with the Release store at the end of the thread:
        // whoever sees it stopped also sees its last checkpoint saved.
        self.running.load(Ordering::Acquire)
    }

    /// Asks the projection's thread to stop after the event it is
    /// handling, and waits until it has saved its checkpoint and ended.
    pub(crate) fn stop_and_wait(&self) {
        self.stop.store(true, Ordering::Release);
        while self.running.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A running projection; from [`Runtime::projection`](crate::Runtime::projection).
/// Dropping it stops it (saving its checkpoint).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use rwlog::{Event, Runtime, Position};
///
/// #[derive(Clone, Debug)]
/// struct Ordered(u64);
/// impl Event for Ordered {}
///
/// let rt = Runtime::<Ordered>::builder().build()?;
/// let total = Arc::new(Mutex::new(0));
/// let sum = Arc::clone(&total);
/// let p = rt.projection("revenue", move |e: &rwlog::Recorded<Ordered>| {
///     *sum.lock().unwrap() += e.payload().0;
///     Ok(())
/// })?;
/// rt.writer().append("o", Ordered(5))?;
/// rt.writer().append("o", Ordered(7))?;
/// p.wait_for(Position(2), std::time::Duration::from_secs(10))?;
/// assert_eq!(*total.lock().unwrap(), 12);
/// assert_eq!(p.stop()?, Position(2)); // the saved checkpoint
/// # Ok::<(), rwlog::Error>(())
/// ```
pub struct Projection {
    shared: Arc<ProjectionState>,
    thread: Option<thread::JoinHandle<()>>,
}

impl fmt::Debug for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Projection")
            .field("name", &self.shared.name)
            .field("handled", &self.handled())
            .finish_non_exhaustive()
    }
}

/// Settings of [`Runtime::projection_with`](crate::Runtime::projection_with).
#[derive(Clone, Debug)]
pub struct ProjectionOptions {
    /// Save the checkpoint every this many events (default 1000).
    pub checkpoint_every: u64,
}

impl Default for ProjectionOptions {
    fn default() -> Self {
        ProjectionOptions {
            checkpoint_every: 1000,
        }
    }
}

impl Projection {
    pub(crate) fn start<E: Event>(
        shared: Arc<Hub<E>>,
        checkpoints: Arc<Checkpoints>,
        name: &str,
        options: ProjectionOptions,
        mut projector: impl Projector<E>,
    ) -> Result<(Projection, Arc<ProjectionState>)> {
        if !is_plain_file_name(name) {
            return Err(Error::Config(
                "a projection's name may use only letters, digits, '-', '_' and '.'",
            ));
        }
        let from = checkpoints.load(name, &shared.log)?;
        let state = Arc::new(ProjectionState {
            name: name.to_owned(),
            handled: AtomicU64::new(from.0),
            saved: AtomicU64::new(from.0),
            failure: OnceLock::new(),
            running: AtomicBool::new(true),
            stop: AtomicBool::new(false),
        });
        let every = options.checkpoint_every.max(1);
        let worker = Arc::clone(&state);
        let name = name.to_owned();
        let thread = thread::Builder::new()
            .name(format!("rwlog-projection-{name}"))
            .spawn(move || {
                let mut sub = Subscription::new(Arc::clone(&shared), from.next());
                let mut unsaved = 0;
                // The id of the last event handled, which its checkpoint names.
                let mut last_id = None;
                let save = |p: u64, id: Option<Uuid>| {
                    let Some(id) = id else { return };
                    match checkpoints.save(&name, Position(p), id) {
                        Ok(()) => worker.saved.store(p, Ordering::Release),
                        Err(e) => tracing::warn!(projection = %name, error = %e, "could not save a checkpoint"),
                    }
                };
                while !worker.stop.load(Ordering::Acquire) {
                    let Some(event) = sub.next_timeout(Duration::from_millis(20)) else {
                        if shared.exited() && sub.try_next().is_none() {
                            break;
                        }
                        continue;
                    };
                    let outcome = crate::sync::catch_unwind(|| projector.handle(&event));
                    let failure = match outcome {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(payload) => Some(crate::sync::panic_message(&*payload)),
                    };
                    if let Some(message) = failure {
                        tracing::error!(projection = %name, position = %event.position, %message, "projection failed");
                        let _ = worker.failure.set(format!("at position {}: {message}", event.position));
                        break;
                    }
                    worker.handled.store(event.position.0, Ordering::Release);
                    last_id = Some(event.id);
                    unsaved += 1;
                    if unsaved >= every {
                        save(event.position.0, last_id);
                        unsaved = 0;
                    }
                }
                let handled = worker.handled.load(Ordering::Acquire);
                if handled != worker.saved.load(Ordering::Acquire) {
                    save(handled, last_id);
                }
                worker.running.store(false, Ordering::Release);
            })?;
        let projection = Projection {
            shared: Arc::clone(&state),
            thread: Some(thread),
        };
        Ok((projection, state))
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The position of the last event handled.
    pub fn handled(&self) -> Position {
        Position(self.shared.handled.load(Ordering::Acquire))
    }

    /// Why the projection stopped, if its handler failed.
    pub fn failure(&self) -> Option<&str> {
        self.shared.failure.get().map(String::as_str)
    }

    /// Waits until the projection has handled `position`, or failed, or the
    /// timeout passed ([`Error::Timeout`]).
    pub fn wait_for(&self, position: Position, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.handled() >= position {
                return Ok(());
            }
            if let Some(f) = self.failure() {
                return Err(Error::Io(io::Error::other(format!(
                    "projection `{}` failed {f}",
                    self.shared.name
                ))));
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    waiting_for: position,
                });
            }
            thread::yield_now();
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Stops the projection, saves its checkpoint and returns it.
    pub fn stop(mut self) -> Result<Position> {
        self.halt()?;
        Ok(Position(self.shared.saved.load(Ordering::Acquire)))
    }

    fn halt(&mut self) -> Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|p| Error::SequencerPanicked(crate::sync::panic_message(&*p)))?;
        }
        Ok(())
    }
}

impl Drop for Projection {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}
