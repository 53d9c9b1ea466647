//! Model 2: the log's head and its entries. A reader that sees `head >= p`
//! reads event `p` fully written: its batch and the entry that maps `p` to
//! it (the head is published with a Release store after both are written,
//! and loaded with Acquire).
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use rwlog::{Faults, Position, Runtime, Sequencing};
use rwlog_loom_tests::{check_runtime_model, Note};

fn model(faults: Faults) {
    let rt = Arc::new(
        Runtime::<Note>::builder()
            .sequencing(Sequencing::Thread)
            .faults(faults)
            .build()
            .unwrap(),
    );
    let w = rt.writer();
    let tickets = [
        w.submit("s", Note(7)).unwrap(),
        w.submit("s", Note(8)).unwrap(),
    ];
    let reader = {
        let rt = Arc::clone(&rt);
        thread::spawn(move || {
            // Whatever the interleaving: a visible head means written
            // events, in chunk tables that reach them.
            let head = rt.log().head();
            for (p, note) in [(1, 7), (2, 8)] {
                if head >= Position(p) {
                    let e = rt
                        .log()
                        .get(Position(p))
                        .expect("the head covers the position, but it reads empty");
                    assert_eq!(e.payload(), &Note(note));
                }
            }
        })
    };
    reader.join().unwrap();
    for t in tickets {
        t.wait().unwrap();
    }
    rt.shutdown().unwrap();
}

/// One test per file: loom models must not run in parallel in one process.
#[test]
fn log_head_model() {
    check_runtime_model(
        "log_head_model",
        "log head vs slots",
        "relaxed head store",
        |f| f.relaxed_head = true,
        model,
    );
}
