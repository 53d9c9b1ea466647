//! The async API: `append_async`, awaiting tickets, and subscriptions as
//! streams.

#[path = "support/domain.rs"]
mod domain;

use std::future::poll_fn;
use std::pin::Pin;

use domain::{add, held_runtime, wait_for_head, Add, Sums, HOLD};
use futures_core::Stream;
use rwlog::{Position, Runtime};

async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_async_from_many_tasks() {
    let rt = domain::sums_runtime(|b| b.queue_capacity(4));
    let tasks: Vec<_> = (0..8u64)
        .map(|t| {
            let w = rt.writer();
            tokio::spawn(async move {
                let mut last = Position::ZERO;
                for i in 0..200 {
                    let a = w.append_async("s", add(t, 1)).await.unwrap();
                    assert!(a.position > last);
                    last = a.position;
                    if i % 50 == 0 {
                        let t = w.submit("s", add(t, 1)).unwrap();
                        t.await.unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let sums = rt.reader::<Sums>("sums").unwrap().strong().unwrap();
    assert_eq!(sums.position(), Position(8 * 204));
    assert!(sums.0.values().all(|&v| v == 204));
}

#[tokio::test(flavor = "current_thread")]
async fn append_async_waits_for_room_without_blocking_the_executor() {
    let (rt, valve) = held_runtime(|b| b.queue_capacity(1));
    let w = rt.writer();
    let stall = w.submit("s", add(HOLD, 1)).unwrap();
    wait_for_head(rt.log(), Position(1));
    let _queued = w.try_submit("s", add(1, 1)).unwrap();
    // The queue is full: this append must wait for room off the executor.
    let pending = tokio::spawn({
        let w = w.clone();
        async move { w.append_async("s", add(2, 1)).await }
    });
    tokio::task::yield_now().await;
    assert!(!pending.is_finished());
    valve.open();
    assert_eq!(pending.await.unwrap().unwrap().position, Position(3));
    stall.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_stream_catches_up_then_follows() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let w = rt.writer();
    for i in 0..10 {
        w.append_async("s", add(i, 1)).await.unwrap();
    }
    let mut sub = rt.subscribe_stream(Position(1));
    let writer = tokio::spawn(async move {
        for i in 10..300 {
            w.append_async("s", add(i, 1)).await.unwrap();
        }
    });
    for p in 1..=300 {
        assert_eq!(next(&mut sub).await.unwrap().position(), Position(p));
    }
    writer.await.unwrap();
    drop(rt);
    assert!(next(&mut sub).await.is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn a_stream_and_an_iterator_are_one_cursor() {
    use futures::StreamExt;
    let rt = Runtime::<Add>::builder().build().unwrap();
    let w = rt.writer();
    for i in 0..4 {
        w.append_async("s", add(i, 1)).await.unwrap();
    }
    let mut sub = rt.subscribe(Position(1));
    assert_eq!(sub.next().map(|e| e.position()), Some(Position(1)));
    let mut stream = sub.into_stream();
    assert_eq!(stream.position(), Position(2));
    // StreamExt::next, unambiguous: a stream is not an iterator.
    assert_eq!(stream.next().await.map(|e| e.position()), Some(Position(2)));
    let mut sub = stream.into_blocking();
    assert_eq!(sub.next().map(|e| e.position()), Some(Position(3)));
}

/// An event a durable log can store.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Tick(u64);

impl rwlog::Event for Tick {}

/// Where a view's `apply` ran: the thread that sequenced the batch, which
/// is also the one that synced it to a durable log.
#[derive(Clone, Default)]
struct Threads(std::sync::Arc<std::sync::Mutex<Vec<std::thread::ThreadId>>>);

impl rwlog::View<Tick> for Threads {
    fn apply(&mut self, _: &rwlog::Recorded<Tick>) {
        self.0.lock().unwrap().push(std::thread::current().id());
    }
}

/// An executor's thread never syncs a file: an async append to a durable
/// log is sequenced (written, synced, applied) on rwlog's thread, while in
/// memory the task sequences its own append when nobody else does.
#[test]
fn an_async_append_is_sequenced_on_the_task_only_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    for durable in [true, false] {
        let seen = Threads::default();
        let mut builder = Runtime::<Tick>::builder().view("threads", seen.clone());
        if durable {
            builder = builder.storage(rwlog::Storage::dir(dir.path()));
        }
        let rt = builder.build().unwrap();
        let executor = std::thread::current().id();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                let w = rt.writer();
                for i in 0..50 {
                    w.append_async("s", Tick(i)).await.unwrap();
                }
            });
        // Every copy of the view (the published one and its spare) shares
        // the list: each event is applied to both, on the sequencing thread.
        let threads = seen.0.lock().unwrap().clone();
        assert!(threads.len() >= 50);
        let on_executor = threads.iter().filter(|&&t| t == executor).count();
        if durable {
            assert_eq!(
                on_executor, 0,
                "a durable batch was sequenced on the executor"
            );
        } else {
            assert_eq!(
                on_executor,
                threads.len(),
                "an idle in-memory append is sequenced on its task"
            );
        }
        rt.shutdown().unwrap();
    }
}
