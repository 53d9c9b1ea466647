//! The migration's edges: verification never compares a legacy state
//! ahead of the view (a cut-over following other writers' events while a
//! view lags), a replay that panicked midway is not applied twice, a read
//! is served when the legacy store cannot be read, and a cut-over without
//! a deadline neither panics nor sticks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::Duration;

use rwlog::migrate::{Legacy, LegacyError, LegacyLock, Migration, MigrationOptions};
use rwlog::{Event, Recorded, Runtime, View};

#[derive(Clone, Debug)]
enum Op {
    Set(String, i64),
    Slow(String, i64), // a set whose view fold is slow
}
impl Event for Op {}

#[derive(Clone, Default, Debug, PartialEq)]
struct S(HashMap<String, i64>);
fn fold(s: &mut S, e: &Recorded<Op>) {
    match e.payload() {
        Op::Set(k, v) | Op::Slow(k, v) => {
            s.0.insert(k.clone(), *v);
        }
    }
}
impl View<Op> for S {
    fn apply(&mut self, e: &Recorded<Op>) {
        if matches!(e.payload(), Op::Slow(..)) {
            thread::sleep(Duration::from_millis(400));
        }
        fold(self, e)
    }
}
fn rt() -> Runtime<Op> {
    Runtime::builder().view("s", S::default()).build().unwrap()
}

/// `Duration::MAX` ("as long as it takes") used to overflow the deadline:
/// a panic that left the migration stuck in `CuttingOver`.
#[test]
fn a_cut_over_without_a_deadline_neither_panics_nor_sticks() {
    let rt = rt();
    let old = Arc::new(RwLock::new(S::default()));
    let m = Migration::with_options(
        &rt,
        LegacyLock::new(Arc::clone(&old), fold),
        MigrationOptions {
            cut_over_timeout: Duration::MAX,
            ..Default::default()
        },
    );
    m.writer().append("k", Op::Set("a".into(), 1)).unwrap();
    let m2 = m.clone();
    let r = thread::spawn(move || m2.cut_over()).join();
    assert!(r.is_ok(), "cut_over panicked on Duration::MAX");
    assert_eq!(m.stats().phase, rwlog::migrate::Phase::CutOver);
}

/// A cut-over follows the legacy state to the log's head while reads are
/// still verified, and the head is raised before the views publish: the
/// legacy state then holds an event the view does not show yet. A verified
/// read must not compare the two (it used to: a false discrepancy).
struct SlowLegacy {
    state: RwLock<S>,
}
impl Legacy<Op> for SlowLegacy {
    type State = S;
    fn apply(&self, e: &Recorded<Op>) -> Result<(), LegacyError> {
        fold(&mut self.state.write().unwrap(), e);
        // Work after the state changed (e.g. a secondary index): widens the
        // window between the change and `applied.store`.
        if matches!(e.payload(), Op::Slow(..)) {
            thread::sleep(Duration::from_millis(150));
        }
        Ok(())
    }
    fn read_with<R>(&self, f: impl FnOnce(&S) -> R) -> Result<R, LegacyError> {
        Ok(f(&self.state.read().unwrap()))
    }
}

#[test]
fn no_false_discrepancy_while_a_cut_over_follows_a_lagging_view() {
    let rt = rt();
    let m = Migration::new(
        &rt,
        SlowLegacy {
            state: RwLock::new(S::default()),
        },
    );
    m.writer().append("k", Op::Set("a".into(), 1)).unwrap();
    let reads = m.reader(
        rt.reader::<S>("s").unwrap(),
        |s: &S, k: &str| s.0.get(k).copied(),
        |s: &S, k: &str| s.0.get(k).copied(),
    );
    m.set_read_share(100).unwrap();
    m.set_verify_share(100).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                reads.get("a").unwrap();
            }
        })
    };
    // A plain writer of the runtime (not a dual writer): its event's view
    // fold is slow, so the head is raised well before the view shows it.
    let plain = rt.writer();
    let w = thread::spawn(move || plain.append("k", Op::Slow("a".into(), 2)).unwrap());
    thread::sleep(Duration::from_millis(50));
    m.cut_over().unwrap();
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    w.join().unwrap();
    let st = m.stats();
    assert_eq!(
        st.discrepancies, 0,
        "false discrepancy: both sides agree on every event"
    );
}

/// A legacy apply that panics after changing the state, during a
/// rollback's replay: the replay stops with the error, and the next
/// rollback goes on after that event instead of applying it again.
struct PanicsOnce {
    state: RwLock<S>,
    applies: AtomicU32,
    armed: AtomicBool,
}
impl Legacy<Op> for PanicsOnce {
    type State = S;
    fn apply(&self, e: &Recorded<Op>) -> Result<(), LegacyError> {
        fold(&mut self.state.write().unwrap(), e);
        if e.position().0 == 3 {
            self.applies.fetch_add(1, Ordering::SeqCst);
            if self.armed.swap(false, Ordering::SeqCst) {
                panic!("audit trail unavailable");
            }
        }
        Ok(())
    }
    fn read_with<R>(&self, f: impl FnOnce(&S) -> R) -> Result<R, LegacyError> {
        Ok(f(&self.state.read().unwrap()))
    }
}

#[test]
fn a_replay_that_panicked_midway_is_not_applied_twice() {
    let rt = rt();
    let m = Migration::new(
        &rt,
        PanicsOnce {
            state: RwLock::new(S::default()),
            applies: AtomicU32::new(0),
            armed: AtomicBool::new(true),
        },
    );
    let w = m.writer();
    w.append("k", Op::Set("a".into(), 1)).unwrap();
    m.cut_over().unwrap();
    w.append("k", Op::Set("a".into(), 2)).unwrap();
    w.append("k", Op::Set("a".into(), 3)).unwrap();
    match m.rollback() {
        Err(rwlog::Error::Legacy { position, message }) => {
            assert_eq!(position.0, 3);
            assert!(message.contains("not applied again"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.rollback().unwrap(), 0);
    let n = m.legacy().applies.load(Ordering::SeqCst);
    assert_eq!(
        n, 1,
        "event at position 3 applied to the legacy state {n} times"
    );
}

/// With `LegacyLock`, a panicking fold poisons the old lock: a read served
/// by rwlog and sampled for verification is still served (unverified).
#[test]
fn a_verified_read_is_served_when_the_legacy_store_cannot_be_read() {
    let rt = rt();
    let old = Arc::new(RwLock::new(S::default()));
    let m = Migration::new(
        &rt,
        LegacyLock::new(Arc::clone(&old), |s: &mut S, e: &Recorded<Op>| {
            fold(s, e);
            if matches!(e.payload(), Op::Slow(..)) {
                panic!("boom")
            }
        }),
    );
    let w = m.writer();
    w.append("k", Op::Set("a".into(), 1)).unwrap();
    w.append("k", Op::Set("b".into(), 1)).unwrap();
    assert!(matches!(
        w.append("k", Op::Slow("a".into(), 9)),
        Err(rwlog::Error::Legacy { .. })
    ));
    let reads = m.reader(
        rt.reader::<S>("s").unwrap(),
        |s: &S, k: &str| s.0.get(k).copied(),
        |s: &S, k: &str| s.0.get(k).copied(),
    );
    m.set_read_share(100).unwrap();
    m.set_verify_share(100).unwrap();
    assert_eq!(reads.get("a").unwrap(), Some(9));
    assert!(m.stats().unverified > 0);
}
