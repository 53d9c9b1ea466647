//! Wake-ups for readers and subscribers waiting for the log to advance.

use std::task::Waker;
use std::time::Instant;

use crate::faults::Faults;
use crate::sync::{fence, AtomicUsize, Condvar, Mutex, Ordering};

/// A broadcast "something was published" signal.
///
/// Waiters re-check their own condition after every wake-up, so the signal
/// carries no data. The sequencer calls [`notify`](Signal::notify) after every
/// batch; it takes the mutex only when someone waits, so an idle signal costs
/// one load.
///
/// Invariant (no lost wake-up): a waiter announces itself in `waiters` and
/// then checks its condition; the notifier makes its change visible and then
/// reads `waiters`. SeqCst fences on both sides order the two, so either the
/// waiter sees the change or the notifier sees the waiter, and the mutex
/// closes the window between the waiter's check and its sleep.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    waiters: AtomicUsize,
    wakers: Mutex<Wakers>,
    cv: Condvar,
    faults: Faults,
}

/// The registered wakers, each under the key of the wait that registered
/// it, so that a wait dropped before its wake-up takes its waker out (a
/// waker keeps its task alive).
#[derive(Debug, Default)]
struct Wakers {
    list: Vec<(u64, Waker)>,
    next_key: u64,
}

/// A wait's registration with a [`Signal`]: its key while its waker is
/// registered. Dropping the wait should [`unregister`](Signal::unregister);
/// [`Waiting`] does.
#[derive(Debug, Default)]
pub(crate) struct Registration(Option<u64>);

/// Whatever leads to a signal: the signal itself, or what holds one.
pub(crate) trait HasSignal {
    fn signal(&self) -> &Signal;
}

impl HasSignal for &Signal {
    fn signal(&self) -> &Signal {
        self
    }
}

/// A future's wait on a signal: registers the future's waker when it is
/// pending, and takes it out when the future is dropped before its
/// wake-up (a registered waker keeps its task alive).
pub(crate) struct Waiting<S: HasSignal> {
    on: S,
    reg: Registration,
}

impl<S: HasSignal> std::fmt::Debug for Waiting<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting")
            .field("reg", &self.reg)
            .finish_non_exhaustive()
    }
}

impl<S: HasSignal> Waiting<S> {
    pub(crate) fn new(on: S) -> Waiting<S> {
        Waiting {
            on,
            reg: Registration::default(),
        }
    }

    /// Registers `waker` (see [`Signal::register`]): the caller checks its
    /// condition again after this.
    pub(crate) fn register(&mut self, waker: &Waker) {
        self.on.signal().register(&mut self.reg, waker);
    }
}

impl<S: HasSignal> Drop for Waiting<S> {
    fn drop(&mut self) {
        self.on.signal().unregister(&mut self.reg);
    }
}

/// Resolves with what `settled` returns once it returns something, woken
/// by `signal`: checked, then the task's waker registered, then checked
/// again (see [`Signal`]). Dropped before then, it takes its waker out.
pub(crate) async fn until<T>(signal: &Signal, mut settled: impl FnMut() -> Option<T>) -> T {
    let mut waiting = Waiting::new(signal);
    std::future::poll_fn(|cx| {
        if let Some(done) = settled() {
            return std::task::Poll::Ready(done);
        }
        waiting.register(cx.waker());
        match settled() {
            Some(done) => std::task::Poll::Ready(done),
            None => std::task::Poll::Pending,
        }
    })
    .await
}

impl Signal {
    pub(crate) fn new(faults: Faults) -> Signal {
        Signal {
            faults,
            ..Signal::default()
        }
    }

    /// The SeqCst fence both sides of the handshake need.
    fn fence(&self) {
        if !self.faults.lost_wakeup() {
            fence(Ordering::SeqCst);
        }
    }

    /// Wakes every waiter. Call after making the change they wait for.
    pub(crate) fn notify(&self) {
        // Pairs with the fence in `wait_until`/`register`.
        self.fence();
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return;
        }
        let wakers = {
            let mut guard = self.lock();
            let wakers = std::mem::take(&mut guard.list);
            // Registered wakers count as waiters until taken here.
            self.waiters.fetch_sub(wakers.len(), Ordering::Relaxed);
            wakers
        };
        self.cv.notify_all();
        for (_, w) in wakers {
            w.wake();
        }
    }

    /// Blocks until `ready()` holds or the deadline passes; returns whether
    /// `ready()` held.
    pub(crate) fn wait_until(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        if ready() {
            return true;
        }
        self.waiters.fetch_add(1, Ordering::Relaxed);
        // Pairs with the fence in `notify`.
        self.fence();
        let mut guard = self.lock();
        let ok = loop {
            if ready() {
                break true;
            }
            match deadline {
                None => guard = self.cv.wait(guard),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break ready();
                    }
                    guard = self.cv.wait_timeout(guard, d - now);
                }
            }
        };
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        ok
    }

    /// Registers a task to wake at the next notify, for the wait that owns
    /// `reg` (polled again, the wait replaces its own waker: one entry per
    /// wait). The caller must check its condition again after this returns,
    /// and return `Pending` only if it still does not hold.
    pub(crate) fn register(&self, reg: &mut Registration, waker: &Waker) {
        {
            let mut wakers = self.lock();
            let mine = reg
                .0
                .and_then(|key| wakers.list.iter_mut().find(|(k, _)| *k == key));
            match mine {
                Some((_, w)) => {
                    if !w.will_wake(waker) {
                        w.clone_from(waker);
                    }
                }
                None => {
                    let key = wakers.next_key;
                    wakers.next_key += 1;
                    wakers.list.push((key, waker.clone()));
                    reg.0 = Some(key);
                    // Counted under the lock, so `notify` subtracts exactly what it takes.
                    self.waiters.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // Pairs with the fence in `notify`: either it sees this waiter, or the
        // caller's re-check sees the change.
        self.fence();
    }

    /// Takes the waker of the wait that owns `reg` out, if a notify has not
    /// already: for a wait dropped before it was woken.
    pub(crate) fn unregister(&self, reg: &mut Registration) {
        let Some(key) = reg.0.take() else { return };
        let mut wakers = self.lock();
        if let Some(i) = wakers.list.iter().position(|(k, _)| *k == key) {
            wakers.list.swap_remove(i);
            self.waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Waiters counted now, registered wakers included (for the loom
    /// models' checks).
    #[cfg(loom)]
    pub(crate) fn waiters(&self) -> usize {
        self.waiters.load(Ordering::SeqCst)
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Wakers> {
        self.wakers.lock()
    }
}
