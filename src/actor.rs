//! Writer actors: the command side, the in-process way.
//!
//! An [`Aggregate`] decides which events a command produces from the state
//! folded from its stream's past events. [`Runtime::actors`](crate::Runtime::actors)
//! starts writer actors (tokio tasks), each owning the aggregates of its
//! share of streams (routed by stream id), so the commands for one stream
//! run one at a time, with no lock and no retry storm. An actor loads an
//! aggregate on first use by replaying its stream from the log, appends the
//! events a command produces with `Expected::Exact(version)`, applies them to
//! its copy once acknowledged, and on a conflict (someone else wrote the
//! stream) reloads and retries a bounded number of times.
//!
//! An actor takes the commands waiting in its mailbox as a group: it
//! decides each against its aggregate, sequences all their appends
//! together (usually one batch, and on a durable log one sync, instead of
//! one per command; a group larger than the queue, or appends of other
//! writers, can split it), then answers each. A group never holds two
//! commands for one stream: the second waits for the next group, so it is
//! decided on what the first appended. Each append is still checked on its own (expected
//! version), so a conflict or a panic fails or retries only its command.
//! A group is one unit of tokio's cooperative budget: an actor whose
//! mailbox stays full still lets the other tasks of its runtime run.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::aggregate::{Aggregate, CommandError, CommandStatus, Done};
use crate::error::Error;
use crate::position::StreamId;
use crate::sync::{Arc, Mutex};
use crate::write::Writer;
use uuid::Uuid;

mod shard;

use shard::Actor;
pub(crate) use shard::StreamSource;

/// Settings of [`Runtime::actors_with`](crate::Runtime::actors_with).
#[derive(Clone, Debug)]
pub struct ActorOptions {
    /// Commands each actor's mailbox holds before senders wait (default 1024).
    pub mailbox: usize,
    /// How many times a conflicting command is retried after reloading
    /// (default 5).
    pub retries: u32,
    /// How long a finished command's status stays available (default 5 min).
    pub status_for: Duration,
    /// The most statuses kept (default 100,000); the oldest go first.
    pub max_statuses: usize,
}

impl Default for ActorOptions {
    fn default() -> Self {
        ActorOptions {
            mailbox: 1024,
            retries: 5,
            status_for: Duration::from_secs(300),
            max_statuses: 100_000,
        }
    }
}

type Reply<A> = oneshot::Sender<Result<Done, CommandError<<A as Aggregate>::Error>>>;

struct Envelope<A: Aggregate> {
    id: Uuid,
    correlation: Uuid,
    stream: StreamId,
    command: A::Command,
    reply: Option<Reply<A>>,
}

/// Command statuses, kept for a bounded time and number.
struct Statuses {
    map: HashMap<Uuid, (CommandStatus, Instant), foldhash::fast::RandomState>,
    order: VecDeque<(Uuid, Instant)>,
    keep_for: Duration,
    max: usize,
}

impl Statuses {
    fn set(&mut self, id: Uuid, status: CommandStatus) {
        self.set_all([(id, status)]);
    }

    /// Sets several statuses at one instant (one clock read, one expiry).
    fn set_all(&mut self, statuses: impl IntoIterator<Item = (Uuid, CommandStatus)>) {
        let now = Instant::now();
        for (id, status) in statuses {
            if self.map.insert(id, (status, now)).is_none() {
                self.order.push_back((id, now));
            }
        }
        while let Some(&(old, at)) = self.order.front() {
            if self.order.len() <= self.max && now.duration_since(at) < self.keep_for {
                break;
            }
            self.order.pop_front();
            self.map.remove(&old);
        }
    }
}

