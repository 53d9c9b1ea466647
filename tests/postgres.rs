//! A log shared through PostgreSQL: several runtimes (and processes) on one
//! log see one order, dense positions, expected versions checked against
//! everyone's appends, and every acknowledged append exactly once.
//!
//! Needs a server: `RWLOG_PG_URL`, default the local one. Without one the
//! tests print a line and pass, except under `CI=true`.
#![cfg(feature = "postgres")]

#[path = "support/child.rs"]
mod child;
#[path = "support/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::time::Duration;

use pg::Schema;
use rwlog::{Error, Event, Expected, NewEvent, Position, Recorded, Runtime, Storage, View};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Moved {
    from: u32,
    to: u32,
    amount: i64,
    /// Which append this event belongs to (0 where it does not matter):
    /// process << 40 | thread << 32 | sequence.
    tag: u64,
}

impl Event for Moved {}

/// Every account's balance; money only moves, so the total stays 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Balances(BTreeMap<u32, i64>);

impl View<Moved> for Balances {
    fn apply(&mut self, e: &Recorded<Moved>) {
        let m = e.payload();
        *self.0.entry(m.from).or_default() -= m.amount;
        *self.0.entry(m.to).or_default() += m.amount;
    }
}

fn moved(from: u32, to: u32, amount: i64) -> Moved {
    Moved {
        from,
        to,
        amount,
        tag: 0,
    }
}

fn runtime(storage: Storage) -> Runtime<Moved> {
    Runtime::<Moved>::builder()
        .view("balances", Balances::default())
        .storage(storage)
        .build()
        .expect("open the shared log")
}

/// Every event of the runtime's log, as (position, stream, version, payload).
fn contents(rt: &Runtime<Moved>) -> Vec<(u64, String, u64, Moved)> {
    rt.log()
        .read_all(..)
        .map(|e| {
            (
                e.position().0,
                e.stream().to_string(),
                e.version(),
                e.payload().clone(),
            )
        })
        .collect()
}

#[test]
fn two_runtimes_share_one_order() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("share");
    let a = runtime(schema.storage());
    let b = runtime(schema.storage());
    let wa = a.writer();
    let wb = b.writer();
    let first = wa.append("acct-1", moved(1, 2, 5)).unwrap();
    let second = wb.append("acct-2", moved(2, 3, 7)).unwrap();
    assert_eq!(
        (first.position, second.position),
        (Position(1), Position(2))
    );
    // b adopted a's append before its own; a sees b's once it reads strongly.
    let sa = a.reader::<Balances>("balances").unwrap();
    let s = sa.strong().unwrap();
    assert_eq!(s.position(), Position(2));
    assert_eq!(s.0.get(&2), Some(&-2));
    drop(s);
    // A position acknowledged in the other runtime.
    let third = wb.append("acct-1", moved(3, 1, 1)).unwrap();
    let s = sa.at_least(third.position).unwrap();
    assert!(s.position() >= third.position);
    drop(s);
    // Stream versions count everyone's appends: b's append to acct-1 was
    // its second, and a's expectation of version 1 is stale.
    assert_eq!(third.version, 2);
    match wa.append_expecting("acct-1", Expected::Exact(1), [moved(1, 1, 0)]) {
        Err(Error::Conflict { actual: 2, .. }) => {}
        other => panic!("expected a conflict at version 2, got {other:?}"),
    }
    wa.append_expecting("acct-1", Expected::Exact(2), [moved(1, 4, 1)])
        .unwrap();
    let sb = b.reader::<Balances>("balances").unwrap();
    let (ra, rb) = (sa.strong().unwrap(), sb.strong().unwrap());
    assert_eq!(ra.position(), Position(4));
    assert_eq!((ra.position(), &ra.0), (rb.position(), &rb.0));
    drop((ra, rb));
    assert_eq!(contents(&a), contents(&b));
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
fn reopening_reads_the_whole_log() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("reopen");
    let before = {
        let rt = runtime(schema.storage());
        let w = rt.writer();
        for i in 0..300u32 {
            let events: Vec<Moved> = (0..(i % 4 + 1)).map(|j| moved(i, j, 1)).collect();
            w.append_batch(format!("s{}", i % 7), events).unwrap();
        }
        let c = contents(&rt);
        rt.shutdown().unwrap();
        c
    };
    let rt = runtime(schema.storage());
    assert_eq!(contents(&rt), before);
    let r = rt.reader::<Balances>("balances").unwrap();
    assert_eq!(r.latest().position(), Position(before.len() as u64));
    // Positions and versions continue.
    let next = rt.writer().append("s0", moved(0, 0, 0)).unwrap();
    assert_eq!(next.position, Position(before.len() as u64 + 1));
    let s0 = before.iter().filter(|e| e.1 == "s0").count() as u64;
    assert_eq!(next.version, s0 + 1);
    rt.shutdown().unwrap();
}

