//! The sequencer: the one role that orders every append.
//!
//! Whoever holds the role (a writer, or the sequencer thread: see
//! [`Combiner`]) drains a batch of commands from the queue, checks each
//! one's expected version, gives the accepted events contiguous positions
//! and a timestamp, appends them to the log, folds them into every view and
//! publishes each view once, then acknowledges the writers.

mod combiner;
mod dedupe;
mod restart;
mod shared;
mod versions;

pub(crate) use combiner::Combiner;
pub use combiner::Sequencing;

use crate::error::{Error, Result};
use crate::event::{Batch, BatchEvents};
use crate::event::{Event, Ids, Recorded, Timestamp};
use crate::hub::Hub;
use crate::position::{Expected, Position, StreamId};
use crate::storage::{Failure, Store};
use crate::sync::channel::Receiver;
use crate::sync::Arc;
use crate::view::ViewDriver;
use crate::write::{AppendCmd, Appended, Events, Reply};

use dedupe::Dedupe;
use shared::Undo;
use versions::Versions;

/// The largest records vector a one-event batch leaves for the next (which
/// may store it as it is, spare room and all).
const REUSED_RECORDS: usize = 64;

/// What every event of a batch is stamped with.
struct Stamp {
    /// The batch's time (never before the last batch's).
    at: Timestamp,
    /// `at` in milliseconds, for event ids.
    millis: u64,
    /// The log's head before the batch.
    head: u64,
}

/// What a call of [`Sequencer::run_batch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ran {
    /// The queue was empty.
    Nothing,
    /// A batch, and the queue was empty after it.
    Emptied,
    /// A batch of `max_batch` events: more may be queued.
    Full,
}

/// Why the sequencer refuses every append.
#[derive(Clone)]
enum Refusal {
    /// The store failed: (kind, message).
    Storage(std::io::ErrorKind, String),
    /// The sequencer panicked (a bug of rwlog's), with the message.
    Panicked(String),
}

impl Refusal {
    fn error(&self) -> Error {
        match self {
            Refusal::Storage(kind, message) => Error::Io(std::io::Error::new(
                *kind,
                format!("the log could not be written ({message}); the runtime takes no more appends until reopened"),
            )),
            Refusal::Panicked(message) => Error::SequencerPanicked(message.clone()),
        }
    }
}

/// A batch as assigned: its records, and each command's answer.
struct Assigned<E> {
    records: Vec<Recorded<E>>,
    acks: Vec<(Reply, Result<Appended>)>,
    rejected: u64,
}

/// The sequencer's state: whoever holds the role works on it.
pub(crate) struct Sequencer<E> {
    shared: Arc<Hub<E>>,
    /// The commands of the batch being drained (kept for its allocation).
    pending: Vec<AppendCmd<E>>,
    /// Each command's answer, sent after publication (kept likewise).
    acks: Vec<(Reply, Result<Appended>)>,
    /// The records vector of the last one-event batch, for the next batch.
    records: Vec<Recorded<E>>,
    /// The answer to the command of the writer sequencing, if it gave one.
    own: Option<Result<Appended>>,
    views: Vec<Box<dyn ViewDriver<E>>>,
    max_batch: usize,
    /// Every stream's current version.
    versions: Versions,
    last_stamp: Timestamp,
    ids: Ids,
    store: Option<Box<dyn Store<E>>>,
    /// Set once the store failed or the sequencer panicked: every later
    /// append is refused, so the versions and remembered ids of the failed
    /// batch are never read again and need no rollback; reopening rebuilds
    /// them from the log.
    failed: Option<Refusal>,
    dedupe: Dedupe,
    /// Other processes append to the log too (see [`Store::is_shared`]).
    shared_log: bool,
    /// What the batch being assigned changed, undone if a shared log
    /// refuses it (kept empty otherwise).
    undo: Undo,
    /// The queue's depth when the batch being run started (for metrics).
    depth: usize,
    /// A restart point is saved about every this many events (0: never,
    /// and always for a store that keeps none), the last one at
    /// `last_restart`.
    restart_every: u64,
    last_restart: u64,
    /// A restart point due while the head's lock was held, saved after the
    /// batch.
    pending_restart: Option<crate::storage::Start>,
}

