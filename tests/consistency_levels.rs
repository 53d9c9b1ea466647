//! Guarantee 5: `at_least(p)` returns a snapshot at p or later
//! (read-your-writes), `strong()` includes every append acknowledged before
//! the call (linearizable), `bounded(s)` is at most s behind the head and
//! waits only when it must; `latest()` never waits.

#[path = "support/domain.rs"]
mod domain;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use domain::{add, held_runtime, wait_for_head, Held, Sums, HOLD};
use rwlog::{Error, Position, Staleness};

#[test]
fn at_least_waits_for_the_view_to_reach_the_position() {
    let (rt, valve) = held_runtime(|b| b);
    let w = rt.writer();
    w.append("s", add(1, 10)).unwrap();
    let ticket = w.submit("s", add(HOLD, 5)).unwrap();
    wait_for_head(rt.log(), Position(2));

    let r = rt.reader::<Held>("held").unwrap();
    // The event is in the log but the view is still applying it.
    assert_eq!(r.latest().position(), Position(1));
    let waiter = {
        let r = r.clone();
        thread::spawn(move || {
            let s = r.at_least(Position(2)).unwrap();
            (s.position(), s.sum)
        })
    };
    thread::sleep(Duration::from_millis(50));
    assert!(
        !waiter.is_finished(),
        "at_least returned before the view reached 2"
    );
    valve.open();
    assert_eq!(waiter.join().unwrap(), (Position(2), 15));
    assert_eq!(ticket.wait().unwrap().position, Position(2));
}

#[test]
fn strong_includes_the_in_flight_batch() {
    let (rt, valve) = held_runtime(|b| b);
    let w = rt.writer();
    w.submit("s", add(HOLD, 7)).unwrap();
    wait_for_head(rt.log(), Position(1));
    let r = rt.reader::<Held>("held").unwrap();
    let strong = thread::spawn(move || r.strong().map(|s| (s.position(), s.sum)));
    thread::sleep(Duration::from_millis(50));
    assert!(!strong.is_finished());
    valve.open();
    assert_eq!(strong.join().unwrap().unwrap(), (Position(1), 7));
}

#[test]
fn strong_sees_an_append_acknowledged_on_another_thread_just_before() {
    let rt = domain::sums_runtime(|b| b);
    let (tx, rx) = mpsc::sync_channel::<(u64, Position)>(0);
    let w = rt.writer();
    let writer = thread::spawn(move || {
        for i in 0..2000u64 {
            let ack = w.append("s", add(i, 1)).unwrap();
            tx.send((i, ack.position)).unwrap();
        }
    });
    let r = rt.reader::<Sums>("sums").unwrap();
    for (key, position) in rx {
        let s = r.strong().unwrap();
        assert!(s.position() >= position);
        assert_eq!(
            s.0.get(&key),
            Some(&1),
            "strong() missed key {key} acked at {position}"
        );
        let ryw = r.at_least(position).unwrap();
        assert!(ryw.position() >= position && ryw.0.contains_key(&key));
    }
    writer.join().unwrap();
}

#[test]
fn bounded_waits_only_when_the_newest_snapshot_is_too_stale() {
    let (rt, valve) = held_runtime(|b| b);
    let w = rt.writer();
    for i in 0..10 {
        w.append("s", add(i, 1)).unwrap();
    }
    w.submit("s", add(HOLD, 1)).unwrap();
    w.submit("s", add(20, 1)).unwrap();
    wait_for_head(rt.log(), Position(11));
    let r = rt.reader::<Held>("held").unwrap();
    assert_eq!(r.latest().position(), Position(10));

    // Within the bound: no wait, the stale snapshot is fine.
    let head = rt.head().0;
    let within = r.bounded(Staleness::positions(head - 10)).unwrap();
    assert_eq!(within.position(), Position(10));
    let within_time = r
        .bounded(Staleness::time(Duration::from_secs(3600)))
        .unwrap();
    assert_eq!(within_time.position(), Position(10));
    drop((within, within_time));

    // Outside the bound: waits until the view catches up.
    let strict = {
        let r = r.clone();
        thread::spawn(move || r.bounded(Staleness::positions(0)).map(|s| s.position()))
    };
    let strict_time = {
        let r = r.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            r.bounded(Staleness::time(Duration::from_millis(1)))
                .map(|s| s.position())
        })
    };
    thread::sleep(Duration::from_millis(80));
    assert!(!strict.is_finished() && !strict_time.is_finished());
    valve.open();
    assert!(strict.join().unwrap().unwrap().0 >= head);
    assert!(strict_time.join().unwrap().unwrap().0 >= head);
}

#[test]
fn at_least_beyond_the_head_is_an_error_and_at_least_timeout_waits_for_it() {
    let rt = domain::sums_runtime(|b| b);
    let r = rt.reader::<Sums>("sums").unwrap();
    assert!(matches!(
        r.at_least(Position(1)),
        Err(Error::PositionOutOfRange {
            requested: Position(1),
            head: Position(0)
        })
    ));
    assert!(matches!(
        r.at_least_timeout(Position(1), Duration::from_millis(20)),
        Err(Error::Timeout {
            waiting_for: Position(1)
        })
    ));
    let w = rt.writer();
    let later = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        w.append("s", add(1, 1)).unwrap()
    });
    let s = r
        .at_least_timeout(Position(1), Duration::from_secs(30))
        .unwrap();
    assert_eq!(s.position(), Position(1));
    later.join().unwrap();
}

#[test]
fn latest_does_not_wait_while_the_sequencer_is_stalled() {
    let (rt, valve) = held_runtime(|b| b);
    rt.writer().submit("s", add(HOLD, 1)).unwrap();
    wait_for_head(rt.log(), Position(1));
    let r = rt.reader::<Held>("held").unwrap();
    for _ in 0..1000 {
        assert_eq!(r.latest().position(), Position::ZERO);
    }
    assert_eq!(r.cached().load().position(), Position::ZERO);
    valve.open();
    assert_eq!(r.strong().unwrap().position(), Position(1));
}
