//! Writers: handles that send events to the sequencer and wait for their
//! acknowledgement.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::NewEvent;
use crate::position::{Expected, Position, StreamId};
use crate::sequencer::{AppendCmd, Events, Gate, Msg};
use crate::sync::channel::{Sender, TrySendError};
use crate::sync::{Arc, AtomicBool, Condvar, Mutex, Ordering};

/// How long a waiter polls for its ack before parking: a short spin only.
/// Yielding as well helped an idle runtime little and, with more waiting
/// writers than cores, gave the CPU to other waiters instead of the
/// sequencer.
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

/// A handle for appending events of type `E`. Clone it for each writer
/// thread or task; it is `Send` and `Sync`.
///
/// Every method returns [`Error::Closed`] once the runtime has shut down. A
/// rejected append (a conflict, bad input) has written nothing.
///
/// ```
/// use rwlog::{Event, Expected, Runtime, Error};
///
/// #[derive(Clone, Debug)]
/// struct Deposited(u64);
/// impl Event for Deposited {}
///
/// let rt = Runtime::<Deposited>::builder().build()?;
/// let w = rt.writer();
/// let a = w.append("acct-1", Deposited(5))?;
/// assert_eq!((a.position.0, a.version), (1, 1));
///
/// // Optimistic concurrency: expect the stream to be at version 1.
/// let b = w.append_expecting("acct-1", Expected::Exact(1), [Deposited(1), Deposited(2)])?;
/// assert_eq!((b.first_position().0, b.position.0, b.version), (2, 3, 3));
/// let stale = w.append_expecting("acct-1", Expected::Exact(1), [Deposited(9)]);
/// assert!(matches!(stale, Err(Error::Conflict { actual: 3, .. })));
///
/// // Fire and forget, then wait later.
/// let ticket = w.submit("acct-2", Deposited(7))?;
/// assert_eq!(ticket.wait()?.position.0, 4);
/// # Ok::<(), rwlog::Error>(())
/// ```
pub struct Writer<E> {
    tx: Sender<Msg<E>>,
    gate: Arc<Gate>,
    writer_id: Option<Arc<str>>,
    max_append: usize,
}

impl<E> Clone for Writer<E> {
    fn clone(&self) -> Self {
        Writer {
            tx: self.tx.clone(),
            gate: Arc::clone(&self.gate),
            writer_id: self.writer_id.clone(),
            max_append: self.max_append,
        }
    }
}

impl<E> fmt::Debug for Writer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("writer_id", &self.writer_id)
            .finish_non_exhaustive()
    }
}

