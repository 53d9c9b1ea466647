//! Guarantee 9, second half: nothing recovery loads is trusted unless it
//! provably belongs to this log, this view and this position. Stale and
//! foreign snapshots and checkpoints are set aside, never used; a log that
//! lost positions a snapshot or checkpoint proves were durably acknowledged
//! is refused (leaving the directory untouched) unless the loss is accepted
//! with `RecoveryMode::PointInTime`, which reports what was dropped.

#[path = "support/domain.rs"]
mod domain;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::durable::{fold, Put, Totals};
use rwlog::{Durability, Error, Position, Recorded, RecoveryMode, Runtime, Storage, View};
use serde::{Deserialize, Serialize};

/// A view of the same shape as `Totals` (bincode cannot tell them apart)
/// that folds differently.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Doubled(BTreeMap<u64, i64>);

impl View<Put> for Doubled {
    fn apply(&mut self, e: &Recorded<Put>) {
        *self.0.entry(e.payload().key).or_default() += 2 * e.payload().amount;
    }
}

fn open_as(dir: &Path, durability: Durability, mode: RecoveryMode) -> rwlog::Result<Runtime<Put>> {
    Runtime::<Put>::builder()
        .storage(
            Storage::dir(dir)
                .durability(durability)
                .segment_bytes(4096)
                .recovery(mode),
        )
        .persisted_view("totals", Totals::default())
        .persisted_view("doubled", Doubled::default())
        .snapshot_every(50)
        .disk_snapshot_every(50)
        .build()
}

fn open(dir: &Path, durability: Durability) -> Runtime<Put> {
    open_as(dir, durability, RecoveryMode::TornTail).unwrap_or_else(|e| panic!("open: {e}"))
}

fn append(rt: &Runtime<Put>, n: u64, seed: u64) {
    let w = rt.writer();
    for i in 0..n {
        let put = Put {
            key: (i + seed) % 7,
            amount: (i * seed % 11) as i64 + 1,
        };
        w.append(format!("s{}", i % 3), put).unwrap();
    }
}

/// Both views equal a fresh fold of the log.
fn check_views(rt: &Runtime<Put>) {
    let events: Vec<_> = rt.log().read_all(..).collect();
    let totals = rt.reader::<Totals>("totals").unwrap().latest().into_arc();
    assert_eq!(totals.position(), rt.head());
    assert_eq!(**totals, fold(events.iter().map(|e| &**e)), "totals");
    let mut doubled = Doubled::default();
    events.iter().for_each(|e| doubled.apply(e));
    let view = rt.reader::<Doubled>("doubled").unwrap().latest().into_arc();
    assert_eq!(**view, doubled, "doubled");
}

/// Appends `n` more events, shuts down, and checks the views of a reopen.
fn append_and_reopen(rt: Runtime<Put>, dir: &Path, n: u64, durability: Durability) {
    append(&rt, n, 7);
    rt.shutdown().unwrap();
    drop(rt);
    let rt = open(dir, durability);
    check_views(&rt);
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p: &PathBuf| p.extension().is_some_and(|x| x == ext));
    v.sort();
    v
}

fn snapshots(dir: &Path, view: &str) -> Vec<PathBuf> {
    files_with(&dir.join("snapshots").join(view), "snap")
}

/// Every file under `dir` with its length, to show a refused open changed
/// nothing.
fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(listing(&p));
        } else if !p.ends_with("rwlog.lock") {
            out.push((p.clone(), fs::metadata(&p).unwrap().len()));
        }
    }
    out.sort();
    out
}

fn copy_files(from: &[PathBuf], to: &Path) {
    fs::create_dir_all(to).unwrap();
    for f in from {
        fs::copy(f, to.join(f.file_name().unwrap())).unwrap();
    }
}

fn set_aside_reasons(rt: &Runtime<Put>) -> Vec<String> {
    let report = rt.recovery().unwrap();
    report
        .set_aside
        .iter()
        .map(|(_, _, why)| why.clone())
        .collect()
}

