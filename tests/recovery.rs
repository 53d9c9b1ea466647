//! Guarantee 2 on disk: with `Durability::Fsync`, an acknowledged append
//! survives a crash; a torn write never corrupts what came before; damage is
//! reported (file and offset), never silently skipped; a failed write is
//! never acknowledged and stops the runtime's appends.

#[path = "support/child.rs"]
mod child;
#[path = "support/domain.rs"]
mod domain;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use domain::durable::{fold, Put, Totals};
use domain::Rng;
use rwlog::{Durability, Error, InjectedFault, Position, Runtime, Storage};

const CHILD_DIR: &str = "RWLOG_CRASH_CHILD_DIR";

fn open_with(dir: &Path, storage: impl FnOnce(Storage) -> Storage) -> rwlog::Result<Runtime<Put>> {
    Runtime::<Put>::builder()
        .storage(storage(Storage::dir(dir).durability(Durability::Fsync)))
        .persisted_view("totals", Totals::default())
        .snapshot_every(64)
        .disk_snapshot_every(64)
        .build()
}

fn open(dir: &Path) -> rwlog::Result<Runtime<Put>> {
    open_with(dir, |s| s.segment_bytes(4096))
}

/// Checks everything recovery promises about a reopened log.
fn check_log(rt: &Runtime<Put>) {
    let events: Vec<_> = rt.log().read_all(..).collect();
    assert_eq!(rt.head(), Position(events.len() as u64));
    let mut versions: HashMap<String, u64> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.position(),
            Position(i as u64 + 1),
            "positions are contiguous from 1"
        );
        let v = versions.entry(e.stream().to_string()).or_default();
        *v += 1;
        assert_eq!(e.version(), *v, "stream versions are contiguous");
    }
    let view = rt.reader::<Totals>("totals").unwrap().latest().into_arc();
    assert_eq!(
        view.position(),
        rt.head(),
        "the view caught up with the log"
    );
    assert_eq!(
        **view,
        fold(events.iter().map(|e| &**e)),
        "the view equals the fold of the log"
    );
}

