//! Model 8: task wakers on the signal. A task's wait registers its waker
//! and checks its condition again; the notifier makes the change and then
//! wakes whoever is registered. Whatever the interleaving: the task either
//! sees the change on its re-check or is woken; a wait dropped before its
//! wake-up takes its registration out, so nothing stays counted.
#![cfg(loom)]

use std::sync::Arc;
use std::task::{Wake, Waker};

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use rwlog::__loom::{Registration, Signal};
use rwlog::Faults;
use rwlog_loom_tests::check_runtime_model;

/// A task's waker: records that it was woken.
struct Task(AtomicBool);

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn model(faults: Faults) {
    let signal = Arc::new(Signal::new(faults));
    let ready = Arc::new(AtomicBool::new(false));
    // A wait that stays until its condition holds.
    let waiting = {
        let (signal, ready) = (Arc::clone(&signal), Arc::clone(&ready));
        thread::spawn(move || {
            let task = Arc::new(Task(AtomicBool::new(false)));
            let mut reg = Registration::default();
            if ready.load(Ordering::Relaxed) {
                return None;
            }
            signal.register(&mut reg, &Waker::from(Arc::clone(&task)));
            if ready.load(Ordering::Relaxed) {
                signal.unregister(&mut reg);
                return None;
            }
            // Pending: only a wake-up brings the task back.
            Some(task)
        })
    };
    // A wait dropped before its wake-up (a timeout).
    let dropped = {
        let signal = Arc::clone(&signal);
        thread::spawn(move || {
            let task = Arc::new(Task(AtomicBool::new(false)));
            let mut reg = Registration::default();
            signal.register(&mut reg, &Waker::from(task));
            signal.unregister(&mut reg);
        })
    };
    ready.store(true, Ordering::Relaxed);
    signal.notify();
    let pending = waiting.join().unwrap();
    dropped.join().unwrap();
    if let Some(task) = pending {
        assert!(
            task.0.load(Ordering::SeqCst),
            "a pending task was never woken"
        );
    }
    assert_eq!(signal.waiters(), 0, "a registration outlived its wait");
}

#[test]
fn wakers_model() {
    check_runtime_model(
        "wakers_model",
        "task wake-up",
        "lost wake-up",
        |f| f.lost_wakeup = true,
        model,
    );
}
