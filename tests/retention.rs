//! Retention: archiving the front of a durable log. The newest events stay
//! readable, reads before the horizon are refused with `Error::Archived`
//! (never a silent empty result), the streams keep their versions, the
//! views their state, and a reopen starts at the horizon.
#![cfg(feature = "durable")]

#[path = "support/domain.rs"]
mod domain;

use std::path::Path;

use domain::durable::{fold, Put, Totals};
use rwlog::{ArchiveMode, Error, Expected, Position, Retention, Runtime, Storage};

fn builder(dir: &Path) -> rwlog::Builder<Put> {
    Runtime::<Put>::builder()
        .storage(Storage::dir(dir).segment_bytes(8 << 10))
        .persisted_view("totals", Totals::default())
        .disk_snapshot_every(500)
}

/// Appends `n` events, one per append, to streams s0..s4.
fn fill(rt: &Runtime<Put>, from: u64, n: u64) {
    let w = rt.writer();
    for i in from..from + n {
        w.append(
            format!("s{}", i % 5),
            Put {
                key: i % 7,
                amount: 1,
            },
        )
        .unwrap();
    }
}

fn archived(e: Option<Error>) -> Position {
    match e {
        Some(Error::Archived {
            first_available, ..
        }) => first_available,
        other => panic!("expected Archived, got {other:?}"),
    }
}

#[test]
fn retention_by_count_keeps_the_newest_events_and_refuses_older_reads() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path())
        .retain(Retention::Events(1_000))
        .build()
        .unwrap();
    fill(&rt, 0, 5_000);
    let done = rt.apply_retention().unwrap().expect("a policy");
    let log = rt.log();
    let first = log.first();
    assert_eq!(done.first, first);
    assert!(done.segments > 0 && done.bytes > 0, "{done:?}");
    // The newest 1000 are kept (segments go whole: perhaps a few more).
    assert!(first > Position(1) && first <= Position(4_001), "{first}");
    assert_eq!(log.read_all(..).count() as u64, 5_000 - first.0 + 1);
    assert_eq!(log.read_all(..).next().unwrap().position(), first);
    // Reads before the horizon are refused, naming it.
    assert_eq!(archived(log.try_read_all(Position(1)..).err()), first);
    assert_eq!(archived(log.try_read_stream("s0", 1).err()), first);
    assert!(log.get(Position(first.0 - 1)).is_none());
    let mut sub = rt.subscribe(Position(1));
    assert!(
        sub.next().is_none(),
        "a subscription before the horizon ends"
    );
    assert_eq!(archived(sub.error()), first);
    // Time travel: the current state answers for its own position; an
    // older one needs a copy of the view kept after the horizon (none
    // here: no snapshot_every), and says so.
    let at_head = rt.view_at::<Totals>("totals", Position(5_000)).unwrap();
    assert_eq!(at_head.state().0.values().sum::<i64>(), 5_000);
    match rt.view_at::<Totals>("totals", Position(first.0 + 10)) {
        Err(Error::StateArchived {
            requested,
            nearest,
            first_available,
        }) => {
            assert_eq!(
                (requested, nearest, first_available),
                (Position(first.0 + 10), Position(0), first)
            );
        }
        other => panic!("expected StateArchived, got {other:?}"),
    }
    // Streams keep their versions; appends check against them.
    for s in 0..5 {
        assert_eq!(log.stream_version(&format!("s{s}")), 1_000);
    }
    assert!(matches!(
        rt.writer()
            .append_expecting("s0", Expected::Exact(999), [Put { key: 0, amount: 1 }]),
        Err(Error::Conflict { .. })
    ));
    rt.writer()
        .append_expecting("s0", Expected::Exact(1_000), [Put { key: 0, amount: 1 }])
        .unwrap();
    let totals = rt.reader::<Totals>("totals").unwrap().latest();
    assert_eq!(totals.0.values().sum::<i64>(), 5_001);
    // The archive holds the segments, whole (the policy's own thread may
    // have archived some before the call).
    assert!(
        std::fs::read_dir(dir.path().join("archive"))
            .unwrap()
            .count()
            >= done.segments
    );
    rt.shutdown().unwrap();
    drop(rt);

    // A reopen starts at the horizon, with the same versions and views.
    let rt = builder(dir.path()).build().unwrap();
    let log = rt.log();
    assert_eq!((log.first(), log.head()), (first, Position(5_001)));
    assert_eq!(log.stream_version("s0"), 1_001);
    assert_eq!(log.stream_version("s3"), 1_000);
    let totals = rt.reader::<Totals>("totals").unwrap().latest();
    assert_eq!(totals.0.values().sum::<i64>(), 5_001);
    assert_eq!(
        archived(log.try_read_all(Position(first.0 - 1)..).err()),
        first
    );
    fill(&rt, 5_000, 10);
    assert_eq!(rt.log().head(), Position(5_011));
    // The view is its snapshot plus a fold of the events kept after it.
    let kept: Vec<_> = log.read_all(..).collect();
    assert_eq!(kept.len() as u64, 5_011 - first.0 + 1);
    let tail = fold(kept.iter().map(|e| &**e));
    let totals = rt.reader::<Totals>("totals").unwrap().latest();
    assert_eq!(totals.0.values().sum::<i64>(), 5_011);
    assert_eq!(tail.0.values().sum::<i64>(), kept.len() as i64);
}

