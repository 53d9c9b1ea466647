//! Idempotent appends: the acknowledgements of recent appends that carried
//! an id, so a retried append is acknowledged again, not written twice.

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

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
