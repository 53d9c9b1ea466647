//! Projections: handlers that follow the log on their own thread (or, for
//! `async` handlers, as a tokio task), with a checkpoint to resume from.
//!
//! Delivery is at least once: a projection saves its checkpoint every
//! `checkpoint_every` events (and when stopped or failed), so after a crash
//! it sees again the events handled since the last save. Handlers should be
//! idempotent, or keep their own position.

mod checkpoints;
#[cfg(feature = "async")]
mod task;
mod worker;

pub(crate) use checkpoints::Checkpoints;
#[cfg(feature = "async")]
pub(crate) use task::start as start_task;
#[cfg(feature = "async")]
pub use task::AsyncProjection;

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::{Event, Recorded};
use crate::hub::Hub;
use crate::position::Position;
use crate::signal::{self, Signal};
use crate::storage::is_plain_file_name;
use crate::sync::{self, thread, Arc, AtomicBool, AtomicU64, Mutex, OnceLock, Ordering};

use worker::Worker;

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

/// What a projection's thread, its handle and the runtime share.
///
/// Its atomics are numbers and flags for stats and for the thread's stop
/// request (all Relaxed): nothing is published through them. Whoever needs
/// the thread's work finished (its last checkpoint saved) joins it.
#[derive(Debug)]
pub(crate) struct ProjectionState {
    pub(crate) name: String,
    /// The last event handled.
    handled: AtomicU64,
    /// The last checkpoint saved.
    saved: AtomicU64,
    pub(crate) failure: OnceLock<String>,
    running: AtomicBool,
    stop: AtomicBool,
    /// What runs the handler: a thread, joined to stop it, or a task.
    runner: Runner,
    /// Notified when `handled`, `failure` or `running` change.
    pub(crate) signal: Signal,
}

