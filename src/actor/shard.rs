//! One actor of a shard: owns the aggregates of its streams and runs their
//! commands in groups, one at a time per stream.

use std::collections::{HashMap, HashSet, VecDeque};

use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Envelope, Statuses};
use crate::aggregate::{Aggregate, CommandError, CommandStatus, Done};
use crate::error::Error;
use crate::event::{Event, Metadata, NewEvent};
use crate::log::Log;
use crate::position::{Expected, StreamId};
use crate::sync::{Arc, Mutex};
use crate::write::{Appended, Writer};

/// Reads a stream's events, without the runtime's other parts.
pub(crate) trait StreamSource<E>: Send + Sync {
    /// The stream's events (payload and version), oldest first.
    fn stream(&self, stream: &str) -> Vec<(u64, E)>;
}

impl<E: Event + Clone> StreamSource<E> for crate::hub::Hub<E> {
    fn stream(&self, stream: &str) -> Vec<(u64, E)> {
        let log: &Log<E> = &self.log;
        log.read_stream(stream, 1)
            .map(|e| (e.version, e.payload.clone()))
            .collect()
    }
}

/// The most commands an actor takes from its mailbox at once. A group is
/// one unit of tokio's cooperative budget, so this also bounds how long
/// an actor keeps its thread (128 groups) while its mailbox stays full.
const GROUP: usize = 256;

/// A command's outcome.
type Outcome<A> = Result<Done, CommandError<<A as Aggregate>::Error>>;

/// What a command decided against its aggregate.
enum Decision<A: Aggregate> {
    /// Append `events` (as `new`: caused by the command and carrying its
    /// correlation), expecting the stream at `version`.
    Append {
        events: Vec<A::Event>,
        new: Vec<NewEvent<A::Event>>,
        version: u64,
    },
    /// Nothing to append: the command's outcome.
    Finished(Outcome<A>),
}

/// One actor: owns the aggregates of its streams.
pub(super) struct Actor<A: Aggregate> {
    pub(super) writer: Writer<A::Event>,
    pub(super) log: Arc<dyn StreamSource<A::Event>>,
    pub(super) aggregates: HashMap<StreamId, (A, u64)>,
    pub(super) statuses: Arc<Mutex<Statuses>>,
    pub(super) retries: u32,
}

impl<A: Aggregate> Actor<A> {
    /// Takes the commands waiting in the mailbox a group at a time: every
    /// command of a group is decided, then their appends are sequenced
    /// together (one batch, not one each), then every command is answered.
    /// A group never holds two commands for one stream, so each command is
    /// decided on the state its stream's previous command left.
    pub(super) async fn run(mut self, mut mailbox: mpsc::Receiver<Envelope<A>>) {
        let mut waiting = VecDeque::new();
        loop {
            // A group is one unit of tokio's cooperative budget, as a
            // batch received with `recv_many` would be: taken by `recv`
            // when the group starts from an empty queue, else here (the
            // commands carried over from the last group came without a
            // `recv`). So an actor whose mailbox stays full still yields
            // its thread to the runtime's other tasks, every 128 groups.
            if waiting.is_empty() {
                match mailbox.recv().await {
                    Some(envelope) => waiting.push_back(envelope),
                    None => return,
                }
            } else {
                tokio::task::coop::consume_budget().await;
            }
            while waiting.len() < GROUP {
                match mailbox.try_recv() {
                    Ok(envelope) => waiting.push_back(envelope),
                    Err(_) => break,
                }
            }
            let group = take_group(&mut waiting);
            self.run_group(group).await;
        }
    }