impl<E: Event> Sequencer<E> {
    pub(crate) fn new(
        shared: Arc<Hub<E>>,
        views: Vec<Box<dyn ViewDriver<E>>>,
        max_batch: usize,
        store: Option<Box<dyn Store<E>>>,
        dedupe_window: usize,
        restart_every: u64,
    ) -> Sequencer<E> {
        let mut dedupe = Dedupe::new(dedupe_window);
        let shared_log = store.as_ref().is_some_and(|s| s.is_shared());
        // Continue where a recovered log left off. Its newest ids are
        // remembered one event at a time (the grouping of events into
        // appends is not stored); a shared log finds them in the database,
        // with their appends' extents.
        // Every stream's version, also of streams whose events were all
        // archived (the log keeps their versions).
        let log = &shared.log;
        let versions = Versions::new(log.versions_before(log.head().next()));
        let last_stamp = log.last_time();
        // As the views count their snapshots on disk, so that a restart
        // point is written where they write theirs: from the oldest newest
        // snapshot (from where the log starts without persisted views).
        let keeps = store.as_ref().is_some_and(|s| s.keeps_restart_points());
        let restart_every = if keeps { restart_every } else { 0 };
        let on_disk = views.iter().filter_map(|v| v.on_disk()).min();
        let last_restart = on_disk.map_or(log.first().0 - 1, |p| p.0);
        if !shared_log {
            dedupe.remember_recent(log);
        }
        Sequencer {
            shared,
            pending: Vec::new(),
            acks: Vec::new(),
            records: Vec::new(),
            own: None,
            views,
            max_batch,
            versions,
            last_stamp,
            ids: Ids::new(),
            store,
            failed: None,
            dedupe,
            shared_log,
            undo: Undo::default(),
            depth: 0,
            restart_every,
            last_restart,
            pending_restart: None,
        }
    }

    /// Answers a command: through its ticket's cell, or, for the command
    /// of the writer sequencing (an [`own`](Reply::own) reply), kept for
    /// [`take_own`](Self::take_own).
    fn answer(&mut self, reply: Reply, result: Result<Appended>) {
        if reply.is_own() {
            self.own = Some(result);
        } else {
            reply.send(result);
        }
    }

    /// The answer to the sequencing writer's own command, once its batch
    /// ran: if the batch never answered it (the sequencer panicked), why.
    pub(crate) fn take_own(&mut self) -> Result<Appended> {
        self.own
            .take()
            .unwrap_or_else(|| Err(self.storage_error().unwrap_or(Error::Closed)))
    }

    /// The error every append gets once the store has failed or the
    /// sequencer panicked.
    fn storage_error(&self) -> Option<Error> {
        self.failed.as_ref().map(Refusal::error)
    }

    /// Whether batches are made durable in a store.
    pub(crate) fn is_durable(&self) -> bool {
        self.store.is_some()
    }

    /// The runtime shut down and the queue is drained for good: let go of
    /// the store (and with it a durable log's directory).
    pub(crate) fn finish(&mut self) {
        self.store = None;
    }

    /// The sequencer panicked mid-batch: its state may be torn, so every
    /// later append is refused (the commands of that batch were answered
    /// `Closed` as they were dropped).
    pub(crate) fn fail_panicked(&mut self, message: String) {
        self.pending.clear();
        self.failed = Some(Refusal::Panicked(message));
    }

