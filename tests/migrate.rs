//! Migrating from a `RwLock` while traffic runs: dual writes lose and
//! double nothing across cut-overs and rollbacks, verification finds a
//! divergence, the read share changes without blocking anyone, a rollback
//! replays exactly what the legacy state missed, and every failure on
//! either side is reported and counted.

#[path = "support/traces.rs"]
mod traces;

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::Duration;

use rwlog::migrate::{Legacy, LegacyError, LegacyLock, Migration, MigrationOptions, Phase};
use rwlog::{Error, Event, Position, Recorded, Runtime, View};

/// Events: set a key, or record one write with a unique id.
#[derive(Clone, Debug, PartialEq)]
enum Op {
    Set(String, i64),
    Wrote(u64),
}
impl Event for Op {}

/// The new side's view: the keys, and how many times each write id was
/// folded in.
#[derive(Clone, Default, Debug, PartialEq)]
struct State {
    keys: HashMap<String, i64>,
    writes: HashMap<u64, u32>,
}

impl View<Op> for State {
    fn apply(&mut self, e: &Recorded<Op>) {
        match e.payload() {
            Op::Set(k, v) => {
                self.keys.insert(k.clone(), *v);
            }
            Op::Wrote(id) => *self.writes.entry(*id).or_default() += 1,
        }
    }
}

/// The old side's update: the same change, written separately (as the old
/// program's write path would be).
fn old_write(s: &mut State, e: &Recorded<Op>) {
    match e.payload() {
        Op::Set(k, v) => {
            s.keys.insert(k.clone(), *v);
        }
        Op::Wrote(id) => *s.writes.entry(*id).or_default() += 1,
    }
}

fn runtime() -> Runtime<Op> {
    Runtime::builder()
        .view("state", State::default())
        .build()
        .unwrap()
}

/// Runs `f` on a thread and fails the test if it has not finished in
/// `secs` (a hang becomes a failure; nothing here asserts on time).
fn watchdog<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: not done after {secs} s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the worker sends before it ends"),
        },
    }
}

#[test]
fn no_write_is_lost_or_applied_twice_across_cut_overs_and_rollbacks() {
    watchdog(120, || {
        let rt = runtime();
        let old = Arc::new(RwLock::new(State::default()));
        let migration = Migration::new(&rt, LegacyLock::new(Arc::clone(&old), old_write));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4u64)
            .map(|t| {
                let (w, stop) = (migration.writer(), Arc::clone(&stop));
                thread::spawn(move || {
                    let mut ids = Vec::new();
                    let mut n = 0;
                    // Until stopped, then 10 more: written while cut over.
                    let mut tail = 10;
                    while tail > 0 {
                        if stop.load(Ordering::Relaxed) {
                            tail -= 1;
                        }
                        let id = t << 32 | n;
                        w.append(format!("w{t}"), Op::Wrote(id)).unwrap();
                        ids.push(id);
                        n += 1;
                    }
                    ids
                })
            })
            .collect();
        for round in 0..20 {
            let at = migration.cut_over().unwrap();
            assert_eq!(migration.cut_over().unwrap(), at, "idempotent");
            assert_eq!(migration.stats().phase, Phase::CutOver);
            thread::yield_now();
            if round % 2 == 0 {
                thread::sleep(Duration::from_millis(2));
            }
            migration.rollback().unwrap();
            assert_eq!(migration.rollback().unwrap(), 0, "idempotent");
        }
        // End cut over, then rolled back once more after the writers stop.
        migration.cut_over().unwrap();
        stop.store(true, Ordering::Relaxed);
        let acked: Vec<u64> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        let replayed = migration.rollback().unwrap();
        assert!(replayed >= 40, "the writes made while cut over: {replayed}");

        let head = rt.head();
        assert_eq!(
            head.0,
            acked.len() as u64,
            "every acknowledged write in the log once"
        );
        let view = rt
            .reader::<State>("state")
            .unwrap()
            .strong()
            .unwrap()
            .into_arc();
        let old = old.read().unwrap();
        for id in &acked {
            assert_eq!(old.writes.get(id), Some(&1), "legacy: write {id:x}");
            assert_eq!(view.writes.get(id), Some(&1), "view: write {id:x}");
        }
        assert_eq!(old.writes.len(), acked.len(), "legacy: nothing else");
        assert_eq!(*view.state(), *old);
        let stats = migration.stats();
        assert_eq!(
            (stats.writes, stats.failed_appends),
            (acked.len() as u64, 0)
        );
        assert_eq!((stats.legacy_position, stats.phase), (head, Phase::Shadow));
    });
}

