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
    /// Its unit.
    pub unit: &'static str,
}

impl Row {
    /// Real over simulated, when both are measured and the simulated one
    /// is not zero.
    pub fn ratio(&self) -> Option<f64> {
        match (self.sim, self.real) {
            (Some(s), Some(r)) if s > 0.0 => Some(r / s),
            _ => None,
        }
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
        Row {
            figure: "detection p50",
            sim: pct(s.detection_ms.n, s.detection_ms.p50),
            real: pct(r.detection_ms.n, r.detection_ms.p50),
            unit: "ms",
        },
        Row {
            figure: "detection p99",
            sim: pct(s.detection_ms.n, s.detection_ms.p99),
            real: pct(r.detection_ms.n, r.detection_ms.p99),
            unit: "ms",
        },
        Row {
            figure: "delivery p50",
            sim: pct(s.delivery_ms.n, s.delivery_ms.p50),
            real: pct(r.delivery_ms.n, r.delivery_ms.p50),
            unit: "ms",
        },
        Row {
            figure: "delivery p99",
            sim: pct(s.delivery_ms.n, s.delivery_ms.p99),
            real: pct(r.delivery_ms.n, r.delivery_ms.p99),
            unit: "ms",
        },
        Row {
            figure: "convergence",
            sim: convergence_ms(sim),
            real: convergence_ms(&real.report),
            unit: "ms",
        },
        Row {
            figure: "bytes per node",
            sim: Some(s.bytes_per_node_s),
            real: Some(real.wire.payload_bytes_per_node_s),
            unit: "B/s",
        },
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
    let show = |v: Option<f64>, unit: &str| v.map_or("n/a".into(), |v| format!("{v:.0} {unit}"));
    for row in rows(sim, real) {
        let _ = writeln!(
            s,
            "  {:<16} {:>12} {:>12} {:>10}",
            row.figure,
            show(row.sim, row.unit),
            show(row.real, row.unit),
            row.ratio().map_or("n/a".into(), |r| format!("{r:.2}"))
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
