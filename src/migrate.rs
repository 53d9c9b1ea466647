//! Migrating a running program from a `RwLock` to rwlog, in three phases,
//! without stopping it.
//!
//! 1. **Shadow.** Every write goes through a [`DualWriter`]: the event is
//!    appended to the log and then applied to the old state (the
//!    *legacy* store: your `RwLock<T>`, or anything implementing
//!    [`Legacy`]). Reads still come from the legacy state.
//! 2. **Read migration.** A [`MigrationReader`] serves a share of reads
//!    (0-100 %, changed at run time with
//!    [`Migration::set_read_share`]) from an rwlog view and the rest from
//!    the legacy state. With [`Migration::set_verify_share`], a sampled
//!    share of the rwlog reads is also read from the legacy state and
//!    compared: each discrepancy is counted and traced at `warn`, naming
//!    the key and both values (at most
//!    [`warnings_per_second`](MigrationOptions::warnings_per_second)).
//! 3. **Cut-over.** [`Migration::cut_over`] stops writing the legacy
//!    state, waits until every view and projection has reached the head
//!    and serves every read from rwlog. [`Migration::rollback`] undoes it:
//!    it replays into the legacy state exactly the events appended since
//!    the cut-over, re-enables legacy writes and reads, and returns how
//!    many events it replayed. Both are idempotent and may be called while
//!    traffic runs.
//!
//! [`Migration::stats`] counts reads served by each side, verified reads,
//! discrepancies, failed writes on each side, and says which phase the
//! migration is in.
//!
//! # Which side a change comes from
//!
//! The event is the source of every change. A dual write appends the event
//! first; only once the log holds it (and the views show it) is it applied
//! to the legacy state, by [`Legacy::apply`], in log order. So an append
//! that fails (a conflict, bad input, a closed runtime) changes neither
//! side, and the two cannot drift apart by a write that reached one side
//! only. The legacy update is supplied by you, as a function of the
//! recorded event: usually the mutation your old write path made. It is
//! deliberately not the view's fold: verification then compares two
//! independent implementations, which is how a wrong fold is caught
//! before the cut-over. (When the old state's type is itself a
//! [`View`], `RwLock<T>` implements [`Legacy`] with that
//! fold.) A legacy update that fails after its append succeeded is
//! counted, traced, and returned to the writer as
//! [`Error::Legacy`] naming the event's position,
//! which is in the log.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Arc, RwLock};
//! use rwlog::migrate::{LegacyLock, Migration, Phase};
//! use rwlog::{Event, Recorded, Runtime, View};
//!
//! #[derive(Clone, Debug)]
//! struct Deposited(i64);
//! impl Event for Deposited {}
//!
//! #[derive(Clone, Default)]
//! struct Balances(HashMap<String, i64>);
//! impl View<Deposited> for Balances {
//!     fn apply(&mut self, e: &Recorded<Deposited>) {
//!         *self.0.entry(e.stream().to_string()).or_default() += e.payload().0;
//!     }
//! }
//!
//! // The program's old state, still used by the rest of it.
//! let old = Arc::new(RwLock::new(HashMap::<String, i64>::new()));
//! let rt = Runtime::<Deposited>::builder().view("balances", Balances::default()).build()?;
//! let legacy = LegacyLock::new(Arc::clone(&old), |m: &mut HashMap<String, i64>, e: &Recorded<Deposited>| {
//!     *m.entry(e.stream().to_string()).or_default() += e.payload().0;
//! });
//! let migration = Migration::new(&rt, legacy);
//!
//! // Phase 1: shadow writes.
//! let w = migration.writer();
//! w.append("ada", Deposited(5))?;
//! assert_eq!(old.read().unwrap()["ada"], 5);
//!
//! // Phase 2: half the reads from rwlog, every one of those verified.
//! let reads = migration.reader(
//!     rt.reader::<Balances>("balances")?,
//!     |v: &Balances, k: &str| v.0.get(k).copied(),
//!     |m: &HashMap<String, i64>, k: &str| m.get(k).copied(),
//! );
//! migration.set_read_share(50)?;
//! migration.set_verify_share(100)?;
//! for _ in 0..100 {
//!     assert_eq!(reads.get("ada")?, Some(5));
//! }
//! assert_eq!(migration.stats().discrepancies, 0);
//!
//! // Phase 3: cut over; a rollback replays what the legacy state missed.
//! migration.cut_over()?;
//! w.append("ada", Deposited(1))?;
//! assert_eq!((old.read().unwrap()["ada"], migration.stats().phase), (5, Phase::CutOver));
//! assert_eq!(migration.rollback()?, 1);
//! assert_eq!(old.read().unwrap()["ada"], 6);
//! # Ok::<(), rwlog::Error>(())
//! ```