/// A legacy store that records every position it applies, and can be told
/// to fail at one.
#[derive(Default)]
struct Recording {
    state: RwLock<State>,
    applied: Mutex<Vec<Position>>,
    fail_at: AtomicU64,
}

impl Legacy<Op> for Recording {
    type State = State;

    fn apply(&self, e: &Recorded<Op>) -> Result<(), LegacyError> {
        if e.position().0 == self.fail_at.load(Ordering::Relaxed) {
            return Err(format!("refused position {}", e.position()).into());
        }
        old_write(&mut self.state.write().unwrap(), e);
        self.applied.lock().unwrap().push(e.position());
        Ok(())
    }

    fn read_with<R>(&self, f: impl FnOnce(&State) -> R) -> Result<R, LegacyError> {
        Ok(f(&self.state.read().unwrap()))
    }
}

fn set(k: &str, v: i64) -> Op {
    Op::Set(k.to_string(), v)
}

#[test]
fn rollback_replays_exactly_the_events_since_the_cut_over() {
    let rt = runtime();
    let migration = Migration::new(&rt, Arc::new(Recording::default()));
    let w = migration.writer();
    for i in 0..100 {
        w.append("k", set(&format!("k{}", i % 7), i)).unwrap();
    }
    let at = migration.cut_over().unwrap();
    assert_eq!(at, Position(100));
    // Written while cut over: by the dual writer, and by another writer of
    // the runtime.
    let direct = rt.writer();
    for i in 0..50 {
        w.append("k", set(&format!("k{}", i % 11), -i)).unwrap();
        direct.append("other", Op::Wrote(i as u64)).unwrap();
    }
    let legacy = migration.legacy();
    assert_eq!(
        legacy.applied.lock().unwrap().len(),
        100,
        "not written while cut over"
    );
    assert_eq!(migration.rollback().unwrap(), 100);

    let applied = legacy.applied.lock().unwrap().clone();
    let every: Vec<Position> = (1..=rt.head().0).map(Position).collect();
    assert_eq!(applied, every, "each event once, in log order");
    // The legacy state is a fresh fold of the whole log.
    let mut fresh = State::default();
    rt.log().read_all(..).for_each(|e| fresh.apply(&e));
    assert_eq!(*legacy.state.read().unwrap(), fresh);
    assert_eq!(migration.stats().legacy_position, rt.head());
}

#[test]
fn a_failed_replay_stays_cut_over_and_resumes() {
    let rt = runtime();
    let migration = Migration::new(&rt, Arc::new(Recording::default()));
    let w = migration.writer();
    w.append("k", set("a", 1)).unwrap();
    migration.cut_over().unwrap();
    for i in 2..=5 {
        w.append("k", set("a", i)).unwrap();
    }
    migration.legacy().fail_at.store(3, Ordering::Relaxed);
    match migration.rollback() {
        Err(Error::Legacy { position, message }) => {
            assert_eq!(position, Position(3));
            assert!(message.contains("refused position 3"), "{message}");
        }
        other => panic!("expected Error::Legacy, got {other:?}"),
    }
    let stats = migration.stats();
    assert_eq!(stats.phase, Phase::CutOver);
    assert_eq!(
        (stats.legacy_position, stats.failed_legacy_writes),
        (Position(2), 1)
    );
    migration.legacy().fail_at.store(0, Ordering::Relaxed);
    assert_eq!(migration.rollback().unwrap(), 3, "resumes at position 3");
    let applied = migration.legacy().applied.lock().unwrap().clone();
    assert_eq!(applied, (1..=5).map(Position).collect::<Vec<_>>());
}