/// The child of the crash test: appends from 3 threads until killed,
/// printing every acknowledged append.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let rt = open(Path::new(&dir)).expect("the child opens the log");
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let w = rt.writer();
            std::thread::spawn(move || {
                for i in 0.. {
                    let stream = format!("s{}", (t + i) % 5);
                    let put = Put {
                        key: i % 17,
                        amount: t as i64 + 1,
                    };
                    let ack = w.append(stream.as_str(), put).expect("append");
                    child::tell_parent(&format!("ACK {} {stream} {}", ack.position, ack.version));
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// The acknowledgements in the child's output: (position, stream, version).
fn acks(lines: &[String]) -> Vec<(u64, String, u64)> {
    let parse = |line: &String| {
        let mut f = line.strip_prefix("ACK ")?.split(' ');
        let p = f.next()?.parse().ok()?;
        let s = f.next()?.to_owned();
        let v = f.next()?.parse().ok()?;
        Some((p, s, v))
    };
    lines.iter().filter_map(parse).collect()
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let mut rng = Rng(0x5eed_1234);
    let mut acked_total = 0;
    for round in 0..20 {
        let mut child = child::spawn("crash_child", &[(CHILD_DIR, path)]);
        // Kill after a random number of acknowledgements.
        let wanted = 1 + rng.below(400) as usize;
        let mut lines = Vec::new();
        while acks(&lines).len() < wanted {
            match child.line() {
                Some(line) => lines.push(line),
                None => break,
            }
        }
        // Acknowledgements printed before the kill are still in the pipe.
        lines.extend(child.kill());
        let acked = acks(&lines);

        let rt =
            open(dir.path()).unwrap_or_else(|e| panic!("round {round}: reopening failed: {e}"));
        for (p, s, v) in &acked {
            let e = rt.log().get(Position(*p)).unwrap_or_else(|| {
                panic!(
                    "round {round}: acked position {p} is missing (head {})",
                    rt.head()
                )
            });
            assert_eq!(
                (e.stream().as_str(), e.version()),
                (s.as_str(), *v),
                "round {round}: position {p}"
            );
        }
        check_log(&rt);
        let head = rt.head();
        let next = rt
            .writer()
            .append("after", Put { key: 1, amount: 1 })
            .unwrap();
        assert_eq!(
            next.position,
            head.next(),
            "round {round}: appends continue after the reopen"
        );
        rt.shutdown().unwrap();
        acked_total += acked.len();
    }
    assert!(
        acked_total > 20,
        "the children acknowledged too little to test anything"
    );
}

/// Writes `n` single-event batches and shuts down.
fn write_events(dir: &Path, n: u64) {
    let rt = open(dir).unwrap();
    let w = rt.writer();
    for i in 0..n {
        w.append(
            format!("s{}", i % 3),
            Put {
                key: i % 5,
                amount: i as i64,
            },
        )
        .unwrap();
    }
    rt.shutdown().unwrap();
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

/// Byte offsets of the frames of a segment: after its 40-byte header come
/// batches, each a 28-byte header (its frames' byte length at bytes 16..24)
/// and then frames of `[length u32][crc u32][body]`.
fn frames(path: &Path) -> Vec<usize> {
    let data = fs::read(path).unwrap();
    let mut offsets = Vec::new();
    let mut batch = 40;
    while batch + 28 <= data.len() {
        let bytes = u64::from_le_bytes(data[batch + 16..batch + 24].try_into().unwrap()) as usize;
        let end = batch + 28 + bytes;
        let mut off = batch + 28;
        while off + 8 <= end.min(data.len()) {
            offsets.push(off);
            let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
            off += 8 + len;
        }
        batch = end;
    }
    offsets
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn expect_corrupt(dir: &Path, file: &Path, offset: Option<u64>) {
    match open(dir) {
        Err(Error::Corrupt {
            file: f,
            offset: o,
            reason,
        }) => {
            assert_eq!(f.file_name(), file.file_name(), "{reason}");
            if let Some(offset) = offset {
                assert_eq!(o, offset, "{reason}");
            }
        }
        Err(e) => panic!("expected Corrupt naming {}, got {e}", file.display()),
        Ok(rt) => panic!("a damaged log opened, head {}", rt.head()),
    }
}

#[test]
fn a_cut_last_record_loses_only_that_record_at_every_offset() {
    let base = tempfile::tempdir().unwrap();
    write_events(base.path(), 9);
    let last = segments(base.path()).pop().unwrap();
    let before = fs::metadata(&last).unwrap().len();
    write_events_more(base.path(), 1);
    let after = fs::metadata(&last).unwrap().len();
    assert!(after > before);
    for cut in before..after {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let seg = dir.path().join(last.file_name().unwrap());
        fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let rt = open(dir.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(rt.head(), Position(9), "cut at {cut}");
        check_log(&rt);
        // The torn bytes were cut off: a new append lands cleanly.
        rt.writer().append("x", Put { key: 0, amount: 1 }).unwrap();
        rt.shutdown().unwrap();
        drop(rt);
        let again = open(dir.path()).unwrap();
        assert_eq!(again.head(), Position(10), "cut at {cut}");
        check_log(&again);
    }
}

fn write_events_more(dir: &Path, n: u64) {
    let rt = open(dir).unwrap();
    let w = rt.writer();
    for i in 0..n {
        w.append("more", Put { key: i, amount: 1 }).unwrap();
    }
    rt.shutdown().unwrap();
}

#[test]
fn a_flipped_bit_is_corruption_naming_file_and_offset() {
    let base = tempfile::tempdir().unwrap();
    write_events(base.path(), 200);
    let segs = segments(base.path());
    assert!(
        segs.len() >= 3,
        "the test needs several segments, got {}",
        segs.len()
    );
    for (which, seg) in [("middle", &segs[1]), ("last", &segs[segs.len() - 1])] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let path = dir.path().join(seg.file_name().unwrap());
        let offsets = frames(&path);
        let frame = offsets[offsets.len() / 2 - 1];
        let mut data = fs::read(&path).unwrap();
        data[frame + 12] ^= 0x10;
        fs::write(&path, &data).unwrap();
        eprintln!("{which}: flipped a bit in the frame at {frame}");
        expect_corrupt(dir.path(), &path, Some(frame as u64));
    }
}

#[test]
fn a_zero_filled_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 30);
    let last = segments(dir.path()).pop().unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&last).unwrap();
    f.write_all(&[0u8; 300]).unwrap();
    drop(f);
    let rt = open(dir.path()).unwrap();
    assert_eq!(rt.head(), Position(30));
    check_log(&rt);
    rt.writer().append("x", Put { key: 0, amount: 1 }).unwrap();
    rt.shutdown().unwrap();
    drop(rt);
    assert_eq!(open(dir.path()).unwrap().head(), Position(31));
}

#[test]
fn a_garbage_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 10);
    let garbage = dir.path().join(format!("{:020}.seg", 11));
    let mut rng = Rng(99);
    let bytes: Vec<u8> = (0..500).map(|_| rng.next() as u8).collect();
    fs::write(&garbage, bytes).unwrap();
    expect_corrupt(dir.path(), &garbage, Some(0));
    // A file that is not a segment is left alone.
    fs::remove_file(&garbage).unwrap();
    fs::write(dir.path().join("notes.txt"), "not a segment").unwrap();
    assert_eq!(open(dir.path()).unwrap().head(), Position(10));
}

