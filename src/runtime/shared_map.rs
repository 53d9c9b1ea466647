//! `SharedMap`: a `RwLock<HashMap<K, V>>` replaced in one line, with
//! rwlog's reads, history and durability underneath.

use std::collections::HashMap;
use std::hash::Hash;

use crate::error::Result;
use crate::read::{Reader, SnapshotRef};
use crate::view::{Map, MapEvent};
use crate::write::{Appended, Writer};

use super::{Builder, Runtime};

/// The view's name in a [`SharedMap`]'s runtime.
const VIEW: &str = "map";

/// A shared map: what a `RwLock<HashMap<K, V>>` does, with lock-free reads
/// of consistent snapshots, writers that never wait for readers, and every
/// change kept as an event.
///
/// ```
/// // Before: let cache = RwLock::new(HashMap::new());
/// let cache = rwlog::SharedMap::<String, u64>::new()?;
/// cache.insert("a".into(), 1)?;                  // cache.write().unwrap().insert(..)
/// assert_eq!(cache.read().get("a"), Some(&1));   // cache.read().unwrap().get(..)
/// cache.remove("a".into())?;
/// assert!(cache.read().is_empty());
/// // What a lock cannot: the map as it was after the first write.
/// let then = cache.runtime().view_at::<rwlog::Map<String, u64>>("map", rwlog::Position(1))?;
/// assert_eq!(then.get("a"), Some(&1));
/// # Ok::<(), rwlog::Error>(())
/// ```
///
/// Every write is one event on one stream (`"map"`) and is acknowledged
/// once the map shows it, so a read after a write on any thread sees it.
/// Clones share one map.
pub struct SharedMap<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    rt: Runtime<MapEvent<K, V>>,
    reader: Reader<Map<K, V>>,
    writer: Writer<MapEvent<K, V>>,
}

impl<K, V> Clone for SharedMap<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn clone(&self) -> Self {
        SharedMap {
            rt: self.rt.clone(),
            reader: self.reader.clone(),
            writer: self.writer.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for SharedMap<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMap")
            .field("position", &self.reader.latest().position())
            .field("len", &self.reader.latest().len())
            .finish()
    }
}

impl<K, V> SharedMap<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An empty map, in memory.
    pub fn new() -> Result<Self> {
        Self::with(Runtime::builder(), HashMap::new())
    }

    /// A map starting from `initial`, on a runtime configured by `builder`
    /// (storage, sequencing, other views); the map's view is named `"map"`.
    ///
    /// Errors: those of [`Builder::build`].
    pub fn with(builder: Builder<MapEvent<K, V>>, initial: HashMap<K, V>) -> Result<Self> {
        let rt = builder.view(VIEW, Map::from_map(initial)).build()?;
        let reader = rt.reader::<Map<K, V>>(VIEW)?;
        let writer = rt.writer();
        Ok(SharedMap { rt, reader, writer })
    }

    /// Sets `key` to `value`; returns once the map shows it.
    ///
    /// Errors: the append's; [`Error::ViewFailed`](crate::Error::ViewFailed)
    /// if the map's view has failed (a `Clone` or `Hash` of yours
    /// panicked): the event is in the log, but the map will not show it.
    pub fn insert(&self, key: K, value: V) -> Result<Appended> {
        self.shown(self.writer.append(VIEW, MapEvent::Set(key, value)))
    }

    /// Removes `key`; returns once the map shows it. Errors: as
    /// [`insert`](SharedMap::insert).
    pub fn remove(&self, key: K) -> Result<Appended> {
        self.shown(self.writer.append(VIEW, MapEvent::Remove(key)))
    }

    /// An acknowledged append, unless the map can no longer show it.
    fn shown(&self, appended: Result<Appended>) -> Result<Appended> {
        let appended = appended?;
        match self.reader.failure() {
            Some(failed) => Err(failed),
            None => Ok(appended),
        }
    }

    /// The newest snapshot of the map: derefs to a `HashMap<K, V>`. One
    /// atomic load; hold it briefly (see [`SnapshotRef`]).
    pub fn read(&self) -> SnapshotRef<Map<K, V>> {
        self.reader.latest()
    }

    /// A clone of `key`'s value now.
    pub fn get(&self, key: &K) -> Option<V> {
        self.reader.latest().get(key).cloned()
    }

    /// The runtime underneath: history, time travel, subscriptions, stats.
    pub fn runtime(&self) -> &Runtime<MapEvent<K, V>> {
        &self.rt
    }

    /// A reader of the map, for the other consistency levels.
    pub fn reader(&self) -> &Reader<Map<K, V>> {
        &self.reader
    }

    /// A writer of the map's events, for atomic batches and `submit`.
    pub fn writer(&self) -> &Writer<MapEvent<K, V>> {
        &self.writer
    }
}
