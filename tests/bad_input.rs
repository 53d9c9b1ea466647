//! Guarantee 7: bad input never corrupts the log: a rejected append changes
//! nothing and returns a typed error. Also the faults a user can meet: a
//! full queue, a closed runtime, an unknown view, a panicking view, time
//! travel out of range.

#[path = "support/domain.rs"]
mod domain;
#[path = "support/traces.rs"]
mod traces;

use std::time::{Duration, SystemTime};

use domain::{add, held_runtime, wait_for_head, Add, Checksum, Sums, HOLD};
use rwlog::{Error, Expected, Health, Position, Recorded, Runtime, View};

#[test]
fn a_conflict_changes_nothing_and_spares_the_rest_of_its_batch() {
    let rt = domain::sums_runtime(|b| b);
    let w = rt.writer();
    w.append_batch("a", [add(1, 1), add(1, 1)]).unwrap();
    let before: Vec<_> = rt.log().read_all(..).map(|e| e.id()).collect();

    // Queue a conflicting append between good ones so they share a batch.
    let t1 = w.submit("b", add(2, 1)).unwrap();
    let bad = w
        .submit_expecting("a", Expected::Exact(1), [add(1, 100), add(1, 100)])
        .unwrap();
    let t2 = w
        .submit_expecting("a", Expected::Exact(2), [add(1, 5)])
        .unwrap();
    let t3 = w
        .submit_expecting("c", Expected::NoStream, [add(3, 1)])
        .unwrap();
    match bad.wait() {
        Err(Error::Conflict {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(
                (stream.as_str(), expected, actual),
                ("a", Expected::Exact(1), 2)
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(t1.wait().unwrap().position, Position(3));
    assert_eq!(t2.wait().unwrap().version, 3);
    assert_eq!(t3.wait().unwrap().version, 1);

    let after: Vec<_> = rt.log().read_all(..).collect();
    assert_eq!(after.len(), 5);
    assert_eq!(
        after[..2].iter().map(|e| e.id()).collect::<Vec<_>>(),
        before
    );
    assert!(after.iter().all(|e| e.payload().amount != 100));
    assert_eq!(rt.log().stream_version("a"), 3);
    assert_eq!(
        rt.reader::<Sums>("sums").unwrap().strong().unwrap().0[&1],
        7
    );
    assert_eq!(rt.stats().rejected, 1);

    assert!(matches!(
        w.append_expecting("a", Expected::NoStream, [add(1, 1)]),
        Err(Error::Conflict { actual: 3, .. })
    ));
    assert!(matches!(
        w.append_expecting("zzz", Expected::Exists, [add(1, 1)]),
        Err(Error::Conflict { actual: 0, .. })
    ));
    assert_eq!(rt.log().head(), Position(5));
}

#[test]
fn empty_and_oversized_appends_are_rejected_before_the_queue() {
    let rt = Runtime::<Add>::builder()
        .max_append_events(3)
        .build()
        .unwrap();
    let w = rt.writer();
    assert!(matches!(
        w.append_batch("s", Vec::<Add>::new()),
        Err(Error::EmptyAppend)
    ));
    assert!(matches!(
        w.append_batch("s", (0..4).map(|i| add(i, 1))),
        Err(Error::TooLarge { max: 3, .. })
    ));
    assert_eq!(
        w.append_batch("s", (0..3).map(|i| add(i, 1)))
            .unwrap()
            .count,
        3
    );
    assert_eq!(rt.log().head(), Position(3));
}

#[test]
fn appends_after_shutdown_are_closed() {
    let rt = Runtime::<Add>::builder().build().unwrap();
    let w = rt.writer();
    w.append("s", add(1, 1)).unwrap();
    rt.shutdown().unwrap();
    rt.shutdown().unwrap();
    assert!(matches!(w.append("s", add(1, 1)), Err(Error::Closed)));
    assert!(matches!(w.submit("s", add(1, 1)), Err(Error::Closed)));
    assert!(matches!(w.try_append("s", add(1, 1)), Err(Error::Closed)));
    assert!(matches!(
        rt.writer().append_batch("s", [add(1, 1)]),
        Err(Error::Closed)
    ));
    assert_eq!(rt.log().head(), Position(1));
}

#[test]
fn a_full_queue_gives_full_to_try_append_and_nothing_is_written() {
    let (rt, valve) = held_runtime(|b| b.queue_capacity(2));
    let w = rt.writer();
    let stall = w.submit("s", add(HOLD, 1)).unwrap();
    wait_for_head(rt.log(), Position(1));
    // The sequencer is stalled; fill the queue.
    let queued: Vec<_> = (0..2)
        .map(|i| w.try_submit("s", add(i, 1)).unwrap())
        .collect();
    assert!(matches!(w.try_submit("s", add(9, 1)), Err(Error::Full)));
    assert!(matches!(w.try_append("s", add(9, 1)), Err(Error::Full)));
    valve.open();
    stall.wait().unwrap();
    for t in queued {
        t.wait().unwrap();
    }
    assert_eq!(rt.log().head(), Position(3));
    assert!(rt.log().read_all(..).all(|e| e.payload().key != 9));
}

#[test]
fn unknown_views_and_wrong_types_are_typed_errors() {
    let rt = domain::sums_runtime(|b| b);
    assert!(
        matches!(rt.reader::<Sums>("nope"), Err(Error::UnknownView { name }) if name == "nope")
    );
    assert!(matches!(
        rt.reader::<Checksum>("sums"),
        Err(Error::ViewType { .. })
    ));
    assert!(matches!(
        rt.view_at::<Sums>("nope", Position(1)),
        Err(Error::UnknownView { .. })
    ));
    assert!(matches!(
        Runtime::<Add>::builder().view("x", Sums::default()).view("x", Checksum::default()).build(),
        Err(Error::DuplicateView(name)) if name == "x"
    ));
    assert!(matches!(
        Runtime::<Add>::builder().max_batch(0).build(),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        Runtime::<Add>::builder().queue_capacity(0).build(),
        Err(Error::Config(_))
    ));
}

/// Panics on a negative amount.
#[derive(Clone, Default)]
struct Fragile(i64);

impl View<Add> for Fragile {
    fn apply(&mut self, e: &Recorded<Add>) {
        assert!(
            e.payload().amount >= 0,
            "negative amount at {}",
            e.position()
        );
        self.0 += e.payload().amount;
    }
}

#[test]
fn a_panicking_view_fails_alone() {
    let traces = traces::traces(tracing::Level::ERROR);
    let rt = Runtime::<Add>::builder()
        .view("fragile", Fragile::default())
        .view("sums", Sums::default())
        .build()
        .unwrap();
    let w = rt.writer();
    w.append("s", add(1, 5)).unwrap();
    let bad = w.append("s", add(1, -1)).unwrap();
    let after = w.append("s", add(1, 2)).unwrap();

    let fragile = rt.reader::<Fragile>("fragile").unwrap();
    let s = fragile.latest();
    assert_eq!(
        (s.position(), s.0),
        (Position(1), 5),
        "the last good state stays readable"
    );
    match fragile.at_least(after.position) {
        Err(Error::ViewFailed {
            name,
            position,
            message,
        }) => {
            assert_eq!((name.as_str(), position), ("fragile", Position(1)));
            assert!(message.contains("negative amount at 2"), "{message}");
        }
        other => panic!("expected ViewFailed, got {:?}", other.map(|s| s.position())),
    }
    assert!(matches!(fragile.strong(), Err(Error::ViewFailed { .. })));
    assert!(fragile.failure().is_some());
    assert!(matches!(
        rt.view_at::<Fragile>("fragile", bad.position),
        Err(Error::ViewFailed { .. })
    ));
    assert_eq!(rt.view_at::<Fragile>("fragile", Position(1)).unwrap().0, 5);

    // The log, the writers and the other view go on.
    let more = w.append("s", add(1, 3)).unwrap();
    let sums = rt
        .reader::<Sums>("sums")
        .unwrap()
        .at_least(more.position)
        .unwrap();
    assert_eq!(sums.0[&1], 9);
    let stats = rt.stats();
    assert_eq!(stats.head, Position(4));
    assert!(stats.views[0].failure.is_some() && stats.views[1].failure.is_none());
    assert_eq!(stats.views[1].position, Position(4));

    // Loud, once: one error trace names the view, the batch and the panic.
    match fragile.health() {
        Health::Failed { position, message } => {
            assert_eq!(position, Position(1));
            assert!(message.contains("negative amount at 2"), "{message}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(
        rt.reader::<Sums>("sums").unwrap().health(),
        Health::Advancing
    );
    let about: Vec<String> = traces
        .lock()
        .unwrap()
        .iter()
        .filter(|t| t.contains("view=fragile"))
        .cloned()
        .collect();
    assert_eq!(about.len(), 1, "{about:?}");
    assert!(
        about[0].contains("batch=2..=2") && about[0].contains("negative amount at 2"),
        "{}",
        about[0]
    );
}

#[test]
fn time_travel_out_of_range_is_a_clear_error() {
    let rt = domain::sums_runtime(|b| b);
    assert!(matches!(
        rt.view_at::<Sums>("sums", Position(1)),
        Err(Error::PositionOutOfRange {
            requested: Position(1),
            head: Position(0)
        })
    ));
    let before = SystemTime::now() - Duration::from_secs(60);
    rt.writer().append("s", add(1, 1)).unwrap();
    rt.writer().append("s", add(1, 1)).unwrap();
    let e = rt.view_at::<Sums>("sums", Position(0)).unwrap_err();
    assert!(matches!(
        e,
        Error::PositionOutOfRange {
            requested: Position(0),
            head: Position(2)
        }
    ));
    assert!(e.to_string().contains("1..=2"), "{e}");
    assert!(matches!(
        rt.view_at::<Sums>("sums", Position(3)),
        Err(Error::PositionOutOfRange {
            requested: Position(3),
            head: Position(2)
        })
    ));
    assert!(matches!(
        rt.view_as_of::<Sums>("sums", before),
        Err(Error::BeforeFirstEvent { .. })
    ));
}

/// A value whose `Clone` panics for 13: the map's view fails on it.
#[derive(Debug, PartialEq)]
struct Unlucky(u32);

impl Clone for Unlucky {
    fn clone(&self) -> Self {
        assert!(self.0 != 13, "unlucky");
        Unlucky(self.0)
    }
}

#[test]
fn a_shared_map_whose_view_failed_says_so_instead_of_acknowledging() {
    let m = rwlog::SharedMap::<u32, Unlucky>::new().unwrap();
    m.insert(1, Unlucky(1)).unwrap();
    // The insert of 13 fails the map (its clone panics as it is applied),
    // and every write after it: the log holds them, the map will not.
    assert!(matches!(
        m.insert(2, Unlucky(13)),
        Err(rwlog::Error::ViewFailed { .. })
    ));
    assert!(matches!(
        m.insert(3, Unlucky(3)),
        Err(rwlog::Error::ViewFailed { .. })
    ));
    assert!(matches!(m.remove(1), Err(rwlog::Error::ViewFailed { .. })));
    assert_eq!(
        m.get(&1),
        Some(Unlucky(1)),
        "the last good map stays readable"
    );
}
