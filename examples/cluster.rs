//! Several processes on one log in PostgreSQL: a bank whose accounts every
//! process transfers between, while readers in every process check in each
//! snapshot they load that no money was created or lost. Prints each
//! process's throughput, how long other processes' transfers took to show
//! in its views, and checks at the end that every process holds the same
//! log and the same balances.
//!
//! ```text
//! cargo run --release --features postgres --example cluster
//! cargo run --release --features postgres --example cluster -- --processes 3 --writers 2 --seconds 5
//! cargo run --release --features postgres --example cluster -- --append     # acknowledged appends, one at a time
//! RWLOG_PG_URL=postgres://user:pw@host/db cargo run --release --features postgres --example cluster
//! ```
//!
//! The example starts its processes itself (copies of its own binary, with
//! `--child`), each on the same schema, `rwlog_cluster_<pid>`, dropped at
//! the end (`--keep` keeps it).

#[cfg(not(feature = "postgres"))]
fn main() {
    eprintln!("the cluster example needs the postgres feature: cargo run --release --features postgres --example cluster");
    std::process::exit(2);
}

#[cfg(feature = "postgres")]
fn main() {
    let opts = match cluster::Options::parse() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e}\n\n{}", cluster::USAGE);
            std::process::exit(2);
        }
    };
    let result = match opts.child {
        Some(index) => cluster::child(&opts, index),
        None => cluster::parent(&opts),
    };
    if let Err(e) = result {
        eprintln!("cluster: {e}");
        std::process::exit(1);
    }
}

#[cfg(feature = "postgres")]
mod cluster {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use hdrhistogram::Histogram;
    use rwlog::{Event, Position, Recorded, Runtime, Storage, View};
    use serde::{Deserialize, Serialize};

    pub const USAGE: &str = "usage: cluster [--processes N] [--writers W] [--seconds S] [--append] [--url URL] [--keep]";
    const ACCOUNTS: u32 = 1000;

    pub struct Options {
        pub child: Option<usize>,
        processes: usize,
        writers: usize,
        seconds: f64,
        append: bool,
        url: String,
        schema: String,
        keep: bool,
    }

    impl Options {
        pub fn parse() -> Result<Options, String> {
            let mut o = Options {
                child: None,
                processes: 3,
                writers: 2,
                seconds: 5.0,
                append: false,
                url: std::env::var("RWLOG_PG_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
                schema: format!("rwlog_cluster_{}", std::process::id()),
                keep: false,
            };
            let mut args = std::env::args().skip(1);
            while let Some(a) = args.next() {
                let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
                match a.as_str() {
                    "--processes" => o.processes = number(&value("--processes")?)?,
                    "--writers" => o.writers = number(&value("--writers")?)?,
                    "--seconds" => o.seconds = number(&value("--seconds")?)?,
                    "--append" => o.append = true,
                    "--url" => o.url = value("--url")?,
                    "--keep" => o.keep = true,
                    "--child" => o.child = Some(number(&value("--child")?)?),
                    "--schema" => o.schema = value("--schema")?,
                    "-h" | "--help" => return Err("rwlog's cluster example".into()),
                    other => return Err(format!("unknown argument {other}")),
                }
            }
            if o.processes == 0 || o.writers == 0 || o.seconds <= 0.0 {
                return Err("--processes, --writers and --seconds must be above 0".into());
            }
            Ok(o)
        }
    }

    fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
        s.parse().map_err(|_| format!("not a number: {s}"))
    }

    /// Money moved between two accounts, by a process, at a time.
    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct Transfer {
        from: u32,
        to: u32,
        amount: i64,
        process: u32,
        sent_at_ns: u64,
    }

    impl Event for Transfer {}

    #[derive(Clone, Default)]
    struct Bank(BTreeMap<u32, i64>);

    impl View<Transfer> for Bank {
        fn apply(&mut self, e: &Recorded<Transfer>) {
            let t = e.payload();
            *self.0.entry(t.from).or_default() -= t.amount;
            *self.0.entry(t.to).or_default() += t.amount;
        }
    }

    fn open(opts: &Options) -> Result<Runtime<Transfer>, rwlog::Error> {
        Runtime::<Transfer>::builder()
            .view("bank", Bank::default())
            .storage(Storage::postgres(&opts.url).schema(&opts.schema))
            .build()
    }

