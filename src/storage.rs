//! The durable log on disk: a locked directory of segment files, snapshot
//! files and projection checkpoints, all tied to one log identity.
//!
//! ```text
//! <dir>/rwlog.lock                      held (an OS file lock) while a runtime has the directory open
//! <dir>/rwlog.id                        the log's identity, written once when the directory is made
//! <dir>/00000000000000000001.seg        segments, named by their first position
//! <dir>/snapshots/<view>/<position>.snap
//! <dir>/projections/<name>.checkpoint
//! <dir>/aside/                          what recovery set aside instead of using
//! ```
//!
//! A segment is a header (magic, format, codec, first position, log id,
//! checksum) and then batches: each sequencer batch is a batch header (first
//! position, event count, byte length, checksum) followed by one frame per
//! event (`[length][CRC32C][body]`), written with one `write` and, with
//! [`Durability::Fsync`], one `fdatasync` before it is published or
//! acknowledged. Recovery keeps whole batches only, so an append is all or
//! nothing on disk too; see [`RecoveryMode`] for what it cuts.
//!
//! Snapshots and checkpoints name the log, the view or projection, the
//! position and the id of the event there, and are used only when all of
//! them match the recovered log.

mod checkpoint;
mod claim;
mod codec;
mod config;
mod files;
mod frame;
mod identity;
mod lock;
mod read;
mod recover;
mod report;
mod scan;
mod segment;
mod snapshot;
mod upcast;

pub(crate) use checkpoint::CheckpointFiles;
pub(crate) use claim::LogFacts;
pub(crate) use config::DirOptions;
#[doc(hidden)]
pub use config::InjectedFault;
pub use config::{Durability, RecoveryMode, Storage};
pub(crate) use files::is_plain_file_name;
pub(crate) use recover::open;
pub use report::{Cut, RecoveryReport};
pub(crate) use segment::SegmentWriter;
pub(crate) use snapshot::SnapshotFiles;
pub(crate) use upcast::Upcasters;

/// Where the sequencer makes a batch durable before publishing it: one
/// engine of durable storage (today the segment files of a directory).
pub(crate) trait Store<E>: Send {
    /// Adds one accepted append's records to the batch being built. An
    /// error (an event too large, or one that does not encode) rejects
    /// that append only: nothing of it is staged.
    fn stage(&mut self, records: &[crate::event::Recorded<E>]) -> crate::error::Result<()>;

    /// Writes (and, as configured, syncs) the staged batch. An error means
    /// the batch may not be durable: it is not published or acknowledged.
    fn commit(&mut self) -> std::io::Result<()>;
}

impl<E: crate::event::Event + serde::Serialize> Store<E> for SegmentWriter {
    fn stage(&mut self, records: &[crate::event::Recorded<E>]) -> crate::error::Result<()> {
        SegmentWriter::stage(self, records)
    }

    fn commit(&mut self) -> std::io::Result<()> {
        SegmentWriter::commit(self)
    }
}

/// What the rest of the runtime needs to know about an open directory.
#[derive(Clone, Debug)]
pub(crate) struct DirInfo {
    pub(crate) path: std::path::PathBuf,
    pub(crate) log_id: uuid::Uuid,
    /// Whether appends are synced before they are acknowledged: then a
    /// snapshot or checkpoint at a position proves the log held it.
    pub(crate) synced: bool,
    pub(crate) lock: std::sync::Arc<lock::DirLock>,
}
