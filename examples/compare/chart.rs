//! The chart: every contender's ratio to std's RwLock per scenario, as SVG.

use crate::contenders::Kind;
use crate::report::Row;

/// Draws the chart to `path`, or exits with the error.
pub(crate) fn write_chart(path: &std::path::Path, rows: &[Row]) {
    match svg(path, rows) {
        Ok(()) => eprintln!("chart written to {}", path.display()),
        Err(e) => {
            eprintln!("could not write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

fn svg(path: &std::path::Path, rows: &[Row]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let scenarios: Vec<&str> = {
        let mut v: Vec<&str> = rows
            .iter()
            .filter(|r| r.ratio.is_some())
            .map(|r| r.scenario)
            .collect();
        v.dedup();
        v
    };
    // Every contender that has a ratio somewhere, in table order.
    let kinds: Vec<Kind> =
        rows.iter()
            .filter(|r| r.ratio.is_some())
            .fold(Vec::new(), |mut v, r| {
                if !v.contains(&r.kind) {
                    v.push(r.kind);
                }
                v
            });
    // Headroom above the tallest bar keeps the legend clear of the bars.
    let max = rows.iter().filter_map(|r| r.ratio).fold(1.0f64, f64::max) * 1000.0;
    let min = rows.iter().filter_map(|r| r.ratio).fold(1.0f64, f64::min) / 2.0;
    let root = SVGBackend::new(path, (1200, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "rwlog vs std RwLock (×, log scale; higher is better)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..scenarios.len() as f64, (min..max).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(scenarios.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 {
                scenarios.get(i).map_or(String::new(), |s| s.to_string())
            } else {
                String::new()
            }
        })
        .y_desc("× std RwLock")
        .draw()?;
    let width = 0.8 / kinds.len() as f64;
    for (k, kind) in kinds.iter().enumerate() {
        let color = Palette99::pick(k).mix(0.9);
        let bars: Vec<_> = rows
            .iter()
            .filter(|r| r.kind == *kind)
            .filter_map(|r| {
                let i = scenarios.iter().position(|s| *s == r.scenario)? as f64;
                let x0 = i + 0.1 + width * k as f64;
                Some(Rectangle::new(
                    [(x0, min), (x0 + width * 0.9, r.ratio?)],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(kind.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()?;
    root.present()?;
    Ok(())
}
