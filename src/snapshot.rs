//! Snapshots kept for time travel, and replay from them.

use crate::position::Position;
use crate::sync::{Arc, Mutex};
use crate::view::{Snapshot, View};

/// The in-memory snapshots of one view: its initial state, then one copy
/// about every `every` events (at the end of the batch that crosses each
/// multiple), kept for the runtime's lifetime.
///
/// Invariant: `kept` is sorted by position and starts with position 0.
pub(crate) struct History<V> {
    every: u64,
    kept: Mutex<Vec<Arc<Snapshot<V>>>>,
}

impl<V> History<V> {
    /// `every == 0` keeps only the initial state.
    pub(crate) fn new(every: u64, initial: Snapshot<V>) -> History<V> {
        History {
            every,
            kept: Mutex::new(vec![Arc::new(initial)]),
        }
    }

    /// Whether a snapshot should be kept now that the view reached `position`.
    pub(crate) fn due(&self, position: Position) -> bool {
        if self.every == 0 {
            return false;
        }
        let last = self.lock().last().map_or(0, |s| s.position.0);
        position.0 / self.every > last / self.every
    }

    pub(crate) fn record(&self, snapshot: Snapshot<V>) {
        self.lock().push(Arc::new(snapshot));
    }

    /// The newest kept snapshot at or before `position`.
    pub(crate) fn nearest(&self, position: Position) -> Option<Arc<Snapshot<V>>> {
        let kept = self.lock();
        let i = kept.partition_point(|s| s.position <= position);
        i.checked_sub(1).map(|i| Arc::clone(&kept[i]))
    }

    /// How many snapshots are kept, the initial state included.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Vec<Arc<Snapshot<V>>>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Folds `events` (which must continue `base`'s position) into a copy of
/// `base`.
pub(crate) fn replay<V, E>(base: &Snapshot<V>, events: crate::log::LogIter<E>) -> Snapshot<V>
where
    V: View<E>,
{
    let mut copy = base.clone();
    events.for_each_ref(|e| {
        debug_assert_eq!(e.position, copy.position.next());
        copy.apply(e);
    });
    copy
}

/// Snapshot files: `<log dir>/snapshots/<view>/<position>.snap`, each a
/// header (magic `RWLOGSNP`, format version, codec id, position, body
/// length, CRC32C of the body) and the state in bincode 2. Written to a
/// temporary file, synced, renamed into place, and the directory synced, so
/// a crash leaves either the whole snapshot or none.
mod disk {
    use std::fs::{self, File};
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};

    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use crate::error::Result;
    use crate::log::file::{codec, sync_dir, CODEC_BINCODE2};
    use crate::position::Position;
    use crate::view::Snapshot;

    const MAGIC: &[u8; 8] = b"RWLOGSNP";
    const FORMAT_VERSION: u16 = 1;
    const HEADER_LEN: usize = 8 + 2 + 2 + 8 + 8 + 4;

    /// The directory of one view's snapshots.
    pub(crate) fn dir_of(log_dir: &Path, view: &str) -> PathBuf {
        log_dir.join("snapshots").join(view)
    }

    fn file_name(position: Position) -> String {
        format!("{:020}.snap", position.0)
    }

    /// Writes a snapshot durably.
    pub(crate) fn write<V: Serialize>(dir: &Path, snapshot: &Snapshot<V>) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        let body = bincode::serde::encode_to_vec(&snapshot.state, codec())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + body.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&CODEC_BINCODE2.to_le_bytes());
        bytes.extend_from_slice(&snapshot.position.0.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let name = file_name(snapshot.position);
        let tmp = dir.join(format!("{name}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, dir.join(name))?;
        sync_dir(dir)
    }

    /// The newest snapshot at or before `head` that verifies and decodes;
    /// damaged ones are skipped (with a warning), never trusted.
    pub(crate) fn load_newest<V: DeserializeOwned>(
        dir: &Path,
        head: Position,
    ) -> Result<Option<Snapshot<V>>> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let position = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".snap"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(p) = position {
                found.push((p, path));
            }
        }
        found.sort();
        for (p, path) in found.into_iter().rev() {
            if p > head.0 {
                tracing::warn!(file = %path.display(), "a snapshot beyond the log's head; skipped");
                continue;
            }
            match read::<V>(&path, Position(p)) {
                Ok(s) => return Ok(Some(s)),
                Err(reason) => {
                    tracing::warn!(file = %path.display(), %reason, "a damaged snapshot; skipped");
                }
            }
        }
        Ok(None)
    }

    fn read<V: DeserializeOwned>(
        path: &Path,
        position: Position,
    ) -> std::result::Result<Snapshot<V>, String> {
        let bytes = fs::read(path).map_err(|e| e.to_string())?;
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err("not an rwlog snapshot".into());
        }
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(b)
        };
        if u16_at(8) != FORMAT_VERSION || u16_at(10) != CODEC_BINCODE2 {
            return Err("unknown format or codec".into());
        }
        if u64_at(12) != position.0 {
            return Err("the header's position does not match the file name".into());
        }
        let len = u64_at(20);
        let crc = u32::from_le_bytes([bytes[28], bytes[29], bytes[30], bytes[31]]);
        let body = &bytes[HEADER_LEN..];
        if body.len() as u64 != len {
            return Err(format!(
                "the body is {} bytes, the header says {len}",
                body.len()
            ));
        }
        if crc32c::crc32c(body) != crc {
            return Err("the checksum does not match".into());
        }
        let (state, n): (V, usize) =
            bincode::serde::decode_from_slice(body, codec()).map_err(|e| e.to_string())?;
        if n != body.len() {
            return Err("trailing bytes after the state".into());
        }
        Ok(Snapshot { position, state })
    }
}

pub(crate) use disk::{dir_of, load_newest, write};