    fn now_ns() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }

    /// One process's report, as its child prints it.
    struct Report {
        events: u64,
        seconds: f64,
        checked: u64,
        violations: u64,
        lag_p50_us: f64,
        lag_p99_us: f64,
        lag_samples: u64,
    }

    impl Report {
        fn line(&self) -> String {
            format!(
                "result {} {:.3} {} {} {:.1} {:.1} {}",
                self.events,
                self.seconds,
                self.checked,
                self.violations,
                self.lag_p50_us,
                self.lag_p99_us,
                self.lag_samples
            )
        }

        fn parse(line: &str) -> Option<Report> {
            let f: Vec<&str> = line.strip_prefix("result ")?.split(' ').collect();
            Some(Report {
                events: f.first()?.parse().ok()?,
                seconds: f.get(1)?.parse().ok()?,
                checked: f.get(2)?.parse().ok()?,
                violations: f.get(3)?.parse().ok()?,
                lag_p50_us: f.get(4)?.parse().ok()?,
                lag_p99_us: f.get(5)?.parse().ok()?,
                lag_samples: f.get(6)?.parse().ok()?,
            })
        }
    }

    /// A child: transfers for the given time, checks snapshots, measures
    /// how long others' transfers take to show here.
    pub fn child(opts: &Options, index: usize) -> Result<(), String> {
        let rt = Arc::new(open(opts).map_err(|e| e.to_string())?);
        say("ready");
        listen();
        let stop = Arc::new(AtomicBool::new(false));
        let checker = spawn_checker(&rt, &stop);
        let lag = spawn_lag(&rt, &stop, index as u32);
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(opts.seconds);
        let writers: Vec<_> = (0..opts.writers)
            .map(|w| {
                let (rt, append) = (Arc::clone(&rt), opts.append);
                thread::spawn(move || write(&rt, index as u32, w as u64, deadline, append))
            })
            .collect();
        let mut events = 0;
        for w in writers {
            events += w.join().map_err(|_| "a writer panicked")??;
        }
        let seconds = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let (checked, violations) = checker.join().map_err(|_| "the checker panicked")?;
        let lags = lag.join().map_err(|_| "the lag thread panicked")?;
        let q = |p: f64| lags.value_at_quantile(p) as f64 / 1000.0;
        let report = Report {
            events,
            seconds,
            checked,
            violations,
            lag_p50_us: q(0.5),
            lag_p99_us: q(0.99),
            lag_samples: lags.len(),
        };
        say(&report.line());
        listen();
        say(&format!("digest {}", digest(&rt)?));
        Arc::try_unwrap(rt)
            .map_err(|_| "the runtime is still shared")?
            .shutdown()
            .map_err(|e| e.to_string())
    }

    fn write(
        rt: &Runtime<Transfer>,
        process: u32,
        seed: u64,
        deadline: Instant,
        append: bool,
    ) -> Result<u64, String> {
        let w = rt.writer();
        let mut x = 0x9E37_79B9_7F4A_7C15 ^ (u64::from(process) << 32 | seed);
        let mut events = 0;
        let (mut last, mut previous) = (None, None);
        while Instant::now() < deadline {
            for _ in 0..512 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (from, to) = ((x % 1000) as u32, ((x >> 20) % 1000) as u32);
                let t = Transfer {
                    from: from % ACCOUNTS,
                    to: to % ACCOUNTS,
                    amount: (x >> 40) as i64 % 100 + 1,
                    process,
                    sent_at_ns: now_ns(),
                };
                let stream = format!("acct-{from}");
                if append {
                    w.append(stream, t).map_err(|e| e.to_string())?;
                } else {
                    last = Some(w.submit(stream, t).map_err(|e| e.to_string())?);
                }
                events += 1;
            }
            // At most two rounds in flight: wait for the one before.
            if let Some(ticket) = std::mem::replace(&mut previous, last.take()) {
                ticket.wait().map_err(|e| e.to_string())?;
            }
        }
        if let Some(ticket) = previous {
            ticket.wait().map_err(|e| e.to_string())?;
        }
        Ok(events)
    }

    /// Loads snapshots as fast as it can; counts those whose money does
    /// not add up to zero.
    fn spawn_checker(
        rt: &Arc<Runtime<Transfer>>,
        stop: &Arc<AtomicBool>,
    ) -> thread::JoinHandle<(u64, u64)> {
        let (r, stop) = (
            rt.reader::<Bank>("bank").expect("the view"),
            Arc::clone(stop),
        );
        thread::spawn(move || {
            let (mut checked, mut violations) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let s = r.latest();
                if s.0.values().sum::<i64>() != 0 {
                    violations += 1;
                }
                checked += 1;
                drop(s);
                thread::sleep(Duration::from_micros(100));
            }
            (checked, violations)
        })
    }

    /// For each other process's transfer this process adopts: the time from
    /// its sending to its showing in this process's log.
    fn spawn_lag(
        rt: &Arc<Runtime<Transfer>>,
        stop: &Arc<AtomicBool>,
        me: u32,
    ) -> thread::JoinHandle<Histogram<u64>> {
        let (rt, stop) = (Arc::clone(rt), Arc::clone(stop));
        thread::spawn(move || {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            let mut seen = rt.log().head();
            while !stop.load(Ordering::Relaxed) {
                let head = rt.log().head();
                let now = now_ns();
                for e in rt.log().read_all(Position(seen.0 + 1)..=head) {
                    let t = e.payload();
                    if t.process != me {
                        let _ = h.record(now.saturating_sub(t.sent_at_ns));
                    }
                }
                seen = head;
                thread::sleep(Duration::from_micros(200));
            }
            h
        })
    }

    /// The log and the balances at a strong read, as one line.
    fn digest(rt: &Runtime<Transfer>) -> Result<String, String> {
        let s = rt
            .reader::<Bank>("bank")
            .and_then(|r| r.strong())
            .map_err(|e| e.to_string())?;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for e in rt.log().read_all(..=s.position()) {
            let t = e.payload();
            for x in [e.position().0, e.version(), t.amount as u64, t.sent_at_ns] {
                h = (h ^ x).wrapping_mul(0x100_0000_01b3);
            }
        }
        let total: i64 = s.0.values().sum();
        Ok(format!("{} {h:016x} {total}", s.position().0))
    }

    fn say(line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn listen() {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }

    struct Proc {
        child: Child,
        stdin: ChildStdin,
        lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    }

    impl Proc {
        fn expect(&mut self, prefix: &str) -> Result<String, String> {
            for line in self.lines.by_ref() {
                let line = line.map_err(|e| e.to_string())?;
                if let Some(rest) = line.strip_prefix(prefix) {
                    return Ok(rest.to_owned());
                }
            }
            Err(format!("a process ended before saying `{prefix}`"))
        }

        fn say(&mut self, line: &str) -> Result<(), String> {
            writeln!(self.stdin, "{line}").map_err(|e| e.to_string())
        }
    }

    fn spawn(opts: &Options, index: usize) -> Result<Proc, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exe);
        cmd.args(["--child", &index.to_string(), "--schema", &opts.schema])
            .args(["--url", &opts.url, "--writers", &opts.writers.to_string()])
            .args(["--seconds", &opts.seconds.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if opts.append {
            cmd.arg("--append");
        }
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        Ok(Proc {
            child,
            stdin,
            lines,
        })
    }

    /// Starts the processes, lets them run, and checks they agree.
    pub fn parent(opts: &Options) -> Result<(), String> {
        // The tables, made once before the processes race to make them.
        drop(open(opts).map_err(|e| format!("opening the shared log: {e}"))?);
        let result = run(opts);
        if !opts.keep {
            let _ = drop_schema(opts);
        }
        result
    }

    fn run(opts: &Options) -> Result<(), String> {
        let mut procs = (0..opts.processes)
            .map(|i| spawn(opts, i))
            .collect::<Result<Vec<_>, _>>()?;
        for p in &mut procs {
            p.expect("ready")?;
        }
        let mode = if opts.append { "append" } else { "submit" };
        println!(
            "{} processes × {} writers ({mode}) on schema {}, {} s; readers check every snapshot",
            opts.processes, opts.writers, opts.schema, opts.seconds
        );
        for p in &mut procs {
            p.say("go")?;
        }
        let mut reports = Vec::new();
        for p in &mut procs {
            reports.push(
                Report::parse(&format!("result {}", p.expect("result ")?)).ok_or("a bad report")?,
            );
        }
        let mut digests = Vec::new();
        for p in &mut procs {
            p.say("finish")?;
            digests.push(p.expect("digest ")?);
        }
        for mut p in procs {
            let _ = p.child.wait();
        }
        print_reports(&reports);
        let same = digests.windows(2).all(|w| w[0] == w[1]);
        let head_total: Vec<&str> = digests[0].split(' ').collect();
        println!(
            "logs: {} (head {}, total money {})",
            if same {
                "identical in every process"
            } else {
                "DIFFERENT"
            },
            head_total[0],
            head_total.get(2).unwrap_or(&"?")
        );
        let violations: u64 = reports.iter().map(|r| r.violations).sum();
        if !same || violations > 0 || head_total.get(2) != Some(&"0") {
            return Err("the processes disagree, or money was created or lost".into());
        }
        Ok(())
    }

    fn print_reports(reports: &[Report]) {
        println!("process    events  events/s  snapshots checked  bad  lag p50    lag p99    (lag: another process's transfer until it shows here)");
        let mut total = 0.0;
        for (i, r) in reports.iter().enumerate() {
            let rate = r.events as f64 / r.seconds;
            total += rate;
            let lag = |us: f64| match r.lag_samples {
                0 => "-".to_string(),
                _ if us >= 1000.0 => format!("{:.2} ms", us / 1000.0),
                _ => format!("{us:.0} µs"),
            };
            println!(
                "{i:>7} {:>9} {:>9.0} {:>18} {:>4}  {:>9}  {:>9}",
                r.events,
                rate,
                r.checked,
                r.violations,
                lag(r.lag_p50_us),
                lag(r.lag_p99_us)
            );
        }
        println!("total: {total:.0} events/s");
    }

    fn drop_schema(opts: &Options) -> Result<(), String> {
        let mut c =
            postgres::Client::connect(&opts.url, postgres::NoTls).map_err(|e| e.to_string())?;
        c.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            opts.schema
        ))
        .map_err(|e| e.to_string())
    }
}
