//! Model 9: the log letting go of its front (archiving) while a reader
//! reads. The first position is raised before the chunk tables lose
//! anything, and a reader loads the tables before the first position, so
//! every position from the first it sees to the head it sees is readable:
//! a read never comes back short.
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
            let it = log.read_all(..);
            let (first, head) = (log.first(), log.head());
            // Whatever the interleaving: the iterator holds every position
            // from the first it saw, and that first is at most the one
            // loaded after it.
            let got: Vec<u64> = it.map(|e| e.position().0).collect();
            assert_eq!(
                got.last().copied(),
                Some(head.0),
                "a read came back short: {got:?}"
            );
            assert!(
                got.first().is_some_and(|p| Position(*p) <= first),
                "{got:?}"
            );
        })
    };
    rt.log().release_before_for_model(Position(2));
    reader.join().unwrap();
    assert_eq!(rt.log().first(), Position(2));
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
