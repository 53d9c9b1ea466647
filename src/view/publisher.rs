//! The publishing half of a view, owned by the sequencer: the spare-copy
//! pool and the swap.

use std::collections::VecDeque;
use std::time::Duration;

use crate::event::{Batch, Timestamp};
use crate::faults::Faults;
use crate::position::Position;
use crate::sync::{self, Arc, Ordering};
use crate::telemetry;

use super::{DiskSnapshots, Snapshot, View, ViewDriver, ViewState};

/// How many times to look for a free spare before yielding, then before
/// cloning.
const SPINS: u32 = sync::budget(64);
const YIELDS: u32 = sync::budget(64);

/// The most events an older spare may fall behind the published copy. While
/// the newest spare is free (no reader holds it) the older ones are never
/// taken, and every batch they missed is kept to catch them up: without a
/// bound, that list grows for as long as the runtime runs, and the first
/// publication that does take such a spare replays all of it. Past this
/// lag the spare is dropped instead; should all spares be held later, the
/// pool grows again by a clone.
const MAX_LAG: u64 = 1 << 16;

/// The publishing half of a view: owned by the sequencer thread.
///
/// Invariant: every spare's position is a batch boundary at or below the
/// published position, every spare but the newest is at most [`MAX_LAG`]
/// events behind it, and `recent` holds every batch published after the
/// oldest spare's position, in order.
pub(crate) struct Publisher<V, E> {
    shared: Arc<ViewState<V>>,
    /// Retired copies readers may still hold, oldest first; empty after a
    /// failure.
    spares: Vec<Arc<Snapshot<V>>>,
    /// The batches the spares missed.
    recent: VecDeque<Batch<E>>,
    /// The most spares kept: a reader preempted while holding one copy then
    /// costs nothing as long as another is free.
    max_spares: usize,
    faults: Faults,
    disk: Option<DiskSnapshots<V>>,
    /// When the oldest event the view has not applied was recorded: set
    /// once it failed (for the lag metric).
    behind_since: Option<Timestamp>,
    /// A lag of zero has been reported (it is reported once, not per batch).
    caught_up: bool,
}

impl<V: View<E>, E> Publisher<V, E> {
    pub(crate) fn new(
        shared: Arc<ViewState<V>>,
        max_spares: usize,
        faults: Faults,
        disk: Option<DiskSnapshots<V>>,
    ) -> Publisher<V, E> {
        let spare = Arc::new(Snapshot::clone(&shared.current.load()));
        Publisher {
            shared,
            spares: vec![spare],
            recent: VecDeque::new(),
            max_spares: max_spares.max(1),
            faults,
            disk,
            behind_since: None,
            caught_up: false,
        }
    }

    /// The view's lag for metrics: zero once while it follows the log;
    /// after a failure, how far the log has run past it.
    fn report_lag(&mut self, batch: &Batch<E>) {
        if !telemetry::ENABLED {
            return;
        }
        let name = &self.shared.name;
        match self.behind_since {
            None if !self.caught_up => {
                self.caught_up = true;
                telemetry::view_lag(name, 0, Duration::ZERO);
            }
            None => {}
            Some(since) => {
                let head = batch.last().map_or(0, |e| e.position.0);
                let at = self.shared.current.load().position.0;
                let age = Timestamp::now().as_nanos().saturating_sub(since.as_nanos());
                telemetry::view_lag(name, head.saturating_sub(at), Duration::from_nanos(age));
            }
        }
    }

    /// Brings a copy up to `batch`: a free spare (newest first, it has the
    /// least to catch up), else, after a bounded wait, a clone of the
    /// published copy.
    fn advance(&mut self, batch: &Batch<E>) -> Arc<Snapshot<V>> {
        if let Some(mut spare) = self.take_free_spare() {
            if let Some(copy) = Arc::get_mut(&mut spare) {
                let behind = copy.position;
                // `recent` is in position order: skip what the copy has.
                let from = self
                    .recent
                    .partition_point(|b| b.last().is_none_or(|e| e.position <= behind));
                let missed = self.recent.range(from..);
                for e in missed.flat_map(|b| b.iter()).chain(batch.iter()) {
                    copy.apply(e);
                }
                return spare;
            }
        }
        self.shared.clones.fetch_add(1, Ordering::Relaxed);
        let mut copy = Snapshot::clone(&self.shared.current.load());
        for e in batch.iter() {
            copy.apply(e);
        }
        Arc::new(copy)
    }