#[test]
fn an_id_appended_by_another_runtime_is_acknowledged_not_written_twice() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("ids");
    let a = runtime(schema.storage());
    let b = runtime(schema.storage());
    let id = uuid::Uuid::new_v4();
    let three = || {
        (0..3)
            .map(|i| NewEvent::new(moved(1, 2, i)))
            .enumerate()
            .map(|(i, e)| if i == 0 { e.with_id(id) } else { e })
            .collect::<Vec<_>>()
    };
    let first = a
        .writer()
        .append_expecting("s", Expected::Any, three())
        .unwrap();
    // The same append, retried through another runtime (as after an
    // unknown outcome): acknowledged with the original's extent.
    let again = b
        .writer()
        .append_expecting("s", Expected::Any, three())
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(first.count, 3);
    assert_eq!(b.log().head(), Position(3));
    let r = b.reader::<Balances>("balances").unwrap();
    assert_eq!(r.strong().unwrap().0.get(&2), Some(&3));
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
fn bad_settings_and_unreachable_servers_are_typed_errors() {
    if !pg::available() {
        return;
    }
    let build = |storage: Storage| Runtime::<Moved>::builder().storage(storage).build();
    match build(Storage::postgres(pg::url()).schema("Not-Plain")) {
        Err(Error::Config(why)) => assert!(why.contains("schema"), "{why}"),
        other => panic!("{other:?}"),
    }
    let nobody = Storage::postgres("postgres://postgres@127.0.0.1:1/test");
    match build(nobody) {
        Err(Error::Postgres(why)) => {
            assert!(why.contains("127.0.0.1:1"), "names the server: {why}");
        }
        other => panic!("{other:?}"),
    }
    match build(Storage::postgres(
        "postgres://postgres@127.0.0.1:5432/no_such_database_here",
    )) {
        Err(Error::Postgres(why)) => assert!(why.contains("no_such_database_here"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Tables of a version this rwlog does not know.
    let schema = Schema::new("version");
    drop(runtime(schema.storage()));
    let mut c = pg::client();
    c.execute(
        &format!(
            "INSERT INTO \"{}\".rwlog_migrations (version) VALUES (99)",
            schema.name
        ),
        &[],
    )
    .unwrap();
    match build(schema.storage()) {
        Err(Error::SchemaMismatch {
            found: 99,
            supported: 1,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_foreign_transaction_holding_the_head_times_appends_out_then_they_recover() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("lock");
    let rt = runtime(schema.storage().lock_timeout(Duration::from_millis(300)));
    let w = rt.writer();
    w.append("s", moved(1, 2, 1)).unwrap();
    let mut c = pg::client();
    let mut tx = c.transaction().unwrap();
    tx.query(
        &format!("SELECT position FROM \"{}\".head FOR UPDATE", schema.name),
        &[],
    )
    .unwrap();
    let started = std::time::Instant::now();
    match w.append("s", moved(1, 2, 1)) {
        Err(Error::Postgres(why)) => assert!(why.contains("lock"), "{why}"),
        other => panic!("expected a lock timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    tx.rollback().unwrap();
    // Nothing of the refused append is anywhere; the next one goes on.
    let next = w.append("s", moved(1, 2, 1)).unwrap();
    assert_eq!((next.position, next.version), (Position(2), 2));
    rt.shutdown().unwrap();
}

#[test]
fn a_gap_or_a_damaged_batch_is_corrupt_never_skipped() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("damage");
    {
        let rt = runtime(schema.storage());
        let w = rt.writer();
        for i in 0..3 {
            w.append_batch("s", [moved(i, 1, 1), moved(i, 2, 1)])
                .unwrap();
        }
        rt.shutdown().unwrap();
    }
    let mut c = pg::client();
    let t = format!("\"{}\".batches", schema.name);
    // A flipped byte inside a frame of the second batch.
    c.execute(
        &format!(
            "UPDATE {t} SET body = set_byte(body, 20, get_byte(body, 20) # 1) WHERE first = 3"
        ),
        &[],
    )
    .unwrap();
    let open = || {
        Runtime::<Moved>::builder()
            .storage(schema.storage())
            .build()
    };
    match open() {
        Err(Error::Corrupt { file, reason, .. }) => {
            let file = file.display().to_string();
            assert!(
                file.contains("batches") && file.contains("position 3"),
                "{file}"
            );
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
    // A missing batch: the next one does not follow the one before.
    c.execute(&format!("DELETE FROM {t} WHERE first = 3"), &[])
        .unwrap();
    match open() {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("dense"), "{reason}"),
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_running_runtime_refuses_to_adopt_a_gap() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("gap");
    let a = runtime(schema.storage());
    let b = runtime(schema.storage());
    a.writer().append("s", moved(1, 2, 1)).unwrap();
    // b has not read position 1 yet (or has: then the gap is at 2). Make a
    // hole after whatever b holds, as a buggy writer would.
    let mut c = pg::client();
    let t = format!("\"{}\"", schema.name);
    c.batch_execute(&format!(
        "UPDATE {t}.head SET position = 9;
         INSERT INTO {t}.batches (first, last, events, batch_id, body)
         SELECT 9, 9, 1, gen_random_uuid(), body FROM {t}.batches WHERE first = 1"
    ))
    .unwrap();
    let r = b.reader::<Balances>("balances").unwrap();
    // b never adopts anything past the hole: a wait for position 9 ends in
    // an error (the damage, once b has read it; else the timeout), and b's
    // appends are refused from then on, naming the damage.
    match r.at_least_timeout(Position(9), Duration::from_millis(500)) {
        Err(Error::Timeout { .. }) => {}
        Err(Error::Io(e)) => assert!(e.to_string().contains("dense"), "{e}"),
        other => panic!(
            "expected no snapshot at 9, got {:?}",
            other.map(|s| s.position())
        ),
    }
    assert!(
        b.log().head() < Position(9),
        "nothing past the hole is adopted"
    );
    match b.writer().append("s", moved(1, 2, 1)) {
        Err(Error::Io(e)) => assert!(e.to_string().contains("dense"), "{e}"),
        other => panic!("expected the damage to refuse appends, got {other:?}"),
    }
    drop(a);
}

#[test]
fn async_reads_wait_for_another_runtimes_appends_without_blocking() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("async");
    let a = runtime(schema.storage());
    let b = runtime(schema.storage());
    let rb = b.reader::<Balances>("balances").unwrap();
    let ack = a.writer().append("s", moved(1, 2, 3)).unwrap();
    let tasks = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tasks.block_on(async {
        // b may not have adopted it yet: the database's head says it exists.
        let s = rb.at_least_async(ack.position).await.unwrap();
        assert!(s.position() >= ack.position);
        drop(s);
        let next = a.writer().append("s", moved(2, 1, 1)).unwrap();
        let s = rb.strong_async().await.unwrap();
        assert!(s.position() >= next.position);
        assert_eq!(s.0.get(&1), Some(&-2));
    });
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
fn a_catch_up_that_failed_is_tried_again() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("retry_catch_up");
    let a = runtime(schema.storage());
    let s = &schema.name;
    // b connects as a role that, for a while, may not read the batches.
    let role = format!("{s}_reader");
    let mut c = pg::client();
    c.batch_execute(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN;
         DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO {role}', current_database()); END $$;
         GRANT ALL ON SCHEMA \"{s}\" TO {role};
         GRANT ALL ON ALL TABLES IN SCHEMA \"{s}\" TO {role};"
    ))
    .unwrap();
    let url = pg::url().replacen("postgres@", &format!("{role}@"), 1);
    let b = runtime(
        Storage::postgres(url)
            .schema(s)
            .poll_interval(Duration::from_millis(50)),
    );
    c.batch_execute(&format!("REVOKE SELECT ON \"{s}\".batches FROM {role}"))
        .unwrap();
    let ack = a.writer().append("s", moved(1, 2, 1)).unwrap();
    // b is told of position 1 and fails to read it.
    std::thread::sleep(Duration::from_millis(300));
    c.batch_execute(&format!("GRANT SELECT ON \"{s}\".batches TO {role}"))
        .unwrap();
    // Nothing else happens in the database: only b's polls can bring it in.
    let r = b.reader::<Balances>("balances").unwrap();
    let got = r.at_least_timeout(ack.position, Duration::from_secs(5));
    assert!(got.is_ok(), "b never adopted position 1: {:?}", got.err());
    drop((r, b));
    c.batch_execute(&format!(
        "REVOKE ALL ON ALL TABLES IN SCHEMA \"{s}\" FROM {role};
         REVOKE ALL ON SCHEMA \"{s}\" FROM {role};
         DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM {role}', current_database()); END $$;
         DROP ROLE {role};"
    ))
    .unwrap();
}

#[test]
fn strong_reads_fail_instead_of_waiting_once_the_log_is_refused() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("strong_fatal");
    let a = runtime(schema.storage());
    let b = runtime(schema.storage());
    a.writer().append("s", moved(1, 2, 1)).unwrap();
    let r = b.reader::<Balances>("balances").unwrap();
    r.strong().unwrap();
    let t = format!("\"{}\"", schema.name);
    pg::client()
        .batch_execute(&format!(
            "UPDATE {t}.head SET position = 9;
             INSERT INTO {t}.batches (first, last, events, batch_id, body)
             SELECT 9, 9, 1, gen_random_uuid(), body FROM {t}.batches WHERE first = 1"
        ))
        .unwrap();
    assert!(b.writer().append("s", moved(1, 2, 1)).is_err());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(r.strong().map(|s| s.position()));
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Err(Error::Io(e))) => assert!(e.to_string().contains("dense"), "{e}"),
        Ok(other) => panic!("expected the storage failure, got {other:?}"),
        Err(_) => panic!("strong() waits for ever for positions b will never adopt"),
    }
    drop(a);
}

#[test]
fn a_retry_of_a_stored_append_is_acknowledged_even_when_its_batch_fails() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("retry_refused");
    let rt = runtime(schema.storage().lock_timeout(Duration::from_millis(200)));
    let w = rt.writer();
    let id = uuid::Uuid::new_v4();
    let keyed = || [NewEvent::new(moved(1, 2, 1)).with_id(id)];
    let first = w.append_expecting("s", Expected::Any, keyed()).unwrap();
    let mut c = pg::client();
    let mut tx = c.transaction().unwrap();
    tx.query(
        &format!("SELECT position FROM \"{}\".head FOR UPDATE", schema.name),
        &[],
    )
    .unwrap();
    // The batch cannot start (the head is held), but this append is in the
    // log already: it is acknowledged again, not told it is not there.
    let again = w.append_expecting("s", Expected::Any, keyed());
    let fresh = w.append("s", moved(1, 2, 1));
    tx.rollback().unwrap();
    assert_eq!(again.unwrap(), first);
    assert!(matches!(fresh, Err(Error::Postgres(_))), "{fresh:?}");
}
