//! The horizon of an archived log: `<log dir>/rwlog.horizon`.
//!
//! ```text
//! "RWLOGHZN" | format u16 | log id | first position u64 | id of the event before it
//!           | its time (ns) u64 | archived segments: 0 deleted, 1 moved to archive/ u8
//!           | stream count u64 | per stream: name length u32, name, version u64
//!           | CRC32C of all before u32
//! ```
//!
//! Archiving writes this file (atomically: temporary file, sync, rename,
//! directory sync) before it moves or deletes a segment, so the file is the
//! commit point: a crash before it leaves the old log; after it, the next
//! open finishes moving the segments wholly below the horizon. The file
//! holds what the archived events leave behind that the log still needs:
//! every stream's version before the horizon (the sequencer's expected
//! version checks and the stream index start from it), the id of the event
//! just before it (a snapshot taken there is checked against it) and its
//! time (the next batch's time never goes back).

use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::Timestamp;
use crate::position::{Position, StreamId};

pub(crate) use super::config::ArchiveMode;
use super::files;

const MAGIC: &[u8; 8] = b"RWLOGHZN";
const FORMAT_VERSION: u16 = 1;
/// The file's name in the log directory.
pub(crate) const FILE: &str = "rwlog.horizon";
/// The same record, as a shared log's process keeps it in its local
/// directory: where a restart may begin (every stream's version there).
#[cfg(feature = "postgres")]
pub(crate) const RESTART_FILE: &str = "rwlog.restart";

/// Where an archived log starts, and what it needs of what came before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Horizon {
    pub(crate) log_id: Uuid,
    /// The first position the log holds.
    pub(crate) first: Position,
    /// The id of the event at `first - 1`.
    pub(crate) last_id: Uuid,
    /// The time of the event at `first - 1`.
    pub(crate) last_time: Timestamp,
    pub(crate) mode: ArchiveMode,
    /// Every stream's version before `first`.
    pub(crate) versions: Vec<(StreamId, u64)>,
}

