//! Guarantee 9, first half: one runtime owns a durable directory at a time.
//! A second opener, in this process or another, is refused with
//! `Error::Locked` naming the directory and the holder; the first goes on;
//! the lock is released on shutdown, on drop and when the holder dies.

#[path = "support/child.rs"]
mod child;
#[path = "support/domain.rs"]
mod domain;

use std::path::Path;

use domain::durable::{fold, Put, Totals};
use rwlog::{Error, Position, Runtime, Storage};

const CHILD_DIR: &str = "RWLOG_OWNER_CHILD_DIR";

fn open(dir: &Path) -> rwlog::Result<Runtime<Put>> {
    Runtime::<Put>::builder()
        .storage(Storage::dir(dir))
        .persisted_view("totals", Totals::default())
        .snapshot_every(10)
        .disk_snapshot_every(10)
        .build()
}

fn put(key: u64) -> Put {
    Put { key, amount: 1 }
}

fn expect_locked(result: rwlog::Result<Runtime<Put>>, dir: &Path, holder: u32) {
    match result {
        Err(Error::Locked { dir: d, holder: h }) => {
            assert_eq!(d, dir);
            assert_eq!(h, Some(holder), "the holder's process id");
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(rt) => panic!("a second runtime opened the directory (head {})", rt.head()),
    }
}

/// Every event appended is there, and the view is their fold.
fn check(dir: &Path, events: u64) {
    let rt = open(dir).unwrap();
    assert_eq!(rt.head(), Position(events));
    let all: Vec<_> = rt.log().read_all(..).collect();
    let view = rt.reader::<Totals>("totals").unwrap().latest().into_arc();
    assert_eq!(**view, fold(all.iter().map(|e| &**e)));
}

#[test]
fn a_second_runtime_in_the_same_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).unwrap();
    let w = first.writer();
    for k in 0..20 {
        w.append("s", put(k)).unwrap();
    }
    expect_locked(open(dir.path()), dir.path(), std::process::id());
    // The refused open changed nothing: the first runtime goes on.
    for k in 20..40 {
        w.append("s", put(k)).unwrap();
    }
    let message = open(dir.path()).err().unwrap().to_string();
    assert!(message.contains("in use by another runtime"), "{message}");
    first.shutdown().unwrap();
    // Shutdown released it (the handle is still alive).
    let second = open(dir.path()).unwrap();
    assert_eq!(second.head(), Position(40));
    // So does dropping without a shutdown.
    drop(second);
    drop(first);
    check(dir.path(), 40);
}

#[test]
fn a_projection_keeps_the_directory_until_the_runtime_is_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path()).unwrap();
    rt.writer().append("s", put(1)).unwrap();
    let p = rt
        .projection("count", |_: &rwlog::Recorded<Put>| Ok(()))
        .unwrap();
    p.wait_for(Position(1), std::time::Duration::from_secs(10))
        .unwrap();
    rt.shutdown().unwrap();
    // The projection stopped with the runtime and saved its checkpoint:
    // the directory is free, and the checkpoint is where it resumes.
    assert!(!rt.stats().projections[0].running);
    let again = open(dir.path()).unwrap();
    assert_eq!(again.stats().projections.len(), 0);
    drop(p);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = std::sync::Arc::clone(&seen);
    again.writer().append("s", put(2)).unwrap();
    let p = again
        .projection("count", move |e: &rwlog::Recorded<Put>| {
            count.store(e.position().0, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    p.wait_for(Position(2), std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(p.stop().unwrap(), Position(2));
}

/// The child: opens the directory (or reports why it cannot), appends when
/// told to, and exits when its stdin closes.
#[test]
fn owner_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let rt = match open(Path::new(&dir)) {
        Ok(rt) => rt,
        Err(Error::Locked { holder, .. }) => {
            child::tell_parent(&format!("LOCKED {}", holder.unwrap_or(0)));
            return;
        }
        Err(e) => panic!("{e}"),
    };
    child::tell_parent("OPENED");
    let w = rt.writer();
    while child::wait_for_parent() == "append" {
        let ack = w.append("child", put(7)).unwrap();
        child::tell_parent(&format!("ACK {}", ack.position));
    }
    rt.shutdown().unwrap();
    child::tell_parent("CLOSED");
}

#[test]
fn a_second_process_is_refused_while_the_first_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    // This process holds it: the child is refused, naming this process.
    let rt = open(dir.path()).unwrap();
    rt.writer().append("s", put(1)).unwrap();
    let mut other = child::spawn("owner_child", &[(CHILD_DIR, path)]);
    assert_eq!(other.expect("LOCKED "), std::process::id().to_string());
    other.finish();
    rt.writer().append("s", put(2)).unwrap();
    rt.shutdown().unwrap();

    // The child holds it: this process is refused, naming the child; the
    // child keeps appending.
    let mut holder = child::spawn("owner_child", &[(CHILD_DIR, path)]);
    holder.expect("OPENED");
    expect_locked(open(dir.path()), dir.path(), holder.pid());
    for p in 3..=5 {
        holder.say("append");
        assert_eq!(holder.expect("ACK "), p.to_string());
    }
    expect_locked(open(dir.path()), dir.path(), holder.pid());
    holder.say("exit");
    holder.expect("CLOSED");
    holder.finish();
    check(dir.path(), 5);

    // A holder killed with SIGKILL releases it too.
    let mut holder = child::spawn("owner_child", &[(CHILD_DIR, path)]);
    holder.expect("OPENED");
    holder.say("append");
    assert_eq!(holder.expect("ACK "), "6");
    expect_locked(open(dir.path()), dir.path(), holder.pid());
    holder.kill();
    check(dir.path(), 6);
}

#[test]
fn shutdown_releases_the_directory_even_with_projections_running() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..50 {
        let rt = open(dir.path()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let p = rt
            .projection("slow", |_: &rwlog::Recorded<Put>| {
                std::thread::sleep(std::time::Duration::from_micros(200));
                Ok(())
            })
            .unwrap();
        rt.writer().append("s", put(round)).unwrap();
        rt.shutdown().unwrap();
        // Reopened at once, while the old handles (runtime, projection)
        // are still alive: shutdown joined the projection's thread.
        let again = open(dir.path()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        drop((p, rt));
        again.shutdown().unwrap();
    }
}

#[test]
fn starting_projections_while_shutting_down_never_deadlocks() {
    for round in 0..100 {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = std::sync::Arc::new(
                Runtime::<Put>::builder()
                    .view("totals", Totals::default())
                    .build()
                    .unwrap(),
            );
            let starter = {
                let rt = std::sync::Arc::clone(&rt);
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let name = format!("p{i}");
                        match rt.projection(&name, |_: &rwlog::Recorded<Put>| Ok(())) {
                            Ok(p) => drop(p),
                            Err(Error::Closed) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            };
            rt.shutdown().unwrap();
            starter.join().unwrap();
            done_tx.send(()).unwrap();
        });
        done_rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("round {round}: shutdown and projection start deadlocked"));
    }
}
