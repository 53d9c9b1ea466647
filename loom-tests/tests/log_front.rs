//! Model 9: the log letting go of its front (archiving) while a reader
//! reads. The first position is raised before the chunk tables lose
//! anything, and a reader loads the tables before the first position, so
//! every position from the first it sees to the head it sees is readable:
//! a read never comes back short. An append racing it is kept.
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
    for n in [7, 8] {
        w.submit("s", Note(n)).unwrap().wait().unwrap();
    }
    let reader = {
        let rt = Arc::clone(&rt);
        thread::spawn(move || {
            let log = rt.log();
            let head = log.head();
            let it = log.read_all(..);
            let first = log.first();
            // Whatever the interleaving: every position held from before
            // the read until after it is read, in order, with no gap.
            let got: Vec<u64> = it.map(|e| e.position().0).collect();
            for p in first.0..=head.0 {
                assert!(
                    got.contains(&p),
                    "a read came back short: {got:?}, {p} missing"
                );
            }
            assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");
        })
    };
    // The sequencer appends a third event while the front goes, up to the
    // head + 1 at the time: the batch being written is kept.
    let third = w.submit("s", Note(9)).unwrap();
    rt.log().release_before_for_model(Position(2));
    rt.log().release_before_for_model(Position(3));
    reader.join().unwrap();
    let at = third.wait().unwrap().position;
    assert_eq!(rt.log().get(at).map(|e| e.payload().clone()), Some(Note(9)));
    assert!(rt.log().first() >= Position(2));
    rt.shutdown().unwrap();
}

/// One test per file: loom models must not run in parallel in one process.
#[test]
fn log_front_model() {
    check_runtime_model(
        "log_front_model",
        "archiving vs readers",
        "first raised after release",
        |f| f.late_first = true,
        model,
    );
}
