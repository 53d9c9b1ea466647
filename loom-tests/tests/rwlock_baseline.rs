//! Model 5: the same reader-writer guarantees on the design rwlog replaces,
//! `RwLock<State>`: no torn state (two fields a writer changes together are
//! always seen together), monotonic reads, and read-your-writes. The broken
//! variant reads the two fields under two separate read locks.
#![cfg(loom)]

use std::sync::Arc;

use loom::sync::RwLock;
use loom::thread;
use rwlog_loom_tests::check_model;

/// A balance moved between two accounts: `a + b` is always 100.
struct State {
    version: u64,
    a: u64,
    b: u64,
}

fn model(torn_reads: bool) {
    let state = Arc::new(RwLock::new(State {
        version: 0,
        a: 100,
        b: 0,
    }));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let state = Arc::clone(&state);
            thread::spawn(move || {
                let mut last = 0;
                for _ in 0..2 {
                    let (version, a, b) = if torn_reads {
                        let a = state.read().unwrap().a;
                        let s = state.read().unwrap();
                        (s.version, a, s.b)
                    } else {
                        let s = state.read().unwrap();
                        (s.version, s.a, s.b)
                    };
                    assert_eq!(a + b, 100, "torn state");
                    assert!(version >= last, "a reader went back");
                    last = version;
                }
            })
        })
        .collect();
    for _ in 0..2 {
        let written = {
            let mut s = state.write().unwrap();
            s.version += 1;
            s.a -= 10;
            s.b += 10;
            s.version
        };
        // Read-your-writes: the writer's next read sees its write.
        assert!(state.read().unwrap().version >= written);
    }
    for r in readers {
        r.join().unwrap();
    }
}

/// One test per file: loom models must not run in parallel in one process.
#[test]
fn rwlock_baseline_model() {
    check_model(
        "rwlock_baseline_model",
        "RwLock baseline",
        "RwLock",
        "two read locks",
        model,
    );
}
