//! Guarantee 8: an append is atomic on disk too. After a SIGKILL, a failed
//! or short write, or a full disk, recovery finds all of an append's events
//! or none; an append that returned an error changed nothing; and one bad
//! event fails only its own append.

#[path = "support/child.rs"]
mod child;
#[path = "support/domain.rs"]
mod domain;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Condvar, Mutex};

use domain::Rng;
use rwlog::{Durability, Error, Event, InjectedFault, Position, Recorded, Runtime, Storage, View};
use serde::{Deserialize, Serialize};

const CHILD_DIR: &str = "RWLOG_ATOMIC_CHILD_DIR";
const CHILD_DURABILITY: &str = "RWLOG_ATOMIC_CHILD_DURABILITY";

/// One event of a multi-event append: the `index`-th of `of`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Piece {
    append: u64,
    index: u32,
    of: u32,
    pad: String,
}

impl Event for Piece {}

/// Events per append, and a fold that depends on every event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Pieces {
    per_append: BTreeMap<u64, u32>,
    hash: u64,
}

impl View<Piece> for Pieces {
    fn apply(&mut self, e: &Recorded<Piece>) {
        if e.payload().append == HOLD {
            valve_wait();
        }
        *self.per_append.entry(e.payload().append).or_default() += 1;
        self.hash = self
            .hash
            .wrapping_mul(31)
            .wrapping_add(e.position().0 ^ u64::from(e.payload().index));
    }
}

fn fold(events: &[rwlog::EventRef<Piece>]) -> Pieces {
    let mut p = Pieces::default();
    for e in events {
        p.apply(e);
    }
    p
}

fn open_with(
    dir: &Path,
    storage: impl FnOnce(Storage) -> Storage,
) -> rwlog::Result<Runtime<Piece>> {
    let base = Storage::dir(dir)
        .durability(Durability::Fsync)
        .segment_bytes(256 << 10);
    Runtime::<Piece>::builder()
        .storage(storage(base))
        .persisted_view("pieces", Pieces::default())
        .snapshot_every(500)
        .disk_snapshot_every(500)
        .build()
}

fn open(dir: &Path) -> Runtime<Piece> {
    open_with(dir, |s| s).unwrap_or_else(|e| panic!("reopening failed: {e}"))
}

fn pieces(append: u64, n: u32, pad: usize) -> Vec<Piece> {
    (0..n)
        .map(|index| Piece {
            append,
            index,
            of: n,
            pad: "x".repeat(pad),
        })
        .collect()
}

/// Checks that every append in the log is whole and contiguous, that the
/// view equals a fresh fold, and returns the appends found (id -> first
/// and last position).
fn check_whole_appends(rt: &Runtime<Piece>) -> BTreeMap<u64, (u64, u64)> {
    let events: Vec<_> = rt.log().read_all(..).collect();
    assert_eq!(rt.head(), Position(events.len() as u64));
    let mut found: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut i = 0;
    while i < events.len() {
        let first = &events[i];
        let (append, of) = (first.payload().append, first.payload().of);
        assert_eq!(
            first.payload().index,
            0,
            "an append starts at its first event"
        );
        for k in 0..of as usize {
            let e = events
                .get(i + k)
                .unwrap_or_else(|| panic!("append {append}: only {k} of {of} events in the log"));
            assert_eq!(
                (e.payload().append, e.payload().index),
                (append, k as u32),
                "append {append} is present in part or interleaved"
            );
        }
        assert!(found
            .insert(
                append,
                (first.position().0, first.position().0 + u64::from(of) - 1)
            )
            .is_none());
        i += of as usize;
    }
    let view = rt.reader::<Pieces>("pieces").unwrap().latest().into_arc();
    assert_eq!(
        view.position(),
        rt.head(),
        "the view caught up with the log"
    );
    assert_eq!(
        **view,
        fold(&events),
        "the view equals a fresh fold of the log"
    );
    found
}

