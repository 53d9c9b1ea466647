//! Reading the segments: every whole batch into events, checked frame by
//! frame, and a plan of what to cut or set aside, made without changing
//! anything.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{Event, Recorded};
use crate::position::Position;

use super::config::{DirOptions, RecoveryMode};
use super::files::{self, at};
use super::frame::{self, BatchHeader, BATCH_HEADER, FRAME_HEADER, SEGMENT_HEADER};
use super::report::{Cut, RecoveryReport};
use super::upcast::Upcasters;

pub(super) fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        file: file.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// How far a segment's valid data goes.
enum End {
    /// Every byte verified.
    Whole(u64),
    /// The last segment ends in a torn write (never acknowledged): whole
    /// batches end at `at`.
    Torn { at: u64, reason: String },
    /// Damage a torn write cannot explain: whole batches end at `at`.
    Damaged { at: u64, error: Error },
}

/// What to change once reading is done and the open is not refused.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// (file, offset, file length, reason, keep the cut bytes).
    pub(super) cuts: Vec<PlannedCut>,
    /// Whole files to set aside, with why.
    aside: Vec<(PathBuf, String)>,
    /// Segments whose creation was interrupted (no events), with their
    /// length: removed.
    remove: Vec<(PathBuf, u64)>,
    /// The segment appends continue in, and where its whole batches end.
    pub(super) tail: Option<(PathBuf, u64)>,
    /// Every segment read and kept, to sync at open (`Fsync` only): what a
    /// killed process left in the page cache becomes durable before any
    /// snapshot or checkpoint claims it was.
    pub(super) kept: Vec<PathBuf>,
    /// A loss the open accepted (set by the caller).
    pub(super) lost: Option<(Position, Position)>,
}

#[derive(Debug)]
pub(super) struct PlannedCut {
    pub(super) file: PathBuf,
    pub(super) offset: u64,
    len: u64,
    reason: String,
    keep: bool,
}

impl Plan {
    /// Makes the planned changes, durably, logging each at `warn`; with
    /// `sync`, syncs every segment kept.
    pub(super) fn apply(&self, root: &Path, sync: bool) -> Result<RecoveryReport> {
        let mut report = RecoveryReport {
            lost: self.lost,
            ..RecoveryReport::default()
        };
        for c in &self.cuts {
            let saved = match c.keep {
                true => Some(files::copy_tail_aside(root, &c.file, c.offset)?),
                false => None,
            };
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&c.file)
                .map_err(at(&c.file, "open"))?;
            file.set_len(c.offset)
                .and_then(|()| file.sync_all())
                .map_err(at(&c.file, "cut"))?;
            let bytes = c.len - c.offset;
            tracing::warn!(file = %c.file.display(), offset = c.offset, bytes, reason = %c.reason, "cut the log");
            report.cuts.push(Cut {
                file: c.file.clone(),
                offset: c.offset,
                bytes,
                reason: c.reason.clone(),
                saved,
            });
        }
        for (path, bytes) in &self.remove {
            files::remove(path)?;
            files::sync_dir(root)?;
            let reason = "a segment whose creation was interrupted (it held no event); removed";
            tracing::warn!(file = %path.display(), offset = 0, bytes, reason, "cut the log");
            report.cuts.push(Cut {
                file: path.clone(),
                offset: 0,
                bytes: *bytes,
                reason: reason.into(),
                saved: None,
            });
        }
        for (path, reason) in &self.aside {
            let to = files::move_aside(root, path)?;
            tracing::warn!(file = %path.display(), aside = %to.display(), %reason, "set aside at open");
            report.set_aside.push((path.clone(), to, reason.clone()));
        }
        for path in self.kept.iter().filter(|_| sync) {
            let file = std::fs::File::open(path).map_err(at(path, "open"))?;
            file.sync_data().map_err(at(path, "sync"))?;
        }
        Ok(report)
    }
}

