//! Several processes on one log shared through PostgreSQL, killed with
//! SIGKILL mid-append, and connections terminated by the server: no gap, no
//! acknowledged append lost, none written twice, every process's log the
//! same.
//!
//! Needs a server: `RWLOG_PG_URL`, default the local one. Without one the
//! tests print a line and pass, except under `CI=true`.
#![cfg(feature = "postgres")]

#[path = "support/child.rs"]
mod child;
#[path = "support/pg.rs"]
mod pg;
#[path = "support/rng.rs"]
mod rng;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rwlog::{Error, Event, Expected, NewEvent, Position, Recorded, Runtime, View};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use pg::Schema;

/// Money moved between accounts; `tag` names the append (process << 40 |
/// thread << 32 | sequence) and `part` the event's place in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Moved {
    from: u32,
    to: u32,
    amount: i64,
    tag: u64,
    part: u32,
}

impl Event for Moved {}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Balances(BTreeMap<u32, i64>);

impl View<Moved> for Balances {
    fn apply(&mut self, e: &Recorded<Moved>) {
        let m = e.payload();
        *self.0.entry(m.from).or_default() -= m.amount;
        *self.0.entry(m.to).or_default() += m.amount;
    }
}

impl Balances {
    fn total(&self) -> i64 {
        self.0.values().sum()
    }
}

fn open(schema: &str) -> Runtime<Moved> {
    Runtime::<Moved>::builder()
        .view("balances", Balances::default())
        .storage(rwlog::Storage::postgres(pg::url()).schema(schema))
        .build()
        .expect("open the shared log")
}

/// A process with a local directory: its view persisted there, and a
/// restart point every 200 events.
fn open_local(schema: &str, dir: &str) -> Runtime<Moved> {
    Runtime::<Moved>::builder()
        .persisted_view("balances", Balances::default())
        .disk_snapshot_every(200)
        .storage(
            rwlog::Storage::postgres(pg::url())
                .schema(schema)
                .local_dir(dir),
        )
        .build()
        .expect("open the shared log")
}

fn tag(process: u64, thread: u64, seq: u64) -> u64 {
    process << 40 | thread << 32 | seq
}

/// One append of `n` transfers tagged `tag`, the first carrying `id`.
fn transfers(rng: &mut rng::Rng, tag: u64, n: u32, id: Uuid) -> Vec<NewEvent<Moved>> {
    (0..n)
        .map(|part| {
            let e = NewEvent::new(Moved {
                from: rng.below(10) as u32,
                to: rng.below(10) as u32,
                amount: rng.below(100) as i64 + 1,
                tag,
                part,
            });
            if part == 0 {
                e.with_id(id)
            } else {
                e
            }
        })
        .collect()
}

