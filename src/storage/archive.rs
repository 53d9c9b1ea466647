//! Archiving the front of a log directory: how far it may go, and doing
//! it (the horizon file first, then the segments below it move or go).

use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::Timestamp;
use crate::position::{Position, StreamId};

use super::backup::walk;
use super::config::ArchiveMode;
use super::files;
use super::files::list_segments;
use super::frame::{self, BATCH_HEADER, FRAME_HEADER, SEGMENT_HEADER};
use super::horizon::{self, Horizon};
use super::identity;
use super::lock::DirLock;
use super::snapshot;

/// What archiving did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// The log's first position now.
    pub first: Position,
    /// The segment files archived by this call (moved to the directory's
    /// `archive/`, or deleted).
    pub segments: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Why the log could not be archived as far as asked, if it could not.
    pub held_back: Option<String>,
}

/// How far the log in `root` can be archived toward `wanted`: the start of
/// the segment holding `wanted` or before (segments go whole), no further
/// than one past each persisted view's newest snapshot (a view must be
/// rebuildable from a snapshot at or after the horizon). Returns the
/// horizon and, if it falls short of `wanted`, why.
pub(crate) fn reachable(
    root: &Path,
    wanted: Position,
    views: &[String],
) -> Result<(Position, Option<String>)> {
    let mut bound = wanted;
    let mut why = None;
    // Every view this runtime has, and every view with snapshots on disk
    // (another program's, or one this one no longer registers).
    let mut names: Vec<String> = views.to_vec();
    for dir in files::subdirs(&snapshot::root(root))? {
        names.push(files::name_of(&dir).to_owned());
    }
    names.sort();
    names.dedup();
    for view in &names {
        let newest = snapshot::list(&snapshot::root(root).join(view))?
            .last()
            .map_or(0, |(p, _)| *p);
        if newest + 1 < bound.0 {
            bound = Position(newest + 1);
            why = Some(format!(
                "view `{view}` has no snapshot on disk after position {newest} (see Builder::disk_snapshot_every)"
            ));
        }
    }
    let segments = list_segments(root)?;
    let first = segments
        .iter()
        .map(|(start, _)| *start)
        .filter(|start| *start <= bound.0)
        .max()
        .map_or(Position::FIRST, Position);
    if first < bound && why.is_none() {
        why = Some(format!(
            "segments are archived whole: position {bound} is in the one starting at {first}"
        ));
    }
    Ok((first, why.filter(|_| first < wanted)))
}

/// Archives the log in `root` up to `horizon`: writes the horizon file
/// (the commit point), then moves or deletes the segments wholly below it.
/// Returns the segments archived and their bytes.
pub(crate) fn commit(root: &Path, horizon: &Horizon) -> Result<(usize, u64)> {
    horizon::write(root, horizon)?;
    let segments = list_segments(root)?;
    let (moved, bytes) = horizon::archive_segments(root, &segments, horizon.first, horizon.mode)?;
    let count = match horizon.mode {
        ArchiveMode::Move => moved.len(),
        ArchiveMode::Delete => segments
            .iter()
            .filter(|(s, _)| *s < horizon.first.0)
            .count(),
    };
    Ok((count, bytes))
}

