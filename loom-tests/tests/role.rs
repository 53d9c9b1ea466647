//! Model 6: the sequencer role under combining. Two writers append at once,
//! each taking the role if it is free; the one that finds it taken leaves
//! its command to the holder, which looks at the queue again after it lets
//! go of the role. Whatever the interleaving: no command is stranded (an
//! append that nobody sequences would leave its writer waiting for ever,
//! which loom reports as a deadlock), only one thread sequences at a time,
//! and an append is acknowledged only once every view shows it.
#![cfg(loom)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use loom::thread;
use rwlog::{Faults, Position, Recorded, Runtime, Sequencing, View};
use rwlog_loom_tests::{check_runtime_model, Note};

/// Every payload, in order; `apply` checks that nobody else is applying.
#[derive(Clone, Debug, Default)]
struct Seen {
    notes: Vec<u64>,
    busy: Arc<AtomicBool>,
}

impl View<Note> for Seen {
    fn apply(&mut self, e: &Recorded<Note>) {
        // Plain std atomics: a check, not part of the protocol.
        assert!(
            !self.busy.swap(true, Ordering::SeqCst),
            "two threads sequence at once"
        );
        self.notes.push(e.payload().0);
        self.busy.store(false, Ordering::SeqCst);
    }
}

fn model(faults: Faults) {
    let rt = Arc::new(
        Runtime::<Note>::builder()
            .sequencing(Sequencing::Combining)
            .view("seen", Seen::default())
            .faults(faults)
            .build()
            .unwrap(),
    );
    let writers: Vec<_> = [1, 2]
        .into_iter()
        .map(|n| {
            let rt = Arc::clone(&rt);
            thread::spawn(move || {
                let ack = rt.writer().append("s", Note(n)).unwrap();
                let seen = rt.reader::<Seen>("seen").unwrap().latest();
                assert!(
                    seen.position() >= ack.position,
                    "acknowledged before the view showed it"
                );
                assert!(seen.notes.contains(&n));
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(rt.log().head(), Position(2));
    rt.shutdown().unwrap();
}

/// One test per file: loom models must not run in parallel in one process.
#[test]
fn role_model() {
    check_runtime_model(
        "role_model",
        "sequencer role",
        "release without a second look",
        |f| f.unchecked_release = true,
        model,
    );
}
