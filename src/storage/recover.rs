//! Opening a log directory: lock it, read and verify every segment, check
//! every snapshot and checkpoint against what was recovered, and only then
//! change anything (cut a torn tail, set aside what cannot be used).
//!
//! Reading first and changing afterwards means a refused open leaves the
//! directory exactly as it found it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{Event, Recorded};
use crate::position::Position;

use super::claim::LogFacts;
use super::cold::SegmentReader;
use super::config::{DirOptions, Durability, RecoveryMode};
use super::files::{self, list_segments};
use super::frame;
use super::horizon::{self, Horizon};
use super::lock::DirLock;
use super::read::{corrupt, Plan, Reading};
use super::report::RecoveryReport;
use super::scan;
use super::segment::SegmentWriter;
use super::spill::Spill;
use super::upcast::Upcasters;
use super::{identity, DirInfo};

/// What opening a directory found.
pub(crate) struct Recovered<E> {
    /// The events the log holds: from 1, or from the horizon's first.
    pub(crate) events: Vec<Recorded<E>>,
    /// Where an archived log starts.
    pub(crate) horizon: Option<Horizon>,
    /// With a memory window: the events read and let go before `events`,
    /// and a reader of them.
    pub(crate) cold: Option<ColdStart<E>>,
    pub(crate) writer: SegmentWriter,
    pub(crate) info: DirInfo,
    pub(crate) report: RecoveryReport,
}

/// Opens (or creates) a log directory, verifying and loading every event.
///
/// Errors: [`Error::Locked`] if another runtime has it open;
/// [`Error::Corrupt`] naming the file and offset of damage recovery may not
/// cut (see [`RecoveryMode`]); [`Error::NoUpcaster`]; [`Error::Io`] naming
/// the file.
pub(crate) fn open<E: Event + DeserializeOwned>(
    options: &DirOptions,
    upcasters: &Arc<Upcasters<E>>,
) -> Result<Recovered<E>> {
    let root = options.path.as_path();
    files::create_dir(root)?;
    let lock = Arc::new(DirLock::acquire(root)?);
    let all = list_segments(root)?;
    let known_id = identity::read(root)?;
    let log_id = match known_id {
        Some(id) => id,
        None => adopt_id(&all)?,
    };
    let horizon = horizon::read(root, log_id)?;
    let segments = from_horizon(root, horizon.as_ref(), &all)?;
    // Read everything first; change nothing until the open is sure.
    let base = horizon.as_ref().map_or(0, |h| h.first.0 - 1);
    let (events, plan, spill) = read_segments(options, upcasters, (log_id, base), &segments)?;
    let recovered = Held {
        horizon: horizon.as_ref(),
        spill: spill.as_ref(),
        events: &events,
    };
    let (report, tail) = settle(options, log_id, &recovered, plan, known_id.is_none())?;
    finish_archiving(root, horizon.as_ref(), &all)?;
    let info = DirInfo {
        path: root.to_path_buf(),
        log_id,
        synced: options.durability == Durability::Fsync,
        lock: Arc::clone(&lock),
    };
    let writer = match tail {
        Some((path, len)) => SegmentWriter::resume(options, log_id, path, len, lock)?,
        None => SegmentWriter::create(options, log_id, recovered.head().0 + 1, lock)?,
    };
    #[cfg(feature = "metrics")]
    crate::telemetry::storage_bytes(segments_size(root));
    let held = Position(recovered.head().0 + 1 - events.len() as u64);
    let cold = options
        .window
        .map(|window| ColdStart::new(root, log_id, upcasters, (held, window), spill));
    Ok(Recovered {
        events,
        horizon,
        cold,
        writer,
        info,
        report,
    })
}

/// Checks every snapshot and checkpoint against the recovered `events`,
/// refuses a proven loss unless the mode accepts it, and then makes the
/// planned changes. Returns the report and the tail segment appends
/// continue in.
fn settle<E>(
    options: &DirOptions,
    log_id: Uuid,
    recovered: &Held<'_, E>,
    mut plan: Plan,
    new_identity: bool,
) -> Result<(RecoveryReport, Option<(PathBuf, u64)>)> {
    let root = options.path.as_path();
    let head = recovered.head();
    let id_at = |p: Position| recovered.id_at(p);
    let facts = LogFacts {
        log_id,
        head,
        first: recovered.first(),
        id_at: &id_at,
    };
    let findings = scan::scan_claims(root, &facts)?;
    if let Some((file, what, proven)) = findings.strongest_proof() {
        if options.recovery == RecoveryMode::TornTail {
            return Err(proven_loss(file, what, head, *proven, &plan));
        }
        plan.lost = Some((head.next(), *proven));
    }
    if new_identity {
        identity::write(root, log_id)?;
    }
    let mut report = plan.apply(root, options.durability == Durability::Fsync)?;
    scan::apply_findings(root, findings, &facts, &mut report)?;
    report.head = head;
    Ok((report, plan.tail))
}

/// The segments from the horizon on (all of them without one). Those below
/// it are left by an archiving cut short: not read, moved once the open is
/// sure.
///
/// Errors: [`Error::Corrupt`] naming the horizon file if no segment starts
/// at the horizon (archiving always keeps that one).
fn from_horizon(
    root: &Path,
    horizon: Option<&Horizon>,
    all: &[(u64, PathBuf)],
) -> Result<Vec<(u64, PathBuf)>> {
    let Some(h) = horizon else {
        return Ok(all.to_vec());
    };
    if !all.iter().any(|(start, _)| *start == h.first.0) {
        let why = format!(
            "the horizon is position {}, but no segment starts there",
            h.first
        );
        return Err(corrupt(&root.join(horizon::FILE), 0, why));
    }
    Ok(all
        .iter()
        .filter(|(start, _)| *start >= h.first.0)
        .cloned()
        .collect())
}

