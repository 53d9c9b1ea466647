//! Where the log reads what it no longer holds in memory: the older events
//! of a durable log with a memory window are read back from its segment
//! files on demand.

use crate::event::Batch;

/// A source of the events before the ones the log holds in memory.
pub(crate) trait Cold<E>: Send + Sync {
    /// The stored batch holding `position` (one the log once held, at or
    /// above its first readable position). An error names what failed (a
    /// file and offset); the read then finds nothing.
    fn batch(&self, position: u64) -> std::result::Result<Batch<E>, String>;

    /// The last read failure, if any read failed.
    fn failure(&self) -> Option<String>;

    /// The log's positions below `first` were archived: let go of what
    /// reading them needed (open files, indexes), and do not count a read
    /// below it that fails (its file was moved or deleted) as a failure.
    fn release_before(&self, first: u64);
}