#[test]
fn snapshots_from_a_lost_tail_are_never_used() {
    // Buffered: a power loss may lose acknowledged appends, and snapshots
    // written after them survive it. Segments are lost here by hand.
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path(), Durability::Buffered);
    append(&rt, 600, 3);
    rt.shutdown().unwrap();
    drop(rt);
    let saved = tempfile::tempdir().unwrap();
    copy_files(&snapshots(dir.path(), "totals"), saved.path());
    let segments = files_with(dir.path(), "seg");
    assert!(segments.len() > 4, "{segments:?}");
    for s in &segments[segments.len() - 3..] {
        fs::remove_file(s).unwrap();
    }

    let rt = open(dir.path(), Durability::Buffered);
    let head = rt.head();
    assert!(head < Position(560), "the tail is lost: head {head}");
    let reasons = set_aside_reasons(&rt);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("beyond the recovered head")),
        "{reasons:?}"
    );
    check_views(&rt);
    // Append past the old snapshots' positions, with other events, to 620:
    // the newest snapshot at or below the head is then one from before the
    // loss, at 600, once it is brought back below.
    append(&rt, 620 - head.0, 5);
    rt.shutdown().unwrap();
    drop(rt);

    // Bring the stale snapshots back: they claim positions the log holds
    // again, but made from other events.
    copy_files(
        &fs::read_dir(saved.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect::<Vec<_>>(),
        &dir.path().join("snapshots").join("totals"),
    );
    let rt = open(dir.path(), Durability::Buffered);
    assert_eq!(rt.head(), Position(620));
    let reasons = set_aside_reasons(&rt);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("made from another event at position 600")),
        "{reasons:?}"
    );
    check_views(&rt);
    append_and_reopen(rt, dir.path(), 60, Durability::Buffered);
}

#[test]
fn another_views_or_another_logs_snapshots_are_ignored() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for (dir, seed) in [(&a, 3), (&b, 4)] {
        let rt = open(dir.path(), Durability::Fsync);
        append(&rt, 200, seed);
        rt.shutdown().unwrap();
    }
    // Another view's snapshots, of the same shape, under `doubled`.
    let doubled = a.path().join("snapshots").join("doubled");
    fs::remove_dir_all(&doubled).unwrap();
    copy_files(&snapshots(a.path(), "totals"), &doubled);
    let rt = open(a.path(), Durability::Fsync);
    let reasons = set_aside_reasons(&rt);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("made for `totals`, not `doubled`")),
        "{reasons:?}"
    );
    check_views(&rt);
    rt.shutdown().unwrap();
    drop(rt);

    // Another log's snapshots folder.
    fs::remove_dir_all(a.path().join("snapshots")).unwrap();
    copy_files(
        &snapshots(b.path(), "totals"),
        &a.path().join("snapshots").join("totals"),
    );
    let rt = open(a.path(), Durability::Fsync);
    let reasons = set_aside_reasons(&rt);
    assert!(
        reasons.iter().any(|r| r.contains("made from another log")),
        "{reasons:?}"
    );
    check_views(&rt);
}

/// Ways the end of a log gets lost.
fn lose_the_tail(dir: &Path, how: &str) {
    let last = files_with(dir, "seg").pop().unwrap();
    match how {
        "delete" => fs::remove_file(&last).unwrap(),
        "empty" => fs::write(&last, b"").unwrap(),
        "cut" => {
            let len = fs::metadata(&last).unwrap().len();
            let f = fs::OpenOptions::new().write(true).open(&last).unwrap();
            f.set_len(len - 30).unwrap();
        }
        _ => unreachable!(),
    }
}

#[test]
fn a_lost_tail_that_a_snapshot_proves_is_refused_unless_accepted() {
    for how in ["delete", "empty", "cut"] {
        let dir = tempfile::tempdir().unwrap();
        let rt = open(dir.path(), Durability::Fsync);
        append(&rt, 300, 3);
        rt.shutdown().unwrap();
        drop(rt);
        lose_the_tail(dir.path(), how);
        let before = listing(dir.path());
        match open_as(dir.path(), Durability::Fsync, RecoveryMode::TornTail) {
            Err(Error::Corrupt { file, reason, .. }) => {
                assert!(
                    file.extension().is_some_and(|x| x == "snap"),
                    "{how}: {file:?}"
                );
                assert!(reason.contains("..=300 are lost"), "{how}: {reason}");
                assert!(reason.contains("RecoveryMode::PointInTime"), "{reason}");
            }
            Err(e) => panic!("{how}: expected Corrupt, got {e}"),
            Ok(rt) => panic!(
                "{how}: a log that lost acknowledged events opened (head {})",
                rt.head()
            ),
        }
        assert_eq!(
            listing(dir.path()),
            before,
            "{how}: the refused open changed the directory"
        );

        let rt = open_as(dir.path(), Durability::Fsync, RecoveryMode::PointInTime).unwrap();
        let report = rt.recovery().unwrap().clone();
        assert_eq!(
            report.lost,
            Some((rt.head().next(), Position(300))),
            "{how}"
        );
        assert!(
            !report.set_aside.is_empty(),
            "{how}: the proving snapshots were set aside"
        );
        check_views(&rt);
        // Accepted once: a plain open works from now on.
        append_and_reopen(rt, dir.path(), 20, Durability::Fsync);
    }
}

