//! The durable log: segment files of checksummed frames.
//!
//! A segment is named by the position of its first event
//! (`00000000000000000001.seg`) and starts with a header: magic
//! `RWLOGSEG`, format version, codec id, first position. Then frames:
//! `[body length: u32 LE][CRC32C of body: u32 LE][body]`, where the body is
//! the record's head (position, stream, version, id, time, event type,
//! schema version, metadata) followed by the payload, both in bincode 2.
//!
//! Each sequencer batch is one `write` and, with [`Durability::Fsync`], one
//! `fdatasync`, before the batch is published or acknowledged. Creating a
//! segment syncs the file and its directory.
//!
//! Recovery verifies every frame. Only a torn tail is forgiven: at the end of
//! the last segment, a frame cut short, or a bad frame followed by nothing
//! but zeros, is cut off (and the file truncated there, so later appends do
//! not land after garbage). Any other bad frame, a length above the
//! configured maximum, a gap in positions or a missing segment is
//! [`Error::Corrupt`], naming the file and byte offset.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{Event, Metadata, Recorded, Timestamp};
use crate::position::{Position, StreamId};
use crate::upcast::Upcasters;

const MAGIC: &[u8; 8] = b"RWLOGSEG";
const FORMAT_VERSION: u16 = 1;
/// bincode 2, standard configuration.
pub(crate) const CODEC_BINCODE2: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 2 + 8;
const FRAME_HEADER: usize = 8;

pub(crate) fn codec() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// How durable an acknowledged append is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge a batch only after `fdatasync` returns: an acknowledged
    /// append survives a process crash and a power loss. The default.
    #[default]
    Fsync,
    /// Acknowledge after `write` returns, leaving the data in the OS's
    /// buffers: an acknowledged append survives a process crash, but the
    /// last moments before a power loss or kernel crash can be lost.
    Buffered,
}

/// Where the log lives; see [`Builder::storage`](crate::Builder::storage).
///
/// ```
/// use rwlog::{Durability, Storage};
/// let s = Storage::dir("data").durability(Durability::Fsync).segment_bytes(64 << 20);
/// # let _ = s;
/// ```
#[derive(Clone, Debug)]
pub struct Storage {
    pub(crate) dir: Option<DirOptions>,
}

#[derive(Clone, Debug)]
pub(crate) struct DirOptions {
    pub(crate) path: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) segment_bytes: u64,
    pub(crate) max_record_bytes: u32,
    pub(crate) fail_after_writes: Option<u64>,
    pub(crate) fail_sync_after: Option<u64>,
}

impl Storage {
    /// The log in memory only (the default): lost when the process ends.
    pub fn memory() -> Storage {
        Storage { dir: None }
    }

    /// The log in segment files under `path` (created if missing), with
    /// [`Durability::Fsync`], 64 MiB segments and records of at most 16 MiB.
    pub fn dir(path: impl Into<PathBuf>) -> Storage {
        Storage {
            dir: Some(DirOptions {
                path: path.into(),
                durability: Durability::Fsync,
                segment_bytes: 64 << 20,
                max_record_bytes: 16 << 20,
                fail_after_writes: None,
                fail_sync_after: None,
            }),
        }
    }

    /// Sets the durability of a directory log.
    pub fn durability(mut self, durability: Durability) -> Storage {
        if let Some(d) = &mut self.dir {
            d.durability = durability;
        }
        self
    }

    /// Starts a new segment once one exceeds this many bytes (a batch is
    /// never split across segments).
    pub fn segment_bytes(mut self, bytes: u64) -> Storage {
        if let Some(d) = &mut self.dir {
            d.segment_bytes = bytes.max(HEADER_LEN as u64 + 1);
        }
        self
    }

    /// The largest encoded event accepted, and trusted when reading: a
    /// larger length prefix in a file is corruption, never an allocation.
    pub fn max_event_bytes(mut self, bytes: u32) -> Storage {
        if let Some(d) = &mut self.dir {
            d.max_record_bytes = bytes.max(1);
        }
        self
    }

