//! How a durable log is configured: [`Storage`], [`Durability`],
//! [`RecoveryMode`], and the fault hooks the crash tests use.

#[cfg(feature = "durable")]
use std::io;
#[cfg(feature = "durable")]
use std::path::PathBuf;
#[cfg(feature = "postgres")]
use std::time::Duration;

#[cfg(feature = "durable")]
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
    pub(crate) engine: Engine,
}

/// Which engine holds the log.
#[derive(Clone, Debug)]
pub(crate) enum Engine {
    Memory,
    #[cfg(feature = "durable")]
    Dir(DirOptions),
    #[cfg(feature = "postgres")]
    Postgres(PgOptions),
}

#[cfg(feature = "durable")]
#[derive(Clone, Debug)]
pub(crate) struct DirOptions {
    pub(crate) path: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) segment_bytes: u64,
    pub(crate) max_event_bytes: u32,
    pub(crate) recovery: RecoveryMode,
    pub(crate) faults: Faults,
    /// Keep about this many of the newest events in memory (None: all).
    pub(crate) window: Option<u64>,
}

/// A failure the segment writer simulates, for crash and fault tests. Not
/// an API: hidden from the docs, and only consulted on the write path.
#[cfg(feature = "durable")]
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

#[cfg(feature = "durable")]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Faults {
    pub(crate) fault: Option<InjectedFault>,
    /// Cutting a failed batch back off the file fails too.
    pub(crate) truncate_fails: bool,
}

impl Storage {
    /// Whether this is a log directory.
    pub(crate) fn is_dir(&self) -> bool {
        #[cfg(feature = "durable")]
        if let Engine::Dir(_) = self.engine {
            return true;
        }
        false
    }

    /// The log in memory only (the default): lost when the process ends.
    pub fn memory() -> Storage {
        Storage {
            engine: Engine::Memory,
        }
    }

    /// The largest event accepted, encoded (its record head, metadata and
    /// payload; default 16 MiB). A larger event is refused with
    /// [`Error::TooLarge`](crate::Error::TooLarge) before it enters a batch,
    /// failing only its own append. Reading is not limited by it (so it can
    /// be lowered for a log that holds larger events): a frame must fit in
    /// its batch, and its batch in its file.
    #[cfg_attr(not(feature = "durable"), allow(unused_variables))]
    pub fn max_event_bytes(mut self, bytes: u32) -> Storage {
        match &mut self.engine {
            Engine::Memory => {}
            #[cfg(feature = "durable")]
            Engine::Dir(d) => d.max_event_bytes = bytes.max(1),
            #[cfg(feature = "postgres")]
            Engine::Postgres(p) => p.max_event_bytes = bytes.max(1),
        }
        self
    }
}

