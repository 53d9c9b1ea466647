//! Snapshot files: `<log dir>/snapshots/<view>/<position>.snap`.
//!
//! ```text
//! "RWLOGSNP" | format u16 | codec u16 | claim (log id, position, event id, flags, view name)
//!           | body length u64 | body CRC32C u32 | CRC32C of the header before u32 | body (the state, bincode 2)
//! ```
//!
//! Written to a temporary file, synced, renamed into place and the directory
//! synced, so a crash leaves the whole snapshot or none. Read only if its
//! claim fits the recovered log (see [`scan`](super::scan)) and its body
//! verifies; anything else is set aside, never trusted.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::error::Result;
use crate::position::Position;

use super::claim::{Claim, ClaimFile, LogFacts, Verdict};
use super::codec::{self, CODEC_BINCODE2};
use super::files;
use super::DirInfo;

const MAGIC: &[u8; 8] = b"RWLOGSNP";
/// 1: position only (rwlog 0.1 before the integrity work); 2: with a claim.
const FORMAT_VERSION: u16 = 2;
/// The most header bytes read to find a claim (the name is a file name).
const MAX_HEADER: usize = 1024;

/// Snapshot files are claim-carrying files.
pub(crate) const KIND: ClaimFile = ClaimFile {
    what: "snapshot",
    read: read_claim,
    rewinds: false,
};

/// The directory holding the snapshots of every view.
pub(crate) fn root(log_dir: &Path) -> PathBuf {
    log_dir.join("snapshots")
}

/// The snapshot files of one view.
#[derive(Debug)]
pub(crate) struct SnapshotFiles {
    log_dir: PathBuf,
    dir: PathBuf,
    view: String,
    log_id: Uuid,
    synced: bool,
}

impl SnapshotFiles {
    pub(crate) fn new(info: &DirInfo, view: &str) -> SnapshotFiles {
        SnapshotFiles {
            log_dir: info.path.clone(),
            dir: root(&info.path).join(view),
            view: view.to_owned(),
            log_id: info.log_id,
            synced: info.synced,
        }
    }

    /// Writes the state after `position`, whose event had id `event_id`,
    /// durably.
    pub(crate) fn write<V: Serialize>(
        &self,
        position: Position,
        event_id: Uuid,
        state: &V,
    ) -> io::Result<()> {
        let body = bincode::serde::encode_to_vec(state, codec::config())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let claim = Claim {
            log_id: self.log_id,
            name: self.view.clone(),
            position,
            event_id,
            synced: self.synced,
        };
        let mut bytes = Vec::with_capacity(body.len() + 128);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&CODEC_BINCODE2.to_le_bytes());
        claim.encode(&mut bytes);
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(&body);
        files::write_atomically(&self.dir, &file_name(position), &bytes)
    }

    /// Removes all but the newest `keep` snapshots of this view (at least
    /// one stays). Only files named as snapshots are touched; files set
    /// aside are not. Removal need not be durable: a file a crash brings
    /// back is older than the newest and is removed at the next prune.
    pub(crate) fn prune(&self, keep: usize) -> io::Result<usize> {
        let found = list(&self.dir)?;
        let old = found.len().saturating_sub(keep.max(1));
        for (_, path) in &found[..old] {
            files::remove(path)?;
        }
        Ok(old)
    }

    /// The newest snapshot that fits the log and whose body verifies and
    /// decodes, as (position, state). Any other is moved aside with a
    /// warning and the next older one tried.
    pub(crate) fn load_newest<V: DeserializeOwned>(
        &self,
        log: &LogFacts<'_>,
    ) -> Result<Option<(Position, V)>> {
        let found = list(&self.dir)?;
        for (position, path) in found.into_iter().rev() {
            if position.saturating_add(1) < log.first.0 {
                // Older than the horizon: of no use (the events after it
                // were archived), and left alone.
                break;
            }
            let bytes = files::read(&path)?;
            match decode::<V>(&bytes, log, &self.view) {
                Ok(loaded) => return Ok(Some(loaded)),
                Err(reason) => {
                    let to = files::move_aside(&self.log_dir, &path)?;
                    tracing::warn!(file = %path.display(), aside = %to.display(), %reason,
                        "a snapshot that cannot be used; set aside");
                }
            }
        }
        Ok(None)
    }
}

