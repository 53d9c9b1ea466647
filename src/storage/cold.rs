//! Reading stored batches back from the segment files on demand: what a
//! log with a memory window no longer holds in memory. Each segment's batch
//! headers are indexed the first time it is read (28 bytes per batch, read
//! with `pread`), and the last few decoded batches are kept.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::event::{Batch, Event};
use crate::log::Cold;
use crate::sync::Mutex;

use super::files::list_segments;
use super::frame::{self, Damage, BATCH_HEADER, SEGMENT_HEADER};
use super::upcast::Upcasters;

/// How many decoded batches are kept for the next reads.
const CACHED: usize = 8;
/// How many segment files stay open.
const OPEN_FILES: usize = 16;

/// The segment files of a log directory, read batch by batch.
pub(crate) struct SegmentReader<E> {
    root: PathBuf,
    log_id: Uuid,
    upcasters: Arc<Upcasters<E>>,
    state: Mutex<State<E>>,
    failure: Mutex<Option<String>>,
    /// Positions below it were archived.
    floor: std::sync::atomic::AtomicU64,
}

struct State<E> {
    /// By first position.
    segments: Vec<Segment>,
    recent: VecDeque<Batch<E>>,
    /// The starts of the segments whose files are open, least recently
    /// opened first.
    open: VecDeque<u64>,
}

/// One segment file and the batches indexed in it so far.
struct Segment {
    start: u64,
    path: PathBuf,
    file: Option<File>,
    /// (first position, offset of the batch header, events, body bytes).
    batches: Vec<(u64, u64, u32, u64)>,
    /// Where indexing goes on.
    indexed_to: u64,
}

