//! The shared log on PostgreSQL: appends from one and two processes, the
//! acknowledgement's latency, how long one process's append takes to show
//! in another's views, and beside them the naive design (one INSERT per
//! event into a table with a bigserial key) for scale.
//!
//! Processes are copies of this binary, started with `--pg-child`. The
//! server is `RWLOG_PG_URL` (default the local one); without one, or
//! without the `postgres` feature, the scenarios are listed as skipped.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use rwlog::{Position, Runtime, Storage};

use crate::contenders::{self, Keys, Kind, Kv, Set};
use crate::measure::Sample;
use crate::scenarios::PgWork;

fn url() -> String {
    std::env::var("RWLOG_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Why the PostgreSQL scenarios cannot run here, if they cannot.
pub(crate) fn unavailable() -> Option<String> {
    match postgres::Client::connect(&url(), postgres::NoTls) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "no server answers at {} ({e}); set RWLOG_PG_URL",
            url()
        )),
    }
}

fn open(schema: &str) -> Runtime<Set> {
    Runtime::<Set>::builder()
        .view("kv", Kv(contenders::prefilled()))
        .storage(Storage::postgres(url()).schema(schema))
        .build()
        .expect("open the shared log")
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A schema of its own for one measurement, dropped after.
struct Schema(String);

impl Schema {
    fn new() -> Schema {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let s = Schema(format!("rwlog_compare_{}_{n}", std::process::id()));
        drop(open(&s.0)); // the tables, before the processes race to make them
        s
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0));
        }
    }
}

pub(crate) fn measure(work: &PgWork, kind: Kind, window: Duration) -> Sample {
    let window = window.max(Duration::from_millis(500));
    match (work, kind) {
        (PgWork::Writes { processes }, Kind::PlainInsert) => naive(processes * 2, window),
        (PgWork::Writes { processes }, _) => {
            let role = if kind == Kind::RwlogAppend {
                "append"
            } else {
                "submit"
            };
            processes_writing(*processes, 2, role, window)
        }
        (PgWork::AppendLatency, _) => processes_writing(1, 1, "append", window),
        (PgWork::Visibility, _) => visibility(window),
    }
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Proc {
    fn spawn(role: &str, schema: &str, writers: usize, window: Duration) -> Proc {
        let exe = std::env::current_exe().expect("this binary");
        let millis = window.as_millis().to_string();
        let mut child = Command::new(exe)
            .args(["--pg-child", role, schema, &writers.to_string(), &millis])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a process");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut p = Proc {
            child,
            stdin,
            lines,
        };
        p.expect("ready");
        p
    }

    fn expect(&mut self, prefix: &str) -> String {
        for line in self.lines.by_ref() {
            let line = line.expect("read a process's output");
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
        panic!("a process ended before saying {prefix:?}")
    }

    fn go(&mut self) {
        writeln!(self.stdin, "go").expect("start a process");
    }

    fn finish(mut self) {
        let _ = self.child.wait();
    }
}

/// `processes` processes with `writers` writers each, for `window`: their
/// summed rate, and (for `append`) the mean of their latency quantiles.
fn processes_writing(processes: usize, writers: usize, role: &str, window: Duration) -> Sample {
    let schema = Schema::new();
    let mut procs: Vec<Proc> = (0..processes)
        .map(|_| Proc::spawn(role, &schema.0, writers, window))
        .collect();
    procs.iter_mut().for_each(Proc::go);
    let mut rate = 0.0;
    let mut quantiles = Vec::new();
    for p in &mut procs {
        let line = p.expect("result ");
        let f: Vec<f64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
        rate += f[0] / f[1];
        if f.len() == 5 {
            quantiles.push([f[2], f[3], f[4]]);
        }
    }
    procs.into_iter().for_each(Proc::finish);
    let mean = |i: usize| {
        (!quantiles.is_empty())
            .then(|| quantiles.iter().map(|q| q[i]).sum::<f64>() / quantiles.len() as f64)
    };
    Sample {
        writes_per_s: Some(rate),
        p50_ns: mean(0),
        p99_ns: mean(1),
        p999_ns: mean(2),
        ..Sample::default()
    }
}

/// One process appends an event every millisecond; another measures how
/// long each takes to show in its log.
fn visibility(window: Duration) -> Sample {
    let schema = Schema::new();
    let mut watcher = Proc::spawn("watch", &schema.0, 1, window + Duration::from_millis(200));
    let mut pinger = Proc::spawn("ping", &schema.0, 1, window);
    watcher.go();
    pinger.go();
    pinger.expect("result ");
    let line = watcher.expect("result ");
    pinger.finish();
    watcher.finish();
    let f: Vec<f64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
    Sample {
        writes_per_s: Some(f[0] / f[1]),
        p50_ns: Some(f[2]),
        p99_ns: Some(f[3]),
        p999_ns: Some(f[4]),
        ..Sample::default()
    }
}

/// The naive design: `connections` connections each INSERT one event per
/// transaction into a table keyed by a bigserial.
fn naive(connections: usize, window: Duration) -> Sample {
    let table = format!("rwlog_compare_naive_{}", std::process::id());
    let mut admin = postgres::Client::connect(&url(), postgres::NoTls).expect("connect");
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (position bigserial PRIMARY KEY, stream text NOT NULL, body bytea NOT NULL)"
        ))
        .expect("create the naive table");
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|i| {
            let (stop, table) = (Arc::clone(&stop), table.clone());
            thread::spawn(move || {
                let mut c = postgres::Client::connect(&url(), postgres::NoTls).expect("connect");
                let insert = c
                    .prepare(&format!(
                        "INSERT INTO {table} (stream, body) VALUES ($1, $2)"
                    ))
                    .expect("prepare");
                let (stream, mut keys, mut n) = (format!("w{i}"), Keys::new(i as u64 + 1), 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let body = [keys.next().to_le_bytes(), n.to_le_bytes()].concat();
                    c.execute(&insert, &[&stream, &body]).expect("insert");
                    n += 1;
                }
                n
            })
        })
        .collect();
    thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let n: u64 = threads
        .into_iter()
        .map(|t| t.join().expect("inserter"))
        .sum();
    let secs = started.elapsed().as_secs_f64();
    let _ = admin.batch_execute(&format!("DROP TABLE IF EXISTS {table}"));
    Sample {
        writes_per_s: Some(n as f64 / secs),
        ..Sample::default()
    }
}

