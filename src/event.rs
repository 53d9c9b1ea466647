//! Events as appended by writers and as recorded in the log.

mod ids;
mod time;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::position::{Position, StreamId};
use crate::sync::Arc;

pub(crate) use ids::Ids;

/// A type whose values are appended to an rwlog log.
///
/// Usually an enum of everything that can happen in the domain. The defaults
/// are enough for most types: `impl Event for MyEvent {}`. Override
/// [`event_type`](Event::event_type) to let readers filter by kind of event
/// ([`Log::read_by_type`](crate::Log::read_by_type)), and raise
/// [`SCHEMA_VERSION`](Event::SCHEMA_VERSION) when the type's shape changes.
///
/// ```
/// use rwlog::Event;
///
/// enum Account { Opened, Deposited(u64) }
///
/// impl Event for Account {
///     fn event_type(&self) -> &'static str {
///         match self {
///             Account::Opened => "Opened",
///             Account::Deposited(_) => "Deposited",
///         }
///     }
/// }
/// assert_eq!(Account::Deposited(5).event_type(), "Deposited");
/// assert_eq!(<Account as Event>::SCHEMA_VERSION, 1);
/// ```
pub trait Event: Send + Sync + 'static {
    /// The version of this type's shape, stored with every event.
    const SCHEMA_VERSION: u32 = 1;

    /// The kind of this event, as used by type filters. Defaults to the Rust
    /// type's name, the same for every value.
    fn event_type(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// A point in time as stamped by the sequencer: nanoseconds since the Unix
/// epoch.
///
/// The sequencer never stamps a later event with an earlier time than an
/// earlier one, so timestamps are non-decreasing along the log even if the
/// system clock steps back.
///
/// ```
/// use rwlog::Timestamp;
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = Timestamp::from_system_time(UNIX_EPOCH + Duration::from_secs(2));
/// assert_eq!(t.as_nanos(), 2_000_000_000);
/// assert_eq!(t.to_system_time(), UNIX_EPOCH + Duration::from_secs(2));
/// // Shown as RFC 3339 in UTC, in Debug and Display alike:
/// assert_eq!(format!("{t:?}"), "1970-01-01T00:00:02.000000000Z");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The current system time (clamped to the Unix epoch if the clock is
    /// before it, and to `u64::MAX` nanoseconds, in the year 2554).
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// Converts a system time, clamping it into the representable range.
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let nanos = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Timestamp(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Builds a timestamp from nanoseconds since the Unix epoch.
    pub const fn from_nanos(nanos: u64) -> Timestamp {
        Timestamp(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.0)
    }
}

/// Data about an event that is not its payload: why and by whom it was
/// written.
///
/// ```
/// use rwlog::{Metadata, Uuid};
/// let cause = Uuid::now_v7();
/// let m = Metadata::new().causation(cause).with("tenant", "acme");
/// assert_eq!(m.causation_id, Some(cause));
/// assert_eq!(m.get("tenant"), Some("acme"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    /// The id shared by every event of one business transaction.
    pub correlation_id: Option<Uuid>,
    /// The id of the command or event that caused this one.
    pub causation_id: Option<Uuid>,
    /// Who wrote the event; set from [`Runtime::writer_named`](crate::Runtime::writer_named)
    /// when the append does not say.
    pub writer_id: Option<String>,
    /// Free key/value pairs, in the order they were added.
    pub extra: Vec<(String, String)>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Sets the correlation id.
    pub fn correlation(mut self, id: Uuid) -> Metadata {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    pub fn causation(mut self, id: Uuid) -> Metadata {
        self.causation_id = Some(id);
        self
    }

    /// Sets the writer id.
    pub fn writer(mut self, id: impl Into<String>) -> Metadata {
        self.writer_id = Some(id.into());
        self
    }

    /// Adds a free key/value pair.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Metadata {
        self.extra.push((key.into(), value.into()));
        self
    }

    /// The first value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.correlation_id.is_none()
            && self.causation_id.is_none()
            && self.writer_id.is_none()
            && self.extra.is_empty()
    }
}

/// What `Recorded::metadata` returns for an event written without any.
static NO_METADATA: Metadata = Metadata {
    correlation_id: None,
    causation_id: None,
    writer_id: None,
    extra: Vec::new(),
};

/// Metadata as stored: boxed, and absent when empty, so that events without
/// any (the common case) stay small in the log and the queue.
pub(crate) type StoredMetadata = Option<Box<Metadata>>;