/// The state of reading the segments.
pub(super) struct Reading<'a, E> {
    pub(super) options: &'a DirOptions,
    pub(super) upcasters: &'a Upcasters<E>,
    pub(super) log_id: Uuid,
    /// The position before the first segment's (0, or the horizon's
    /// `first - 1` for an archived log).
    pub(super) base: u64,
    /// The events of every whole batch read so far (but the ones a memory
    /// window let go into `spill`).
    pub(super) events: Vec<Recorded<E>>,
    pub(super) spill: Option<super::spill::Spill>,
    pub(super) plan: Plan,
}

/// What reading one batch led to.
enum Step {
    /// A whole batch, ending at this offset.
    Next(usize),
    Stop(End),
}

/// Where the run of zeros that ends `data` starts (`data.len()` if it does
/// not end in a zero).
fn trailing_zeros_from(data: &[u8]) -> usize {
    data.len() - data.iter().rev().take_while(|&&b| b == 0).count()
}

/// Where the frame at `at` claims to end, within `batch_end`.
fn claimed_end(data: &[u8], at: usize, batch_end: usize) -> usize {
    let Some(header) = data.get(at..at + FRAME_HEADER) else {
        return batch_end;
    };
    let (len, _) = frame::parse_frame_header(header);
    let end = (at + FRAME_HEADER).saturating_add(len as usize);
    end.min(batch_end)
}

/// Why a batch header was not accepted.
enum Bad {
    /// As a torn write leaves it.
    Torn(String),
    Damaged(String),
}

/// Why a frame was not read.
enum FrameError {
    Damage(String),
    /// Not damage: an error to report as it is (a missing upcaster).
    Fatal(Error),
}

