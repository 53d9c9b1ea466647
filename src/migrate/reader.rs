//! The migration reader: a read served by rwlog or by the legacy state, as
//! the read share says, and sometimes verified against the other side.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::state::Inner;
use super::stats::{draw, Read};
use super::Legacy;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::position::Position;
use crate::read::Reader;

/// How often a verification tries to find the legacy state and the view at
/// the same position before it counts the read as unverified.
const ATTEMPTS: u32 = 8;

type FromView<V, K, T> = Box<dyn Fn(&V, &K) -> T + Send + Sync>;
type FromLegacy<S, K, T> = Box<dyn Fn(&S, &K) -> T + Send + Sync>;
type Same<T> = Box<dyn Fn(&T, &T) -> bool + Send + Sync>;

/// Reads a key from rwlog's view or from the legacy state, as the
/// migration's read share says; from
/// [`Migration::reader`](super::Migration::reader). Clones are cheap and
/// share the functions.
///
/// A read served by rwlog is one atomic load of the view, as
/// [`Reader::latest`] (it shows every acknowledged dual write: views
/// publish before the acknowledgement). A sampled share of those (the
/// verification share) also reads the legacy state at the same log
/// position and compares the two values; a difference is counted and
/// traced at `warn` with the key, both values and the position. Deciding
/// which side serves a read, and sampling, use a random draw of the
/// thread's own and per-thread counters: nothing shared is written.
pub struct MigrationReader<E: Event, L: Legacy<E>, V, K: ?Sized, T> {
    inner: Arc<Inner<E, L>>,
    reader: Reader<V>,
    parts: Arc<Parts<L::State, V, K, T>>,
}

struct Parts<S: ?Sized, V, K: ?Sized, T> {
    from_view: FromView<V, K, T>,
    from_legacy: FromLegacy<S, K, T>,
    same: Same<T>,
}

impl<E: Event, L: Legacy<E>, V, K: ?Sized, T> Clone for MigrationReader<E, L, V, K, T> {
    fn clone(&self) -> Self {
        MigrationReader {
            inner: Arc::clone(&self.inner),
            reader: self.reader.clone(),
            parts: Arc::clone(&self.parts),
        }
    }
}

impl<E: Event, L: Legacy<E>, V, K: ?Sized, T> fmt::Debug for MigrationReader<E, L, V, K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MigrationReader")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl<E, L, V, K, T> MigrationReader<E, L, V, K, T>
where
    E: Event,
    L: Legacy<E>,
    V: Send + Sync + 'static,
    K: fmt::Debug + ?Sized,
    T: fmt::Debug,
{
    pub(super) fn new(
        inner: Arc<Inner<E, L>>,
        reader: Reader<V>,
        from_view: FromView<V, K, T>,
        from_legacy: FromLegacy<L::State, K, T>,
        same: Same<T>,
    ) -> Self {
        let parts = Parts {
            from_view,
            from_legacy,
            same,
        };
        MigrationReader {
            inner,
            reader,
            parts: Arc::new(parts),
        }
    }

    /// `key`'s value, from the side the read share picks.
    ///
    /// Errors: [`Error::Legacy`] if the legacy store could not be read (a
    /// poisoned lock).
    pub fn get(&self, key: &K) -> Result<T> {
        let inner = &*self.inner;
        let (draw, stripe) = draw();
        // Once legacy writes stop, the legacy state no longer follows: every
        // read is rwlog's.
        if inner.live.load(Ordering::Acquire) {
            if draw % 100 >= u64::from(inner.read_share.get()) {
                inner.counters.read_one(stripe, Read::Legacy);
                return self.read_legacy(key);
            }
            if (draw >> 32) % 100 < u64::from(inner.verify_share.get()) {
                return self.verified(key, stripe);
            }
        }
        inner.counters.read_one(stripe, Read::Rwlog);
        Ok((self.parts.from_view)(self.reader.latest().state(), key))
    }

    /// The reader of the view.
    pub fn view_reader(&self) -> &Reader<V> {
        &self.reader
    }

    fn read_legacy(&self, key: &K) -> Result<T> {
        let read = self
            .inner
            .legacy
            .read_with(|s| (self.parts.from_legacy)(s, key));
        read.map_err(|e| Error::Legacy {
            position: Position(self.inner.applied.load(Ordering::Relaxed)),
            message: e.to_string(),
        })
    }

    /// A read from rwlog compared with the legacy state at the same
    /// position: the view's position, then the legacy state's (the last
    /// position applied, and the one being applied: equal once no update
    /// is under way), the legacy value, then both again, all the same. An
    /// update that began meanwhile moved `applying` before it touched the
    /// legacy state, so a read that saw any of it sees `applying` moved
    /// too, and is tried again; after a few tries the read is counted
    /// unverified rather than compared at different positions.
    fn verified(&self, key: &K, stripe: usize) -> Result<T> {
        let inner = &*self.inner;
        inner.counters.read_one(stripe, Read::Rwlog);
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::yield_now();
            }
            let position = self.reader.latest().position();
            let settled = || {
                inner.applied.load(Ordering::Acquire) == position.0
                    && inner.applying.load(Ordering::Acquire) == position.0
            };
            if !settled() {
                continue;
            }
            let legacy = match self.read_legacy(key) {
                Ok(legacy) => legacy,
                Err(e) => {
                    // The legacy side cannot be read: the read is rwlog's
                    // to serve all the same, unverified.
                    tracing::debug!(error = %e, "a verified read could not read the legacy state");
                    break;
                }
            };
            let snapshot = self.reader.latest();
            if !settled() || snapshot.position() != position {
                continue;
            }
            let rwlog = (self.parts.from_view)(snapshot.state(), key);
            inner.counters.read_one(stripe, Read::Verified);
            if !(self.parts.same)(&rwlog, &legacy) {
                inner.counters.discrepancies.fetch_add(1, Ordering::Relaxed);
                inner
                    .warnings
                    .discrepancy(&key, &rwlog, &legacy, snapshot.position());
            }
            return Ok(rwlog);
        }
        inner.counters.read_one(stripe, Read::Unverified);
        Ok((self.parts.from_view)(self.reader.latest().state(), key))
    }
}