#[test]
fn a_huge_length_prefix_is_an_error_not_an_allocation() {
    for which in ["middle", "last frame"] {
        let dir = tempfile::tempdir().unwrap();
        write_events(dir.path(), 12);
        let last = segments(dir.path()).pop().unwrap();
        let offsets = frames(&last);
        let frame = if which == "middle" {
            offsets[offsets.len() / 2]
        } else {
            *offsets.last().unwrap()
        };
        let mut data = fs::read(&last).unwrap();
        data[frame..frame + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        fs::write(&last, &data).unwrap();
        expect_corrupt(dir.path(), &last, Some(frame as u64));
    }
}

#[test]
fn a_missing_middle_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 200);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    fs::remove_file(&segs[1]).unwrap();
    // The segment that ends short is named, at its end.
    let end = fs::metadata(&segs[0]).unwrap().len();
    expect_corrupt(dir.path(), &segs[0], Some(end));
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_to_an_older_one() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 300);
    let snaps = dir.path().join("snapshots").join("totals");
    let mut files: Vec<_> = fs::read_dir(&snaps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected several snapshots, got {files:?}"
    );
    let newest = files.last().unwrap();
    let mut data = fs::read(newest).unwrap();
    let n = data.len();
    data[n - 3] ^= 0xFF;
    fs::write(newest, &data).unwrap();
    let rt = open(dir.path()).unwrap();
    check_log(&rt);
    // Every snapshot damaged: a full replay, still correct.
    drop(rt);
    for f in &files {
        fs::write(f, b"garbage").unwrap();
    }
    let rt = open(dir.path()).unwrap();
    assert_eq!(rt.head(), Position(300));
    check_log(&rt);
}

