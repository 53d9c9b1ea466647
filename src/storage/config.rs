//! How a durable log is configured: [`Storage`], [`Durability`],
//! [`RecoveryMode`], and the fault hooks the crash tests use.

use std::io;
use std::path::PathBuf;

use super::frame::SEGMENT_HEADER;

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

/// What recovery does with damage it finds when a directory is opened
/// (after RocksDB's WAL recovery modes).
///
/// Whatever the mode, recovery keeps whole batches only (an append is never
/// recovered in part), logs every cut at `warn` with the file, offset and
/// byte count, and lists it in [`Runtime::recovery`](crate::Runtime::recovery).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryMode {
    /// Cut only a torn tail: an incomplete final batch at the end of the
    /// last segment (a write a crash interrupted, never acknowledged), or
    /// zeros where it should be. Anything else (a bad checksum, a gap, a
    /// segment of another log) is [`Error::Corrupt`](crate::Error::Corrupt)
    /// naming the file and offset, and so is a log that ends before a
    /// position a snapshot or checkpoint proves was durably acknowledged.
    /// Nothing in the directory is changed when the open is refused. The
    /// default.
    #[default]
    TornTail,
    /// Keep the longest undamaged prefix of the log: stop at the first
    /// damage, move everything after it (the rest of that segment and every
    /// later one) to `<dir>/aside/`, and accept a proven loss. For opening a
    /// log that [`TornTail`](RecoveryMode::TornTail) refused, once the loss
    /// is understood; the report says what was dropped.
    PointInTime,
}

/// Where the log lives; see [`Builder::storage`](crate::Builder::storage).
///
/// ```
/// use rwlog::{Durability, RecoveryMode, Storage};
/// let s = Storage::dir("data")
///     .durability(Durability::Fsync)
///     .segment_bytes(64 << 20)
///     .recovery(RecoveryMode::TornTail);
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
    pub(crate) max_event_bytes: u32,
    pub(crate) recovery: RecoveryMode,
    pub(crate) faults: Faults,
}

/// A failure the segment writer simulates, for crash and fault tests. Not
/// an API: hidden from the docs, and only consulted on the write path.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedFault {
    /// Every batch after the first `after` stores only its first `written`
    /// bytes, and then the write fails with `kind`
    /// (`io::ErrorKind::StorageFull` plays a full disk).
    Write {
        /// Batches written normally first.
        after: u64,
        /// Bytes of the failing batch that reach the file.
        written: usize,
        /// The error the write returns.
        kind: io::ErrorKind,
    },
    /// Every batch after the first `after` is written whole, and then the
    /// sync fails.
    Sync {
        /// Batches written normally first.
        after: u64,
    },
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Faults {
    pub(crate) fault: Option<InjectedFault>,
    /// Cutting a failed batch back off the file fails too.
    pub(crate) truncate_fails: bool,
}

impl Storage {
    /// The log in memory only (the default): lost when the process ends.
    pub fn memory() -> Storage {
        Storage { dir: None }
    }

    /// The log in segment files under `path` (created if missing), with
    /// [`Durability::Fsync`], 64 MiB segments, events of at most 16 MiB
    /// encoded, and [`RecoveryMode::TornTail`].
    ///
    /// One runtime owns a directory at a time: opening it while another
    /// runtime (in this process or another) has it open fails with
    /// [`Error::Locked`](crate::Error::Locked).
    pub fn dir(path: impl Into<PathBuf>) -> Storage {
        Storage {
            dir: Some(DirOptions {
                path: path.into(),
                durability: Durability::Fsync,
                segment_bytes: 64 << 20,
                max_event_bytes: 16 << 20,
                recovery: RecoveryMode::TornTail,
                faults: Faults::default(),
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut DirOptions)) -> Storage {
        if let Some(d) = &mut self.dir {
            f(d);
        }
        self
    }

    /// Sets the durability of a directory log.
    pub fn durability(self, durability: Durability) -> Storage {
        self.with(|d| d.durability = durability)
    }

    /// Starts a new segment once one would exceed this many bytes (a batch
    /// is never split across segments, so a segment holds at least one).
    pub fn segment_bytes(self, bytes: u64) -> Storage {
        self.with(|d| d.segment_bytes = bytes.max(SEGMENT_HEADER as u64 + 1))
    }

    /// The largest event accepted, encoded (its record head, metadata and
    /// payload; default 16 MiB). A larger event is refused with
    /// [`Error::TooLarge`](crate::Error::TooLarge) before it enters a batch,
    /// failing only its own append. Reading is not limited by it (so it can
    /// be lowered for a log that holds larger events): a frame must fit in
    /// its batch, and its batch in its file.
    pub fn max_event_bytes(self, bytes: u32) -> Storage {
        self.with(|d| d.max_event_bytes = bytes.max(1))
    }

    /// What recovery does with damage; see [`RecoveryMode`].
    pub fn recovery(self, mode: RecoveryMode) -> Storage {
        self.with(|d| d.recovery = mode)
    }

    /// Fault injection for tests: the segment writer fails as described.
    #[doc(hidden)]
    pub fn inject_fault(self, fault: InjectedFault) -> Storage {
        self.with(|d| d.faults.fault = Some(fault))
    }

    /// Fault injection for tests: after an injected fault, cutting the
    /// failed batch back off the file fails too.
    #[doc(hidden)]
    pub fn inject_truncate_failure(self) -> Storage {
        self.with(|d| d.faults.truncate_fails = true)
    }
}
