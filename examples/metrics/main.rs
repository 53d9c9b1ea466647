//! rwlog's metrics in Prometheus's text format: a durable runtime works for
//! a moment (appends, submits, a projection, a view that fails on purpose),
//! then the exposition a scrape of `/metrics` would return is printed.
//!
//! ```text
//! cargo run --example metrics --features metrics
//! ```
//!
//! rwlog records through the `metrics` facade; the program picks the
//! exporter (here `metrics-exporter-prometheus`, rendering text; in a
//! service, its HTTP listener or any other exporter).

#[allow(dead_code)] // METRICS is for the test
mod exposition;

fn main() -> rwlog::Result<()> {
    // The failing view is on purpose: say so in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("(as intended) a view failed: {info}")
    }));
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder");
    let dir = tempfile::tempdir()?;
    let text = exposition::run(dir.path(), || handle.render())?;
    print!("{text}");
    Ok(())
}
