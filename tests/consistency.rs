//! Guarantees 3 and 4: a snapshot at position p is exactly the fold of
//! events 1..=p (never a torn or partial batch), and a reader's successive
//! loads never go back in position.
//!
//! The randomized test runs 4 writer threads appending to random streams
//! (single events, atomic batches, expected versions) while 2 reader
//! threads load continuously, then checks every loaded snapshot against a
//! reference fold of the final log.

#[path = "support/domain.rs"]
mod domain;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use domain::{add, prefix_checksums, Add, Checksum, Rng, Sums};
use proptest::prelude::*;
use rwlog::{Error, Expected, Position, Runtime, Sequencing};

/// One randomized run; returns how many snapshots the readers checked.
fn run(seed: u64, max_batch: usize, sequencing: Sequencing) -> usize {
    let rt = Runtime::<Add>::builder()
        .sequencing(sequencing)
        .view("checksum", Checksum::default())
        .view("sums", Sums::default())
        .max_batch(max_batch)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..2)
        .map(|i| {
            let checksum = rt.reader::<Checksum>("checksum").unwrap();
            let sums = rt.reader::<Sums>("sums").unwrap();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut seen = Vec::new();
                let mut last = Position::ZERO;
                let mut cached = checksum.cached();
                while !stop.load(Ordering::Relaxed) {
                    let s = if i == 0 {
                        checksum.latest().into_arc()
                    } else {
                        Arc::new((*cached.load()).clone())
                    };
                    assert!(
                        s.position() >= last,
                        "reader went back from {last} to {}",
                        s.position()
                    );
                    last = s.position();
                    seen.push((s.position(), (**s).clone()));
                    let m = sums.latest();
                    seen.push((
                        m.position(),
                        Checksum {
                            count: u64::MAX,
                            hash: m.0.values().sum::<i64>() as u64,
                            last: m.position(),
                        },
                    ));
                }
                seen
            })
        })
        .collect();

    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let w = rt.writer();
            thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(t + 1) | 1);
                let mut appends = Vec::new();
                // The version this writer last saw of each stream: other
                // writers move streams on, so some expectations conflict.
                let mut known: HashMap<String, u64> = HashMap::new();
                for _ in 0..400 {
                    let stream = format!("s{}", rng.below(12));
                    let key = rng.below(50);
                    let amount = rng.below(100) as i64 - 50;
                    let r = match rng.below(4) {
                        0 => w.append_batch(
                            stream.as_str(),
                            (0..1 + rng.below(5)).map(|k| add(key + k, amount)),
                        ),
                        1 => {
                            let v = known.get(&stream).copied().unwrap_or(0);
                            w.append_expecting(
                                stream.as_str(),
                                Expected::Exact(v),
                                [add(key, amount)],
                            )
                        }
                        _ => w.append(stream.as_str(), add(key, amount)),
                    };
                    match r {
                        Ok(a) => {
                            known.insert(stream, a.version);
                            appends.push(a);
                        }
                        Err(Error::Conflict { actual, .. }) => {
                            known.insert(stream, actual);
                        }
                        Err(e) => panic!("unexpected error {e}"),
                    }
                }
                appends
            })
        })
        .collect();
    let acks: Vec<_> = writers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<_> = readers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();

    // The log holds 1..=N, contiguous, with contiguous per-stream versions.
    let events: Vec<_> = rt.log().read_all(..).collect();
    let n = events.len() as u64;
    assert_eq!(rt.log().head(), Position(n));
    assert!(events
        .iter()
        .enumerate()
        .all(|(i, e)| e.position().0 == i as u64 + 1));
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for e in &events {
        let v = versions.entry(e.stream().as_str()).or_default();
        *v += 1;
        assert_eq!(e.version(), *v, "stream {} at {}", e.stream(), e.position());
    }
    assert_eq!(acks.iter().map(|a| a.count).sum::<u64>(), n);

    // Every snapshot a reader loaded is the reference fold at its position,
    // and ends on an append boundary (no partial batch).
    let reference = prefix_checksums(&events);
    let mut sums_at = vec![0i64];
    for e in &events {
        sums_at.push(sums_at.last().unwrap() + e.payload().amount);
    }
    let boundaries: HashSet<u64> = acks.iter().map(|a| a.position.0).chain([0]).collect();
    for (p, c) in &seen {
        assert!(
            boundaries.contains(&p.0),
            "snapshot at {p} splits an append"
        );
        if c.count == u64::MAX {
            assert_eq!(c.hash as i64, sums_at[p.0 as usize], "sums view at {p}");
        } else {
            assert_eq!(c, &reference[p.0 as usize], "checksum view at {p}");
        }
    }

    // The final views equal the fold of the whole log.
    assert_eq!(
        **rt.reader::<Checksum>("checksum").unwrap().strong().unwrap(),
        reference[n as usize]
    );
    let mut final_sums = BTreeMap::new();
    for e in &events {
        *final_sums.entry(e.payload().key).or_insert(0) += e.payload().amount;
    }
    assert_eq!(
        rt.reader::<Sums>("sums").unwrap().strong().unwrap().0,
        final_sums
    );
    seen.len()
}

