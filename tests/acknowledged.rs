//! Guarantee 2: an acknowledged append is in the log, at the position its
//! acknowledgement names, with the payload and metadata it was sent with.

#[path = "support/domain.rs"]
mod domain;

use std::thread;

use domain::{add, Add};
use rwlog::{Metadata, NewEvent, Position, Runtime, Uuid};

#[test]
fn every_acknowledged_append_is_in_the_log() {
    let rt = Runtime::<Add>::builder().max_batch(64).build().unwrap();
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let w = rt.writer();
            thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..1000u64 {
                    let event = add(t * 10_000 + i, i as i64);
                    let a = if i % 2 == 0 {
                        w.append("s", event.clone()).unwrap()
                    } else {
                        w.submit("s", event.clone()).unwrap().wait().unwrap()
                    };
                    acked.push((a, event));
                }
                acked
            })
        })
        .collect();
    for h in handles {
        for (ack, event) in h.join().unwrap() {
            let found = rt
                .log()
                .get(ack.position)
                .expect("acked position is in the log");
            assert_eq!(found.payload(), &event);
            assert_eq!(found.version(), ack.version);
        }
    }
}

#[test]
fn metadata_and_supplied_ids_are_kept() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let w = rt.writer_named("teller-7");
    let id = Uuid::now_v7();
    let corr = Uuid::now_v7();
    let ev = NewEvent::new(add(1, 5))
        .with_id(id)
        .metadata(Metadata::new().correlation(corr).with("reason", "test"));
    let a = w.append("acct", ev).unwrap();
    let plain = w.append("acct", add(1, 1)).unwrap();
    let e = rt.log().get(a.position).unwrap();
    assert_eq!(e.id(), id);
    assert_eq!(e.metadata().correlation_id, Some(corr));
    assert_eq!(e.metadata().get("reason"), Some("test"));
    assert_eq!(e.metadata().writer_id.as_deref(), Some("teller-7"));
    let p = rt.log().get(plain.position).unwrap();
    assert_eq!(p.metadata().writer_id.as_deref(), Some("teller-7"));
    assert_ne!(p.id(), id);
}

#[test]
fn dropped_tickets_do_not_cancel_appends() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let w = rt.writer();
    for i in 0..100 {
        drop(w.submit("s", add(i, 1)).unwrap());
    }
    let last = w.append("s", add(100, 1)).unwrap();
    assert_eq!(last.position.0, 101);
    assert_eq!(rt.log().read_all(..).count(), 101);
}

/// Ticket cells are reused once a ticket and its acknowledgement are both
/// gone: a ticket kept (or waited on) must never be handed to another append,
/// however many appends go by, on one thread or several.
#[test]
fn every_ticket_answers_for_its_own_append_while_cells_are_reused() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let w = rt.writer();
            let stream = format!("s{t}");
            thread::spawn(move || {
                let kept = w.submit(stream.as_str(), add(0, 1)).unwrap();
                let mut versions = Vec::new();
                for round in 0..3 {
                    // More dropped tickets than a thread's pool holds.
                    for i in 0..3000 {
                        drop(w.submit(stream.as_str(), add(i, 1)).unwrap());
                    }
                    let waited: Vec<_> = (0..50)
                        .map(|i| w.submit(stream.as_str(), add(round * 100 + i, 1)).unwrap())
                        .collect();
                    versions.extend(waited.into_iter().map(|t| t.wait().unwrap().version));
                }
                (kept.wait().unwrap().version, versions)
            })
        })
        .collect();
    for h in handles {
        let (first, versions) = h.join().unwrap();
        assert_eq!(first, 1, "the first ticket answers for the first append");
        let expected: Vec<u64> = (0..3u64)
            .flat_map(|round| (0..50).map(move |i| 2 + 3000 * (round + 1) + 50 * round + i))
            .collect();
        assert_eq!(versions, expected);
    }
}