impl<E: Event + DeserializeOwned> Reading<'_, E> {
    /// The position the next event read must hold.
    fn next_position(&self) -> u64 {
        let dropped = self.spill.as_ref().map_or(0, |s| s.dropped);
        self.base + dropped + self.events.len() as u64 + 1
    }

    /// Reads every segment, in order, into `events` (whole batches only),
    /// planning cuts; returns the damage that stops the open, if any.
    pub(super) fn segments(&mut self, segments: &[(u64, PathBuf)]) -> Result<()> {
        let mut stopped = false;
        for (i, (first, path)) in segments.iter().enumerate() {
            if stopped {
                let reason = "after the point recovery stopped at".to_string();
                self.plan.aside.push((path.clone(), reason));
                continue;
            }
            let last = i + 1 == segments.len();
            let end = match self.gap(i, segments) {
                Some(error) => End::Damaged { at: 0, error },
                None => self.read_segment(path, *first, last)?,
            };
            stopped = self.settle(path, end)?;
        }
        Ok(())
    }

    /// The error if segment `i` does not start where the log so far ends.
    fn gap(&self, i: usize, segments: &[(u64, PathBuf)]) -> Option<Error> {
        let (first, path) = &segments[i];
        let expected = self.next_position();
        if *first == expected {
            return None;
        }
        let name = files::name_of(path);
        Some(match (i.checked_sub(1), *first > expected) {
            (Some(_), true) => {
                let (prev, len) = self.plan.tail.clone().unwrap_or((path.clone(), 0));
                corrupt(
                    &prev,
                    len,
                    format!(
                        "the segment ends at position {}, but the next one, {name}, starts at {first}: \
                         positions {expected}..={} are missing",
                        expected - 1,
                        first - 1
                    ),
                )
            }
            (None, true) => corrupt(
                path,
                0,
                format!(
                    "the first segment starts at {first}: positions {expected}..={} are missing",
                    first - 1
                ),
            ),
            (_, false) => corrupt(
                path,
                0,
                format!("the segment starts at {first}, but position {expected} was expected"),
            ),
        })
    }

    /// Plans what a segment's end calls for; returns whether reading stops.
    fn settle(&mut self, path: &Path, end: End) -> Result<bool> {
        let len = std::fs::metadata(path).map_err(at(path, "stat"))?.len();
        match end {
            End::Whole(at) => {
                self.plan.tail = Some((path.to_path_buf(), at));
                self.plan.kept.push(path.to_path_buf());
                Ok(false)
            }
            End::Torn { at, .. } if at < SEGMENT_HEADER as u64 => {
                self.plan.remove.push((path.to_path_buf(), len));
                Ok(false)
            }
            End::Torn { at, reason } => {
                self.plan.cut(path, at, len, reason, false);
                self.plan.kept.push(path.to_path_buf());
                Ok(false)
            }
            End::Damaged { error, .. } if self.options.recovery == RecoveryMode::TornTail => {
                Err(error)
            }
            End::Damaged { at, error } if at < SEGMENT_HEADER as u64 => {
                self.plan
                    .aside
                    .push((path.to_path_buf(), error.to_string()));
                Ok(true)
            }
            End::Damaged { at, error } => {
                self.plan.cut(path, at, len, error.to_string(), true);
                self.plan.kept.push(path.to_path_buf());
                Ok(true)
            }
        }
    }

    /// Reads one segment's whole batches into `events`.
    fn read_segment(&mut self, path: &Path, first: u64, last: bool) -> Result<End> {
        let data = files::read(path)?;
        let expected = frame::segment_header(first, self.log_id);
        if last && frame::is_interrupted_header(&data, &expected) {
            let reason = "a segment whose creation was interrupted".into();
            return Ok(End::Torn { at: 0, reason });
        }
        let damaged = |offset: u64, reason: String| End::Damaged {
            at: 0,
            error: corrupt(path, offset, reason),
        };
        match frame::parse_segment_header(&data) {
            Err((offset, reason)) => return Ok(damaged(offset, reason)),
            Ok(h) if h.first != first => {
                let reason = format!(
                    "the header's first position {} does not match the file name",
                    h.first
                );
                return Ok(damaged(12, reason));
            }
            Ok(h) if h.log_id != self.log_id => {
                let reason = format!(
                    "a segment of another log ({}; this directory's log is {})",
                    h.log_id, self.log_id
                );
                return Ok(damaged(20, reason));
            }
            Ok(_) => {}
        }
        let mut off = SEGMENT_HEADER;
        while off < data.len() {
            match self.read_batch(path, &data, off, last)? {
                Step::Next(end) => off = end,
                Step::Stop(end) => return Ok(end),
            }
        }
        Ok(End::Whole(off as u64))
    }

    /// Reads the batch at `off`: all its events, or none.
    fn read_batch(&mut self, path: &Path, data: &[u8], off: usize, last: bool) -> Result<Step> {
        let torn = |reason: String| {
            Step::Stop(End::Torn {
                at: off as u64,
                reason,
            })
        };
        let damaged = |at: usize, reason: String| {
            Step::Stop(End::Damaged {
                at: off as u64,
                error: corrupt(path, at as u64, reason),
            })
        };
        let header = match self.batch_header(data, off, last) {
            Ok(header) => header,
            Err(Bad::Torn(reason)) => return Ok(torn(reason)),
            Err(Bad::Damaged(reason)) => return Ok(damaged(off, reason)),
        };
        let end = off + BATCH_HEADER + header.bytes as usize;
        let mark = self.events.len();
        match self.read_frames(&data[..end], off + BATCH_HEADER, header.first, header.count) {
            Ok(at) if at == end => {
                if let Some(spill) = self.spill.as_mut() {
                    spill.take(&mut self.events);
                }
                Ok(Step::Next(end))
            }
            Ok(at) => {
                self.events.truncate(mark);
                let reason =
                    format!("the batch's frames end at byte {at}, but its header says {end}");
                Ok(damaged(at, reason))
            }
            Err((_, FrameError::Fatal(e))) => Err(e),
            Err((at, FrameError::Damage(reason))) => {
                self.events.truncate(mark);
                // The file ends in zeros from within this bad frame (or
                // before): a write the file's length covers but whose last
                // pages never arrived. Frames are not page-aligned, so the
                // zeros may start anywhere in the frame.
                let zeros = trailing_zeros_from(data);
                let torn_write = last && zeros < data.len() && zeros <= claimed_end(data, at, end);
                Ok(match torn_write {
                    true => torn(format!(
                        "a final batch that ends in zeros from byte {zeros}"
                    )),
                    false => damaged(at, reason),
                })
            }
        }
    }

    /// The batch header at `off`, checked against the log so far and
    /// against the segment's length.
    fn batch_header(
        &self,
        data: &[u8],
        off: usize,
        last: bool,
    ) -> std::result::Result<BatchHeader, Bad> {
        let rest = &data[off..];
        if rest.len() < BATCH_HEADER {
            return Err(match last {
                true => Bad::Torn("a batch header cut short".into()),
                false => Bad::Damaged(
                    "a batch header cut short, in a segment that is not the last".into(),
                ),
            });
        }
        let Some(header) = frame::parse_batch_header(rest) else {
            // Zeros to the end of the file from within the header: its
            // write never arrived whole.
            let zeros = trailing_zeros_from(data);
            let torn_write = last && zeros < data.len() && zeros <= off + BATCH_HEADER;
            return Err(match torn_write {
                true => Bad::Torn("zeros where a batch should start".into()),
                false => Bad::Damaged("a batch header's checksum does not match".into()),
            });
        };
        let expected = self.next_position();
        if header.first != expected {
            let reason = format!(
                "a batch starts at position {}, but {expected} was expected",
                header.first
            );
            return Err(Bad::Damaged(reason));
        }
        // Each frame is at most a u32 length and its header: the limit on
        // new events (`max_event_bytes`) may have been lowered since.
        let count = u64::from(header.count);
        let most = count.saturating_mul(FRAME_HEADER as u64 + u64::from(u32::MAX));
        if count == 0 || header.bytes < count * FRAME_HEADER as u64 || header.bytes > most {
            let reason = format!(
                "a batch header claims {count} events in {} bytes",
                header.bytes
            );
            return Err(Bad::Damaged(reason));
        }
        let have = (rest.len() - BATCH_HEADER) as u64;
        if header.bytes > have {
            return Err(match last {
                true => Bad::Torn(format!(
                    "an incomplete final batch: {have} of its {} bytes",
                    header.bytes
                )),
                false => Bad::Damaged(
                    "a batch runs past the end of its segment, which is not the last".into(),
                ),
            });
        }
        Ok(header)
    }

    /// Reads `count` frames from `at`, holding positions from `first` on;
    /// returns where they end, or where a bad frame starts and why.
    fn read_frames(
        &mut self,
        data: &[u8],
        mut at: usize,
        first: u64,
        count: u32,
    ) -> std::result::Result<usize, (usize, FrameError)> {
        for k in 0..u64::from(count) {
            at = self.read_frame(data, at, first + k).map_err(|e| (at, e))?;
        }
        Ok(at)
    }

    /// Reads the frame at `at` (which must hold `position` and end within
    /// `data`) into `events`; returns where it ends.
    fn read_frame(&mut self, data: &[u8], at: usize, position: u64) -> Result<usize, FrameError> {
        let damage = |reason: &str| Err(FrameError::Damage(reason.to_owned()));
        if data.len() - at < FRAME_HEADER {
            return damage("a frame header runs past the end of its batch");
        }
        let (len, crc) = frame::parse_frame_header(&data[at..]);
        if len == 0 {
            return damage("an empty frame");
        }
        let end = (at + FRAME_HEADER).saturating_add(len as usize);
        if end > data.len() {
            let reason = format!("a frame length of {len} bytes runs past the end of its batch");
            return Err(FrameError::Damage(reason));
        }
        let body = &data[at + FRAME_HEADER..end];
        if crc32c::crc32c(body) != crc {
            return damage("a frame's checksum does not match");
        }
        let record = match frame::decode_record(body, self.upcasters) {
            Ok(record) => record,
            Err(Error::Codec(reason)) => {
                return Err(FrameError::Damage(format!(
                    "a frame that does not decode: {reason}"
                )))
            }
            Err(other) => return Err(FrameError::Fatal(other)),
        };
        if record.position.0 != position {
            let reason = format!(
                "a frame holds position {}, but {position} was expected",
                record.position
            );
            return Err(FrameError::Damage(reason));
        }
        self.events.push(record);
        Ok(end)
    }
}

impl Plan {
    fn cut(&mut self, file: &Path, offset: u64, len: u64, reason: String, keep: bool) {
        self.cuts.push(PlannedCut {
            file: file.to_path_buf(),
            offset,
            len,
            reason,
            keep,
        });
        self.tail = Some((file.to_path_buf(), offset));
    }
}
