//! Drawing a run's [`Series`] as one SVG: stacked panels on a shared
//! virtual-time axis (live nodes, distinct membership views, chats sent
//! and delivered, delivery latency, bytes by message kind), with the fault
//! schedule marked as labelled vertical lines.

use crate::series::{Point, Series};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

const WIDTH: u32 = 1000;
const PANEL_HEIGHT: u32 = 190;
/// Message kinds drawn in the bytes panel, the busiest first.
const MAX_KINDS_DRAWN: usize = 8;

/// One line of a panel: its name, colour and one value per point.
struct Line {
    name: String,
    colour: RGBColor,
    values: Vec<Option<f64>>,
}

/// The SVG text of `s`.
pub fn svg(s: &Series) -> Result<String, String> {
    let mut out = String::new();
    let panels = panels(s);
    let height = PANEL_HEIGHT * panels.len() as u32 + 40;
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(&s.title, ("sans-serif", 20))
            .map_err(|e| e.to_string())?;
        let areas = root.split_evenly((panels.len(), 1));
        for (i, ((title, unit, lines), area)) in panels.iter().zip(areas.iter()).enumerate() {
            panel(s, area, title, unit, lines, i == 0, i + 1 == panels.len())
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

type Panel = (&'static str, &'static str, Vec<Line>);

/// The panels of `s`: title, unit and lines.
fn panels(s: &Series) -> Vec<Panel> {
    let line = |name: &str, colour: RGBColor, f: &dyn Fn(&Point) -> Option<f64>| Line {
        name: name.to_string(),
        colour,
        values: s.points.iter().map(f).collect(),
    };
    // Rates over the last second (or the last interval, if longer), so
    // that periodic traffic draws as a level rather than as a comb.
    let every = s.every_ms.max(1);
    let window = (1000 / every).max(1) as usize;
    let rate = |name: &str, colour: RGBColor, f: &dyn Fn(&Point) -> u64| {
        let counts: Vec<u64> = s.points.iter().map(f).collect();
        let values = (0..counts.len())
            .map(|i| {
                let from = (i + 1).saturating_sub(window);
                let n = (i + 1 - from) as f64;
                Some(counts[from..=i].iter().sum::<u64>() as f64 * 1000.0 / (n * every as f64))
            })
            .collect();
        Line {
            name: name.to_string(),
            colour,
            values,
        }
    };
    // Busiest kinds first, by their total bytes.
    let mut kinds: Vec<(usize, u64)> = (0..s.kinds.len())
        .map(|k| {
            let total = s.points.iter().filter_map(|p| p.bytes.get(k)).sum();
            (k, total)
        })
        .collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let bytes: Vec<Line> = kinds
        .iter()
        .take(MAX_KINDS_DRAWN)
        .enumerate()
        .map(|(i, &(k, _))| {
            rate(s.kinds[k], palette(i), &|p| {
                p.bytes.get(k).copied().unwrap_or(0)
            })
        })
        .collect();
    vec![
        (
            "Live nodes",
            "nodes",
            vec![line("live", BLUE, &|p| Some(p.live.into()))],
        ),
        (
            "Distinct membership views among live nodes",
            "views",
            vec![line("views", RED, &|p| Some(p.views.into()))],
        ),
        (
            "Chats per second (over the last second)",
            "per s",
            vec![
                rate("sent", BLUE, &|p| p.chats_sent),
                rate("delivered", GREEN, &|p| p.deliveries),
            ],
        ),
        (
            "Delivery latency",
            "ms",
            vec![
                line("p50", BLUE, &|p| p.p50_ms.map(f64::from)),
                line("p99", RED, &|p| p.p99_ms.map(f64::from)),
            ],
        ),
        (
            "Bytes per second by message kind (over the last second)",
            "B/s",
            bytes,
        ),
    ]
}

fn palette(i: usize) -> RGBColor {
    const COLOURS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLOURS[i % COLOURS.len()]
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// One panel: its lines over time, the fault marks (labelled on the
/// first panel), the time axis labelled on the last. Latency and bytes
/// span orders of magnitude and are drawn on a log scale.
fn panel(
    s: &Series,
    area: &Area,
    title: &str,
    unit: &str,
    lines: &[Line],
    label_marks: bool,
    last: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let end_s = (s.end_ms.max(1)) as f64 / 1000.0;
    let top = lines
        .iter()
        .flat_map(|l| l.values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let log = unit == "ms" || unit == "B/s";
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(6)
        .margin_right(20)
        .caption(title, ("sans-serif", 15))
        .x_label_area_size(if last { 30 } else { 14 })
        .y_label_area_size(60);
    let x_desc = if last { "virtual time (s)" } else { "" };
    if log {
        let top = (top * 2.0).max(10.0);
        let mut chart = builder.build_cartesian_2d(0.0..end_s, (1.0..top).log_scale())?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(format!("{unit} (log)"))
            .x_labels(14)
            .y_labels(5)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        draw(s, &mut chart, lines, label_marks, (1.0, top), 1.0)
    } else {
        let top = if top <= 0.0 { 1.0 } else { top * 1.15 };
        let mut chart = builder.build_cartesian_2d(0.0..end_s, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(unit)
            .x_labels(14)
            .y_labels(5)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        draw(s, &mut chart, lines, label_marks, (0.0, top), 0.0)
    }
}

/// The marks and lines of one panel whose y axis spans `span`; values are
/// drawn at least at `floor` (a log axis has no zero).
fn draw<'a, Y>(
    s: &Series,
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    lines: &[Line],
    label_marks: bool,
    span: (f64, f64),
    floor: f64,
) -> Result<(), Box<dyn std::error::Error>>
where
    Y: Ranged<ValueType = f64>,
{
    let (bottom, top) = span;
    let label_at = if floor > 0.0 { top / 1.6 } else { top * 0.98 };
    for m in &s.marks {
        let x = m.t_ms as f64 / 1000.0;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, bottom), (x, top)],
            BLACK.mix(0.5).stroke_width(1),
        )))?;
        if label_marks {
            chart.draw_series(std::iter::once(Text::new(
                format!(" {}", m.label),
                (x, label_at),
                ("sans-serif", 12).into_font().color(&BLACK),
            )))?;
        }
    }
    for l in lines {
        // A gap (no value) breaks the line.
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut runs = Vec::new();
        for (p, v) in s.points.iter().zip(&l.values) {
            match v {
                Some(v) => run.push((p.t_ms as f64 / 1000.0, v.max(floor))),
                None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                None => {}
            }
        }
        runs.push(run);
        let colour = l.colour;
        let mut first = true;
        for r in runs.into_iter().filter(|r| !r.is_empty()) {
            let drawn = chart.draw_series(LineSeries::new(r, colour.stroke_width(2)))?;
            if std::mem::take(&mut first) {
                drawn.label(l.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                });
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::svg;
    use crate::series::{Mark, Recorder};

    #[test]
    fn draws_every_panel_and_mark() {
        let mark = Mark {
            t_ms: 400,
            label: "partition halves".into(),
        };
        let mut r = Recorder::new("demo seed 0".into(), 1000, vec![mark]);
        for i in 0..10 {
            r.sent("ping", 40);
            if i % 2 == 0 {
                r.delivered(Some(7));
            }
            r.sample(3, &[vec![0, 1, 2]]);
        }
        let text = svg(&r.finish()).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..40]);
        for label in ["partition halves", "Live nodes", "Delivery latency", "ping"] {
            assert!(text.contains(label), "{label} missing");
        }
    }

    #[test]
    fn an_empty_series_still_draws() {
        let text = svg(&Recorder::new("empty".into(), 0, Vec::new()).finish()).unwrap();
        assert!(text.starts_with("<svg"));
    }
}