    /// Takes commands from the queue, up to `max_batch` events (an append
    /// is never split), and sequences them as one batch; with the caller's
    /// own command last if everything queued fits before it (so it follows
    /// every command queued before it, as if it had been queued), else the
    /// command comes back unsequenced.
    pub(crate) fn run_batch(
        &mut self,
        rx: &Receiver<AppendCmd<E>>,
        own: Option<AppendCmd<E>>,
    ) -> (Ran, Option<AppendCmd<E>>) {
        let caught_up = self.catch_up();
        let mut cmds = std::mem::take(&mut self.pending);
        let mut events = 0;
        // Take what is queued now (more may arrive: the next batch, or the
        // look after the role is released, finds it).
        let mut queued = rx.len();
        self.depth = queued;
        while events < self.max_batch && queued > 0 {
            let Ok(cmd) = rx.try_recv() else { break };
            queued -= 1;
            events += cmd.events.len();
            cmds.push(cmd);
        }
        let emptied = queued == 0;
        // Within `max_batch`, as a queued append would be.
        let back = match own {
            Some(cmd) if emptied && events < self.max_batch => {
                cmds.push(cmd);
                None
            }
            other => other,
        };
        let ran = match (cmds.is_empty(), emptied) {
            (true, _) if caught_up => Ran::Emptied,
            (true, _) => Ran::Nothing,
            (false, true) => Ran::Emptied,
            (false, false) => Ran::Full,
        };
        self.process(&mut cmds);
        self.pending = cmds;
        (ran, back)
    }

    fn process(&mut self, cmds: &mut Vec<AppendCmd<E>>) {
        if cmds.is_empty() {
            return;
        }
        let _span = tracing::debug_span!("batch", commands = cmds.len()).entered();
        if self.failed.is_some() {
            for cmd in cmds.drain(..) {
                let error = self.storage_error().unwrap_or(Error::Closed);
                self.answer(cmd.reply, Err(error));
            }
            return;
        }
        if let Err(failure) = self.begin(cmds) {
            self.refuse(cmds, failure);
            self.flush_restart();
            return;
        }
        let assigned = self.assign(cmds);
        self.commit(assigned);
        self.flush_restart();
    }

    /// Checks each command (dedupe, expected version), gives the accepted
    /// events their positions, versions, ids and the batch's timestamp, and
    /// stages them with the store. A command the store cannot take (an
    /// event too large) is rejected alone.
    fn assign(&mut self, cmds: &mut Vec<AppendCmd<E>>) -> Assigned<E> {
        let at = Timestamp::now().max(self.last_stamp);
        self.last_stamp = at;
        let stamp = Stamp {
            at,
            millis: at.as_nanos() / 1_000_000,
            head: self.shared.log.head().0,
        };
        // The events offered: this vector becomes the stored batch (or, for
        // one event, is kept for the next).
        let offered = cmds.iter().map(|c| c.events.len()).sum();
        let mut records = std::mem::take(&mut self.records);
        records.clear();
        records.reserve_exact(offered);
        // The answers' vector is kept between batches: no allocation.
        let mut acks = std::mem::take(&mut self.acks);
        acks.reserve(cmds.len());
        let mut rejected = 0u64;
        for cmd in cmds.drain(..) {
            let AppendCmd {
                stream,
                expected,
                events,
                reply,
            } = cmd;
            let result = self.accept(stream, expected, events, &stamp, &mut records);
            rejected += u64::from(result.is_err());
            acks.push((reply, result));
        }
        self.versions.end_run();
        Assigned {
            records,
            acks,
            rejected,
        }
    }

    /// One command: acknowledged again if its id was seen (nothing
    /// written), refused on a version conflict or by the store, else its
    /// events are added to `records` and its stream's version moves on.
    fn accept(
        &mut self,
        stream: StreamId,
        expected: Expected,
        events: Events<E>,
        stamp: &Stamp,
        records: &mut Vec<Recorded<E>>,
    ) -> Result<Appended> {
        let first_id = events.first_id();
        if let Some(original) = first_id.and_then(|id| self.dedupe.get(&id)) {
            return Ok(original);
        }
        self.versions.advance(stream, |stream, current| {
            if !expected.matches(current) {
                return Err(Error::Conflict {
                    stream: stream.clone(),
                    expected,
                    actual: current,
                });
            }
            let start = records.len();
            let first = stamp.head + 1 + start as u64;
            for (i, e) in (0..).zip(events.into_iter()) {
                records.push(Recorded {
                    position: Position(first + i),
                    stream: stream.clone(),
                    version: current + 1 + i,
                    id: e.id.unwrap_or_else(|| self.ids.next(stamp.millis)),
                    recorded_at: stamp.at,
                    schema_version: E::SCHEMA_VERSION,
                    metadata: e.metadata,
                    payload: e.payload,
                });
            }
            stage(&mut self.store, records, start, first_id)?;
            if self.shared_log {
                self.undo.record(stream, current, first_id);
            }
            let count = (records.len() - start) as u64;
            let ack = Appended {
                position: Position(first + count - 1),
                version: current + count,
                count,
            };
            if let Some(id) = first_id {
                self.dedupe.insert(id, ack);
            }
            Ok((count, ack))
        })
    }

