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
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod read;
mod recover;
mod report;
mod scan;
mod segment;
mod snapshot;
mod store;
mod upcast;

pub(crate) use checkpoint::CheckpointFiles;
pub(crate) use claim::LogFacts;
pub(crate) use config::Engine;
#[doc(hidden)]
pub use config::InjectedFault;
pub use config::{Durability, RecoveryMode, Storage};
pub(crate) use files::is_plain_file_name;
pub(crate) use recover::open;
pub use report::{Cut, RecoveryReport};
pub(crate) use snapshot::SnapshotFiles;
pub(crate) use store::{Failure, SharedHead, Store};
pub(crate) use upcast::Upcasters;

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
