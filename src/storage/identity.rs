//! The log's identity: a random id drawn when the directory is made, kept
//! in `rwlog.id` and in every segment header, and written into every
//! snapshot and checkpoint, so that nothing from another log is trusted.
//!
//! `rwlog.id` is `"RWLOGDIR" | format u16 | log id [16] | CRC32C of the 26
//! bytes before`.

use std::path::Path;

use uuid::Uuid;

use crate::error::{Error, Result};

use super::files;

pub(crate) const FILE: &str = "rwlog.id";
const MAGIC: &[u8; 8] = b"RWLOGDIR";
const FORMAT: u16 = 1;
const LEN: usize = 8 + 2 + 16 + 4;

fn encode(id: Uuid) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..8].copy_from_slice(MAGIC);
    b[8..10].copy_from_slice(&FORMAT.to_le_bytes());
    b[10..26].copy_from_slice(id.as_bytes());
    let crc = crc32c::crc32c(&b[..26]);
    b[26..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The id in `dir/rwlog.id`, `None` if there is no such file.
///
/// Errors: [`Error::Corrupt`] if the file is damaged.
pub(crate) fn read(dir: &Path) -> Result<Option<Uuid>> {
    let path = dir.join(FILE);
    if !path.exists() {
        return Ok(None);
    }
    let b = files::read(&path)?;
    let valid = b.len() == LEN
        && &b[..8] == MAGIC
        && b[8..10] == FORMAT.to_le_bytes()
        && crc32c::crc32c(&b[..26]).to_le_bytes() == b[26..];
    if !valid {
        return Err(Error::Corrupt {
            file: path,
            offset: 0,
            reason: "the log's identity file is damaged".into(),
        });
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[10..26]);
    Ok(Some(Uuid::from_bytes(id)))
}

/// Writes `dir/rwlog.id` atomically.
pub(crate) fn write(dir: &Path, id: Uuid) -> Result<()> {
    Ok(files::write_atomically(dir, FILE, &encode(id))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_and_damage_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let id = Uuid::new_v4();
        write(dir.path(), id).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(id));
        let path = dir.path().join(FILE);
        let mut b = std::fs::read(&path).unwrap();
        b[12] ^= 1;
        std::fs::write(&path, b).unwrap();
        assert!(matches!(read(dir.path()), Err(Error::Corrupt { .. })));
    }
}