/// What runs a projection's handler.
#[derive(Debug)]
enum Runner {
    /// A thread of its own, joined when stopped.
    Thread(Mutex<Option<thread::JoinHandle<()>>>),
    /// A tokio task: stopping it saves its checkpoint at once, after which
    /// the task records nothing more (see [`task`]).
    #[cfg(feature = "async")]
    Task(task::Control),
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
        self.running.load(Ordering::Relaxed)
    }

    /// Asks the projection to stop after the event it is handling, and
    /// joins its thread (for a task: saves its checkpoint and lets it end
    /// on its own, without waiting, so this never blocks a task's thread).
    /// Afterwards its checkpoint is saved and it writes nothing more to
    /// the log's directory. Errors if the thread panicked outside the
    /// projector.
    pub(crate) fn stop_and_join(&self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match &self.runner {
            Runner::Thread(handle) => {
                let thread = handle.lock().take();
                match thread.map(thread::JoinHandle::join) {
                    Some(Err(payload)) => {
                        Err(Error::SequencerPanicked(sync::panic_message(&*payload)))
                    }
                    _ => Ok(()),
                }
            }
            #[cfg(feature = "async")]
            Runner::Task(control) => {
                control.finish(self);
                Ok(())
            }
        }
    }

    /// Records that the event at `position` was handled, for waiters,
    /// stats and the lag metric (`head`: the log's head now).
    fn advanced<E>(&self, event: &Recorded<E>, head: Position) {
        self.handled.store(event.position.0, Ordering::Relaxed);
        self.signal.notify();
        self.report_lag(event, head);
    }

    /// The lag metric, as of handling `event` (no work without metrics).
    fn report_lag<E>(&self, event: &Recorded<E>, head: Position) {
        if !crate::telemetry::ENABLED {
            return;
        }
        let age = crate::event::Timestamp::now()
            .as_nanos()
            .saturating_sub(event.recorded_at.as_nanos());
        let behind = head.0.saturating_sub(self.handled().0);
        crate::telemetry::projection_lag(&self.name, behind, Duration::from_nanos(age));
    }

    /// Records the handler's failure on `event` (`head`: the log's head).
    fn fail<E>(&self, event: &Recorded<E>, head: Position, message: &str) {
        self.fail_at(event.position, message);
        self.report_lag(event, head);
    }

    /// Marks the projection failed at `position` (an event it could not
    /// handle, or could not read).
    fn fail_at(&self, position: Position, message: &str) {
        tracing::error!(projection = %self.name, %position, %message, "projection failed");
        let _ = self
            .failure
            .set(format!("at position {position}: {message}"));
        self.signal.notify();
        crate::telemetry::projection_failed(&self.name);
    }

    /// Marks the projection stopped, for waiters and stats.
    fn ended(&self) {
        self.running.store(false, Ordering::Relaxed);
        self.signal.notify();
    }

    /// How a wait for `position` ends now, if it does.
    fn settled(&self, position: Position) -> Option<Result<()>> {
        if self.handled() >= position {
            return Some(Ok(()));
        }
        if let Some(f) = self.failure.get() {
            return Some(Err(Error::ProjectionFailed {
                name: self.name.clone(),
                message: f.clone(),
            }));
        }
        if !self.is_running() {
            return Some(Err(Error::Closed));
        }
        None
    }

    /// Waits, parking the thread, until `position` is handled or the wait
    /// ends otherwise (see [`Projection::wait_for`]).
    fn wait_for(&self, position: Position, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        let settled = || self.settled(position).is_some();
        self.signal.wait_until(Some(deadline), settled);
        self.settled(position).unwrap_or(Err(Error::Timeout {
            waiting_for: position,
        }))
    }

    /// [`wait_for`](ProjectionState::wait_for) as a future.
    async fn wait_for_async(&self, position: Position) -> Result<()> {
        signal::until(&self.signal, || self.settled(position)).await
    }

    /// A new projection's state, resuming after `from`.
    fn new(name: &str, from: Position, runner: Runner) -> ProjectionState {
        ProjectionState {
            name: name.to_owned(),
            handled: AtomicU64::new(from.0),
            saved: AtomicU64::new(from.0),
            failure: OnceLock::new(),
            running: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            runner,
            signal: Signal::default(),
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
/// let p = rt.projection("revenue", move |e| {
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
    state: Arc<ProjectionState>,
}

impl fmt::Debug for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Projection")
            .field("name", &self.state.name)
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
        hub: Arc<Hub<E>>,
        checkpoints: Arc<Checkpoints>,
        name: &str,
        options: ProjectionOptions,
        projector: impl Projector<E>,
    ) -> Result<(Projection, Arc<ProjectionState>)> {
        check_name(name)?;
        let from = checkpoints.load(name, &hub.log)?;
        let state = Arc::new(ProjectionState::new(
            name,
            from,
            Runner::Thread(Mutex::new(None)),
        ));
        let worker = Worker {
            hub,
            checkpoints,
            state: Arc::clone(&state),
            projector,
            from,
            every: options.checkpoint_every.max(1),
        };
        let thread = thread::Builder::new()
            .name(format!("rwlog-projection-{name}"))
            .spawn(move || worker.run())?;
        #[allow(irrefutable_let_patterns)] // without the `async` feature
        if let Runner::Thread(handle) = &state.runner {
            *handle.lock() = Some(thread);
        }
        let projection = Projection {
            state: Arc::clone(&state),
        };
        Ok((projection, state))
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// The position of the last event handled.
    pub fn handled(&self) -> Position {
        self.state.handled()
    }

    /// Why the projection stopped, if its handler failed.
    pub fn failure(&self) -> Option<&str> {
        self.state.failure.get().map(String::as_str)
    }

    /// Waits until the projection has handled `position`, or failed, or the
    /// timeout passed ([`Error::Timeout`]). Parks the thread; see
    /// [`wait_for_async`](Projection::wait_for_async) for tasks.
    ///
    /// Errors: [`Error::Timeout`]; [`Error::ProjectionFailed`] naming the handler's
    /// failure; [`Error::Closed`] if the projection stopped before it.
    pub fn wait_for(&self, position: Position, timeout: Duration) -> Result<()> {
        self.state.wait_for(position, timeout)
    }

    /// [`wait_for`](Projection::wait_for) as a future, without a timeout
    /// (wrap it in one, such as `tokio::time::timeout`): the thread is not
    /// blocked, and the task is woken when the projection moves.
    pub async fn wait_for_async(&self, position: Position) -> Result<()> {
        self.state.wait_for_async(position).await
    }

    /// Stops the projection, saves its checkpoint and returns it.
    pub fn stop(self) -> Result<Position> {
        self.state.stop_and_join()?;
        Ok(self.state.saved())
    }
}

/// A projection's name becomes a file name.
fn check_name(name: &str) -> Result<()> {
    if is_plain_file_name(name) {
        Ok(())
    } else {
        Err(Error::Config(
            "a projection's name may use only letters, digits, '-', '_' and '.'",
        ))
    }
}

impl Drop for Projection {
    fn drop(&mut self) {
        let _ = self.state.stop_and_join();
    }
}