/// What a log with a memory window starts from: the first position held in
/// memory, the window, each stream's positions before it, and where to
/// read the events before it.
pub(crate) struct ColdStart<E> {
    pub(crate) held: Position,
    pub(crate) window: u64,
    pub(crate) streams: Vec<(crate::position::StreamId, Vec<Position>)>,
    pub(crate) reader: Arc<dyn crate::log::Cold<E>>,
}

/// Reads the segments after position `base` (whole batches only; with a
/// memory window, what it lets go is in the spill).
fn read_segments<E: Event + DeserializeOwned>(
    options: &DirOptions,
    upcasters: &Upcasters<E>,
    (log_id, base): (uuid::Uuid, u64),
    segments: &[(u64, PathBuf)],
) -> Result<(Vec<Recorded<E>>, Plan, Option<Spill>)> {
    let spill = options.window.map(|w| Spill::new(&options.path, w));
    let mut reading = Reading {
        options,
        upcasters,
        log_id,
        base,
        events: Vec::new(),
        spill: spill.transpose()?,
        plan: Plan::default(),
    };
    reading.segments(segments)?;
    Ok((reading.events, reading.plan, reading.spill))
}

/// Moves the segments an archiving cut short left below the horizon: the
/// horizon was written before any of them moved.
fn finish_archiving(root: &Path, horizon: Option<&Horizon>, all: &[(u64, PathBuf)]) -> Result<()> {
    if let Some(h) = horizon {
        let (finished, _) = horizon::archive_segments(root, all, h.first, h.mode)?;
        if !finished.is_empty() {
            tracing::warn!(horizon = %h.first, segments = finished.len(), "finished archiving segments below the horizon");
        }
    }
    Ok(())
}

impl<E: Event + DeserializeOwned> ColdStart<E> {
    /// The cold start of a log whose memory starts at `held` and keeps
    /// about `window` events, after what `spill` let go.
    fn new(
        root: &Path,
        log_id: uuid::Uuid,
        upcasters: &Arc<Upcasters<E>>,
        (held, window): (Position, u64),
        spill: Option<Spill>,
    ) -> ColdStart<E> {
        let reader = SegmentReader::new(root, log_id, Arc::clone(upcasters));
        ColdStart {
            held,
            window,
            streams: spill
                .map(|s| s.streams.into_iter().collect())
                .unwrap_or_default(),
            reader: Arc::new(reader),
        }
    }
}

/// The events a log directory holds, after its horizon if it has one.
pub(crate) struct Held<'a, E> {
    pub(crate) horizon: Option<&'a Horizon>,
    /// What a memory window let go, before `events`.
    pub(crate) spill: Option<&'a Spill>,
    pub(crate) events: &'a [Recorded<E>],
}

impl<E> Held<'_, E> {
    /// The first position held.
    pub(crate) fn first(&self) -> Position {
        self.horizon.map_or(Position::FIRST, |h| h.first)
    }

    /// The last position held (the horizon's `first - 1` if none).
    pub(crate) fn head(&self) -> Position {
        Position(self.first().0 - 1 + self.dropped() + self.events.len() as u64)
    }

    fn dropped(&self) -> u64 {
        self.spill.map_or(0, |s| s.dropped)
    }

    /// The id of the event at `p`, for `p` from `first - 1` (the horizon
    /// keeps the id before it) to the head.
    pub(crate) fn id_at(&self, p: Position) -> Option<uuid::Uuid> {
        if let Some(h) = self.horizon.filter(|h| p.next() == h.first) {
            return Some(h.last_id);
        }
        let held = self.first().0 + self.dropped();
        if p.0 < held {
            return self.spill?.id_at(p);
        }
        let i = usize::try_from(p.0 - held).ok()?;
        self.events.get(i).map(|e| e.id)
    }
}

/// The bytes of the directory's segments (for metrics; 0 for any that
/// cannot be read).
#[cfg(feature = "metrics")]
fn segments_size(root: &Path) -> u64 {
    list_segments(root).map_or(0, |segments| {
        segments
            .iter()
            .filter_map(|(_, path)| std::fs::metadata(path).ok())
            .map(|m| m.len())
            .sum()
    })
}

/// The log id of a directory without an identity file: its first
/// segment's (a directory written before the file was lost), or a new one.
fn adopt_id(segments: &[(u64, PathBuf)]) -> Result<Uuid> {
    let Some((_, first)) = segments.first() else {
        return Ok(Uuid::new_v4());
    };
    let data = files::read(first)?;
    match frame::parse_segment_header(&data) {
        Ok(header) => {
            tracing::warn!(file = %first.display(), "the log's identity file is missing; taken from the first segment");
            Ok(header.log_id)
        }
        Err((offset, reason)) => Err(corrupt(first, offset, reason)),
    }
}

/// The error for a log that ends before a position a file proves.
fn proven_loss(file: &Path, what: &str, head: Position, proven: Position, plan: &Plan) -> Error {
    let end = match (&plan.tail, plan.cuts.last()) {
        (_, Some(cut)) => format!(
            "; {} ended in a torn batch at byte {}",
            cut.file.display(),
            cut.offset
        ),
        (Some((path, len)), None) => {
            format!("; the last segment, {}, ends at byte {len}", path.display())
        }
        (None, None) => "; no segment holds any event".into(),
    };
    corrupt(
        file,
        0,
        format!(
            "the log ends at position {head}, but this {what} was written after position {proven} was durably \
             acknowledged: positions {}..={proven} are lost{end}. Open with RecoveryMode::PointInTime to accept the loss",
            head.next()
        ),
    )
}