    async fn run_group(&mut self, group: Vec<Envelope<A>>) {
        self.statuses
            .lock()
            .set_all(group.iter().map(|e| (e.id, CommandStatus::Processing)));
        let mut answered = Vec::with_capacity(group.len());
        if group.len() == 1 {
            for mut e in group {
                let outcome = self.handle_caught(&mut e, 1).await;
                answered.push((e, outcome));
            }
            return self.answer(answered);
        }
        let mut appending = Vec::with_capacity(group.len());
        let mut appends = Vec::with_capacity(group.len());
        for e in group {
            match self.caught(&e, |actor| actor.decide(&e)) {
                Ok(Decision::Append {
                    events,
                    new,
                    version,
                }) => {
                    appends.push((e.stream.clone(), Expected::Exact(version), new));
                    appending.push((e, events));
                }
                Ok(Decision::Finished(outcome)) => answered.push((e, outcome)),
                Err(panicked) => answered.push((e, Err(panicked))),
            }
        }
        let results = self.writer.append_each_async(appends).await;
        for ((mut e, events), result) in appending.into_iter().zip(results) {
            let outcome = match result {
                Ok(ack) => self
                    .caught(&e, |actor| actor.applied(e.id, &e.stream, &events, ack))
                    .and_then(|done| done),
                Err(Error::Conflict { .. }) => {
                    // Someone else wrote the stream: its aggregate is loaded
                    // again by the retry (a panic there fails this command).
                    tracing::debug!(stream = %e.stream, attempt = 1, "conflict; reloading the aggregate");
                    self.aggregates.remove(&e.stream);
                    self.handle_caught(&mut e, 2).await
                }
                Err(error) => Err(CommandError::Runtime(error)),
            };
            answered.push((e, outcome));
        }
        self.answer(answered);
    }

    /// Records every command's final status, then replies to each.
    fn answer(&self, answered: Vec<(Envelope<A>, Outcome<A>)>) {
        self.statuses
            .lock()
            .set_all(answered.iter().map(|(e, outcome)| {
                let status = match outcome {
                    Ok(done) => CommandStatus::Completed(*done),
                    Err(error) => CommandStatus::Failed(error.to_string()),
                };
                (e.id, status)
            }));
        for (e, outcome) in answered {
            if let Some(reply) = e.reply {
                let _ = reply.send(outcome);
            }
        }
    }

    /// Runs `f`, a panic of the aggregate's included: the command fails and
    /// the stream's aggregate (perhaps half-applied) is dropped, to be
    /// reloaded from the log by its next command.
    fn caught<T>(
        &mut self,
        e: &Envelope<A>,
        f: impl FnOnce(&mut Self) -> T,
    ) -> Result<T, CommandError<A::Error>> {
        crate::sync::catch_unwind(|| f(&mut *self))
            .map_err(|payload| self.panicked(e, crate::sync::panic_message(&*payload)))
    }

    fn panicked(&mut self, e: &Envelope<A>, message: String) -> CommandError<A::Error> {
        tracing::error!(stream = %e.stream, command = %e.id, %message, "an aggregate panicked: the command failed");
        self.aggregates.remove(&e.stream);
        CommandError::Panicked(message)
    }

    /// [`handle`](Actor::handle) from attempt `first` on, a panic of the
    /// aggregate's included (see [`caught`](Actor::caught)).
    async fn handle_caught(&mut self, e: &mut Envelope<A>, first: u32) -> Outcome<A> {
        let panicked = {
            let mut handling = std::pin::pin!(self.handle(e, first));
            std::future::poll_fn(|cx| {
                match crate::sync::catch_unwind(|| std::future::Future::poll(handling.as_mut(), cx))
                {
                    Ok(std::task::Poll::Ready(outcome)) => std::task::Poll::Ready(Ok(outcome)),
                    Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
                    Err(payload) => {
                        std::task::Poll::Ready(Err(crate::sync::panic_message(&*payload)))
                    }
                }
            })
            .await
        };
        panicked.unwrap_or_else(|message| Err(self.panicked(e, message)))
    }

    fn load(&self, stream: &StreamId) -> (A, u64) {
        let mut aggregate = A::default();
        let mut version = 0;
        for (v, event) in self.log.stream(stream.as_str()) {
            aggregate.apply(&event);
            version = v;
        }
        (aggregate, version)
    }

