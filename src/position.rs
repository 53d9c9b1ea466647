//! Positions in the global log, stream ids and expected stream versions.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A place in the global log.
///
/// Positions start at 1, are contiguous and are never reused: the event at
/// position `p` is the `p`-th event ever appended. `Position(0)` means "before
/// any event": it is the position of a view's initial state.
///
/// ```
/// use rwlog::Position;
/// assert_eq!(Position(41).next(), Position(42));
/// assert!(Position::ZERO < Position::FIRST);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position(pub u64);

impl Position {
    /// Before the first event: the position of every view's initial state.
    pub const ZERO: Position = Position(0);
    /// The position of the first event ever appended.
    pub const FIRST: Position = Position(1);

    /// The position as a number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The position after this one.
    pub const fn next(self) -> Position {
        Position(self.0 + 1)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Position {
    fn from(p: u64) -> Self {
        Position(p)
    }
}

/// The name of a stream: the events of one entity (an account, a cart).
///
/// Cheap to clone (a shared string). Within a stream, versions start at 1 and
/// are contiguous. Create one once and clone it in hot loops: building a
/// `StreamId` from a `&str` allocates.
///
/// ```
/// use rwlog::StreamId;
/// let s = StreamId::from("acct-1");
/// assert_eq!(s.as_str(), "acct-1");
/// assert_eq!(s, StreamId::from(String::from("acct-1")));
/// ```
#[derive(Clone, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId(Arc<str>);

/// Equal names are equal ids; clones of one id compare by pointer, without
/// reading the names (the sequencer compares each event's stream with its
/// neighbour's).
impl PartialEq for StreamId {
    fn eq(&self, other: &StreamId) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

/// Hashes the name, as `str` does: maps keyed by `StreamId` are looked up by
/// `&str` (see the `Borrow<str>` impl).
impl std::hash::Hash for StreamId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl StreamId {
    /// The stream's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for StreamId {
    fn from(s: &str) -> Self {
        StreamId(Arc::from(s))
    }
}

impl From<String> for StreamId {
    fn from(s: String) -> Self {
        StreamId(Arc::from(s))
    }
}

impl From<&StreamId> for StreamId {
    fn from(s: &StreamId) -> Self {
        s.clone()
    }
}

impl Borrow<str> for StreamId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What an append expects of its stream's current version (optimistic
/// concurrency). A stream that was never written has version 0.
///
/// ```
/// use rwlog::Expected;
/// assert!(Expected::Any.matches(7));
/// assert!(Expected::NoStream.matches(0));
/// assert!(Expected::Exists.matches(1) && !Expected::Exists.matches(0));
/// assert!(Expected::Exact(3).matches(3) && !Expected::Exact(3).matches(4));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Expected {
    /// Append whatever the stream's version.
    #[default]
    Any,
    /// The stream must not exist yet (version 0).
    NoStream,
    /// The stream must have at least one event.
    Exists,
    /// The stream must be exactly at this version.
    Exact(u64),
}

impl Expected {
    /// Whether a stream at version `current` satisfies this expectation.
    pub const fn matches(self, current: u64) -> bool {
        match self {
            Expected::Any => true,
            Expected::NoStream => current == 0,
            Expected::Exists => current > 0,
            Expected::Exact(v) => current == v,
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Any => f.write_str("any version"),
            Expected::NoStream => f.write_str("no stream"),
            Expected::Exists => f.write_str("an existing stream"),
            Expected::Exact(v) => write!(f, "version {v}"),
        }
    }
}