impl<E> SegmentReader<E> {
    pub(crate) fn new(root: &Path, log_id: Uuid, upcasters: Arc<Upcasters<E>>) -> SegmentReader<E> {
        SegmentReader {
            root: root.to_path_buf(),
            log_id,
            upcasters,
            state: Mutex::new(State {
                segments: Vec::new(),
                recent: VecDeque::with_capacity(CACHED),
                open: VecDeque::new(),
            }),
            failure: Mutex::new(None),
            floor: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl<E: Event + DeserializeOwned> Cold<E> for SegmentReader<E> {
    fn batch(&self, position: u64) -> std::result::Result<Batch<E>, String> {
        let mut state = self.state.lock();
        let covers = |b: &Batch<E>| {
            let first = b.first().map_or(u64::MAX, |e| e.position.0);
            (first..first + b.len() as u64).contains(&position)
        };
        if let Some(b) = state.recent.iter().find(|b| covers(b)) {
            return Ok(Arc::clone(b));
        }
        match self.read(&mut state, position) {
            Ok(batch) => {
                if state.recent.len() == CACHED {
                    state.recent.pop_front();
                }
                state.recent.push_back(Arc::clone(&batch));
                Ok(batch)
            }
            Err(why) => {
                // Archived meanwhile (its file moved or deleted): not a
                // failure, the read finds nothing.
                if position < self.floor.load(std::sync::atomic::Ordering::Acquire) {
                    return Err(why);
                }
                tracing::error!(position, error = %why, "reading an event older than the memory window failed");
                *self.failure.lock() = Some(why.clone());
                Err(why)
            }
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    fn release_before(&self, first: u64) {
        self.floor
            .fetch_max(first, std::sync::atomic::Ordering::Release);
        let mut state = self.state.lock();
        // Segments wholly below (the next one starts at or before `first`)
        // are closed; an iterator made before may still read them (from
        // archive/ if they were moved there).
        let starts: Vec<u64> = state.segments.iter().map(|s| s.start).collect();
        let gone = starts.windows(2).take_while(|w| w[1] <= first).count();
        for seg in &mut state.segments[..gone] {
            seg.close();
        }
        let kept = starts.get(gone).copied().unwrap_or(u64::MAX);
        state.open.retain(|start| *start >= kept);
        state
            .recent
            .retain(|b| b.last().is_some_and(|e| e.position.0 >= first));
    }
}

impl<E: Event + DeserializeOwned> SegmentReader<E> {
    /// Reads the stored batch holding `position`.
    fn read(&self, state: &mut State<E>, position: u64) -> std::result::Result<Batch<E>, String> {
        let i = self.segment_of(state, position)?;
        let start = state.segments[i].start;
        if state.segments[i].file.is_none() {
            // Keep few files open: close the least recently opened.
            while state.open.len() >= OPEN_FILES {
                let Some(old) = state.open.pop_front() else {
                    break;
                };
                if let Some(s) = state.segments.iter_mut().find(|s| s.start == old) {
                    s.close();
                }
            }
            state.open.push_back(start);
        }
        let seg = &mut state.segments[i];
        let (first, offset, count, bytes) = seg.locate(position, self.log_id)?;
        let file = seg.open(self.log_id)?;
        let mut body = vec![0u8; bytes as usize];
        let at = offset + BATCH_HEADER as u64;
        file.read_exact_at(&mut body, at)
            .map_err(|e| format!("{}: reading {bytes} bytes at {at}: {e}", seg.path.display()))?;
        let mut batch = Vec::with_capacity(count as usize);
        frame::decode_body(&body, first, u64::from(count), &self.upcasters, &mut batch).map_err(
            |e| {
                let (off, why) = match e {
                    Damage::At(off, why) => (off, why),
                    Damage::Decode(off, e) => (off, e.to_string()),
                };
                format!("{}, offset {}: {why}", seg.path.display(), at + off as u64)
            },
        )?;
        Ok(Arc::new(batch.into()))
    }

    /// The index of the segment holding `position`, listing the directory
    /// again when it is past the segments known.
    fn segment_of(
        &self,
        state: &mut State<E>,
        position: u64,
    ) -> std::result::Result<usize, String> {
        let known = |s: &State<E>| s.segments.iter().rposition(|seg| seg.start <= position);
        let last_start = state.segments.last().map(|s| s.start);
        let beyond = last_start.is_none_or(|start| position >= start);
        if beyond {
            let listed = list_segments(&self.root).map_err(|e| e.to_string())?;
            for (start, path) in listed {
                if !state.segments.iter().any(|s| s.start == start) {
                    state.segments.push(Segment {
                        start,
                        path,
                        file: None,
                        batches: Vec::new(),
                        indexed_to: SEGMENT_HEADER as u64,
                    });
                }
            }
            state.segments.sort_by_key(|s| s.start);
        }
        known(state).ok_or_else(|| format!("no segment holds position {position}"))
    }
}

impl Segment {
    /// Closes the file and forgets its index (rebuilt if read again).
    fn close(&mut self) {
        self.file = None;
        self.batches = Vec::new();
        self.indexed_to = SEGMENT_HEADER as u64;
    }

    /// The file, opened once and its header checked (this log's, starting
    /// where its name says).
    fn open(&mut self, log_id: Uuid) -> std::result::Result<&File, String> {
        if self.file.is_none() {
            let name = self.path.display();
            let file = match File::open(&self.path) {
                Ok(file) => file,
                // Archived meanwhile: moved to archive/ (or deleted).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let moved = self
                        .path
                        .parent()
                        .map(|d| d.join(super::horizon::ARCHIVE_DIR));
                    let moved = moved.map(|d| d.join(super::files::name_of(&self.path)));
                    moved
                        .and_then(|m| File::open(m).ok())
                        .ok_or_else(|| format!("{name}: {e}"))?
                }
                Err(e) => return Err(format!("{name}: {e}")),
            };
            let mut header = [0u8; SEGMENT_HEADER];
            file.read_exact_at(&mut header, 0)
                .map_err(|e| format!("{name}: {e}"))?;
            let parsed = frame::parse_segment_header(&header)
                .map_err(|(off, why)| format!("{name}, offset {off}: {why}"))?;
            if parsed.log_id != log_id || parsed.first != self.start {
                return Err(format!(
                    "{name}: the header names position {} of log {}",
                    parsed.first, parsed.log_id
                ));
            }
            self.file = Some(file);
        }
        self.file.as_ref().ok_or_else(|| "unreachable".to_owned())
    }

    /// The batch holding `position`: indexed batch headers, read on until
    /// one holds it.
    fn locate(
        &mut self,
        position: u64,
        log_id: Uuid,
    ) -> std::result::Result<(u64, u64, u32, u64), String> {
        let holds = |b: &(u64, u64, u32, u64)| (b.0..b.0 + u64::from(b.2)).contains(&position);
        let found = self
            .batches
            .partition_point(|b| b.0 + u64::from(b.2) <= position);
        if let Some(b) = self.batches.get(found).filter(|b| holds(b)) {
            return Ok(*b);
        }
        let path = self.path.clone();
        self.open(log_id)?;
        let Some(file) = self.file.as_ref() else {
            return Err(format!("{}: not open", path.display()));
        };
        let mut header = [0u8; BATCH_HEADER];
        loop {
            let at = self.indexed_to;
            if file.read_exact_at(&mut header, at).is_err() {
                return Err(format!(
                    "{}: no batch holds position {position}",
                    path.display()
                ));
            }
            let b = frame::parse_batch_header(&header).ok_or_else(|| {
                format!("{}, offset {at}: a damaged batch header", path.display())
            })?;
            let entry = (b.first, at, b.count, b.bytes);
            self.batches.push(entry);
            self.indexed_to = at + BATCH_HEADER as u64 + b.bytes;
            if holds(&entry) {
                return Ok(entry);
            }
            if b.first > position {
                return Err(format!(
                    "{}: no batch holds position {position}",
                    path.display()
                ));
            }
        }
    }
}