/// Archives a log directory no runtime has open (the CLI's `archive`):
/// the horizon as for a runtime, bounded by the newest snapshot of each
/// of `views` (the program's persisted views: one without a snapshot yet
/// holds the horizon at the start) and of every view with snapshots on
/// disk, with the streams' versions read from the frames' headers (no
/// event type needed). Every frame below the horizon is checked first.
///
/// Errors: [`Error::Locked`] if a runtime has it open; [`Error::Corrupt`]
/// naming the file and offset of damage; [`Error::Io`].
pub(crate) fn archive_closed(
    root: &Path,
    before: Position,
    mode: ArchiveMode,
    views: &[String],
) -> Result<ArchiveSummary> {
    let log_id = identity::read(root)?.ok_or_else(|| {
        let why = format!(
            "{}: not an rwlog log directory (no rwlog.id)",
            root.display()
        );
        Error::Io(std::io::Error::new(std::io::ErrorKind::NotFound, why))
    })?;
    let _lock = DirLock::acquire(root)?;
    let old = horizon::read(root, log_id)?;
    let from = old.as_ref().map_or(Position::FIRST, |h| h.first);
    // Never past the head (see `Runtime::archive_before`).
    let head = super::inspect::inspect(root, false)?.head;
    if before.min(head) <= from {
        // Already archived that far.
        return Ok(ArchiveSummary {
            first: from,
            segments: 0,
            bytes: 0,
            held_back: None,
        });
    }
    let (first, held_back) = reachable(root, before.min(head), views)?;
    let unchanged = ArchiveSummary {
        first: from,
        segments: 0,
        bytes: 0,
        held_back: held_back.clone(),
    };
    if first <= from {
        return Ok(unchanged);
    }
    let heads = Heads::below(root, log_id, old.as_ref(), first)?;
    let horizon = heads.horizon(log_id, first, mode)?;
    let (segments, bytes) = commit(root, &horizon)?;
    Ok(ArchiveSummary {
        first,
        segments,
        bytes,
        held_back,
    })
}

/// What the frames' headers below a horizon say: each stream's version and
/// the last event's id and time.
#[derive(Default)]
struct Heads {
    versions: std::collections::HashMap<String, u64>,
    last: Option<(Uuid, Timestamp)>,
}

impl Heads {
    /// The heads of the events from the old horizon (or 1) to `first - 1`.
    fn below(root: &Path, log_id: Uuid, old: Option<&Horizon>, first: Position) -> Result<Heads> {
        let mut heads = Heads::default();
        if let Some(h) = old {
            let known = h.versions.iter().map(|(s, v)| (s.as_str().to_owned(), *v));
            heads.versions.extend(known);
            heads.last = Some((h.last_id, h.last_time));
        }
        for (start, path) in list_segments(root)? {
            if start >= first.0 {
                break;
            }
            heads.read_segment(&path, log_id, start, first.0 - 1)?;
        }
        Ok(heads)
    }

    /// The horizon at `first` these heads lead to.
    fn horizon(self, log_id: Uuid, first: Position, mode: ArchiveMode) -> Result<Horizon> {
        let mut versions: Vec<(StreamId, u64)> = self
            .versions
            .into_iter()
            .map(|(s, v)| (StreamId::from(s), v))
            .collect();
        versions.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let (last_id, last_time) = self.last.ok_or_else(|| Error::Corrupt {
            file: PathBuf::new(),
            offset: 0,
            reason: format!("no event at position {} below the horizon", first.0 - 1),
        })?;
        Ok(Horizon {
            log_id,
            first,
            last_id,
            last_time,
            mode,
            versions,
        })
    }

    /// Reads the heads of a segment's events up to position `last`.
    fn read_segment(&mut self, path: &Path, log_id: Uuid, start: u64, last: u64) -> Result<()> {
        let data = files::read(path)?;
        let walked = walk(path, &data, log_id, start, None, true)?;
        let mut off = SEGMENT_HEADER;
        let mut position = start;
        while off < walked.end && position <= last {
            let batch = frame::parse_batch_header(&data[off..off + BATCH_HEADER])
                .ok_or_else(|| super::read::corrupt(path, off as u64, "a damaged batch header"))?;
            let mut at = off + BATCH_HEADER;
            for _ in 0..batch.count {
                let (len, _) = frame::parse_frame_header(&data[at..at + FRAME_HEADER]);
                let body = &data[at + FRAME_HEADER..at + FRAME_HEADER + len as usize];
                let (stream, version, id, time) = frame::decode_head(body).ok_or_else(|| {
                    super::read::corrupt(path, at as u64, "a frame whose header does not decode")
                })?;
                if position <= last {
                    self.versions.insert(stream, version);
                    self.last = Some((id, time));
                }
                position += 1;
                at += FRAME_HEADER + len as usize;
            }
            off = at;
        }
        Ok(())
    }
}