pub(crate) fn store_metadata(m: Metadata) -> StoredMetadata {
    (!m.is_empty()).then(|| Box::new(m))
}

/// An event on its way into the log: the payload plus optional metadata and
/// id. Anything that is an `E` converts into a `NewEvent<E>`, so appends
/// accept plain payloads.
///
/// ```
/// use rwlog::{Metadata, NewEvent};
/// let e = NewEvent::new("deposit 5").metadata(Metadata::new().with("by", "teller-3"));
/// assert_eq!(*e.payload(), "deposit 5");
/// let plain: NewEvent<&str> = "withdraw 2".into();
/// assert!(plain.id().is_none());
/// ```
#[derive(Clone, Debug)]
pub struct NewEvent<E> {
    pub(crate) payload: E,
    pub(crate) metadata: StoredMetadata,
    pub(crate) id: Option<Uuid>,
}

impl<E> NewEvent<E> {
    /// An event with no metadata; the sequencer gives it a v7 id.
    pub fn new(payload: E) -> NewEvent<E> {
        NewEvent {
            payload,
            metadata: None,
            id: None,
        }
    }

    /// Sets the metadata.
    pub fn metadata(mut self, metadata: Metadata) -> NewEvent<E> {
        self.metadata = store_metadata(metadata);
        self
    }

    /// The id given with [`with_id`](NewEvent::with_id), if any.
    pub fn id(&self) -> Option<Uuid> {
        self.id
    }

    /// Gives the event this id instead of a fresh v7 one.
    pub fn with_id(mut self, id: Uuid) -> NewEvent<E> {
        self.id = Some(id);
        self
    }

    /// The payload.
    pub fn payload(&self) -> &E {
        &self.payload
    }
}

impl<E> From<E> for NewEvent<E> {
    fn from(payload: E) -> Self {
        NewEvent::new(payload)
    }
}

/// An event as recorded in the log: the payload and everything the
/// sequencer stamped on it.
///
/// Invariant: `position` and `version` were assigned by the sequencer and
/// never change; `recorded_at` is non-decreasing along the log.
///
/// ```
/// use rwlog::{Event, Metadata, NewEvent, Position, Runtime};
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct Opened;
/// impl Event for Opened {}
///
/// let rt = Runtime::<Opened>::builder().build()?;
/// rt.writer_named("teller-1").append("acct-9", NewEvent::new(Opened).metadata(Metadata::new().with("why", "demo")))?;
/// let e = rt.log().get(Position(1)).unwrap();
/// assert_eq!((e.position(), e.stream().as_str(), e.version()), (Position(1), "acct-9", 1));
/// assert_eq!(e.payload(), &Opened);
/// assert_eq!(e.metadata().writer_id.as_deref(), Some("teller-1"));
/// assert_eq!(e.metadata().get("why"), Some("demo"));
/// assert_eq!(e.id().get_version_num(), 7);
/// # Ok::<(), rwlog::Error>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct Recorded<E> {
    pub(crate) position: Position,
    pub(crate) stream: StreamId,
    pub(crate) version: u64,
    pub(crate) id: Uuid,
    pub(crate) recorded_at: Timestamp,
    pub(crate) schema_version: u32,
    pub(crate) metadata: StoredMetadata,
    pub(crate) payload: E,
}

impl<E> Recorded<E> {
    /// The event's global position (from 1, contiguous).
    pub fn position(&self) -> Position {
        self.position
    }

    /// The stream the event belongs to.
    pub fn stream(&self) -> &StreamId {
        &self.stream
    }

    /// The event's version within its stream (from 1, contiguous).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The event's unique id (a UUID v7 unless the writer supplied one).
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// When the sequencer recorded the event.
    pub fn recorded_at(&self) -> Timestamp {
        self.recorded_at
    }

    /// The schema version of the payload's type when it was written.
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    /// The event's metadata.
    pub fn metadata(&self) -> &Metadata {
        self.metadata.as_deref().unwrap_or(&NO_METADATA)
    }

    /// The event itself.
    pub fn payload(&self) -> &E {
        &self.payload
    }
}

