//! The segment writer: the sequencer stages each accepted append's frames
//! into the batch being built, then commits the batch with one write and
//! (with [`Durability::Fsync`]) one sync.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{Event, Recorded};

use super::config::{DirOptions, Durability, InjectedFault};
use super::files::{self, at};
use super::frame::{self, BATCH_HEADER, SEGMENT_HEADER};
use super::lock::DirLock;

/// Appends batches to the newest segment. Owned by the sequencer.
///
/// Invariants: the file holds exactly `len` bytes of whole batches (after
/// its header) whenever no commit is in progress: a failed write is cut
/// back off before the error is returned. Once a write or sync fails,
/// `failed` is set and every later commit fails too: no later sync is
/// trusted to cover the failed one.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    file: File,
    path: PathBuf,
    len: u64,
    options: DirOptions,
    log_id: Uuid,
    /// The batch being built: a header to fill in, then frames.
    buf: Vec<u8>,
    first: u64,
    count: u32,
    /// Batches committed or attempted, for injected faults.
    batches: u64,
    failed: bool,
    _lock: Arc<DirLock>,
}

impl SegmentWriter {
    /// A writer that appends to the segment at `path`, whose whole batches
    /// end at `len` (recovery has cut anything after).
    pub(crate) fn resume(
        options: &DirOptions,
        log_id: Uuid,
        path: PathBuf,
        len: u64,
        lock: Arc<DirLock>,
    ) -> Result<SegmentWriter> {
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(at(&path, "open"))?;
        file.seek(SeekFrom::Start(len)).map_err(at(&path, "seek"))?;
        Ok(SegmentWriter::new(options, log_id, file, path, len, lock))
    }

    /// A writer on a new segment whose first event will be `first`.
    pub(crate) fn create(
        options: &DirOptions,
        log_id: Uuid,
        first: u64,
        lock: Arc<DirLock>,
    ) -> Result<SegmentWriter> {
        let (file, path) = new_segment(options, log_id, first)?;
        let len = SEGMENT_HEADER as u64;
        Ok(SegmentWriter::new(options, log_id, file, path, len, lock))
    }

    fn new(
        options: &DirOptions,
        log_id: Uuid,
        file: File,
        path: PathBuf,
        len: u64,
        lock: Arc<DirLock>,
    ) -> SegmentWriter {
        SegmentWriter {
            file,
            path,
            len,
            options: options.clone(),
            log_id,
            buf: Vec::new(),
            first: 0,
            count: 0,
            batches: 0,
            failed: false,
            _lock: lock,
        }
    }

    /// Adds one append's records to the batch being built. On error
    /// ([`Error::TooLarge`] for an event above the size limit,
    /// [`Error::Codec`] for one that does not encode) nothing of the append
    /// is staged and the batch is as it was.
    pub(crate) fn stage<E: Event + Serialize>(&mut self, records: &[Recorded<E>]) -> Result<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let count = u32::try_from(records.len())
            .ok()
            .and_then(|n| self.count.checked_add(n))
            .ok_or(Error::TooLarge {
                what: "a batch's event count",
                size: records.len() as u64 + u64::from(self.count),
                max: u64::from(u32::MAX),
            })?;
        if self.count == 0 {
            self.buf.clear();
            self.buf.resize(BATCH_HEADER, 0);
            self.first = first.position.0;
        }
        let mark = self.buf.len();
        for r in records {
            if let Err(e) = frame::encode_frame(&mut self.buf, r, self.options.max_event_bytes) {
                self.buf.truncate(mark);
                return Err(e);
            }
        }
        self.count = count;
        Ok(())
    }

    /// Writes the staged batch and, with [`Durability::Fsync`], syncs it.
    /// On error the batch is cut back off the file (if even that fails, the
    /// error says so: recovery then cuts it if it is incomplete, but a whole
    /// batch whose sync failed may be found again).
    pub(crate) fn commit(&mut self) -> io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let result = if self.failed {
            Err(io::Error::other(
                "an earlier write or sync of the log failed; reopen the runtime",
            ))
        } else {
            frame::fill_batch_header(&mut self.buf, self.first, self.count);
            self.write_staged()
        };
        self.count = 0;
        self.buf.clear();
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn write_staged(&mut self) -> io::Result<()> {
        let header = SEGMENT_HEADER as u64;
        if self.len > header && self.len + self.buf.len() as u64 > self.options.segment_bytes {
            // The segment is complete: make it durable before the next one
            // exists (with `Fsync` it already is), so that a power loss can
            // never leave a short segment followed by another.
            if self.options.durability == Durability::Buffered {
                self.file.sync_data().map_err(at(&self.path, "sync"))?;
            }
            let (file, path) = new_segment(&self.options, self.log_id, self.first)?;
            self.file = file;
            self.path = path;
            self.len = header;
        }
        self.batches += 1;
        match self.write_and_sync() {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                crate::telemetry::storage_written(self.buf.len());
                Ok(())
            }
            Err(e) => Err(self.cut_back(e)),
        }
    }

    fn write_and_sync(&mut self) -> io::Result<()> {
        let fault = self.options.faults.fault.filter(|f| match *f {
            InjectedFault::Write { after, .. } | InjectedFault::Sync { after } => {
                self.batches > after
            }
        });
        if let Some(InjectedFault::Write { written, kind, .. }) = fault {
            let part = &self.buf[..written.min(self.buf.len())];
            self.file.write_all(part).map_err(at(&self.path, "write"))?;
            return Err(at(&self.path, "write")(io::Error::new(
                kind,
                "injected fault",
            )));
        }
        self.file
            .write_all(&self.buf)
            .map_err(at(&self.path, "write"))?;
        if let Some(InjectedFault::Sync { .. }) = fault {
            return Err(at(&self.path, "sync")(io::Error::other("injected fault")));
        }
        if self.options.durability == Durability::Fsync {
            self.file.sync_data().map_err(at(&self.path, "sync"))?;
        }
        Ok(())
    }

    /// Cuts whatever a failed commit wrote back off the file, so that the
    /// failed append has changed nothing on disk either; returns the error
    /// to report.
    fn cut_back(&mut self, error: io::Error) -> io::Error {
        let len = self.len;
        let cut = if self.options.faults.truncate_fails {
            Err(io::Error::other("injected truncate fault"))
        } else {
            self.file
                .set_len(len)
                .and_then(|()| self.file.sync_all())
                .and_then(|()| self.file.seek(SeekFrom::Start(len)).map(drop))
        };
        match cut {
            Ok(()) => error,
            Err(e) => {
                tracing::error!(file = %self.path.display(), offset = len, error = %e,
                    "could not cut a failed batch back off the segment");
                io::Error::new(
                    error.kind(),
                    format!("{error}; cutting the batch back off at offset {len} failed too ({e}), so its events may be found after a restart"),
                )
            }
        }
    }
}

/// Creates the segment whose first event is `first`: header written and
/// synced, directory synced. A half-made file is removed.
fn new_segment(options: &DirOptions, log_id: Uuid, first: u64) -> io::Result<(File, PathBuf)> {
    let path = options.path.join(segment_name(first));
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(at(&path, "create"))?;
    let made = file
        .write_all(&frame::segment_header(first, log_id))
        .and_then(|()| file.sync_all())
        .map_err(at(&path, "write the header of"))
        .and_then(|()| files::sync_dir(&options.path));
    if let Err(e) = made {
        drop(file);
        let _ = files::remove(&path);
        return Err(e);
    }
    Ok((file, path))
}

/// The file name of the segment whose first event is `first`.
pub(crate) fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}