/// Handles to running writer actors; from
/// [`Runtime::actors`](crate::Runtime::actors). Cheap to clone.
///
/// ```
/// use rwlog::{Aggregate, Event, Runtime};
///
/// #[derive(Clone, Debug, PartialEq)]
/// enum Counter { Incremented }
/// impl Event for Counter {}
///
/// #[derive(Default)]
/// struct Count(u64);
/// impl Aggregate for Count {
///     type Command = u64; // "increment unless it would pass this limit"
///     type Event = Counter;
///     type Error = String;
///     fn handle(&self, limit: &u64) -> Result<Vec<Counter>, String> {
///         if self.0 < *limit { Ok(vec![Counter::Incremented]) } else { Err(format!("at {limit}")) }
///     }
///     fn apply(&mut self, _: &Counter) { self.0 += 1 }
/// }
///
/// let rt = Runtime::<Counter>::builder().build()?;
/// let actors = rt.actors::<Count>(2)?;
/// assert_eq!(actors.send_blocking("c", 2).unwrap().version, 1);
/// assert_eq!(actors.send_blocking("c", 2).unwrap().version, 2);
/// assert!(actors.send_blocking("c", 2).is_err()); // refused: appends nothing
/// assert_eq!(rt.log().stream_version("c"), 2);
/// # Ok::<(), rwlog::Error>(())
/// ```
pub struct Actors<A: Aggregate> {
    mailboxes: Arc<Vec<mpsc::Sender<Envelope<A>>>>,
    statuses: Arc<Mutex<Statuses>>,
    ids: Arc<Mutex<crate::event::Ids>>,
    _runtime: Option<Arc<OwnedRuntime>>,
}

impl<A: Aggregate> Clone for Actors<A> {
    fn clone(&self) -> Self {
        Actors {
            mailboxes: Arc::clone(&self.mailboxes),
            statuses: Arc::clone(&self.statuses),
            ids: Arc::clone(&self.ids),
            _runtime: self._runtime.clone(),
        }
    }
}

impl<A: Aggregate> fmt::Debug for Actors<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Actors")
            .field("shards", &self.mailboxes.len())
            .finish_non_exhaustive()
    }
}