mod reader;
mod state;
mod stats;
mod writer;

pub use reader::MigrationReader;
pub use stats::{MigrationStats, Phase};
pub use writer::DualWriter;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::{Event, Recorded};
use crate::position::Position;
use crate::read::Reader;
use crate::runtime::Runtime;
use crate::view::View;

use state::Inner;

/// Why a legacy store could not apply an event or be read.
pub type LegacyError = Box<dyn std::error::Error + Send + Sync>;

/// The program's old state, as a migration writes and reads it.
///
/// Implemented for `RwLock<T>` where `T` is a [`View`] of the events (the
/// update is the view's fold), for [`LegacyLock`] (a `RwLock<T>` updated by
/// a function you give), and for `Arc<L>` of any legacy store.
pub trait Legacy<E>: Send + Sync + 'static {
    /// The old state, as [`read_with`](Legacy::read_with) lends it.
    type State: ?Sized;

    /// Changes the old state as `event` says. Called once per event, in
    /// log order, after the event is in the log. An error is counted and
    /// reported; it must leave the state as it was.
    fn apply(&self, event: &Recorded<E>) -> std::result::Result<(), LegacyError>;

    /// Calls `f` with the old state (under the store's read lock, if it
    /// has one).
    fn read_with<R>(
        &self,
        f: impl FnOnce(&Self::State) -> R,
    ) -> std::result::Result<R, LegacyError>;
}

const POISONED: &str = "the legacy RwLock is poisoned: a thread panicked while writing it";

impl<E, T: View<E>> Legacy<E> for RwLock<T> {
    type State = T;

    fn apply(&self, event: &Recorded<E>) -> std::result::Result<(), LegacyError> {
        self.write().map_err(|_| POISONED)?.apply(event);
        Ok(())
    }

    fn read_with<R>(&self, f: impl FnOnce(&T) -> R) -> std::result::Result<R, LegacyError> {
        Ok(f(&*self.read().map_err(|_| POISONED)?))
    }
}

impl<E, L: Legacy<E>> Legacy<E> for Arc<L> {
    type State = L::State;

    fn apply(&self, event: &Recorded<E>) -> std::result::Result<(), LegacyError> {
        (**self).apply(event)
    }

    fn read_with<R>(&self, f: impl FnOnce(&L::State) -> R) -> std::result::Result<R, LegacyError> {
        (**self).read_with(f)
    }
}

/// A legacy `Arc<RwLock<T>>`, shared with the rest of the program, updated
/// by `fold`: the mutation the old write path made, as a function of the
/// event. See the [module](self) example.
pub struct LegacyLock<T, F> {
    lock: Arc<RwLock<T>>,
    fold: F,
}

impl<T, F> LegacyLock<T, F> {
    /// The legacy store `lock`, changed by `fold(&mut state, event)` for
    /// every event. The event's type cannot be inferred from a closure here:
    /// name it, `|m, e: &Recorded<MyEvent>| ...`, or pass a `fn`.
    pub fn new<E>(lock: Arc<RwLock<T>>, fold: F) -> LegacyLock<T, F>
    where
        F: Fn(&mut T, &Recorded<E>),
    {
        LegacyLock { lock, fold }
    }

    /// The lock, as the rest of the program holds it.
    pub fn lock(&self) -> &Arc<RwLock<T>> {
        &self.lock
    }
}

