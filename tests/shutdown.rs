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

#[test]
fn clones_share_one_runtime_and_the_last_one_shuts_it_down() {
    let rt = domain::sums_runtime(|b| b);
    let other = rt.clone();
    let w = rt.writer();
    let ack = other.writer().append("s", add(1, 2)).unwrap();
    assert_eq!(rt.head(), ack.position, "one log");
    let r = rt.reader::<Sums>("sums").unwrap();
    drop(rt);
    // A clone is still alive: appends go on.
    w.append("s", add(1, 3)).unwrap();
    assert_eq!(r.strong().unwrap().0[&1], 5);
    let third = other.clone();
    third.shutdown().unwrap();
    assert!(matches!(
        w.append("s", add(1, 1)),
        Err(rwlog::Error::Closed)
    ));
    assert_eq!(other.head().0, 2, "shut down for every clone");
    drop((other, third));
    assert_eq!(r.latest().0[&1], 5);
}

#[test]
fn dropping_the_last_clone_shuts_down() {
    let rt = domain::sums_runtime(|b| b);
    let w = rt.writer();
    let clones: Vec<_> = (0..3).map(|_| rt.clone()).collect();
    drop(rt);
    w.append("s", add(1, 1)).unwrap();
    drop(clones);
    assert!(matches!(
        w.append("s", add(1, 1)),
        Err(rwlog::Error::Closed)
    ));
}
