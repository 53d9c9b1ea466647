//! What the sequencer asks of durable storage, whichever engine holds the
//! log: a directory of segment files, or a database shared by several
//! processes.

use uuid::Uuid;

use crate::error::{Error, Result};
#[cfg(feature = "durable")]
use crate::event::Event;
use crate::event::Recorded;

#[cfg(feature = "durable")]
use super::segment::SegmentWriter;

/// Where a recovered log starts when its front was archived: the first
/// position it holds, and what the log keeps of the events before it.
#[derive(Clone, Debug)]
pub(crate) struct Start {
    pub(crate) first: crate::position::Position,
    /// The id and time of the event at `first - 1`.
    pub(crate) before_id: Uuid,
    pub(crate) before_time: crate::event::Timestamp,
    /// Every stream's version before `first`.
    pub(crate) versions: Vec<(crate::position::StreamId, u64)>,
}

/// The views a runtime registers, as opening storage needs to know them:
/// a shared log's process starts from its local snapshots only if every
/// view has one.
#[derive(Clone, Default)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) struct Registered {
    /// The persisted views' names, each with a check of a snapshot file:
    /// its position if it is whole, of this log (its id) and decodes.
    pub(crate) persisted: Vec<(String, SnapshotCheck)>,
    /// How many views live in memory only.
    pub(crate) in_memory: usize,
}

/// A check of a persisted view's snapshot file (see [`Registered`]).
pub(crate) type SnapshotCheck = std::sync::Arc<
    dyn Fn(&std::path::Path, Uuid) -> Option<crate::position::Position> + Send + Sync,
>;

/// Why a batch could not be made durable.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The store cannot be trusted with more appends (a file's write or
    /// sync failed, or the log read back is damaged): this batch and every
    /// later append are refused until the log is reopened.
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    Fatal(std::io::Error),
    /// This batch alone is refused; the store goes on with the next.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Batch(Rejection),
}

/// What every append of a refused batch is told (an [`Error`] is not
/// `Clone`; this is, and makes one per append).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) enum Rejection {
    /// Nothing of the batch is in the log: [`Error::Postgres`].
    NotWritten(String),
    /// The batch may or may not be in the log: [`Error::OutcomeUnknown`].
    Unknown(String),
}

impl Rejection {
    pub(crate) fn error(&self) -> Error {
        match self {
            Rejection::NotWritten(why) => Error::Postgres(why.clone()),
            Rejection::Unknown(why) => Error::OutcomeUnknown(why.clone()),
        }
    }
}

/// An append a shared log already holds, found by its first event's id:
/// the position of its last event, its stream's version after it, and its
/// number of events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Known {
    pub(crate) position: u64,
    pub(crate) version: u64,
    pub(crate) count: u64,
}

/// Where the sequencer makes a batch durable before publishing it.
///
/// A batch goes `begin`, then `stage` once per accepted append, then
/// `commit` if anything was staged or `abort` if not. Only the holder of
/// the sequencer role calls these, one batch at a time.
pub(crate) trait Store<E>: Send {
    /// Starts a batch after the local log's `head`. A shared log locks its
    /// head (other processes' appends wait until `commit` or `abort`) and
    /// returns the events other processes appended after `head`, which the
    /// batch must follow. A local log has none.
    fn begin(&mut self, _head: u64) -> Result<Vec<Recorded<E>>, Failure> {
        Ok(Vec::new())
    }

    /// For a shared log, under the lock `begin` took: which of these ids
    /// start an append the log already holds (so a retry after an unknown
    /// outcome is acknowledged, not written twice).
    fn known(&mut self, _ids: &[Uuid]) -> Result<Vec<(Uuid, Known)>, Failure> {
        Ok(Vec::new())
    }

    /// Adds one accepted append's records to the batch being built;
    /// `keyed`: its first event's id came from the writer. An error (an
    /// event too large, or one that does not encode) rejects that append
    /// only: nothing of it is staged.
    fn stage(&mut self, records: &[Recorded<E>], keyed: bool) -> Result<()>;

    /// Writes (and, as configured, syncs) the staged batch. On an error the
    /// batch is not published or acknowledged.
    fn commit(&mut self) -> Result<(), Failure>;

    /// Ends a batch with nothing staged (every append was rejected),
    /// releasing what `begin` took.
    fn abort(&mut self) {}

    /// Whether the shared log is known to hold events after `head` that
    /// this process has not read.
    fn behind(&self, _head: u64) -> bool {
        false
    }

    /// Events other processes appended after `head`, read without the
    /// head's lock (some of them, if many: call again while `behind`).
    fn catch_up(&mut self, _head: u64) -> Result<Vec<Recorded<E>>, Failure> {
        Ok(Vec::new())
    }

    /// Whether other processes append to this log too: then event ids are
    /// checked against the log itself, not only the recent ones in memory.
    fn is_shared(&self) -> bool {
        false
    }

    /// Whether this store keeps restart points: where a reopen may start
    /// instead of reading the whole log (a shared log with a local
    /// directory).
    fn keeps_restart_points(&self) -> bool {
        false
    }

    /// Saves a restart point: the log up to `start.first - 1` is in the
    /// views' snapshots written for that position. Only called when
    /// [`keeps_restart_points`](Store::keeps_restart_points).
    fn save_restart_point(&mut self, _start: &Start) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "durable")]
impl<E: Event + serde::Serialize> Store<E> for SegmentWriter {
    fn stage(&mut self, records: &[Recorded<E>], _keyed: bool) -> Result<()> {
        SegmentWriter::stage(self, records)
    }

    fn commit(&mut self) -> Result<(), Failure> {
        SegmentWriter::commit(self).map_err(Failure::Fatal)
    }
}

/// The head of a log other processes append to, as the database has it,
/// for reads that must see every acknowledged append of every process.
pub(crate) trait SharedHead: Send + Sync {
    /// The database's head now (a round trip). If it is ahead of what this
    /// process has read, the sequencer is woken to catch up.
    fn head(&self) -> Result<u64>;

    /// [`head`](SharedHead::head) without blocking the thread.
    fn head_async(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64>> + Send + 'static>>;

    /// What to call when the tailer sees events this process has not read:
    /// wake whoever can take the sequencer role.
    fn set_wake(&self, wake: Box<dyn Fn() + Send + Sync>);
}
