//! The queue's message format and the gate writers pass to reach it.

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::NewEvent;
use crate::faults::Faults;
use crate::position::{Expected, StreamId};
use crate::sync::{self, fence, AtomicBool, AtomicUsize, Ordering};

use super::ack::Reply;

/// A message to the sequencer.
pub(crate) enum Msg<E> {
    Append(AppendCmd<E>),
    /// Sent once by shutdown, after the gate closed: nothing follows it.
    Shutdown,
}

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

/// The door writers pass to reach the queue, closed by shutdown.
///
/// Invariant: once `close` returns, no sender is between its check of
/// `closed` and the end of its send, and every later `enter` fails. So a
/// marker sent after `close` is the last message in the queue. Writers
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

    /// Closes the gate and waits for senders already through it. The
    /// sequencer keeps draining meanwhile, so the wait is bounded by their
    /// sends.
    pub(crate) fn close(&self) {
        self.close_draining(|| {});
    }

    /// Like [`close`](Gate::close), for the sequencer itself: calls `drain`
    /// while waiting, since nobody else empties the queue.
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
