//! A shared log's process restarts from its local directory: its views
//! from their snapshots, its streams' versions from the restart point, and
//! only the tail of the log from PostgreSQL, with the same log, views and
//! versions as a process that reads everything.
//!
//! Needs a server: `RWLOG_PG_URL`, default the local one. Without one the
//! tests print a line and pass, except under `CI=true`.
#![cfg(feature = "postgres")]

#[path = "support/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::path::Path;

use pg::Schema;
use rwlog::{Error, Event, Expected, Position, Recorded, Runtime, View};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Moved {
    from: u32,
    to: u32,
    amount: i64,
}

impl Event for Moved {}

/// Every account's balance, and how many events it has seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Balances {
    balances: BTreeMap<u32, i64>,
    seen: u64,
}

impl View<Moved> for Balances {
    fn apply(&mut self, e: &Recorded<Moved>) {
        let m = e.payload();
        *self.balances.entry(m.from).or_default() -= m.amount;
        *self.balances.entry(m.to).or_default() += m.amount;
        self.seen += 1;
    }
}

/// A process with a local directory and a persisted view.
fn local(schema: &Schema, dir: &Path) -> Runtime<Moved> {
    Runtime::<Moved>::builder()
        .storage(schema.storage().local_dir(dir))
        .persisted_view("balances", Balances::default())
        .disk_snapshot_every(1_000)
        .build()
        .expect("open the shared log")
}

/// A process that reads everything.
fn whole(schema: &Schema) -> Runtime<Moved> {
    Runtime::<Moved>::builder()
        .storage(schema.storage())
        .view("balances", Balances::default())
        .build()
        .expect("open the shared log")
}

fn append(rt: &Runtime<Moved>, n: u32) {
    let w = rt.writer();
    for i in 0..n {
        w.append(
            format!("acct-{}", i % 13),
            Moved {
                from: i % 13,
                to: (i + 1) % 13,
                amount: 1,
            },
        )
        .unwrap();
    }
}

fn balances(rt: &Runtime<Moved>) -> Balances {
    rt.reader::<Balances>("balances")
        .unwrap()
        .latest()
        .state()
        .clone()
}

#[test]
fn a_restart_reads_only_the_tail_and_ends_where_a_whole_read_does() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("restart");
    let dir = tempfile::tempdir().unwrap();
    let rt = local(&schema, dir.path());
    append(&rt, 3_500);
    rt.shutdown().unwrap();
    drop(rt);
    // Another process appends while this one is down.
    let other = whole(&schema);
    append(&other, 700);
    other.shutdown().unwrap();
    drop(other);

    let rt = local(&schema, dir.path());
    let log = rt.log();
    // It started from the restart point: the snapshot's position.
    assert_eq!(
        log.first(),
        Position(3_001),
        "started at the newest restart point"
    );
    assert_eq!(log.head(), Position(4_200));
    let reference = whole(&schema);
    assert_eq!(balances(&rt), balances(&reference));
    assert_eq!(balances(&rt).seen, 4_200);
    for s in 0..13 {
        let stream = format!("acct-{s}");
        assert_eq!(
            log.stream_version(&stream),
            reference.log().stream_version(&stream)
        );
    }
    // Expected versions hold across the restart point.
    let v = log.stream_version("acct-3");
    let conflict = rt.writer().append_expecting(
        "acct-3",
        Expected::Exact(v - 1),
        [Moved {
            from: 3,
            to: 4,
            amount: 1,
        }],
    );
    assert!(
        matches!(conflict, Err(Error::Conflict { .. })),
        "{conflict:?}"
    );
    rt.writer()
        .append_expecting(
            "acct-3",
            Expected::Exact(v),
            [Moved {
                from: 3,
                to: 4,
                amount: 1,
            }],
        )
        .unwrap();
    // What it does not hold locally is refused, never read as empty.
    assert!(matches!(
        log.try_read_all(Position(1)..),
        Err(Error::Archived {
            first_available: Position(3_001),
            ..
        })
    ));
    // Backup and archiving are for log directories, not local ones.
    assert!(matches!(
        rt.archive_before(Position(10)),
        Err(Error::Config(_))
    ));
    reference.shutdown().unwrap();
    rt.shutdown().unwrap();
    drop(rt);
    // A second restart goes on from the newer point (the first batch past
    // a multiple of 1,000 after the last one).
    let rt = local(&schema, dir.path());
    assert_eq!(rt.log().first(), Position(4_202));
    assert_eq!(balances(&rt).seen, 4_201);
    rt.shutdown().unwrap();
}

#[test]
fn without_a_usable_snapshot_the_whole_log_is_read() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("restart_fallback");
    let dir = tempfile::tempdir().unwrap();
    let rt = local(&schema, dir.path());
    append(&rt, 2_500);
    rt.shutdown().unwrap();
    drop(rt);
    // Damage the newest snapshot: the process reads everything instead.
    let snaps = dir.path().join("snapshots").join("balances");
    let mut files: Vec<_> = std::fs::read_dir(&snaps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let newest = files.last().unwrap().clone();
    let mut bytes = std::fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&newest, bytes).unwrap();
    let rt = local(&schema, dir.path());
    assert_eq!(rt.log().first(), Position(1));
    assert_eq!(balances(&rt).seen, 2_500);
    rt.shutdown().unwrap();
    drop(rt);
    // A view in memory only needs the whole log too.
    let rt = Runtime::<Moved>::builder()
        .storage(schema.storage().local_dir(dir.path()))
        .persisted_view("balances", Balances::default())
        .view("memory", Balances::default())
        .build()
        .unwrap();
    assert_eq!(rt.log().first(), Position(1));
    assert_eq!(
        rt.reader::<Balances>("memory").unwrap().latest().seen,
        2_500
    );
    rt.shutdown().unwrap();
    drop(rt);
    // A local directory of another log is refused.
    let other = Schema::new("restart_other");
    match Runtime::<Moved>::builder()
        .storage(other.storage().local_dir(dir.path()))
        .build()
    {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("another log"), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
