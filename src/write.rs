//! Writers: handles that send events to the sequencer and wait for their
//! acknowledgement.

mod ack;
mod queue;

pub(crate) use ack::Reply;
pub use ack::{Appended, Ticket};
pub(crate) use queue::{AppendCmd, Drain, Events, Gate, Queued};

use std::fmt;

use crate::error::{Error, Result};
use crate::event::NewEvent;
use crate::position::{Expected, StreamId};
use crate::sync::channel::{Sender, TrySendError};
use crate::sync::Arc;
use crate::telemetry;

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
    tx: Sender<AppendCmd<E>>,
    gate: Arc<Gate>,
    drain: Arc<dyn Drain<E>>,
    writer_id: Option<Arc<str>>,
    max_append: usize,
}

impl<E> Clone for Writer<E> {
    fn clone(&self) -> Self {
        Writer {
            tx: self.tx.clone(),
            gate: Arc::clone(&self.gate),
            drain: Arc::clone(&self.drain),
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
        tx: Sender<AppendCmd<E>>,
        gate: Arc<Gate>,
        drain: Arc<dyn Drain<E>>,
        writer_id: Option<Arc<str>>,
        max_append: usize,
    ) -> Writer<E> {
        Writer {
            tx,
            gate,
            drain,
            writer_id,
            max_append,
        }
    }

    /// Appends one event and waits until it is in the log and every view has
    /// published it. With [`Sequencing::Combining`](crate::Sequencing) (the
    /// default) the calling thread usually sequences the append itself.
    pub fn append(
        &self,
        stream: impl Into<StreamId>,
        event: impl Into<NewEvent<E>>,
    ) -> Result<Appended> {
        let started = telemetry::start();
        let events = Events::One(self.stamp(event.into()));
        self.append_now(stream.into(), Expected::Any, events, started)
    }

    /// An append its writer waits for: sequenced on this thread at once if
    /// nobody sequences and nothing is queued (no queue, no ticket), else
    /// queued and waited for.
    fn append_now(
        &self,
        stream: StreamId,
        expected: Expected,
        events: Events<E>,
        started: telemetry::Started,
    ) -> Result<Appended> {
        let (ticket, cmd) = match self.now(stream, expected, events, Queued::Waiting)? {
            Now::Done(done) => return acknowledged(done, started),
            Now::Queue(ticket, cmd) => (ticket, cmd),
        };
        self.enqueue(cmd, true).map_err(Refused::into_error)?;
        self.drain.queued(Queued::Waiting);
        self.wait(ticket, started)
    }

    /// Sequences an append on this thread if nobody sequences and nothing
    /// is queued (see [`Drain::sequence_now`]); else the command to queue,
    /// with its ticket.
    fn now(
        &self,
        stream: StreamId,
        expected: Expected,
        events: Events<E>,
        by: Queued,
    ) -> Result<Now<E>> {
        if !self.drain.may_sequence_now(by) {
            let (ticket, cmd) = command(stream, expected, events);
            return Ok(Now::Queue(ticket, cmd));
        }
        let cmd = AppendCmd {
            stream,
            expected,
            events,
            reply: Reply::own(),
        };
        let cmd = {
            // Held while sequencing: shutdown waits for it.
            let _pass = self.gate.enter().map_err(|_| Error::Closed)?;
            match self.drain.sequence_now(cmd, by) {
                Ok(done) => return Ok(Now::Done(done)),
                Err(cmd) => cmd,
            }
        };
        let (ticket, reply) = Ticket::pair();
        Ok(Now::Queue(ticket, AppendCmd { reply, ..cmd }))
    }

    /// Waits for a ticket, sequencing whenever nobody else does.
    fn wait(&self, ticket: Ticket, started: telemetry::Started) -> Result<Appended> {
        let done = loop {
            if let Some(done) = ticket.take_if_done() {
                break done;
            }
            if !self.drain.help() {
                break ticket.wait();
            }
        };
        acknowledged(done, started)
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
        let started = telemetry::start();
        let events = self.collect(events)?;
        self.append_now(stream.into(), expected, events, started)
    }

    /// Appends events to one stream atomically, whatever its version.
    pub fn append_batch<I>(&self, stream: impl Into<StreamId>, events: I) -> Result<Appended>
    where
        I: IntoIterator,
        I::Item: Into<NewEvent<E>>,
    {
        self.append_expecting(stream, Expected::Any, events)
    }

    /// Enqueues one event and returns (waiting only for room in the queue)
    /// with a [`Ticket`] for its acknowledgement. Dropping the ticket does
    /// not cancel the append. With [`Sequencing::Combining`](crate::Sequencing)
    /// (the default), a thread that finds nobody sequencing sequences the
    /// queue itself before returning.
    pub fn submit(
        &self,
        stream: impl Into<StreamId>,
        event: impl Into<NewEvent<E>>,
    ) -> Result<Ticket> {
        let events = Events::One(self.stamp(event.into()));
        self.send(stream.into(), Expected::Any, events, Queued::Submitted)
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
        self.send(stream.into(), expected, events, Queued::Submitted)
    }

    /// Like [`append`](Writer::append), but returns [`Error::Full`] at once
    /// instead of waiting for room in a full queue.
    pub fn try_append(
        &self,
        stream: impl Into<StreamId>,
        event: impl Into<NewEvent<E>>,
    ) -> Result<Appended> {
        let started = telemetry::start();
        let (ticket, cmd) = command(
            stream.into(),
            Expected::Any,
            Events::One(self.stamp(event.into())),
        );
        self.enqueue(cmd, false).map_err(Refused::into_error)?;
        self.drain.queued(Queued::Waiting);
        self.wait(ticket, started)
    }

    /// Like [`submit`](Writer::submit), but returns [`Error::Full`] at once
    /// instead of waiting for room in a full queue.
    pub fn try_submit(
        &self,
        stream: impl Into<StreamId>,
        event: impl Into<NewEvent<E>>,
    ) -> Result<Ticket> {
        let (ticket, cmd) = command(
            stream.into(),
            Expected::Any,
            Events::One(self.stamp(event.into())),
        );
        self.enqueue(cmd, false).map_err(Refused::into_error)?;
        self.drain.queued(Queued::Submitted);
        Ok(ticket)
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
    pub async fn append_expecting_async(
        &self,
        stream: impl Into<StreamId>,
        expected: Expected,
        events: impl IntoIterator<Item = impl Into<NewEvent<E>>>,
    ) -> Result<Appended> {
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
        let started = telemetry::start();
        // In memory, an async task sequences its append itself when nobody
        // does: no queue, no ticket, no waker.
        let (ticket, cmd) = match self.now(stream, expected, events, Queued::Async)? {
            Now::Done(done) => return acknowledged(done, started),
            Now::Queue(ticket, cmd) => (ticket, cmd),
        };
        self.enqueue_async(cmd).await?;
        self.drain.queued(Queued::Async);
        acknowledged(ticket.await, started)
    }

    /// Appends to several streams from async code, each append checked
    /// (expected version, size) and acknowledged on its own, not atomic
    /// together: all are queued first and then sequenced, in memory usually
    /// in one batch on this task, so a caller with many appends pays for one
    /// batch rather than one each. The answers come in the order given.
    #[cfg(feature = "async")]
    pub(crate) async fn append_each_async(
        &self,
        appends: Vec<(StreamId, Expected, Vec<NewEvent<E>>)>,
    ) -> Vec<Result<Appended>> {
        let started = telemetry::start();
        let mut tickets = Vec::with_capacity(appends.len());
        for (stream, expected, events) in appends {
            let queued = match self.collect(events) {
                Ok(events) => {
                    let (ticket, cmd) = command(stream, expected, events);
                    self.enqueue_async(cmd).await.map(|()| ticket)
                }
                Err(e) => Err(e),
            };
            tickets.push(queued);
        }
        self.drain.queued(Queued::Async);
        let mut answers = Vec::with_capacity(tickets.len());
        for queued in tickets {
            answers.push(match queued {
                Ok(ticket) => acknowledged(ticket.await, started),
                Err(e) => Err(e),
            });
        }
        answers
    }

    /// Queues a command from async code; when the queue is full, waits for
    /// room on tokio's blocking pool (or, outside a tokio runtime, on the
    /// calling thread).
    #[cfg(feature = "async")]
    async fn enqueue_async(&self, cmd: AppendCmd<E>) -> Result<()> {
        match self.enqueue(cmd, false) {
            Ok(()) => Ok(()),
            Err(Refused::Full(cmd)) => {
                // Whatever this caller queued before is taken first (in
                // memory, usually right here, which makes room).
                self.drain.queued(Queued::Async);
                let cmd = match self.enqueue(*cmd, false) {
                    Err(Refused::Full(cmd)) => cmd,
                    queued => return queued.map_err(Refused::into_error),
                };
                // Waiting for room may mean sequencing (and syncing a file):
                // not on an executor's thread.
                let writer = self.clone();
                let send = move || writer.enqueue(*cmd, true).map_err(Refused::into_error);
                match tokio::runtime::Handle::try_current() {
                    Ok(handle) => handle
                        .spawn_blocking(send)
                        .await
                        .map_err(|_| Error::Closed)?,
                    Err(_) => send(),
                }
            }
            Err(refused) => Err(refused.into_error()),
        }
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

    /// Queues a command, waiting for room if the queue is full.
    fn send(
        &self,
        stream: StreamId,
        expected: Expected,
        events: Events<E>,
        by: Queued,
    ) -> Result<Ticket> {
        let (ticket, cmd) = command(stream, expected, events);
        self.enqueue(cmd, true).map_err(Refused::into_error)?;
        self.drain.queued(by);
        Ok(ticket)
    }

    /// Puts a command in the queue; when it is full, either refuses
    /// (`block` false) or makes room with the sequencer's help.
    fn enqueue(&self, cmd: AppendCmd<E>, block: bool) -> std::result::Result<(), Refused<E>> {
        // Holding the pass while sending is what lets shutdown know that no
        // command can reach the queue after it closed the gate.
        let _pass = self.gate.enter().map_err(|_| Refused::Closed)?;
        let mut cmd = cmd;
        loop {
            match self.tx.try_send(cmd) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(Refused::Closed),
                Err(TrySendError::Full(back)) if !block => {
                    return Err(Refused::Full(Box::new(back)))
                }
                Err(TrySendError::Full(back)) => {
                    if self.drain.full() {
                        return self.tx.send(back).map_err(|_| Refused::Closed);
                    }
                    cmd = back;
                }
            }
        }
    }
}

/// An append's answer, counted in the telemetry if it succeeded.
fn acknowledged(done: Result<Appended>, started: telemetry::Started) -> Result<Appended> {
    if done.is_ok() {
        telemetry::acknowledged(started);
    }
    done
}

fn command<E>(stream: StreamId, expected: Expected, events: Events<E>) -> (Ticket, AppendCmd<E>) {
    let (ticket, reply) = Ticket::pair();
    let cmd = AppendCmd {
        stream,
        expected,
        events,
        reply,
    };
    (ticket, cmd)
}

/// What [`Writer::now`] did: sequenced the append, or left it to queue.
enum Now<E> {
    Done(Result<Appended>),
    Queue(Ticket, AppendCmd<E>),
}

/// Why a command did not enter the queue.
enum Refused<E> {
    /// The queue is full; the command comes back for a blocking retry.
    Full(#[cfg_attr(not(feature = "async"), allow(dead_code))] Box<AppendCmd<E>>),
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