    /// Makes the batch durable, appends it to the log, publishes every view
    /// once, wakes readers, and only then answers the writers.
    fn commit(&mut self, assigned: Assigned<E>) {
        let Assigned {
            records,
            acks,
            rejected,
        } = assigned;
        let appended = records.len() as u64;
        if let (Some(store), 0) = (&mut self.store, appended) {
            store.abort();
        }
        if appended > 0 {
            if let Some(store) = &mut self.store {
                if let Err(failure) = store.commit() {
                    self.undo_batch();
                    self.fail(failure, acks);
                    return;
                }
            }
            let mut records = records;
            let batch: Batch<E> = Arc::new(BatchEvents::take(&mut records));
            // A one-event batch left the vector: the next batch reuses it
            // (unless it was sized for many, which would then be stored).
            if records.capacity() <= REUSED_RECORDS {
                self.records = records;
            }
            self.shared.log.append(&batch);
            for view in &mut self.views {
                view.publish(&batch);
            }
            self.shared.counters.record_batch(appended);
            crate::telemetry::batch(appended, self.depth, self.shared.log.head().0);
            self.restart_point();
        }
        self.undo.clear();
        self.shared.counters.record_rejected(rejected);
        // Readers waiting for these positions re-check now; writers learn
        // their positions only after the views show them.
        self.shared.signal.notify();
        let mut acks = acks;
        for (reply, result) in acks.drain(..) {
            self.answer(reply, result);
        }
        self.acks = acks;
    }

    /// The store refused the batch: every append of it gets the refusal
    /// (and a fatal failure refuses every later append too).
    fn fail(&mut self, failure: Failure, acks: Vec<(Reply, Result<Appended>)>) {
        let refused = self.refusal(failure);
        // An append acknowledged again (its id was seen) is in the log
        // already, at or below the head: the failure does not touch it.
        let head = self.shared.log.head();
        let mut failed = 0;
        for (reply, result) in acks {
            let result = match result {
                Ok(again) if again.position <= head => Ok(again),
                Ok(_) => {
                    failed += 1;
                    Err(refused())
                }
                Err(e) => Err(e),
            };
            self.answer(reply, result);
        }
        self.shared.counters.record_rejected(failed);
    }

    /// What a failure means for the appends it refuses; a fatal one also
    /// refuses every later append.
    fn refusal(&mut self, failure: Failure) -> impl Fn() -> Error + 'static {
        let rejection = match failure {
            Failure::Fatal(e) => {
                tracing::error!(error = %e, "the log could not be written; refusing appends from now on");
                let _ = self.shared.storage_failure.set(e.to_string());
                self.failed = Some(Refusal::Storage(e.kind(), e.to_string()));
                // Readers waiting for positions this process will never
                // adopt learn why.
                self.shared.signal.notify();
                None
            }
            Failure::Batch(rejection) => {
                tracing::warn!(?rejection, "the shared log refused a batch");
                Some(rejection)
            }
        };
        let fatal = self.failed.clone();
        move || match (&rejection, &fatal) {
            (Some(r), _) => r.error(),
            (None, Some(refusal)) => refusal.error(),
            (None, None) => Error::Closed,
        }
    }
}

/// Stages an append's records (from `start`) with the store, if any; on an
/// error they leave the batch.
fn stage<E>(
    store: &mut Option<Box<dyn Store<E>>>,
    records: &mut Vec<Recorded<E>>,
    start: usize,
    keyed: Option<uuid::Uuid>,
) -> Result<()> {
    if let Some(store) = store {
        if let Err(e) = store.stage(&records[start..], keyed.is_some()) {
            records.truncate(start);
            return Err(e);
        }
    }
    Ok(())
}
