//! Snapshots kept for time travel, and replay from them.

use super::{Snapshot, View};
use crate::position::Position;
use crate::sync::{Arc, Mutex};

/// The in-memory snapshots of one view: its initial state, then one copy
/// about every `every` events (at the end of the batch that crosses each
/// multiple).
///
/// Bounded: past `keep` copies (besides the initial state), every other
/// copy is dropped, oldest first, and the spacing doubles. The copies then
/// still cover the whole history, so time travel to any position replays
/// at most about two spacings of events, and memory stays at most `keep + 1`
/// states however long the runtime runs.
///
/// Invariant: `list` is sorted by position and starts with position 0.
pub(crate) struct History<V> {
    kept: Mutex<Kept<V>>,
}

struct Kept<V> {
    every: u64,
    keep: usize,
    list: Vec<Arc<Snapshot<V>>>,
}

impl<V> History<V> {
    /// `every == 0` keeps only the initial state; `keep == 0` means no
    /// bound.
    pub(crate) fn new(every: u64, keep: usize, initial: Snapshot<V>) -> History<V> {
        History {
            kept: Mutex::new(Kept {
                every,
                keep,
                list: vec![Arc::new(initial)],
            }),
        }
    }

    /// Whether a snapshot should be kept now that the view reached `position`.
    pub(crate) fn due(&self, position: Position) -> bool {
        let kept = self.lock();
        let last = kept.list.last().map_or(0, |s| s.position.0);
        super::crosses(kept.every, last, position.0)
    }

    pub(crate) fn record(&self, snapshot: Snapshot<V>) {
        let mut kept = self.lock();
        kept.list.push(Arc::new(snapshot));
        if kept.keep > 0 && kept.list.len() - 1 > kept.keep {
            kept.thin();
        }
    }

    /// The newest kept snapshot at or before `position`.
    pub(crate) fn nearest(&self, position: Position) -> Option<Arc<Snapshot<V>>> {
        let kept = self.lock();
        let i = kept.list.partition_point(|s| s.position <= position);
        i.checked_sub(1).map(|i| Arc::clone(&kept.list[i]))
    }

    /// How many snapshots are kept, the initial state included.
    pub(crate) fn len(&self) -> usize {
        self.lock().list.len()
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Kept<V>> {
        self.kept.lock()
    }
}

impl<V> Kept<V> {
    /// Drops every other copy after the initial state, keeping the newest,
    /// and doubles the spacing.
    fn thin(&mut self) {
        let n = self.list.len();
        let mut i = 0;
        self.list.retain(|_| {
            let at = i;
            i += 1;
            // Index 0 is the initial state; of the rest, keep those an even
            // distance from the newest.
            at == 0 || (n - 1 - at).is_multiple_of(2)
        });
        self.every = self.every.saturating_mul(2);
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn at(p: u64) -> Snapshot<u64> {
        Snapshot {
            position: Position(p),
            state: p,
        }
    }

    /// Follows a view publishing one event at a time for `events` events.
    fn follow(history: &History<u64>, events: u64) {
        for p in 1..=events {
            if history.due(Position(p)) {
                history.record(at(p));
            }
        }
    }

    #[test]
    fn the_history_stays_within_its_bound_and_covers_the_whole_log() {
        let history = History::new(10, 8, at(0));
        follow(&history, 100_000);
        assert!(history.len() <= 9, "kept {}", history.len());
        let positions: Vec<u64> = history.lock().list.iter().map(|s| s.position.0).collect();
        assert_eq!(positions[0], 0);
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        // Any position is at most two spacings past its nearest copy.
        let every = history.lock().every;
        for p in (0..=100_000).step_by(997) {
            let base = history.nearest(Position(p)).unwrap().position.0;
            assert!(p - base <= 2 * every, "{p} from {base}, spacing {every}");
        }
        assert!(100_000 - positions.last().unwrap() <= every);
    }

    #[test]
    fn without_a_bound_every_copy_is_kept() {
        let history = History::new(10, 0, at(0));
        follow(&history, 1_000);
        assert_eq!(history.len(), 101);
    }
}
