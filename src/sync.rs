//! The one place rwlog takes its synchronization primitives from.
//!
//! Every atomic, lock, `Arc`, thread and swap cell the runtime's protocols
//! use comes through this module, so that a `--cfg loom` build can replace
//! them with loom's model-checked versions (see `loom-tests/`). Normal
//! builds re-export std, arc-swap and dashmap unchanged, and the command
//! queue is crossbeam's lock-free ring (`sync/queue.rs`): the facade costs
//! nothing. Its [`Mutex`] and [`Condvar`] drop lock poisoning once, for the
//! whole crate. (Under loom the queue is a stand-in with the same
//! semantics; the ring's own lock-freedom is crossbeam's, not modelled
//! here.)
//!
//! Two process-wide statics stay std's (in `write/ack.rs`: how many
//! waiters poll for their ack, and the core count): they are scheduling
//! heuristics that synchronize nothing, and as statics they would carry
//! over from one loom interleaving to the next. The durable log's files and
//! its directory registry (`storage/`) are not modelled either.

#[cfg(not(loom))]
#[path = "sync/queue.rs"]
pub(crate) mod channel;

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::{Arc, OnceLock};
    pub(crate) use std::sync::{Condvar as RawCondvar, Mutex as RawMutex, MutexGuard};
    pub(crate) use std::thread;

    /// A swap cell holding an `Arc<T>`: lock-free loads, atomic replacement.
    pub(crate) type ArcSwap<T> = arc_swap::ArcSwap<T>;
    /// A loaded value of an [`ArcSwap`]: borrowed without touching the shared
    /// reference count.
    pub(crate) type Guard<T> = arc_swap::Guard<Arc<T>>;
    /// A per-handle cache of an [`ArcSwap`]'s current value.
    pub(crate) type Cache<T> = arc_swap::Cache<Arc<ArcSwap<T>>, Arc<T>>;

    /// A concurrent map readable while the sequencer writes it.
    pub(crate) struct Index<K, V>(dashmap::DashMap<K, V, foldhash::fast::RandomState>);

    impl<K: Eq + std::hash::Hash, V: Default> Index<K, V> {
        pub(crate) fn new() -> Index<K, V> {
            Index(dashmap::DashMap::default())
        }

        /// Runs `f` on the value of `key`, inserted as the default if absent.
        pub(crate) fn update<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> R
        where
            K: Clone,
        {
            // A known key is found without cloning it (the common case).
            if let Some(mut v) = self.0.get_mut(key) {
                return f(&mut v);
            }
            f(&mut self.0.entry(key.clone()).or_default())
        }

        /// Runs `f` on the value of `key`, if present.
        pub(crate) fn read<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
        where
            K: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            self.0.get(key).map(|v| f(&v))
        }

        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }

        /// Runs `f` on every entry, one shard lock at a time.
        pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &mut V)) {
            for mut entry in self.0.iter_mut() {
                let (key, value) = entry.pair_mut();
                f(key, value);
            }
        }
    }

    /// Gives up the rest of this thread's time slice (spin loops call this).
    pub(crate) fn yield_now() {
        std::thread::yield_now();
    }

    /// Tells the processor this is a spin loop.
    pub(crate) fn spin_loop() {
        std::hint::spin_loop();
    }

    /// Runs `f`, catching a panic (used to isolate a failing view).
    pub(crate) fn catch_unwind<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
    }
}

#[cfg(loom)]
#[path = "sync/loom_impl.rs"]
mod imp;

pub(crate) use imp::*;

use std::sync::PoisonError;
use std::time::Duration;

/// A mutex without poisoning. rwlog runs user code (a view's `apply`, a
/// projection's handler) under `catch_unwind` and keeps going, and none of
/// its locked state is left half-changed by a panic, so a lock is always
/// taken, poisoned or not.
#[derive(Default)]
pub(crate) struct Mutex<T>(RawMutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Mutex<T> {
        Mutex(RawMutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Mutex").field(&*self.lock()).finish()
    }
}

/// A condition variable for [`Mutex`], without poisoning either.
#[derive(Debug, Default)]
pub(crate) struct Condvar(RawCondvar);

impl Condvar {
    pub(crate) fn new() -> Condvar {
        Condvar(RawCondvar::new())
    }

    /// Waits for a notification (or a spurious wake-up).
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a notification or until `timeout` passes.
    pub(crate) fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> MutexGuard<'a, T> {
        self.0
            .wait_timeout(guard, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    #[cfg(loom)]
    pub(crate) fn notify_one(&self) {
        self.0.notify_one();
    }

    pub(crate) fn notify_all(&self) {
        self.0.notify_all();
    }
}

/// A spin or yield budget: `n` normally, at most one step under loom, where
/// every step is a point to explore.
pub(crate) const fn budget(n: u32) -> u32 {
    if cfg!(loom) && n > 1 {
        1
    } else {
        n
    }
}

/// Turns a panic payload into a readable message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
