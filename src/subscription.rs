//! Subscriptions: history, then live events, with no gap and no duplicate.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::event::{Event, EventRef};
use crate::hub::Hub;
use crate::log::LastBatch;
use crate::position::Position;
use crate::sync::Arc;

/// A cursor over the log from a position on, from
/// [`Runtime::subscribe`](crate::Runtime::subscribe).
///
/// History and live events come from the same log, read in position order
/// by one cursor, so the switch from one to the other has no gap and no
/// duplicate. As an [`Iterator`] it blocks for the next event and ends once
/// the runtime has shut down and every event was delivered. For tasks, turn
/// it into a [`SubscriptionStream`] with
/// [`into_stream`](Subscription::into_stream) (or subscribe with
/// [`Runtime::subscribe_stream`](crate::Runtime::subscribe_stream)): one
/// type is an iterator, the other a stream, so `next()` is never ambiguous.
///
/// ```
/// use rwlog::{Event, Position, Runtime};
///
/// #[derive(Clone, Debug)]
/// struct Tick(u32);
/// impl Event for Tick {}
///
/// let rt = Runtime::<Tick>::builder().build()?;
/// let w = rt.writer();
/// w.append("clock", Tick(1))?;
/// let mut sub = rt.subscribe(Position(1));
/// w.append("clock", Tick(2))?;
/// rt.shutdown()?;
/// let seen: Vec<u32> = sub.map(|e| e.payload().0).collect();
/// assert_eq!(seen, [1, 2]);
/// # Ok::<(), rwlog::Error>(())
/// ```
pub struct Subscription<E> {
    shared: Arc<Hub<E>>,
    next: Position,
    last: LastBatch<E>,
    /// Set once the next event could not be delivered: the subscription
    /// ends; [`error`](Subscription::error) says why.
    ended: Option<Ended>,
}

/// Why a subscription ended early.
#[derive(Clone, Debug)]
enum Ended {
    /// The next event was archived: the log's first position then.
    Archived(Position),
    /// The next event is in the log but could not be read from disk.
    Failed(String),
}

impl<E> fmt::Debug for Subscription<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<E: Event> Subscription<E> {
    pub(crate) fn new(shared: Arc<Hub<E>>, from: Position) -> Subscription<E> {
        Subscription {
            shared,
            next: from,
            last: LastBatch::default(),
            ended: None,
        }
    }

    /// Why the subscription ended early: [`Error::Archived`] if the events
    /// it was to deliver next were archived (it started before the log's
    /// first position, or fell behind while the front was archived);
    /// [`Error::Io`] if the next event, older than the log's
    /// [memory window](crate::Storage::memory_window), could not be read
    /// from disk (the message names the file and offset). `None` while it
    /// goes on, and after a shutdown.
    pub fn error(&self) -> Option<Error> {
        match self.ended.as_ref()? {
            Ended::Archived(first) => Some(Error::Archived {
                requested: self.next,
                first_available: *first,
            }),
            Ended::Failed(why) => Some(Error::Io(std::io::Error::other(format!(
                "position {} could not be read: {why}",
                self.next
            )))),
        }
    }

    /// The position of the next event this subscription will deliver.
    pub fn position(&self) -> Position {
        self.next
    }

    /// The next event if it is already in the log.
    pub fn try_next(&mut self) -> Option<EventRef<E>> {
        let log = &self.shared.log;
        // Loaded first: a position at or below it is readable, unless
        // archived or unreadable from disk.
        let head = log.head();
        let Some(e) = self.last.read(self.next.0, |p| log.batch(Position(p))) else {
            if self.next < log.first() {
                self.ended = Some(Ended::Archived(log.first()));
            } else if self.next <= head {
                // In the log, yet not read: only a read from disk fails.
                let why = log
                    .read_failure()
                    .unwrap_or_else(|| "a read from disk failed".into());
                self.ended = Some(Ended::Failed(why));
            }
            return None;
        };
        self.next = self.next.next();
        Some(e)
    }

    /// The next event, waiting at most `timeout` for it. `None` on timeout or
    /// once the runtime has shut down and every event was delivered.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<EventRef<E>> {
        self.wait(Some(Instant::now() + timeout))
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Option<EventRef<E>> {
        loop {
            if let Some(e) = self.try_next() {
                return Some(e);
            }
            if self.ended.is_some() {
                return None;
            }
            // Check the log once more after seeing the exit: the final batch
            // lands before the sequencer exits.
            if self.shared.exited() {
                return self.try_next();
            }
            let next = self.next;
            let shared = &self.shared;
            let ready = shared
                .signal
                .wait_until(deadline, || shared.log.head() >= next || shared.exited());
            if !ready {
                return None;
            }
        }
    }
}

impl<E: Event> Iterator for Subscription<E> {
    type Item = EventRef<E>;

    fn next(&mut self) -> Option<Self::Item> {
        self.wait(None)
    }
}

/// A [`Subscription`] as a `futures_core::Stream`: the same cursor, awaited
/// instead of blocked on (the runtime's signal wakes the task). From
/// [`Subscription::into_stream`] or
/// [`Runtime::subscribe_stream`](crate::Runtime::subscribe_stream).
///
/// ```
/// use futures::StreamExt;
/// use rwlog::{Event, Position, Runtime};
///
/// #[derive(Clone, Debug)]
/// struct Tick(u32);
/// impl Event for Tick {}
///
/// let rt = Runtime::<Tick>::builder().build()?;
/// let w = rt.writer();
/// let mut sub = rt.subscribe_stream(Position(1));
/// let tasks = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// tasks.block_on(async {
///     w.append_async("clock", Tick(1)).await?;
///     let e = sub.next().await.expect("an event");
///     assert_eq!(e.payload().0, 1);
///     Ok::<(), rwlog::Error>(())
/// })?;
/// # Ok::<(), rwlog::Error>(())
/// ```
#[cfg(feature = "async")]
#[derive(Debug)]
pub struct SubscriptionStream<E> {
    sub: Subscription<E>,
    /// Taken out of the runtime's wakers when the stream is dropped.
    waiting: crate::signal::Waiting<Arc<Hub<E>>>,
}

#[cfg(feature = "async")]
impl<E: Event> Subscription<E> {
    /// This cursor as a stream, from where it is.
    pub fn into_stream(self) -> SubscriptionStream<E> {
        let waiting = crate::signal::Waiting::new(Arc::clone(&self.shared));
        SubscriptionStream { sub: self, waiting }
    }
}

#[cfg(feature = "async")]
impl<E: Event> SubscriptionStream<E> {
    /// The position of the next event it yields.
    pub fn position(&self) -> Position {
        self.sub.next
    }

    /// Why the stream ended early: see [`Subscription::error`].
    pub fn error(&self) -> Option<Error> {
        self.sub.error()
    }

    /// Back to a blocking iterator, from where it is.
    pub fn into_blocking(self) -> Subscription<E> {
        self.sub
    }
}

#[cfg(feature = "async")]
impl<E: Event> futures_core::Stream for SubscriptionStream<E> {
    type Item = EventRef<E>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        let sub = &mut this.sub;
        if let Some(e) = sub.try_next() {
            return Poll::Ready(Some(e));
        }
        if sub.shared.exited() || sub.ended.is_some() {
            return Poll::Ready(sub.try_next());
        }
        this.waiting.register(cx.waker());
        // Re-check after registering: a batch published in between would
        // otherwise not wake us.
        if let Some(e) = sub.try_next() {
            return Poll::Ready(Some(e));
        }
        if sub.shared.exited() {
            return Poll::Ready(sub.try_next());
        }
        Poll::Pending
    }
}
