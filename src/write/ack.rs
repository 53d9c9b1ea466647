//! Acknowledgements: the one-shot cell between a writer's [`Ticket`] and
//! the sequencer's [`Reply`], polled briefly and then parked on.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::position::Position;
use crate::sync::{Arc, AtomicBool, Condvar, Mutex, Ordering};

/// How long a waiter polls for its ack before parking: a short spin only,
/// no yields: with more waiting writers than cores, a yield hands the core
/// to another waiter rather than to the sequencer.
const SPINS: u32 = crate::sync::budget(256);

/// Waiters polling for an ack right now, in the whole process. A waiter
/// polls only while fewer than cores − 1 others do, so the sequencer always
/// has a core to produce the acks: with two waiters on two cores, both
/// polling left the sequencer waiting for one of them to give up.
static POLLING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many waiters may poll at once: one fewer than the cores this process
/// may run on (at least one, so a lone waiter on one core still polls).
fn max_polling() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .max(1)
    })
}

/// Polls `done` for up to `SPINS` rounds if few enough other waiters are
/// polling (see [`POLLING`]); returns at once otherwise. A heuristic of
/// where to spend time, not a synchronization: `done` is read again under
/// the lock whatever happens here, so plain std atomics are enough.
/// Under loom the count is left out: it would carry over from one explored
/// interleaving to the next, and every interleaving must start alike.
fn poll_briefly(done: &AtomicBool) {
    use std::sync::atomic::Ordering as StdOrdering;
    let spin = || {
        for _ in 0..SPINS {
            // Acquire pairs with the Release store in `resolve`.
            if done.load(Ordering::Acquire) {
                break;
            }
            crate::sync::spin_loop();
        }
    };
    if cfg!(loom) {
        return spin();
    }
    if POLLING.fetch_add(1, StdOrdering::Relaxed) < max_polling() {
        spin();
    }
    POLLING.fetch_sub(1, StdOrdering::Relaxed);
}

/// The acknowledgement of an append: where its events landed.
///
/// ```
/// use rwlog::{Event, Runtime};
///
/// #[derive(Clone)]
/// struct Tick;
/// impl Event for Tick {}
///
/// let rt = Runtime::<Tick>::builder().build()?;
/// rt.writer().append("other", Tick)?;
/// let a = rt.writer().append_batch("t", [Tick, Tick, Tick])?;
/// assert_eq!((a.first_position().0, a.position.0, a.count), (2, 4, 3));
/// assert_eq!((a.first_version(), a.version), (1, 3));
/// # Ok::<(), rwlog::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Appended {
    /// The global position of the append's last event.
    pub position: Position,
    /// The stream's version after the append (its last event's version).
    pub version: u64,
    /// How many events the append wrote (contiguous positions and versions).
    pub count: u64,
}

impl Appended {
    /// The global position of the append's first event.
    pub fn first_position(&self) -> Position {
        Position(self.position.0 + 1 - self.count)
    }

    /// The stream version of the append's first event.
    pub fn first_version(&self) -> u64 {
        self.version + 1 - self.count
    }
}

enum State {
    Pending { waiting: bool, waker: Option<Waker> },
    Done(Result<Appended>),
    Taken,
}

/// The cell a ticket and its reply share: the answer, and how to wake
/// whoever waits for it.
struct AckCell {
    state: Mutex<State>,
    cv: Condvar,
    /// Set (Release) once `state` is `Done`, so waiters can poll it without
    /// the lock before they park.
    done: AtomicBool,
    /// Set when the ticket is dropped (a hint: nobody will read the
    /// answer, so the sequencer may skip storing it).
    ticket_gone: AtomicBool,
}

