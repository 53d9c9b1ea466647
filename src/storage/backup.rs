//! Online backup of a log directory, and verified restore.
//!
//! A backup is a directory: the segments up to a position (the head when
//! the backup started; the open segment copied up to that batch's end,
//! which is on disk before the batch is published), the newest snapshot of
//! each persisted view at or before it, every projection checkpoint (moved
//! back to that position if it was beyond it), the identity file, and a
//! [`manifest`](super::manifest) written last. Appends go on meanwhile:
//! nothing here takes the sequencer's role; bytes past the position are
//! simply not copied.
//!
//! A restore checks the manifest, every file's blocks and every frame of
//! every segment before it writes anything, writes into a temporary
//! sibling directory, and renames it into place: a damaged backup leaves
//! nothing behind.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::position::Position;

use super::claim::Claim;
use super::files::list_segments;
use super::files::{self, at};
use super::frame::{self, BATCH_HEADER, FRAME_HEADER, SEGMENT_HEADER};
use super::manifest::{self, Entry, Manifest};
use super::read::corrupt;
use super::{checkpoint, horizon, identity, snapshot};

/// How far a backup or restore has come: for progress bars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackupProgress {
    /// Bytes copied so far.
    pub bytes: u64,
    /// Events copied so far (of `total_events`).
    pub events: u64,
    /// The events the whole backup holds.
    pub total_events: u64,
}

/// What a finished backup or restore holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    /// The log's identity.
    pub log_id: Uuid,
    /// The last position it holds: every event up to it, none after.
    pub head: Position,
    /// The files it holds, the manifest aside.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// What a backup copies from.
pub(crate) struct Source<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) log_id: Uuid,
    pub(crate) head: Position,
    /// The id of the event at `head` (for checkpoints moved back to it).
    pub(crate) id_at_head: Uuid,
}

/// Copies the log in `src` up to its head into `dest` (which must not
/// exist, or be an empty directory).
pub(crate) fn backup(
    src: &Source<'_>,
    dest: &Path,
    progress: &mut dyn FnMut(BackupProgress),
) -> Result<BackupSummary> {
    let made = prepare_empty(dest)?;
    let outcome = copy_all(src, dest, progress);
    if outcome.is_err() {
        clean_up(dest, made);
    }
    outcome
}

fn copy_all(
    src: &Source<'_>,
    dest: &Path,
    progress: &mut dyn FnMut(BackupProgress),
) -> Result<BackupSummary> {
    let mut out = Writer {
        dest,
        entries: Vec::new(),
        done: BackupProgress {
            total_events: src.head.0,
            ..BackupProgress::default()
        },
    };
    let (mut next, horizon) = horizon::first_in(src.dir, Some(src.log_id))?;
    let horizon_first = next;
    for (first, path) in list_segments(src.dir)? {
        if first > src.head.0 {
            break;
        }
        if first < horizon_first {
            // Left by an archiving cut short: the next open moves it.
            continue;
        }
        starts_at(&path, first, next)?;
        let data = files::read(&path)?;
        // Every frame checked: a damaged log must not give a backup that
        // cannot be restored.
        let walked = walk(&path, &data, src.log_id, first, Some(src.head.0), true)?;
        next = walked.last + 1;
        out.put(files::name_of(&path), &data[..walked.end])?;
        out.done.events = walked.last;
        progress(out.done);
    }
    if next != src.head.0 + 1 {
        let why = format!(
            "the segments end at position {}, the log's head is {}",
            next - 1,
            src.head.0
        );
        return Err(corrupt(src.dir, 0, why));
    }
    copy_snapshots(src, &mut out)?;
    copy_checkpoints(src, &mut out)?;
    out.put(identity::FILE, &files::read(&src.dir.join(identity::FILE))?)?;
    if let Some(bytes) = horizon {
        out.put(horizon::FILE, &bytes)?;
    }
    progress(out.done);
    let manifest = Manifest {
        log_id: src.log_id,
        head: src.head,
        files: out.entries,
    };
    files::write_atomically(dest, manifest::FILE, manifest.encode().as_bytes())?;
    Ok(summary(&manifest))
}

pub(crate) fn summary(manifest: &Manifest) -> BackupSummary {
    BackupSummary {
        log_id: manifest.log_id,
        head: manifest.head,
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.len).sum(),
    }
}

