//! One actor of a shard: owns the aggregates of its streams and runs their
//! commands one at a time.

use std::collections::HashMap;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Envelope, Statuses};
use crate::aggregate::{Aggregate, CommandError, CommandStatus, Done};
use crate::error::Error;
use crate::event::{Event, Metadata, NewEvent};
use crate::log::Log;
use crate::position::{Expected, StreamId};
use crate::sync::{Arc, Mutex};
use crate::write::Writer;

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

/// One actor: owns the aggregates of its streams.
pub(super) struct Actor<A: Aggregate> {
    pub(super) writer: Writer<A::Event>,
    pub(super) log: Arc<dyn StreamSource<A::Event>>,
    pub(super) aggregates: HashMap<StreamId, (A, u64)>,
    pub(super) statuses: Arc<Mutex<Statuses>>,
    pub(super) retries: u32,
}

impl<A: Aggregate> Actor<A> {
    pub(super) async fn run(mut self, mut mailbox: mpsc::Receiver<Envelope<A>>) {
        while let Some(envelope) = mailbox.recv().await {
            let Envelope {
                id,
                correlation,
                stream,
                command,
                reply,
            } = envelope;
            self.set_status(id, CommandStatus::Processing);
            let outcome = self.handle_caught(id, correlation, stream, command).await;
            let status = match &outcome {
                Ok(done) => CommandStatus::Completed(*done),
                Err(e) => CommandStatus::Failed(e.to_string()),
            };
            self.set_status(id, status);
            if let Some(reply) = reply {
                let _ = reply.send(outcome);
            }
        }
    }

    fn set_status(&self, id: Uuid, status: CommandStatus) {
        self.statuses.lock().set(id, status);
    }

    /// [`handle`](Actor::handle), a panic of the aggregate's included: the
    /// command fails, the stream's aggregate (perhaps half-applied) is
    /// dropped to be reloaded from the log, and the actor goes on with the
    /// next command.
    async fn handle_caught(
        &mut self,
        id: Uuid,
        correlation: Uuid,
        stream: StreamId,
        command: A::Command,
    ) -> Result<Done, CommandError<A::Error>> {
        let key = stream.clone();
        let panicked = {
            let mut handling = std::pin::pin!(self.handle(id, correlation, stream, command));
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
        match panicked {
            Ok(outcome) => outcome,
            Err(message) => {
                tracing::error!(stream = %key, command = %id, %message, "an aggregate panicked: the command failed");
                self.aggregates.remove(&key);
                Err(CommandError::Panicked(message))
            }
        }
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

    async fn handle(
        &mut self,
        id: Uuid,
        correlation: Uuid,
        stream: StreamId,
        command: A::Command,
    ) -> Result<Done, CommandError<A::Error>> {
        if !self.aggregates.contains_key(&stream) {
            let loaded = self.load(&stream);
            self.aggregates.insert(stream.clone(), loaded);
        }
        let metadata = Metadata::new().causation(id).correlation(correlation);
        for attempt in 1..=self.retries + 1 {
            let Some((aggregate, version)) = self.aggregates.get_mut(&stream) else {
                return Err(CommandError::Runtime(Error::Closed));
            };
            let events = aggregate.handle(&command).map_err(CommandError::Domain)?;
            if events.is_empty() {
                return Ok(Done {
                    command: id,
                    position: None,
                    version: *version,
                    events: 0,
                });
            }
            let batch: Vec<NewEvent<A::Event>> = events
                .iter()
                .map(|e| NewEvent::new(e.clone()).metadata(metadata.clone()))
                .collect();
            let appended = self
                .writer
                .append_expecting_async(&stream, Expected::Exact(*version), batch)
                .await;
            match appended {
                Ok(ack) => {
                    for e in &events {
                        aggregate.apply(e);
                    }
                    *version = ack.version;
                    return Ok(Done {
                        command: id,
                        position: Some(ack.position),
                        version: ack.version,
                        events: ack.count,
                    });
                }
                Err(Error::Conflict { .. }) => {
                    tracing::debug!(stream = %stream, attempt, "conflict; reloading the aggregate");
                    let reloaded = self.load(&stream);
                    self.aggregates.insert(stream.clone(), reloaded);
                }
                Err(e) => return Err(CommandError::Runtime(e)),
            }
        }
        Err(CommandError::Conflict {
            attempts: self.retries + 1,
        })
    }
}
