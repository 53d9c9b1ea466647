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

// Everything of a directory log (and the frame codec a shared log uses
// too) needs the `durable` feature; the in-memory runtime needs only the
// configuration, the report type and the store trait.
#[cfg(feature = "durable")]
mod archive;
#[cfg(feature = "durable")]
mod backup;
#[cfg(feature = "durable")]
mod checkpoint;
#[cfg(feature = "durable")]
mod claim;
#[cfg(feature = "durable")]
mod codec;
#[cfg(feature = "durable")]
mod cold;
mod config;
mod files;
#[cfg(feature = "durable")]
mod frame;
#[cfg(feature = "durable")]
mod horizon;
#[cfg(feature = "durable")]
mod identity;
#[cfg(feature = "durable")]
mod inspect;
#[cfg(feature = "durable")]
mod lock;
#[cfg(feature = "durable")]
mod manifest;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "durable")]
mod read;
#[cfg(feature = "durable")]
mod recover;
mod report;
#[cfg(feature = "durable")]
mod restore;
#[cfg(feature = "durable")]
mod scan;
#[cfg(feature = "durable")]
mod segment;
#[cfg(feature = "durable")]
mod snapshot;
#[cfg(feature = "durable")]
mod spill;
mod store;
#[cfg(feature = "durable")]
mod upcast;

#[cfg(feature = "durable")]
pub use archive::ArchiveSummary;
#[cfg(feature = "durable")]
pub(crate) use archive::{archive_closed, commit as archive, reachable as archive_reachable};
#[cfg(feature = "durable")]
pub(crate) use backup::{backup, Source as BackupSource};
#[cfg(feature = "durable")]
pub use backup::{BackupProgress, BackupSummary};
#[cfg(feature = "durable")]
pub(crate) use checkpoint::CheckpointFiles;
#[cfg(feature = "durable")]
pub(crate) use claim::LogFacts;
pub(crate) use config::Engine;
#[cfg(feature = "durable")]
#[doc(hidden)]
pub use config::InjectedFault;
pub use config::{ArchiveMode, Retention};
pub use config::{Durability, RecoveryMode, Storage};
pub(crate) use files::is_plain_file_name;
#[cfg(feature = "durable")]
pub(crate) use horizon::Horizon;
#[cfg(feature = "durable")]
pub use inspect::DirSummary;
#[cfg(feature = "durable")]
pub(crate) use inspect::{backup_closed, inspect};
#[cfg(feature = "durable")]
pub(crate) use recover::{open, ColdStart};
pub use report::{Cut, RecoveryReport};
#[cfg(feature = "durable")]
pub(crate) use restore::restore;
#[cfg(feature = "durable")]
pub(crate) use snapshot::{usable as usable_snapshot, SnapshotFiles};
pub(crate) use store::{Failure, Registered, SharedHead, SnapshotCheck, Start, Store};
#[cfg(feature = "durable")]
pub(crate) use upcast::Upcasters;

/// Without the `durable` feature there is no log directory: an `Option` of
/// this is always `None`.
#[cfg(not(feature = "durable"))]
#[derive(Clone, Debug)]
pub(crate) enum DirInfo {}

/// Without the `durable` feature nothing is read back from storage, so
/// there is nothing to upcast.
#[cfg(not(feature = "durable"))]
pub(crate) struct Upcasters<E>(std::marker::PhantomData<fn() -> E>);

#[cfg(not(feature = "durable"))]
impl<E> std::fmt::Debug for Upcasters<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upcasters")
    }
}

#[cfg(not(feature = "durable"))]
impl<E> Default for Upcasters<E> {
    fn default() -> Self {
        Upcasters(std::marker::PhantomData)
    }
}

/// What the rest of the runtime needs to know about an open directory.
#[cfg(feature = "durable")]
#[derive(Clone, Debug)]
pub(crate) struct DirInfo {
    pub(crate) path: std::path::PathBuf,
    pub(crate) log_id: uuid::Uuid,
    /// Whether appends are synced before they are acknowledged: then a
    /// snapshot or checkpoint at a position proves the log held it.
    pub(crate) synced: bool,
    pub(crate) lock: std::sync::Arc<lock::DirLock>,
}

/// A log directory's path and log id.
#[cfg(feature = "durable")]
pub(crate) fn dir_identity(info: &DirInfo) -> (std::path::PathBuf, uuid::Uuid) {
    (info.path.clone(), info.log_id)
}

/// Without the `durable` feature there is no log directory.
#[cfg(not(feature = "durable"))]
pub(crate) fn dir_identity(info: &DirInfo) -> (std::path::PathBuf, uuid::Uuid) {
    match *info {}
}