impl<E: Send + 'static> Writer<E> {
    pub(crate) fn new(
        tx: Sender<Msg<E>>,
        gate: Arc<Gate>,
        writer_id: Option<Arc<str>>,
        max_append: usize,
    ) -> Writer<E> {
        Writer {
            tx,
            gate,
            writer_id,
            max_append,
        }
    }

    /// Appends one event and waits until it is in the log and every view has
    /// published it.
    pub fn append(
        &self,
        stream: impl Into<StreamId>,
        event: impl Into<NewEvent<E>>,
    ) -> Result<Appended> {
        self.submit(stream, event)?.wait()
    }

    /// Appends events to one stream atomically (all or none, at contiguous
    /// positions) if the stream's version matches `expected`; otherwise
    /// returns [`Error::Conflict`] and appends nothing.
    pub fn append_expecting<I>(
        &self,
        stream: impl Into<StreamId>,
        expected: Expected,
        events: I,
    ) -> Result<Appended>
    where
        I: IntoIterator,
        I::Item: Into<NewEvent<E>>,
    {
        self.submit_expecting(stream, expected, events)?.wait()
    }

    /// Appends events to one stream atomically, whatever its version.
    pub fn append_batch<I>(&self, stream: impl Into<StreamId>, events: I) -> Result<Appended>
    where
        I: IntoIterator,
        I::Item: Into<NewEvent<E>>,
    {
        self.append_expecting(stream, Expected::Any, events)
    }

    /// Enqueues one event and returns at once (waiting only for room in the
    /// queue) with a [`Ticket`] for its acknowledgement. Dropping the ticket
    /// does not cancel the append.
    pub fn submit(
        &self,
        stream: impl Into<StreamId>,
        event: impl Into<NewEvent<E>>,
    ) -> Result<Ticket> {
        let events = Events::One(self.stamp(event.into()));
        self.send(stream.into(), Expected::Any, events, true)
    }

    /// Enqueues an atomic append with an expected version; see
    /// [`append_expecting`](Writer::append_expecting).
    pub fn submit_expecting<I>(
        &self,
        stream: impl Into<StreamId>,
        expected: Expected,
        events: I,
    ) -> Result<Ticket>
    where
        I: IntoIterator,
        I::Item: Into<NewEvent<E>>,
    {
        let events = self.collect(events)?;
        self.send(stream.into(), expected, events, true)
    }

    /// Like [`append`](Writer::append), but returns [`Error::Full`] at once
    /// instead of waiting for room in a full queue.
    pub fn try_append(
        &self,
        stream: impl Into<StreamId>,
        event: impl Into<NewEvent<E>>,
    ) -> Result<Appended> {
        self.try_submit(stream, event)?.wait()
    }

    /// Like [`submit`](Writer::submit), but returns [`Error::Full`] at once
    /// instead of waiting for room in a full queue.
    pub fn try_submit(
        &self,
        stream: impl Into<StreamId>,
        event: impl Into<NewEvent<E>>,
    ) -> Result<Ticket> {
        let events = Events::One(self.stamp(event.into()));
        self.send(stream.into(), Expected::Any, events, false)
    }

    /// Appends one event from async code: the returned future resolves when
    /// the event is acknowledged, without blocking the executor's thread.
    /// When the queue is full it waits for room on tokio's blocking pool
    /// (or, outside a tokio runtime, on the calling thread).
    #[cfg(feature = "async")]
    pub async fn append_async(
        &self,
        stream: impl Into<StreamId>,
        event: impl Into<NewEvent<E>>,
    ) -> Result<Appended> {
        let events = Events::One(self.stamp(event.into()));
        self.send_async(stream.into(), Expected::Any, events).await
    }

    /// [`append_expecting`](Writer::append_expecting) for async code: waits
    /// for room and for the acknowledgement without blocking the executor.
    #[cfg(feature = "async")]
    pub async fn append_expecting_async<I>(
        &self,
        stream: impl Into<StreamId>,
        expected: Expected,
        events: I,
    ) -> Result<Appended>
    where
        I: IntoIterator,
        I::Item: Into<NewEvent<E>>,
    {
        let events = self.collect(events)?;
        self.send_async(stream.into(), expected, events).await
    }

    #[cfg(feature = "async")]
    async fn send_async(
        &self,
        stream: StreamId,
        expected: Expected,
        events: Events<E>,
    ) -> Result<Appended> {
        let (ticket, msg) = command(stream, expected, events);
        match self.enqueue(msg, false) {
            Ok(()) => {}
            Err(Refused::Full(msg)) => {
                let writer = self.clone();
                let send = move || writer.enqueue(*msg, true).map_err(Refused::into_error);
                match tokio::runtime::Handle::try_current() {
                    Ok(handle) => handle
                        .spawn_blocking(send)
                        .await
                        .map_err(|_| Error::Closed)??,
                    Err(_) => send()?,
                }
            }
            Err(refused) => return Err(refused.into_error()),
        }
        ticket.await
    }

    fn stamp(&self, mut event: NewEvent<E>) -> NewEvent<E> {
        if let Some(id) = &self.writer_id {
            let m = event.metadata.get_or_insert_with(Default::default);
            if m.writer_id.is_none() {
                m.writer_id = Some(id.to_string());
            }
        }
        event
    }

    fn collect<I>(&self, events: I) -> Result<Events<E>>
    where
        I: IntoIterator,
        I::Item: Into<NewEvent<E>>,
    {
        let mut list = Vec::new();
        for e in events {
            if list.len() == self.max_append {
                return Err(Error::TooLarge {
                    what: "an append's event count",
                    size: self.max_append as u64 + 1,
                    max: self.max_append as u64,
                });
            }
            list.push(self.stamp(e.into()));
        }
        match list.len() {
            0 => Err(Error::EmptyAppend),
            1 => Ok(Events::One(list.pop().ok_or(Error::EmptyAppend)?)),
            _ => Ok(Events::Many(list)),
        }
    }

    fn send(
        &self,
        stream: StreamId,
        expected: Expected,
        events: Events<E>,
        block: bool,
    ) -> Result<Ticket> {
        let (ticket, msg) = command(stream, expected, events);
        self.enqueue(msg, block).map_err(Refused::into_error)?;
        Ok(ticket)
    }

    fn enqueue(&self, msg: Msg<E>, block: bool) -> std::result::Result<(), Refused<E>> {
        // Holding the pass while sending is what lets shutdown know that no
        // append can reach the queue after its own marker.
        let _pass = self.gate.enter().map_err(|_| Refused::Closed)?;
        if block {
            self.tx.send(msg).map_err(|_| Refused::Closed)
        } else {
            self.tx.try_send(msg).map_err(|e| match e {
                TrySendError::Full(msg) => Refused::Full(Box::new(msg)),
                TrySendError::Disconnected(_) => Refused::Closed,
            })
        }
    }
}

fn command<E>(stream: StreamId, expected: Expected, events: Events<E>) -> (Ticket, Msg<E>) {
    let (ticket, reply) = Ticket::pair();
    let msg = Msg::Append(AppendCmd {
        stream,
        expected,
        events,
        reply,
    });
    (ticket, msg)
}

