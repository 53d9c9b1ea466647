//! What recovery reports: the cuts it made, the files it set aside, and a
//! loss it accepted.

use std::path::PathBuf;

use crate::position::Position;

/// What recovery found and did when a directory was opened; from
/// [`Runtime::recovery`](crate::Runtime::recovery).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The recovered log's head.
    pub head: Position,
    /// Every cut made to a segment.
    pub cuts: Vec<Cut>,
    /// Files moved to `<dir>/aside/` instead of being used: (file, where it
    /// went, why). Segments after a [`RecoveryMode::PointInTime`](crate::RecoveryMode::PointInTime) stop, and
    /// snapshots or checkpoints that do not fit the recovered log.
    pub set_aside: Vec<(PathBuf, PathBuf, String)>,
    /// Positions a snapshot or checkpoint proved durably acknowledged that
    /// the log no longer holds (`first..=last`): lost, and accepted only
    /// under [`RecoveryMode::PointInTime`](crate::RecoveryMode::PointInTime).
    pub lost: Option<(Position, Position)>,
}

/// A cut recovery made to a segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cut {
    /// The segment.
    pub file: PathBuf,
    /// Where it now ends.
    pub offset: u64,
    /// The bytes cut off.
    pub bytes: u64,
    /// Why.
    pub reason: String,
    /// Where the cut bytes were saved (under [`RecoveryMode::PointInTime`](crate::RecoveryMode::PointInTime)
    /// only: a torn tail was never acknowledged and is not kept).
    pub saved: Option<PathBuf>,
}
