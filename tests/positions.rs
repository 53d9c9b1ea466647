//! Guarantee 1: positions are global, start at 1, are contiguous and never
//! reused; a stream's versions start at 1 and are contiguous.

#[path = "support/domain.rs"]
mod domain;

use std::collections::HashMap;
use std::thread;

use domain::{add, Add};
use rwlog::{Expected, Position, Runtime};

#[test]
fn positions_and_versions_are_contiguous_under_concurrent_writers() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let acks: Vec<_> = (0..4u64)
        .map(|t| {
            let w = rt.writer();
            thread::spawn(move || {
                (0..500u64)
                    .map(|i| {
                        let stream = format!("s{}", (t + i) % 7);
                        if i % 5 == 0 {
                            let a = w
                                .append_batch(stream.as_str(), [add(t, 1), add(t, 2), add(t, 3)])
                                .unwrap();
                            (stream, a)
                        } else {
                            (
                                stream.clone(),
                                w.append(stream.as_str(), add(t, 1)).unwrap(),
                            )
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .flat_map(|h| h.join().unwrap())
        .collect();

    let log = rt.log();
    let total: u64 = acks.iter().map(|(_, a)| a.count).sum();
    assert_eq!(log.head(), Position(total));

    // Every position from 1 to the head, once, in order.
    let positions: Vec<u64> = log.read_all(..).map(|e| e.position().0).collect();
    assert_eq!(positions, (1..=total).collect::<Vec<_>>());

    // Acks name disjoint ranges that cover the log exactly.
    let mut covered: Vec<u64> = acks
        .iter()
        .flat_map(|(_, a)| a.first_position().0..=a.position.0)
        .collect();
    covered.sort_unstable();
    assert_eq!(covered, (1..=total).collect::<Vec<_>>());

    // Within each stream, versions are 1..=n in position order.
    let mut per_stream: HashMap<String, Vec<u64>> = HashMap::new();
    for e in log.read_all(..) {
        per_stream
            .entry(e.stream().to_string())
            .or_default()
            .push(e.version());
    }
    for (stream, versions) in &per_stream {
        assert_eq!(
            versions,
            &(1..=versions.len() as u64).collect::<Vec<_>>(),
            "stream {stream}"
        );
        assert_eq!(log.stream_version(stream), versions.len() as u64);
        let via_index: Vec<u64> = log.read_stream(stream, 1).map(|e| e.version()).collect();
        assert_eq!(&via_index, versions);
    }

    // Each ack's events sit at the positions and versions it names.
    for (stream, a) in &acks {
        for (i, p) in (a.first_position().0..=a.position.0).enumerate() {
            let e = log.get(Position(p)).unwrap();
            assert_eq!(e.stream().as_str(), stream);
            assert_eq!(e.version(), a.first_version() + i as u64);
        }
    }
}

#[test]
fn a_rejected_append_uses_no_position_or_version() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let w = rt.writer();
    w.append("a", add(1, 1)).unwrap();
    assert!(w
        .append_expecting("a", Expected::Exact(5), [add(1, 1)])
        .is_err());
    assert!(w
        .append_expecting("b", Expected::Exists, [add(1, 1)])
        .is_err());
    let next = w.append("a", add(1, 1)).unwrap();
    assert_eq!((next.position, next.version), (Position(2), 2));
    let fresh = w.append("b", add(1, 1)).unwrap();
    assert_eq!((fresh.position, fresh.version), (Position(3), 1));
}

#[test]
fn event_ids_are_unique_and_timestamps_never_go_back() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let w = rt.writer();
    let tickets: Vec<_> = (0..2000)
        .map(|i| w.submit("s", add(i, 1)).unwrap())
        .collect();
    for t in tickets {
        t.wait().unwrap();
    }
    let events: Vec<_> = rt.log().read_all(..).collect();
    let mut ids: Vec<_> = events.iter().map(|e| e.id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len());
    assert!(events
        .windows(2)
        .all(|w| w[0].recorded_at() <= w[1].recorded_at()));
    assert!(events.iter().all(|e| e.id().get_version_num() == 7));
}

/// A stream's version, as the log reports it, is never ahead of what the
/// log can return for that stream: `read_stream` called afterwards returns
/// at least that many events.
#[test]
fn stream_version_never_runs_ahead_of_read_stream() {
    let rt = Runtime::<Add>::builder().max_batch(64).build().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let w = rt.writer();
            let stop = std::sync::Arc::clone(&stop);
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let stream = ["a", "b"][(i % 2) as usize];
                    let tickets: Vec<_> = (0..16)
                        .map(|_| w.submit(stream, add(t, 1)).unwrap())
                        .collect();
                    for k in tickets {
                        k.wait().unwrap();
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let log = rt.log();
    let (mut checks, mut raced) = (0u64, 0u64);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        for stream in ["a", "b"] {
            let version = log.stream_version(stream);
            if version == 0 {
                continue;
            }
            // Reading from that version must return it (and maybe more).
            let mut from = log.read_stream(stream, version);
            let at = from.next().map(|e| e.version());
            assert_eq!(
                at,
                Some(version),
                "stream {stream} is at version {version}, but read_stream cannot return it"
            );
            raced += u64::from(from.next().is_some());
            checks += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writers.into_iter().for_each(|w| w.join().unwrap());
    eprintln!("{checks} checks; the log grew between the two calls in {raced}");
    assert!(
        raced > 0,
        "the writers never raced the checks: the test proved nothing"
    );
}
