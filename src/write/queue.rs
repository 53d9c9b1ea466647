//! The queue's message format and the gate writers pass to reach it.

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::NewEvent;
use crate::faults::Faults;
use crate::position::{Expected, StreamId};
use crate::sync::{self, fence, AtomicBool, AtomicUsize, Ordering};

use super::ack::{Appended, Reply};

/// One append: events for one stream, all accepted or all rejected.
pub(crate) struct AppendCmd<E> {
    pub(crate) stream: StreamId,
    pub(crate) expected: Expected,
    pub(crate) events: Events<E>,
    pub(crate) reply: Reply,
}

/// The events of one append, without a `Vec` for the common single event.
pub(crate) enum Events<E> {
    One(NewEvent<E>),
    Many(Vec<NewEvent<E>>),
}

impl<E> Events<E> {
    /// The id the writer gave the append's first event, if any.
    pub(crate) fn first_id(&self) -> Option<Uuid> {
        match self {
            Events::One(e) => e.id,
            Events::Many(v) => v.first().and_then(|e| e.id),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Events::One(_) => 1,
            Events::Many(v) => v.len(),
        }
    }

    pub(crate) fn into_iter(self) -> impl Iterator<Item = NewEvent<E>> {
        let (one, many) = match self {
            Events::One(e) => (Some(e), Vec::new()),
            Events::Many(v) => (None, v),
        };
        one.into_iter().chain(many)
    }
}

/// Who queued a command, and what they do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Queued {
    /// A thread that waits for the acknowledgement next (`append`).
    Waiting,
    /// A thread that returns at once (`submit`): its command may wait for
    /// a few more to be sequenced with them.
    Submitted,
    /// An async task: it must not sequence on the executor's thread.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    Async,
}

/// Whoever runs the sequencer, as writers see it: told of each command they
/// queue, asked for help when the queue is full or an acknowledgement is
/// slow to come.
pub(crate) trait Drain<E>: Send + Sync {
    /// A writer about to wait for its command's acknowledgement, holding a
    /// pass through the gate: sequence the command on the calling thread
    /// now, without queueing it, if nobody sequences and nothing is queued
    /// ahead of it (so no thread hand-off and no trip through the queue).
    /// The command (with an [`own`](Reply::own) reply) comes back if it
    /// must be queued instead.
    ///
    /// `by` is `Waiting` or `Async` (an async task sequences only in memory:
    /// it never syncs a file on an executor's thread).
    fn sequence_now(
        &self,
        cmd: AppendCmd<E>,
        by: Queued,
    ) -> std::result::Result<Result<Appended>, AppendCmd<E>>;

    /// Whether [`sequence_now`](Drain::sequence_now) may sequence a command
    /// queued `by` at all (the mode and the log allow it), so a writer whose
    /// command could only come back queues it directly.
    fn may_sequence_now(&self, by: Queued) -> bool;

    /// A command entered the queue.
    fn queued(&self, by: Queued);

    /// The queue was full: make room (perhaps by running the sequencer), or
    /// wait a moment for it, and the caller tries again; or `true`: the
    /// caller should wait for room in a blocking send.
    fn full(&self) -> bool;

    /// The caller waits for an acknowledgement: run the sequencer if
    /// nobody does. Whether it ran.
    fn help(&self) -> bool;
}

/// The door writers pass to reach the queue, closed by shutdown.
///
/// Invariant: once `close` returns, no sender is between its check of
/// `closed` and the end of its send, and every later `enter` fails. So
/// nothing enters the queue after `close`: whoever empties it then has
/// emptied it for good. Writers
/// announce themselves in `in_flight` and then read `closed`; `close` sets
/// `closed` and then reads `in_flight`. A SeqCst fence between the write and
/// the read on each side means at least one side sees the other (the
/// store-buffer pattern; fences rather than SeqCst accesses, which are weaker
/// than they look when mixed with other orderings, and which loom models
/// only as acquire/release).
#[derive(Debug, Default)]
pub(crate) struct Gate {
    closed: AtomicBool,
    in_flight: AtomicUsize,
    faults: Faults,
}

/// Proof of having entered the [`Gate`]; leaving is dropping it.
pub(crate) struct Pass<'a>(Option<&'a Gate>);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if let Some(gate) = self.0 {
            // Release pairs with the Acquire load in `close`: the send is
            // complete before the count drops.
            gate.in_flight.fetch_sub(1, Ordering::Release);
        }
    }
}

impl Gate {
    pub(crate) fn new(faults: Faults) -> Gate {
        Gate {
            faults,
            ..Gate::default()
        }
    }

    pub(crate) fn enter(&self) -> Result<Pass<'_>> {
        if self.faults.unguarded_gate() {
            return match self.closed.load(Ordering::Relaxed) {
                true => Err(Error::Closed),
                false => Ok(Pass(None)),
            };
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let pass = Pass(Some(self));
        // Pairs with the fence in `close`: see the type's invariant.
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        Ok(pass)
    }

    /// Closes the gate and waits for senders already through it, calling
    /// `drain` meanwhile (a sender may wait for room in a full queue).
    pub(crate) fn close_draining(&self, mut drain: impl FnMut()) {
        self.closed.store(true, Ordering::Relaxed);
        // Pairs with the fence in `enter`: see the type's invariant.
        fence(Ordering::SeqCst);
        // Acquire pairs with the Release decrement in `Pass::drop`: a sender
        // counted out has finished its send.
        while self.in_flight.load(Ordering::Acquire) != 0 {
            drain();
            sync::yield_now();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}