#[cfg(feature = "durable")]
impl Storage {
    /// The log in segment files under `path` (created if missing), with
    /// [`Durability::Fsync`], 64 MiB segments, events of at most 16 MiB
    /// encoded, and [`RecoveryMode::TornTail`].
    ///
    /// One runtime owns a directory at a time: opening it while another
    /// runtime (in this process or another) has it open fails with
    /// [`Error::Locked`](crate::Error::Locked).
    pub fn dir(path: impl Into<PathBuf>) -> Storage {
        Storage {
            engine: Engine::Dir(DirOptions {
                path: path.into(),
                durability: Durability::Fsync,
                segment_bytes: 64 << 20,
                max_event_bytes: 16 << 20,
                recovery: RecoveryMode::TornTail,
                faults: Faults::default(),
                window: None,
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut DirOptions)) -> Storage {
        if let Engine::Dir(d) = &mut self.engine {
            f(d);
        }
        self
    }

    /// Sets the durability of a directory log (a shared log's is the
    /// database server's: an append is acknowledged once committed).
    pub fn durability(self, durability: Durability) -> Storage {
        self.with(|d| d.durability = durability)
    }

    /// Starts a new segment of a directory log once one would exceed this many bytes (a batch
    /// is never split across segments, so a segment holds at least one).
    pub fn segment_bytes(self, bytes: u64) -> Storage {
        self.with(|d| d.segment_bytes = bytes.max(SEGMENT_HEADER as u64 + 1))
    }

    /// Keeps about the newest `events` events of a directory log in memory
    /// (they go 16,384 at a time) and reads older ones from the segment
    /// files when asked: log and stream reads, subscriptions, time travel,
    /// projections and views catching up read across the boundary with the
    /// same results, only slower below it (a read of one stored batch,
    /// decoded, per batch; a few are cached). Opening the directory keeps
    /// no more than the window either. Without it (the default) the whole
    /// log stays in memory. The stream index (8 bytes per event) and each
    /// stream's version stay whole.
    ///
    /// A read below the window that fails (the disk) finds nothing: see
    /// [`Log::read_failure`](crate::Log::read_failure).
    ///
    /// ```
    /// use rwlog::{Event, Position, Runtime, Storage};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Debug, Serialize, Deserialize)]
    /// struct Tick(u64);
    /// impl Event for Tick {}
    ///
    /// let dir = tempfile::tempdir()?;
    /// let rt = Runtime::<Tick>::builder()
    ///     .storage(Storage::dir(dir.path()).memory_window(1_000))
    ///     .build()?;
    /// let w = rt.writer();
    /// for chunk in 0..40 {
    ///     w.append_batch("clock", (0..1_000).map(|i| Tick(chunk * 1_000 + i)))?;
    /// }
    /// let log = rt.log();
    /// // The oldest events are no longer in memory, and still read.
    /// assert!(log.in_memory_from() > Position(20_000));
    /// assert_eq!(log.get(Position(1)).unwrap().payload().0, 0);
    /// assert_eq!(log.read_all(..).count(), 40_000);
    /// assert_eq!(log.read_stream("clock", 1).count(), 40_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn memory_window(self, events: u64) -> Storage {
        self.with(|d| d.window = Some(events.max(1)))
    }

    /// What recovery of a directory log does with damage; see
    /// [`RecoveryMode`].
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

/// A shared log's settings; see [`Storage::postgres`].
#[cfg(feature = "postgres")]
#[derive(Clone)]
pub(crate) struct PgOptions {
    pub(crate) url: String,
    pub(crate) schema: String,
    pub(crate) lock_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) reconnect_within: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) max_event_bytes: u32,
    /// This process's own directory: persisted views' snapshots, projection
    /// checkpoints and the restart point.
    pub(crate) local: Option<PathBuf>,
}

#[cfg(feature = "postgres")]
impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redacted(&self.url))
            .field("schema", &self.schema)
            .field("lock_timeout", &self.lock_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_within", &self.reconnect_within)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

/// The URL without its password, for messages and logs.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn redacted(url: &str) -> String {
    let mut out = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    // `password=…` in a key-value string or a URL's query.
    let mut from = 0;
    while let Some(i) = out[from..].find("password=") {
        let start = from + i + "password=".len();
        let end = out[start..]
            .find(|c: char| c.is_whitespace() || c == '&')
            .map_or(out.len(), |e| start + e);
        out.replace_range(start..end, "***");
        from = start + 3;
    }
    out
}

#[cfg(feature = "postgres")]
impl Storage {
    /// The log in PostgreSQL, shared by every process (and runtime) opened
    /// on the same database and schema. `url` is a libpq-style connection
    /// string (`postgres://user:password@host:5432/database`, or
    /// `host=… user=… dbname=…`); the tables live in schema `rwlog` (see
    /// [`schema`](Storage::schema)), created on first use.
    ///
    /// Each runtime keeps its own in-memory copy of the log and its own
    /// views, adopting other processes' appends in the global order. An
    /// append is acknowledged once committed and shown by the local views.
    /// [`Reader::strong`](crate::Reader::strong) asks the database for its
    /// head, so it sees every append acknowledged in any process before it
    /// was called; [`Reader::at_least`](crate::Reader::at_least) accepts a
    /// position acknowledged in another process.
    ///
    /// Errors from `build`: [`Error::Postgres`](crate::Error::Postgres) if the server cannot be
    /// reached or refuses (authentication, permissions), with its message;
    /// [`Error::SchemaMismatch`](crate::Error::SchemaMismatch) if the schema holds tables of another
    /// version; [`Error::Config`](crate::Error::Config) for a schema name that is not plain.
    ///
    /// Only with the `postgres` feature.
    ///
    /// ```no_run
    /// use rwlog::{Event, Runtime, Storage};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Serialize, Deserialize)]
    /// struct Deposited(u64);
    /// impl Event for Deposited {}
    ///
    /// let rt = Runtime::<Deposited>::builder()
    ///     .storage(Storage::postgres("postgres://postgres@127.0.0.1:5432/test").schema("bank"))
    ///     .build()?;
    /// rt.writer().append("account-1", Deposited(10))?;
    /// # Ok::<(), rwlog::Error>(())
    /// ```
    pub fn postgres(url: impl Into<String>) -> Storage {
        Storage {
            engine: Engine::Postgres(PgOptions {
                url: url.into(),
                schema: "rwlog".into(),
                lock_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(10),
                connect_timeout: Duration::from_secs(5),
                reconnect_within: Duration::from_secs(30),
                poll_interval: Duration::from_millis(250),
                max_event_bytes: 16 << 20,
                local: None,
            }),
        }
    }

