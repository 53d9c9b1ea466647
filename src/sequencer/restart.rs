//! Restart points: where a process of a shared log with a local directory
//! may start again instead of reading the whole log. One is due when the
//! head crosses a multiple of the views' disk snapshot cadence, after the
//! batch whose publication wrote their snapshots.

use crate::event::Event;
use crate::storage::Start;

use super::Sequencer;

impl<E: Event> Sequencer<E> {
    /// Saves a restart point if one is due now (and one deferred before).
    #[inline]
    pub(super) fn restart_point(&mut self) {
        if self.restart_every == 0 {
            return;
        }
        self.flush_restart();
        if let Some(start) = self.due_restart() {
            self.save_restart(&start);
        }
    }

    /// Notes a restart point due now, to be saved after the batch (the
    /// head's lock is held: other processes wait).
    pub(super) fn defer_restart(&mut self) {
        if self.restart_every == 0 {
            return;
        }
        if let Some(start) = self.due_restart() {
            self.pending_restart = Some(start);
        }
    }

    /// Saves a deferred restart point.
    #[inline]
    pub(super) fn flush_restart(&mut self) {
        if let Some(start) = self.pending_restart.take() {
            self.save_restart(&start);
        }
    }

    /// The restart point at the head, if one is due (counted as made).
    fn due_restart(&mut self) -> Option<Start> {
        let head = self.shared.log.head();
        if !crate::view::crosses(self.restart_every, self.last_restart, head.0) {
            return None;
        }
        let last = self.shared.log.get(head)?;
        self.last_restart = head.0;
        Some(Start {
            first: head.next(),
            before_id: last.id,
            before_time: last.recorded_at,
            versions: self.versions.iter().map(|(s, v)| (s.clone(), *v)).collect(),
        })
    }

    fn save_restart(&mut self, start: &Start) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        if let Err(e) = store.save_restart_point(start) {
            tracing::warn!(error = %e, position = %start.first, "could not save a restart point");
        }
    }
}