#[test]
fn a_failed_write_or_sync_is_never_acked_and_stops_appends() {
    for sync_fails in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let rt = open_with(dir.path(), |s| {
            s.inject_fault(if sync_fails {
                InjectedFault::Sync { after: 3 }
            } else {
                InjectedFault::Write {
                    after: 3,
                    written: 0,
                    kind: std::io::ErrorKind::Other,
                }
            })
        })
        .unwrap();
        let w = rt.writer();
        for i in 0..3 {
            assert_eq!(
                w.append("s", Put { key: i, amount: 1 }).unwrap().position,
                Position(i + 1)
            );
        }
        match w.append("s", Put { key: 9, amount: 1 }) {
            Err(Error::Io(e)) => assert!(e.to_string().contains("could not be written"), "{e}"),
            other => panic!("expected an I/O error, got {other:?}"),
        }
        // No later append is trusted to a store that failed.
        assert!(matches!(
            w.append("s", Put { key: 10, amount: 1 }),
            Err(Error::Io(_))
        ));
        assert!(matches!(
            w.append("t", Put { key: 10, amount: 1 }),
            Err(Error::Io(_))
        ));
        assert_eq!(rt.head(), Position(3));
        assert_eq!(
            rt.reader::<Totals>("totals").unwrap().latest().position(),
            Position(3)
        );
        assert!(rt.stats().storage_failure.is_some());
        rt.shutdown().unwrap();
        drop(rt);
        // Reopened without the fault: what was acked is there, and appends go on.
        let rt = open(dir.path()).unwrap();
        assert!(rt.head() >= Position(3));
        assert!(rt
            .log()
            .read_all(..)
            .take(3)
            .all(|e| e.payload().amount == 1));
        check_log(&rt);
        let next = rt.writer().append("s", Put { key: 1, amount: 1 }).unwrap();
        assert_eq!(next.position, rt.head());
    }
}

#[test]
fn an_append_retried_after_a_reopen_is_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let id = rwlog::Uuid::now_v7();
    let event = || rwlog::NewEvent::new(Put { key: 1, amount: 1 }).with_id(id);
    let first = {
        let rt = open(dir.path()).unwrap();
        let a = rt.writer().append("s", event()).unwrap();
        rt.shutdown().unwrap();
        a
    };
    let rt = open(dir.path()).unwrap();
    let again = rt.writer().append("s", event()).unwrap();
    assert_eq!(
        (again.position, again.version),
        (first.position, first.version)
    );
    assert_eq!(rt.head(), Position(1));
}

#[test]
fn io_errors_name_the_file() {
    // The log directory is a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    match open(&file) {
        Err(Error::Io(e)) => assert!(e.to_string().contains("not-a-dir"), "{e}"),
        other => panic!("expected an I/O error, got {:?}", other.map(|rt| rt.head())),
    }
    // A file the log needs is a directory (EISDIR).
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 3);
    let id = dir.path().join("rwlog.id");
    fs::remove_file(&id).unwrap();
    fs::create_dir(&id).unwrap();
    match open(dir.path()) {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::IsADirectory);
            assert!(e.to_string().contains("rwlog.id"), "{e}");
        }
        other => panic!("expected an I/O error, got {:?}", other.map(|rt| rt.head())),
    }
}

/// The log id of a directory, from its identity file (bytes 10..26).
fn log_id(dir: &Path) -> [u8; 16] {
    fs::read(dir.join("rwlog.id")).unwrap()[10..26]
        .try_into()
        .unwrap()
}

/// A segment that starts at `first`: header, then one batch of the given
/// frame bodies, every checksum valid.
fn crafted_segment(dir: &Path, first: u64, bodies: &[Vec<u8>]) -> PathBuf {
    let mut seg = b"RWLOGSEG".to_vec();
    seg.extend_from_slice(&2u16.to_le_bytes());
    seg.extend_from_slice(&1u16.to_le_bytes());
    seg.extend_from_slice(&first.to_le_bytes());
    seg.extend_from_slice(&log_id(dir));
    let crc = crc32c::crc32c(&seg);
    seg.extend_from_slice(&crc.to_le_bytes());
    let mut frames = Vec::new();
    for body in bodies {
        frames.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frames.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        frames.extend_from_slice(body);
    }
    let mut batch = b"BTCH".to_vec();
    batch.extend_from_slice(&first.to_le_bytes());
    batch.extend_from_slice(&(bodies.len() as u32).to_le_bytes());
    batch.extend_from_slice(&(frames.len() as u64).to_le_bytes());
    let crc = crc32c::crc32c(&batch);
    batch.extend_from_slice(&crc.to_le_bytes());
    seg.extend_from_slice(&batch);
    seg.extend_from_slice(&frames);
    let path = dir.join(format!("{first:020}.seg"));
    fs::write(&path, seg).unwrap();
    path
}

