//! Model 4: shutdown. A writer appends while the runtime shuts down: the
//! append is either acknowledged (and in the log, at its position) or
//! rejected with `Closed` (and not in the log); it is never lost, never
//! acknowledged twice, and the writer never hangs.
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use rwlog::{Error, Faults, Position, Runtime};
use rwlog_loom_tests::{check_runtime_model, Note};

fn model(faults: Faults) {
    let rt = Arc::new(Runtime::<Note>::builder().faults(faults).build().unwrap());
    let w = rt.writer();
    let writer = thread::spawn(move || w.append("s", Note(1)));
    rt.shutdown().unwrap();
    match writer.join().unwrap() {
        Ok(ack) => {
            assert_eq!(ack.position, Position(1));
            assert_eq!(rt.log().head(), Position(1), "an acked append is missing");
        }
        Err(Error::Closed) => {
            assert_eq!(rt.log().head(), Position(0), "a refused append was written")
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// One test per file: loom models must not run in parallel in one process.
#[test]
fn shutdown_model() {
    check_runtime_model(
        "shutdown_model",
        "shutdown drains",
        "unguarded gate",
        |f| f.unguarded_gate = true,
        model,
    );
}