#[test]
fn archiving_refuses_in_memory_views_and_waits_for_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::<Put>::builder()
        .storage(Storage::dir(dir.path()).segment_bytes(8 << 10))
        .view("memory", Totals::default())
        .build()
        .unwrap();
    fill(&rt, 0, 500);
    assert!(matches!(
        rt.archive_before(Position(400)),
        Err(Error::Config(_))
    ));
    assert_eq!(rt.log().first(), Position(1));
    rt.shutdown().unwrap();
    let refused = Runtime::<Put>::builder()
        .storage(Storage::dir(dir.path().join("other")))
        .view("memory", Totals::default())
        .retain(Retention::Events(10))
        .build();
    assert!(matches!(refused, Err(Error::Config(_))));

    // A persisted view without a snapshot after position 1000 holds the
    // horizon back at 1001 (or the segment before it).
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path())
        .disk_snapshot_every(1_000)
        .build()
        .unwrap();
    fill(&rt, 0, 1_900);
    let done = rt.archive_before(Position(1_800)).unwrap();
    assert!(done.first <= Position(1_001), "{done:?}");
    assert!(
        done.held_back.as_deref().unwrap().contains("totals"),
        "{done:?}"
    );
    // An in-memory log cannot be archived.
    let mem = Runtime::<Put>::builder().build().unwrap();
    assert!(matches!(
        mem.archive_before(Position(1)),
        Err(Error::Config(_))
    ));
}

#[test]
fn a_projection_behind_the_horizon_is_told_and_deleting_archives_leaves_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path())
        .archive_mode(ArchiveMode::Delete)
        .build()
        .unwrap();
    fill(&rt, 0, 3_000);
    let done = rt.archive_before(Position(2_500)).unwrap();
    assert!(done.first > Position(1_000), "{done:?}");
    assert!(!dir.path().join("archive").exists());
    let segments_left = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        })
        .count();
    assert!(segments_left >= 1);
    // A new projection starts at the beginning: refused.
    let started = rt.projection("late", |_e: &rwlog::Recorded<Put>| Ok(()));
    let started = started.map(|_| ());
    assert_eq!(archived(started.err()), done.first);
    // Backup and restore of an archived log keep its horizon.
    rt.backup(dir.path().join("backup")).unwrap();
    let restored =
        Runtime::<Put>::restore(dir.path().join("backup"), dir.path().join("copy")).unwrap();
    assert_eq!(restored.head, Position(3_000));
    rt.shutdown().unwrap();
    let copy = builder(&dir.path().join("copy")).build().unwrap();
    assert_eq!(
        (copy.log().first(), copy.log().head()),
        (done.first, Position(3_000))
    );
    let totals = copy.reader::<Totals>("totals").unwrap().latest();
    assert_eq!(totals.0.values().sum::<i64>(), 3_000);
    let info = rwlog::ops::inspect(dir.path().join("copy")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.first, done.first);
}

#[test]
fn the_policy_archives_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path())
        .retain(Retention::Events(100))
        .build()
        .unwrap();
    fill(&rt, 0, 2_000);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while rt.log().first() == Position(1) {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing archived in 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(rt.log().first() <= Position(1_901));
}