/// A process started with `--pg-child ROLE SCHEMA WRITERS MILLIS`: opens
/// the log, says `ready`, waits for a line, works, prints `result …`.
pub(crate) fn child(args: &[String]) {
    let [role, schema, writers, millis] = args else {
        panic!("--pg-child ROLE SCHEMA WRITERS MILLIS");
    };
    let writers: usize = writers.parse().expect("writers");
    let window = Duration::from_millis(millis.parse().expect("millis"));
    let rt = Arc::new(open(schema));
    say("ready");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let result = match role.as_str() {
        "submit" | "append" => write(&rt, writers, role == "append", window),
        "ping" => ping(&rt, window),
        "watch" => watch(&rt, window),
        other => panic!("unknown role {other}"),
    };
    say(&format!("result {result}"));
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn quantiles(h: &Histogram<u64>) -> String {
    let q = |p| h.value_at_quantile(p);
    format!("{} {} {}", q(0.5), q(0.99), q(0.999))
}

/// Writers `submit` (two rounds of 512 in flight each) or `append` (each
/// timed) for `window`: "events seconds [p50 p99 p99.9]".
fn write(rt: &Arc<Runtime<Set>>, writers: usize, append: bool, window: Duration) -> String {
    let deadline = Instant::now() + window;
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|i| {
            let rt = Arc::clone(rt);
            thread::spawn(move || {
                let w = rt.writer();
                let stream = format!("w{}-{i}", std::process::id());
                let mut keys = Keys::new(i as u64 + 1);
                let mut h = Histogram::<u64>::new(3).expect("histogram");
                let (mut n, mut previous) = (0u64, None);
                while Instant::now() < deadline {
                    let mut last = None;
                    for _ in 0..if append { 1 } else { 512 } {
                        let e = Set {
                            key: keys.next(),
                            value: n,
                        };
                        if append {
                            let t = Instant::now();
                            w.append(stream.as_str(), e).expect("append");
                            let _ = h.record(t.elapsed().as_nanos() as u64);
                        } else {
                            last = Some(w.submit(stream.as_str(), e).expect("submit"));
                        }
                        n += 1;
                    }
                    if let Some(t) = std::mem::replace(&mut previous, last) {
                        t.wait().expect("ack");
                    }
                }
                if let Some(t) = previous {
                    t.wait().expect("ack");
                }
                (n, h)
            })
        })
        .collect();
    let mut total = 0;
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for t in threads {
        let (n, th) = t.join().expect("writer");
        total += n;
        h.add(th).expect("histogram");
    }
    let secs = started.elapsed().as_secs_f64();
    match append {
        true => format!("{total} {secs} {}", quantiles(&h)),
        false => format!("{total} {secs}"),
    }
}

/// One acknowledged append a millisecond, carrying its sending time.
fn ping(rt: &Arc<Runtime<Set>>, window: Duration) -> String {
    let w = rt.writer();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < window {
        w.append(
            "ping",
            Set {
                key: n,
                value: now_ns(),
            },
        )
        .expect("append");
        n += 1;
        thread::sleep(Duration::from_millis(1));
    }
    format!("{n} {}", started.elapsed().as_secs_f64())
}

/// For each event another process appends: from its sending to its showing
/// in this process's log. "events seconds p50 p99 p99.9".
fn watch(rt: &Arc<Runtime<Set>>, window: Duration) -> String {
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    let started = Instant::now();
    let mut seen = rt.head();
    while started.elapsed() < window {
        let head = rt.head();
        let now = now_ns();
        for e in rt.log().read_all(Position(seen.0 + 1)..=head) {
            let _ = h.record(now.saturating_sub(e.payload().value));
        }
        seen = head;
        thread::sleep(Duration::from_micros(50));
    }
    format!(
        "{} {} {}",
        h.len(),
        started.elapsed().as_secs_f64(),
        quantiles(&h)
    )
}