    /// Fault injection for tests: every write after the first `n` batches
    /// fails, as if the disk had failed.
    #[doc(hidden)]
    pub fn fail_after_writes(mut self, n: u64) -> Storage {
        if let Some(d) = &mut self.dir {
            d.fail_after_writes = Some(n);
        }
        self
    }

    /// Fault injection for tests: after the first `n` batches, the write
    /// succeeds but the sync fails.
    #[doc(hidden)]
    pub fn fail_sync_after(mut self, n: u64) -> Storage {
        if let Some(d) = &mut self.dir {
            d.fail_sync_after = Some(n);
        }
        self
    }
}

/// The fixed part of a record, as written.
#[derive(Serialize)]
struct HeadRef<'a> {
    position: u64,
    stream: &'a str,
    version: u64,
    id: Uuid,
    recorded_at: u64,
    event_type: &'a str,
    schema_version: u32,
    metadata: Option<&'a Metadata>,
}

/// The fixed part of a record, as read.
#[derive(Deserialize)]
struct Head {
    position: u64,
    stream: String,
    version: u64,
    id: Uuid,
    recorded_at: u64,
    event_type: String,
    schema_version: u32,
    metadata: Option<Metadata>,
}

/// A segment's header: magic, format version, codec id, first position.
fn segment_header(first: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&CODEC_BINCODE2.to_le_bytes());
    header.extend_from_slice(&first.to_le_bytes());
    header
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

/// Whether a user-given name (a persisted view's, a projection's) can name a
/// file in the log directory as it is: letters, digits, `-`, `_` and `.`,
/// and not `.` or `..`.
pub(crate) fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Syncs a directory, so that a file created or renamed in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Appends batches to the newest segment. Owned by the sequencer.
///
/// Invariant: once a write or sync fails, `failed` is set and every later
/// append fails too: no later sync is trusted to cover the failed one.
pub(crate) struct SegmentWriter {
    file: File,
    len: u64,
    options: DirOptions,
    buf: Vec<u8>,
    writes: u64,
    failed: bool,
}