#[test]
fn a_lost_tail_that_a_checkpoint_proves_is_refused_and_the_checkpoint_moves_back() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path(), Durability::Fsync);
    append(&rt, 120, 3);
    let options = rwlog::ProjectionOptions {
        checkpoint_every: 10,
    };
    let p = rt
        .projection_with("mailer", options.clone(), |_: &Recorded<Put>| Ok(()))
        .unwrap();
    p.wait_for(Position(120), Duration::from_secs(10)).unwrap();
    assert_eq!(p.stop().unwrap(), Position(120));
    rt.shutdown().unwrap();
    drop(rt);
    // Lose the tail and every snapshot: only the checkpoint proves it.
    fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    lose_the_tail(dir.path(), "delete");
    match open_as(dir.path(), Durability::Fsync, RecoveryMode::TornTail) {
        Err(Error::Corrupt { file, reason, .. }) => {
            assert!(file.ends_with("projections/mailer.checkpoint"), "{file:?}");
            assert!(reason.contains("checkpoint of `mailer`"), "{reason}");
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|rt| rt.head())),
    }
    let rt = open_as(dir.path(), Durability::Fsync, RecoveryMode::PointInTime).unwrap();
    let head = rt.head();
    append(&rt, 5, 1);
    // The projection resumes right after the recovered head: it handled
    // everything up to there, and the new events are new.
    let first = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&first);
    let p = rt
        .projection_with("mailer", options, move |e: &Recorded<Put>| {
            let _ = seen.compare_exchange(0, e.position().0, Ordering::SeqCst, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    p.wait_for(rt.head(), Duration::from_secs(10)).unwrap();
    assert_eq!(first.load(Ordering::SeqCst), head.0 + 1);
}

#[test]
fn a_checkpoint_from_another_log_is_ignored() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&a, &b] {
        let rt = open(dir.path(), Durability::Fsync);
        append(&rt, 30, 2);
        let p = rt.projection("mailer", |_: &Recorded<Put>| Ok(())).unwrap();
        p.wait_for(Position(30), Duration::from_secs(10)).unwrap();
        p.stop().unwrap();
        rt.shutdown().unwrap();
    }
    let name = Path::new("projections").join("mailer.checkpoint");
    fs::copy(b.path().join(&name), a.path().join(&name)).unwrap();
    let rt = open(a.path(), Durability::Fsync);
    assert!(set_aside_reasons(&rt)
        .iter()
        .any(|r| r.contains("another log")));
    let first = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&first);
    let p = rt
        .projection("mailer", move |e: &Recorded<Put>| {
            let _ = seen.compare_exchange(0, e.position().0, Ordering::SeqCst, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    p.wait_for(Position(30), Duration::from_secs(10)).unwrap();
    assert_eq!(
        first.load(Ordering::SeqCst),
        1,
        "it starts over (at least once)"
    );
}

#[test]
fn point_in_time_keeps_the_undamaged_prefix_and_saves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path(), Durability::Buffered);
    append(&rt, 300, 3);
    rt.shutdown().unwrap();
    drop(rt);
    let segments = files_with(dir.path(), "seg");
    let middle = &segments[segments.len() / 2];
    let mut data = fs::read(middle).unwrap();
    let at = data.len() / 2;
    data[at] ^= 0x40;
    fs::write(middle, &data).unwrap();
    assert!(matches!(
        open_as(dir.path(), Durability::Buffered, RecoveryMode::TornTail),
        Err(Error::Corrupt { .. })
    ));
    let rt = open_as(dir.path(), Durability::Buffered, RecoveryMode::PointInTime).unwrap();
    let report = rt.recovery().unwrap().clone();
    let cut = &report.cuts[0];
    assert_eq!(&cut.file, middle);
    assert!(cut.offset <= at as u64);
    let saved = fs::read(cut.saved.as_ref().unwrap()).unwrap();
    assert_eq!(
        saved,
        data[cut.offset as usize..],
        "the cut bytes were saved"
    );
    let later = report
        .set_aside
        .iter()
        .filter(|(f, ..)| f.extension().is_some_and(|x| x == "seg"));
    assert_eq!(
        later.count(),
        segments.len() / 2 - 1 + usize::from(segments.len() % 2 == 1)
    );
    assert!(rt.head() < Position(300));
    check_views(&rt);
    append_and_reopen(rt, dir.path(), 10, Durability::Buffered);
}