/// Appends until acknowledged, retrying the same append (same id) after a
/// lost connection or an unknown outcome; stale expectations are refreshed.
/// The acknowledgement and how many attempts failed.
fn append_surely(
    rt: &Runtime<Moved>,
    stream: &str,
    expect_current: bool,
    events: &[NewEvent<Moved>],
) -> (rwlog::Appended, u32) {
    let w = rt.writer();
    let mut failures = 0;
    loop {
        let expected = match expect_current {
            true => Expected::Exact(rt.log().stream_version(stream)),
            false => Expected::Any,
        };
        match w.append_expecting(stream, expected, events.iter().cloned()) {
            Ok(ack) => return (ack, failures),
            Err(Error::Conflict { .. }) => {}
            Err(Error::Postgres(_) | Error::OutcomeUnknown(_)) => {
                failures += 1;
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("append to {stream}: {e}"),
        }
    }
}

/// What a log holds, checked: dense positions and per-stream versions, the
/// events of each append together and in order. Returns each append's tag
/// with its last position and event count.
fn check_log(rt: &Runtime<Moved>) -> HashMap<u64, (u64, u32)> {
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut appends: HashMap<u64, (u64, u32)> = HashMap::new();
    let mut ids = HashSet::new();
    let mut last_tag = (u64::MAX, 0u32);
    for (i, e) in rt.log().read_all(..).enumerate() {
        assert_eq!(e.position(), Position(i as u64 + 1), "positions are dense");
        let v = versions.entry(e.stream().to_string()).or_default();
        *v += 1;
        assert_eq!(e.version(), *v, "stream {} versions are dense", e.stream());
        assert!(ids.insert(e.id()), "event id {} twice", e.id());
        let m = e.payload();
        if m.part > 0 {
            assert_eq!(
                last_tag,
                (m.tag, m.part - 1),
                "an append's events stay together"
            );
        } else {
            assert!(
                !appends.contains_key(&m.tag),
                "append {:x} written twice",
                m.tag
            );
        }
        appends.insert(m.tag, (e.position().0, m.part + 1));
        last_tag = (m.tag, m.part);
    }
    appends
}

/// A digest of a runtime's whole log and its view at its strong read.
fn digest(rt: &Runtime<Moved>) -> String {
    digest_from(rt, Position(1))
}

/// [`digest`] of the log from `from` on.
fn digest_from(rt: &Runtime<Moved>, from: Position) -> String {
    let r = rt.reader::<Balances>("balances").unwrap();
    let s = r.strong().unwrap();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for e in rt.log().read_all(from..=s.position()) {
        let m = e.payload();
        for x in [
            e.position().0,
            e.version(),
            m.tag,
            m.part as u64,
            m.amount as u64,
        ] {
            h = (h ^ x).wrapping_mul(0x100_0000_01b3);
        }
    }
    format!("{} {h:x} {:?}", s.position().0, s.0)
}

/// A child process: opens the log and runs the role its parent gave it.
#[test]
fn pg_child() {
    let Ok(role) = std::env::var("RWLOG_PG_CHILD") else {
        return;
    };
    let schema = std::env::var("RWLOG_PG_SCHEMA").unwrap();
    let process: u64 = std::env::var("RWLOG_PG_PROCESS").unwrap().parse().unwrap();
    let rt = Arc::new(match std::env::var("RWLOG_PG_LOCAL") {
        Ok(dir) => open_local(&schema, &dir),
        Err(_) => open(&schema),
    });
    child::tell_parent(&format!("ready from {}", rt.log().first().0));
    match role.as_str() {
        "cluster" => cluster_child(&rt, process),
        "victim" => victim_child(&rt, process),
        other => panic!("unknown role {other}"),
    }
}

const CLUSTER_APPENDS: u64 = 150;

/// Two writers (shared streams with exact expected versions, and private
/// ones) and a reader checking every snapshot it loads.
fn cluster_child(rt: &Arc<Runtime<Moved>>, process: u64) {
    child::wait_for_parent();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (rt, done) = (Arc::clone(rt), Arc::clone(&done));
        thread::spawn(move || {
            let r = rt.reader::<Balances>("balances").unwrap();
            let (mut last, mut loads) = (Position(0), 0u64);
            while !done.load(Ordering::Relaxed) {
                let s = r.latest();
                assert_eq!(s.total(), 0, "money is conserved in every snapshot");
                assert!(s.position() >= last, "snapshots never go back");
                last = s.position();
                loads += 1;
            }
            loads
        })
    };
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let rt = Arc::clone(rt);
            thread::spawn(move || {
                let mut rng = rng::Rng(process * 10 + t + 1);
                for seq in 0..CLUSTER_APPENDS {
                    let tag = tag(process, t, seq);
                    let n = 1 + rng.below(3) as u32;
                    let events = transfers(&mut rng, tag, n, Uuid::new_v4());
                    let (stream, exact) = match seq % 2 {
                        0 => (format!("shared-{}", seq % 3), true),
                        _ => (format!("private-{process}-{t}"), true),
                    };
                    let (ack, _) = append_surely(&rt, &stream, exact, &events);
                    child::tell_parent(&format!("ack {tag} {} {}", ack.position.0, ack.count));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let loads = reader.join().unwrap();
    child::tell_parent(&format!("done {loads}"));
    child::wait_for_parent();
    child::tell_parent(&format!("digest {}", digest(rt)));
}

/// Appends atomic batches of 1-20 events from two threads until killed.
fn victim_child(rt: &Arc<Runtime<Moved>>, process: u64) {
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let rt = Arc::clone(rt);
            thread::spawn(move || {
                let mut rng = rng::Rng(process * 10 + t + 7);
                for seq in 0.. {
                    let tag = tag(process, t, seq);
                    let n = 1 + rng.below(20) as u32;
                    let events = transfers(&mut rng, tag, n, Uuid::new_v4());
                    let (ack, _) = append_surely(&rt, &format!("v{}", seq % 5), false, &events);
                    child::tell_parent(&format!("ack {tag} {} {}", ack.position.0, ack.count));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
}

/// An acknowledgement a child printed: (tag, last position, events).
fn parse_ack(line: &str) -> Option<(u64, u64, u32)> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    let tag = parts.next()?.parse().ok()?;
    let position = parts.next()?.parse().ok()?;
    let count = parts.next()?.parse().ok()?;
    Some((tag, position, count))
}

fn check_acked(appends: &HashMap<u64, (u64, u32)>, acked: &[(u64, u64, u32)]) {
    for (tag, position, count) in acked {
        assert_eq!(
            appends.get(tag),
            Some(&(*position, *count)),
            "acknowledged append {tag:x} is in the log, whole, where it was acknowledged"
        );
    }
}

#[test]
fn three_processes_keep_one_log() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("cluster");
    drop(open(&schema.name)); // the tables, before three processes race to make them
    let children: Vec<_> = (1..=3u64)
        .map(|p| {
            let process = p.to_string();
            let env = [
                ("RWLOG_PG_CHILD", "cluster"),
                ("RWLOG_PG_SCHEMA", schema.name.as_str()),
                ("RWLOG_PG_PROCESS", process.as_str()),
            ];
            let mut c = child::spawn("pg_child", &env);
            c.expect("ready");
            c
        })
        .collect();
    // Each child's output is read on a thread of its own, so that no pipe fills.
    let handles: Vec<_> = children
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || {
                c.say("go");
                let mut acks = Vec::new();
                loop {
                    let line = c.line().expect("the child ended early");
                    if let Some(ack) = parse_ack(&line) {
                        acks.push(ack);
                    } else if line.starts_with("done") {
                        return (c, acks);
                    }
                }
            })
        })
        .collect();
    let mut children = Vec::new();
    let mut acked = Vec::new();
    for h in handles {
        let (c, acks) = h.join().unwrap();
        assert_eq!(acks.len() as u64, 2 * CLUSTER_APPENDS);
        acked.extend(acks);
        children.push(c);
    }
    let mut digests = Vec::new();
    for c in &mut children {
        c.say("finish");
        digests.push(c.expect("digest "));
    }
    for c in children {
        c.finish();
    }
    let fresh = open(&schema.name);
    let appends = check_log(&fresh);
    assert_eq!(appends.len(), acked.len(), "every append exactly once");
    check_acked(&appends, &acked);
    let mine = digest(&fresh);
    for d in &digests {
        assert_eq!(d, &mine, "every process's log and view equal a fresh fold");
    }
    let r = fresh.reader::<Balances>("balances").unwrap();
    assert_eq!(r.latest().total(), 0);
}

#[test]
fn sigkill_mid_append_loses_nothing_acknowledged() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("sigkill");
    let survivor = Arc::new(open(&schema.name));
    // The process that goes on: this one, appending throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let steady = {
        let (rt, stop) = (Arc::clone(&survivor), Arc::clone(&stop));
        thread::spawn(move || {
            let mut rng = rng::Rng(99);
            let mut acked = Vec::new();
            for seq in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let tag = tag(0, 0, seq);
                let events = transfers(&mut rng, tag, 1 + (seq % 4) as u32, Uuid::new_v4());
                let (ack, _) = append_surely(&rt, "steady", true, &events);
                acked.push((tag, ack.position.0, ack.count as u32));
            }
            acked
        })
    };
    let rounds: u64 = 20;
    let mut acked = Vec::new();
    let mut rng = rng::Rng(7);
    // Every victim keeps its view and restart points in one local
    // directory: each starts where the one killed before it left off.
    let local = tempfile::tempdir().unwrap();
    let local_dir = local.path().join("victim").to_string_lossy().into_owned();
    let mut restarted = 0;
    for round in 1..=rounds {
        let process = round.to_string();
        let env = [
            ("RWLOG_PG_CHILD", "victim"),
            ("RWLOG_PG_SCHEMA", schema.name.as_str()),
            ("RWLOG_PG_PROCESS", process.as_str()),
            ("RWLOG_PG_LOCAL", local_dir.as_str()),
        ];
        let mut c = child::spawn("pg_child", &env);
        let ready = c.expect("ready");
        if !ready.ends_with("from 1") {
            restarted += 1;
        }
        let wanted = 3 + rng.below(40);
        let mut seen = 0;
        while seen < wanted {
            let line = c.line().expect("the victim ended early");
            if let Some(ack) = parse_ack(&line) {
                acked.push(ack);
                seen += 1;
            }
        }
        // SIGKILL, mid-append: its writers append without pause.
        acked.extend(c.kill().iter().filter_map(|l| parse_ack(l)));
    }
    stop.store(true, Ordering::Relaxed);
    let steady_acked = steady.join().unwrap();
    assert!(
        !steady_acked.is_empty(),
        "the surviving process went on appending"
    );
    let fresh = open(&schema.name);
    let appends = check_log(&fresh);
    check_acked(&appends, &acked);
    check_acked(&appends, &steady_acked);
    assert_eq!(
        digest(&survivor),
        digest(&fresh),
        "the survivor adopted every append"
    );
    let r = fresh.reader::<Balances>("balances").unwrap();
    assert_eq!(r.latest().total(), 0);
    // A process restarting from the killed victims' local directory ends
    // where a process reading the whole log does.
    let again = open_local(&schema.name, &local_dir);
    let from = again.log().first();
    assert!(
        restarted > 0 && from > Position(1),
        "no victim restarted from a restart point"
    );
    assert_eq!(digest_from(&again, from), digest_from(&fresh, from));
    eprintln!("{restarted} of {rounds} killed victims restarted from their local directory; the last from {from}");
}