/// The child of the crash test: three threads append batches of 1-200
/// events until killed, printing each acknowledged append.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let buffered = std::env::var(CHILD_DURABILITY).is_ok_and(|d| d == "buffered");
    let rt = open_with(Path::new(&dir), |s| match buffered {
        true => s.durability(Durability::Buffered),
        false => s,
    })
    .unwrap();
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let w = rt.writer();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9 ^ (t + 1) ^ std::process::id() as u64);
                for i in 0.. {
                    let append = (u64::from(std::process::id()) << 32) | (t << 28) | i;
                    let n = 1 + rng.below(200) as u32;
                    let ack = w
                        .append_batch(format!("s{t}"), pieces(append, n, 400))
                        .expect("append");
                    child::tell_parent(&format!(
                        "ACK {append} {} {}",
                        ack.first_position(),
                        ack.position
                    ));
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn sigkill_during_multi_event_appends_loses_no_acked_append_and_tears_none() {
    let mut rng = Rng(0x5eed_0042);
    let (mut acked_total, mut torn_tails) = (0, 0);
    let mut dir = tempfile::tempdir().unwrap();
    // Fsync rounds, then Buffered rounds: without syncs the child spends
    // most of its time in `write`, so kills tear batches far more often
    // (a process crash loses nothing acknowledged in either mode).
    for round in 0..40 {
        if round % 5 == 0 {
            // A fresh log now and then keeps each reopen's replay short.
            dir = tempfile::tempdir().unwrap();
        }
        let durability = if round < 20 { "fsync" } else { "buffered" };
        let path = dir.path().to_str().unwrap();
        let env = [(CHILD_DIR, path), (CHILD_DURABILITY, durability)];
        let mut child = child::spawn("crash_child", &env);
        let wanted = 1 + rng.below(60);
        let mut lines = Vec::new();
        while (lines.len() as u64) < wanted {
            match child.line() {
                Some(line) => lines.push(line),
                None => break,
            }
        }
        // Kill at a random moment, not just after an acknowledgement.
        std::thread::sleep(std::time::Duration::from_micros(rng.below(3000)));
        lines.extend(child.kill());
        let rt = open(dir.path());
        torn_tails += rt.recovery().unwrap().cuts.len();
        let found = check_whole_appends(&rt);
        for line in &lines {
            let Some(rest) = line.strip_prefix("ACK ") else {
                continue;
            };
            let f: Vec<u64> = rest.split(' ').filter_map(|x| x.parse().ok()).collect();
            let [append, first, last] = f[..] else {
                continue;
            };
            assert_eq!(
                found.get(&append),
                Some(&(first, last)),
                "round {round}: acknowledged append {append} at {first}..={last}"
            );
            acked_total += 1;
        }
        rt.shutdown().unwrap();
    }
    eprintln!("{acked_total} acknowledged appends checked; {torn_tails} torn tails cut");
    assert!(
        acked_total > 20,
        "the children acknowledged too little to test anything"
    );
}

fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// Two good appends, then one that meets `fault`; returns the error it got
/// and how many bytes of it were left in the files before the reopen.
fn append_into_a_fault(dir: &Path, fault: InjectedFault, truncate_fails: bool) -> (Error, u64) {
    let rt = open_with(dir, |s| {
        let s = s.inject_fault(fault);
        if truncate_fails {
            s.inject_truncate_failure()
        } else {
            s
        }
    })
    .unwrap();
    let w = rt.writer();
    w.append_batch("a", pieces(1, 30, 50)).unwrap();
    w.append_batch("b", pieces(2, 30, 50)).unwrap();
    let before = segment_bytes(dir);
    let error = w.append_batch("c", pieces(3, 120, 50)).unwrap_err();
    let left = segment_bytes(dir) - before;
    rt.shutdown().unwrap();
    (error, left)
}

#[test]
fn a_short_write_or_full_disk_mid_batch_leaves_none_of_the_append() {
    for kind in [ErrorKind::StorageFull, ErrorKind::Other] {
        for truncate_fails in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let fault = InjectedFault::Write {
                after: 2,
                written: 3000,
                kind,
            };
            let (error, left) = append_into_a_fault(dir.path(), fault, truncate_fails);
            match &error {
                Error::Io(e) => assert_eq!(e.kind(), kind, "{e}"),
                other => panic!("expected an I/O error, got {other:?}"),
            }
            if truncate_fails {
                // The partial batch is still in the file: recovery must cut it.
                assert_eq!(left, 3000, "the injected fault left part of the batch");
                assert!(
                    error.to_string().contains("cutting the batch back off"),
                    "{error}"
                );
            } else {
                assert_eq!(
                    left, 0,
                    "the failed batch was cut back off before the error"
                );
            }
            let rt = open(dir.path());
            let found = check_whole_appends(&rt);
            assert_eq!(
                found.keys().copied().collect::<Vec<_>>(),
                [1, 2],
                "{kind:?}, {truncate_fails}"
            );
            assert_eq!(rt.head(), Position(60));
            rt.writer().append_batch("d", pieces(4, 5, 1)).unwrap();
        }
    }
}

