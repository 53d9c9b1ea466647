//! The README's first example: a bank account view fed by events, read at
//! every consistency level, plus time travel and a subscription.
//!
//! Run: `cargo run --release --example quickstart`

use std::collections::HashMap;
use std::time::Duration;

use rwlog::{Event, Expected, Position, Recorded, Runtime, Staleness, View};

#[derive(Clone, Debug)]
enum Account {
    Opened { owner: String },
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

impl Event for Account {
    fn event_type(&self) -> &'static str {
        match self {
            Account::Opened { .. } => "Opened",
            Account::Deposited { .. } => "Deposited",
            Account::Withdrawn { .. } => "Withdrawn",
        }
    }
}

/// Balance per account, folded from the events, and who owns each.
#[derive(Clone, Debug, Default)]
struct Balances(HashMap<String, i64>, HashMap<String, String>);

impl View<Account> for Balances {
    fn apply(&mut self, e: &Recorded<Account>) {
        let balance = self.0.entry(e.stream().to_string()).or_default();
        match e.payload() {
            Account::Opened { owner } => {
                self.1.insert(e.stream().to_string(), owner.clone());
            }
            Account::Deposited { amount } => *balance += *amount as i64,
            Account::Withdrawn { amount } => *balance -= *amount as i64,
        }
    }
}

fn main() -> Result<(), rwlog::Error> {
    let rt = Runtime::<Account>::builder()
        .view("balances", Balances::default())
        .snapshot_every(2)
        .build()?;

    // Writers send events; the sequencer orders them.
    let w = rt.writer();
    w.append_expecting(
        "acct-1",
        Expected::NoStream,
        [Account::Opened {
            owner: "ada".into(),
        }],
    )?;
    w.append("acct-1", Account::Deposited { amount: 100 })?;
    let ack = w.append("acct-1", Account::Withdrawn { amount: 30 })?;
    println!(
        "appended: position {}, stream version {}",
        ack.position, ack.version
    );

    // Optimistic concurrency: a stale expectation is rejected, nothing written.
    let stale = w.append_expecting(
        "acct-1",
        Expected::Exact(1),
        [Account::Withdrawn { amount: 1_000 }],
    );
    println!("stale append: {}", stale.unwrap_err());

    // Readers load snapshots without a lock, at the consistency they need.
    let r = rt.reader::<Balances>("balances")?;
    let latest = r.latest();
    println!(
        "latest:   position {} balance {}",
        latest.position(),
        latest.0["acct-1"]
    );
    drop(latest);
    let mine = r.at_least(ack.position)?;
    println!(
        "at_least: position {} balance {}",
        mine.position(),
        mine.0["acct-1"]
    );
    drop(mine);
    let strong = r.strong()?;
    println!(
        "strong:   balance {} (owner {})",
        strong.0["acct-1"], strong.1["acct-1"]
    );
    drop(strong);
    println!(
        "bounded:  balance {}",
        r.bounded(Staleness::time(Duration::from_millis(10)))?.0["acct-1"]
    );

    // Every change is kept: read history and travel in time.
    for e in rt.log().read_stream("acct-1", 1) {
        println!("  v{} @{} {:?}", e.version(), e.position(), e.payload());
    }
    let then = rt.view_at::<Balances>("balances", Position(2))?;
    println!("balance after position 2: {}", then.0["acct-1"]);

    // Subscribe from the start: history, then live events.
    let mut sub = rt.subscribe(Position(1));
    w.append("acct-2", Account::Deposited { amount: 5 })?;
    rt.shutdown()?;
    let types: Vec<_> = sub.by_ref().map(|e| e.payload().event_type()).collect();
    println!("subscription saw: {types:?}");
    println!("{:?}", rt.stats());
    Ok(())
}
