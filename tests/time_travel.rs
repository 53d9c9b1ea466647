//! Time travel: `view_at` and `view_as_of` rebuild any past state from the
//! nearest kept snapshot plus a replay, equal to the reference fold.

#[path = "support/domain.rs"]
mod domain;

use std::thread;
use std::time::Duration;

use domain::{add, prefix_checksums, Add, Checksum, Rng, Sums};
use rwlog::{Position, Runtime};

#[test]
fn view_at_every_position_equals_the_reference_fold() {
    // (cadence, bound): the bounded ones thin their copies many times over.
    for (every, keep) in [(0, 64), (1, 0), (1, 4), (7, 3), (100, 64)] {
        let rt = Runtime::<Add>::builder()
            .view("checksum", Checksum::default())
            .snapshot_every(every)
            .keep_snapshots(keep)
            .max_batch(5)
            .build()
            .unwrap();
        let w = rt.writer();
        let mut rng = Rng(every + 11);
        for _ in 0..300 {
            if rng.below(3) == 0 {
                w.append_batch("s", (0..3).map(|k| add(k, rng.below(9) as i64)))
                    .unwrap();
            } else {
                drop(
                    w.submit(format!("s{}", rng.below(4)), add(rng.below(9), 1))
                        .unwrap(),
                );
            }
        }
        w.append("s", add(0, 0)).unwrap();
        let events: Vec<_> = rt.log().read_all(..).collect();
        let reference = prefix_checksums(&events);
        for p in 1..=events.len() as u64 {
            let s = rt.view_at::<Checksum>("checksum", Position(p)).unwrap();
            assert_eq!(s.position(), Position(p));
            assert_eq!(*s, reference[p as usize], "every={every} keep={keep} p={p}");
        }
        let kept = rt.stats().views[0].snapshots_kept;
        if every == 0 {
            assert_eq!(kept, 1);
        } else {
            assert!(kept > 1, "every={every} kept={kept}");
        }
        if keep > 0 {
            assert!(kept <= keep + 1, "keep={keep} kept={kept}");
        } else if every == 1 {
            // No bound: a copy at the end of every batch, past the
            // default bound of 64.
            assert!(kept > 65, "kept={kept}");
        }
    }
}

#[test]
fn view_as_of_uses_the_sequencer_timestamps() {
    let rt = Runtime::<Add>::builder()
        .view("sums", Sums::default())
        .snapshot_every(2)
        .build()
        .unwrap();
    let w = rt.writer();
    w.append("s", add(1, 1)).unwrap();
    w.append("s", add(1, 1)).unwrap();
    thread::sleep(Duration::from_millis(5));
    let middle = std::time::SystemTime::now();
    thread::sleep(Duration::from_millis(5));
    w.append("s", add(1, 1)).unwrap();

    let at_middle = rt.view_as_of::<Sums>("sums", middle).unwrap();
    assert_eq!((at_middle.position(), at_middle.0[&1]), (Position(2), 2));
    let now = rt
        .view_as_of::<Sums>("sums", std::time::SystemTime::now())
        .unwrap();
    assert_eq!((now.position(), now.0[&1]), (Position(3), 3));
    let third = rt
        .log()
        .get(Position(3))
        .unwrap()
        .recorded_at()
        .to_system_time();
    assert_eq!(
        rt.view_as_of::<Sums>("sums", third).unwrap().position(),
        Position(3)
    );
}

#[test]
fn log_filters_by_type_time_and_direction() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let w = rt.writer();
    w.append("s", add(1, 5)).unwrap();
    w.append("s", add(1, -2)).unwrap();
    thread::sleep(Duration::from_millis(5));
    let cut = std::time::SystemTime::now();
    thread::sleep(Duration::from_millis(5));
    w.append("s", add(1, 7)).unwrap();

    let credits: Vec<_> = rt
        .log()
        .read_by_type("Credit", ..)
        .map(|e| e.position().0)
        .collect();
    assert_eq!(credits, [1, 3]);
    let debits: Vec<_> = rt
        .log()
        .read_by_type("Debit", Position(2)..)
        .map(|e| e.position().0)
        .collect();
    assert_eq!(debits, [2]);
    let early: Vec<_> = rt
        .log()
        .read_time_range(..cut)
        .map(|e| e.position().0)
        .collect();
    assert_eq!(early, [1, 2]);
    let late: Vec<_> = rt
        .log()
        .read_time_range(cut..)
        .map(|e| e.position().0)
        .collect();
    assert_eq!(late, [3]);
    assert_eq!(rt.log().position_at(cut), Some(Position(2)));
    let back: Vec<_> = rt
        .log()
        .read_backward(Position(2)..)
        .map(|e| e.position().0)
        .collect();
    assert_eq!(back, [3, 2]);
    assert_eq!(rt.log().read_all(Position(2)..Position(3)).count(), 1);
    assert_eq!(rt.log().read_all(Position(4)..).count(), 0);
    assert_eq!(
        rt.log()
            .read_stream("s", 3)
            .map(|e| e.version())
            .collect::<Vec<_>>(),
        [3]
    );
    assert_eq!(rt.log().read_stream("nope", 1).count(), 0);
}