    /// Removes and returns a spare no reader holds. The newest spare is
    /// worth a few spins (it is one batch behind; readers hold a copy for
    /// nanoseconds unless preempted); then any free spare, newest first;
    /// while the pool may still grow, give up there (the caller clones and
    /// the pool gains a copy); once it is full, keep looking for the whole
    /// bounded budget.
    fn take_free_spare(&mut self) -> Option<Arc<Snapshot<V>>> {
        let newest = self.spares.len().checked_sub(1)?;
        for _ in 0..SPINS {
            if Arc::get_mut(&mut self.spares[newest]).is_some() {
                return self.spares.pop();
            }
            sync::spin_loop();
        }
        let patience = if self.spares.len() < self.max_spares {
            1
        } else {
            YIELDS
        };
        for _ in 0..patience {
            // A copy `swap` returned is an owned `Arc`: while any reader's
            // guard still borrows it, it is not uniquely held (or arc-swap's
            // safe API would hand out `&mut` to a value being read, which is
            // unsound), so `get_mut` succeeds only once no reader has it.
            if let Some(free) = (0..self.spares.len())
                .rev()
                .find(|&k| Arc::get_mut(&mut self.spares[k]).is_some())
            {
                return Some(self.spares.remove(free));
            }
            sync::yield_now();
        }
        None
    }

    /// Under the `torn_publish` fault, the published state with only the
    /// first half of `batch` applied, tagged with the batch's last position.
    fn torn(&self, batch: &Batch<E>) -> Option<Arc<Snapshot<V>>> {
        if !self.faults.torn_publish() || batch.len() < 2 {
            return None;
        }
        let mut torn = Snapshot::clone(&self.shared.current.load());
        for e in &batch[..batch.len() / 2] {
            torn.apply(e);
        }
        torn.position = batch.last()?.position;
        Some(Arc::new(torn))
    }

    /// Takes the copy just replaced as a spare and forgets what no spare
    /// needs any more.
    fn retire(&mut self, old: Arc<Snapshot<V>>, batch: &Batch<E>) {
        self.spares.push(old);
        if self.spares.len() > self.max_spares {
            // The oldest is held by a reader: let it go with them.
            self.spares.remove(0);
        }
        // Let go of older spares that fell more than `MAX_LAG` behind (the
        // newest, just retired, is one batch behind and always stays).
        let published = batch.last().map_or(0, |e| e.position.0);
        if let Some(newest) = self.spares.pop() {
            self.spares
                .retain(|s| published.saturating_sub(s.position.0) <= MAX_LAG);
            self.spares.push(newest);
        }
        self.recent.push_back(Arc::clone(batch));
        let oldest = self
            .spares
            .iter()
            .map(|s| s.position)
            .min()
            .unwrap_or(Position::ZERO);
        while self
            .recent
            .front()
            .is_some_and(|b| b.last().is_none_or(|e| e.position <= oldest))
        {
            self.recent.pop_front();
        }
    }

    /// Writes `snapshot` to disk if one is due there. The batch is already
    /// durable; a snapshot that fails to write costs only replay time on
    /// reopen, and the next one is tried at the next multiple.
    fn persist(&mut self, snapshot: &Snapshot<V>, batch: &Batch<E>) {
        let (Some(disk), Some(last)) = (&mut self.disk, batch.last()) else {
            return;
        };
        if !disk.due(snapshot.position) {
            return;
        }
        disk.last = snapshot.position.0;
        if let Err(e) = (disk.write)(snapshot, last.id) {
            tracing::warn!(view = %self.shared.name, error = %e, "could not write a snapshot");
        }
    }

    /// A view's `apply` panicked on `batch`: the copy being built is torn,
    /// so it is dropped; the published copy still holds the last good
    /// state, and the view advances no more.
    fn failed(&mut self, batch: &Batch<E>, payload: &(dyn std::any::Any + Send)) {
        self.spares.clear();
        self.recent.clear();
        let message = sync::panic_message(payload);
        let stays_at = self.shared.current.load().position;
        let first = batch.first().map_or(0, |e| e.position.0);
        let last = batch.last().map_or(0, |e| e.position.0);
        tracing::error!(
            view = %self.shared.name,
            %message,
            batch = %format_args!("{first}..={last}"),
            %stays_at,
            "a view's apply panicked: the view stays at its last good snapshot and advances no more (the log, the writers and the other views go on)"
        );
        let _ = self.shared.failure.set(message);
        self.behind_since = batch.first().map(|e| e.recorded_at);
        self.report_lag(batch);
    }
}

