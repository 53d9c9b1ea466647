//! rwlog against the locks a user would otherwise pick, measured side by
//! side in one process.
//!
//! Every contender holds the same `HashMap<u64, u64>` of 100k keys (with
//! the same hasher, foldhash) and does the same work. Each scenario runs
//! every contender in turn (A B C … A B C …) for several rounds, so drift
//! of the machine hits all alike, and reports the median round. Prints a
//! table, then one JSON line per scenario and contender.
//!
//! ```text
//! cargo run --release --example compare              # the full matrix (~4 min on 2 cores)
//! cargo run --release --example compare -- --quick   # shorter windows (~1 min)
//! cargo run --release --example compare -- --svg compare.svg
//! cargo run --release --example compare -- --only reads_2r --only replay
//! cargo run --release --example compare -- --only reads_2r_1w --contender rwlog
//! cargo run --release --example compare -- --replot docs/compare-2026-11-23-final.txt --svg compare.svg
//! ```

#[path = "../../benches/support/contenders.rs"]
mod contenders;
#[path = "../../benches/support/parallel.rs"]
mod parallel;

mod chart;
mod cli;
mod measure;
#[cfg(feature = "postgres")]
mod postgres;
mod report;
mod rwlog_only;
mod scenarios;

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use cli::Options;
use measure::{measure, median, prepare, Sample};
use report::{fill_ratios, print_table, saved_rows, Row};
use scenarios::{scenarios, Budget, Scenario};

fn main() {
    #[cfg(feature = "postgres")]
    if std::env::args().nth(1).as_deref() == Some("--pg-child") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        return postgres::child(&args);
    }
    let opts = cli::options().unwrap_or_else(|e| exit(2, &e));
    if let Some(run) = &opts.replot {
        let path = opts
            .svg
            .as_ref()
            .unwrap_or_else(|| exit(2, "--replot needs --svg FILE"));
        let rows = std::fs::read_to_string(run)
            .map_err(|e| e.to_string())
            .and_then(|text| saved_rows(&text))
            .unwrap_or_else(|e| {
                exit(
                    1,
                    &format!("could not read a saved run from {}: {e}", run.display()),
                )
            });
        chart::write_chart(path, &rows);
        return;
    }
    let budget = budget(opts.quick);
    let scenarios = chosen(&opts);
    let started = Instant::now();
    let mut rows = run(&scenarios, &budget);
    fill_ratios(&mut rows);
    print_table(&rows, started.elapsed(), opts.quick);
    if let Some(why) = scenarios::postgres_skipped() {
        println!("{}: skipped: {why}", scenarios::PG_SCENARIOS);
    }
    for r in &rows {
        println!("{}", r.json());
    }
    if let Some(path) = &opts.svg {
        chart::write_chart(path, &rows);
    }
}

/// Prints `message` and exits with `code`.
fn exit(code: i32, message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(code)
}

fn budget(quick: bool) -> Budget {
    Budget {
        window: Duration::from_millis(if quick { 250 } else { 800 }),
        rounds: if quick { 3 } else { 5 },
        log_events: 1_000_000,
        travel_samples: if quick { 15 } else { 41 },
    }
}

/// The scenarios and contenders the command line selects.
fn chosen(opts: &Options) -> Vec<Scenario> {
    let chosen: Vec<_> = scenarios()
        .into_iter()
        .filter(|s| opts.only.is_empty() || opts.only.iter().any(|o| o == s.name))
        .map(|mut s| {
            if !opts.contenders.is_empty() {
                s.contenders
                    .retain(|(_, label)| opts.contenders.iter().any(|c| c == label));
            }
            s
        })
        .filter(|s| !s.contenders.is_empty())
        .collect();
    if chosen.is_empty() {
        let why = format!(
            "no scenario matches --only {:?} with --contender {:?}",
            opts.only, opts.contenders
        );
        exit(2, &why);
    }
    chosen
}

/// Every scenario, its contenders interleaved round by round; the median
/// row of each.
fn run(scenarios: &[Scenario], budget: &Budget) -> Vec<Row> {
    let steps: usize = scenarios
        .iter()
        .map(|s| s.contenders.len() * budget.rounds)
        .sum();
    let progress = ProgressBar::new(steps as u64);
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    let mut rows = Vec::new();
    for s in scenarios {
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); s.contenders.len()];
        let prepared = prepare(s, budget, &progress);
        for round in 0..budget.rounds {
            for (i, (kind, label)) in s.contenders.iter().enumerate() {
                let n = budget.rounds;
                progress.set_message(format!("{} · {label} · round {}/{n}", s.name, round + 1));
                samples[i].push(measure(s, *kind, budget, prepared.as_ref()));
                progress.inc(1);
            }
        }
        for ((kind, label), runs) in s.contenders.iter().zip(samples) {
            rows.push(Row {
                scenario: s.name,
                threads: s.threads,
                contender: label,
                kind: *kind,
                median: median(&runs),
                ratio: None,
            });
        }
    }
    progress.finish_and_clear();
    rows
}