#[test]
fn randomized_writers_and_readers_match_the_reference_fold() {
    let mut checked = 0;
    // Writers sequencing themselves (combining), and a sequencer thread.
    for (seed, max_batch) in [(1, 1024), (2, 1), (3, 7), (4, 64)] {
        checked += run(seed, max_batch, Sequencing::Combining);
    }
    for (seed, max_batch) in [(5, 1024), (6, 3)] {
        checked += run(seed, max_batch, Sequencing::Thread);
    }
    assert!(checked > 0);
}

#[derive(Clone, Debug)]
enum Op {
    Append { stream: u8, key: u8, amount: i8 },
    Batch { stream: u8, n: u8 },
    Expect { stream: u8, version: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4u8, 0..8u8, any::<i8>()).prop_map(|(stream, key, amount)| Op::Append {
            stream,
            key,
            amount
        }),
        (0..4u8, 1..5u8).prop_map(|(stream, n)| Op::Batch { stream, n }),
        (0..4u8, 0..6u8).prop_map(|(stream, version)| Op::Expect { stream, version }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any sequence of appends leaves the log, the stream versions and the
    /// views equal to a plain Vec-of-events model folded sequentially.
    #[test]
    fn appends_match_a_sequential_model(ops in proptest::collection::vec(op(), 1..60), max_batch in 1usize..8) {
        let rt = domain::sums_runtime(|b| b.max_batch(max_batch));
        let w = rt.writer();
        let mut model: Vec<(String, Add)> = Vec::new();
        let mut versions: HashMap<String, u64> = HashMap::new();
        for op in ops {
            match op {
                Op::Append { stream, key, amount } => {
                    let s = format!("s{stream}");
                    let e = add(key as u64, amount as i64);
                    let a = w.append(s.as_str(), e.clone()).unwrap();
                    let v = versions.entry(s.clone()).or_default();
                    *v += 1;
                    prop_assert_eq!(a.version, *v);
                    model.push((s, e));
                    prop_assert_eq!(a.position.0, model.len() as u64);
                }
                Op::Batch { stream, n } => {
                    let s = format!("s{stream}");
                    let es: Vec<_> = (0..n).map(|k| add(k as u64, 1)).collect();
                    let a = w.append_batch(s.as_str(), es.clone()).unwrap();
                    *versions.entry(s.clone()).or_default() += n as u64;
                    model.extend(es.into_iter().map(|e| (s.clone(), e)));
                    prop_assert_eq!((a.position.0, a.count), (model.len() as u64, n as u64));
                }
                Op::Expect { stream, version } => {
                    let s = format!("s{stream}");
                    let current = versions.get(&s).copied().unwrap_or(0);
                    let r = w.append_expecting(s.as_str(), Expected::Exact(version as u64), [add(9, 9)]);
                    if current == version as u64 {
                        prop_assert!(r.is_ok());
                        *versions.entry(s.clone()).or_default() += 1;
                        model.push((s, add(9, 9)));
                    } else {
                        let is_conflict = matches!(r, Err(Error::Conflict { actual, .. }) if actual == current);
                        prop_assert!(is_conflict);
                    }
                }
            }
        }
        let log: Vec<_> = rt.log().read_all(..).map(|e| (e.stream().to_string(), e.payload().clone())).collect();
        prop_assert_eq!(&log, &model);
        let mut sums = BTreeMap::new();
        for (_, e) in &model {
            *sums.entry(e.key).or_insert(0i64) += e.amount;
        }
        prop_assert_eq!(&rt.reader::<Sums>("sums").unwrap().strong().unwrap().0, &sums);
        for (s, v) in &versions {
            prop_assert_eq!(rt.log().stream_version(s), *v);
        }
    }
}
