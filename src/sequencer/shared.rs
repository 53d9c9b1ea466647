//! The sequencer's side of a log other processes append to as well: the
//! events they appended come first (read under the head's lock, or caught
//! up when the tailer sees them), ids are checked against the whole log,
//! and a batch the database refuses is undone, since the sequencer goes on.

use uuid::Uuid;

use crate::event::{Batch, Event, Recorded};
use crate::position::{Position, StreamId};
use crate::storage::Failure;
use crate::sync::Arc;
use crate::write::{AppendCmd, Appended};

use super::Sequencer;

/// What assigning a batch changed in the sequencer's own state.
#[derive(Default)]
pub(super) struct Undo {
    /// Each accepted append's stream and its version before the append.
    versions: Vec<(StreamId, u64)>,
    /// The ids remembered for the batch's appends.
    ids: Vec<Uuid>,
}

impl Undo {
    pub(super) fn record(&mut self, stream: &StreamId, before: u64, id: Option<Uuid>) {
        self.versions.push((stream.clone(), before));
        self.ids.extend(id);
    }

    pub(super) fn clear(&mut self) {
        self.versions.clear();
        self.ids.clear();
    }
}

impl<E: Event> Sequencer<E> {
    /// Starts a batch with the store: adopts what other processes appended
    /// first, then learns which of the batch's ids the log already holds.
    pub(super) fn begin(&mut self, cmds: &[AppendCmd<E>]) -> Result<(), Failure> {
        let head = self.shared.log.head().0;
        let Some(store) = &mut self.store else {
            return Ok(());
        };
        let foreign = store.begin(head)?;
        // Under the head's lock: the restart point waits for the commit
        // (other processes wait for this one meanwhile).
        self.adopt(foreign, false);
        if !self.shared_log {
            return Ok(());
        }
        let unknown: Vec<Uuid> = cmds
            .iter()
            .filter_map(|c| c.events.first_id())
            .filter(|id| self.dedupe.get(id).is_none())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let Some(store) = &mut self.store else {
            return Ok(());
        };
        match store.known(&unknown) {
            Ok(known) => {
                for (id, k) in known {
                    let ack = Appended {
                        position: Position(k.position),
                        version: k.version,
                        count: k.count,
                    };
                    self.dedupe.insert(id, ack);
                }
                Ok(())
            }
            Err(failure) => {
                store.abort();
                Err(failure)
            }
        }
    }

    /// Adopts events other processes appended (the next positions of the
    /// log): into the log and every view, as one batch of their own.
    pub(super) fn adopt(&mut self, foreign: Vec<Recorded<E>>, restart_point: bool) {
        if foreign.is_empty() {
            return;
        }
        for r in &foreign {
            self.versions.set(r.stream.clone(), r.version);
            self.last_stamp = self.last_stamp.max(r.recorded_at);
        }
        let batch: Batch<E> = Arc::new(foreign.into());
        self.shared.log.append(&batch);
        for view in &mut self.views {
            view.publish(&batch);
        }
        crate::telemetry::head(self.shared.log.head().0);
        match restart_point {
            true => self.restart_point(),
            false => self.defer_restart(),
        }
        self.shared.signal.notify();
    }

    /// Reads what other processes appended since the local head, if the
    /// store has seen that they did. Whether anything was adopted.
    pub(super) fn catch_up(&mut self) -> bool {
        let mut adopted = false;
        while self.failed.is_none() {
            let head = self.shared.log.head().0;
            let Some(store) = &mut self.store else {
                break;
            };
            if !store.behind(head) {
                break;
            }
            match store.catch_up(head) {
                Ok(foreign) if foreign.is_empty() => break,
                Ok(foreign) => {
                    adopted = true;
                    self.adopt(foreign, true);
                }
                Err(Failure::Batch(rejection)) => {
                    // The tailer tries again once the database answers.
                    tracing::warn!(?rejection, "catching up with the shared log failed");
                    break;
                }
                Err(fatal) => {
                    let _ = self.refusal(fatal);
                    break;
                }
            }
        }
        adopted
    }

    /// A shared log refused the batch: its appends never happened, so the
    /// streams' versions and the remembered ids go back to before it.
    pub(super) fn undo_batch(&mut self) {
        for (stream, before) in self.undo.versions.drain(..).rev() {
            self.versions.set(stream, before);
        }
        for id in self.undo.ids.drain(..).rev() {
            self.dedupe.forget_newest(&id);
        }
    }

    /// Refuses every command of a batch the store would not start.
    pub(super) fn refuse(&mut self, cmds: &mut Vec<AppendCmd<E>>, failure: Failure) {
        let refused = self.refusal(failure);
        let mut count = 0;
        for cmd in cmds.drain(..) {
            // An append whose id was seen is in the log already.
            match cmd.events.first_id().and_then(|id| self.dedupe.get(&id)) {
                Some(again) => self.answer(cmd.reply, Ok(again)),
                None => {
                    count += 1;
                    self.answer(cmd.reply, Err(refused()));
                }
            }
        }
        self.shared.counters.record_rejected(count);
    }
}
