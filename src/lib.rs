//! An event-sourced answer to the reader-writer problem.
//!
//! # Motivation
//!
//! `RwLock<State>` makes readers and writers take turns: a writer waits for
//! every reader to leave, readers queue behind a waiting writer, and every
//! read writes the lock's shared counter, so reads on many cores fight over
//! one cache line. And once a write is done, the old state is gone.
//!
//! rwlog replaces the lock with a log. Writers never take a lock: they queue
//! *events* for the sequencer, which gives each its global position,
//! appends it to the log and folds it into *views*. The sequencer is a role:
//! a writer that finds nobody sequencing does it itself, for everyone's
//! queued events ([`Sequencing`]). Readers never take a
//! lock either: they load an immutable [`Snapshot`] of a view, tagged with
//! the position it reflects, in one atomic load that writes no shared cache
//! line. Every change is kept, so any past state can be rebuilt.
//!
//! # What is in the crate
//!
//! - [`Runtime`] and its [`Builder`]: the log, the views, the sequencer
//!   (a role writers take, and a thread; see [`Sequencing`]).
//! - [`Writer`]: `append` (waits for the acknowledgement), `append_expecting`
//!   (optimistic concurrency with [`Expected`]), `append_batch` (atomic),
//!   `submit` (returns a [`Ticket`]), `try_append`, `append_async`.
//! - [`View`]: your state and how an event changes it. [`Reader`] loads it at
//!   a consistency level: [`latest`](Reader::latest) (eventual, wait-free),
//!   [`at_least`](Reader::at_least) (read-your-writes),
//!   [`strong`](Reader::strong) (linearizable) or
//!   [`bounded`](Reader::bounded) ([`Staleness`]).
//! - [`Log`]: read history forward, backward, by stream, by event type, by
//!   time. [`Runtime::view_at`] and [`Runtime::view_as_of`]: time travel.
//!   [`Runtime::subscribe`]: history then live events.
//! - [`Storage`]: the log in memory, in a directory of segment files, or
//!   (with the `postgres` feature) in PostgreSQL, shared by several
//!   processes that each keep their own views. A directory log can keep
//!   only its newest events in memory ([`Storage::memory_window`]) and
//!   archive its oldest ([`Builder::retain`], [`Runtime::archive_before`]),
//!   backed up and restored online ([`Runtime::backup`],
//!   [`Runtime::restore`]).
//! - [`migrate`]: moving a running program from a `RwLock` to rwlog in
//!   phases (shadow writes, verified reads, cut-over and rollback).
//! - One [`Error`] type.
//!
//! # Features
//!
//! - `async` (default): `Writer::append_async`, writer actors, and
//!   subscriptions as `futures_core::Stream`s (tokio). The waiting reads'
//!   futures (`at_least_async`, `changed`, …) need no feature.
//! - `durable` (default): `Storage::dir` (segment files), persisted views,
//!   projection checkpoints on disk, upcasters, backup and restore, and
//!   [`ops`] (bincode, crc32c). Without
//!   it and `async`, the crate builds with neither tokio nor bincode.
//! - `metrics`: appends, batches, queue depth, append latency, event and
//!   storage sizes, view and projection lag, through the `metrics` facade
//!   (any exporter: `examples/metrics` renders Prometheus text).
//! - `postgres`: `Storage::postgres`, a log shared through PostgreSQL
//!   (tokio-postgres, on a thread and runtime of rwlog's own, so no call
//!   ever blocks inside a caller's runtime).
//! - `jsonl`: `Runtime::export_jsonl` / `import_jsonl`, the log as JSON
//!   lines (serde_json).
//! - `cli`: the `rwlog` command-line tool (`info`, `verify`, `backup`,
//!   `restore`, `archive`; `export` and `import` in a tool built with your event type
//!   through `cli::main_for`), with clap.
//!
//! # Guarantees
//!
//! 1. Positions start at 1, are contiguous and never reused; a stream's
//!    versions start at 1 and are contiguous.
//! 2. An acknowledged append is in the log.
//! 3. A snapshot at position `p` is exactly the fold of events `1..=p`, in
//!    order: never a torn or partial batch.
//! 4. A reader's successive loads never go back in position.
//! 5. `at_least(p)` returns a snapshot at `p` or later; `strong()` one that
//!    includes every append acknowledged before the call; `bounded(s)` one
//!    at most `s` behind, waiting only when it must.
//! 6. Readers never block writers beyond a bounded wait (after which the
//!    sequencer clones instead of waiting), and writers never block readers.
//! 7. A rejected append changes nothing and returns a typed error.
//! 8. An append is atomic on disk too: after any crash, full disk or failed
//!    write, recovery finds all of its events or none.
//! 9. One runtime owns a durable directory at a time; nothing recovery
//!    loads (a snapshot, a checkpoint) is trusted unless it provably
//!    belongs to this log, this view and this position.
//! 10. With a log shared through PostgreSQL, every process holds the same
//!     log in the same order, positions stay dense across processes, and
//!     `strong()` includes every append acknowledged in any process.
//!
//! # When not to use it
//!
//! - When the state is tiny and writes dominate: a `Mutex` is simpler and an
//!   event per write costs more than a store.
//! - When `apply` cannot be deterministic: every event is applied to
//!   several copies of each view (three by default).
//! - When memory is tight: the log keeps every event, and each view is held
//!   up to three times.
//! - When a writer needs to read-modify-write under one lock across several
//!   entities: express it as an append with an expected version, or use a
//!   lock.
//!
//! # Example
//!
//! ```
//! use std::collections::HashMap;
//! use rwlog::{Event, Expected, Recorded, Runtime, View};
//!
//! #[derive(Clone, Debug)]
//! enum Account { Opened, Deposited(u64), Withdrawn(u64) }
//! impl Event for Account {}
//!
//! #[derive(Clone, Default)]
//! struct Balances(HashMap<String, i64>);
//! impl View<Account> for Balances {
//!     fn apply(&mut self, e: &Recorded<Account>) {
//!         let b = self.0.entry(e.stream().to_string()).or_default();
//!         match e.payload() {
//!             Account::Opened => {}
//!             Account::Deposited(n) => *b += *n as i64,
//!             Account::Withdrawn(n) => *b -= *n as i64,
//!         }
//!     }
//! }
//!
//! let rt = Runtime::<Account>::builder().view("balances", Balances::default()).build()?;
//! let w = rt.writer();
//! w.append_expecting("acct-1", Expected::NoStream, [Account::Opened])?;
//! let ack = w.append("acct-1", Account::Deposited(5))?;
//!
//! let r = rt.reader::<Balances>("balances")?;
//! let s = r.at_least(ack.position)?;
//! assert_eq!(s.position(), ack.position);
//! assert_eq!(s.0["acct-1"], 5);
//! # Ok::<(), rwlog::Error>(())
//! ```