/// A tokio runtime the actors own when started outside one.
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl<A: Aggregate> Actors<A> {
    pub(crate) fn start(
        writer: Writer<A::Event>,
        log: Arc<dyn StreamSource<A::Event>>,
        shards: usize,
        options: ActorOptions,
    ) -> Result<Actors<A>, Error> {
        if shards == 0 || options.mailbox == 0 {
            return Err(Error::Config(
                "actors need at least one shard and a mailbox of at least 1",
            ));
        }
        let (handle, owned) = match tokio::runtime::Handle::try_current() {
            Ok(handle) => (handle, None),
            Err(_) => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(shards.min(4))
                    .thread_name("rwlog-actor")
                    .build()?;
                (rt.handle().clone(), Some(Arc::new(OwnedRuntime(Some(rt)))))
            }
        };
        let statuses = Arc::new(Mutex::new(Statuses {
            map: HashMap::default(),
            order: VecDeque::new(),
            keep_for: options.status_for,
            max: options.max_statuses.max(1),
        }));
        let mut mailboxes = Vec::with_capacity(shards);
        for _ in 0..shards {
            let (tx, rx) = mpsc::channel(options.mailbox);
            let actor = Actor::<A> {
                writer: writer.clone(),
                log: Arc::clone(&log),
                aggregates: HashMap::new(),
                statuses: Arc::clone(&statuses),
                retries: options.retries,
            };
            handle.spawn(actor.run(rx));
            mailboxes.push(tx);
        }
        Ok(Actors {
            mailboxes: Arc::new(mailboxes),
            statuses,
            ids: Arc::new(Mutex::new(crate::event::Ids::new())),
            _runtime: owned,
        })
    }

    fn shard(&self, stream: &StreamId) -> &mpsc::Sender<Envelope<A>> {
        // A fixed seed: a stream always goes to the same actor.
        let hash = foldhash::fast::FixedState::with_seed(0x0a5c_7035).hash_one(stream.as_str());
        &self.mailboxes[(hash % self.mailboxes.len() as u64) as usize]
    }

    /// A command that could not be queued (the actors are gone): its
    /// status says so rather than staying pending.
    fn unsent<T>(&self, id: Uuid, error: T) -> T {
        self.set_status(id, CommandStatus::Failed(Error::Closed.to_string()));
        error
    }

    fn envelope(
        &self,
        stream: StreamId,
        command: A::Command,
        correlation: Option<Uuid>,
        reply: Option<Reply<A>>,
    ) -> Envelope<A> {
        let id = self.next_id();
        self.set_status(id, CommandStatus::Pending);
        Envelope {
            id,
            correlation: correlation.unwrap_or(id),
            stream,
            command,
            reply,
        }
    }

    /// A command id: a UUID v7 from a counter, with no random bits drawn
    /// per command.
    fn next_id(&self) -> Uuid {
        let millis = crate::event::Timestamp::now().as_nanos() / 1_000_000;
        self.ids.lock().next(millis)
    }

    fn set_status(&self, id: Uuid, status: CommandStatus) {
        self.statuses.lock().set(id, status);
    }

    /// Sends a command to its stream's actor and waits for the outcome.
    pub async fn send(
        &self,
        stream: impl Into<StreamId>,
        command: A::Command,
    ) -> Result<Done, CommandError<A::Error>> {
        self.send_correlated(stream, command, None).await
    }

    /// Like [`send`](Actors::send), with the correlation id the appended
    /// events carry (defaults to the command's own id).
    pub async fn send_correlated(
        &self,
        stream: impl Into<StreamId>,
        command: A::Command,
        correlation: Option<Uuid>,
    ) -> Result<Done, CommandError<A::Error>> {
        let stream = stream.into();
        let (tx, rx) = oneshot::channel();
        let envelope = self.envelope(stream.clone(), command, correlation, Some(tx));
        self.shard(&stream)
            .send(envelope)
            .await
            .map_err(|e| self.unsent(e.0.id, CommandError::Runtime(Error::Closed)))?;
        rx.await.map_err(|_| CommandError::Runtime(Error::Closed))?
    }

    /// [`send`](Actors::send) for code outside async contexts: blocks the
    /// thread (do not call it from an async task).
    pub fn send_blocking(
        &self,
        stream: impl Into<StreamId>,
        command: A::Command,
    ) -> Result<Done, CommandError<A::Error>> {
        let stream = stream.into();
        let (tx, rx) = oneshot::channel();
        let envelope = self.envelope(stream.clone(), command, None, Some(tx));
        self.shard(&stream)
            .blocking_send(envelope)
            .map_err(|e| self.unsent(e.0.id, CommandError::Runtime(Error::Closed)))?;
        rx.blocking_recv()
            .map_err(|_| CommandError::Runtime(Error::Closed))?
    }

    /// Enqueues a command without waiting for its outcome (waiting only for
    /// room in the mailbox). The handle it returns is the command's id
    /// ([`Submitted::id`], for [`status`](Actors::status)) and a future of
    /// its outcome; dropping it does not cancel the command.
    pub async fn submit(
        &self,
        stream: impl Into<StreamId>,
        command: A::Command,
    ) -> Result<Submitted<A::Error>, Error> {
        let stream = stream.into();
        let (tx, rx) = oneshot::channel();
        let envelope = self.envelope(stream.clone(), command, None, Some(tx));
        let id = envelope.id;
        self.shard(&stream)
            .send(envelope)
            .await
            .map_err(|e| self.unsent(e.0.id, Error::Closed))?;
        Ok(Submitted { id, outcome: rx })
    }

    /// A command's status, for as long as it is kept.
    pub fn status(&self, command: Uuid) -> Option<CommandStatus> {
        let statuses = self.statuses.lock();
        statuses.map.get(&command).map(|(s, _)| s.clone())
    }
}

/// A submitted command: its id, and (awaited) its outcome; from
/// [`Actors::submit`].
#[derive(Debug)]
pub struct Submitted<Err> {
    id: Uuid,
    outcome: oneshot::Receiver<Result<Done, CommandError<Err>>>,
}

impl<Err> Submitted<Err> {
    /// The command's id: its [`status`](Actors::status) key, and the
    /// causation id of the events it appends.
    pub fn id(&self) -> Uuid {
        self.id
    }
}

impl<Err> std::future::Future for Submitted<Err> {
    type Output = Result<Done, CommandError<Err>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.outcome)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(CommandError::Runtime(Error::Closed))))
    }
}
