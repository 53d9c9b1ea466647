//! Guarantee 6: readers never block writers beyond a bounded wait, and
//! writers never block readers.

#[path = "support/domain.rs"]
mod domain;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use domain::{add, held_runtime, wait_for_head, Held, Sums, HOLD};
use rwlog::Position;

#[test]
fn a_reader_keeping_a_snapshot_forever_does_not_stop_writers() {
    let rt = domain::sums_runtime(|b| b);
    let w = rt.writer();
    let r = rt.reader::<Sums>("sums").unwrap();
    w.append("s", add(1, 1)).unwrap();
    w.append("s", add(1, 1)).unwrap();
    // Keep both copies pinned: the published one and, after the next
    // publish, the spare.
    let kept_a = r.latest().into_arc();
    w.append("s", add(2, 1)).unwrap();
    let kept_b = r.latest().into_arc();
    let (pa, pb) = (kept_a.position(), kept_b.position());

    let (done_tx, done_rx) = mpsc::channel();
    let writer = thread::spawn(move || {
        for i in 0..1000 {
            w.append("s", add(i, 1)).unwrap();
        }
        done_tx.send(()).unwrap();
    });
    // A liveness bound, not a speed one: a writer blocked on the readers
    // would never finish.
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("writers were blocked by a reader holding snapshots");
    writer.join().unwrap();

    // The kept snapshots never changed under their holder.
    assert_eq!((kept_a.position(), kept_a.0.get(&1)), (pa, Some(&2)));
    assert_eq!((kept_b.position(), kept_b.0.get(&2)), (pb, Some(&1)));
    assert_eq!(r.latest().position(), Position(1003));
    let stats = rt.stats();
    assert!(
        stats.views[0].fallback_clones >= 1,
        "the sequencer should have cloned instead of waiting"
    );
}

#[test]
fn the_spare_is_reused_when_no_reader_holds_it() {
    let rt = domain::sums_runtime(|b| b);
    let w = rt.writer();
    let r = rt.reader::<Sums>("sums").unwrap();
    for i in 0..500 {
        w.append("s", add(i % 10, 1)).unwrap();
        assert_eq!(r.latest().0.values().sum::<i64>(), i as i64 + 1);
    }
    assert_eq!(rt.stats().views[0].fallback_clones, 0);
}

#[test]
fn readers_load_while_the_sequencer_is_stalled_mid_batch() {
    let (rt, valve) = held_runtime(|b| b);
    rt.writer().append("s", add(1, 1)).unwrap();
    rt.writer().submit("s", add(HOLD, 1)).unwrap();
    wait_for_head(rt.log(), Position(2));

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let r = rt.reader::<Held>("held").unwrap();
            thread::spawn(move || (0..100_000).map(|_| r.latest().position().0).max())
        })
        .collect();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let maxes: Vec<_> = readers.into_iter().map(|h| h.join().unwrap()).collect();
        tx.send(maxes).unwrap();
    });
    let maxes = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("readers were blocked by the stalled writer");
    assert_eq!(maxes, vec![Some(1), Some(1)]);
    valve.open();
}

/// A writer that takes the sequencer role hands it on after a bounded
/// number of batches: four threads flooding the queue cannot keep an
/// appending writer sequencing for them. (The bound on its wait is a hang
/// detector, far above any real wait.)
#[test]
fn a_flood_of_writers_cannot_keep_one_writer_sequencing() {
    let rt = std::sync::Arc::new(domain::sums_runtime(|b| b.max_batch(16)));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..4u64)
        .map(|t| {
            let (w, stop) = (rt.writer(), std::sync::Arc::clone(&stop));
            thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    w.submit("flood", add(t, 1)).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let (done_tx, done_rx) = mpsc::channel();
    let w = rt.writer();
    thread::spawn(move || {
        for i in 0..2000u64 {
            w.append("mine", add(i, 1)).unwrap();
        }
        done_tx.send(()).unwrap();
    });
    let finished = done_rx.recv_timeout(Duration::from_secs(60));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flooded: u64 = flood.into_iter().map(|f| f.join().unwrap()).sum();
    finished.expect("the appending writer never got its appends done");
    // Submitted appends a writer left queued are sequenced soon after.
    wait_for_head(rt.log(), Position(flooded + 2000));
    let sums = rt.reader::<Sums>("sums").unwrap().strong().unwrap();
    assert_eq!(sums.position().0, flooded + 2000, "every append sequenced");
}