impl<V: View<E>, E: Send + Sync + 'static> ViewDriver<E> for Publisher<V, E> {
    fn on_disk(&self) -> Option<crate::position::Position> {
        self.disk
            .as_ref()
            .map(|d| crate::position::Position(d.last))
    }

    fn publish(&mut self, batch: &Batch<E>) {
        if batch.is_empty() {
            return;
        }
        if self.shared.failure.get().is_some() {
            self.report_lag(batch);
            return;
        }
        let outcome = sync::catch_unwind(|| {
            let next = self.advance(batch);
            let to_memory = self.shared.history.due(next.position);
            let to_disk = self.disk.as_ref().is_some_and(|d| d.due(next.position));
            let kept = (to_memory || to_disk).then(|| (*next).clone());
            (next, kept, to_memory)
        });
        match outcome {
            Ok((next, kept, to_memory)) => {
                let old = match self.torn(batch) {
                    // The broken variant: a half-applied state is visible,
                    // tagged with the batch's final position.
                    Some(torn) => {
                        let old = self.shared.current.swap(torn);
                        drop(self.shared.current.swap(next));
                        old
                    }
                    None => self.shared.current.swap(next),
                };
                self.retire(old, batch);
                self.report_lag(batch);
                if let Some(snapshot) = kept {
                    self.persist(&snapshot, batch);
                    if to_memory {
                        self.shared.history.record(snapshot);
                    }
                }
            }
            Err(payload) => self.failed(batch, &*payload),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::event::Recorded;
    use crate::view::HistoryBound;

    #[derive(Clone, Default)]
    struct Sum(u64);

    impl View<u64> for Sum {
        fn apply(&mut self, e: &Recorded<u64>) {
            self.0 += e.payload;
        }
    }

    fn batch(from: u64, n: u64) -> Batch<u64> {
        Arc::new(
            (from..from + n)
                .map(|p| Recorded::for_test(p, "s", p, p))
                .collect(),
        )
    }

    #[test]
    fn an_unused_spare_does_not_make_the_publisher_keep_every_batch() {
        let shared = ViewState::new(
            Arc::from("sum"),
            Sum::default(),
            HistoryBound { every: 0, keep: 0 },
        );
        let mut publisher: Publisher<Sum, u64> =
            Publisher::new(Arc::clone(&shared), 2, Faults::default(), None);
        let mut next = 1;
        publisher.publish(&batch(next, 1));
        next += 1;
        // A reader holds the published copy over two publications: the pool
        // grows to two spares by a clone.
        let held = shared.current.load_full();
        for _ in 0..2 {
            publisher.publish(&batch(next, 1));
            next += 1;
        }
        drop(held);
        assert_eq!(
            (
                publisher.spares.len(),
                shared.clones.load(Ordering::Relaxed)
            ),
            (2, 1)
        );
        // From here no reader holds a copy: the newest spare is always free,
        // so the older one is never taken to catch up.
        for _ in 0..200_000 {
            publisher.publish(&batch(next, 1));
            next += 1;
        }
        let expected: u64 = (1..next).sum();
        assert_eq!(shared.current.load().0, expected);
        let kept: usize = publisher.recent.iter().map(|b| b.len()).sum();
        assert!(
            kept <= MAX_LAG as usize,
            "{kept} events kept for a stale spare"
        );
        // Readers holding copies again: every publication is still exact.
        for _ in 0..3 {
            let held = shared.current.load_full();
            for _ in 0..3 {
                publisher.publish(&batch(next, 3));
                next += 3;
                assert_eq!(shared.current.load().0, (1..next).sum::<u64>());
            }
            drop(held);
        }
    }

    /// A cold source whose every read fails.
    #[cfg(feature = "durable")]
    struct Unreadable;

    #[cfg(feature = "durable")]
    impl crate::log::Cold<u64> for Unreadable {
        fn batch(&self, p: u64) -> std::result::Result<Batch<u64>, String> {
            Err(format!("position {p}: the disk is gone"))
        }
        fn failure(&self) -> Option<String> {
            Some("the disk is gone".into())
        }
        fn release_before(&self, _: u64) {}
    }

    /// A view rebuilt at open through reads below a memory window that
    /// fail is failed, never left at a state that lacks events.
    #[cfg(feature = "durable")]
    #[test]
    fn a_view_whose_rebuild_cannot_read_every_event_is_failed() {
        use crate::faults::Faults;
        use crate::log::Log;
        use crate::position::Position;
        let log: Log<u64> = Log::new(Faults::default()).hold_from(
            Position(11),
            1_000,
            Arc::new(Unreadable),
            vec![("s".into(), (1..=10).map(Position).collect())],
        );
        log.append(&batch(11, 10));
        let view = ViewState::new(
            Arc::from("sum"),
            Sum::default(),
            HistoryBound { every: 0, keep: 0 },
        );
        view.recover(None, &log);
        assert_eq!(view.current.load().position, Position::ZERO);
        let why = view.failure.get().expect("the view failed");
        assert!(
            why.contains("could not be read") && why.contains("disk is gone"),
            "{why}"
        );
    }
}
