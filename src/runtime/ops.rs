//! Operating a log directory: online backup and verified restore.

use std::path::Path;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::storage::{self, BackupProgress, BackupSource, BackupSummary};

use super::Runtime;

impl<E: Event> Runtime<E> {
    /// Copies the log, as of its head when the call starts, into `dest` (a
    /// new or empty directory) while appends go on: the segments up to that
    /// position, the newest snapshot of each persisted view at or before it,
    /// the projections' checkpoints (moved back to it if beyond) and a
    /// manifest with every file's length and block checksums, written last.
    /// Writers are never blocked; the backup holds every event up to its
    /// head and none after.
    ///
    /// ```
    /// use rwlog::{Event, Position, Runtime, Storage};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Debug, Serialize, Deserialize)]
    /// struct Note(String);
    /// impl Event for Note {}
    ///
    /// let root = tempfile::tempdir()?;
    /// let rt = Runtime::<Note>::builder().storage(Storage::dir(root.path().join("log"))).build()?;
    /// rt.writer().append("n", Note("kept".into()))?;
    /// let backup = rt.backup(root.path().join("backup"))?;
    /// assert_eq!(backup.head, Position(1));
    ///
    /// let restored = Runtime::<Note>::restore(root.path().join("backup"), root.path().join("copy"))?;
    /// assert_eq!(restored.head, Position(1));
    /// let copy = Runtime::<Note>::builder().storage(Storage::dir(root.path().join("copy"))).build()?;
    /// assert_eq!(copy.log().get(Position(1)).unwrap().payload().0, "kept");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Errors: [`Error::Config`] for a log that is not a directory;
    /// [`Error::NotEmpty`] if `dest` holds files; [`Error::Closed`] after
    /// shutdown; [`Error::Io`] naming the file. A failed backup removes what
    /// it wrote.
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<BackupSummary> {
        self.backup_with_progress(dest, |_| {})
    }

    /// [`backup`](Runtime::backup), calling `progress` after each file.
    pub fn backup_with_progress(
        &self,
        dest: impl AsRef<Path>,
        mut progress: impl FnMut(BackupProgress),
    ) -> Result<BackupSummary> {
        let (dir, log_id) = self.inner.upkeep.dir.clone().ok_or(Error::Config(
            "a backup copies a log directory; this log has none",
        ))?;
        // Held for the whole copy: the directory stays this runtime's (a
        // shutdown waits), and no archiving runs meanwhile.
        let owner = self.inner.upkeep.owner.lock();
        if owner.is_none() {
            return Err(Error::Closed);
        }
        let head = self.inner.hub.log.head();
        let id_at_head = self.inner.hub.log.get(head).map_or(Uuid::nil(), |e| e.id);
        let source = BackupSource {
            dir: &dir,
            log_id,
            head,
            id_at_head,
        };
        let _span = tracing::info_span!("backup", dest = %dest.as_ref().display()).entered();
        let summary = storage::backup(&source, dest.as_ref(), &mut progress)?;
        tracing::info!(head = %summary.head, files = summary.files, bytes = summary.bytes, "backed up");
        Ok(summary)
    }

    /// Restores the backup at `backup` into `dir` (a new or empty
    /// directory), for a runtime to open: the same log id, head, streams,
    /// versions, snapshots and checkpoints as when it was taken. Every
    /// file's checksums and every frame are checked before anything is
    /// written, the restore is written into a temporary directory beside
    /// `dir` and renamed into place, so a failure leaves nothing behind. A
    /// crash (the process killed) during a restore leaves `dir` as it was
    /// (absent, or empty), never part of a log, and the hidden
    /// `.<dir>.restoring-<id>` directory beside it, to be removed.
    ///
    /// Errors: [`Error::Corrupt`] naming the damaged file and offset (or
    /// the manifest's line); [`Error::NotEmpty`] if `dir` holds files;
    /// [`Error::Io`] naming the file.
    pub fn restore(backup: impl AsRef<Path>, dir: impl AsRef<Path>) -> Result<BackupSummary> {
        storage::restore(backup.as_ref(), dir.as_ref())
    }
}
