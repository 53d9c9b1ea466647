//! Verified restore of a backup (see [`backup`](super::backup)).

use std::fs;
use std::io;
use std::path::Path;

use crate::error::{Error, Result};

use super::backup::{exists_empty, sibling, starts_at, summary, walk, BackupSummary};
use super::files::{self, at};
use super::horizon;
use super::manifest::{self, Entry, Manifest};
use super::read::corrupt;

/// Restores the backup at `backup` into `dir` (which must not exist, or be
/// an empty directory). Each file is checked (its blocks, and a segment's
/// every frame and its place in the positions) before it is written into a
/// temporary directory beside `dir`, which is renamed over `dir` only once
/// everything checked: `dir` never holds part of a restore. One file is in
/// memory at a time.
pub(crate) fn restore(backup: &Path, dir: &Path) -> Result<BackupSummary> {
    let manifest_path = backup.join(manifest::FILE);
    let text = fs::read(&manifest_path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => corrupt(
            &manifest_path,
            0,
            "no manifest: not a finished rwlog backup",
        ),
        _ => at(&manifest_path, "read")(e).into(),
    })?;
    let manifest = Manifest::decode(&manifest_path, &text)?;
    // The target is checked, not made: until the rename, it does not exist
    // (or stays as empty as it was), so a crash leaves no directory that
    // would open as an empty log.
    exists_empty(dir)?;
    let tmp = sibling(dir, "restoring");
    let outcome = restore_into(backup, &manifest, &tmp).and_then(|()| {
        // Over an empty directory, a rename replaces it whole.
        fs::rename(&tmp, dir).map_err(at(dir, "rename into place"))?;
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        files::sync_dir(parent).map_err(Error::from)
    });
    if outcome.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    outcome.map(|()| summary(&manifest))
}

/// The first position of a segment entry, by its name.
fn segment_first(entry: &Entry) -> Option<u64> {
    entry.path.strip_suffix(".seg")?.parse().ok()
}

/// Checks and writes every file of the backup into `tmp`: the segments
/// first, in position order, holding positions 1..=head exactly.
fn restore_into(backup: &Path, manifest: &Manifest, tmp: &Path) -> Result<()> {
    files::create_dir(tmp)?;
    let mut entries: Vec<&Entry> = manifest.files.iter().collect();
    entries.sort_by_key(|e| (segment_first(e).is_none(), segment_first(e).unwrap_or(0)));
    let (mut next, _) = horizon::first_in(backup, Some(manifest.log_id))?;
    for entry in entries {
        let path = manifest::path_under(backup, entry);
        let bytes = files::read(&path)?;
        if let Some((offset, reason)) = entry.first_damage(&bytes) {
            return Err(corrupt(&path, offset, reason));
        }
        if let Some(first) = segment_first(entry) {
            starts_at(&path, first, next)?;
            next = walk(&path, &bytes, manifest.log_id, first, None, true)?.last + 1;
        }
        let out = manifest::path_under(tmp, entry);
        files::write_atomically(out.parent().unwrap_or(tmp), files::name_of(&out), &bytes)?;
    }
    if next - 1 != manifest.head.0 {
        let why = format!(
            "the segments end at position {}, the manifest's head is {}",
            next - 1,
            manifest.head.0
        );
        return Err(corrupt(&backup.join(manifest::FILE), 0, why));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::Position;
    use uuid::Uuid;

    #[test]
    fn a_manifest_claiming_the_largest_head_is_refused_without_a_panic() {
        let root = tempfile::tempdir().unwrap();
        let backup = root.path().join("b");
        let manifest = Manifest {
            log_id: Uuid::nil(),
            head: Position(u64::MAX),
            files: Vec::new(),
        };
        files::write_atomically(&backup, manifest::FILE, manifest.encode().as_bytes()).unwrap();
        let target = root.path().join("t");
        assert!(matches!(
            restore(&backup, &target),
            Err(Error::Corrupt { .. })
        ));
        assert!(!target.exists());
    }
}
