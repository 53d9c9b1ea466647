//! Backup and restore killed midway (SIGKILL, 10 rounds each): a killed
//! restore leaves no target, or a whole one; a killed backup is refused by
//! restore (its manifest, written last, is missing), never restored in
//! part.
#![cfg(feature = "durable")]

#[path = "support/child.rs"]
mod child;
#[path = "support/domain.rs"]
mod domain;

use std::path::Path;
use std::time::Duration;

use domain::durable::{Put, Totals};
use domain::Rng;
use rwlog::{Error, Position, Runtime, Storage};

const CHILD_DIR: &str = "RWLOG_BACKUP_CHILD_DIR";
const CHILD_WHAT: &str = "RWLOG_BACKUP_CHILD_WHAT";
const EVENTS: u64 = 6_000;

fn open(dir: &Path) -> Runtime<Put> {
    Runtime::<Put>::builder()
        .storage(Storage::dir(dir).segment_bytes(16 << 10))
        .persisted_view("totals", Totals::default())
        .disk_snapshot_every(1_000)
        .build()
        .unwrap()
}

/// A log of [`EVENTS`] events in many small segments, closed.
fn filled(dir: &Path) {
    let rt = open(dir);
    for chunk in 0..EVENTS / 100 {
        let puts = (0..100).map(|k| Put {
            key: (chunk * 100 + k) % 17,
            amount: 1,
        });
        rt.writer()
            .append_batch(format!("s{}", chunk % 5), puts)
            .unwrap();
    }
    rt.shutdown().unwrap();
}

/// In the child: restores `<dir>/backup` into `<dir>/target`, or backs up
/// `<dir>/log` into `<dir>/backup`, over and over into fresh targets, so
/// that a kill lands at any step.
#[test]
fn backup_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let dir = Path::new(&dir);
    let restoring = std::env::var(CHILD_WHAT).is_ok_and(|w| w == "restore");
    let rt = (!restoring).then(|| open(&dir.join("log")));
    child::tell_parent("READY");
    for i in 0.. {
        match &rt {
            None => {
                Runtime::<Put>::restore(dir.join("backup"), dir.join(format!("target-{i}")))
                    .unwrap();
            }
            Some(rt) => {
                rt.backup(dir.join(format!("backup-{i}"))).unwrap();
            }
        }
        child::tell_parent(&format!("DONE {i}"));
    }
}

/// Every target a killed child left: absent, or a whole restore.
fn check_targets(dir: &Path, prefix: &str, mut check: impl FnMut(&Path)) -> usize {
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(prefix) {
            check(&path);
            seen += 1;
        }
    }
    seen
}

#[test]
fn a_killed_restore_leaves_no_target_or_a_whole_one() {
    let mut rng = Rng(0x0bac_4007);
    let root = tempfile::tempdir().unwrap();
    filled(&root.path().join("log"));
    let rt = open(&root.path().join("log"));
    rt.backup(root.path().join("backup")).unwrap();
    rt.shutdown().unwrap();
    drop(rt);
    let (mut whole, mut cut) = (0, 0);
    for round in 0..10 {
        let dir = root.path();
        let env = [(CHILD_DIR, dir.to_str().unwrap()), (CHILD_WHAT, "restore")];
        let mut child = child::spawn("backup_child", &env);
        child.expect("READY");
        std::thread::sleep(Duration::from_micros(rng.below(300_000)));
        child.kill();
        // A restore killed midway leaves its hidden temporary directory.
        cut += check_targets(dir, ".target-", |_| {});
        whole += check_targets(dir, "target-", |target| {
            let copy = open(target);
            assert_eq!(
                copy.log().head(),
                Position(EVENTS),
                "round {round}: {}",
                target.display()
            );
            let totals = copy.reader::<Totals>("totals").unwrap().latest();
            assert_eq!(totals.0.values().sum::<i64>(), EVENTS as i64);
            copy.shutdown().unwrap();
        });
        // Start the next round with no target of this one.
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("target-") || name.starts_with(".target-") {
                std::fs::remove_dir_all(&path).unwrap();
            }
        }
    }
    eprintln!("{whole} whole restores checked, {cut} killed midway, across 10 killed children");
    assert!(
        cut > 0,
        "no kill landed during a restore: the test proved nothing"
    );
    assert!(
        whole > 0,
        "no restore finished: the test checked no whole one"
    );
}

#[test]
fn a_killed_backup_is_never_restored_in_part() {
    let mut rng = Rng(0x0bac_4008);
    let root = tempfile::tempdir().unwrap();
    filled(&root.path().join("log"));
    let (mut whole, mut refused) = (0, 0);
    for round in 0..10 {
        let dir = root.path();
        let env = [(CHILD_DIR, dir.to_str().unwrap()), (CHILD_WHAT, "backup")];
        let mut child = child::spawn("backup_child", &env);
        child.expect("READY");
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
        child.kill();
        let mut backups = Vec::new();
        check_targets(dir, "backup-", |b| backups.push(b.to_path_buf()));
        for (i, backup) in backups.iter().enumerate() {
            let target = dir.join(format!("restored-{round}-{i}"));
            match Runtime::<Put>::restore(backup, &target) {
                Ok(summary) => {
                    assert_eq!(summary.head, Position(EVENTS));
                    assert_eq!(open(&target).log().head(), Position(EVENTS));
                    whole += 1;
                }
                Err(Error::Corrupt { reason, .. }) => {
                    assert!(reason.contains("no manifest"), "round {round}: {reason}");
                    assert!(
                        !target.exists(),
                        "round {round}: a refused restore left a target"
                    );
                    refused += 1;
                }
                Err(e) => panic!("round {round}: {e}"),
            }
            std::fs::remove_dir_all(backup).unwrap();
            let _ = std::fs::remove_dir_all(&target);
        }
    }
    eprintln!("{whole} whole backups restored, {refused} unfinished ones refused");
    assert!(
        refused > 0,
        "no kill landed during a backup: the test proved nothing"
    );
}
