//! Idempotent appends: the acknowledgements of recent appends that carried
//! an id, so a retried append is acknowledged again, not written twice.

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

use crate::position::Position;
use crate::write::Appended;

/// The acknowledgements of recent appends whose first event carried an id
/// from the writer, so that a retried append is acknowledged again instead
/// of written twice.
///
/// Invariant: `acks` holds exactly the ids in `order`, at most `window`.
pub(crate) struct Dedupe {
    window: usize,
    acks: HashMap<Uuid, Appended, foldhash::fast::RandomState>,
    order: VecDeque<Uuid>,
}

impl Dedupe {
    /// Remembers the ids of the newest `window` events of a recovered log,
    /// one event at a time (the grouping of events into appends is not
    /// stored).
    pub(crate) fn remember_recent<E>(&mut self, log: &crate::log::Log<E>) {
        let remembered_from = log.head().0.saturating_sub(self.window as u64);
        let mut remembered = remembered_from;
        for e in log.read_all(Position(remembered_from + 1)..) {
            remembered = e.position.0;
            let ack = Appended {
                position: e.position,
                version: e.version,
                count: 1,
            };
            self.insert(e.id, ack);
        }
        if remembered < log.head().0 && remembered >= log.first().0 {
            // A read from disk failed (a memory window): retries of the ids
            // not read are not recognized.
            tracing::error!(from = remembered + 1, error = ?log.read_failure(), "the newest event ids could not all be read back");
        }
    }

    /// Remembers at most `window` appends (0: none).
    pub(crate) fn new(window: usize) -> Dedupe {
        Dedupe {
            window,
            acks: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn get(&self, id: &Uuid) -> Option<Appended> {
        self.acks.get(id).copied()
    }

    pub(crate) fn insert(&mut self, id: Uuid, ack: Appended) {
        if self.window == 0 || self.acks.insert(id, ack).is_some() {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.window {
            if let Some(old) = self.order.pop_front() {
                self.acks.remove(&old);
            }
        }
    }

    /// Forgets `id` if it is the newest remembered (the ids of a refused
    /// batch are forgotten newest first).
    pub(crate) fn forget_newest(&mut self, id: &Uuid) {
        if self.order.back() == Some(id) {
            self.order.pop_back();
            self.acks.remove(id);
        }
    }
}