impl AckCell {
    fn new() -> AckCell {
        AckCell {
            state: Mutex::new(State::Pending {
                waiting: false,
                waker: None,
            }),
            cv: Condvar::new(),
            done: AtomicBool::new(false),
            ticket_gone: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, State> {
        self.state.lock()
    }
}

/// Ticket cells a thread made, for reuse by its later appends once their
/// ticket and reply are both gone. Without it every append allocates a cell
/// on the writer's thread, and the sequencer frees it when the ticket was
/// dropped first (`submit` and forget): a cross-thread free, the sequencer's
/// most expensive step per event.
#[cfg(not(loom))]
mod cells {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::AckCell;
    use crate::sync::Arc;

    /// Cells each thread keeps at most: twice the default queue capacity,
    /// so that a thread keeping the queue full finds its oldest cell free
    /// again. A cell is 96 bytes: at most 192 KiB per thread, and only for a
    /// thread with that many appends in flight (the pool grows only when
    /// its oldest cell is still in use).
    const POOLED: usize = 2048;

    thread_local! {
        static CELLS: RefCell<VecDeque<Arc<AckCell>>> = const { RefCell::new(VecDeque::new()) };
    }

    /// A pending cell: the oldest of this thread's if nobody else holds it,
    /// else a new one, kept for later if the pool has room.
    pub(super) fn take() -> Arc<AckCell> {
        CELLS
            .try_with(|cells| {
                // Not reentrant in practice; a fresh cell if it ever is.
                let Ok(mut cells) = cells.try_borrow_mut() else {
                    return Arc::new(AckCell::new());
                };
                if let Some(mut oldest) = cells.pop_front() {
                    if let Some(cell) = Arc::get_mut(&mut oldest) {
                        // Only the pool holds it: its ticket and reply are
                        // gone, and Arc::get_mut synchronized with their
                        // drops. Reset it to pending.
                        *cell = AckCell::new();
                        cells.push_back(Arc::clone(&oldest));
                        return oldest;
                    }
                    // Still in use: look at it again after the others.
                    cells.push_back(oldest);
                }
                let cell = Arc::new(AckCell::new());
                if cells.len() < POOLED {
                    cells.push_back(Arc::clone(&cell));
                }
                cell
            })
            // The thread is exiting and its pool is gone.
            .unwrap_or_else(|_| Arc::new(AckCell::new()))
    }
}

#[cfg(loom)]
mod cells {
    use super::AckCell;
    use crate::sync::Arc;

    /// Under loom, a new cell each time: the pool would carry over from one
    /// explored interleaving to the next.
    pub(super) fn take() -> Arc<AckCell> {
        Arc::new(AckCell::new())
    }
}

/// The pending acknowledgement of a submitted append. Wait on it with
/// [`wait`](Ticket::wait), or `.await` it.
///
/// ```
/// use std::time::Duration;
/// use rwlog::{Event, Runtime};
///
/// #[derive(Clone)]
/// struct Tick;
/// impl Event for Tick {}
///
/// let rt = Runtime::<Tick>::builder().build()?;
/// let w = rt.writer();
/// let tickets: Vec<_> = (0..10).map(|_| w.submit("t", Tick)).collect::<Result<_, _>>()?;
/// // One writer's appends are sequenced in order: the last ack covers all.
/// let last = tickets.into_iter().last().unwrap();
/// assert_eq!(last.wait_timeout(Duration::from_secs(10)).unwrap()?.position.0, 10);
/// # Ok::<(), rwlog::Error>(())
/// ```
pub struct Ticket {
    cell: Arc<AckCell>,
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = !matches!(*self.cell.lock(), State::Pending { .. });
        f.debug_struct("Ticket").field("done", &done).finish()
    }
}

impl Ticket {
    pub(crate) fn pair() -> (Ticket, Reply) {
        let cell = cells::take();
        (
            Ticket {
                cell: Arc::clone(&cell),
            },
            Reply { cell: Some(cell) },
        )
    }

    /// Blocks until the append is acknowledged or rejected.
    pub fn wait(self) -> Result<Appended> {
        self.wait_deadline(None).unwrap_or(Err(Error::Closed))
    }

