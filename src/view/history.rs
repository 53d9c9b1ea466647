//! Snapshots kept for time travel, and replay from them.

use super::{Snapshot, View};
use crate::position::Position;
use crate::sync::{Arc, Mutex};

/// The in-memory snapshots of one view: its initial state, then one copy
/// about every `every` events (at the end of the batch that crosses each
/// multiple), kept for the runtime's lifetime.
///
/// Invariant: `kept` is sorted by position and starts with position 0.
pub(crate) struct History<V> {
    every: u64,
    kept: Mutex<Vec<Arc<Snapshot<V>>>>,
}

impl<V> History<V> {
    /// `every == 0` keeps only the initial state.
    pub(crate) fn new(every: u64, initial: Snapshot<V>) -> History<V> {
        History {
            every,
            kept: Mutex::new(vec![Arc::new(initial)]),
        }
    }

    /// Whether a snapshot should be kept now that the view reached `position`.
    pub(crate) fn due(&self, position: Position) -> bool {
        if self.every == 0 {
            return false;
        }
        let last = self.lock().last().map_or(0, |s| s.position.0);
        position.0 / self.every > last / self.every
    }

    pub(crate) fn record(&self, snapshot: Snapshot<V>) {
        self.lock().push(Arc::new(snapshot));
    }

    /// The newest kept snapshot at or before `position`.
    pub(crate) fn nearest(&self, position: Position) -> Option<Arc<Snapshot<V>>> {
        let kept = self.lock();
        let i = kept.partition_point(|s| s.position <= position);
        i.checked_sub(1).map(|i| Arc::clone(&kept[i]))
    }

    /// How many snapshots are kept, the initial state included.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Vec<Arc<Snapshot<V>>>> {
        self.kept.lock()
    }
}

/// Folds `events` (which must continue `base`'s position) into a copy of
/// `base`.
pub(crate) fn replay<V, E>(base: &Snapshot<V>, events: crate::log::LogIter<E>) -> Snapshot<V>
where
    V: View<E>,
{
    let mut copy = base.clone();
    events.for_each_ref(|e| {
        debug_assert_eq!(e.position, copy.position.next());
        copy.apply(e);
    });
    copy
}
