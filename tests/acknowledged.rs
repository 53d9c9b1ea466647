//! Guarantee 2: an acknowledged append is in the log, at the position its
//! acknowledgement names, with the payload and metadata it was sent with.

#[path = "support/domain.rs"]
mod domain;

use std::thread;

use domain::{add, Add};
use rwlog::{Metadata, NewEvent, Runtime, Uuid};

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
