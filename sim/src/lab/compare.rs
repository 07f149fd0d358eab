//! The side-by-side report: one scenario and seed, simulated and real, in
//! two columns with the ratio real / simulated.

use super::LabReport;
use crate::report::Report;
use std::fmt::Write as _;

/// One compared figure.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    /// What it is.
    pub figure: &'static str,
    /// In the simulator, if measured.
    pub sim: Option<f64>,
    /// In the real run, if measured.
    pub real: Option<f64>,
    /// Whether a real run measures it at all (`false`: `real` is never
    /// set, and the table says "not measured" rather than `n/a`, which
    /// means that the run had nothing to measure).
    pub real_measured: bool,
    /// Its unit.
    pub unit: &'static str,
    /// Decimals shown in the table.
    #[serde(skip)]
    pub decimals: usize,
}

impl Row {
    /// A figure both runs measure.
    fn both(figure: &'static str, sim: Option<f64>, real: Option<f64>, unit: &'static str) -> Row {
        Row {
            figure,
            sim,
            real,
            real_measured: true,
            unit,
            decimals: 0,
        }
    }

    /// Real over simulated, when both are measured and the simulated one
    /// is not zero.
    pub fn ratio(&self) -> Option<f64> {
        match (self.sim, self.real) {
            (Some(s), Some(r)) if s > 0.0 && self.real_measured => Some(r / s),
            _ => None,
        }
    }
}

/// A figure the simulator measures and a real run may not (`None` in its
/// report), shown with `decimals`.
fn sim_only(
    figure: &'static str,
    sim: Option<f64>,
    real: Option<f64>,
    unit: &'static str,
    decimals: usize,
) -> Row {
    Row {
        figure,
        sim,
        real,
        real_measured: real.is_some(),
        unit,
        decimals,
    }
}

/// How long membership took to converge after the faults ended, from the
/// convergence check's figure (`membership converged 1.2s after ...`).
pub fn convergence_ms(r: &Report) -> Option<f64> {
    let figure = &r.check("convergence")?.figure;
    let rest = figure.split("converged ").nth(1)?;
    let d = rest.split_whitespace().next()?;
    crate::scenario::parse_duration(d)
        .ok()
        .map(|d| d.as_millis() as f64)
}

/// The compared figures.
pub fn rows(sim: &Report, real: &LabReport) -> Vec<Row> {
    let (s, r) = (&sim.figures, &real.report.figures);
    let pct = |n: usize, v: u32| (n > 0).then_some(f64::from(v));
    vec![
        Row::both(
            "detection p50",
            pct(s.detection_ms.n, s.detection_ms.p50),
            pct(r.detection_ms.n, r.detection_ms.p50),
            "ms",
        ),
        Row::both(
            "detection p99",
            pct(s.detection_ms.n, s.detection_ms.p99),
            pct(r.detection_ms.n, r.detection_ms.p99),
            "ms",
        ),
        Row::both(
            "delivery p50",
            pct(s.delivery_ms.n, s.delivery_ms.p50),
            pct(r.delivery_ms.n, r.delivery_ms.p50),
            "ms",
        ),
        Row::both(
            "delivery p99",
            pct(s.delivery_ms.n, s.delivery_ms.p99),
            pct(r.delivery_ms.n, r.delivery_ms.p99),
            "ms",
        ),
        Row::both(
            "convergence",
            convergence_ms(sim),
            convergence_ms(&real.report),
            "ms",
        ),
        Row::both(
            "bytes per node",
            Some(s.bytes_per_node_s),
            Some(real.wire.payload_bytes_per_node_s),
            "B/s",
        ),
        sim_only(
            "msgs per node",
            s.msgs_per_node_s,
            r.msgs_per_node_s,
            "msg/s",
            1,
        ),
        sim_only(
            "copies/delivery",
            s.copies_per_delivery,
            r.copies_per_delivery,
            "",
            2,
        ),
    ]
}

/// The two columns as a table.
pub fn render(sim: &Report, real: &LabReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "side by side: {} seed {}, {} nodes ({} slots)",
        sim.scenario, sim.seed, sim.nodes, sim.slots
    );
    let _ = writeln!(
        s,
        "  {:<16} {:>12} {:>12} {:>10}",
        "figure", "simulated", "real", "real/sim"
    );
    let show = |v: Option<f64>, row: &Row| {
        v.map_or("n/a".into(), |v| {
            format!("{v:.*} {}", row.decimals, row.unit)
                .trim_end()
                .to_string()
        })
    };
    let rows = rows(sim, real);
    for row in &rows {
        let real_cell = if row.real_measured {
            show(row.real, row)
        } else {
            "not measured".into()
        };
        let _ = writeln!(
            s,
            "  {:<16} {:>12} {:>12} {:>10}",
            row.figure,
            show(row.sim, row),
            real_cell,
            row.ratio().map_or("n/a".into(), |r| format!("{r:.2}"))
        );
    }
    if rows.iter().any(|r| !r.real_measured) {
        let _ = writeln!(
            s,
            "  not measured: a real run counts bytes on the wire, not the messages the nodes send"
        );
    }
    let verdict = |p: bool| if p { "PASS" } else { "FAIL" };
    let _ = writeln!(
        s,
        "  {:<16} {:>12} {:>12}",
        "checks",
        verdict(sim.passed),
        verdict(real.report.passed)
    );
    let _ = writeln!(
        s,
        "  {:<16} {:>12} {:>12}",
        "wall time",
        sim.wall_ms
            .map_or("n/a".into(), |w| format!("{:.1} s", w as f64 / 1000.0)),
        real.report
            .wall_ms
            .map_or("n/a".into(), |w| format!("{:.1} s", w as f64 / 1000.0))
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::Wire;

    fn real() -> LabReport {
        LabReport {
            report: crate::report::sample(false),
            notes: Vec::new(),
            log: Vec::new(),
            wire: Wire {
                frame_bytes_per_node_s: 1200.0,
                packets_per_node_s: 10.0,
                payload_bytes_per_node_s: 990.0,
            },
        }
    }

    #[test]
    fn what_a_real_run_does_not_measure_has_no_ratio_and_says_so() {
        let sim = crate::report::sample(true);
        let real = real();
        let rows = rows(&sim, &real);
        let row = |name: &str| rows.iter().find(|r| r.figure == name).expect(name);
        let copies = row("copies/delivery");
        assert_eq!((copies.sim, copies.real), (Some(1.5), None));
        assert!(!copies.real_measured && copies.ratio().is_none());
        assert!(row("msgs per node").ratio().is_none());
        let bytes = row("bytes per node");
        assert!(bytes.real_measured);
        assert_eq!(bytes.ratio(), Some(990.0 / 900.0));
        let table = render(&sim, &real);
        let line = |name: &str| {
            table
                .lines()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap_or_else(|| panic!("{name} in {table}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            line("copies/delivery"),
            "copies/delivery 1.50 not measured n/a"
        );
        assert_eq!(
            line("msgs per node"),
            "msgs per node 12.5 msg/s not measured n/a"
        );
        assert_eq!(
            line("bytes per node"),
            "bytes per node 900 B/s 990 B/s 1.10"
        );
        assert!(
            table.contains("  not measured: a real run counts bytes"),
            "{table}"
        );
        // The simulator against itself measures everything: no such line.
        let both = LabReport {
            report: crate::report::sample(true),
            ..real
        };
        assert!(!render(&sim, &both).contains("not measured"));
    }
}
