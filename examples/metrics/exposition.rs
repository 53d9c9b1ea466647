//! The metrics example's work, shared with `tests/metrics.rs`: a durable
//! runtime with two views (one of which fails on purpose) and a projection
//! appends and submits, and the program's Prometheus recorder renders what
//! rwlog recorded.

use std::collections::BTreeMap;
use std::time::Duration;

use rwlog::{Event, Position, Recorded, Runtime, Storage, View};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sold {
    pub item: String,
    pub price: u64,
}

impl Event for Sold {}

/// Revenue by item.
#[derive(Clone, Default)]
pub struct Revenue(BTreeMap<String, u64>);

impl View<Sold> for Revenue {
    fn apply(&mut self, e: &Recorded<Sold>) {
        *self.0.entry(e.payload().item.clone()).or_default() += e.payload().price;
    }
}

/// A view that cannot take a free item: it fails at the first, so the lag
/// gauges have something to show.
#[derive(Clone, Default)]
pub struct Picky(u64);

impl View<Sold> for Picky {
    fn apply(&mut self, e: &Recorded<Sold>) {
        assert!(e.payload().price > 0, "a free {}", e.payload().item);
        self.0 += 1;
    }
}

/// Runs the work on a log in `dir`; returns the exposition text `render`
/// gives afterwards.
pub fn run(dir: &std::path::Path, render: impl Fn() -> String) -> rwlog::Result<String> {
    let rt = Runtime::<Sold>::builder()
        .view("revenue", Revenue::default())
        .view("picky", Picky::default())
        .storage(Storage::dir(dir))
        .build()?;
    let projection = rt.projection("mailer", |_| Ok(()))?;
    // Fails on the free item, as the picky view does.
    let auditor = rt.projection("auditor", |e: &rwlog::Recorded<Sold>| {
        if e.payload().price == 0 {
            return Err("a sale at no price".into());
        }
        Ok(())
    })?;
    let w = rt.writer();
    for i in 0..200u64 {
        let sold = Sold {
            item: format!("item-{}", i % 7),
            price: if i == 150 { 0 } else { i % 13 + 1 },
        };
        if i % 2 == 0 {
            w.append(format!("till-{}", i % 3), sold)?;
        } else {
            w.submit(format!("till-{}", i % 3), sold)?;
        }
    }
    let last = w.append(
        "till-0",
        Sold {
            item: "tea".into(),
            price: 3,
        },
    )?;
    projection.wait_for(last.position, Duration::from_secs(10))?;
    let failed = auditor.wait_for(last.position, Duration::from_secs(10));
    assert!(matches!(failed, Err(rwlog::Error::ProjectionFailed { .. })));
    let revenue = rt.reader::<Revenue>("revenue")?;
    assert!(revenue.at_least(last.position)?.position() >= Position(201));
    let text = render();
    rt.shutdown()?;
    Ok(text)
}

/// The metrics the exposition must hold.
pub const METRICS: &[&str] = &[
    "rwlog_events_appended_total",
    "rwlog_batches_total",
    "rwlog_appends_rejected_total",
    "rwlog_batch_events",
    "rwlog_queue_depth",
    "rwlog_append_seconds",
    "rwlog_event_bytes",
    "rwlog_log_events",
    "rwlog_storage_bytes",
    "rwlog_view_lag_positions",
    "rwlog_view_lag_seconds",
    "rwlog_projection_lag_positions",
    "rwlog_projection_lag_seconds",
    "rwlog_projection_failed",
];
