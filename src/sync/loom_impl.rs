//! The `--cfg loom` side of the facade: loom's atomics, locks and threads,
//! and stand-ins built from them for the crates loom cannot see inside
//! (arc-swap, crossbeam-channel, dashmap) and for `OnceLock`. Each stand-in
//! keeps the semantics rwlog relies on, with every synchronizing step visible
//! to loom. `Arc` stays std's, because loom's cannot coerce to trait
//! objects on stable Rust. rwlog does synchronize through it in two places:
//! a spare view copy and an ack cell are reused once `Arc::get_mut` finds
//! no other owner, which acquires what every other owner's drop released.
//! loom cannot see std's reference count, so the models take that step of
//! std on trust (it is std's documented guarantee); the publication model
//! still explores every interleaving of the loads and swaps around it.

pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
pub(crate) use loom::sync::{Condvar as RawCondvar, Mutex as RawMutex, MutexGuard};

use super::{Condvar, Mutex};
pub(crate) use loom::thread;
pub(crate) use std::sync::Arc;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Deref;

/// Gives up the rest of this thread's time slice: a scheduling point.
pub(crate) fn yield_now() {
    loom::thread::yield_now();
}

/// A spin loop hint: a scheduling point under loom.
pub(crate) fn spin_loop() {
    loom::hint::spin_loop();
}

/// Runs `f`, catching a panic.
pub(crate) fn catch_unwind<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
}

/// A write-once cell: the value itself is std's, its publication a loom
/// atomic, so loom sees (and can reorder) the step readers rely on.
pub(crate) struct OnceLock<T> {
    value: std::sync::OnceLock<T>,
    ready: AtomicBool,
}

impl<T: std::fmt::Debug> std::fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OnceLock").field(&self.get()).finish()
    }
}

impl<T> OnceLock<T> {
    pub(crate) fn new() -> OnceLock<T> {
        OnceLock {
            value: std::sync::OnceLock::new(),
            ready: AtomicBool::new(false),
        }
    }