#[test]
fn an_archiving_cut_short_after_its_horizon_is_finished_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path()).build().unwrap();
    fill(&rt, 0, 3_000);
    let done = rt.archive_before(Position(2_000)).unwrap();
    assert!(done.segments >= 2, "{done:?}");
    rt.shutdown().unwrap();
    drop(rt);
    // As if killed after the horizon was written, before its last moves:
    // two archived segments are back in the log's directory.
    let mut archived: Vec<_> = std::fs::read_dir(dir.path().join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    archived.sort();
    for seg in &archived[archived.len() - 2..] {
        std::fs::rename(seg, dir.path().join(seg.file_name().unwrap())).unwrap();
    }
    // Inspecting and backing up such a directory work, and say so.
    let seen = rwlog::ops::inspect(dir.path()).unwrap();
    assert_eq!((seen.first, seen.below_horizon), (done.first, 2));
    assert!(
        seen.to_string().contains("unarchived     2 segments"),
        "{seen}"
    );
    rwlog::ops::backup_dir(dir.path(), dir.path().join("backup"), |_| {}).unwrap();
    let rt = builder(dir.path()).build().unwrap();
    assert_eq!(
        (rt.log().first(), rt.log().head()),
        (done.first, Position(3_000))
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("archive"))
            .unwrap()
            .count(),
        archived.len()
    );
    let totals = rt.reader::<Totals>("totals").unwrap().latest();
    assert_eq!(totals.0.values().sum::<i64>(), 3_000);
    // A damaged horizon file is refused, naming it.
    rt.shutdown().unwrap();
    drop(rt);
    let horizon = dir.path().join("rwlog.horizon");
    let mut bytes = std::fs::read(&horizon).unwrap();
    bytes[30] ^= 1;
    std::fs::write(&horizon, bytes).unwrap();
    match builder(dir.path()).build() {
        Err(Error::Corrupt { file, .. }) => assert_eq!(file, horizon),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_horizon_naming_no_segment_is_refused_before_anything_moves() {
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path()).build().unwrap();
    fill(&rt, 0, 3_000);
    let done = rt.archive_before(Position(2_000)).unwrap();
    rt.shutdown().unwrap();
    drop(rt);
    // One archived segment back (an archiving cut short), and the segment
    // the horizon names gone.
    let archived: Vec<_> = std::fs::read_dir(dir.path().join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    std::fs::rename(
        &archived[0],
        dir.path().join(archived[0].file_name().unwrap()),
    )
    .unwrap();
    let named = dir.path().join(format!("{:020}.seg", done.first.0));
    std::fs::rename(&named, dir.path().join("elsewhere")).unwrap();
    let segments = |d: &Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "seg")
            })
            .count()
    };
    let before = segments(dir.path());
    match builder(dir.path()).build() {
        Err(Error::Corrupt { file, reason, .. }) => {
            assert!(file.ends_with("rwlog.horizon"), "{}", file.display());
            assert!(reason.contains("no segment starts there"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        segments(dir.path()),
        before,
        "a refused open moved segments"
    );
}

#[test]
fn dropping_a_runtime_while_its_policy_archives_lets_go_of_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    // Many snapshot directories make each pass of the policy slow, so that
    // a drop lands during one.
    for i in 0..20_000 {
        std::fs::create_dir_all(dir.path().join("snapshots").join(format!("old-{i}"))).unwrap();
    }
    for round in 0..3 {
        let rt = builder(dir.path())
            .retain(Retention::Events(1))
            .build()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        fill(&rt, round * 100, 100);
        std::thread::sleep(std::time::Duration::from_millis(1_050));
        drop(rt);
        // The directory is free as soon as the drop returns.
        let again = builder(dir.path())
            .build()
            .unwrap_or_else(|e| panic!("round {round}: locked after drop: {e}"));
        drop(again);
    }
}

#[test]
fn retain_needs_a_log_directory() {
    let refused = Runtime::<Put>::builder()
        .retain(Retention::Events(10))
        .build();
    assert!(matches!(refused, Err(Error::Config(_))));
}

#[test]
fn retention_by_age_and_by_position() {
    let dir = tempfile::tempdir().unwrap();
    // Every event is younger than an hour: nothing goes.
    let rt = builder(dir.path())
        .retain(Retention::Age(std::time::Duration::from_secs(3_600)))
        .build()
        .unwrap();
    fill(&rt, 0, 3_000);
    let kept = rt.apply_retention().unwrap().unwrap();
    assert_eq!((kept.first, kept.segments), (Position(1), 0));
    // Older than a moment ago: all but the segment holding the head may go.
    std::thread::sleep(std::time::Duration::from_millis(20));
    fill(&rt, 3_000, 1);
    rt.shutdown().unwrap();
    drop(rt);
    let rt = builder(dir.path())
        .retain(Retention::Age(std::time::Duration::from_millis(10)))
        .build()
        .unwrap();
    let done = rt.apply_retention().unwrap().unwrap();
    assert!(
        done.first > Position(1) && done.first <= Position(3_001),
        "{done:?}"
    );
    assert!(rt.log().get(Position(3_001)).is_some());
    rt.shutdown().unwrap();
    drop(rt);
    // Asking for less than is archived already changes nothing.
    let rt = builder(dir.path())
        .retain(Retention::From(Position(2_000)))
        .build()
        .unwrap();
    let again = rt.apply_retention().unwrap().unwrap();
    assert_eq!(
        (again.first, again.segments, again.held_back),
        (done.first, 0, None)
    );
    rt.shutdown().unwrap();
    drop(rt);
    let dir = tempfile::tempdir().unwrap();
    let rt = builder(dir.path())
        .retain(Retention::From(Position(2_000)))
        .build()
        .unwrap();
    fill(&rt, 0, 3_000);
    let done = rt.apply_retention().unwrap().unwrap();
    assert!(
        done.first > Position(1) && done.first <= Position(2_000),
        "{done:?}"
    );
    assert!(rt.log().get(Position(2_000)).is_some());
}
