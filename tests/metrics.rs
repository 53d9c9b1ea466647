//! The metrics example's exposition holds every metric rwlog documents,
//! parsed as Prometheus text, with values that match what was done.

#[path = "../examples/metrics/exposition.rs"]
mod exposition;

use std::collections::BTreeMap;

/// Each sample's name (with its labels) and value; `# HELP`/`# TYPE`
/// lines are skipped. Fails on a line that is not a sample.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a value: {line}"));
        out.insert(name.to_owned(), value);
    }
    out
}

fn value(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or_else(|| {
        panic!(
            "no sample {name} in {:?}",
            samples.keys().collect::<Vec<_>>()
        )
    })
}

#[test]
fn the_exposition_holds_every_metric() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder in this binary");
    let dir = tempfile::tempdir().unwrap();
    let text = exposition::run(dir.path(), || handle.render()).unwrap();
    let samples = samples(&text);
    for metric in exposition::METRICS {
        assert!(
            samples.keys().any(|k| k == metric
                || k.starts_with(&format!("{metric}{{"))
                || k.starts_with(&format!("{metric}_"))),
            "{metric} is missing from:\n{text}"
        );
    }
    assert_eq!(value(&samples, "rwlog_events_appended_total"), 201.0);
    assert_eq!(value(&samples, "rwlog_log_events"), 201.0);
    assert_eq!(value(&samples, "rwlog_appends_rejected_total"), 0.0);
    assert_eq!(value(&samples, "rwlog_event_bytes_count"), 201.0);
    assert!(value(&samples, "rwlog_storage_bytes") > 201.0 * 16.0);
    // 101 appends acknowledged one by one (the submits are not timed).
    assert_eq!(value(&samples, "rwlog_append_seconds_count"), 101.0);
    assert!(value(&samples, "rwlog_batches_total") >= 1.0);
    // The picky view failed in the batch holding position 151 (the free
    // item) and stayed before it; the revenue view keeps up.
    assert_eq!(
        value(&samples, "rwlog_view_lag_positions{view=\"revenue\"}"),
        0.0
    );
    let picky = value(&samples, "rwlog_view_lag_positions{view=\"picky\"}");
    assert!((50.0..=60.0).contains(&picky), "picky lags by {picky}");
    assert_eq!(
        value(
            &samples,
            "rwlog_projection_lag_positions{projection=\"mailer\"}"
        ),
        0.0
    );
    // The auditor failed at the free item: flagged, and its lag says it
    // stopped behind the head (not 0, as a caught-up projection's).
    assert_eq!(
        value(&samples, "rwlog_projection_failed{projection=\"auditor\"}"),
        1.0
    );
    let behind = value(
        &samples,
        "rwlog_projection_lag_positions{projection=\"auditor\"}",
    );
    assert!(behind >= 1.0, "the failed auditor lags by {behind}");
}
