//! Async projections: a restarted projection resumes from its checkpoint
//! with no event skipped (delivery is at least once), and a failing handler
//! stops only its own projection, with its error visible.

#[path = "support/domain.rs"]
mod domain;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::durable::Put;
use domain::{add, Add};
use rwlog::{Position, ProjectionError, ProjectionOptions, Recorded, Runtime, Storage};

const WAIT: Duration = Duration::from_secs(30);

fn recorder<E>(
    seen: &Arc<Mutex<Vec<u64>>>,
) -> impl FnMut(&Recorded<E>) -> Result<(), ProjectionError> + Send + 'static
where
    E: Send + Sync + 'static,
{
    let seen = Arc::clone(seen);
    move |e| {
        seen.lock().unwrap().push(e.position().0);
        Ok(())
    }
}

#[test]
fn a_restarted_projection_resumes_from_its_checkpoint() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let w = rt.writer();
    for i in 0..50 {
        w.append("s", add(i, 1)).unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let options = ProjectionOptions {
        checkpoint_every: 7,
    };
    let p = rt
        .projection_with("audit", options.clone(), recorder(&seen))
        .unwrap();
    p.wait_for(Position(50), WAIT).unwrap();
    assert_eq!(p.stop().unwrap(), Position(50));
    for i in 0..30 {
        w.append("s", add(i, 1)).unwrap();
    }
    let p = rt
        .projection_with("audit", options, recorder(&seen))
        .unwrap();
    p.wait_for(Position(80), WAIT).unwrap();
    let stats = rt.stats();
    assert_eq!(
        (stats.projections[0].handled, stats.projections[0].lag),
        (Position(80), 0)
    );
    drop(p);
    assert_eq!(
        *seen.lock().unwrap(),
        (1..=80).collect::<Vec<_>>(),
        "every event once, in order"
    );
}

#[test]
fn a_durable_projection_resumes_after_a_reopen_and_redelivers_at_most_since_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Runtime::<Put>::builder()
            .storage(Storage::dir(dir.path()))
            .build()
            .unwrap()
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let options = ProjectionOptions {
        checkpoint_every: 10,
    };
    {
        let rt = open();
        let w = rt.writer();
        for i in 0..40 {
            w.append("s", Put { key: i, amount: 1 }).unwrap();
        }
        // The handler fails at position 25: positions 21..=24 were handled
        // after the last periodic checkpoint (20).
        let log = Arc::clone(&seen);
        let p = rt
            .projection_with("mailer", options.clone(), move |e: &Recorded<Put>| {
                if e.position() == Position(25) {
                    return Err("the mail server is down".into());
                }
                log.lock().unwrap().push(e.position().0);
                Ok(())
            })
            .unwrap();
        let err = p.wait_for(Position(40), WAIT).unwrap_err();
        assert!(err.to_string().contains("the mail server is down"), "{err}");
        assert!(p.failure().unwrap().contains("at position 25"));
        assert!(rt.stats().projections[0].failure.is_some());
        assert_eq!(
            p.stop().unwrap(),
            Position(24),
            "a failing projection saves what it handled"
        );
        assert!(!rt.stats().projections[0].running);
        rt.shutdown().unwrap();
    }
    let rt = open();
    rt.writer().append("s", Put { key: 99, amount: 1 }).unwrap();
    let p = rt
        .projection_with("mailer", options, recorder(&seen))
        .unwrap();
    p.wait_for(Position(41), WAIT).unwrap();
    drop(p);
    let seen = seen.lock().unwrap();
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(
        unique,
        (1..=41).collect::<BTreeSet<_>>(),
        "no event skipped"
    );
    assert_eq!(
        seen.len(),
        41,
        "the failed event was delivered again, nothing else twice"
    );
}

#[test]
fn a_failing_projection_is_isolated() {
    let rt = domain::sums_runtime(|b| b);
    let good_seen = Arc::new(Mutex::new(Vec::new()));
    let good = rt.projection("good", recorder(&good_seen)).unwrap();
    let bad = rt
        .projection("bad", |e: &Recorded<Add>| -> Result<(), ProjectionError> {
            assert!(e.payload().amount >= 0, "negative amount");
            Ok(())
        })
        .unwrap();
    let w = rt.writer();
    w.append("s", add(1, 5)).unwrap();
    w.append("s", add(1, -1)).unwrap();
    let last = w.append("s", add(1, 2)).unwrap();
    good.wait_for(last.position, WAIT).unwrap();
    assert!(bad.wait_for(last.position, WAIT).is_err());
    assert!(bad.failure().unwrap().contains("negative amount"));
    // The log, the writers, the views and the other projection go on.
    let more = w.append("s", add(1, 1)).unwrap();
    good.wait_for(more.position, WAIT).unwrap();
    assert_eq!(
        rt.reader::<domain::Sums>("sums")
            .unwrap()
            .strong()
            .unwrap()
            .0[&1],
        7
    );
    assert_eq!(good_seen.lock().unwrap().len(), 4);
    let stats = rt.stats();
    let by_name = |n: &str| {
        stats
            .projections
            .iter()
            .find(|p| p.name == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("bad").handled, Position(1));
    assert!(by_name("bad").failure.is_some() && by_name("good").failure.is_none());
    assert_eq!(by_name("bad").lag, 3);
}
