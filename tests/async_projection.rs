//! Async projections: an `async` handler run as a task. On a current-thread
//! runtime the handler can await work of other tasks on the same thread,
//! stopping never blocks that thread, and checkpoints resume it after a
//! restart. Each test runs under an outside watch, so a blocked thread
//! fails rather than hangs.
#![cfg(all(feature = "async", feature = "durable"))]

#[path = "support/tasks.rs"]
mod tasks;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rwlog::{Error, Event, Position, Runtime, Storage};
use serde::{Deserialize, Serialize};
use tasks::current_thread;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order(u64);
impl Event for Order {}

const HANG: Duration = Duration::from_secs(20);

/// [`tasks::within`] with [`HANG`].
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tasks::within(HANG, f)
}

#[test]
fn the_handler_awaits_another_task_on_the_same_thread() {
    let seen = within(|| {
        current_thread().block_on(async {
            let rt = Runtime::<Order>::builder().build().unwrap();
            // A consumer task with a channel of one slot: each send waits
            // for the consumer, which runs only if the handler yields.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1);
            let consumer = tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(v) = rx.recv().await {
                    got.push(v);
                }
                got
            });
            let p = rt
                .projection_async("forward", move |e| {
                    let tx = tx.clone();
                    async move {
                        tx.send(e.payload().0).await?;
                        tokio::task::yield_now().await;
                        Ok(())
                    }
                })
                .unwrap();
            let w = rt.writer();
            for i in 1..=50 {
                w.append_async("o", Order(i)).await.unwrap();
            }
            p.wait_for_async(Position(50)).await.unwrap();
            assert_eq!(p.handled(), Position(50));
            assert_eq!(p.stop().await.unwrap(), Position(50));
            // The handler (and its sender) are gone: the consumer ends.
            consumer.await.unwrap()
        })
    });
    assert_eq!(seen, (1..=50).collect::<Vec<_>>());
}

#[test]
fn a_restarted_projection_resumes_after_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (first, second) = within(move || {
        current_thread().block_on(async move {
            let open = || {
                Runtime::<Order>::builder()
                    .storage(Storage::dir(&path))
                    .build()
                    .unwrap()
            };
            let recorder = |log: Arc<Mutex<Vec<u64>>>| {
                move |e: rwlog::EventRef<Order>| {
                    let log = Arc::clone(&log);
                    async move {
                        log.lock().unwrap().push(e.payload().0);
                        Ok(())
                    }
                }
            };
            let first = Arc::new(Mutex::new(Vec::new()));
            let rt = open();
            let p = rt
                .projection_async("audit", recorder(Arc::clone(&first)))
                .unwrap();
            for i in 1..=10 {
                rt.writer().append_async("o", Order(i)).await.unwrap();
            }
            p.wait_for_async(Position(10)).await.unwrap();
            drop(p); // stops without waiting; the checkpoint is saved
            rt.shutdown().unwrap();
            drop(rt);

            let second = Arc::new(Mutex::new(Vec::new()));
            let rt = open();
            for i in 11..=15 {
                rt.writer().append_async("o", Order(i)).await.unwrap();
            }
            let p = rt
                .projection_async("audit", recorder(Arc::clone(&second)))
                .unwrap();
            p.wait_for_async(Position(15)).await.unwrap();
            assert_eq!(p.stop().await.unwrap(), Position(15));
            let first = first.lock().unwrap().clone();
            let second = second.lock().unwrap().clone();
            (first, second)
        })
    });
    assert_eq!(first, (1..=10).collect::<Vec<_>>());
    assert_eq!(second, (11..=15).collect::<Vec<_>>());
}

#[test]
fn an_error_or_a_panic_stops_only_that_projection() {
    within(|| {
        current_thread().block_on(async {
            let rt = Runtime::<Order>::builder().build().unwrap();
            let failing = rt
                .projection_async("failing", |e| async move {
                    if e.payload().0 == 3 {
                        return Err("no stock for order 3".into());
                    }
                    Ok(())
                })
                .unwrap();
            let panicking = rt
                .projection_async("panicking", |e| async move {
                    tokio::task::yield_now().await;
                    assert!(e.payload().0 != 2, "order 2 is cursed");
                    Ok(())
                })
                .unwrap();
            let fine = rt.projection_async("fine", |_| async { Ok(()) }).unwrap();
            for i in 1..=5 {
                rt.writer().append_async("o", Order(i)).await.unwrap();
            }
            fine.wait_for_async(Position(5)).await.unwrap();
            let err = failing.wait_for_async(Position(5)).await.unwrap_err();
            assert!(err.to_string().contains("no stock for order 3"), "{err}");
            assert_eq!(failing.handled(), Position(2));
            assert!(failing.failure().unwrap().contains("at position 3"));
            let err = panicking.wait_for_async(Position(5)).await.unwrap_err();
            assert!(err.to_string().contains("order 2 is cursed"), "{err}");
            assert_eq!(panicking.handled(), Position(1));
            let stats = rt.stats();
            let failed: Vec<_> = stats
                .projections
                .iter()
                .filter(|p| p.failure.is_some())
                .map(|p| p.name.as_str())
                .collect();
            assert_eq!(failed, ["failing", "panicking"]);
            assert_eq!(failing.stop().await.unwrap(), Position(2));
        })
    });
}