#[test]
fn a_hostile_length_with_valid_checksums_is_corruption_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 3);
    // Position 4, then a stream name that claims 2^61 bytes.
    let mut body = vec![4u8, 0xFD];
    body.extend_from_slice(&(1u64 << 61).to_le_bytes());
    body.extend_from_slice(b"short");
    let seg = crafted_segment(dir.path(), 4, &[body]);
    expect_corrupt(dir.path(), &seg, Some(40 + 28));
}

#[test]
fn zeros_from_inside_the_final_batch_are_a_torn_tail_but_not_before_it() {
    let base = tempfile::tempdir().unwrap();
    write_events(base.path(), 9);
    let seg = segments(base.path()).pop().unwrap();
    let before = fs::metadata(&seg).unwrap().len() as usize;
    // One more append of 5 events: the final batch.
    {
        let rt = open(base.path()).unwrap();
        let puts = (0..5).map(|k| Put { key: k, amount: 1 });
        rt.writer().append_batch("more", puts).unwrap();
        rt.shutdown().unwrap();
    }
    let data = fs::read(&seg).unwrap();
    let after = data.len();
    let frame_starts = frames(&seg);
    let last_frame = *frame_starts.last().unwrap();
    // The length reached the end, but the last pages' data never arrived:
    // zeros from inside the last frame, from inside a middle frame.
    for from in [last_frame + 10, frame_starts[frame_starts.len() - 3] + 3] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let path = dir.path().join(seg.file_name().unwrap());
        let mut torn = data.clone();
        torn[from..].iter_mut().for_each(|b| *b = 0);
        fs::write(&path, &torn).unwrap();
        let rt = open(dir.path()).unwrap_or_else(|e| panic!("zeros from {from}: {e}"));
        assert_eq!(rt.head(), Position(9), "the whole final batch is cut");
        let cut = &rt.recovery().unwrap().cuts[0];
        assert_eq!(
            (cut.offset, cut.bytes),
            (before as u64, (after - before) as u64)
        );
        check_log(&rt);
    }
    // Zeros in the final batch with data after them: not a torn write.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(base.path(), dir.path());
    let path = dir.path().join(seg.file_name().unwrap());
    let mut damaged = data.clone();
    damaged[last_frame - 20..last_frame - 10]
        .iter_mut()
        .for_each(|b| *b = 0);
    fs::write(&path, &damaged).unwrap();
    expect_corrupt(dir.path(), &path, None);
}

#[test]
fn a_zero_filled_next_segment_is_an_interrupted_creation() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 12);
    let next = dir.path().join(format!("{:020}.seg", 13));
    fs::write(&next, [0u8; 4096]).unwrap();
    let rt = open(dir.path()).unwrap();
    assert_eq!(rt.head(), Position(12));
    let cut = &rt.recovery().unwrap().cuts[0];
    assert_eq!((&cut.file, cut.offset, cut.bytes), (&next, 0, 4096));
    rt.writer().append("x", Put { key: 0, amount: 1 }).unwrap();
    rt.shutdown().unwrap();
    drop(rt);
    assert_eq!(open(dir.path()).unwrap().head(), Position(13));
}

#[test]
fn a_bad_view_name_is_refused_before_anything_is_changed() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 9);
    let seg = segments(dir.path()).pop().unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[1, 2, 3]).unwrap(); // a torn tail recovery would cut
    drop(f);
    let len = fs::metadata(&seg).unwrap().len();
    let bad = Runtime::<Put>::builder()
        .storage(Storage::dir(dir.path()))
        .persisted_view("../escape", Totals::default())
        .build();
    assert!(matches!(bad, Err(Error::Config(_))), "{bad:?}");
    assert_eq!(fs::metadata(&seg).unwrap().len(), len, "nothing was cut");
}
