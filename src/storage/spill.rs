//! Opening a directory with a memory window: the events read from the
//! segments beyond the window are not kept. What the runtime needs of them
//! is: each stream's positions (its index) and the ids at the positions
//! snapshots and checkpoints claim (to check them).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use uuid::Uuid;

use crate::error::Result;
use crate::event::Recorded;
use crate::position::{Position, StreamId};

use super::{checkpoint, files, snapshot};

/// How many events past the window are read before they go (a chunk's
/// worth of the in-memory log: they go together).
const SLACK: usize = 1 << 14;

/// The events read and let go during an open.
pub(crate) struct Spill {
    window: usize,
    /// How many events were let go.
    pub(crate) dropped: u64,
    /// Each stream's positions among them.
    pub(crate) streams: HashMap<StreamId, Vec<Position>>,
    /// The positions whose ids a snapshot or checkpoint claims.
    wanted: HashSet<u64>,
    ids: HashMap<u64, Uuid>,
}

impl Spill {
    /// A spill keeping `window` events, remembering the ids the files under
    /// `root` claim.
    pub(crate) fn new(root: &Path, window: u64) -> Result<Spill> {
        let mut wanted = HashSet::new();
        for view in files::subdirs(&snapshot::root(root))? {
            wanted.extend(snapshot::list(&view)?.into_iter().map(|(p, _)| p));
        }
        for path in files::list(&checkpoint::root(root))? {
            if let Ok(claim) = (checkpoint::KIND.read)(&path) {
                wanted.insert(claim.position.0);
            }
        }
        Ok(Spill {
            window: usize::try_from(window).unwrap_or(usize::MAX),
            dropped: 0,
            streams: HashMap::new(),
            wanted,
            ids: HashMap::new(),
        })
    }

    /// Lets go of the oldest of `events` once more than a chunk past the
    /// window are held.
    pub(crate) fn take<E>(&mut self, events: &mut Vec<Recorded<E>>) {
        if events.len() <= self.window.saturating_add(SLACK) {
            return;
        }
        let n = events.len() - self.window;
        for e in events.drain(..n) {
            self.streams
                .entry(e.stream.clone())
                .or_default()
                .push(e.position);
            if self.wanted.contains(&e.position.0) {
                self.ids.insert(e.position.0, e.id);
            }
        }
        self.dropped += n as u64;
    }

    /// The id of a let-go event at a claimed position.
    pub(crate) fn id_at(&self, position: Position) -> Option<Uuid> {
        self.ids.get(&position.0).copied()
    }
}
