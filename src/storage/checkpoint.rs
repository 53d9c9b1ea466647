//! Projection checkpoint files: `<log dir>/projections/<name>.checkpoint`.
//!
//! ```text
//! "RWLOGCKP" | format u16 | claim (log id, position, event id, flags, projection name) | CRC32C of all before u32
//! ```
//!
//! Replaced atomically on every save. Used only if the claim fits the
//! recovered log; one that does not is set aside with a warning and the
//! projection starts from the beginning (delivery is at least once).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;

use crate::error::Result;
use crate::position::Position;

use super::claim::{Claim, ClaimFile, LogFacts, Verdict};
use super::files;
use super::lock::DirLock;
use super::DirInfo;

const MAGIC: &[u8; 8] = b"RWLOGCKP";
/// 1: a bare position (rwlog 0.1 before the integrity work); 2: with a claim.
const FORMAT_VERSION: u16 = 2;

/// Checkpoint files are claim-carrying files; one beyond the head without
/// proof is moved back to the head.
pub(crate) const KIND: ClaimFile = ClaimFile {
    what: "checkpoint",
    read: read_claim,
    rewinds: true,
};

/// The directory of the checkpoints.
pub(crate) fn root(log_dir: &Path) -> PathBuf {
    log_dir.join("projections")
}

/// The projection a checkpoint file is named for.
pub(crate) fn name_of(path: &Path) -> String {
    let file = files::name_of(path);
    file.strip_suffix(".checkpoint").unwrap_or(file).to_owned()
}

/// The checkpoint files of a log directory. Holds the directory's lock:
/// a projection may save a checkpoint until it has stopped.
#[derive(Debug)]
pub(crate) struct CheckpointFiles {
    log_dir: PathBuf,
    dir: PathBuf,
    log_id: Uuid,
    synced: bool,
    _lock: Arc<DirLock>,
}

impl CheckpointFiles {
    pub(crate) fn new(info: &DirInfo) -> CheckpointFiles {
        CheckpointFiles {
            log_dir: info.path.clone(),
            dir: root(&info.path),
            log_id: info.log_id,
            synced: info.synced,
            _lock: Arc::clone(&info.lock),
        }
    }

    /// The id of the log the checkpoints belong to.
    pub(crate) fn log_id(&self) -> Uuid {
        self.log_id
    }

    /// The saved checkpoint of projection `name`, if it has one that fits
    /// the log; one that does not is set aside with a warning.
    pub(crate) fn load(&self, name: &str, log: &LogFacts<'_>) -> Result<Option<Position>> {
        let path = self.dir.join(format!("{name}.checkpoint"));
        if !path.exists() {
            return Ok(None);
        }
        let verdict = match read_claim(&path) {
            Ok(claim) => match claim.judge(log, name) {
                Verdict::Fits => return Ok(Some(claim.position)),
                Verdict::Archived => {
                    return Err(crate::error::Error::Archived {
                        requested: claim.position.next(),
                        first_available: log.first,
                    })
                }
                Verdict::Unfit(reason) => reason,
                Verdict::Proof | Verdict::Beyond => "beyond the log's head".into(),
            },
            Err(reason) => reason,
        };
        let to = files::move_aside(&self.log_dir, &path)?;
        tracing::warn!(projection = name, file = %path.display(), aside = %to.display(),
            reason = %verdict, "a checkpoint that cannot be used; set aside, the projection starts over");
        Ok(None)
    }

    /// Saves projection `name`'s checkpoint: it has handled every event up
    /// to `position`, whose id is `event_id`.
    pub(crate) fn save(&self, name: &str, position: Position, event_id: Uuid) -> io::Result<()> {
        let claim = Claim {
            log_id: self.log_id,
            name: name.to_owned(),
            position,
            event_id,
            synced: self.synced,
        };
        write(&self.dir, &claim)
    }
}

/// Writes a checkpoint file for `claim`, atomically.
pub(crate) fn write(dir: &Path, claim: &Claim) -> io::Result<()> {
    let bytes = encode(claim);
    files::write_atomically(dir, &format!("{}.checkpoint", claim.name), &bytes)
}

/// A checkpoint file's bytes for `claim`.
pub(crate) fn encode(claim: &Claim) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(96);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    claim.encode(&mut bytes);
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

fn read_claim(path: &Path) -> std::result::Result<Claim, String> {
    let b = files::read(path).map_err(|e| e.to_string())?;
    parse_claim(&b)
}

/// The claim of a checkpoint file's bytes.
pub(crate) fn parse_claim(b: &[u8]) -> std::result::Result<Claim, String> {
    if b.len() < 14 || &b[..8] != MAGIC {
        return Err("not an rwlog checkpoint".into());
    }
    if b[8..10] != FORMAT_VERSION.to_le_bytes() {
        return Err("a checkpoint format this version does not read".into());
    }
    let (claim, used) = Claim::decode(&b[10..]).ok_or("cut short")?;
    let end = 10 + used;
    let crc = b.get(end..end + 4).ok_or("cut short")?;
    if b.len() != end + 4 || crc32c::crc32c(&b[..end]).to_le_bytes() != crc {
        return Err("the checksum does not match".into());
    }
    Ok(claim)
}
