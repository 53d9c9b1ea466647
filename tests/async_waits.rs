//! The waiting reads as futures, on a current-thread runtime: a task
//! awaiting a position, a change, a strong read or a projection must not
//! block the only worker, or the task that appends could never run. Each
//! wait here would hang (the timeout fails the test) if it blocked.
#![cfg(feature = "async")]

#[path = "support/domain.rs"]
mod domain;
#[path = "support/tasks.rs"]
mod tasks;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::{add, Sums};
use rwlog::{Position, Staleness};
use tasks::current_thread;

/// A generous bound: the waits take microseconds; only a blocked worker
/// (a hang) reaches it.
const HANG: Duration = Duration::from_secs(10);

/// [`tasks::within`] with [`HANG`].
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tasks::within(HANG, f)
}

#[test]
fn changed_and_at_least_wait_for_a_task_on_the_same_thread() {
    let rt = domain::sums_runtime(|b| b);
    let r = rt.reader::<Sums>("sums").unwrap();
    let w = rt.writer();
    let r2 = r.clone();
    let took = within(move || {
        current_thread().block_on(async move {
            let r = r2;
            let started = Instant::now();
            let waiter = {
                let r = r.clone();
                tokio::spawn(async move {
                    let s = r.changed(Position::ZERO).await.unwrap();
                    assert!(s.position() >= Position(1));
                    let next = r.changed(s.position()).await.unwrap();
                    assert!(next.position() > s.position());
                    next.position()
                })
            };
            let appender = tokio::spawn(async move {
                // The waiter runs first and parks; the appends wake it.
                tokio::task::yield_now().await;
                let a = w.append_async("s", add(1, 1)).await.unwrap();
                tokio::task::yield_now().await;
                w.append_async("s", add(1, 1)).await.unwrap();
                a.position
            });
            let (seen, first) = (waiter.await.unwrap(), appender.await.unwrap());
            assert!(seen > first);
            let s = r.at_least_async(first).await.unwrap();
            assert!(s.position() >= first);
            let s = r.strong_async().await.unwrap();
            assert_eq!(s.position(), Position(2));
            let s = r.bounded_async(Staleness::positions(0)).await.unwrap();
            assert_eq!(s.0[&1], 2);
            started.elapsed()
        })
    });
    println!("changed / at_least_async / strong_async on one thread: {took:?}");
    // Beyond the head, at_least_async refuses as at_least does.
    let beyond = current_thread().block_on(r.at_least_async(Position(99)));
    assert!(matches!(
        beyond,
        Err(rwlog::Error::PositionOutOfRange { .. })
    ));
}

#[test]
fn changed_ends_with_closed_when_the_runtime_shuts_down() {
    let rt = domain::sums_runtime(|b| b);
    let r = rt.reader::<Sums>("sums").unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let ended = std::thread::spawn(move || {
        within(move || {
            current_thread().block_on(async move {
                let waiting = r.changed(Position::ZERO);
                started_tx.send(()).unwrap();
                waiting.await.map(|s| s.position())
            })
        })
    });
    started_rx.recv().unwrap();
    rt.shutdown().unwrap();
    let ended = ended.join().unwrap();
    assert!(matches!(ended, Err(rwlog::Error::Closed)), "{ended:?}");
}

#[test]
fn a_projection_is_awaited_without_blocking() {
    let rt = domain::sums_runtime(|b| b);
    let seen = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&seen);
    let p = rt
        .projection("count", move |_: &rwlog::Recorded<domain::Add>| {
            counted.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    let w = rt.writer();
    let p = within(move || {
        current_thread().block_on(async move {
            let appender = tokio::spawn(async move {
                tokio::task::yield_now().await;
                for i in 0..3 {
                    w.append_async("s", add(i, 1)).await.unwrap();
                }
            });
            p.wait_for_async(Position(3)).await.unwrap();
            appender.await.unwrap();
            p
        })
    });
    assert_eq!(seen.load(Ordering::Relaxed), 3);
    // The blocking wait is woken the same way, not by polling.
    p.wait_for(Position(3), Duration::from_secs(1)).unwrap();
    let stopped = p.stop().unwrap();
    assert_eq!(stopped, Position(3));
}

/// A waker that counts as alive while anything holds it.
struct Noop;
impl std::task::Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Polls `fut` once with a fresh waker and drops it pending (a timed-out
/// long poll); returns the waker's weak handle.
fn poll_once_then_drop<F: std::future::Future>(fut: F) -> std::sync::Weak<Noop> {
    let task = Arc::new(Noop);
    let weak = Arc::downgrade(&task);
    let waker = std::task::Waker::from(task);
    let mut fut = Box::pin(fut);
    let polled = fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker));
    assert!(polled.is_pending(), "{}", std::any::type_name::<F>());
    weak
}

#[test]
fn a_wait_dropped_before_its_wake_up_takes_its_waker_out() {
    let rt = domain::sums_runtime(|b| b);
    let r = rt.reader::<Sums>("sums").unwrap();
    let p = rt.projection("p", |_| Ok(())).unwrap();
    let mut weak = Vec::new();
    for _ in 0..2_000 {
        weak.push(poll_once_then_drop(r.changed(Position::ZERO)));
        weak.push(poll_once_then_drop(p.wait_for_async(Position(1))));
        weak.push(poll_once_then_drop({
            let mut s = rt.subscribe_stream(Position(1));
            async move { futures::StreamExt::next(&mut s).await }
        }));
    }
    // Nothing was appended: no notify took them; the drops must have.
    let alive = weak.iter().filter(|w| w.upgrade().is_some()).count();
    assert_eq!(alive, 0, "{alive} wakers of dropped waits still registered");
    // A wait that is not dropped is still woken.
    let woken = Arc::new(Woken(AtomicU64::new(0)));
    let waker = std::task::Waker::from(Arc::clone(&woken));
    let mut wait = Box::pin(r.changed(Position::ZERO));
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(wait.as_mut().poll(&mut cx).is_pending());
    rt.writer().append("s", add(1, 1)).unwrap();
    assert_eq!(woken.0.load(Ordering::SeqCst), 1);
    assert!(wait.as_mut().poll(&mut cx).is_ready());
    drop(p);
}

/// A waker that counts its wake-ups.
struct Woken(AtomicU64);
impl std::task::Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