    /// Waits at most `timeout`; `None` if the append is still pending.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<Appended>> {
        self.wait_deadline(Some(std::time::Instant::now() + timeout))
    }

    /// The result if the append is done: one load when it is not.
    pub(crate) fn take_if_done(&self) -> Option<Result<Appended>> {
        // Acquire pairs with the Release store in `resolve`.
        if !self.cell.done.load(Ordering::Acquire) {
            return None;
        }
        take_done(&mut self.cell.lock())
    }

    /// The result if the append is done, without waiting.
    pub fn try_wait(&self) -> Option<Result<Appended>> {
        let mut state = self.cell.lock();
        take_done(&mut state)
    }

    fn wait_deadline(&self, deadline: Option<std::time::Instant>) -> Option<Result<Appended>> {
        // Acks usually come within microseconds: poll briefly before paying
        // for a park and a wake-up.
        poll_briefly(&self.cell.done);
        let mut state = self.cell.lock();
        loop {
            if let Some(r) = take_done(&mut state) {
                return Some(r);
            }
            if let State::Pending { waiting, .. } = &mut *state {
                *waiting = true;
            }
            state = match deadline {
                None => self.cell.cv.wait(state),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return None;
                    }
                    self.cell.cv.wait_timeout(state, d - now)
                }
            };
        }
    }
}

fn take_done(state: &mut State) -> Option<Result<Appended>> {
    match std::mem::replace(state, State::Taken) {
        State::Done(r) => Some(r),
        State::Taken => Some(Err(Error::Closed)),
        pending => {
            *state = pending;
            None
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // Relaxed: a hint to `resolve`, which publishes nothing.
        self.cell.ticket_gone.store(true, Ordering::Relaxed);
    }
}

impl Future for Ticket {
    type Output = Result<Appended>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.cell.lock();
        if let Some(r) = take_done(&mut state) {
            return Poll::Ready(r);
        }
        if let State::Pending { waker, .. } = &mut *state {
            match waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        Poll::Pending
    }
}

/// The sequencer's end of a [`Ticket`]. Dropped without an answer (the
/// runtime went away), it answers [`Error::Closed`], so no waiter hangs.
pub(crate) struct Reply {
    cell: Option<Arc<AckCell>>,
}

impl Reply {
    /// The reply of a command its writer sequences on its own thread (see
    /// `Drain::sequence_now`): no cell; the sequencer keeps the answer for
    /// the writer to take. Dropped unanswered, it does nothing.
    pub(crate) fn own() -> Reply {
        Reply { cell: None }
    }

    /// Whether this is an [`own`](Reply::own) reply.
    pub(crate) fn is_own(&self) -> bool {
        self.cell.is_none()
    }

    pub(crate) fn send(mut self, result: Result<Appended>) {
        if let Some(cell) = self.cell.take() {
            resolve(cell, result);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            resolve(cell, Err(Error::Closed));
        }
    }
}

fn resolve(cell: Arc<AckCell>, result: Result<Appended>) {
    // The ticket is gone (submitted and dropped): nobody can see the
    // answer, so skip the lock. (Not the reference count: a pool that
    // outlived its thread, or not, changes it.) Relaxed: only the flag is
    // read; the cell is reused only through `Arc::get_mut`.
    if cell.ticket_gone.load(Ordering::Relaxed) {
        return;
    }
    let mut state = cell.lock();
    let (waiting, waker) = match std::mem::replace(&mut *state, State::Done(result)) {
        State::Pending { waiting, waker } => (waiting, waker),
        other => {
            *state = other;
            return;
        }
    };
    // Release pairs with the Acquire poll in `Ticket::wait_deadline`.
    cell.done.store(true, Ordering::Release);
    drop(state);
    // Waking costs a system call: only when someone waits.
    if waiting {
        cell.cv.notify_all();
    }
    if let Some(w) = waker {
        w.wake();
    }
}
