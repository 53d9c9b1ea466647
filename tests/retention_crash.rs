//! Archiving killed midway (SIGKILL, 10 rounds): the directory always
//! opens, at the old horizon or the new one, and no acknowledged event at
//! or above the horizon is lost.
#![cfg(feature = "durable")]

#[path = "support/child.rs"]
mod child;
#[path = "support/domain.rs"]
mod domain;

use std::path::Path;
use std::time::Duration;

use domain::durable::{Put, Totals};
use domain::Rng;
use rwlog::{Position, Runtime, Storage};

const CHILD_DIR: &str = "RWLOG_ARCHIVE_CHILD_DIR";

fn open(dir: &Path) -> Runtime<Put> {
    Runtime::<Put>::builder()
        .storage(Storage::dir(dir).segment_bytes(2 << 10))
        .persisted_view("totals", Totals::default())
        .disk_snapshot_every(100)
        .build()
        .unwrap()
}

/// In the child: one writer appends batches of 10 events to stream "s"
/// (so version = position) and reports each acknowledged head; the main
/// thread archives all but the newest 300 events, over and over.
#[test]
fn archive_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let rt = open(Path::new(&dir));
    child::tell_parent("READY");
    std::thread::scope(|s| {
        s.spawn(|| {
            let w = rt.writer();
            loop {
                let puts = (0..10).map(|k| Put { key: k, amount: 1 });
                let done = w.append_batch("s", puts).unwrap();
                child::tell_parent(&format!("ACK {}", done.position.0));
            }
        });
        loop {
            let head = rt.log().head().0;
            let done = rt
                .archive_before(Position(head.saturating_sub(300)))
                .unwrap();
            if done.segments > 0 {
                child::tell_parent(&format!("ARCHIVED {}", done.first.0));
            }
        }
    });
}

/// Segments still in the log directory below its horizon: an archiving
/// killed between its commit point and its last move.
fn unfinished(dir: &Path) -> bool {
    // (A kill mid-batch leaves a torn tail, which inspect reports as
    // damage: the open cuts it.)
    rwlog::ops::inspect(dir).is_ok_and(|s| s.below_horizon > 0)
}

#[test]
fn a_killed_archiving_loses_nothing_above_the_horizon() {
    let mut rng = Rng(0x0a7c_41e5);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let (mut archived_rounds, mut unfinished_rounds) = (0, 0);
    let mut last_first = Position(1);
    for round in 0..10 {
        let mut child = child::spawn("archive_child", &[(CHILD_DIR, dir.to_str().unwrap())]);
        child.expect("READY");
        std::thread::sleep(Duration::from_micros(50_000 + rng.below(250_000)));
        let said = child.kill();
        let acked = said
            .iter()
            .filter_map(|l| l.strip_prefix("ACK ")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        if said.iter().any(|l| l.starts_with("ARCHIVED")) {
            archived_rounds += 1;
        }
        if unfinished(&dir) {
            unfinished_rounds += 1;
        }
        let rt = open(&dir);
        let log = rt.log();
        let (first, head) = (log.first(), log.head());
        assert!(
            head.0 >= acked,
            "round {round}: head {head} < acknowledged {acked}"
        );
        assert!(first >= last_first, "round {round}: the horizon went back");
        assert!(
            first.0 <= acked.max(1),
            "round {round}: acknowledged events above the horizon gone"
        );
        // Every event the log holds is where it was appended, and the view
        // counts every event ever appended.
        let mut n = 0;
        for e in log.read_all(..) {
            assert_eq!(e.version(), e.position().0, "round {round}");
            n += 1;
        }
        assert_eq!(n, head.0 - first.0 + 1, "round {round}");
        assert_eq!(log.stream_version("s"), head.0, "round {round}");
        let totals = rt.reader::<Totals>("totals").unwrap().latest();
        assert_eq!(
            totals.0.values().sum::<i64>(),
            head.0 as i64,
            "round {round}"
        );
        last_first = first;
        rt.shutdown().unwrap();
    }
    eprintln!(
        "10 kills: the child archived in {archived_rounds} rounds; {unfinished_rounds} left an archiving unfinished; horizon reached {last_first}"
    );
    assert!(
        archived_rounds > 0,
        "the child never archived: the test proved nothing"
    );
    assert!(last_first > Position(1));
}
