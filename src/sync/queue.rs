//! The command queue writers send appends through: crossbeam's bounded
//! lock-free ring (`ArrayQueue`), plus a disconnect flag and a way for a
//! sender to wait for room.
//!
//! crossbeam-channel's bounded channel does the same work and more: every
//! send checks for parked receivers and every receive for parked senders,
//! through wakers behind locks. rwlog's receiver never parks on the queue
//! (the sequencer thread waits on a `Signal`), and a sender waits only when
//! the queue is full, which is backpressure, not the common case. Without
//! the wakers a send and a receive cost about a third of the instructions.
//!
//! A sender that finds the queue full announces itself in `blocked` and
//! sleeps on a condition variable; a receive that finds someone blocked
//! wakes them. Those two steps are not ordered against each other (that
//! would cost a full fence per receive), so a wake-up can be missed: the
//! sleeper then looks again after [`RECHECK`] at most. A full queue costs
//! its senders at worst that much extra wait, and never a hang.
//!
//! Like crossbeam's channels, queued messages are dropped when both ends
//! are gone (each answering its writer `Closed` as its reply drops).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

/// How long a sender waiting for room sleeps before it looks again, should
/// its wake-up have been missed.
const RECHECK: Duration = Duration::from_micros(200);

struct Chan<T> {
    ring: ArrayQueue<T>,
    /// The receiver is gone: every send fails.
    disconnected: AtomicBool,
    /// Senders waiting in [`Sender::send`] for room.
    blocked: AtomicUsize,
    lock: Mutex<()>,
    room: Condvar,
}

/// The sending end; clones share the queue.
pub(crate) struct Sender<T>(Arc<Chan<T>>);

/// The receiving end (one: the sequencer's).
pub(crate) struct Receiver<T>(Arc<Chan<T>>);

/// Why [`Sender::try_send`] failed; the message comes back.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    Full(T),
    Disconnected(T),
}

/// The receiving side is gone; the message comes back.
#[derive(Debug)]
pub(crate) struct SendError<T>(#[allow(dead_code)] pub(crate) T);

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TryRecvError {
    Empty,
}

/// A queue of at most `cap` messages (at least one).
pub(crate) fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        ring: ArrayQueue::new(cap.max(1)),
        disconnected: AtomicBool::new(false),
        blocked: AtomicUsize::new(0),
        lock: Mutex::new(()),
        room: Condvar::new(),
    });
    (Sender(Arc::clone(&chan)), Receiver(chan))
}

impl<T> Sender<T> {
    /// Queues `msg` if there is room.
    pub(crate) fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        // Acquire pairs with the Release store in `Receiver::drop`.
        if self.0.disconnected.load(Ordering::Acquire) {
            return Err(TrySendError::Disconnected(msg));
        }
        self.0.ring.push(msg).map_err(TrySendError::Full)
    }

    /// Queues `msg`, waiting for room; fails only once the receiver is
    /// gone.
    pub(crate) fn send(&self, mut msg: T) -> Result<(), SendError<T>> {
        loop {
            match self.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(back)) => return Err(SendError(back)),
                Err(TrySendError::Full(back)) => msg = back,
            }
            let guard = self.0.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.0.blocked.fetch_add(1, Ordering::SeqCst);
            if self.0.ring.is_full() && !self.0.disconnected.load(Ordering::Acquire) {
                let waited = self.0.room.wait_timeout(guard, RECHECK);
                drop(waited.unwrap_or_else(PoisonError::into_inner));
            } else {
                drop(guard);
            }
            self.0.blocked.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// How many messages are queued.
    pub(crate) fn len(&self) -> usize {
        self.0.ring.len()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(Arc::clone(&self.0))
    }
}

impl<T> Receiver<T> {
    /// The oldest queued message, if any.
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let msg = self.0.ring.pop().ok_or(TryRecvError::Empty)?;
        // A heuristic read (see the module's doc): a missed sender wakes
        // after `RECHECK`.
        if self.0.blocked.load(Ordering::Relaxed) > 0 {
            self.wake_senders();
        }
        Ok(msg)
    }

    fn wake_senders(&self) {
        let _guard = self.0.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.0.room.notify_all();
    }

    pub(crate) fn len(&self) -> usize {
        self.0.ring.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.ring.is_empty()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Release pairs with the Acquire load in `try_send`.
        self.0.disconnected.store(true, Ordering::Release);
        self.wake_senders();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_out_in_order_and_a_full_queue_says_so() {
        let (tx, rx) = bounded(2);
        tx.try_send(1).unwrap();
        tx.clone().try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!((tx.len(), rx.len(), rx.is_empty()), (2, 2, false));
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(rx.is_empty());
    }

    #[test]
    fn a_blocked_sender_gets_room_from_a_receive() {
        let (tx, rx) = bounded(1);
        tx.try_send(0).unwrap();
        let sender = std::thread::spawn(move || {
            for i in 1..=1000 {
                tx.send(i).unwrap();
            }
        });
        let mut got = Vec::new();
        while got.len() < 1001 {
            match rx.try_recv() {
                Ok(v) => got.push(v),
                Err(TryRecvError::Empty) => std::thread::yield_now(),
            }
        }
        sender.join().unwrap();
        assert_eq!(got, (0..=1000).collect::<Vec<_>>());
    }

    #[test]
    fn sends_fail_once_the_receiver_is_gone_even_a_blocked_one() {
        let (tx, rx) = bounded(1);
        tx.try_send(1).unwrap();
        let tx2 = tx.clone();
        let blocked = std::thread::spawn(move || tx2.send(2).is_err());
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
        assert!(blocked.join().unwrap(), "the blocked send fails");
        assert!(matches!(tx.try_send(3), Err(TrySendError::Disconnected(3))));
        assert!(tx.send(4).is_err());
    }

    #[test]
    fn queued_messages_are_dropped_with_the_last_end() {
        let marker = Arc::new(());
        let (tx, rx) = bounded(4);
        tx.try_send(Arc::clone(&marker)).unwrap();
        drop(rx);
        assert_eq!(Arc::strong_count(&marker), 2, "kept while a sender is");
        drop(tx);
        assert_eq!(Arc::strong_count(&marker), 1);
    }
}
