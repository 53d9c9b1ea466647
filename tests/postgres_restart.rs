//! A shared log's process restarts from its local directory: its views
//! from their snapshots, its streams' versions from the restart point, and
//! only the tail of the log from PostgreSQL, with the same log, views and
//! versions as a process that reads everything. And the edges: a snapshot
//! that no longer decodes, a database restored to an older history, a
//! restart point inside another history's batch, a lagging projection, a
//! restart point's cadence after a whole read. In each the process opens,
//! reading the whole log where it must.
//!
//! Needs a server: `RWLOG_PG_URL`, default the local one. Without one the
//! tests print a line and pass, except under `CI=true`.
#![cfg(feature = "postgres")]

#[path = "support/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use pg::Schema;
use rwlog::{Error, Event, Expected, NewEvent, Position, Recorded, Runtime, View};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Moved {
    from: u32,
    to: u32,
    amount: i64,
}

impl Event for Moved {}

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

/// The next release of the program: the same view with one more field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct BalancesV2 {
    balances: BTreeMap<u32, i64>,
    seen: u64,
    largest: i64,
}

impl View<Moved> for BalancesV2 {
    fn apply(&mut self, e: &Recorded<Moved>) {
        let m = e.payload();
        *self.balances.entry(m.from).or_default() -= m.amount;
        *self.balances.entry(m.to).or_default() += m.amount;
        self.seen += 1;
        self.largest = self.largest.max(m.amount);
    }
}

fn local(schema: &Schema, dir: &Path) -> rwlog::Result<Runtime<Moved>> {
    Runtime::<Moved>::builder()
        .storage(schema.storage().local_dir(dir))
        .persisted_view("balances", Balances::default())
        .disk_snapshot_every(1_000)
        .build()
}

/// A process of the shared log `name`, with a local directory, appended
/// `events` events and stopped: the schema and the directory (`None` when
/// no server answers, after one printed line).
fn ran(name: &str, events: u32) -> Option<(Schema, tempfile::TempDir)> {
    if !pg::available() {
        return None;
    }
    let schema = Schema::new(name);
    let dir = tempfile::tempdir().unwrap();
    let rt = local(&schema, dir.path()).unwrap();
    append(&rt, events, 1);
    rt.shutdown().unwrap();
    Some((schema, dir))
}

fn whole(schema: &Schema) -> Runtime<Moved> {
    Runtime::<Moved>::builder()
        .storage(schema.storage())
        .view("balances", Balances::default())
        .build()
        .expect("open the shared log")
}