#![warn(
    missing_docs,
    rust_2018_idioms,
    missing_debug_implementations,
    unreachable_pub
)]
#![forbid(unsafe_code)]
// docs.rs marks the items each feature brings.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "async")]
mod actor;
mod aggregate;
#[cfg(feature = "cli")]
pub mod cli;
mod error;
mod event;
mod faults;
mod hub;
mod log;
pub mod migrate;
#[cfg(feature = "durable")]
pub mod ops;
mod position;
mod projection;
mod read;
mod runtime;
mod sequencer;
mod signal;
mod storage;
mod subscription;
mod sync;
mod telemetry;
mod view;
mod write;

#[cfg(feature = "async")]
pub use actor::{ActorOptions, Actors, Submitted};
pub use aggregate::{testing, Aggregate, CommandError, CommandStatus, Done};
pub use error::{Error, Result};
pub use event::{Event, EventRef, Metadata, NewEvent, Recorded, Timestamp};
#[cfg(loom)]
pub use faults::Faults;

/// Internals exposed to the loom models in `loom-tests/` (`--cfg loom`
/// builds only; not an API).
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    use crate::faults::Faults;

    /// The wake-up signal readers and subscribers wait on.
    #[derive(Debug)]
    pub struct Signal(crate::signal::Signal);

    impl Signal {
        /// A signal with the given faults.
        pub fn new(faults: Faults) -> Signal {
            Signal(crate::signal::Signal::new(faults))
        }

        /// Wakes every waiter (call after making the change they wait for).
        pub fn notify(&self) {
            self.0.notify();
        }

        /// Blocks until `ready()` holds.
        pub fn wait_until(&self, ready: impl FnMut() -> bool) {
            self.0.wait_until(None, ready);
        }

        /// Registers `waker` for the wait that owns `reg` (as a future's
        /// poll does), to be woken at the next notify.
        pub fn register(&self, reg: &mut Registration, waker: &std::task::Waker) {
            self.0.register(&mut reg.0, waker);
        }

        /// Takes the registration of a wait dropped before its wake-up out.
        pub fn unregister(&self, reg: &mut Registration) {
            self.0.unregister(&mut reg.0);
        }

        /// Waiters counted now (registered wakers included).
        pub fn waiters(&self) -> usize {
            self.0.waiters()
        }
    }

    /// A wait's registration with a [`Signal`].
    #[derive(Debug, Default)]
    pub struct Registration(crate::signal::Registration);
}
pub use log::{Log, LogIter, StreamIter};
pub use position::{Expected, Position, StreamId};
#[cfg(feature = "async")]
pub use projection::AsyncProjection;
pub use projection::{Projection, ProjectionError, ProjectionOptions, Projector};
pub use read::{CachedReader, Health, Reader, SnapshotRef, Staleness};
#[cfg(feature = "jsonl")]
pub use runtime::Imported;
pub use runtime::{Builder, ProjectionStats, Runtime, SharedMap, Stats, ViewStats};
pub use sequencer::Sequencing;
#[cfg(feature = "durable")]
#[doc(hidden)]
pub use storage::InjectedFault;
pub use storage::{ArchiveMode, Retention};
#[cfg(feature = "durable")]
pub use storage::{ArchiveSummary, BackupProgress, BackupSummary};
pub use storage::{Cut, Durability, RecoveryMode, RecoveryReport, Storage};
pub use subscription::Subscription;
#[cfg(feature = "async")]
pub use subscription::SubscriptionStream;
pub use uuid::Uuid;
pub use view::{Map, MapEvent, Snapshot, View, ViewKey};
pub use write::{Appended, Ticket, Writer};
