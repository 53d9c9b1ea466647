//! Looking at a log directory without opening a runtime on it: what it
//! holds (`rwlog info`), whether every byte checks (`rwlog verify`), and a
//! backup of a directory no runtime has open.
//!
//! Nothing here changes the directory: a torn tail is reported, not cut
//! (opening a runtime on the directory cuts it).

use std::fmt;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::position::Position;

use super::backup::{self, BackupProgress, BackupSummary, Source};
use super::files::list_segments;
use super::lock::DirLock;
use super::read::corrupt;
use super::{checkpoint, files, frame, horizon, identity, snapshot};

/// What a log directory holds.
#[derive(Clone, Debug)]
pub struct DirSummary {
    /// The directory.
    pub dir: PathBuf,
    /// The log's identity (`None` for a directory without `rwlog.id`).
    pub log_id: Option<Uuid>,
    /// The first position the log holds (1, unless its front was
    /// archived).
    pub first: Position,
    /// The last position in the segments (0 for an empty log).
    pub head: Position,
    /// The segment files: (file name, first position, last position, bytes).
    pub segments: Vec<(String, u64, u64, u64)>,
    /// Each persisted view's snapshots on disk, oldest first.
    pub snapshots: Vec<(String, Vec<Position>)>,
    /// Each projection's checkpoint.
    pub checkpoints: Vec<(String, Position)>,
    /// Whether every frame's checksum was checked too.
    pub verified: bool,
    /// Segments still in the directory below its horizon: an archiving
    /// was cut short, and the next open finishes it.
    pub below_horizon: usize,
    /// The id of the event at the head (nil for an empty log).
    pub(crate) id_at_head: Uuid,
}

impl DirSummary {
    /// The bytes of the segments.
    pub fn segment_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.3).sum()
    }
}

impl fmt::Display for DirSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "log directory  {}", self.dir.display())?;
        match self.log_id {
            Some(id) => writeln!(f, "log id         {id}")?,
            None => writeln!(f, "log id         (no rwlog.id)")?,
        }
        if self.first > Position::FIRST {
            writeln!(
                f,
                "first          {} (positions before it archived)",
                self.first
            )?;
        }
        writeln!(f, "head           {}", self.head)?;
        if self.below_horizon > 0 {
            writeln!(
                f,
                "unarchived     {} segments below the horizon (an archiving cut short; the next open moves them)",
                self.below_horizon
            )?;
        }
        let mib = self.segment_bytes() as f64 / (1 << 20) as f64;
        writeln!(f, "segments       {} ({mib:.1} MiB)", self.segments.len())?;
        for (name, first, last, bytes) in &self.segments {
            writeln!(f, "  {name}  positions {first}..={last}  {bytes} bytes")?;
        }
        writeln!(f, "views          {}", self.snapshots.len())?;
        for (view, kept) in &self.snapshots {
            let list: Vec<String> = kept.iter().map(|p| p.0.to_string()).collect();
            writeln!(f, "  {view}  snapshots at {}", list.join(", "))?;
        }
        writeln!(f, "projections    {}", self.checkpoints.len())?;
        for (name, at) in &self.checkpoints {
            writeln!(f, "  {name}  checkpoint {at}")?;
        }
        if self.verified {
            writeln!(f, "verified       every batch header and frame checksum")?;
        }
        Ok(())
    }
}

/// What `dir` holds; with `verify`, every frame's checksum is checked, and
/// a snapshot or checkpoint that proves a loss (written after a position
/// the segments no longer hold was durably acknowledged) is damage, as
/// opening the log would say.
///
/// While a runtime has the directory open, the last segment may end in a
/// batch being written: the summary then stops at the last whole batch.
///
/// Errors: [`Error::Io`] (not found) for a path that is not a log
/// directory; [`Error::Corrupt`] naming the file and offset of the first
/// damage (a torn tail of a log no runtime has open included: opening a
/// runtime would cut it).
pub(crate) fn inspect(dir: &Path, verify: bool) -> Result<DirSummary> {
    is_log_dir(dir)?;
    // A runtime holds the lock while it appends: the tail may be in flight.
    let live = matches!(DirLock::acquire(dir), Err(Error::Locked { .. }));
    examine(dir, verify, live)
}

/// An error unless `dir` holds a log (an identity file or segments).
fn is_log_dir(dir: &Path) -> Result<()> {
    let has_segments = dir.is_dir() && list_segments(dir).is_ok_and(|s| !s.is_empty());
    if has_segments || dir.join(identity::FILE).is_file() {
        return Ok(());
    }
    let why = format!(
        "{}: not an rwlog log directory (no rwlog.id and no segments)",
        dir.display()
    );
    Err(Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        why,
    )))
}

