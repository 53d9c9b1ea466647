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
use super::lock::DirLock;
use super::read::corrupt;
use super::{checkpoint, files, frame, identity, snapshot};

/// What a log directory holds.
#[derive(Clone, Debug)]
pub struct DirSummary {
    /// The directory.
    pub dir: PathBuf,
    /// The log's identity (`None` for a directory without `rwlog.id`).
    pub log_id: Option<Uuid>,
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
        writeln!(f, "head           {}", self.head)?;
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

/// What `dir` holds; with `verify`, every frame's checksum is checked.
///
/// Errors: [`Error::Corrupt`] naming the file and offset of the first
/// damage (a torn tail included: opening a runtime would cut it).
pub(crate) fn inspect(dir: &Path, verify: bool) -> Result<DirSummary> {
    if !dir.is_dir() {
        return Err(corrupt(dir, 0, "not a directory"));
    }
    let log_id = identity::read(dir)?;
    let mut summary = DirSummary {
        dir: dir.to_path_buf(),
        log_id,
        head: Position::ZERO,
        segments: Vec::new(),
        snapshots: Vec::new(),
        checkpoints: Vec::new(),
        verified: verify,
        id_at_head: Uuid::nil(),
    };
    let mut next = 1;
    for (first, path) in backup::segments(dir)? {
        let data = files::read(&path)?;
        let id = log_id.unwrap_or_else(|| {
            frame::parse_segment_header(&data).map_or(Uuid::nil(), |h| h.log_id)
        });
        if first != next {
            let why = format!("the segment starts at {first}, position {next} was expected");
            return Err(corrupt(&path, 0, why));
        }
        let walked = backup::walk(&path, &data, id, first, None, verify)?;
        if walked.end != data.len() {
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
            .push((name, first, walked.last, data.len() as u64));
    }
    summary.head = Position(next - 1);
    for view_dir in files::subdirs(&snapshot::root(dir))? {
        let mut kept: Vec<Position> = files::list(&view_dir)?
            .iter()
            .filter_map(|p| snapshot::position_of(p).map(Position))
            .collect();
        kept.sort();
        summary
            .snapshots
            .push((files::name_of(&view_dir).to_owned(), kept));
    }
    for path in files::list(&checkpoint::root(dir))? {
        if let Ok(claim) = (checkpoint::KIND.read)(&path) {
            summary.checkpoints.push((claim.name, claim.position));
        }
    }
    Ok(summary)
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
    let _lock = DirLock::acquire(dir)?;
    let summary = inspect(dir, false)?;
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
