//! Async tests on a current-thread runtime, watched from outside: a wait
//! that blocks the runtime's only thread blocks its timers too, so only
//! another thread can tell a hang.
#![allow(dead_code)]

use std::time::Duration;

/// A current-thread tokio runtime with timers.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Runs `f` (which drives a current-thread runtime) on a thread of its own
/// and fails if it has not finished within `hang`.
pub fn within<T: Send + 'static>(hang: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(hang)
        .expect("a wait blocked the runtime's only thread (or hung)")
}