/// Writes files into the backup and lists them for the manifest.
struct Writer<'a> {
    dest: &'a Path,
    entries: Vec<Entry>,
    done: BackupProgress,
}

impl Writer<'_> {
    /// Writes `bytes` at `rel` (`/`-separated) under the backup's root.
    fn put(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let entry = Entry::of(rel.to_owned(), bytes);
        let path = manifest::path_under(self.dest, &entry);
        let dir = path.parent().unwrap_or(self.dest);
        files::write_atomically(dir, files::name_of(&path), bytes)?;
        self.done.bytes += bytes.len() as u64;
        self.entries.push(entry);
        Ok(())
    }
}

/// The newest snapshot of each view at or before the head. A snapshot
/// removed while it is read (the view wrote a newer one) is looked for
/// again.
fn copy_snapshots(src: &Source<'_>, out: &mut Writer<'_>) -> Result<()> {
    for view_dir in files::subdirs(&snapshot::root(src.dir))? {
        let view = files::name_of(&view_dir).to_owned();
        for _attempt in 0..8 {
            let newest = snapshot::list(&view_dir)?
                .into_iter()
                .rfind(|(pos, _)| *pos <= src.head.0);
            let Some((_, path)) = newest else { break };
            match fs::read(&path) {
                Ok(bytes) => {
                    out.put(
                        &format!("snapshots/{view}/{}", files::name_of(&path)),
                        &bytes,
                    )?;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(at(&path, "read")(e).into()),
            }
        }
    }
    Ok(())
}

/// Every checkpoint; one beyond the head is moved back to it (what the
/// projection handled up to the head is still true). A damaged one is
/// left out, as recovery would set it aside.
fn copy_checkpoints(src: &Source<'_>, out: &mut Writer<'_>) -> Result<()> {
    for path in files::list(&checkpoint::root(src.dir))? {
        let name = files::name_of(&path);
        if !name.ends_with(".checkpoint") {
            continue;
        }
        // One read: the bytes copied are the bytes judged (a projection
        // may save a newer checkpoint meanwhile).
        let read = files::read(&path)?;
        let claim = match checkpoint::parse_claim(&read) {
            Ok(claim) => claim,
            Err(reason) => {
                tracing::warn!(file = %path.display(), %reason, "a damaged checkpoint left out of the backup");
                continue;
            }
        };
        let bytes = if claim.position <= src.head {
            read
        } else {
            checkpoint::encode(&Claim {
                position: src.head,
                event_id: src.id_at_head,
                ..claim
            })
        };
        out.put(&format!("projections/{name}"), &bytes)?;
    }
    Ok(())
}

/// What walking a segment found.
pub(crate) struct Walked {
    pub(crate) first: u64,
    pub(crate) last: u64,
    /// The end of the last batch walked.
    pub(crate) end: usize,
    /// Where the last batch walked starts.
    last_batch: Option<usize>,
}

impl Walked {
    /// The id of the last event walked (the last frame of the last batch).
    pub(crate) fn last_id(&self, data: &[u8]) -> Option<Uuid> {
        let mut off = self.last_batch? + BATCH_HEADER;
        let mut body = None;
        while off + FRAME_HEADER <= self.end {
            let (len, _) = frame::parse_frame_header(&data[off..off + FRAME_HEADER]);
            body = data.get(off + FRAME_HEADER..off + FRAME_HEADER + len as usize);
            off += FRAME_HEADER + len as usize;
        }
        frame::decode_id(body?)
    }
}

/// Walks the batches of segment `data` (named `first` in its file name):
/// up to the batch ending at `stop` if given, else to the end, which must
/// be a batch boundary. With `frames`, every frame's checksum is checked
/// too. Damage is [`Error::Corrupt`] naming the file and offset.
pub(crate) fn walk(
    path: &Path,
    data: &[u8],
    log_id: Uuid,
    first: u64,
    stop: Option<u64>,
    frames: bool,
) -> Result<Walked> {
    walk_with(path, data, (log_id, first), stop, frames, false)
}

/// [`walk`]; with `lenient_tail`, damage after the last whole batch ends
/// the walk there instead of failing it (the tail of a segment a runtime
/// is appending to).
pub(crate) fn walk_with(
    path: &Path,
    data: &[u8],
    (log_id, first): (Uuid, u64),
    stop: Option<u64>,
    frames: bool,
    lenient_tail: bool,
) -> Result<Walked> {
    let header = frame::parse_segment_header(data).map_err(|(off, why)| corrupt(path, off, why))?;
    if header.first != first || header.log_id != log_id {
        let why = format!(
            "the header names position {} of log {}",
            header.first, header.log_id
        );
        return Err(corrupt(path, 12, why));
    }
    let mut off = SEGMENT_HEADER;
    let mut next = first;
    let mut last_batch = None;
    while off < data.len() && stop.is_none_or(|s| next <= s) {
        match next_batch(path, data, off, next, frames) {
            Ok((end, count)) => {
                next += u64::from(count);
                last_batch = Some(off);
                off = end;
            }
            Err(_) if lenient_tail => break,
            Err(e) => return Err(e),
        }
    }
    if let Some(s) = stop.filter(|&s| next - 1 > s) {
        return Err(corrupt(
            path,
            off as u64,
            format!("no batch ends at position {s}"),
        ));
    }
    Ok(Walked {
        first,
        last: next - 1,
        end: off,
        last_batch,
    })
}

/// The batch at `off`, which must hold position `next` first: where it
/// ends and how many events it holds.
fn next_batch(
    path: &Path,
    data: &[u8],
    off: usize,
    next: u64,
    frames: bool,
) -> Result<(usize, u32)> {
    let batch = data
        .get(off..off + BATCH_HEADER)
        .and_then(frame::parse_batch_header)
        .ok_or_else(|| corrupt(path, off as u64, "a damaged batch header"))?;
    if batch.first != next {
        let why = format!(
            "a batch of position {}, position {next} was expected",
            batch.first
        );
        return Err(corrupt(path, off as u64, why));
    }
    let body = off + BATCH_HEADER;
    let end = usize::try_from(batch.bytes)
        .ok()
        .and_then(|b| body.checked_add(b))
        .filter(|&e| e <= data.len())
        .ok_or_else(|| corrupt(path, off as u64, "a batch longer than the file"))?;
    if frames {
        check_frames(path, &data[..end], body, batch.count)?;
    }
    Ok((end, batch.count))
}

/// Checks the `count` frames of a batch from `off` to the end of `data`.
fn check_frames(path: &Path, data: &[u8], mut off: usize, count: u32) -> Result<()> {
    for _ in 0..count {
        let head = data
            .get(off..off + FRAME_HEADER)
            .ok_or_else(|| corrupt(path, off as u64, "a frame past its batch"))?;
        let (len, crc) = frame::parse_frame_header(head);
        let body = data
            .get(off + FRAME_HEADER..off + FRAME_HEADER + len as usize)
            .ok_or_else(|| corrupt(path, off as u64, "a frame longer than its batch"))?;
        if crc32c::crc32c(body) != crc {
            return Err(corrupt(
                path,
                off as u64,
                "a frame's checksum does not match",
            ));
        }
        off += FRAME_HEADER + len as usize;
    }
    if off != data.len() {
        return Err(corrupt(
            path,
            off as u64,
            "bytes after a batch's last frame",
        ));
    }
    Ok(())
}

/// A new path beside `dir`.
pub(crate) fn sibling(dir: &Path, what: &str) -> PathBuf {
    let name = files::name_of(dir);
    dir.with_file_name(format!(".{name}.{what}-{}", Uuid::new_v4().simple()))
}

/// Makes `dir` if missing (true), or checks that it is empty (false).
fn prepare_empty(dir: &Path) -> Result<bool> {
    if exists_empty(dir)? {
        return Ok(false);
    }
    files::create_dir(dir)?;
    Ok(true)
}

/// Whether `dir` is an empty directory (false: it does not exist);
/// [`Error::NotEmpty`] if it holds anything.
pub(crate) fn exists_empty(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            Some(_) => Err(Error::NotEmpty {
                dir: dir.to_path_buf(),
            }),
            None => Ok(true),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(at(dir, "list")(e).into()),
    }
}

/// An error unless segment `path`, named for position `first`, starts
/// where the log so far ends (`next`).
pub(crate) fn starts_at(path: &Path, first: u64, next: u64) -> Result<()> {
    if first == next {
        return Ok(());
    }
    let why = format!("the segment starts at {first}, position {next} was expected");
    Err(corrupt(path, 0, why))
}

/// Removes what a failed backup wrote.
fn clean_up(dest: &Path, made: bool) {
    if made {
        let _ = fs::remove_dir_all(dest);
    } else if let Ok(entries) = fs::read_dir(dest) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}
