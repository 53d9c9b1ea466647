//! The results: rows, ratios to std's RwLock, the table and the JSON
//! lines, and reading a saved run back.

use std::thread;
use std::time::Duration;

use crate::contenders::{Kind, KEYS};
use crate::measure::Sample;

/// One contender's median in one scenario.
pub(crate) struct Row {
    pub(crate) scenario: &'static str,
    pub(crate) threads: &'static str,
    pub(crate) contender: &'static str,
    pub(crate) kind: Kind,
    pub(crate) median: Sample,
    pub(crate) ratio: Option<f64>,
}

impl Row {
    /// The scenario's headline number, higher is better: reads/s for reads
    /// and mixes, writes/s for writes, 1/p99.9 for read latency.
    pub(crate) fn headline(&self) -> Option<f64> {
        let m = &self.median;
        if self.scenario == "read_latency_1w" {
            m.p999_ns.map(|p| 1.0 / p)
        } else if self.scenario.starts_with("writes") {
            m.writes_per_s
        } else {
            m.reads_per_s
        }
    }

    pub(crate) fn json(&self) -> String {
        let m = &self.median;
        serde_json::json!({
            "scenario": self.scenario,
            "contender": self.contender,
            "threads": self.threads,
            "reads_per_s": m.reads_per_s.map(f64::round),
            "writes_per_s": m.writes_per_s.map(f64::round),
            "events_per_s": m.events_per_s.map(f64::round),
            "p50_ns": m.p50_ns,
            "p99_ns": m.p99_ns,
            "p999_ns": m.p999_ns,
            "ratio_vs_std_rwlock": self.ratio.map(|r| (r * 1000.0).round() / 1000.0),
            "events_per_fsync": m.events_per_fsync.map(|e| (e * 10.0).round() / 10.0),
        })
        .to_string()
    }
}

/// The rows of a saved run that the chart draws: its JSON lines (other lines
/// are skipped) of named contenders, with the ratios as printed. Only what
/// the chart needs is filled in.
pub(crate) fn saved_rows(text: &str) -> Result<Vec<Row>, String> {
    let field = |v: &serde_json::Value, name: &str| -> Result<&'static str, String> {
        let s = v[name]
            .as_str()
            .ok_or_else(|| format!("a JSON line without {name:?}"))?;
        // A short-lived command: the names live as long as the process.
        Ok(String::leak(s.to_owned()))
    };
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let contender = field(&v, "contender")?;
        // Rows of the rwlog-only scenarios carry their own labels and no
        // ratio: the chart has no bar for them.
        let Some(kind) = Kind::ALL.into_iter().find(|k| k.name() == contender) else {
            continue;
        };
        rows.push(Row {
            scenario: field(&v, "scenario")?,
            threads: field(&v, "threads")?,
            contender,
            kind,
            median: Sample::default(),
            ratio: v["ratio_vs_std_rwlock"].as_f64(),
        });
    }
    if rows.is_empty() {
        return Err("no JSON lines in the file".into());
    }
    Ok(rows)
}

pub(crate) fn fill_ratios(rows: &mut [Row]) {
    let baselines: Vec<(&str, f64)> = rows
        .iter()
        .filter(|r| r.kind == Kind::StdRwLock)
        .filter_map(|r| Some((r.scenario, r.headline()?)))
        .collect();
    for r in rows.iter_mut() {
        let base = baselines
            .iter()
            .find(|(s, _)| *s == r.scenario)
            .map(|(_, b)| *b);
        r.ratio = match (r.headline(), base) {
            (Some(h), Some(b)) if b > 0.0 => Some(h / b),
            _ => None,
        };
    }
}

pub(crate) fn rate(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x >= 1e6 => format!("{:.2}M", x / 1e6),
        Some(x) if x >= 1e3 => format!("{:.1}k", x / 1e3),
        Some(x) => format!("{x:.0}"),
    }
}

pub(crate) fn nanos(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x >= 1e6 => format!("{:.2} ms", x / 1e6),
        Some(x) if x >= 1e3 => format!("{:.1} µs", x / 1e3),
        Some(x) => format!("{x:.0} ns"),
    }
}

pub(crate) fn print_table(rows: &[Row], took: Duration, quick: bool) {
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "rwlog compare: HashMap<u64, u64> of {KEYS} keys, median of {} rounds, {} cores, {:.0} s{}",
        if quick { 3 } else { 5 },
        cores,
        took.as_secs_f64(),
        if quick { " (--quick)" } else { "" }
    );
    println!("×std = the scenario's headline (reads/s; writes/s for writes_*; 1/p99.9 for read_latency_1w) over std RwLock's: higher is better.");
    println!("rwlog write rates count events sequenced, logged and applied to the view.\n");
    let header = format!(
        "{:<18} {:<38} {:>16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "scenario", "contender", "threads", "reads/s", "writes/s", "p50", "p99", "p99.9", "×std"
    );
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count()));
    let mut last = "";
    for r in rows {
        if !last.is_empty() && last != r.scenario {
            println!();
        }
        last = r.scenario;
        let m = &r.median;
        let writes = m.writes_per_s.or(m.events_per_s);
        println!(
            "{:<18} {:<38} {:>16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            r.scenario,
            r.contender,
            r.threads,
            rate(m.reads_per_s),
            rate(writes),
            nanos(m.p50_ns),
            nanos(m.p99_ns),
            nanos(m.p999_ns),
            r.ratio.map_or("-".into(), |x| format!("{x:.2}")),
        );
    }
    println!("\nreplay and recovery report events/s in the writes/s column and their one-shot time as p50.");
    for r in rows.iter().filter(|r| r.median.events_per_fsync.is_some()) {
        println!(
            "{}: {:.1} events per fsync (one write + one fdatasync per batch).",
            r.scenario,
            r.median.events_per_fsync.unwrap_or_default()
        );
    }
    println!();
}
