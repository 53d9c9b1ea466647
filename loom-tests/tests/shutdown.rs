//! Model 4: shutdown. A writer appends while the runtime shuts down: the
//! append is either acknowledged (and in the log, at its position) or
//! rejected with `Closed` (and not in the log); it is never lost, never
//! acknowledged twice, and the writer never hangs. Here the sequencer
//! thread sequences it (`shutdown_combining.rs`: the writer itself).
#![cfg(loom)]

use rwlog::Sequencing;
use rwlog_loom_tests::check_runtime_model;

/// One test per file: loom models must not run in parallel in one process.
#[test]
fn shutdown_model() {
    check_runtime_model(
        "shutdown_model",
        "shutdown drains",
        "unguarded gate",
        |f| f.unguarded_gate = true,
        |faults| rwlog_loom_tests::shutdown_model(faults, Sequencing::Thread),
    );
}
