//! Async projections: an `async fn` handler run as a tokio task, for
//! handlers that await (an HTTP client, a database driver).
//!
//! Stopping such a projection must not block a thread: it may be stopped
//! from a task on the very thread that runs it. So stopping (by a drop, or
//! by the runtime's shutdown) does not wait for the task: it takes the
//! progress lock, saves the checkpoint of the last event handled and marks
//! the projection stopped; the task records nothing after that (an event it
//! was handling meanwhile is delivered again after a restart: at least
//! once), and ends at its next step. [`AsyncProjection::stop`] does the
//! same and then awaits the task's end, without blocking.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{Event, EventRef};
use crate::hub::Hub;
use crate::position::Position;
use crate::signal::{Signal, Waiting};
use crate::subscription::{Subscription, SubscriptionStream};
use crate::sync::{self, Arc, Mutex, Ordering};

use super::{check_name, Checkpoints, ProjectionError, ProjectionOptions, ProjectionState, Runner};

/// A running async projection; from
/// [`Runtime::projection_async`](crate::Runtime::projection_async). Dropping
/// it stops it (saving its checkpoint) without waiting for its task; see
/// [`stop`](AsyncProjection::stop) to wait.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use rwlog::{Event, Position, Runtime};
///
/// #[derive(Clone, Debug)]
/// struct Ordered(u64);
/// impl Event for Ordered {}
///
/// # let tasks = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # tasks.block_on(async {
/// let rt = Runtime::<Ordered>::builder().build()?;
/// let total = Arc::new(AtomicU64::new(0));
/// let sum = Arc::clone(&total);
/// let p = rt.projection_async("revenue", move |e| {
///     let sum = Arc::clone(&sum);
///     async move {
///         // An async client would be awaited here.
///         sum.fetch_add(e.payload().0, Ordering::Relaxed);
///         Ok(())
///     }
/// })?;
/// rt.writer().append_async("o", Ordered(5)).await?;
/// rt.writer().append_async("o", Ordered(7)).await?;
/// p.wait_for_async(Position(2)).await?;
/// assert_eq!(total.load(Ordering::Relaxed), 12);
/// assert_eq!(p.stop().await?, Position(2)); // the saved checkpoint
/// # Ok::<(), rwlog::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncProjection {
    state: Arc<ProjectionState>,
}

impl fmt::Debug for AsyncProjection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncProjection")
            .field("name", &self.state.name)
            .field("handled", &self.handled())
            .finish_non_exhaustive()
    }
}

impl AsyncProjection {
    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// The position of the last event handled.
    pub fn handled(&self) -> Position {
        self.state.handled()
    }

    /// Why the projection stopped, if its handler failed (returned an
    /// error or panicked).
    pub fn failure(&self) -> Option<&str> {
        self.state.failure.get().map(String::as_str)
    }

    /// Resolves once the projection has handled `position`, or failed
    /// ([`Error::ProjectionFailed`]), or stopped first
    /// ([`Error::Closed`]). No timeout: wrap it in one.
    pub async fn wait_for_async(&self, position: Position) -> Result<()> {
        self.state.wait_for_async(position).await
    }

    /// Stops the projection, saves its checkpoint and returns it, once its
    /// task has ended. A handler still waiting on an event is cancelled
    /// (dropped at its await): the checkpoint was saved before that event,
    /// so it is delivered again after a restart.
    ///
    /// Errors: [`Error::SequencerPanicked`] if the task panicked outside
    /// the handler.
    pub async fn stop(self) -> Result<Position> {
        self.state.stop_and_join()?;
        let task = match &self.state.runner {
            Runner::Task(control) => control.handle.lock().take(),
            Runner::Thread(_) => None,
        };
        if let Some(task) = task {
            task.abort();
            match task.await {
                Err(e) if e.is_panic() => {
                    let message = sync::panic_message(&*e.into_panic());
                    return Err(Error::SequencerPanicked(message));
                }
                // Ended, or cancelled with its tokio runtime.
                _ => {}
            }
        }
        Ok(self.state.saved())
    }
}

impl Drop for AsyncProjection {
    fn drop(&mut self) {
        let _ = self.state.stop_and_join();
    }
}

/// The stopper's side of a task.
pub(super) struct Control {
    progress: Mutex<Progress>,
    /// Wakes the task to see the stop flag.
    wake: Signal,
    handle: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

/// What the task has handled since the last checkpoint.
struct Progress {
    /// Where checkpoints go; dropped once stopped (a log directory's
    /// checkpoints hold its lock, which must not outlive the runtime).
    checkpoints: Option<Arc<Checkpoints>>,
    /// Once set, the task records nothing more.
    stopped: bool,
    /// The id of the last event handled, which its checkpoint names.
    last_id: Option<Uuid>,
    unsaved: u64,
}

impl Control {
    /// Stops the projection: saves the checkpoint of the last event handled
    /// (once) and wakes the task to end.
    pub(super) fn finish(&self, state: &ProjectionState) {
        {
            let mut progress = self.progress.lock();
            if !progress.stopped {
                progress.stopped = true;
                if state.handled() != state.saved() {
                    progress.save(state, state.handled());
                }
                progress.checkpoints = None;
            }
        }
        state.ended();
        self.wake.notify();
    }

