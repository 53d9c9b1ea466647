//! Retention: archiving the front of a log directory, by hand
//! ([`Runtime::archive_before`]) or by policy ([`Builder::retain`](super::Builder::retain)).

use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::position::Position;
use crate::storage::{self, ArchiveSummary, Horizon, Retention};
use std::sync::Weak;
use std::thread;

use super::{Runtime, Upkeep};

impl<E: Event> Runtime<E> {
    /// Archives the log before `position`: the whole segment files that
    /// end before it move to the log directory's `archive/` subdirectory
    /// (or are deleted, see [`Builder::archive_mode`](super::Builder::archive_mode)),
    /// the log's [`first`](crate::Log::first) position moves up to the
    /// first one kept, and the memory of the events before it is let go.
    ///
    /// Only as far as every view can be rebuilt without what is archived:
    /// each must be [persisted](super::Builder::persisted_view), and the
    /// horizon goes no further than one past its newest snapshot on disk.
    /// Segments go whole, so the horizon is the start of the segment that
    /// holds `position` (or of an earlier one); the summary says when and
    /// why it fell short. Writers are not blocked.
    ///
    /// Afterwards, reads before the first position give
    /// [`Error::Archived`] (the `try_` reads, [`view_at`](Runtime::view_at),
    /// a projection or subscription that needs them), the streams keep
    /// their versions, and a reopen starts at the horizon. A crash during
    /// the call leaves the log as it was before or after it.
    ///
    /// ```
    /// use rwlog::{Event, Position, Runtime, Storage};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Debug, Serialize, Deserialize)]
    /// struct Tick(u64);
    /// impl Event for Tick {}
    ///
    /// let dir = tempfile::tempdir()?;
    /// let rt = Runtime::<Tick>::builder()
    ///     .storage(Storage::dir(dir.path()).segment_bytes(4096))
    ///     .build()?;
    /// let w = rt.writer();
    /// for i in 0..1000 {
    ///     w.append("clock", Tick(i))?;
    /// }
    /// let done = rt.archive_before(Position(900))?;
    /// assert!(done.first > Position(1) && done.first <= Position(900));
    /// assert_eq!(rt.log().first(), done.first);
    /// assert!(rt.log().try_read_all(Position(1)..).is_err());
    /// assert_eq!(rt.log().stream_version("clock"), 1000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Errors: [`Error::Config`] for a log that is not a directory or a
    /// view that is not persisted; [`Error::Closed`] after shutdown;
    /// [`Error::Io`] naming the file.
    pub fn archive_before(&self, position: Position) -> Result<ArchiveSummary> {
        archive(&self.inner.upkeep, position)
    }

    /// Archives as the [retention policy](super::Builder::retain) says; a
    /// runtime with one also does this by itself about once a second.
    /// `None` without a policy.
    ///
    /// Errors: those of [`archive_before`](Runtime::archive_before).
    pub fn apply_retention(&self) -> Result<Option<ArchiveSummary>> {
        retain(&self.inner.upkeep)
    }
}

/// The position the policy keeps from.
fn keep_from<E: Event>(shared: &Upkeep<E>, retain: Retention) -> Position {
    let log = &shared.hub.log;
    match retain {
        Retention::Events(n) => Position(log.head().0.saturating_sub(n) + 1),
        Retention::From(p) => p,
        Retention::Age(age) => {
            let since = SystemTime::now().checked_sub(age);
            let last_older = since.and_then(|t| log.position_at(t));
            last_older.map_or(Position::FIRST, Position::next)
        }
    }
}

fn retain<E: Event>(shared: &Upkeep<E>) -> Result<Option<ArchiveSummary>> {
    let Some(retain) = shared.archiving.retain else {
        return Ok(None);
    };
    archive(shared, keep_from(shared, retain)).map(Some)
}

fn archive<E: Event>(shared: &Upkeep<E>, position: Position) -> Result<ArchiveSummary> {
    let (dir, log_id) = shared.dir.clone().ok_or(Error::Config(
        "archiving moves the segments of a log directory; this log has none",
    ))?;
    if shared.views > shared.persisted.len() {
        return Err(Error::Config(
            "archiving needs every view persisted (Builder::persisted_view): an in-memory view \
             could not be rebuilt without the archived events",
        ));
    }
    // Held throughout: the directory stays this runtime's (a shutdown
    // waits), and no backup or other archiving runs meanwhile.
    let owner = shared.owner.lock();
    if owner.is_none() {
        return Err(Error::Closed);
    }
    let log = &shared.hub.log;
    // Never past the head: the horizon is then the start of a segment that
    // holds a synced event, which a reopen always finds.
    let wanted = position.min(log.head());
    if wanted <= log.first() {
        // Already archived that far.
        return Ok(unchanged(log.first(), None));
    }
    let (first, held_back) = storage::archive_reachable(&dir, wanted, &shared.persisted)?;
    let Some(before) = log
        .get(Position(first.0 - 1))
        .filter(|_| first > log.first())
    else {
        return Ok(unchanged(log.first(), held_back));
    };
    let horizon = Horizon {
        log_id,
        first,
        last_id: before.id,
        last_time: before.recorded_at,
        mode: shared.archiving.mode,
        versions: log.versions_before(first),
    };
    // Deleted segments cannot be read by an iterator made before: the log
    // stops reading below the horizon first. (Moved ones still can be,
    // from archive/.)
    if horizon.mode == crate::storage::ArchiveMode::Delete {
        log.release_before(first);
    }
    let (segments, bytes) = storage::archive(&dir, &horizon)?;
    log.release_before(first);
    tracing::info!(%first, segments, bytes, "archived the log's front");
    Ok(ArchiveSummary {
        first,
        segments,
        bytes,
        held_back,
    })
}

/// What archiving nothing says.
fn unchanged(first: Position, held_back: Option<String>) -> ArchiveSummary {
    ArchiveSummary {
        first,
        segments: 0,
        bytes: 0,
        held_back,
    }
}

/// How often a runtime with a retention policy applies it.
const RETENTION_EVERY: Duration = Duration::from_secs(1);

/// Starts the thread that applies the retention policy until the runtime
/// is dropped or shut down. It holds what archiving needs weakly, and
/// never the runtime: dropping the runtime shuts it down on the dropping
/// thread, waiting for an archiving that is running.
pub(super) fn spawn_retention<E: Event>(shared: Weak<Upkeep<E>>) -> Result<()> {
    thread::Builder::new()
        .name("rwlog-retention".into())
        .spawn(move || loop {
            thread::sleep(RETENTION_EVERY);
            let Some(shared) = shared.upgrade() else {
                return;
            };
            match retain(&shared) {
                Ok(_) => {}
                Err(Error::Closed) => return,
                Err(e) => tracing::warn!(error = %e, "the retention policy could not be applied"),
            }
        })
        .map(drop)
        .map_err(Error::Io)
}