impl Horizon {
    /// Where the log starts.
    pub(crate) fn start(&self) -> super::Start {
        super::Start {
            first: self.first,
            before_id: self.last_id,
            before_time: self.last_time,
            versions: self.versions.clone(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.versions.len() * 32);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(self.log_id.as_bytes());
        b.extend_from_slice(&self.first.0.to_le_bytes());
        b.extend_from_slice(self.last_id.as_bytes());
        b.extend_from_slice(&self.last_time.as_nanos().to_le_bytes());
        b.push(u8::from(self.mode == ArchiveMode::Move));
        b.extend_from_slice(&(self.versions.len() as u64).to_le_bytes());
        for (stream, version) in &self.versions {
            let name = stream.as_str().as_bytes();
            b.extend_from_slice(&(name.len() as u32).to_le_bytes());
            b.extend_from_slice(name);
            b.extend_from_slice(&version.to_le_bytes());
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> std::result::Result<Horizon, (u64, String)> {
        let body_len = b.len().checked_sub(4).ok_or((0, "too short".to_owned()))?;
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&b[body_len..]);
        if crc32c::crc32c(&b[..body_len]) != u32::from_le_bytes(crc) {
            return Err((body_len as u64, "checksum mismatch".into()));
        }
        let mut r = Reader {
            b: &b[..body_len],
            at: 0,
        };
        if r.take(8)? != MAGIC {
            return Err((0, "not a horizon file (bad magic)".into()));
        }
        let format = u16::from_le_bytes([r.take(1)?[0], r.take(1)?[0]]);
        if format != FORMAT_VERSION {
            return Err((8, format!("horizon format {format} is not known")));
        }
        let log_id = r.uuid()?;
        let first = Position(r.u64()?);
        let last_id = r.uuid()?;
        let last_time = Timestamp::from_nanos(r.u64()?);
        let mode = match r.take(1)?[0] {
            0 => ArchiveMode::Delete,
            _ => ArchiveMode::Move,
        };
        let count = r.u64()?;
        let mut versions = Vec::new();
        for _ in 0..count {
            let len = r.u64_of(4)? as usize;
            let name = std::str::from_utf8(r.take(len)?)
                .map_err(|_| (r.at as u64, "a stream name that is not UTF-8".to_owned()))?;
            versions.push((StreamId::from(name), r.u64()?));
        }
        if first == Position::ZERO || r.at != r.b.len() {
            return Err((r.at as u64, "trailing bytes or position 0".into()));
        }
        Ok(Horizon {
            log_id,
            first,
            last_id,
            last_time,
            mode,
            versions,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], (u64, String)> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let end = end.ok_or((self.at as u64, "the file ends early".to_owned()))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u64_of(&mut self, n: usize) -> std::result::Result<u64, (u64, String)> {
        let mut x = [0u8; 8];
        x[..n].copy_from_slice(self.take(n)?);
        Ok(u64::from_le_bytes(x))
    }

    fn u64(&mut self) -> std::result::Result<u64, (u64, String)> {
        self.u64_of(8)
    }

    fn uuid(&mut self) -> std::result::Result<Uuid, (u64, String)> {
        let mut id = [0u8; 16];
        id.copy_from_slice(self.take(16)?);
        Ok(Uuid::from_bytes(id))
    }
}

/// The directory's horizon, if it was ever archived.
///
/// Errors: [`Error::Corrupt`] naming the file and offset of damage, or a
/// horizon made for another log.
pub(crate) fn read(root: &Path, log_id: Uuid) -> Result<Option<Horizon>> {
    read_file(root, FILE, log_id)
}

/// The record in `root/name`, if there is one; see [`read`].
pub(crate) fn read_file(root: &Path, name: &str, log_id: Uuid) -> Result<Option<Horizon>> {
    Ok(load(root, name, Some(log_id))?.map(|(horizon, _)| horizon))
}

/// The first position of the log in `root` (1 unless it was archived),
/// and the horizon file's bytes if it has one. With no `log_id`, the file
/// is not checked against one.
pub(crate) fn first_in(root: &Path, log_id: Option<Uuid>) -> Result<(u64, Option<Vec<u8>>)> {
    Ok(match load(root, FILE, log_id)? {
        Some((horizon, bytes)) => (horizon.first.0, Some(bytes)),
        None => (1, None),
    })
}

/// The record in `root/name` and its bytes, checked (against `log_id`
/// if given); `None` if there is no such file.
fn load(root: &Path, name: &str, log_id: Option<Uuid>) -> Result<Option<(Horizon, Vec<u8>)>> {
    let path = root.join(name);
    let data = match std::fs::read(&path) {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(files::at(&path, "read")(e).into()),
    };
    let corrupt = |(offset, reason): (u64, String)| Error::Corrupt {
        file: path.clone(),
        offset,
        reason,
    };
    let horizon = Horizon::decode(&data).map_err(corrupt)?;
    if log_id.is_some_and(|id| id != horizon.log_id) {
        let why = format!("made for another log ({})", horizon.log_id);
        return Err(corrupt((10, why)));
    }
    Ok(Some((horizon, data)))
}

/// Writes the horizon: from now on the log starts at `horizon.first`.
pub(crate) fn write(root: &Path, horizon: &Horizon) -> Result<()> {
    Ok(write_file(root, FILE, horizon)?)
}

/// Writes the record to `root/name`, atomically.
pub(crate) fn write_file(root: &Path, name: &str, horizon: &Horizon) -> std::io::Result<()> {
    files::write_atomically(root, name, &horizon.encode())
}

/// Where archived segments go.
pub(crate) const ARCHIVE_DIR: &str = "archive";

/// Moves (or deletes) every segment wholly below the horizon; `segments`
/// are the directory's, by first position. Returns the segments that were
/// archived and their bytes.
pub(crate) fn archive_segments(
    root: &Path,
    segments: &[(u64, PathBuf)],
    first: Position,
    mode: ArchiveMode,
) -> Result<(Vec<PathBuf>, u64)> {
    let archive = root.join(ARCHIVE_DIR);
    let (mut moved, mut bytes) = (Vec::new(), 0);
    for (i, (_, path)) in segments.iter().enumerate() {
        // Wholly below: the next segment starts at or before the horizon.
        if segments.get(i + 1).is_none_or(|(next, _)| *next > first.0) {
            break;
        }
        bytes += std::fs::metadata(path).map_or(0, |m| m.len());
        match mode {
            ArchiveMode::Delete => files::remove(path)?,
            ArchiveMode::Move => {
                files::create_dir(&archive)?;
                let to = archive.join(files::name_of(path));
                std::fs::rename(path, &to).map_err(files::at(path, "move to archive/"))?;
                moved.push(to);
            }
        }
    }
    if bytes > 0 {
        files::sync_dir(root)?;
        if mode == ArchiveMode::Move {
            files::sync_dir(&archive)?;
        }
    }
    Ok((moved, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn horizon() -> Horizon {
        Horizon {
            log_id: Uuid::from_u128(7),
            first: Position(1001),
            last_id: Uuid::from_u128(1000),
            last_time: Timestamp::from_nanos(123),
            mode: ArchiveMode::Move,
            versions: vec![("a".into(), 10), ("bé".into(), 990)],
        }
    }

    #[test]
    fn a_horizon_round_trips_and_any_flipped_byte_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &horizon()).unwrap();
        assert_eq!(
            read(dir.path(), Uuid::from_u128(7)).unwrap(),
            Some(horizon())
        );
        assert!(read(dir.path(), Uuid::from_u128(8)).is_err());
        let bytes = horizon().encode();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(Horizon::decode(&bad).is_err(), "byte {i}");
        }
        assert!(Horizon::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
