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
    wakers: Mutex<Vec<Waker>>,
    cv: Condvar,
    faults: Faults,
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
            let wakers = std::mem::take(&mut *guard);
            // Registered wakers count as waiters until taken here.
            self.waiters.fetch_sub(wakers.len(), Ordering::Relaxed);
            wakers
        };
        self.cv.notify_all();
        for w in wakers {
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

    /// Registers a task to wake at the next notify. The caller must check its
    /// condition again after this returns, and return `Pending` only if it
    /// still does not hold.
    pub(crate) fn register(&self, waker: &Waker) {
        {
            let mut wakers = self.lock();
            if !wakers.iter().any(|w| w.will_wake(waker)) {
                wakers.push(waker.clone());
                // Counted under the lock, so `notify` subtracts exactly what it takes.
                self.waiters.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Pairs with the fence in `notify`: either it sees this waiter, or the
        // caller's re-check sees the change.
        self.fence();
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock()
    }
}