impl SegmentWriter {
    fn create(options: &DirOptions, first: u64) -> io::Result<(File, u64)> {
        let path = options.path.join(segment_name(first));
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)?;
        file.write_all(&segment_header(first))?;
        file.sync_all()?;
        sync_dir(&options.path)?;
        Ok((file, HEADER_LEN as u64))
    }

    /// Encodes, writes and (with `Fsync`) syncs one batch.
    pub(crate) fn append<E: Event + Serialize>(&mut self, batch: &[Recorded<E>]) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write or sync of the log failed; reopen the runtime",
            ));
        }
        let Some(first) = batch.first() else {
            return Ok(());
        };
        self.buf.clear();
        for r in batch {
            encode_frame(&mut self.buf, r, self.options.max_record_bytes)?;
        }
        let result = self.write_batch(first.position.0);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn write_batch(&mut self, first: u64) -> io::Result<()> {
        if self.len > HEADER_LEN as u64
            && self.len + self.buf.len() as u64 > self.options.segment_bytes
        {
            let (file, len) = SegmentWriter::create(&self.options, first)?;
            self.file = file;
            self.len = len;
        }
        self.writes += 1;
        if self
            .options
            .fail_after_writes
            .is_some_and(|n| self.writes > n)
        {
            return Err(io::Error::other("injected I/O fault"));
        }
        self.file.write_all(&self.buf)?;
        self.len += self.buf.len() as u64;
        if self
            .options
            .fail_sync_after
            .is_some_and(|n| self.writes > n)
        {
            return Err(io::Error::other("injected fsync fault"));
        }
        if self.options.durability == Durability::Fsync {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

fn encode_frame<E: Event + Serialize>(
    buf: &mut Vec<u8>,
    r: &Recorded<E>,
    max: u32,
) -> io::Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEADER]);
    let head = HeadRef {
        position: r.position.0,
        stream: r.stream.as_str(),
        version: r.version,
        id: r.id,
        recorded_at: r.recorded_at.as_nanos(),
        event_type: r.payload.event_type(),
        schema_version: r.schema_version,
        metadata: r.metadata.as_deref(),
    };
    let invalid =
        |e: bincode::error::EncodeError| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    bincode::serde::encode_into_std_write(&head, buf, codec()).map_err(invalid)?;
    bincode::serde::encode_into_std_write(&r.payload, buf, codec()).map_err(invalid)?;
    let body_len = buf.len() - start - FRAME_HEADER;
    let len = u32::try_from(body_len)
        .ok()
        .filter(|&l| l <= max)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "event at position {} encodes to {body_len} bytes, above the limit of {max}",
                    r.position
                ),
            )
        })?;
    let crc = crc32c::crc32c(&buf[start + FRAME_HEADER..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// What opening a directory found.
pub(crate) struct Recovered<E> {
    pub(crate) events: Vec<Recorded<E>>,
    pub(crate) writer: SegmentWriter,
}

fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        file: file.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Opens (or creates) a log directory, verifying and loading every event.
pub(crate) fn open<E: Event + serde::de::DeserializeOwned>(
    options: &DirOptions,
    upcasters: &Upcasters<E>,
) -> Result<Recovered<E>> {
    fs::create_dir_all(&options.path)?;
    let mut segments: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(&options.path)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".seg") else {
            continue;
        };
        let first = stem
            .parse::<u64>()
            .map_err(|_| corrupt(&path, 0, "a segment file name that is not a position"))?;
        segments.push((first, path));
    }
    segments.sort();

    let mut events: Vec<Recorded<E>> = Vec::new();
    let mut tail: Option<(PathBuf, u64)> = None;
    let count = segments.len();
    for (i, (first, path)) in segments.iter().enumerate() {
        let last = i + 1 == count;
        let expected = events.len() as u64 + 1;
        if *first != expected {
            let reason = if *first > expected {
                format!("positions {expected}..{first} are missing (a segment is missing)")
            } else {
                format!("segment starts at {first}, but position {expected} was expected")
            };
            return Err(corrupt(path, 0, reason));
        }
        let end = read_segment(
            path,
            *first,
            last,
            options.max_record_bytes,
            upcasters,
            &mut events,
        )?;
        if last {
            tail = Some((path.clone(), end));
        }
    }

    let (file, len) = match tail {
        Some((path, end)) => {
            let file = OpenOptions::new().write(true).open(&path)?;
            if file.metadata()?.len() != end {
                // Cut the torn tail, durably, before anything is appended.
                file.set_len(end)?;
                file.sync_all()?;
            }
            let mut file = file;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(end))?;
            (file, end)
        }
        None => SegmentWriter::create(options, 1)?,
    };
    Ok(Recovered {
        events,
        writer: SegmentWriter {
            file,
            len,
            options: options.clone(),
            buf: Vec::new(),
            writes: 0,
            failed: false,
        },
    })
}