impl<T, F> fmt::Debug for LegacyLock<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyLock")
            .field("state", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<E, T, F> Legacy<E> for LegacyLock<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&mut T, &Recorded<E>) + Send + Sync + 'static,
{
    type State = T;

    fn apply(&self, event: &Recorded<E>) -> std::result::Result<(), LegacyError> {
        let mut state = self.lock.write().map_err(|_| POISONED)?;
        (self.fold)(&mut state, event);
        Ok(())
    }

    fn read_with<R>(&self, f: impl FnOnce(&T) -> R) -> std::result::Result<R, LegacyError> {
        Ok(f(&*self.lock.read().map_err(|_| POISONED)?))
    }
}

/// Settings of [`Migration::with_options`].
#[derive(Clone, Debug)]
pub struct MigrationOptions {
    /// How long [`Migration::cut_over`] waits for the views and projections
    /// to reach the head before it gives up and rolls back (default 30 s).
    pub cut_over_timeout: Duration,
    /// At most about this many discrepancy warnings per second; the others
    /// are counted, and the next warning says how many were left out
    /// (default 10).
    pub warnings_per_second: u32,
}

impl Default for MigrationOptions {
    fn default() -> Self {
        MigrationOptions {
            cut_over_timeout: Duration::from_secs(30),
            warnings_per_second: 10,
        }
    }
}

/// The coordinator of a migration from a legacy store to a runtime: it
/// makes the [`DualWriter`]s and [`MigrationReader`]s, sets the read and
/// verification shares, cuts over and rolls back, and keeps the
/// [stats](Migration::stats). Clones share one migration. See the
/// [module](self) documentation.
///
/// Create it while the legacy state and the runtime's views agree (for
/// example, right after building the views from the legacy state's
/// contents): the legacy state is taken to hold every event up to the
/// runtime's head at that moment.
pub struct Migration<E: Event, L> {
    inner: Arc<Inner<E, L>>,
}

impl<E: Event, L> Clone for Migration<E, L> {
    fn clone(&self) -> Self {
        Migration {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<E: Event, L> fmt::Debug for Migration<E, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migration")
            .field("stats", &self.inner.stats())
            .finish_non_exhaustive()
    }
}

impl<E: Event, L: Legacy<E>> Migration<E, L> {
    /// A migration from `legacy` to `runtime`, in the shadow phase with
    /// every read served by the legacy state and no verification.
    pub fn new(runtime: &Runtime<E>, legacy: L) -> Migration<E, L> {
        Migration::with_options(runtime, legacy, MigrationOptions::default())
    }

    /// [`new`](Migration::new) with settings.
    pub fn with_options(
        runtime: &Runtime<E>,
        legacy: L,
        options: MigrationOptions,
    ) -> Migration<E, L> {
        Migration {
            inner: Arc::new(Inner::new(runtime.clone(), legacy, options)),
        }
    }

    /// A writer that appends each event and applies it to the legacy state
    /// (until the cut-over). Clone it for each thread.
    pub fn writer(&self) -> DualWriter<E, L> {
        DualWriter::new(Arc::clone(&self.inner))
    }

    /// A reader of keys `K` whose values `T` come from `reader`'s view
    /// through `from_view` or from the legacy state through `from_legacy`,
    /// as the read share says; verified reads compare the two with `==`.
    pub fn reader<V, K, T>(
        &self,
        reader: Reader<V>,
        from_view: impl Fn(&V, &K) -> T + Send + Sync + 'static,
        from_legacy: impl Fn(&L::State, &K) -> T + Send + Sync + 'static,
    ) -> MigrationReader<E, L, V, K, T>
    where
        V: Send + Sync + 'static,
        K: fmt::Debug + ?Sized,
        T: fmt::Debug + PartialEq,
    {
        self.reader_with(reader, from_view, from_legacy, |a: &T, b: &T| a == b)
    }

    /// [`reader`](Migration::reader) with a comparison of your own:
    /// `same(from_rwlog, from_legacy)` says whether a verified read agrees.
    pub fn reader_with<V, K, T>(
        &self,
        reader: Reader<V>,
        from_view: impl Fn(&V, &K) -> T + Send + Sync + 'static,
        from_legacy: impl Fn(&L::State, &K) -> T + Send + Sync + 'static,
        same: impl Fn(&T, &T) -> bool + Send + Sync + 'static,
    ) -> MigrationReader<E, L, V, K, T>
    where
        V: Send + Sync + 'static,
        K: fmt::Debug + ?Sized,
        T: fmt::Debug,
    {
        MigrationReader::new(
            Arc::clone(&self.inner),
            reader,
            Box::new(from_view),
            Box::new(from_legacy),
            Box::new(same),
        )
    }