    /// Records a handled event; false if the projection was stopped
    /// meanwhile (the event is then not recorded).
    fn handled<E>(
        &self,
        state: &ProjectionState,
        event: &EventRef<E>,
        head: Position,
        every: u64,
    ) -> bool {
        let mut progress = self.progress.lock();
        if progress.stopped {
            return false;
        }
        state.advanced(event, head);
        progress.last_id = Some(event.id);
        progress.unsaved += 1;
        if progress.unsaved >= every {
            progress.save(state, event.position);
            progress.unsaved = 0;
        }
        true
    }
}

impl Progress {
    fn save(&self, state: &ProjectionState, position: Position) {
        let (Some(checkpoints), Some(id)) = (&self.checkpoints, self.last_id) else {
            return;
        };
        match checkpoints.save(&state.name, position, id) {
            Ok(()) => state.saved.store(position.0, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(projection = %state.name, error = %e, "could not save a checkpoint")
            }
        }
    }
}

/// Starts an async projection on the current tokio runtime.
pub(crate) fn start<E, F, Fut>(
    hub: Arc<Hub<E>>,
    checkpoints: Arc<Checkpoints>,
    name: &str,
    options: ProjectionOptions,
    handler: F,
) -> Result<(AsyncProjection, Arc<ProjectionState>)>
where
    E: Event,
    F: FnMut(EventRef<E>) -> Fut + Send + 'static,
    Fut: Future<Output = std::result::Result<(), ProjectionError>> + Send + 'static,
{
    check_name(name)?;
    let tasks = tokio::runtime::Handle::try_current()
        .map_err(|_| Error::Config("an async projection starts only within a tokio runtime"))?;
    let from = checkpoints.load(name, &hub.log)?;
    let control = Control {
        progress: Mutex::new(Progress {
            checkpoints: Some(checkpoints),
            stopped: false,
            last_id: None,
            unsaved: 0,
        }),
        wake: Signal::default(),
        handle: Mutex::new(None),
    };
    let state = Arc::new(ProjectionState::new(name, from, Runner::Task(control)));
    let sub = Subscription::new(Arc::clone(&hub), from.next()).into_stream();
    let every = options.checkpoint_every.max(1);
    // However the task ends (its loop, or dropped with its tokio runtime,
    // polled or not), the projection is stopped: its checkpoint saved, its
    // waiters told. The guard is the future's own: dropped with it.
    let finish = Finish(Arc::clone(&state));
    let running = run(hub, Arc::clone(&state), sub, handler, every);
    let task = tasks.spawn(async move {
        let _finish = finish;
        running.await
    });
    if let Runner::Task(control) = &state.runner {
        *control.handle.lock() = Some(task);
    }
    let projection = AsyncProjection {
        state: Arc::clone(&state),
    };
    Ok((projection, state))
}

/// Stops the projection when dropped (see [`start`]).
struct Finish(Arc<ProjectionState>);

impl Drop for Finish {
    fn drop(&mut self) {
        if let Runner::Task(control) = &self.0.runner {
            control.finish(&self.0);
        }
    }
}

/// The task: the next event (or the stop), the handler, the record.
async fn run<E, F, Fut>(
    hub: Arc<Hub<E>>,
    state: Arc<ProjectionState>,
    mut sub: SubscriptionStream<E>,
    mut handler: F,
    every: u64,
) where
    E: Event,
    F: FnMut(EventRef<E>) -> Fut,
    Fut: Future<Output = std::result::Result<(), ProjectionError>>,
{
    let Runner::Task(control) = &state.runner else {
        return;
    };
    while let Some(event) = next(&state, control, &mut sub).await {
        // The handler itself may panic before it returns its future.
        let outcome = match sync::catch_unwind(|| handler(event.clone())) {
            Ok(future) => handle(future).await,
            Err(payload) => Err(sync::panic_message(&*payload)),
        };
        if let Err(message) = outcome {
            if !control.progress.lock().stopped {
                state.fail(&event, hub.log.head(), &message);
            }
            break;
        }
        if !control.handled(&state, &event, hub.log.head(), every) {
            break;
        }
    }
    if let Some(error) = sub.error() {
        // It fell behind the log's horizon: what it missed was archived.
        state.fail_at(sub.position(), &error.to_string());
    }
}

/// Runs one handler's future; a panic while it is polled is a failure like
/// an error.
async fn handle<Fut>(future: Fut) -> std::result::Result<(), String>
where
    Fut: Future<Output = std::result::Result<(), ProjectionError>>,
{
    let mut handling = pin!(future);
    std::future::poll_fn(
        |cx| match sync::catch_unwind(|| handling.as_mut().poll(cx)) {
            Ok(Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
            Ok(Poll::Ready(Err(e))) => Poll::Ready(Err(e.to_string())),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(sync::panic_message(&*payload))),
        },
    )
    .await
}

/// The next event, or `None` once stopped, or once the runtime has shut
/// down and every event was handled.
async fn next<E: Event>(
    state: &ProjectionState,
    control: &Control,
    sub: &mut SubscriptionStream<E>,
) -> Option<EventRef<E>> {
    use futures_core::Stream;
    // Taken out of the stop wake-up's wakers when this wait ends.
    let mut waiting = Waiting::new(&control.wake);
    std::future::poll_fn(|cx| {
        if state.stop.load(Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        waiting.register(cx.waker());
        // Re-check after registering: a stop in between would not wake us.
        if state.stop.load(Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        std::pin::Pin::new(&mut *sub).poll_next(cx)
    })
    .await
}
