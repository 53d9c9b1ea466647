//! A backup's manifest: what the backup holds and how to check every byte.
//!
//! ```text
//! rwlog-backup 1|<CRC32C of the text before the bar, hex>
//! log <log id>|<crc>
//! head <position>|<crc>
//! file <relative path> <length> <CRC32C of each 64 KiB block, comma-separated hex>|<crc>
//! ...
//! end <CRC32C of every byte before this line, hex>
//! ```
//!
//! Text, so that a person can read it. Each line's checksum names the line
//! a damaged byte is in; the last line's covers the whole (a line lost or
//! added); each block's checksum lets a restore name the offset (to the
//! block) of a damaged byte in any file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::position::Position;

use super::files::is_plain_file_name;

/// The manifest's file name in a backup.
pub(crate) const FILE: &str = "rwlog.backup";
const FORMAT: &str = "rwlog-backup 1";
/// The span each block checksum covers.
pub(crate) const BLOCK: usize = 64 * 1024;

/// One file of a backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Relative to the backup's root, `/`-separated plain names.
    pub(crate) path: String,
    pub(crate) len: u64,
    pub(crate) blocks: Vec<u32>,
}

impl Entry {
    /// The entry for `bytes` stored at `path`.
    pub(crate) fn of(path: String, bytes: &[u8]) -> Entry {
        Entry {
            path,
            len: bytes.len() as u64,
            blocks: bytes.chunks(BLOCK).map(crc32c::crc32c).collect(),
        }
    }

    /// The offset of the first block of `bytes` whose checksum differs,
    /// or a length mismatch, as (offset, why); `None` if all match.
    pub(crate) fn first_damage(&self, bytes: &[u8]) -> Option<(u64, String)> {
        if bytes.len() as u64 != self.len {
            let at = self.len.min(bytes.len() as u64);
            let why = format!("{} bytes, the manifest says {}", bytes.len(), self.len);
            return Some((at, why));
        }
        let blocks = bytes.chunks(BLOCK).map(crc32c::crc32c);
        blocks
            .zip(&self.blocks)
            .position(|(actual, expected)| actual != *expected)
            .map(|i| {
                let at = (i * BLOCK) as u64;
                (
                    at,
                    format!(
                        "a checksum mismatch in the {} KiB block at byte {at}",
                        BLOCK / 1024
                    ),
                )
            })
    }
}

/// A backup's manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) log_id: Uuid,
    pub(crate) head: Position,
    pub(crate) files: Vec<Entry>,
}

impl Manifest {
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            let crc = crc32c::crc32c(text.as_bytes());
            let _ = writeln!(out, "{text}|{crc:08x}");
        };
        line(FORMAT.to_owned());
        line(format!("log {}", self.log_id));
        line(format!("head {}", self.head.0));
        for f in &self.files {
            let blocks: Vec<String> = f.blocks.iter().map(|c| format!("{c:08x}")).collect();
            line(format!("file {} {} {}", f.path, f.len, blocks.join(",")));
        }
        let crc = crc32c::crc32c(out.as_bytes());
        let _ = writeln!(out, "end {crc:08x}");
        out
    }

    /// Parses the manifest at `path`; [`Error::Corrupt`] names the byte at
    /// which the damaged line starts.
    pub(crate) fn decode(path: &Path, text: &[u8]) -> Result<Manifest> {
        let bad = |(offset, reason): (usize, String)| Error::Corrupt {
            file: path.to_path_buf(),
            offset: offset as u64,
            reason,
        };
        let text = std::str::from_utf8(text)
            .map_err(|e| bad((e.valid_up_to(), "not UTF-8 text".into())))?;
        let body_end = text.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
        let mut lines = Vec::new();
        let mut at = 0;
        while at < body_end {
            let len = text[at..body_end].find('\n').unwrap_or(body_end - at);
            lines.push((
                at,
                checked_line(&text[at..at + len]).map_err(|r| bad((at, r)))?,
            ));
            at += len + 1;
        }
        let last = text[body_end..].trim_end_matches('\n');
        let crc = last.strip_prefix("end ").and_then(hex).ok_or_else(|| {
            bad((
                body_end,
                "no closing `end` line: the manifest is cut short".into(),
            ))
        })?;
        if crc32c::crc32c(&text.as_bytes()[..body_end]) != crc {
            return Err(bad((
                body_end,
                "the manifest's checksum does not match".into(),
            )));
        }
        let mut lines = lines.into_iter();
        let (at, first) = lines.next().ok_or_else(|| bad((0, "empty".into())))?;
        if first != FORMAT {
            return Err(bad((
                at,
                format!("`{first}`: not a backup format this version reads"),
            )));
        }
        let log_id = field(lines.next(), "log", |v| Uuid::parse_str(v).ok()).map_err(bad)?;
        let head = field(lines.next(), "head", |v| v.parse().ok()).map_err(bad)?;
        let files = lines
            .map(|(at, line)| parse_entry(line).map_err(|r| bad((at, r))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Manifest {
            log_id,
            head: Position(head),
            files,
        })
    }
}