/// Reads one segment's events into `events`; returns the offset where valid
/// data ends (the file's length, unless a torn tail was found).
fn read_segment<E: Event + serde::de::DeserializeOwned>(
    path: &Path,
    first: u64,
    last: bool,
    max: u32,
    upcasters: &Upcasters<E>,
    events: &mut Vec<Recorded<E>>,
) -> Result<u64> {
    let data = fs::read(path)?;
    if data.len() < HEADER_LEN {
        if last
            && data
                .iter()
                .skip(MAGIC.len().min(data.len()))
                .all(|&b| b == 0)
        {
            // A segment whose creation was interrupted: rewrite its header.
            let mut file = OpenOptions::new().write(true).open(path)?;
            file.set_len(0)?;
            file.write_all(&segment_header(first))?;
            file.sync_all()?;
            return Ok(HEADER_LEN as u64);
        }
        return Err(corrupt(path, 0, "a segment shorter than its header"));
    }
    if &data[..8] != MAGIC {
        return Err(corrupt(path, 0, "not an rwlog segment (bad magic)"));
    }
    let format = u16::from_le_bytes([data[8], data[9]]);
    let codec = u16::from_le_bytes([data[10], data[11]]);
    let mut position_bytes = [0u8; 8];
    position_bytes.copy_from_slice(&data[12..20]);
    if format != FORMAT_VERSION {
        return Err(corrupt(path, 8, format!("unknown format version {format}")));
    }
    if codec != CODEC_BINCODE2 {
        return Err(corrupt(path, 10, format!("unknown codec {codec}")));
    }
    if u64::from_le_bytes(position_bytes) != first {
        return Err(corrupt(
            path,
            12,
            "the header's first position does not match the file name",
        ));
    }

    let mut off = HEADER_LEN;
    while off < data.len() {
        let rest = &data[off..];
        // A bad frame is a torn tail only at the end of the last segment:
        // cut short, or followed by nothing but zeros.
        let torn_here =
            |end: usize| last && (end >= data.len() || data[end..].iter().all(|&b| b == 0));
        if rest.len() < FRAME_HEADER {
            if torn_here(data.len()) {
                return Ok(off as u64);
            }
            return Err(corrupt(path, off as u64, "a frame header cut short"));
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len > max {
            if last && rest.iter().all(|&b| b == 0) {
                return Ok(off as u64);
            }
            return Err(corrupt(
                path,
                off as u64,
                format!("a frame length of {len} bytes, above the limit of {max}"),
            ));
        }
        let end = off + FRAME_HEADER + len as usize;
        if end > data.len() {
            if torn_here(data.len()) {
                return Ok(off as u64);
            }
            return Err(corrupt(
                path,
                off as u64,
                "a frame runs past the end of its segment",
            ));
        }
        let body = &data[off + FRAME_HEADER..end];
        if len == 0 || crc32c::crc32c(body) != crc {
            if torn_here(end) {
                return Ok(off as u64);
            }
            return Err(corrupt(
                path,
                off as u64,
                "a frame's checksum does not match",
            ));
        }
        let expected = events.len() as u64 + 1;
        let record = decode_record(body, upcasters).map_err(|e| match e {
            Error::Codec(reason) => corrupt(
                path,
                off as u64,
                format!("a frame that does not decode: {reason}"),
            ),
            other => other,
        })?;
        if record.position.0 != expected {
            return Err(corrupt(
                path,
                off as u64,
                format!(
                    "a frame holds position {}, but {expected} was expected",
                    record.position
                ),
            ));
        }
        events.push(record);
        off = end;
    }
    Ok(off as u64)
}

fn decode_record<E: Event + serde::de::DeserializeOwned>(
    body: &[u8],
    upcasters: &Upcasters<E>,
) -> Result<Recorded<E>> {
    let (head, used): (Head, usize) = bincode::serde::decode_from_slice(body, codec())
        .map_err(|e| Error::Codec(e.to_string()))?;
    let payload_bytes = &body[used..];
    let payload = if head.schema_version == E::SCHEMA_VERSION {
        let (payload, n): (E, usize) = bincode::serde::decode_from_slice(payload_bytes, codec())
            .map_err(|e| Error::Codec(e.to_string()))?;
        if n != payload_bytes.len() {
            return Err(Error::Codec("trailing bytes after the payload".into()));
        }
        payload
    } else {
        upcasters.upcast(
            &head.event_type,
            head.schema_version,
            Position(head.position),
            payload_bytes,
        )?
    };
    Ok(Recorded {
        position: Position(head.position),
        stream: StreamId::from(head.stream),
        version: head.version,
        id: head.id,
        recorded_at: Timestamp::from_nanos(head.recorded_at),
        schema_version: head.schema_version,
        metadata: head.metadata.map(Box::new),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::is_plain_file_name;

    #[test]
    fn only_plain_names_become_file_names() {
        for ok in ["balances", "cart-totals_v2", "a.b"] {
            assert!(is_plain_file_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../etc", "a/b", "a b", "ü"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }
}