    pub(crate) fn set(&self, value: T) -> Result<(), T> {
        self.value.set(value)?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    pub(crate) fn get(&self) -> Option<&T> {
        if self.ready.load(Ordering::Acquire) {
            self.value.get()
        } else {
            None
        }
    }
}

/// A swap cell holding an `Arc<T>`, behind a loom mutex.
pub(crate) struct ArcSwap<T> {
    cell: Mutex<Arc<T>>,
}

impl<T> ArcSwap<T> {
    pub(crate) fn from_pointee(value: T) -> ArcSwap<T> {
        ArcSwap {
            cell: Mutex::new(Arc::new(value)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Arc<T>> {
        self.cell.lock()
    }

    pub(crate) fn load(&self) -> Guard<T> {
        Guard(Arc::clone(&self.lock()))
    }

    pub(crate) fn load_full(&self) -> Arc<T> {
        Arc::clone(&self.lock())
    }

    pub(crate) fn store(&self, value: Arc<T>) {
        *self.lock() = value;
    }

    pub(crate) fn swap(&self, value: Arc<T>) -> Arc<T> {
        std::mem::replace(&mut *self.lock(), value)
    }
}

/// A loaded value of an [`ArcSwap`].
pub(crate) struct Guard<T>(Arc<T>);

impl<T> Guard<T> {
    pub(crate) fn into_inner(guard: Guard<T>) -> Arc<T> {
        guard.0
    }
}

impl<T> Deref for Guard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A per-handle cache of an [`ArcSwap`]'s current value.
pub(crate) struct Cache<T> {
    swap: Arc<ArcSwap<T>>,
    cached: Arc<T>,
}

impl<T> Cache<T> {
    pub(crate) fn new(swap: Arc<ArcSwap<T>>) -> Cache<T> {
        let cached = swap.load_full();
        Cache { swap, cached }
    }

    pub(crate) fn load(&mut self) -> &Arc<T> {
        let current = self.swap.load_full();
        if !Arc::ptr_eq(&current, &self.cached) {
            self.cached = current;
        }
        &self.cached
    }
}

/// A concurrent map, behind a loom mutex.
pub(crate) struct Index<K, V>(Mutex<HashMap<K, V>>);

impl<K: Eq + Hash, V: Default> Index<K, V> {
    pub(crate) fn new() -> Index<K, V> {
        Index(Mutex::new(HashMap::new()))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.0.lock()
    }

    pub(crate) fn update<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> R
    where
        K: Clone,
    {
        f(self.lock().entry(key.clone()).or_default())
    }

    pub(crate) fn read<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().get(key).map(f)
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &mut V)) {
        for (key, value) in self.lock().iter_mut() {
            f(key, value);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A bounded multi-producer queue with the semantics of `sync/queue.rs`, built
/// from a loom mutex and two condition variables. Like crossbeam, queued
/// messages stay in the queue until both ends are gone.
pub(crate) mod channel {
    use std::collections::VecDeque;

    use super::{Arc, Condvar, Mutex, MutexGuard};

    struct State<T> {
        queue: VecDeque<T>,
        senders: usize,
        receivers: usize,
    }

    struct Chan<T> {
        state: Mutex<State<T>>,
        not_empty: Condvar,
        not_full: Condvar,
        cap: usize,
    }

    impl<T> Chan<T> {
        fn lock(&self) -> MutexGuard<'_, State<T>> {
            self.state.lock()
        }

        /// One end's handle is gone: count it out, and wake the other end
        /// once the last is gone.
        fn leave(&self, count: impl FnOnce(&mut State<T>) -> &mut usize, other_end: &Condvar) {
            let mut s = self.lock();
            let n = count(&mut s);
            *n -= 1;
            if *n == 0 {
                other_end.notify_all();
            }
        }
    }

    pub(crate) struct Sender<T>(Arc<Chan<T>>);
    pub(crate) struct Receiver<T>(Arc<Chan<T>>);

    /// The receiving side is gone; the message comes back.
    pub(crate) struct SendError<T>(#[allow(dead_code)] pub(crate) T);

    pub(crate) enum TrySendError<T> {
        Full(T),
        Disconnected(T),
    }

    pub(crate) enum TryRecvError {
        Empty,
        Disconnected,
    }

    pub(crate) fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
        let chan = Arc::new(Chan {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                senders: 1,
                receivers: 1,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            cap: cap.max(1),
        });
        (Sender(Arc::clone(&chan)), Receiver(chan))
    }

    impl<T> Sender<T> {
        pub(crate) fn send(&self, msg: T) -> Result<(), SendError<T>> {
            let mut s = self.0.lock();
            loop {
                if s.receivers == 0 {
                    return Err(SendError(msg));
                }
                if s.queue.len() < self.0.cap {
                    s.queue.push_back(msg);
                    self.0.not_empty.notify_one();
                    return Ok(());
                }
                s = self.0.not_full.wait(s);
            }
        }

        pub(crate) fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
            let mut s = self.0.lock();
            if s.receivers == 0 {
                return Err(TrySendError::Disconnected(msg));
            }
            if s.queue.len() >= self.0.cap {
                return Err(TrySendError::Full(msg));
            }
            s.queue.push_back(msg);
            self.0.not_empty.notify_one();
            Ok(())
        }

        pub(crate) fn len(&self) -> usize {
            self.0.lock().queue.len()
        }
    }

    impl<T> Clone for Sender<T> {
        fn clone(&self) -> Self {
            self.0.lock().senders += 1;
            Sender(Arc::clone(&self.0))
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            // The last sender gone wakes receivers to see the disconnect.
            self.0.leave(|s| &mut s.senders, &self.0.not_empty);
        }
    }

    impl<T> Receiver<T> {
        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().queue.is_empty()
        }

        pub(crate) fn len(&self) -> usize {
            self.0.lock().queue.len()
        }

        pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
            let mut s = self.0.lock();
            match s.queue.pop_front() {
                Some(msg) => {
                    self.0.not_full.notify_one();
                    Ok(msg)
                }
                None if s.senders == 0 => Err(TryRecvError::Disconnected),
                None => Err(TryRecvError::Empty),
            }
        }
    }

    impl<T> Clone for Receiver<T> {
        fn clone(&self) -> Self {
            self.0.lock().receivers += 1;
            Receiver(Arc::clone(&self.0))
        }
    }

    impl<T> Drop for Receiver<T> {
        fn drop(&mut self) {
            self.0.leave(|s| &mut s.receivers, &self.0.not_full);
        }
    }
}