#[test]
fn a_failed_sync_leaves_none_of_the_append() {
    let dir = tempfile::tempdir().unwrap();
    let (error, left) = append_into_a_fault(dir.path(), InjectedFault::Sync { after: 2 }, false);
    assert!(matches!(error, Error::Io(_)), "{error:?}");
    assert_eq!(left, 0, "the written but unsynced batch was cut back off");
    let rt = open(dir.path());
    assert_eq!(check_whole_appends(&rt).len(), 2);
}

/// A key in `Piece::append` that makes the view wait for the valve.
const HOLD: u64 = u64::MAX;
static VALVE: (Mutex<bool>, Condvar) = (Mutex::new(true), Condvar::new());

fn valve_wait() {
    let mut open = VALVE.0.lock().unwrap();
    while !*open {
        open = VALVE.1.wait(open).unwrap();
    }
}

fn valve_set(open: bool) {
    *VALVE.0.lock().unwrap() = open;
    VALVE.1.notify_all();
}

#[test]
fn an_oversized_event_fails_only_its_own_append() {
    let dir = tempfile::tempdir().unwrap();
    // A sequencer thread of its own, stalled in the view, so that the next
    // appends queue up (this thread goes on) and are sequenced as one batch.
    let rt = Runtime::<Piece>::builder()
        .storage(Storage::dir(dir.path()).max_event_bytes(1024))
        .persisted_view("pieces", Pieces::default())
        .sequencing(rwlog::Sequencing::Thread)
        .build()
        .unwrap();
    let w = rt.writer();
    valve_set(false);
    let held = w.submit("hold", pieces(HOLD, 1, 0).remove(0)).unwrap();
    domain::wait_for_head(rt.log(), Position(1));
    let small_a = w
        .submit_expecting("a", rwlog::Expected::Any, pieces(10, 3, 10))
        .unwrap();
    let big = w
        .submit_expecting("b", rwlog::Expected::Any, pieces(11, 2, 4096))
        .unwrap();
    let small_c = w
        .submit_expecting("c", rwlog::Expected::Any, pieces(12, 3, 10))
        .unwrap();
    valve_set(true);
    held.wait().unwrap();
    let (a, c) = (small_a.wait().unwrap(), small_c.wait().unwrap());
    match big.wait() {
        Err(Error::TooLarge { size, max, .. }) => assert!(size > 4096 && max == 1024),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(rt.stats().batches, 2, "the three appends were one batch");
    assert_eq!(
        (a.first_position(), c.first_position()),
        (Position(2), Position(5))
    );
    // The runtime goes on, and what was acknowledged is what is on disk.
    let more = w.append_batch("d", pieces(13, 2, 10)).unwrap();
    assert_eq!(more.first_position(), Position(8));
    assert!(rt.stats().storage_failure.is_none());
    rt.shutdown().unwrap();
    drop(rt);
    let rt = open_with(dir.path(), |s| s.max_event_bytes(1024)).unwrap();
    let found = check_whole_appends(&rt);
    assert_eq!(
        found.keys().copied().collect::<Vec<_>>(),
        [10, 12, 13, HOLD]
    );
}