#[cfg(test)]
impl<E> Recorded<E> {
    /// A record as the sequencer would make one, for unit tests: recorded
    /// at `position * 10` ns, with a nil id and no metadata.
    pub(crate) fn for_test(position: u64, stream: &str, version: u64, payload: E) -> Recorded<E> {
        Recorded {
            position: Position(position),
            stream: StreamId::from(stream),
            version,
            id: Uuid::nil(),
            recorded_at: Timestamp::from_nanos(position * 10),
            schema_version: 1,
            metadata: None,
            payload,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Recorded<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Recorded");
        d.field("position", &self.position.0)
            .field("stream", &self.stream)
            .field("version", &self.version)
            .field("id", &self.id)
            .field("recorded_at", &self.recorded_at);
        if let Some(m) = &self.metadata {
            d.field("metadata", m);
        }
        d.field("payload", &self.payload).finish()
    }
}

/// A batch of events as the sequencer appended it, stored whole and shared
/// as it is rather than copied.
pub(crate) type Batch<E> = Arc<BatchEvents<E>>;

/// A batch's events: one, inline (an acknowledged append sequenced alone,
/// the common case: one allocation per batch, not two), or the sequencer's
/// own vector.
pub(crate) enum BatchEvents<E> {
    One(Recorded<E>),
    Many(Vec<Recorded<E>>),
}

impl<E> BatchEvents<E> {
    /// The batch of `records`: inline if it is one event (the vector stays
    /// with the caller, for reuse), else the vector itself.
    pub(crate) fn take(records: &mut Vec<Recorded<E>>) -> BatchEvents<E> {
        if records.len() == 1 {
            if let Some(one) = records.pop() {
                return BatchEvents::One(one);
            }
        }
        BatchEvents::Many(std::mem::take(records))
    }
}

impl<E> From<Vec<Recorded<E>>> for BatchEvents<E> {
    fn from(records: Vec<Recorded<E>>) -> BatchEvents<E> {
        BatchEvents::Many(records)
    }
}

impl<E> FromIterator<Recorded<E>> for BatchEvents<E> {
    fn from_iter<I: IntoIterator<Item = Recorded<E>>>(records: I) -> BatchEvents<E> {
        BatchEvents::Many(records.into_iter().collect())
    }
}

impl<E> std::ops::Deref for BatchEvents<E> {
    type Target = [Recorded<E>];

    fn deref(&self) -> &[Recorded<E>] {
        match self {
            BatchEvents::One(one) => std::slice::from_ref(one),
            BatchEvents::Many(many) => many,
        }
    }
}

/// A recorded event as the log hands it out (from [`Log`](crate::Log),
/// subscriptions and their iterators): a shared handle that derefs to
/// [`Recorded`]. Cloning it costs one reference count.
///
/// The sequencer stores each batch of events whole, in one vector; an
/// `EventRef` keeps its batch alive, as the log does anyway.
///
/// ```
/// use rwlog::{Event, EventRef, Position, Recorded, Runtime};
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct Note(&'static str);
/// impl Event for Note {}
///
/// let rt = Runtime::<Note>::builder().build()?;
/// rt.writer().append_batch("s", [Note("a"), Note("b")])?;
/// let e: EventRef<Note> = rt.log().get(Position(2)).unwrap();
/// assert_eq!((e.position(), e.payload()), (Position(2), &Note("b"))); // deref
/// let owned: Recorded<Note> = e.get().clone();
/// assert_eq!(owned.version(), 2);
/// # Ok::<(), rwlog::Error>(())
/// ```
pub struct EventRef<E> {
    batch: Batch<E>,
    index: usize,
}

impl<E> EventRef<E> {
    /// The event at `position` of `batch`, if the batch holds it.
    pub(crate) fn new(batch: Batch<E>, position: u64) -> Option<EventRef<E>> {
        let first = batch.first()?.position.0;
        let index = usize::try_from(position.checked_sub(first)?).ok()?;
        (index < batch.len()).then_some(EventRef { batch, index })
    }

    /// The event at `index` of `batch`, which must hold it.
    pub(crate) fn at(batch: Batch<E>, index: usize) -> EventRef<E> {
        debug_assert!(index < batch.len());
        EventRef { batch, index }
    }

    /// The recorded event (what deref gives too).
    pub fn get(&self) -> &Recorded<E> {
        // In bounds: `new` checked it, and the batch never changes.
        &self.batch[self.index]
    }
}

impl<E> std::ops::Deref for EventRef<E> {
    type Target = Recorded<E>;

    fn deref(&self) -> &Recorded<E> {
        self.get()
    }
}

impl<E> AsRef<Recorded<E>> for EventRef<E> {
    fn as_ref(&self) -> &Recorded<E> {
        self.get()
    }
}

impl<E> Clone for EventRef<E> {
    fn clone(&self) -> EventRef<E> {
        EventRef {
            batch: Arc::clone(&self.batch),
            index: self.index,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for EventRef<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

impl<E: Serialize> Serialize for EventRef<E> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}