#[test]
fn failures_on_either_side_are_reported_and_counted() {
    let rt = runtime();
    let migration = Migration::new(&rt, Arc::new(Recording::default()));
    let w = migration.writer();
    w.append("k", set("a", 1)).unwrap();
    // The legacy side fails: the event is in the log, the writer is told.
    migration.legacy().fail_at.store(2, Ordering::Relaxed);
    match w.append("k", set("a", 2)) {
        Err(Error::Legacy { position, .. }) => assert_eq!(position, Position(2)),
        other => panic!("expected Error::Legacy, got {other:?}"),
    }
    assert_eq!(rt.log().get(Position(2)).unwrap().payload(), &set("a", 2));
    // The legacy state goes on with the next event.
    w.append("k", set("b", 3)).unwrap();
    assert_eq!(migration.legacy().state.read().unwrap().keys["b"], 3);
    // The append fails: neither side changes.
    let conflict = w.append_expecting("k", rwlog::Expected::NoStream, [set("c", 4)]);
    assert!(
        matches!(conflict, Err(Error::Conflict { .. })),
        "{conflict:?}"
    );
    rt.shutdown().unwrap();
    assert!(matches!(w.append("k", set("c", 5)), Err(Error::Closed)));
    let stats = migration.stats();
    assert_eq!(
        (
            stats.writes,
            stats.failed_appends,
            stats.failed_legacy_writes
        ),
        (3, 2, 1)
    );
    assert!(!migration
        .legacy()
        .state
        .read()
        .unwrap()
        .keys
        .contains_key("c"));
    // Out-of-range shares are refused.
    assert!(matches!(
        migration.set_read_share(101),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        migration.set_verify_share(200),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn verification_catches_a_divergence_at_a_ten_percent_sample() {
    let traces = traces::traces(tracing::Level::WARN);
    let rt = runtime();
    let old = Arc::new(RwLock::new(State::default()));
    let migration = Migration::new(&rt, LegacyLock::new(Arc::clone(&old), old_write));
    let w = migration.writer();
    for i in 0..10 {
        w.append("k", set(&format!("key-{i}"), i)).unwrap();
    }
    let reads = migration.reader(
        rt.reader::<State>("state").unwrap(),
        |s: &State, k: &str| s.keys.get(k).copied(),
        |s: &State, k: &str| s.keys.get(k).copied(),
    );
    migration.set_read_share(100).unwrap();
    migration.set_verify_share(10).unwrap();
    for i in 0..10 {
        assert_eq!(reads.get(&format!("key-{i}")).unwrap(), Some(i));
    }
    let before = migration.stats();
    assert_eq!(before.discrepancies, 0);
    // The old state drifts for one key (a write that bypassed the migration).
    old.write().unwrap().keys.insert("key-7".into(), 700);
    for _ in 0..10_000 {
        assert_eq!(reads.get("key-7").unwrap(), Some(7), "served by rwlog");
    }
    let stats = migration.stats();
    assert!(stats.discrepancies >= 1, "{stats:?}");
    // Every verified read of the drifted key is a discrepancy; nothing was
    // left unverified with no write running.
    assert_eq!(
        stats.discrepancies,
        stats.verified - before.verified,
        "{stats:?}"
    );
    assert_eq!(
        (stats.unverified, stats.rwlog_reads),
        (0, 10_010),
        "{stats:?}"
    );
    let traces = traces.lock().unwrap();
    let named = traces
        .iter()
        .find(|t| t.contains("key=\"key-7\""))
        .unwrap_or_else(|| panic!("no warning names the key: {traces:?}"));
    assert!(
        named.contains("rwlog=Some(7)") && named.contains("legacy=Some(700)"),
        "{named}"
    );
    // Bounded: at most 10 a second (and one second's turn), not one per
    // discrepancy.
    let warned = traces.iter().filter(|t| t.contains("key-7")).count() as u64;
    assert!(
        warned <= stats.discrepancies && warned <= 40,
        "{warned} warnings"
    );
}

#[test]
fn verified_reads_under_concurrent_writes_find_no_false_discrepancy() {
    watchdog(120, || {
        let rt = runtime();
        let old = Arc::new(RwLock::new(State::default()));
        let migration = Migration::new(&rt, LegacyLock::new(Arc::clone(&old), old_write));
        let reads = migration.reader(
            rt.reader::<State>("state").unwrap(),
            |s: &State, k: &str| s.keys.get(k).copied(),
            |s: &State, k: &str| s.keys.get(k).copied(),
        );
        migration.set_read_share(100).unwrap();
        migration.set_verify_share(100).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|t| {
                let (w, stop) = (migration.writer(), Arc::clone(&stop));
                thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        w.append("k", set(&format!("key-{}", i % 4), t * 1_000_000 + i))
                            .unwrap();
                        i += 1;
                    }
                })
            })
            .collect();
        for i in 0..20_000 {
            reads.get(&format!("key-{}", i % 4)).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        writers.into_iter().for_each(|w| w.join().unwrap());
        let stats = migration.stats();
        assert_eq!(stats.discrepancies, 0, "{stats:?}");
        assert!(stats.verified > 0, "{stats:?}");
        assert_eq!(stats.verified + stats.unverified, 20_000, "{stats:?}");
    });
}

