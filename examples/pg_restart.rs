//! A shared log's process restarting, timed: from its local directory (its
//! view's snapshot and the restart point, then only the tail from
//! PostgreSQL) against reading the whole log and folding the view from the
//! start. Fills a fresh schema with `--events` events (default 200,000) in
//! appends of 100, from a process with a local directory, then reopens
//! both ways and checks they agree.
//!
//! ```text
//! cargo run --release --features postgres --example pg_restart -- --events 200000
//! ```
//! The server: `RWLOG_PG_URL`, default `postgres://postgres@127.0.0.1:5432/test`.

#[cfg(not(feature = "postgres"))]
fn main() {
    eprintln!("the pg_restart example needs the postgres feature: cargo run --release --features postgres --example pg_restart");
    std::process::exit(2);
}

#[cfg(feature = "postgres")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    restart::main()
}

#[cfg(feature = "postgres")]
mod restart {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use rwlog::{Event, Recorded, Runtime, Storage, View};
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct Reading {
        sensor: u32,
        value: i64,
        note: String,
    }

    impl Event for Reading {}

    /// The sum of each sensor's values.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Sums(BTreeMap<u32, i64>);

    impl View<Reading> for Sums {
        fn apply(&mut self, e: &Recorded<Reading>) {
            *self.0.entry(e.payload().sensor).or_default() += e.payload().value;
        }
    }

    fn url() -> String {
        std::env::var("RWLOG_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    fn storage(schema: &str) -> Storage {
        Storage::postgres(url()).schema(schema)
    }

    fn open(schema: &str, local: Option<&std::path::Path>) -> Runtime<Reading> {
        let b = Runtime::<Reading>::builder().disk_snapshot_every(10_000);
        let b = match local {
            Some(dir) => b
                .storage(storage(schema).local_dir(dir))
                .persisted_view("sums", Sums::default()),
            None => b.storage(storage(schema)).view("sums", Sums::default()),
        };
        b.build().expect("open the shared log")
    }

    pub fn main() -> Result<(), Box<dyn std::error::Error>> {
        let mut events: u64 = 200_000;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            if a == "--events" {
                events = args.next().ok_or("--events needs a number")?.parse()?;
            }
        }
        let schema = format!("rwlog_restart_{}", std::process::id());
        let local = tempfile::tempdir()?;
        let rt = open(&schema, Some(local.path()));
        let w = rt.writer();
        let started = Instant::now();
        let mut tickets = Vec::new();
        for chunk in 0..events / 100 {
            let batch = (0..100).map(|k| {
                let i = chunk * 100 + k;
                Reading {
                    sensor: (i % 1000) as u32,
                    value: (i % 97) as i64,
                    note: format!("reading number {i:>12}"),
                }
            });
            let stream = format!("sensor-{}", chunk % 1000);
            tickets.push(w.submit_expecting(stream, rwlog::Expected::Any, batch)?);
        }
        for t in tickets {
            t.wait()?;
        }
        let _ = rt.reader::<Sums>("sums")?.strong()?;
        println!(
            "filled {events} events in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        rt.shutdown()?;
        drop(rt);

        let started = Instant::now();
        let restarted = open(&schema, Some(local.path()));
        let restart = started.elapsed();
        let started = Instant::now();
        let whole = open(&schema, None);
        let full = started.elapsed();
        let (a, b) = (
            restarted.reader::<Sums>("sums")?.latest(),
            whole.reader::<Sums>("sums")?.latest(),
        );
        assert_eq!(a.state(), b.state(), "the two starts disagree");
        assert_eq!(restarted.log().head(), whole.log().head());
        println!(
            "restart from the local directory: {:.1} ms (log from position {}, {} events read)",
            restart.as_secs_f64() * 1e3,
            restarted.log().first(),
            restarted.log().head().0 + 1 - restarted.log().first().0
        );
        println!(
            "restart reading the whole log:    {:.1} ms ({} events read)",
            full.as_secs_f64() * 1e3,
            whole.log().head().0
        );
        restarted.shutdown()?;
        whole.shutdown()?;
        let mut client = postgres::Client::connect(&url(), postgres::NoTls)?;
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
        Ok(())
    }
}
