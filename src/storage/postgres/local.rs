//! A shared log's process directory: the process's own snapshots,
//! projection checkpoints and restart point. One process per directory
//! (it is locked while open), tied to one shared log by its identity file.

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::storage::horizon::{self, Horizon, RESTART_FILE};
use crate::storage::lock::DirLock;
use crate::storage::{checkpoint, files, identity, snapshot, DirInfo, Registered};

/// The local directory, opened.
pub(super) struct Local {
    pub(super) info: DirInfo,
    /// Where this process may start instead of reading the whole log.
    pub(super) restart: Option<Horizon>,
}

/// Opens (or makes) the local directory of a process of shared log
/// `log_id`.
///
/// Errors: [`Error::Locked`] if another process has it open;
/// [`Error::Corrupt`] if it belongs to another log; [`Error::Io`].
pub(super) fn open(dir: &Path, log_id: Uuid, views: &Registered) -> Result<Local> {
    files::create_dir(dir)?;
    let lock = Arc::new(DirLock::acquire(dir)?);
    match identity::read(dir)? {
        Some(id) if id != log_id => {
            return Err(Error::Corrupt {
                file: dir.join(identity::FILE),
                offset: 0,
                reason: format!(
                    "this local directory belongs to another log ({id}), not to this shared log ({log_id}): \
                     give each log its own local directory"
                ),
            })
        }
        Some(_) => {}
        None => identity::write(dir, log_id)?,
    }
    let restart = usable_restart(dir, log_id, views);
    Ok(Local {
        info: DirInfo {
            path: dir.to_path_buf(),
            log_id,
            // A view's snapshot is written after the database committed
            // what it shows.
            synced: true,
            lock,
        },
        restart,
    })
}

/// The restart point, if every view can start from it: each is persisted
/// and has an intact snapshot at or after it.
fn usable_restart(dir: &Path, log_id: Uuid, views: &Registered) -> Option<Horizon> {
    if views.in_memory > 0 {
        tracing::info!(
            views = views.in_memory,
            "views in memory only: reading the whole shared log"
        );
        return None;
    }
    let restart = match horizon::read_file(dir, RESTART_FILE, log_id) {
        Ok(found) => found?,
        Err(e) => {
            tracing::warn!(error = %e, "a restart point that cannot be used: reading the whole shared log");
            return None;
        }
    };
    for (view, usable) in &views.persisted {
        let found = snapshot::list(&snapshot::root(dir).join(view)).unwrap_or_default();
        let newest = found
            .iter()
            .rev()
            .find_map(|(_, path)| usable(path, log_id));
        if newest.is_none_or(|p| p.next() < restart.first) {
            tracing::info!(view = %view, restart = %restart.first, "a view without a usable snapshot at the restart point: reading the whole shared log");
            return None;
        }
    }
    // A projection resumes after its checkpoint: one older than the restart
    // point (or one that cannot be read) needs the events before it.
    for path in files::list(&checkpoint::root(dir)).unwrap_or_default() {
        if !files::name_of(&path).ends_with(".checkpoint") {
            continue;
        }
        let at = (checkpoint::KIND.read)(&path).map(|c| c.position);
        if at.as_ref().map_or(true, |p| p.next() < restart.first) {
            tracing::info!(checkpoint = %path.display(), restart = %restart.first, "a projection's checkpoint before the restart point: reading the whole shared log");
            return None;
        }
    }
    Some(restart)
}

/// Saves a restart point in the local directory.
pub(super) fn save(dir: &Path, restart: &Horizon) -> std::io::Result<()> {
    horizon::write_file(dir, RESTART_FILE, restart)
}
