//! A durable log with a memory window: the newest events in memory, the
//! older ones read from the segment files. Every read gives what the same
//! log gives with everything in memory, across the boundary, after a
//! reopen (which keeps no more than the window either) and after
//! archiving; a read of a damaged segment below the window says so.
#![cfg(feature = "durable")]

#[path = "support/domain.rs"]
mod domain;

use std::path::Path;
use std::time::Duration;

use domain::durable::{Put, Totals};
use rwlog::{Expected, Position, Runtime, Storage};

const EVENTS: u64 = 40_000;
const WINDOW: u64 = 1_000;

fn open(dir: &Path, window: bool) -> Runtime<Put> {
    let storage = Storage::dir(dir).segment_bytes(64 << 10);
    let storage = if window {
        storage.memory_window(WINDOW)
    } else {
        storage
    };
    Runtime::<Put>::builder()
        .storage(storage)
        .persisted_view("totals", Totals::default())
        .view("memory", Totals::default())
        .snapshot_every(5_000)
        .disk_snapshot_every(7_000)
        .build()
        .unwrap()
}

/// A windowed log whose one view is persisted (so that it can be
/// archived), with segments of `segment_bytes` and snapshots on disk every
/// `disk_every` events.
fn persisted_only(dir: &Path, segment_bytes: u64, disk_every: u64) -> rwlog::Builder<Put> {
    Runtime::<Put>::builder()
        .storage(
            Storage::dir(dir)
                .segment_bytes(segment_bytes)
                .memory_window(WINDOW),
        )
        .persisted_view("totals", Totals::default())
        .disk_snapshot_every(disk_every)
}

/// Appends of 1 to 9 events to 20 streams.
fn fill(rt: &Runtime<Put>, n: u64) {
    let w = rt.writer();
    let mut i = 0;
    while i < n {
        let k = (1 + i % 9).min(n - i);
        let puts = (0..k).map(|j| Put {
            key: (i + j) % 31,
            amount: ((i + j) % 5) as i64,
        });
        w.append_batch(format!("s{}", i % 20), puts).unwrap();
        i += k;
    }
}

/// Everything the log gives: every event forward and backward, every
/// stream from several versions, a subscription from 1, a time lookup,
/// time travel and the views.
fn everything(rt: &Runtime<Put>) -> Vec<String> {
    let log = rt.log();
    let mut out = Vec::new();
    let one = |e: &rwlog::EventRef<Put>| {
        format!(
            "{} {} {} {} {:?}",
            e.position(),
            e.stream(),
            e.version(),
            e.id(),
            e.payload()
        )
    };
    out.extend(log.read_all(..).map(|e| one(&e)));
    out.extend(
        log.read_backward(Position(100)..Position(30_000))
            .map(|e| one(&e)),
    );
    for s in 0..20 {
        for from in [1, 7, 500, 1_900] {
            out.extend(log.read_stream(&format!("s{s}"), from).map(|e| one(&e)));
        }
        out.push(format!(
            "version s{s} {}",
            log.stream_version(&format!("s{s}"))
        ));
    }
    let mut sub = rt.subscribe(Position(1));
    for _ in 0..log.head().0 {
        let e = sub
            .next_timeout(Duration::from_secs(10))
            .expect("the subscription delivers");
        out.push(one(&e));
    }
    let t = log
        .get(Position(12_345))
        .unwrap()
        .recorded_at()
        .to_system_time();
    out.push(format!("position_at {:?}", log.position_at(t)));
    for p in [3, 4_999, 12_345, 33_333] {
        let v = rt.view_at::<Totals>("memory", Position(p)).unwrap();
        out.push(format!("view_at {p} {:?}", v.state()));
    }
    for view in ["totals", "memory"] {
        out.push(format!(
            "{view} {:?}",
            rt.reader::<Totals>(view).unwrap().latest().state()
        ));
    }
    out
}

#[test]
fn reads_across_the_window_give_what_everything_in_memory_gives() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path(), true);
    fill(&rt, EVENTS);
    let log = rt.log();
    assert_eq!(log.first(), Position(1));
    assert!(
        log.in_memory_from() > Position(EVENTS - WINDOW - (1 << 14)),
        "the window keeps about {WINDOW} events: {}",
        log.in_memory_from()
    );
    let windowed = everything(&rt);
    // A projection from the start reads below the window.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&seen);
    let p = rt
        .projection("count", move |_e: &rwlog::Recorded<Put>| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    p.wait_for(Position(EVENTS), Duration::from_secs(30))
        .unwrap();
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), EVENTS);
    p.stop().unwrap();
    rt.shutdown().unwrap();
    drop(rt);

    // The same directory with everything in memory gives the same.
    let full = open(dir.path(), false);
    assert_eq!(full.log().in_memory_from(), Position(1));
    let whole = everything(&full);
    assert_eq!(windowed.len(), whole.len());
    for (i, (a, b)) in windowed.iter().zip(&whole).enumerate() {
        assert_eq!(a, b, "line {i}");
    }
    full.shutdown().unwrap();
    drop(full);

    // Reopened with the window: it holds no more than the window (and a
    // chunk), and gives the same again.
    let rt = open(dir.path(), true);
    let log = rt.log();
    assert_eq!((log.first(), log.head()), (Position(1), Position(EVENTS)));
    assert!(log.in_memory_from() > Position(EVENTS - WINDOW - (1 << 14)));
    assert_eq!(everything(&rt), whole);
    // Appends go on, versions checked across the boundary.
    let v = log.stream_version("s3");
    rt.writer()
        .append_expecting("s3", Expected::Exact(v), [Put { key: 1, amount: 1 }])
        .unwrap();
    assert!(rt
        .writer()
        .append_expecting("s3", Expected::Exact(v), [Put { key: 1, amount: 1 }])
        .is_err());
    assert!(log.read_failure().is_none());
}