    fn with_pg(mut self, f: impl FnOnce(&mut PgOptions)) -> Storage {
        if let Engine::Postgres(p) = &mut self.engine {
            f(p);
        }
        self
    }

    /// The database schema holding a shared log's tables (default `rwlog`):
    /// several logs can share one database. Lower-case letters, digits and
    /// `_`, not starting with a digit or `pg_` (PostgreSQL keeps those), at most
    /// 48 characters.
    pub fn schema(self, schema: impl Into<String>) -> Storage {
        self.with_pg(|p| p.schema = schema.into())
    }

    /// How long an append waits for another process's transaction to let
    /// go of the log's head before it fails with [`Error::Postgres`](crate::Error::Postgres)
    /// (default 5 s). The database also ends a session left idle inside a
    /// transaction for twice this long, so a stalled process cannot hold
    /// the head for ever.
    pub fn lock_timeout(self, timeout: Duration) -> Storage {
        self.with_pg(|p| {
            p.lock_timeout = timeout;
            p.idle_timeout = timeout.saturating_mul(2);
        })
    }

    /// How long a lost connection is retried before an append fails
    /// (default 30 s): [`Error::Postgres`](crate::Error::Postgres) if the append was certainly not
    /// committed, [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown) if the connection was lost
    /// while committing and the database could not be asked again.
    pub fn reconnect_within(self, within: Duration) -> Storage {
        self.with_pg(|p| p.reconnect_within = within)
    }

    /// How often the tailer reads the head when no notification came
    /// (default 250 ms): the longest another process's append takes to
    /// show here if a notification is lost.
    pub fn poll_interval(self, every: Duration) -> Storage {
        self.with_pg(|p| p.poll_interval = every.max(Duration::from_millis(1)))
    }

    /// A directory of this process's own (one process per directory: it
    /// is locked while open) for a shared log: the snapshots of
    /// [persisted views](crate::Builder::persisted_view), projection
    /// checkpoints, and a restart point (every stream's version) written
    /// with the snapshots. A process that finds them there starts from them
    /// and reads only the tail of the shared log, instead of the whole log
    /// and a fold of every view from the start. It reads the whole log when
    /// it cannot: a view that is not persisted, or has no intact snapshot
    /// at or after the restart point. The local log then starts at the
    /// restart point: reads before it give
    /// [`Error::Archived`](crate::Error::Archived).
    ///
    /// Errors from `build`: [`Error::Corrupt`](crate::Error::Corrupt) if
    /// the directory belongs to another log; [`Error::Locked`](crate::Error::Locked)
    /// if another process has it open.
    pub fn local_dir(self, dir: impl Into<PathBuf>) -> Storage {
        let dir = dir.into();
        self.with_pg(|p| p.local = Some(dir))
    }
}

/// What becomes of segments below the horizon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ArchiveMode {
    /// Moved into the log directory's `archive/` subdirectory (the
    /// default): out of the log, still on disk for whoever wants them.
    #[default]
    Move,
    /// Deleted.
    Delete,
}

/// How much of a durable log to keep: older whole segments are archived
/// (see [`Builder::retain`](crate::Builder::retain) and
/// [`Runtime::archive_before`](crate::Runtime::archive_before)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Keep at least the newest this many events.
    Events(u64),
    /// Keep at least the events recorded within this long of now.
    Age(std::time::Duration),
    /// Keep at least the events from this position on.
    From(crate::position::Position),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redacted("postgres://me:secret@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(redacted("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(redacted("host=db user=me"), "host=db user=me");
        assert_eq!(
            redacted("host=db password=hunter2 user=me"),
            "host=db password=*** user=me"
        );
        assert_eq!(
            redacted("postgres://db/x?password=a&sslmode=disable"),
            "postgres://db/x?password=***&sslmode=disable"
        );
    }
}
