//! Metrics through the [`metrics`](https://docs.rs/metrics) facade, with
//! the `metrics` feature: rwlog records, the program's exporter (Prometheus,
//! StatsD, OpenTelemetry, …) publishes. Without the feature every function
//! here is empty and compiles away.
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `rwlog_events_appended_total` | counter | events sequenced into the log by this process |
//! | `rwlog_batches_total` | counter | sequencer batches |
//! | `rwlog_appends_rejected_total` | counter | appends refused (conflict, too large, storage) |
//! | `rwlog_batch_events` | histogram | events per batch |
//! | `rwlog_queue_depth` | histogram | appends queued when a batch starts |
//! | `rwlog_append_seconds` | histogram | an acknowledged append, from the call to its acknowledgement |
//! | `rwlog_event_bytes` | histogram | an event's encoded size (durable and shared logs) |
//! | `rwlog_log_events` | gauge | events in the log (its head) |
//! | `rwlog_storage_bytes` | gauge | bytes of the log's storage (a directory's segments; a shared log's batches written by this process) |
//! | `rwlog_view_lag_positions` | gauge, `view` | events the view has not applied (non-zero only for a failed view) |
//! | `rwlog_view_lag_seconds` | gauge, `view` | age of the oldest event the view has not applied |
//! | `rwlog_projection_lag_positions` | gauge, `projection` | events the projection has not handled |
//! | `rwlog_projection_lag_seconds` | gauge, `projection` | age of the last event it handled, when it handled it |
//! | `rwlog_projection_failed` | gauge, `projection` | 1 once its handler failed (its lag gauges then stay where the failure left them) |
//!
//! Alerting on lag (a projection falling behind, a failed view) is the
//! exporter's and the monitoring system's job: these gauges are what such
//! rules read.

#![cfg_attr(not(feature = "metrics"), allow(unused_variables, dead_code))]

use std::time::Duration;
#[cfg(feature = "metrics")]
use std::time::Instant;

/// Whether metrics are recorded: callers skip the work of a metric's
/// arguments (a clock read, a load) when not.
pub(crate) const ENABLED: bool = cfg!(feature = "metrics");

/// When an append started, if metrics are recorded.
#[derive(Clone, Copy)]
pub(crate) struct Started(#[cfg(feature = "metrics")] Instant);

pub(crate) fn start() -> Started {
    #[cfg(feature = "metrics")]
    return Started(Instant::now());
    #[cfg(not(feature = "metrics"))]
    Started()
}

/// An acknowledged append ended.
pub(crate) fn acknowledged(started: Started) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("rwlog_append_seconds").record(started.0.elapsed().as_secs_f64());
}

/// A batch was sequenced: its events, the queue's depth when it started,
/// and the log's head after it.
pub(crate) fn batch(events: u64, queued: usize, head: u64) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("rwlog_events_appended_total").increment(events);
        metrics::counter!("rwlog_batches_total").increment(1);
        metrics::histogram!("rwlog_batch_events").record(events as f64);
        metrics::histogram!("rwlog_queue_depth").record(queued as f64);
        metrics::gauge!("rwlog_log_events").set(head as f64);
    }
}

/// The log's head moved without a batch of this process's (a shared log
/// adopted other processes' events, or a log was recovered).
pub(crate) fn head(head: u64) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("rwlog_log_events").set(head as f64);
}

pub(crate) fn rejected(appends: u64) {
    #[cfg(feature = "metrics")]
    metrics::counter!("rwlog_appends_rejected_total").increment(appends);
}

/// One event was encoded into this many bytes.
#[cfg_attr(not(feature = "durable"), allow(dead_code))]
pub(crate) fn event_bytes(bytes: usize) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("rwlog_event_bytes").record(bytes as f64);
}

/// The log's storage holds this many bytes (at open).
#[cfg_attr(not(feature = "durable"), allow(dead_code))]
pub(crate) fn storage_bytes(bytes: u64) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("rwlog_storage_bytes").set(bytes as f64);
}

/// This many bytes were added to the log's storage.
#[cfg_attr(not(feature = "durable"), allow(dead_code))]
pub(crate) fn storage_written(bytes: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("rwlog_storage_bytes").increment(bytes as f64);
}

/// A view's distance from the head, in events and in age.
pub(crate) fn view_lag(view: &str, positions: u64, age: Duration) {
    #[cfg(feature = "metrics")]
    {
        let view = view.to_owned();
        metrics::gauge!("rwlog_view_lag_positions", "view" => view.clone()).set(positions as f64);
        metrics::gauge!("rwlog_view_lag_seconds", "view" => view).set(age.as_secs_f64());
    }
}

/// A projection's handler failed.
pub(crate) fn projection_failed(projection: &str) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("rwlog_projection_failed", "projection" => projection.to_owned()).set(1.0);
}

/// A projection's distance from the head, in events and in age.
pub(crate) fn projection_lag(projection: &str, positions: u64, age: Duration) {
    #[cfg(feature = "metrics")]
    {
        let name = projection.to_owned();
        metrics::gauge!("rwlog_projection_lag_positions", "projection" => name.clone())
            .set(positions as f64);
        metrics::gauge!("rwlog_projection_lag_seconds", "projection" => name)
            .set(age.as_secs_f64());
    }
}