/// A ticket outlives the thread that submitted it: the ack still reaches it.
#[test]
fn a_ticket_from_a_thread_that_has_exited_still_gets_its_ack() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    for round in 0..200 {
        let w = rt.writer();
        let ticket = thread::spawn(move || w.submit("s", add(round, 1)).unwrap())
            .join()
            .unwrap();
        let ack = ticket
            .wait_timeout(std::time::Duration::from_secs(10))
            .expect("the ack of an append whose thread exited never came");
        assert_eq!(ack.unwrap().version, round + 1);
    }
}

#[test]
fn an_append_retried_with_the_same_id_is_written_once() {
    let rt = Runtime::<Add>::builder().dedupe_window(3).build().unwrap();
    let w = rt.writer();
    let id = Uuid::now_v7();
    let first = w.append("s", NewEvent::new(add(1, 5)).with_id(id)).unwrap();
    w.append("t", add(2, 1)).unwrap();
    // A retry (say, after a timeout the writer could not interpret).
    let again = w.append("s", NewEvent::new(add(1, 5)).with_id(id)).unwrap();
    assert_eq!(again, first);
    assert_eq!(rt.log().head(), Position(2));
    // Several retries in one batch are written once too.
    let batch_id = Uuid::now_v7();
    let tickets: Vec<_> = (0..5)
        .map(|_| {
            w.submit_expecting(
                "u",
                rwlog::Expected::Any,
                [
                    NewEvent::new(add(3, 1)).with_id(batch_id),
                    NewEvent::new(add(3, 2)),
                ],
            )
            .unwrap()
        })
        .collect();
    let acks: Vec<_> = tickets.into_iter().map(|t| t.wait().unwrap()).collect();
    assert!(acks.iter().all(|a| *a == acks[0] && a.count == 2));
    assert_eq!(rt.log().head(), Position(4));
    // Beyond the window, an id is forgotten: written again.
    for _ in 0..3 {
        w.append("v", NewEvent::new(add(4, 1)).with_id(Uuid::now_v7()))
            .unwrap();
    }
    let forgotten = w.append("s", NewEvent::new(add(1, 5)).with_id(id)).unwrap();
    assert_ne!(forgotten.position, first.position);
    assert_eq!(rt.log().head(), Position(8));
}

/// A writer's append follows its own submits, whether it is sequenced on
/// its thread at once (nothing queued, nobody sequencing) or queued behind
/// them; and each append's answer is its own, though the writer that
/// sequences it takes the answer from the sequencer rather than a ticket.
#[test]
fn an_append_lands_after_the_same_writers_submits_and_gets_its_own_answer() {
    for sequencing in [rwlog::Sequencing::Combining, rwlog::Sequencing::Thread] {
        let rt = Runtime::<Add>::builder()
            .sequencing(sequencing)
            .build()
            .unwrap();
        let handles: Vec<_> = (0..3u64)
            .map(|t| {
                let w = rt.writer();
                thread::spawn(move || {
                    let stream = format!("w{t}");
                    let mut acks = Vec::new();
                    for round in 0..300u64 {
                        // 0 to 3 submits, then an append, all to this
                        // writer's stream.
                        let tickets: Vec<_> = (0..round % 4)
                            .map(|k| w.submit(stream.as_str(), add(k, 1)).unwrap())
                            .collect();
                        let key = 1_000_000 + t * 1_000 + round;
                        let ack = w.append(stream.as_str(), add(key, 2)).unwrap();
                        for ticket in tickets {
                            let submitted = ticket.wait().unwrap();
                            assert!(submitted.position < ack.position, "{sequencing:?}");
                            assert!(submitted.version < ack.version, "{sequencing:?}");
                        }
                        acks.push((ack, key));
                    }
                    acks
                })
            })
            .collect();
        for h in handles {
            for (ack, key) in h.join().unwrap() {
                let found = rt.log().get(ack.position).expect("in the log");
                assert_eq!(found.payload().key, key, "the answer names its own event");
                assert_eq!(found.version(), ack.version);
            }
        }
        rt.shutdown().unwrap();
    }
}
