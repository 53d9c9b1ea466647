//! Where projections keep their checkpoints: in the runtime, or in files
//! of the log's directory.

use std::io;

use uuid::Uuid;

use crate::error::Result;
use crate::log::Log;
use crate::position::Position;
#[cfg(feature = "durable")]
use crate::storage::{CheckpointFiles, LogFacts};
use crate::sync::Mutex;

/// Where checkpoints are kept.
#[derive(Debug)]
pub(crate) enum Checkpoints {
    /// In the runtime: a projection restarted under the same name resumes.
    Memory(Mutex<std::collections::HashMap<String, Position>>),
    /// In `<log dir>/projections/<name>.checkpoint`: survives restarts.
    #[cfg(feature = "durable")]
    Dir(CheckpointFiles),
}

impl Checkpoints {
    /// Where projection `name` resumes after: its checkpoint if it has one
    /// that fits the log, else the start.
    #[cfg_attr(not(feature = "durable"), allow(unused_variables))]
    pub(super) fn load<E>(&self, name: &str, log: &Log<E>) -> Result<Position> {
        match self {
            Checkpoints::Memory(map) => {
                let map = map.lock();
                Ok(map.get(name).copied().unwrap_or(Position::ZERO))
            }
            #[cfg(feature = "durable")]
            Checkpoints::Dir(files) => {
                let id_at = |p: Position| log.id_at(p);
                let facts = LogFacts {
                    log_id: files.log_id(),
                    head: log.head(),
                    first: log.first(),
                    id_at: &id_at,
                };
                Ok(files.load(name, &facts)?.unwrap_or(Position::ZERO))
            }
        }
        .and_then(|from| resumable(from, log.first()))
    }

    #[cfg_attr(not(feature = "durable"), allow(unused_variables))]
    pub(super) fn save(&self, name: &str, position: Position, event_id: Uuid) -> io::Result<()> {
        match self {
            Checkpoints::Memory(map) => {
                map.lock().insert(name.to_owned(), position);
                Ok(())
            }
            #[cfg(feature = "durable")]
            Checkpoints::Dir(files) => files.save(name, position, event_id),
        }
    }
}

/// A projection resumes after `from`: refused if the events after it were
/// archived.
fn resumable(from: Position, first: Position) -> Result<Position> {
    match from.next() < first {
        true => Err(crate::error::Error::Archived {
            requested: from.next(),
            first_available: first,
        }),
        false => Ok(from),
    }
}
