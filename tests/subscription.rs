//! Subscriptions: history then live events, no gap, no duplicate.

#[path = "support/domain.rs"]
mod domain;

use std::thread;
use std::time::Duration;

use domain::{add, Add};
use rwlog::{Position, Runtime};

#[test]
fn catch_up_then_live_with_no_gap_and_no_duplicate() {
    let rt = Runtime::<Add>::builder().max_batch(8).build().unwrap();
    let w = rt.writer();
    for i in 0..500 {
        w.append("s", add(i, 1)).unwrap();
    }
    let subs: Vec<_> = [Position(1), Position(250), Position(0)]
        .into_iter()
        .map(|from| {
            let mut sub = rt.subscribe(from);
            thread::spawn(move || {
                let mut got = Vec::new();
                while got.len() < 2000 - (from.0.max(1) as usize - 1) {
                    got.push(sub.next().expect("live events").position().0);
                }
                (from.0.max(1), got)
            })
        })
        .collect();
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let w = w.clone();
            thread::spawn(move || {
                for i in 0..500 {
                    drop(w.submit(format!("w{t}"), add(i, 1)).unwrap());
                }
            })
        })
        .collect();
    for h in writers {
        h.join().unwrap();
    }
    for h in subs {
        let (from, got) = h.join().unwrap();
        assert_eq!(got, (from..=2000).collect::<Vec<_>>());
    }
}

#[test]
fn a_subscription_ends_after_shutdown_once_drained() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let w = rt.writer();
    let sub = rt.subscribe(Position(1));
    let reader = thread::spawn(move || sub.map(|e| e.position().0).collect::<Vec<_>>());
    for i in 0..100 {
        drop(w.submit("s", add(i, 1)).unwrap());
    }
    rt.shutdown().unwrap();
    assert_eq!(reader.join().unwrap(), (1..=100).collect::<Vec<_>>());
}

#[test]
fn try_next_and_timeouts_do_not_block() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let mut sub = rt.subscribe(Position(1));
    assert!(sub.try_next().is_none());
    assert!(sub.next_timeout(Duration::from_millis(10)).is_none());
    rt.writer().append("s", add(1, 1)).unwrap();
    assert_eq!(sub.try_next().unwrap().position(), Position(1));
    assert_eq!(sub.position(), Position(2));
}