/// Terminates every backend of rwlog's on `schema`, as an operator (or a
/// failover) would.
fn terminate_backends(client: &mut postgres::Client, schema: &str) -> u64 {
    let rows = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&format!("rwlog:{schema}")],
        )
        .unwrap();
    rows.len() as u64
}

#[test]
fn terminated_connections_neither_lose_nor_duplicate() {
    if !pg::available() {
        return;
    }
    let schema = Schema::new("terminate");
    let writer_rt = Arc::new(open(&schema.name));
    let tailer_rt = open(&schema.name);
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let (stop, name) = (Arc::clone(&stop), schema.name.clone());
        thread::spawn(move || {
            let mut client = pg::client();
            let (mut terminated, started) = (0, Instant::now());
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(3) {
                terminated += terminate_backends(&mut client, &name);
                thread::sleep(Duration::from_millis(15));
            }
            terminated
        })
    };
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let rt = Arc::clone(&writer_rt);
            thread::spawn(move || {
                let mut rng = rng::Rng(t + 31);
                let (mut acked, mut failures) = (Vec::new(), 0);
                for seq in 0..200 {
                    let tag = tag(1, t, seq);
                    let events = transfers(&mut rng, tag, 1 + (seq % 3) as u32, Uuid::new_v4());
                    let (ack, failed) = append_surely(&rt, &format!("t{t}"), false, &events);
                    acked.push((tag, ack.position.0, ack.count as u32));
                    failures += failed;
                }
                (acked, failures)
            })
        })
        .collect();
    let mut acked = Vec::new();
    let mut failures = 0;
    for w in writers {
        let (a, f) = w.join().unwrap();
        acked.extend(a);
        failures += f;
    }
    stop.store(true, Ordering::Relaxed);
    let terminated = killer.join().unwrap();
    println!("{terminated} backends terminated; {failures} appends failed and were retried");
    assert!(terminated > 0, "the test terminated connections");
    let fresh = open(&schema.name);
    let appends = check_log(&fresh);
    assert_eq!(appends.len(), acked.len(), "every append exactly once");
    check_acked(&appends, &acked);
    // The tailing runtime reconnected and caught up, skipping nothing.
    assert_eq!(digest(&tailer_rt), digest(&fresh));
    assert_eq!(digest(&writer_rt), digest(&fresh));
}