fn append(rt: &Runtime<Moved>, n: u32, amount: i64) {
    let w = rt.writer();
    for i in 0..n {
        w.append(
            format!("acct-{}", i % 13),
            Moved {
                from: i % 13,
                to: (i + 1) % 13,
                amount,
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

/// Takes the database back to `head` (a restore from an older backup).
fn restore_to(schema: &Schema, head: i64) {
    let mut c = pg::client();
    let s = &schema.name;
    c.batch_execute(&format!(
        "DELETE FROM \"{s}\".batches WHERE first > {head};
         DELETE FROM \"{s}\".event_ids WHERE position > {head};
         UPDATE \"{s}\".head SET position = {head};"
    ))
    .unwrap();
}

/// A new release changes a persisted view's state: its snapshot no longer
/// decodes. The view is rebuilt from the whole log.
#[test]
fn a_view_whose_snapshot_does_not_decode_is_rebuilt_not_refused() {
    let Some((schema, dir)) = ran("review_decode", 1_500) else {
        return;
    };
    let open_v2 = || {
        Runtime::<Moved>::builder()
            .storage(schema.storage().local_dir(dir.path()))
            .persisted_view("balances", BalancesV2::default())
            .disk_snapshot_every(1_000)
            .build()
    };
    let rt = open_v2().expect("the new release opens (reading the whole log)");
    assert_eq!(
        rt.reader::<BalancesV2>("balances").unwrap().latest().seen,
        1_500
    );
}

/// The database is restored from an older backup (head 500) and other
/// processes append past the restart point (1,000) before this process
/// comes back: its restart point and snapshot belong to a history the
/// database no longer has.
#[test]
fn a_restart_point_of_a_history_the_database_lost_is_not_used() {
    let Some((schema, dir)) = ran("review_diverged", 1_200) else {
        return;
    };
    restore_to(&schema, 500);
    let other = whole(&schema);
    append(&other, 800, 7);
    other.shutdown().unwrap();
    drop(other);

    let rt = local(&schema, dir.path()).expect("reopen");
    let reference = whole(&schema);
    assert_eq!(rt.log().head(), Position(1_300));
    for s in 0..13 {
        let stream = format!("acct-{s}");
        assert_eq!(
            rt.log().stream_version(&stream),
            reference.log().stream_version(&stream),
            "{stream}"
        );
    }
    assert_eq!(balances(&rt), balances(&reference));
}

/// Same, but the other processes' batches do not end at the restart point:
/// the process reads the whole log.
#[test]
fn a_restart_point_that_is_not_a_batch_boundary_falls_back() {
    let Some((schema, dir)) = ran("review_boundary", 1_200) else {
        return;
    };
    restore_to(&schema, 500);
    let other = whole(&schema);
    // Batches of 3 from 501: one holds 999..=1001.
    for i in 0..200u32 {
        let m = Moved {
            from: i % 13,
            to: (i + 1) % 13,
            amount: 7,
        };
        other
            .writer()
            .append_batch(format!("acct-{}", i % 13), [m.clone(), m.clone(), m])
            .unwrap();
    }
    other.shutdown().unwrap();
    drop(other);
    let rt = local(&schema, dir.path()).expect("reopen (reading the whole log)");
    assert_eq!(rt.log().head(), Position(1_100));
}

/// What a restarted process says of what it does not hold: subscriptions
/// and new projections before the point are Archived; retries, strong
/// reads and the local directory's lock work.
#[test]
fn restarted_process_reads_before_the_point_are_archived() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("review_ok");
    let dir = tempfile::tempdir().unwrap();
    let rt = local(&schema, dir.path()).unwrap();
    let id = uuid::Uuid::now_v7();
    let first = rt
        .writer()
        .append(
            "acct-0",
            NewEvent::new(Moved {
                from: 0,
                to: 1,
                amount: 1,
            })
            .with_id(id),
        )
        .unwrap();
    append(&rt, 1_200, 1);
    // A second process on the same local directory is refused.
    assert!(matches!(
        local(&schema, dir.path()),
        Err(Error::Locked { .. })
    ));
    rt.shutdown().unwrap();
    drop(rt);
    let rt = local(&schema, dir.path()).unwrap();
    assert_eq!(rt.log().first(), Position(1_001));
    // An idempotent retry of an append before the point: the original.
    let again = rt
        .writer()
        .append(
            "acct-0",
            NewEvent::new(Moved {
                from: 0,
                to: 1,
                amount: 1,
            })
            .with_id(id),
        )
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(rt.log().head(), Position(1_201));
    // A subscription from 1 ends with Archived.
    let mut sub = rt.subscribe(Position(1));
    assert!(sub.next_timeout(Duration::from_secs(2)).is_none());
    assert!(
        matches!(sub.error(), Some(Error::Archived { .. })),
        "{:?}",
        sub.error()
    );
    // A projection without a checkpoint cannot start.
    let p = rt.projection("mailer", |_e| Ok(()));
    assert!(matches!(p, Err(Error::Archived { .. })), "{p:?}");
    // Strong reads.
    let r = rt.reader::<Balances>("balances").unwrap();
    assert_eq!(r.strong().unwrap().seen, 1_201);
    assert_eq!(r.at_least(Position(5)).unwrap().seen, 1_201);
    rt.shutdown().unwrap();
}

/// A projection whose checkpoint is older than the restart point (it
/// lagged, was stopped, or the process was killed between the restart
/// point and its next checkpoint): the process reads the whole log, and
/// the projection resumes.
#[test]
fn a_lagging_projection_checkpoint_keeps_the_whole_log() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("review_projection");
    let dir = tempfile::tempdir().unwrap();
    let rt = local(&schema, dir.path()).unwrap();
    append(&rt, 500, 1);
    let p = rt.projection("mailer", |_e| Ok(())).unwrap();
    p.wait_for(Position(500), Duration::from_secs(10)).unwrap();
    assert_eq!(p.stop().unwrap(), Position(500));
    append(&rt, 700, 1);
    rt.shutdown().unwrap();
    drop(rt);
    for _ in 0..2 {
        let rt = local(&schema, dir.path()).unwrap();
        let p = rt.projection("mailer", |_e| Ok(()));
        assert!(p.is_ok(), "the projection cannot resume: {p:?}");
        p.unwrap().stop().unwrap();
        rt.shutdown().unwrap();
    }
}

/// After a whole read (here: one run with an extra in-memory view) the
/// sequencer counts restart points from where the persisted view counts
/// its snapshots: no restart point is written where no snapshot is.
#[test]
fn a_restart_point_is_written_where_the_views_have_no_snapshot() {
    let Some((schema, dir)) = ran("review_cadence", 1_200) else {
        return;
    };
    let rt = Runtime::<Moved>::builder()
        .storage(schema.storage().local_dir(dir.path()))
        .persisted_view("balances", Balances::default())
        .view("memory", Balances::default())
        .disk_snapshot_every(1_000)
        .build()
        .unwrap();
    assert_eq!(rt.log().first(), Position(1));
    append(&rt, 1, 1);
    rt.shutdown().unwrap();
    drop(rt);
    let rt = local(&schema, dir.path()).unwrap();
    assert_eq!(
        rt.log().first(),
        Position(1_001),
        "the usable restart point was replaced"
    );
}

#[test]
fn a_restart_reads_only_the_tail_and_ends_where_a_whole_read_does() {
    let Some((schema, dir)) = ran("restart", 3_500) else {
        return;
    };
    // Another process appends while this one is down.
    let other = whole(&schema);
    append(&other, 700, 1);
    other.shutdown().unwrap();
    drop(other);

    let rt = local(&schema, dir.path()).unwrap();
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
    let rt = local(&schema, dir.path()).unwrap();
    assert_eq!(rt.log().first(), Position(4_202));
    assert_eq!(balances(&rt).seen, 4_201);
    rt.shutdown().unwrap();
}

#[test]
fn without_a_usable_snapshot_the_whole_log_is_read() {
    let Some((schema, dir)) = ran("restart_fallback", 2_500) else {
        return;
    };
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
    let rt = local(&schema, dir.path()).unwrap();
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