/// [`inspect`], told whether a runtime may be appending.
fn examine(dir: &Path, verify: bool, live: bool) -> Result<DirSummary> {
    let segments = list_segments(dir)?;
    let log_id = identity::read(dir)?;
    let mut summary = DirSummary {
        dir: dir.to_path_buf(),
        log_id,
        first: Position::FIRST,
        head: Position::ZERO,
        segments: Vec::new(),
        snapshots: Vec::new(),
        checkpoints: Vec::new(),
        verified: verify,
        below_horizon: 0,
        id_at_head: Uuid::nil(),
    };
    let count = segments.len();
    let (mut next, _) = horizon::first_in(dir, log_id)?;
    summary.first = Position(next);
    for (i, (first, path)) in segments.into_iter().enumerate() {
        if first < summary.first.0 {
            // Left by an archiving cut short: the next open moves it.
            summary.below_horizon += 1;
            continue;
        }
        let data = files::read(&path)?;
        let id = log_id.unwrap_or_else(|| {
            frame::parse_segment_header(&data).map_or(Uuid::nil(), |h| h.log_id)
        });
        backup::starts_at(&path, first, next)?;
        let lenient = live && i + 1 == count;
        let walked = backup::walk_with(&path, &data, (id, first), None, verify, lenient)?;
        if walked.end != data.len() && !lenient {
            return Err(corrupt(
                &path,
                walked.end as u64,
                "bytes after the last whole batch",
            ));
        }
        if walked.last >= walked.first {
            summary.id_at_head = walked.last_id(&data).unwrap_or(Uuid::nil());
        }
        next = walked.last + 1;
        let name = files::name_of(&path).to_owned();
        summary
            .segments
            .push((name, first, walked.last, walked.end as u64));
    }
    summary.head = Position(next - 1);
    claims(dir, &mut summary, verify)?;
    Ok(summary)
}

/// Lists the snapshots and checkpoints; with `refuse_proofs`, one that
/// proves a loss is damage.
fn claims(dir: &Path, summary: &mut DirSummary, refuse_proofs: bool) -> Result<()> {
    let proof = |path: &Path, claim: &super::claim::Claim, what: &str| -> Result<()> {
        let proves =
            claim.synced && claim.position > summary.head && Some(claim.log_id) == summary.log_id;
        if refuse_proofs && proves {
            let why = format!(
                "the log ends at position {}, but this {what} was written after position {} was durably \
                 acknowledged: positions {}..={} are lost (opening the log refuses it; \
                 RecoveryMode::PointInTime accepts the loss)",
                summary.head, claim.position, summary.head.next(), claim.position
            );
            return Err(corrupt(path, 0, why));
        }
        Ok(())
    };
    for view_dir in files::subdirs(&snapshot::root(dir))? {
        let mut kept = Vec::new();
        for (at, path) in snapshot::list(&view_dir)? {
            if let Ok(claim) = (snapshot::KIND.read)(&path) {
                proof(&path, &claim, "snapshot")?;
            }
            kept.push(Position(at));
        }
        summary
            .snapshots
            .push((files::name_of(&view_dir).to_owned(), kept));
    }
    for path in files::list(&checkpoint::root(dir))? {
        if let Ok(claim) = (checkpoint::KIND.read)(&path) {
            proof(&path, &claim, "checkpoint")?;
            summary.checkpoints.push((claim.name, claim.position));
        }
    }
    Ok(())
}

/// Backs up `dir`, which no runtime may have open (its lock is taken for
/// the copy): see [`Runtime::backup`](crate::Runtime::backup) for a log in
/// use.
///
/// Errors: [`Error::Locked`] if a runtime has it open; as
/// [`inspect`] and the backup otherwise.
pub(crate) fn backup_closed(
    dir: &Path,
    dest: &Path,
    progress: &mut dyn FnMut(BackupProgress),
) -> Result<BackupSummary> {
    is_log_dir(dir)?;
    let _lock = DirLock::acquire(dir)?;
    // Checks every frame, and refuses a directory whose snapshots or
    // checkpoints prove a loss, as opening it would.
    let summary = examine(dir, true, false)?;
    let log_id = summary.log_id.ok_or_else(|| Error::Corrupt {
        file: dir.join(identity::FILE),
        offset: 0,
        reason: "no rwlog.id: open the directory with a runtime once first".into(),
    })?;
    let source = Source {
        dir,
        log_id,
        head: summary.head,
        id_at_head: summary.id_at_head,
    };
    backup::backup(&source, dest, progress)
}
