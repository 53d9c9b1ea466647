//! A ready-made keyed view: a `HashMap<K, V>` fed by set and remove events,
//! for replacing a `RwLock<HashMap<K, V>>` without writing an event type
//! or a view.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::event::{Event, Recorded};
use crate::view::View;

/// An event of a [`Map`]: a key set to a value, or removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapEvent<K, V> {
    /// `key` now maps to `value`.
    Set(K, V),
    /// `key` maps to nothing.
    Remove(K),
}

impl<K, V> Event for MapEvent<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn event_type(&self) -> &'static str {
        match self {
            MapEvent::Set(..) => "Set",
            MapEvent::Remove(_) => "Remove",
        }
    }
}

/// A keyed view: the `HashMap<K, V>` that [`MapEvent`]s build. Derefs to
/// the map, so a snapshot reads like one: `snapshot.get(&key)`.
///
/// ```
/// use rwlog::{Map, MapEvent, Runtime};
///
/// let rt = Runtime::<MapEvent<String, u64>>::builder()
///     .view("prices", Map::<String, u64>::default())
///     .build()?;
/// let w = rt.writer();
/// w.append("prices", MapEvent::Set("tea".into(), 3))?;
/// let ack = w.append("prices", MapEvent::Set("cake".into(), 5))?;
/// let prices = rt.reader::<Map<String, u64>>("prices")?;
/// assert_eq!(prices.at_least(ack.position)?.get("cake"), Some(&5));
/// # Ok::<(), rwlog::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Map<K, V>(HashMap<K, V>);

impl<K: Hash + Eq, V: PartialEq> PartialEq for Map<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Hash + Eq, V: Eq> Eq for Map<K, V> {}

impl<K, V> Default for Map<K, V> {
    fn default() -> Self {
        Map(HashMap::new())
    }
}

impl<K, V> Map<K, V> {
    /// The map this view starts from (its keys and values are there before
    /// the first event).
    pub fn from_map(map: HashMap<K, V>) -> Map<K, V> {
        Map(map)
    }

    /// The map itself.
    pub fn into_inner(self) -> HashMap<K, V> {
        self.0
    }
}

impl<K: Hash + Eq, V> Map<K, V> {
    /// The value of `key`, if any (also reachable through `Deref`).
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(key)
    }
}

impl<K, V> Deref for Map<K, V> {
    type Target = HashMap<K, V>;

    fn deref(&self) -> &HashMap<K, V> {
        &self.0
    }
}

impl<K, V> View<MapEvent<K, V>> for Map<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn apply(&mut self, e: &Recorded<MapEvent<K, V>>) {
        match e.payload() {
            MapEvent::Set(k, v) => {
                self.0.insert(k.clone(), v.clone());
            }
            MapEvent::Remove(k) => {
                self.0.remove(k);
            }
        }
    }
}