#[test]
fn shutting_down_from_a_task_does_not_wait_for_a_handler_that_waits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    within(move || {
        let first = path.clone();
        current_thread().block_on(async move {
            let rt = Runtime::<Order>::builder()
                .storage(Storage::dir(&first))
                .build()
                .unwrap();
            // Handles event 1, then waits forever on event 2.
            let p = rt
                .projection_async("stuck", |e| async move {
                    if e.payload().0 == 2 {
                        std::future::pending::<()>().await;
                    }
                    Ok(())
                })
                .unwrap();
            rt.writer().append_async("o", Order(1)).await.unwrap();
            rt.writer().append_async("o", Order(2)).await.unwrap();
            p.wait_for_async(Position(1)).await.unwrap();
            // On this runtime's only thread: must return, not wait for the
            // handler, and leave the checkpoint at the last event handled.
            rt.shutdown().unwrap();
            assert_eq!(rt.stats().projections[0].checkpoint, Position(1));
            assert!(!rt.stats().projections[0].running);
            drop(p);
        });
        // Reopened: the stuck event is delivered again (at least once).
        let rt = Runtime::<Order>::builder()
            .storage(Storage::dir(&path))
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let p = rt
            .projection("stuck", move |e| {
                log.lock().unwrap().push(e.payload().0);
                Ok(())
            })
            .unwrap();
        p.wait_for(Position(2), HANG).unwrap();
        assert_eq!(*seen.lock().unwrap(), [2]);
    });
}

#[test]
fn outside_a_tokio_runtime_it_is_a_configuration_error() {
    let rt = Runtime::<Order>::builder().build().unwrap();
    match rt.projection_async("p", |_| async { Ok(()) }) {
        Err(Error::Config(why)) => assert!(why.contains("tokio"), "{why}"),
        other => panic!("{other:?}"),
    }
    // So is a name that cannot be a file name, inside one.
    current_thread().block_on(async {
        assert!(matches!(
            rt.projection_async("../p", |_| async { Ok(()) }),
            Err(Error::Config(_))
        ));
    });
}

#[test]
fn a_handler_that_panics_before_its_future_fails_and_a_stuck_one_is_stopped() {
    within(|| {
        current_thread().block_on(async {
            let rt = Runtime::<Order>::builder().build().unwrap();
            let eager = rt
                .projection_async("eager", |e: rwlog::EventRef<Order>| {
                    assert!(e.payload().0 != 2, "refused before any await");
                    async { Ok(()) }
                })
                .unwrap();
            let stuck = rt
                .projection_async("stuck", |e| async move {
                    if e.payload().0 == 2 {
                        std::future::pending::<()>().await;
                    }
                    Ok(())
                })
                .unwrap();
            for i in 1..=3 {
                rt.writer().append_async("o", Order(i)).await.unwrap();
            }
            let err = eager.wait_for_async(Position(3)).await.unwrap_err();
            assert!(
                err.to_string().contains("refused before any await"),
                "{err}"
            );
            assert_eq!(eager.handled(), Position(1));
            stuck.wait_for_async(Position(1)).await.unwrap();
            // Waiting on event 2 forever: stop cancels it and returns.
            assert_eq!(stuck.stop().await.unwrap(), Position(1));
        })
    });
}

#[test]
fn a_running_projections_name_is_refused() {
    within(|| {
        current_thread().block_on(async {
            let rt = Runtime::<Order>::builder().build().unwrap();
            let first = rt.projection_async("twice", |_| async { Ok(()) }).unwrap();
            assert!(matches!(
                rt.projection_async("twice", |_| async { Ok(()) }),
                Err(Error::Config(_))
            ));
            assert!(matches!(
                rt.projection("twice", |_| Ok(())),
                Err(Error::Config(_))
            ));
            first.stop().await.unwrap();
            // Stopped: the name is free again.
            rt.projection_async("twice", |_| async { Ok(()) }).unwrap();
        })
    });
}

#[test]
fn a_projection_whose_tokio_runtime_is_gone_ends_its_waits() {
    within(|| {
        let rt = Runtime::<Order>::builder().build().unwrap();
        let tasks = current_thread();
        let p = tasks.block_on(async { rt.projection_async("p", |_| async { Ok(()) }).unwrap() });
        drop(tasks); // its task is dropped with it, never to run again
        let waited = current_thread().block_on(p.wait_for_async(Position(1)));
        assert!(matches!(waited, Err(Error::Closed)), "{waited:?}");
        assert!(!rt.stats().projections[0].running);
    });
}
