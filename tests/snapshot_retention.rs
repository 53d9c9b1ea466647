//! Snapshots on disk have their own cadence and are pruned to the newest
//! few; a persisted view writes them without any in-memory history.

use std::fs;
use std::path::Path;

use rwlog::{Error, Event, Position, Recorded, Runtime, Storage, View};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Add(u64);
impl Event for Add {}

fn add(_key: u64, amount: u64) -> Add {
    Add(amount)
}

/// The sum of every amount.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Sums(u64);

impl View<Add> for Sums {
    fn apply(&mut self, e: &Recorded<Add>) {
        self.0 += e.payload().0;
    }
}

fn open(dir: &Path, every: u64, keep: usize) -> rwlog::Result<Runtime<Add>> {
    Runtime::<Add>::builder()
        .storage(Storage::dir(dir))
        .persisted_view("sums", Sums::default())
        .disk_snapshot_every(every)
        .keep_disk_snapshots(keep)
        .build()
}

/// The positions of the snapshot files of view `sums`, oldest first.
fn snapshots(dir: &Path) -> Vec<u64> {
    let mut found: Vec<u64> = fs::read_dir(dir.join("snapshots").join("sums"))
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let name = e.ok()?.file_name().into_string().ok()?;
                    name.strip_suffix(".snap")?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[test]
fn only_the_newest_snapshots_stay_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path(), 10, 3).unwrap();
    let w = rt.writer();
    for i in 0..200 {
        w.append("s", add(i % 4, 1)).unwrap();
    }
    rt.shutdown().unwrap();
    assert_eq!(snapshots(dir.path()), vec![180, 190, 200]);
    // No in-memory history was asked for: only the initial state is kept.
    assert_eq!(rt.stats().views[0].snapshots_kept, 1);

    // Reopened from the newest, which holds every event's effect.
    let rt = open(dir.path(), 10, 3).unwrap();
    let sums = rt.reader::<Sums>("sums").unwrap().latest();
    assert_eq!(sums.position(), Position(200));
    assert_eq!(sums.0, 200);
}

#[test]
fn a_persisted_view_writes_snapshots_at_the_default_cadence() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::<Add>::builder()
        .storage(Storage::dir(dir.path()))
        .persisted_view("sums", Sums::default())
        .build()
        .unwrap();
    let w = rt.writer();
    for chunk in 0..21 {
        w.append_batch("s", (0..1000).map(|k| add(k % 8, chunk)))
            .unwrap();
    }
    rt.shutdown().unwrap();
    // 10,000 by default, the newest two kept.
    assert_eq!(snapshots(dir.path()), vec![10_000, 20_000]);
}

#[test]
fn keeping_no_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    match open(dir.path(), 10, 0) {
        Err(Error::Config(why)) => assert!(why.contains("keep_disk_snapshots"), "{why}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn no_disk_cadence_writes_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path(), 0, 2).unwrap();
    for i in 0..50 {
        rt.writer().append("s", add(i % 3, 1)).unwrap();
    }
    rt.shutdown().unwrap();
    assert!(snapshots(dir.path()).is_empty());
}
