//! The one error type of rwlog.

use std::time::SystemTime;

use crate::position::{Expected, Position, StreamId};

/// Everything that can go wrong in rwlog. A call that returns an error has
/// changed nothing: a rejected append is not in the log.
///
/// ```
/// use rwlog::{Error, Event, Expected, Runtime};
///
/// #[derive(Clone)]
/// struct Tick;
/// impl Event for Tick {}
/// #[derive(Clone, Default)]
/// struct Count(u64);
/// impl rwlog::View<Tick> for Count {
///     fn apply(&mut self, _: &rwlog::Recorded<Tick>) { self.0 += 1 }
/// }
///
/// let rt = Runtime::<Tick>::builder().build()?;
/// let w = rt.writer();
/// match w.append_expecting("t", Expected::Exists, [Tick]) {
///     Err(Error::Conflict { actual, .. }) => assert_eq!(actual, 0),
///     other => panic!("{other:?}"),
/// }
/// assert!(matches!(rt.reader::<Count>("nope"), Err(Error::UnknownView { .. })));
/// rt.shutdown()?;
/// assert!(matches!(w.append("t", Tick), Err(Error::Closed)));
/// # Ok::<(), rwlog::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An append's expected version did not match the stream's version.
    #[error("stream `{stream}` is at version {actual}, but the append expected {expected}")]
    Conflict {
        /// The stream appended to.
        stream: StreamId,
        /// What the append expected.
        expected: Expected,
        /// The stream's version when the append was sequenced.
        actual: u64,
    },
    /// The runtime is shut down (or shutting down): nothing more is appended.
    #[error("the runtime is shut down")]
    Closed,
    /// The append queue is full (only from the `try_` variants, which do not
    /// wait for room).
    #[error("the append queue is full")]
    Full,
    /// No view of this name was registered on the builder.
    #[error("no view is named `{name}`")]
    UnknownView {
        /// The name asked for.
        name: String,
    },
    /// The view exists but holds another type than the one asked for.
    #[error("view `{name}` holds a `{actual}`, not a `{requested}`")]
    ViewType {
        /// The view's name.
        name: String,
        /// The type asked for.
        requested: &'static str,
        /// The type the view holds.
        actual: &'static str,
    },
    /// A view's `apply` panicked: the view stopped advancing at `position`.
    /// The log, the writers and the other views go on.
    #[error("view `{name}` failed after position {position}: {message}")]
    ViewFailed {
        /// The view's name.
        name: String,
        /// The last position the view reflects.
        position: Position,
        /// The panic message.
        message: String,
    },
    /// A position outside the log was asked for (positions start at 1 and end
    /// at the head).
    #[error("position {requested} is outside the log, which holds positions 1..={head}")]
    PositionOutOfRange {
        /// The position asked for.
        requested: Position,
        /// The log's head when asked.
        head: Position,
    },
    /// Part of what was asked for is before the log's first position: the
    /// events there were archived (see
    /// [`Runtime::archive_before`](crate::Runtime::archive_before)). Start
    /// at `first_available` or later, or read the archive.
    #[error("{}", archived(*requested, *first_available))]
    Archived {
        /// The position asked for (0 when what was asked for is a stream
        /// version, a view's replay or a projection's catch-up from the
        /// start).
        requested: Position,
        /// The first position the log still holds.
        first_available: Position,
    },
    /// Time travel to a position whose state cannot be rebuilt: the
    /// nearest copy of the view kept is older than the log's first
    /// position, and the events between were archived. Positions from the
    /// oldest copy kept at or after the first position on can be asked for.
    #[error(
        "the view's state at position {requested} cannot be rebuilt: its nearest copy is at position \
         {nearest}, and the log starts at position {first_available} (the events between were archived)"
    )]
    StateArchived {
        /// The position asked for.
        requested: Position,
        /// The position of the nearest copy of the view kept at or before it.
        nearest: Position,
        /// The first position the log still holds.
        first_available: Position,
    },
    /// A time before the first event was asked for.
    #[error("no event was recorded at or before {requested:?}")]
    BeforeFirstEvent {
        /// The time asked for.
        requested: SystemTime,
    },
    /// A bounded wait ran out before the view reached the position.
    #[error("timed out waiting for position {waiting_for}")]
    Timeout {
        /// The position waited for.
        waiting_for: Position,
    },
    /// An append carried no events.
    #[error("an append must carry at least one event")]
    EmptyAppend,
    /// A value was above its configured limit.
    #[error("{what} is {size}, above the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Two views were registered under one name.
    #[error("two views are named `{0}`")]
    DuplicateView(String),
    /// A builder setting is out of range.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// An I/O error (for example, the sequencer thread could not be started).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A file of the durable log or a snapshot is damaged: it was never
    /// trusted, and nothing was skipped silently.
    #[error("corrupt data in {} at byte {offset}: {reason}", file.display())]
    Corrupt {
        /// The damaged file.
        file: std::path::PathBuf,
        /// Where in it the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Another runtime has the log directory open, in this process or in
    /// another: one runtime owns a directory at a time.
    #[error("the log directory {} is in use by another runtime{}", dir.display(), holder_text(*holder))]
    Locked {
        /// The directory.
        dir: std::path::PathBuf,
        /// The process id of the runtime that holds it, if known.
        holder: Option<u32>,
    },
    /// A backup or a restore was pointed at a directory that holds files:
    /// it writes only into a new or empty one.
    #[error("{} is not empty: a backup or restore writes only into a new or empty directory", dir.display())]
    NotEmpty {
        /// The directory.
        dir: std::path::PathBuf,
    },

    /// A projection's handler failed (returned an error or panicked): the
    /// projection stopped there. What a wait for a later position gets.
    #[error("projection `{name}` failed {message}")]
    ProjectionFailed {
        /// The projection.
        name: String,
        /// Where and why, as the projection records it ("at position 3:
        /// no stock").
        message: String,
    },

    /// A line of a JSON-lines import could not be imported: the line's
    /// number (from 1) and why. Nothing from that line on was appended.
    #[error("import, line {line}: {reason}")]
    Import {
        /// The line, counted from 1.
        line: u64,
        /// What was wrong with it.
        reason: String,
    },

    /// An event or state could not be encoded or decoded.
    #[error("codec error: {0}")]
    Codec(String),
    /// The log holds an event of an older schema version and no upcaster is
    /// registered for it.
    #[error("event `{event_type}` at position {position} has schema version {schema_version}, and no upcaster is registered for it")]
    NoUpcaster {
        /// The stored event's type name.
        event_type: String,
        /// Its schema version.
        schema_version: u32,
        /// Its position.
        position: Position,
    },
    /// The shared log's database failed or refused: connecting to it,
    /// authenticating, a statement (a lock wait past `lock_timeout`, for
    /// one), or a connection lost before a batch's commit was sent or whose
    /// batch was found not committed after reconnecting. The message says
    /// what was being done and what the server said. An append that gets
    /// this error is not in the log, and may be retried.
    #[error("postgres: {0}")]
    Postgres(String),
    /// The connection to the shared log's database was lost while an
    /// append's batch was being committed, and could not be re-established
    /// in time to learn whether the commit happened: the append may or may
    /// not be in the log. An append whose first event carries an id (see
    /// [`NewEvent::with_id`](crate::NewEvent::with_id)) can be retried
    /// safely: if the first attempt was committed, the retry is
    /// acknowledged with its position instead of being written twice.
    #[error("the append's outcome is unknown: {0}")]
    OutcomeUnknown(String),
    /// The shared log's schema in the database is of a version this rwlog
    /// does not read (created by a newer rwlog, or not rwlog's).
    #[error("schema `{schema}` holds rwlog's tables at version {found}, and this rwlog reads version {supported}")]
    SchemaMismatch {
        /// The database schema.
        schema: String,
        /// The version found there.
        found: i32,
        /// The version this rwlog reads and writes.
        supported: i32,
    },
    /// A migration's legacy store failed (see [`migrate`](crate::migrate)):
    /// it could not apply the event at `position`, which is in the log (the
    /// failure is counted in the migration's stats), or it could not be
    /// read (`position` is then the last event it holds).
    #[error("the legacy store failed at position {position}: {message}")]
    Legacy {
        /// The event's position.
        position: Position,
        /// What the legacy store said.
        message: String,
    },
    /// A migration's cut-over could not complete (a view or projection
    /// failed, or did not reach the head in time) and was rolled back: the
    /// legacy state is written and read again, and holds every event.
    #[error("the cut-over was abandoned and rolled back: {reason}")]
    CutOverAbandoned {
        /// Why, and whether the rollback failed too.
        reason: String,
    },
    /// The sequencer panicked, on a writer's thread or its own (a bug in
    /// rwlog: please report it). Every later append gets this error.
    #[error("the sequencer panicked: {0}")]
    SequencerPanicked(String),
}

fn holder_text(holder: Option<u32>) -> String {
    holder.map_or_else(String::new, |pid| format!(" (process {pid})"))
}

/// `Result<T, rwlog::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message of [`Error::Archived`].
fn archived(requested: Position, first_available: Position) -> String {
    match requested {
        Position::ZERO => {
            format!("what was asked for was archived: the log starts at position {first_available}")
        }
        p => format!("position {p} was archived: the log starts at position {first_available}"),
    }
}
