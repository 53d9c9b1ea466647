//! A durable log: appends, shuts down, reopens, and shows that the events
//! and the view survived. Run it twice: the second run continues where the
//! first left off.
//!
//! Run: `cargo run --release --example durable [-- DIR]`
//! (default DIR: `target/rwlog-durable-example`; delete it to start over).

use std::collections::BTreeMap;
use std::time::Instant;

use rwlog::{Durability, Event, Recorded, Runtime, Storage, View};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Account {
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

impl Event for Account {}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Balances(BTreeMap<String, i64>);

impl View<Account> for Balances {
    fn apply(&mut self, e: &Recorded<Account>) {
        let b = self.0.entry(e.stream().to_string()).or_default();
        match e.payload() {
            Account::Deposited { amount } => *b += *amount as i64,
            Account::Withdrawn { amount } => *b -= *amount as i64,
        }
    }
}

fn open(dir: &str) -> Result<Runtime<Account>, rwlog::Error> {
    Runtime::<Account>::builder()
        .storage(Storage::dir(dir).durability(Durability::Fsync))
        .persisted_view("balances", Balances::default())
        .snapshot_every(250)
        .disk_snapshot_every(250)
        .build()
}

fn main() -> Result<(), rwlog::Error> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/rwlog-durable-example".into());

    let started = Instant::now();
    let rt = open(&dir)?;
    let before = rt.head();
    println!(
        "opened {dir}: {} events recovered in {:.1} ms",
        before,
        started.elapsed().as_secs_f64() * 1e3
    );
    let balances = rt.reader::<Balances>("balances")?;
    println!("balances at open: {:?}", balances.latest().0);

    // 1,000 appends from 2 threads, each acknowledged only once on disk.
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let w = rt.writer();
            std::thread::spawn(move || -> Result<(), rwlog::Error> {
                let mut last = None;
                for i in 0..500u64 {
                    let stream = format!("acct-{}", (t * 500 + i) % 5);
                    let event = if i % 4 == 3 {
                        Account::Withdrawn { amount: 3 }
                    } else {
                        Account::Deposited { amount: 10 }
                    };
                    last = Some(w.submit(stream, event)?);
                }
                last.map(|t| t.wait()).transpose()?;
                Ok(())
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread")?;
    }
    let after = balances.strong()?;
    println!(
        "appended {} events; head {}",
        rt.head().0 - before.0,
        rt.head()
    );
    let expected = after.0.clone();
    drop(after);
    rt.shutdown()?;
    drop(rt);

    let reopened = open(&dir)?;
    let view = reopened.reader::<Balances>("balances")?.latest().into_arc();
    println!(
        "reopened: head {}, view at {}, stats {:?}",
        reopened.head(),
        view.position(),
        reopened.stats().views[0]
    );
    assert_eq!(view.0, expected, "the view did not survive the reopen");
    let last = reopened.log().read_backward(..).next();
    println!("last event: {last:?}");
    println!("balances: {:?}", view.0);
    println!("the events and the view survived; run again to continue");
    Ok(())
}
