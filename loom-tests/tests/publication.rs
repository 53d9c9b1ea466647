//! Model 1: view publication. The sequencer publishes two batches (an atomic
//! append of two events, then one more) while two readers load the view:
//! positions never go back, every loaded state is exactly the fold of events
//! up to its position, and a snapshot a reader holds never changes under it
//! (the spare is never written while a reader holds it).
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use rwlog::{Faults, Position, Recorded, Runtime, Sequencing, View};
use rwlog_loom_tests::{check_runtime_model, Note};

/// Every payload, in order: the fold that shows any torn or reordered state.
#[derive(Clone, Debug, Default, PartialEq)]
struct Seen(Vec<u64>);

impl View<Note> for Seen {
    fn apply(&mut self, e: &Recorded<Note>) {
        self.0.push(e.payload().0);
    }
}

const EVENTS: [u64; 3] = [10, 20, 30];

fn fold(p: Position) -> Vec<u64> {
    EVENTS[..p.0 as usize].to_vec()
}

fn model(faults: Faults) {
    let rt = Arc::new(
        Runtime::<Note>::builder()
            .sequencing(Sequencing::Thread)
            .view("seen", Seen::default())
            .faults(faults)
            .build()
            .unwrap(),
    );
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let r = rt.reader::<Seen>("seen").unwrap();
            thread::spawn(move || {
                let first = r.latest().into_arc();
                assert_eq!(first.0, fold(first.position()), "torn snapshot");
                let second = r.latest();
                assert!(second.position() >= first.position(), "a reader went back");
                assert_eq!(second.0, fold(second.position()), "torn snapshot");
                // The first snapshot, still held, never changed.
                assert_eq!(first.0, fold(first.position()), "a held snapshot changed");
            })
        })
        .collect();
    let w = rt.writer();
    w.append_batch("s", [Note(EVENTS[0]), Note(EVENTS[1])])
        .unwrap();
    w.append("s", Note(EVENTS[2])).unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(rt.reader::<Seen>("seen").unwrap().latest().0, EVENTS);
    rt.shutdown().unwrap();
}

/// One test per file: loom models must not run in parallel in one process.
#[test]
fn publication_model() {
    check_runtime_model(
        "publication_model",
        "view publication",
        "torn publish",
        |f| f.torn_publish = true,
        model,
    );
}
