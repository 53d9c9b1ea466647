//! Operating a log directory that no runtime has open: what it holds,
//! whether every byte checks, and a backup. (For a log in use, see
//! [`Runtime::backup`](crate::Runtime::backup); to restore, see
//! [`Runtime::restore`](crate::Runtime::restore).) The `rwlog` command-line
//! tool (feature `cli`) runs these.

use std::path::Path;

use crate::error::Result;
use crate::position::Position;
pub use crate::storage::DirSummary;
use crate::storage::{self, ArchiveMode, ArchiveSummary, BackupProgress, BackupSummary};

/// What the log directory `dir` holds: its identity, head, segments,
/// snapshots and checkpoints, from the batch headers (every header's
/// checksum checked). Changes nothing; works while a runtime has it open
/// (the newest batch may then be cut short by a concurrent write).
///
/// Errors: [`Error::Corrupt`](crate::Error::Corrupt) naming the file and
/// offset of damage, a torn tail included (opening a runtime would cut it).
pub fn inspect(dir: impl AsRef<Path>) -> Result<DirSummary> {
    storage::inspect(dir.as_ref(), false)
}

/// [`inspect`], checking every frame's checksum as well.
pub fn verify(dir: impl AsRef<Path>) -> Result<DirSummary> {
    storage::inspect(dir.as_ref(), true)
}

/// Backs up the log directory `dir`, which no runtime may have open (its
/// lock is held for the copy), into `dest` (new or empty), calling
/// `progress` after each file. The backup is the same as
/// [`Runtime::backup`](crate::Runtime::backup)'s.
///
/// Errors: [`Error::Locked`](crate::Error::Locked) if a runtime has it
/// open; [`Error::NotEmpty`](crate::Error::NotEmpty); as [`inspect`].
pub fn backup_dir(
    dir: impl AsRef<Path>,
    dest: impl AsRef<Path>,
    mut progress: impl FnMut(BackupProgress),
) -> Result<BackupSummary> {
    storage::backup_closed(dir.as_ref(), dest.as_ref(), &mut progress)
}

/// Archives the log directory `dir`, which no runtime may have open, before
/// `position`: as [`Runtime::archive_before`](crate::Runtime::archive_before)
/// does, as far as every view can be rebuilt. `views` names the program's
/// persisted views (a directory does not know the views of a program that
/// has not yet written a snapshot of them); the views with snapshots in
/// the directory count too. A program with views in memory only cannot
/// open the log afterwards: it gets [`Error::Archived`](crate::Error::Archived).
/// The streams' versions below the horizon are read from the frames'
/// headers, every frame checked first.
///
/// Errors: [`Error::Locked`](crate::Error::Locked) if a runtime has it
/// open; [`Error::Corrupt`](crate::Error::Corrupt) naming the file and
/// offset of damage or a directory that is not a log's;
/// [`Error::Io`](crate::Error::Io).
pub fn archive_dir(
    dir: impl AsRef<Path>,
    position: Position,
    mode: ArchiveMode,
    views: &[&str],
) -> Result<ArchiveSummary> {
    let views: Vec<String> = views.iter().map(|v| (*v).to_owned()).collect();
    storage::archive_closed(dir.as_ref(), position, mode, &views)
}