/// Why a command did not enter the queue.
enum Refused<E> {
    /// The queue is full; the command comes back for a blocking retry.
    Full(#[cfg_attr(not(feature = "async"), allow(dead_code))] Box<Msg<E>>),
    Closed,
}

impl<E> Refused<E> {
    fn into_error(self) -> Error {
        match self {
            Refused::Full(_) => Error::Full,
            Refused::Closed => Error::Closed,
        }
    }
}

enum State {
    Pending { waiting: bool, waker: Option<Waker> },
    Done(Result<Appended>),
    Taken,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    /// Set (Release) once `state` is `Done`, so waiters can poll it without
    /// the lock before they park.
    done: AtomicBool,
    /// Set (Release) when the ticket is dropped: nobody will read the
    /// answer, so the sequencer may skip storing it.
    ticket_gone: AtomicBool,
}

impl Shared {
    fn new() -> Shared {
        Shared {
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

    use super::Shared;
    use crate::sync::Arc;

    /// Cells each thread keeps at most: twice the default queue capacity,
    /// so that a thread keeping the queue full finds its oldest cell free
    /// again. A cell is 96 bytes: at most 192 KiB per thread, and only for a
    /// thread with that many appends in flight (the pool grows only when
    /// its oldest cell is still in use).
    const POOLED: usize = 2048;

    thread_local! {
        static CELLS: RefCell<VecDeque<Arc<Shared>>> = const { RefCell::new(VecDeque::new()) };
    }

    /// A pending cell: the oldest of this thread's if nobody else holds it,
    /// else a new one, kept for later if the pool has room.
    pub(super) fn take() -> Arc<Shared> {
        CELLS
            .try_with(|cells| {
                // Not reentrant in practice; a fresh cell if it ever is.
                let Ok(mut cells) = cells.try_borrow_mut() else {
                    return Arc::new(Shared::new());
                };
                if let Some(mut oldest) = cells.pop_front() {
                    if let Some(cell) = Arc::get_mut(&mut oldest) {
                        // Only the pool holds it: its ticket and reply are
                        // gone, and Arc::get_mut synchronized with their
                        // drops. Reset it to pending.
                        *cell = Shared::new();
                        cells.push_back(Arc::clone(&oldest));
                        return oldest;
                    }
                    // Still in use: look at it again after the others.
                    cells.push_back(oldest);
                }
                let cell = Arc::new(Shared::new());
                if cells.len() < POOLED {
                    cells.push_back(Arc::clone(&cell));
                }
                cell
            })
            // The thread is exiting and its pool is gone.
            .unwrap_or_else(|_| Arc::new(Shared::new()))
    }
}

#[cfg(loom)]
mod cells {
    use super::Shared;
    use crate::sync::Arc;

    /// Under loom, a new cell each time: the pool would carry over from one
    /// explored interleaving to the next.
    pub(super) fn take() -> Arc<Shared> {
        Arc::new(Shared::new())
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
    shared: Arc<Shared>,
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = !matches!(*self.shared.lock(), State::Pending { .. });
        f.debug_struct("Ticket").field("done", &done).finish()
    }
}

impl Ticket {
    pub(crate) fn pair() -> (Ticket, Reply) {
        let shared = cells::take();
        (
            Ticket {
                shared: Arc::clone(&shared),
            },
            Reply {
                shared: Some(shared),
            },
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

    /// The result if the append is done, without waiting.
    pub fn try_wait(&self) -> Option<Result<Appended>> {
        let mut state = self.shared.lock();
        take_done(&mut state)
    }

    fn wait_deadline(&self, deadline: Option<std::time::Instant>) -> Option<Result<Appended>> {
        // Acks usually come within microseconds: poll briefly before paying
        // for a park and a wake-up.
        poll_briefly(&self.shared.done);
        let mut state = self.shared.lock();
        loop {
            if let Some(r) = take_done(&mut state) {
                return Some(r);
            }
            if let State::Pending { waiting, .. } = &mut *state {
                *waiting = true;
            }
            state = match deadline {
                None => self.shared.cv.wait(state),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return None;
                    }
                    self.shared.cv.wait_timeout(state, d - now)
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
        // Release pairs with the Acquire load in `resolve`.
        self.shared.ticket_gone.store(true, Ordering::Release);
    }
}

impl Future for Ticket {
    type Output = Result<Appended>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.shared.lock();
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
    shared: Option<Arc<Shared>>,
}

impl Reply {
    pub(crate) fn send(mut self, result: Result<Appended>) {
        if let Some(shared) = self.shared.take() {
            resolve(shared, result);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            resolve(shared, Err(Error::Closed));
        }
    }
}

fn resolve(shared: Arc<Shared>, result: Result<Appended>) {
    // The ticket is gone (submitted and dropped): nobody can see the
    // answer, so skip the lock. (Not the reference count: a pool that
    // outlived its thread, or not, changes it.)
    if shared.ticket_gone.load(Ordering::Acquire) {
        return;
    }
    let mut state = shared.lock();
    let (waiting, waker) = match std::mem::replace(&mut *state, State::Done(result)) {
        State::Pending { waiting, waker } => (waiting, waker),
        other => {
            *state = other;
            return;
        }
    };
    // Release pairs with the Acquire poll in `Ticket::wait_deadline`.
    shared.done.store(true, Ordering::Release);
    drop(state);
    // Waking costs a system call: only when someone waits.
    if waiting {
        shared.cv.notify_all();
    }
    if let Some(w) = waker {
        w.wake();
    }
}
