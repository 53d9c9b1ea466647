//! Model 3: waiting readers. `strong()` and `at_least(p)` return a snapshot
//! that satisfies their bound, and a reader that parks is always woken: the
//! signal's handshake (announce, fence, check / change, fence, look for
//! waiters) loses no wake-up.
#![cfg(loom)]

use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use rwlog::__loom::Signal;
use rwlog::{Faults, Position, Recorded, Runtime, Sequencing, View};
use rwlog_loom_tests::{check_runtime_model, explore, report, Note};

#[derive(Clone, Debug, Default)]
struct Sum(u64);

impl View<Note> for Sum {
    fn apply(&mut self, e: &Recorded<Note>) {
        self.0 += e.payload().0;
    }
}

/// Through the whole runtime: a reader that sees the append in the log asks
/// for it with `strong()` and `at_least()` while the sequencer publishes.
fn runtime_model() {
    let rt = Arc::new(
        Runtime::<Note>::builder()
            .sequencing(Sequencing::Thread)
            .view("sum", Sum::default())
            .build()
            .unwrap(),
    );
    let ticket = rt.writer().submit("s", Note(5)).unwrap();
    let reader = {
        let rt = Arc::clone(&rt);
        thread::spawn(move || {
            let r = rt.reader::<Sum>("sum").unwrap();
            while rt.log().head() < Position(1) {
                thread::yield_now();
            }
            let s = r.strong().unwrap();
            assert!(
                s.position() >= Position(1) && s.0 == 5,
                "strong() missed an appended event"
            );
            let s = r.at_least(Position(1)).unwrap();
            assert_eq!((s.position(), s.0), (Position(1), 5));
        })
    };
    assert_eq!(ticket.wait().unwrap().position, Position(1));
    reader.join().unwrap();
    rt.shutdown().unwrap();
}

/// The signal alone, against a plain atomic condition: the waiter must wake.
fn signal_model(faults: Faults) {
    let signal = Arc::new(Signal::new(faults));
    let ready = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (signal, ready) = (Arc::clone(&signal), Arc::clone(&ready));
        thread::spawn(move || signal.wait_until(|| ready.load(Ordering::Relaxed)))
    };
    ready.store(true, Ordering::Relaxed);
    signal.notify();
    waiter.join().unwrap();
}

/// One test per file: loom models must not run in parallel in one process.
#[test]
fn waiting_model() {
    check_runtime_model(
        "waiting_model",
        "signal wake-up",
        "lost wake-up",
        |f| f.lost_wakeup = true,
        signal_model,
    );
    report("strong / at_least", "rwlog", explore(runtime_model));
}