/// Which side served a read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Rwlog,
    Legacy,
}

#[test]
fn changing_the_read_share_under_traffic_takes_effect_without_blocking() {
    watchdog(120, || {
        let rt = runtime();
        let old = Arc::new(RwLock::new(State::default()));
        let migration = Migration::new(&rt, LegacyLock::new(Arc::clone(&old), old_write));
        migration.writer().append("k", set("a", 1)).unwrap();
        let reads = migration.reader_with(
            rt.reader::<State>("state").unwrap(),
            |s: &State, k: &str| (Side::Rwlog, s.keys.get(k).copied()),
            |s: &State, k: &str| (Side::Legacy, s.keys.get(k).copied()),
            |a, b| a.1 == b.1,
        );
        // Readers note the sides of their reads in each epoch they see.
        let epoch = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (reads, epoch, stop) = (reads.clone(), Arc::clone(&epoch), Arc::clone(&stop));
                thread::spawn(move || {
                    let mut seen = [[0u64; 2]; 4];
                    while !stop.load(Ordering::Relaxed) {
                        // A sequence lock around the read: counted only if
                        // no share change overlapped it.
                        let before = epoch.load(Ordering::Acquire);
                        let (side, value) = reads.get("a").unwrap();
                        fence(Ordering::Acquire);
                        let after = epoch.load(Ordering::Relaxed);
                        assert_eq!(value, Some(1));
                        if before == after && before.is_multiple_of(2) {
                            seen[before as usize / 2][side as usize] += 1;
                        }
                    }
                    seen
                })
            })
            .collect();
        let writer = {
            let (w, stop) = (migration.writer(), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    w.append("k", set("b", 2)).unwrap();
                }
            })
        };
        let settle = || thread::sleep(Duration::from_millis(50));
        // Epoch 2n: share n in force; odd: changing.
        let change = |n: u64, share: u8| {
            epoch.store(2 * n - 1, Ordering::Relaxed);
            fence(Ordering::Release);
            migration.set_read_share(share).unwrap();
            epoch.store(2 * n, Ordering::Release);
        };
        settle();
        {
            // A legacy writer holds the old lock: readers of the old state
            // and the dual writer wait for it, but changing the share does not.
            let _held = old.write().unwrap();
            change(1, 100);
        }
        settle();
        change(2, 0);
        settle();
        change(3, 50);
        settle();
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        let mut seen = [[0u64; 2]; 4];
        for r in readers {
            for (e, sides) in r.join().unwrap().iter().enumerate() {
                seen[e][0] += sides[0];
                seen[e][1] += sides[1];
            }
        }
        let (rwlog, legacy) = (Side::Rwlog as usize, Side::Legacy as usize);
        assert_eq!(seen[0][rwlog], 0, "share 0: {seen:?}");
        assert_eq!(seen[1][legacy], 0, "share 100: {seen:?}");
        assert_eq!(seen[2][rwlog], 0, "share 0 again: {seen:?}");
        assert!(
            seen[3][rwlog] > 0 && seen[3][legacy] > 0,
            "share 50: {seen:?}"
        );
        assert!(seen[1][rwlog] > 0 && seen[2][legacy] > 0, "{seen:?}");
    });
}