#[test]
fn archiving_a_windowed_log_and_a_damaged_segment_below_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path(), true);
    fill(&rt, EVENTS);
    // Archiving moves the floor; what is below it is refused.
    let done = rt.archive_before(Position(20_000));
    assert!(done.is_err(), "an in-memory view blocks archiving");
    rt.shutdown().unwrap();
    drop(rt);
    let rt = persisted_only(dir.path(), 64 << 10, 7_000).build().unwrap();
    let done = rt.archive_before(Position(20_000)).unwrap();
    let log = rt.log();
    assert!(
        done.first > Position(1) && done.first <= Position(20_000),
        "{done:?}"
    );
    assert_eq!(log.first(), done.first);
    assert!(log.try_read_all(Position(1)..).is_err());
    assert_eq!(log.read_all(..).count() as u64, EVENTS - done.first.0 + 1);
    assert!(log.get(Position(done.first.0 - 1)).is_none());
    assert!(log.get(done.first).is_some());

    // Damage a frame in a segment below the window, after the open: the
    // read stops there and says where.
    let p = done.first.0 + 100;
    let victim = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|x| x == "seg"))
        .filter(|f| {
            f.file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                <= p
        })
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&victim, bytes).unwrap();
    let read = log.read_all(done.first..).count() as u64;
    assert!(read < EVENTS - done.first.0 + 1, "the damage was read past");
    let why = log.read_failure().expect("the failure is told");
    assert!(
        why.contains(victim.file_name().unwrap().to_str().unwrap()),
        "{why}"
    );
    assert!(why.contains("checksum") || why.contains("offset"), "{why}");
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

fn damage_middle(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(file, bytes).unwrap();
}

/// (open file descriptors, those of deleted files), of this process.
fn open_fds() -> (usize, usize) {
    let (mut all, mut deleted) = (0, 0);
    for e in std::fs::read_dir("/proc/self/fd").unwrap() {
        all += 1;
        if let Ok(t) = std::fs::read_link(e.unwrap().path()) {
            deleted += usize::from(t.to_string_lossy().ends_with("(deleted)"));
        }
    }
    (all, deleted)
}

#[test]
fn a_failed_read_below_the_window_ends_a_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path(), true);
    fill(&rt, EVENTS);
    damage_middle(&segments(dir.path())[0]);
    let mut sub = rt.subscribe(Position(1));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut n = 0u64;
        while sub.next_timeout(Duration::from_secs(2)).is_some() {
            n += 1;
        }
        let _ = tx.send((n, sub.error().map(|e| e.to_string())));
    });
    let (n, error) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the subscription ends");
    assert!(n < EVENTS);
    let error = error.expect("and says why");
    assert!(
        error.contains("00000000000000000001.seg") && error.contains("checksum"),
        "{error}"
    );
    // (Reopened, the damage is found by recovery, which checks every frame.)
    rt.shutdown().unwrap();
    drop(rt);
    assert!(matches!(
        Runtime::<Put>::builder()
            .storage(Storage::dir(dir.path()).memory_window(WINDOW))
            .build(),
        Err(rwlog::Error::Corrupt { .. })
    ));
}

#[test]
fn an_iterator_made_before_archiving_reads_on_and_files_are_let_go() {
    let dir = tempfile::tempdir().unwrap();
    let rt = persisted_only(dir.path(), 8 << 10, 5_000).build().unwrap();
    fill(&rt, EVENTS);
    let segs = segments(dir.path()).len();
    assert!(segs > 100, "{segs}");
    // Reading through every segment keeps few files open.
    let (before, _) = open_fds();
    let log = rt.log();
    let it = log.read_all(..);
    assert_eq!(log.read_all(..).count() as u64, EVENTS);
    let (after, _) = open_fds();
    let opened = after.saturating_sub(before);
    assert!(opened < 24, "{opened} files left open for {segs} segments");
    // Archiving (moved): an iterator made before still reads it all.
    let done = rt.archive_before(Position(30_000)).unwrap();
    assert!(done.first > Position(20_000), "{done:?}");
    assert_eq!(it.count() as u64, EVENTS);
    assert!(log.read_failure().is_none(), "{:?}", log.read_failure());
    rt.shutdown().unwrap();
    drop(rt);
    // Deleted: no file of a deleted segment stays open.
    let dir = tempfile::tempdir().unwrap();
    let rt = persisted_only(dir.path(), 8 << 10, 5_000)
        .archive_mode(rwlog::ArchiveMode::Delete)
        .build()
        .unwrap();
    fill(&rt, EVENTS);
    assert_eq!(rt.log().read_all(..).count() as u64, EVENTS);
    rt.archive_before(Position(35_000)).unwrap();
    let (_, deleted) = open_fds();
    assert_eq!(deleted, 0, "files of deleted segments stay open");
    assert!(rt.log().read_failure().is_none());
}