    /// Serves `percent` % of reads from rwlog from now on (the rest from
    /// the legacy state). Takes effect at once for every reader, blocks
    /// nothing and waits for nothing. While cut over every read is served
    /// by rwlog; the share set then applies after a rollback.
    ///
    /// Errors: [`Error::TooLarge`] above 100 (the share is unchanged).
    pub fn set_read_share(&self, percent: u8) -> Result<()> {
        self.inner
            .read_share
            .set(percent_checked(percent, "a read share")?);
        Ok(())
    }

    /// Compares `percent` % of the reads served by rwlog with the legacy
    /// state (0 turns verification off). Takes effect at once; blocks
    /// nothing.
    ///
    /// Errors: [`Error::TooLarge`] above 100 (the share is unchanged).
    pub fn set_verify_share(&self, percent: u8) -> Result<()> {
        self.inner
            .verify_share
            .set(percent_checked(percent, "a verification share")?);
        Ok(())
    }

    /// Cuts over: stops writing the legacy state (once the writes in
    /// flight are done and it holds every event up to the head), serves
    /// every read from rwlog, and waits until every view and every running
    /// projection has reached the head. Returns the position the legacy
    /// state stopped at. Calling it again when cut over returns the same
    /// position and does nothing else.
    ///
    /// Reads move to rwlog as legacy writes stop, before the wait: from
    /// then on the legacy state no longer follows, and the views already
    /// show every acknowledged append (they publish before the
    /// acknowledgement). The wait is for projections, which run behind,
    /// and to find a failed view before the legacy state is left behind.
    ///
    /// The timeout bounds that wait only: stopping legacy writes first
    /// waits, without a bound, for the dual writes in flight, and so for a
    /// legacy update blocked on the old store's lock (a thread that calls a
    /// dual write while holding the old lock itself deadlocks there, as it
    /// would with the old code).
    ///
    /// Errors: [`Error::CutOverAbandoned`] if a view or projection failed
    /// or the wait passed
    /// [`cut_over_timeout`](MigrationOptions::cut_over_timeout): the
    /// migration then rolls back (as [`rollback`](Migration::rollback)
    /// does) before returning, and says in the error if that failed too.
    pub fn cut_over(&self) -> Result<Position> {
        self.inner.cut_over()
    }

    /// Rolls back a cut-over: replays into the legacy state, in order,
    /// every event appended since the cut-over (by any writer), then
    /// re-enables legacy writes and serves reads by the read share again.
    /// Writes wait while it replays; reads do not. Returns how many events
    /// it replayed; 0, doing nothing, if not cut over.
    ///
    /// Errors: [`Error::Legacy`] if the legacy store fails to apply an
    /// event: the migration stays cut over with the legacy state holding
    /// the events before that one, and a later call resumes from there.
    pub fn rollback(&self) -> Result<u64> {
        self.inner.rollback()
    }

    /// The migration's counters and phase.
    pub fn stats(&self) -> MigrationStats {
        self.inner.stats()
    }

    /// The runtime migrated to.
    pub fn runtime(&self) -> &Runtime<E> {
        &self.inner.rt
    }

    /// The legacy store.
    pub fn legacy(&self) -> &L {
        &self.inner.legacy
    }
}

fn percent_checked(percent: u8, what: &'static str) -> Result<u8> {
    if percent > 100 {
        return Err(Error::TooLarge {
            what,
            size: u64::from(percent),
            max: 100,
        });
    }
    Ok(percent)
}

/// Takes a std lock whether or not a panic poisoned it: the migration's
/// own locked state is never left half-changed (user code runs under
/// `catch_unwind`).
fn unpoison<G>(r: std::result::Result<G, PoisonError<G>>) -> G {
    r.unwrap_or_else(PoisonError::into_inner)
}