#[test]
fn cut_over_waits_for_projections_and_rolls_back_when_one_fails() {
    watchdog(120, || {
        let rt = runtime();
        let migration = Migration::new(&rt, Arc::new(Recording::default()));
        let w = migration.writer();
        w.append("k", set("a", 1)).unwrap();
        // A projection held at its first event until released.
        let (release, held) = mpsc::channel::<()>();
        let held = Mutex::new(held);
        let _p = rt
            .projection("slow", move |_: &Recorded<Op>| {
                held.lock().unwrap().recv().ok();
                Ok(())
            })
            .unwrap();
        let cutting = {
            let m = migration.clone();
            thread::spawn(move || m.cut_over())
        };
        while migration.stats().phase != Phase::CuttingOver {
            thread::yield_now();
        }
        // Reads already go to rwlog; the legacy state is no longer written.
        assert_eq!(migration.stats().read_share, 100);
        assert!(
            !cutting.is_finished(),
            "returned before the projection caught up"
        );
        drop(release); // and every later event passes at once
        assert_eq!(cutting.join().unwrap().unwrap(), Position(1));
        assert_eq!(migration.stats().phase, Phase::CutOver);
        migration.rollback().unwrap();

        // A failed projection: the cut-over is abandoned and rolled back.
        let _bad = rt
            .projection("failing", |e: &Recorded<Op>| {
                if e.position() >= Position(2) {
                    return Err("cannot handle it".into());
                }
                Ok(())
            })
            .unwrap();
        w.append("k", set("a", 2)).unwrap();
        match migration.cut_over() {
            Err(Error::CutOverAbandoned { reason }) => {
                assert!(reason.contains("projection `failing` failed"), "{reason}")
            }
            other => panic!("expected CutOverAbandoned, got {other:?}"),
        }
        let stats = migration.stats();
        assert_eq!((stats.phase, stats.cut_over_at), (Phase::Shadow, None));
        w.append("k", set("a", 3)).unwrap();
        assert_eq!(migration.legacy().state.read().unwrap().keys["a"], 3);
    });
}

#[test]
fn a_cut_over_that_times_out_is_rolled_back() {
    watchdog(120, || {
        let rt = runtime();
        let options = MigrationOptions {
            cut_over_timeout: Duration::from_millis(20),
            ..MigrationOptions::default()
        };
        let migration = Migration::with_options(&rt, Arc::new(Recording::default()), options);
        let w = migration.writer();
        w.append("k", set("a", 1)).unwrap();
        let (release, held) = mpsc::channel::<()>();
        let held = Mutex::new(held);
        let _p = rt
            .projection("stuck", move |_: &Recorded<Op>| {
                held.lock().unwrap().recv().ok();
                Ok(())
            })
            .unwrap();
        match migration.cut_over() {
            Err(Error::CutOverAbandoned { reason }) => {
                assert!(reason.contains("projection `stuck` at 0"), "{reason}")
            }
            other => panic!("expected CutOverAbandoned, got {other:?}"),
        }
        assert_eq!(migration.stats().phase, Phase::Shadow);
        drop(release);
    });
}
