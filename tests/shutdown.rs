//! Shutdown drains: every append queued before it is acknowledged (and in
//! the log), every later one gets `Closed`; none is lost or acked twice.
//! Dropping the runtime does the same.

#[path = "support/domain.rs"]
mod domain;

use std::sync::{Arc, Barrier};
use std::thread;

use domain::{add, Sums};
use rwlog::{Error, Position, Sequencing};

fn race(drop_instead: bool, sequencing: Sequencing) {
    let rt = domain::sums_runtime(|b| b.queue_capacity(64).sequencing(sequencing));
    let reader = rt.reader::<Sums>("sums").unwrap();
    let start = Arc::new(Barrier::new(5));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let w = rt.writer();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let mut tickets = Vec::new();
                let mut refused = 0;
                for i in 0..5000u64 {
                    match w.submit("s", add(t * 100_000 + i, 1)) {
                        Ok(ticket) => tickets.push(ticket),
                        Err(Error::Closed) => refused += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                let mut acked = Vec::new();
                for ticket in tickets {
                    match ticket.wait() {
                        Ok(a) => acked.push(a.position.0),
                        Err(Error::Closed) => refused += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (acked, refused)
            })
        })
        .collect();
    start.wait();
    thread::yield_now();
    let log_events = if drop_instead {
        // Keep the log readable through a subscription taken before the drop.
        let sub = rt.subscribe(Position(1));
        drop(rt);
        sub.map(|e| e.position().0).collect::<Vec<_>>()
    } else {
        rt.shutdown().unwrap();
        rt.log().read_all(..).map(|e| e.position().0).collect()
    };
    let mut acked = Vec::new();
    let mut refused = 0;
    for h in writers {
        let (a, r) = h.join().unwrap();
        acked.extend(a);
        refused += r;
    }
    acked.sort_unstable();
    let n = acked.len() as u64;
    assert_eq!(
        acked,
        (1..=n).collect::<Vec<_>>(),
        "acked positions are 1..=n, once each"
    );
    assert_eq!(log_events, acked, "the log holds exactly the acked appends");
    assert_eq!(n + refused, 20_000, "every append was acked or refused");
    assert_eq!(
        reader.latest().position(),
        Position(n),
        "views published everything acked"
    );
}

#[test]
fn shutdown_acks_everything_queued_and_refuses_the_rest() {
    for round in 0..6 {
        race(
            false,
            [Sequencing::Combining, Sequencing::Thread][round % 2],
        );
    }
}

#[test]
fn dropping_the_runtime_drains_too() {
    for round in 0..6 {
        race(true, [Sequencing::Combining, Sequencing::Thread][round % 2]);
    }
}