/// A checksum as written: eight lowercase hex digits, nothing else.
fn hex(text: &str) -> Option<u32> {
    let value = u32::from_str_radix(text, 16).ok()?;
    (format!("{value:08x}") == text).then_some(value)
}

/// A line's text, once its checksum (after the last `|`) matches.
fn checked_line(line: &str) -> std::result::Result<&str, String> {
    let (text, crc) = line
        .rsplit_once('|')
        .ok_or_else(|| format!("`{line}`: a line without its checksum"))?;
    match hex(crc) {
        Some(crc) if crc == crc32c::crc32c(text.as_bytes()) => Ok(text),
        _ => Err(format!("`{line}`: the line's checksum does not match")),
    }
}

/// The value of line `name <value>`.
fn field<T>(
    line: Option<(usize, &str)>,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> std::result::Result<T, (usize, String)> {
    let (at, line) = line.ok_or((0, format!("no `{name}` line")))?;
    line.strip_prefix(name)
        .and_then(|v| v.strip_prefix(' '))
        .and_then(parse)
        .ok_or((at, format!("`{line}`: expected `{name} <value>`")))
}

fn parse_entry(line: &str) -> std::result::Result<Entry, String> {
    let what = || format!("`{line}`: expected `file <path> <length> <block checksums>`");
    let mut parts = line.split(' ');
    if parts.next() != Some("file") {
        return Err(what());
    }
    let (Some(path), Some(len), blocks, None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(what());
    };
    // Only plain names below the root: a manifest must not name a file
    // outside the directory being restored.
    if !path.split('/').all(is_plain_file_name) {
        return Err(format!("`{path}`: not a plain relative path"));
    }
    let len: u64 = len.parse().map_err(|_| what())?;
    let blocks: Vec<u32> = match blocks.unwrap_or("") {
        "" => Vec::new(),
        list => list
            .split(',')
            .map(|c| hex(c).ok_or_else(what))
            .collect::<std::result::Result<_, _>>()?,
    };
    if blocks.len() as u64 != len.div_ceil(BLOCK as u64) {
        return Err(format!(
            "`{path}`: {} block checksums for {len} bytes",
            blocks.len()
        ));
    }
    Ok(Entry {
        path: path.to_owned(),
        len,
        blocks,
    })
}

/// The path of `entry` under `root`.
pub(crate) fn path_under(root: &Path, entry: &Entry) -> PathBuf {
    entry
        .path
        .split('/')
        .fold(root.to_path_buf(), |p, c| p.join(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            log_id: Uuid::from_u128(7),
            head: Position(42),
            files: vec![
                Entry::of("00000000000000000001.seg".into(), &[1u8; 70_000]),
                Entry::of("snapshots/sums/00000000000000000040.snap".into(), b"x"),
                Entry::of("empty".into(), b""),
            ],
        }
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let text = sample().encode();
        assert_eq!(
            Manifest::decode(Path::new("m"), text.as_bytes()).unwrap(),
            sample()
        );
    }

    #[test]
    fn any_changed_byte_is_refused_with_its_line() {
        let text = sample().encode().into_bytes();
        for i in 0..text.len() {
            let mut bad = text.clone();
            bad[i] ^= 0x20;
            match Manifest::decode(Path::new("m"), &bad) {
                Err(Error::Corrupt { offset, .. }) => {
                    assert!(offset as usize <= i + 1 || offset as usize <= text.len())
                }
                Ok(m) => panic!("byte {i} changed, still read: {m:?}"),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn a_path_outside_the_root_is_refused() {
        let mut m = sample();
        m.files[0].path = "../escape".into();
        let text = m.encode();
        assert!(Manifest::decode(Path::new("m"), text.as_bytes()).is_err());
    }

    #[test]
    fn damage_is_found_to_the_block() {
        let bytes = vec![5u8; 200_000];
        let entry = Entry::of("f".into(), &bytes);
        let mut bad = bytes.clone();
        bad[150_000] = 6;
        let (at, _) = entry.first_damage(&bad).unwrap();
        assert_eq!(at, 131_072);
        assert!(entry.first_damage(&bytes).is_none());
        assert!(entry.first_damage(&bytes[..10]).is_some());
    }
}
