//! Online backup and verified restore: a backup taken while writers append
//! restores to exactly the prefix up to its head, with views equal to a
//! fresh fold; any damaged byte of a backup is refused at restore naming
//! the file and offset, and nothing is left behind.
#![cfg(feature = "durable")]

#[path = "support/domain.rs"]
mod domain;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use domain::durable::{fold, Put, Totals};
use rwlog::{Error, Position, Runtime, Storage};

fn open(dir: &Path) -> Runtime<Put> {
    Runtime::<Put>::builder()
        .storage(Storage::dir(dir).segment_bytes(16 << 10))
        .persisted_view("totals", Totals::default())
        .disk_snapshot_every(500)
        .build()
        .unwrap()
}

/// Every event's position, stream, version, id, time and payload.
fn events(rt: &Runtime<Put>, upto: Position) -> Vec<(u64, String, u64, String, String, Put)> {
    rt.log()
        .read_all(..=upto)
        .map(|e| {
            (
                e.position().0,
                e.stream().to_string(),
                e.version(),
                e.id().to_string(),
                e.recorded_at().to_string(),
                e.payload().clone(),
            )
        })
        .collect()
}

#[test]
fn a_backup_under_three_writers_restores_to_exactly_its_prefix() {
    let root = tempfile::tempdir().unwrap();
    let rt = open(&root.path().join("log"));
    let projection = rt.projection("audit", |_| Ok(())).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3u64)
        .map(|k| {
            let w = rt.writer();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) || n < 2_000 {
                    let put = Put {
                        key: k * 10 + n % 7,
                        amount: 1 + (n % 5) as i64,
                    };
                    w.append(format!("acct-{k}-{}", n % 13), put).unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    domain::wait_for_head(rt.log(), Position(3_000));
    let mut reports = 0;
    let backup = rt
        .backup_with_progress(root.path().join("backup"), |_| reports += 1)
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(backup.head >= Position(3_000));
    assert!(
        rt.log().head() > backup.head,
        "appends went on past the backup"
    );
    assert!(reports > 1, "progress was reported per file");

    let summary =
        Runtime::<Put>::restore(root.path().join("backup"), root.path().join("copy")).unwrap();
    assert_eq!(summary, backup);
    let copy = open(&root.path().join("copy"));
    assert_eq!(copy.log().head(), backup.head);
    assert_eq!(events(&copy, backup.head), events(&rt, backup.head));
    let restored = copy.reader::<Totals>("totals").unwrap().latest();
    let expected = fold(
        rt.log()
            .read_all(..=backup.head)
            .map(|e| e.get().clone())
            .collect::<Vec<_>>()
            .iter(),
    );
    assert_eq!(**restored, expected);
    for s in 0..13 {
        let stream = format!("acct-1-{s}");
        let versions = copy.log().read_stream(&stream, 1).count() as u64;
        assert_eq!(copy.log().stream_version(&stream), versions);
    }
    // The projection's checkpoint came along, moved back to the head at most.
    drop(projection);
    let resumed = copy.projection("audit", |_| Ok(())).unwrap();
    assert!(resumed.handled() <= backup.head);
}

/// Every file of a backup, relative to it.
fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn any_damaged_byte_is_refused_at_restore_with_file_and_offset() {
    let root = tempfile::tempdir().unwrap();
    let rt = open(&root.path().join("log"));
    for i in 0..1_200u64 {
        rt.writer()
            .append(
                format!("s{}", i % 5),
                Put {
                    key: i % 9,
                    amount: 1,
                },
            )
            .unwrap();
    }
    rt.projection("audit", |_| Ok(()))
        .unwrap()
        .wait_for(Position(1_200), std::time::Duration::from_secs(20))
        .unwrap();
    let backup = root.path().join("backup");
    rt.backup(&backup).unwrap();
    let target = root.path().join("target");
    let mut checked = 0;
    for file in files_of(&backup) {
        let good = fs::read(&file).unwrap();
        // Every byte of small files; a spread of bytes in large ones.
        let step = (good.len() / 97).max(1);
        for i in (0..good.len()).step_by(step).chain([good.len() - 1]) {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            fs::write(&file, &bad).unwrap();
            match Runtime::<Put>::restore(&backup, &target) {
                Err(Error::Corrupt {
                    file: named,
                    offset,
                    reason,
                }) => {
                    assert_eq!(named, file, "byte {i}: {reason}");
                    assert!(
                        offset <= i as u64,
                        "byte {i} reported at {offset}: {reason}"
                    );
                }
                other => panic!("byte {i} of {} changed: {other:?}", file.display()),
            }
            assert!(
                !target.exists(),
                "a refused restore left {}",
                target.display()
            );
            checked += 1;
        }
        fs::write(&file, &good).unwrap();
    }
    assert!(checked > 300, "{checked}");
    // Intact again: it restores.
    Runtime::<Put>::restore(&backup, &target).unwrap();
}

#[test]
fn a_non_empty_target_or_destination_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let rt = open(&root.path().join("log"));
    rt.writer().append("s", Put { key: 1, amount: 1 }).unwrap();
    let full = root.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("keep.txt"), b"mine").unwrap();
    assert!(matches!(rt.backup(&full), Err(Error::NotEmpty { dir }) if dir == full));
    // An empty directory is fine.
    let empty = root.path().join("empty");
    fs::create_dir(&empty).unwrap();
    rt.backup(&empty).unwrap();
    assert!(matches!(
        Runtime::<Put>::restore(&empty, &full),
        Err(Error::NotEmpty { .. })
    ));
    assert_eq!(fs::read(full.join("keep.txt")).unwrap(), b"mine");
    // A directory that is no backup: named clearly.
    match Runtime::<Put>::restore(&full, root.path().join("x")) {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("no manifest"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // An in-memory runtime has nothing to back up.
    let memory = Runtime::<Put>::builder().build().unwrap();
    assert!(matches!(
        memory.backup(root.path().join("m")),
        Err(Error::Config(_))
    ));
}

#[test]
fn backups_under_a_projection_saving_every_event_restore_to_a_log_that_opens() {
    let root = tempfile::tempdir().unwrap();
    let rt = open(&root.path().join("log"));
    let options = rwlog::ProjectionOptions {
        checkpoint_every: 1,
    };
    let _p = rt
        .projection_with("audit", options, |_: &rwlog::Recorded<Put>| Ok(()))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (w, stop) = (rt.writer(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                w.append(
                    "s",
                    Put {
                        key: n % 5,
                        amount: 1,
                    },
                )
                .unwrap();
                n += 1;
            }
        })
    };
    for round in 0..15 {
        let backup = root.path().join(format!("b{round}"));
        let head = rt.backup(&backup).unwrap().head;
        let copy = root.path().join(format!("c{round}"));
        Runtime::<Put>::restore(&backup, &copy).unwrap();
        let reopened = open(&copy);
        assert_eq!(reopened.log().head(), head, "round {round}");
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn a_damaged_frame_in_the_live_log_fails_the_backup_not_the_restore() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let rt = open(&dir);
    for i in 0..20u64 {
        rt.writer().append("s", Put { key: i, amount: 1 }).unwrap();
    }
    let seg = files_of(&dir)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let at = bytes.len() - 5; // inside the last frame's body
    bytes[at] ^= 0x10;
    fs::write(&seg, &bytes).unwrap();
    match rt.backup(root.path().join("backup")) {
        Err(Error::Corrupt { file, reason, .. }) => {
            assert_eq!(file, seg, "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !root.path().join("backup").exists(),
        "a failed backup left files"
    );
}