    /// Someone else wrote the stream: its aggregate is loaded again.
    fn reload(&mut self, stream: &StreamId, attempt: u32) {
        tracing::debug!(stream = %stream, attempt, "conflict; reloading the aggregate");
        let reloaded = self.load(stream);
        self.aggregates.insert(stream.clone(), reloaded);
    }

    /// Decides a command against its stream's aggregate (loaded on first
    /// use). Runs only the aggregate's and the events' own code, so that
    /// [`caught`](Actor::caught) around it catches every panic of theirs.
    fn decide(&mut self, e: &Envelope<A>) -> Decision<A> {
        if !self.aggregates.contains_key(&e.stream) {
            let loaded = self.load(&e.stream);
            self.aggregates.insert(e.stream.clone(), loaded);
        }
        let Some((aggregate, version)) = self.aggregates.get(&e.stream) else {
            return Decision::Finished(Err(CommandError::Runtime(Error::Closed)));
        };
        match aggregate.handle(&e.command) {
            Err(error) => Decision::Finished(Err(CommandError::Domain(error))),
            Ok(events) if events.is_empty() => Decision::Finished(Ok(Done {
                command: e.id,
                position: None,
                version: *version,
                events: 0,
            })),
            Ok(events) => Decision::Append {
                new: new_events(&events, e.id, e.correlation),
                events,
                version: *version,
            },
        }
    }

    /// The command's events were appended: its aggregate applies them.
    fn applied(
        &mut self,
        id: Uuid,
        stream: &StreamId,
        events: &[A::Event],
        ack: Appended,
    ) -> Outcome<A> {
        let Some((aggregate, version)) = self.aggregates.get_mut(stream) else {
            return Err(CommandError::Runtime(Error::Closed));
        };
        for e in events {
            aggregate.apply(e);
        }
        *version = ack.version;
        Ok(Done {
            command: id,
            position: Some(ack.position),
            version: ack.version,
            events: ack.count,
        })
    }

    /// One command alone: decided, appended and, on a conflict, reloaded
    /// and retried, from attempt `first` to `retries + 1`.
    ///
    /// (`e` is borrowed mutably only so that the future is `Send` without
    /// asking commands to be `Sync`.)
    async fn handle(&mut self, e: &mut Envelope<A>, first: u32) -> Outcome<A> {
        for attempt in first..=self.retries + 1 {
            let (events, new, version) = match self.decide(e) {
                Decision::Append {
                    events,
                    new,
                    version,
                } => (events, new, version),
                Decision::Finished(outcome) => return outcome,
            };
            let appended = self
                .writer
                .append_expecting_async(e.stream.clone(), Expected::Exact(version), new)
                .await;
            match appended {
                Ok(ack) => return self.applied(e.id, &e.stream, &events, ack),
                Err(Error::Conflict { .. }) => self.reload(&e.stream, attempt),
                Err(error) => return Err(CommandError::Runtime(error)),
            }
        }
        Err(CommandError::Conflict {
            attempts: self.retries + 1,
        })
    }
}

/// The events a command appends, caused by it and carrying its
/// correlation.
fn new_events<E: Clone>(events: &[E], id: Uuid, correlation: Uuid) -> Vec<NewEvent<E>> {
    let metadata = Metadata::new().causation(id).correlation(correlation);
    events
        .iter()
        .map(|e| NewEvent::new(e.clone()).metadata(metadata.clone()))
        .collect()
}

/// The next group: the longest run of waiting commands for distinct
/// streams (a command for a stream already in it waits for the next, so
/// it is decided on what the one before it appended).
fn take_group<A: Aggregate>(waiting: &mut VecDeque<Envelope<A>>) -> Vec<Envelope<A>> {
    if waiting.len() == 1 {
        return waiting.drain(..).collect();
    }
    let distinct = {
        let mut seen =
            HashSet::with_capacity_and_hasher(waiting.len(), foldhash::fast::FixedState::default());
        waiting
            .iter()
            .take_while(|e| seen.insert(e.stream.as_str()))
            .count()
    };
    waiting.drain(..distinct).collect()
}
