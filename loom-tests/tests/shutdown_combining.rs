//! Model 5: shutdown, with combining. A writer appends while the runtime shuts down: the
//! append is either acknowledged (and in the log, at its position) or
//! rejected with `Closed` (and not in the log); it is never lost, never
//! acknowledged twice, and the writer never hangs. Here the writer
//! sequences it itself, racing the sequencer thread's final drain.
#![cfg(loom)]

use rwlog::Sequencing;
use rwlog_loom_tests::check_runtime_model;

/// One test per file: loom models must not run in parallel in one process.
#[test]
fn shutdown_combining_model() {
    check_runtime_model(
        "shutdown_combining_model",
        "shutdown drains, combining",
        "unguarded gate",
        |f| f.unguarded_gate = true,
        |faults| rwlog_loom_tests::shutdown_model(faults, Sequencing::Combining),
    );
}