fn file_name(position: Position) -> String {
    format!("{:020}.snap", position.0)
}

/// The snapshot files in `dir` (one view's), oldest first, with their
/// positions; files of other names (set aside, temporary) are not listed.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found: Vec<(u64, PathBuf)> = files::list(dir)?
        .into_iter()
        .filter_map(|path| Some((position_of(&path)?, path)))
        .collect();
    found.sort();
    Ok(found)
}

fn position_of(path: &Path) -> Option<u64> {
    files::name_of(path).strip_suffix(".snap")?.parse().ok()
}

/// The header: the claim, the body's length and checksum, and where the
/// body starts.
/// Whether the snapshot file at `path` is whole, of log `log_id` and
/// decodes as a `V`. Its position, if so.
pub(crate) fn usable<V: DeserializeOwned>(path: &Path, log_id: Uuid) -> Option<Position> {
    let bytes = std::fs::read(path).ok()?;
    let (claim, len, crc, start) = parse_header(&bytes).ok()?;
    let body = bytes.get(start..)?;
    let whole = body.len() as u64 == len && crc32c::crc32c(body) == crc;
    let fits = whole && claim.log_id == log_id && claim.position.0 == position_of(path)?;
    (fits && codec::decode_whole::<V>(body).is_ok()).then_some(claim.position)
}

fn parse_header(b: &[u8]) -> std::result::Result<(Claim, u64, u32, usize), String> {
    if b.len() < 12 || &b[..8] != MAGIC {
        return Err("not an rwlog snapshot".into());
    }
    let format = u16::from_le_bytes([b[8], b[9]]);
    let codec = u16::from_le_bytes([b[10], b[11]]);
    if format != FORMAT_VERSION || codec != CODEC_BINCODE2 {
        return Err(format!(
            "format {format}, codec {codec}: not one this version reads"
        ));
    }
    let (claim, used) = Claim::decode(&b[12..]).ok_or("a header cut short")?;
    let at = 12 + used;
    let fixed = b.get(at..at + 16).ok_or("a header cut short")?;
    let mut len = [0u8; 8];
    len.copy_from_slice(&fixed[..8]);
    let body_crc = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
    let header_crc = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]);
    if crc32c::crc32c(&b[..at + 12]) != header_crc {
        return Err("the header's checksum does not match".into());
    }
    Ok((claim, u64::from_le_bytes(len), body_crc, at + 16))
}

fn read_claim(path: &Path) -> std::result::Result<Claim, String> {
    let mut head = Vec::with_capacity(MAX_HEADER);
    File::open(path)
        .and_then(|f| f.take(MAX_HEADER as u64).read_to_end(&mut head))
        .map_err(|e| e.to_string())?;
    let (claim, ..) = parse_header(&head)?;
    if position_of(path) != Some(claim.position.0) {
        return Err("the header's position does not match the file name".into());
    }
    Ok(claim)
}

fn decode<V: DeserializeOwned>(
    bytes: &[u8],
    log: &LogFacts<'_>,
    view: &str,
) -> std::result::Result<(Position, V), String> {
    let (claim, len, crc, start) = parse_header(bytes)?;
    match claim.judge(log, view) {
        Verdict::Fits => {}
        Verdict::Archived => return Err("older than the log's horizon".into()),
        Verdict::Unfit(reason) => return Err(reason),
        Verdict::Proof | Verdict::Beyond => return Err("beyond the recovered head".into()),
    }
    let body = &bytes[start..];
    if body.len() as u64 != len {
        return Err(format!(
            "the body is {} bytes, the header says {len}",
            body.len()
        ));
    }
    if crc32c::crc32c(body) != crc {
        return Err("the body's checksum does not match".into());
    }
    let state = codec::decode_whole::<V>(body)?;
    Ok((claim.position, state))
}
