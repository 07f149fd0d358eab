//! `detection`: a node that crashed, was killed or paused leaves every live
//! roster within the deadline.

use super::check::{Check, Counter, End};
use super::facts::Facts;
use super::Gone;
use crate::check_id::CheckId;
use crate::net::Network;
use crate::report::{CheckResult, Kind, Pct};
use gossip_chat::Instant;

/// Departures, judged at their detection deadline.
#[derive(Default)]
pub struct Detection {
    /// Departures judged.
    pub counter: Counter,
}

impl Check for Detection {
    fn id(&self) -> CheckId {
        CheckId::Detection
    }
    fn kind(&self) -> Kind {
        Kind::Eventually
    }
    /// Observers that a partition or clog cut off from the departed node
    /// in the meantime are not judged; a departed node that came back
    /// before the deadline (a pause that ended) is not judged at all.
    fn down_deadline(&mut self, f: &Facts, now: Instant, d: u32, net: &Network) {
        let down = &f.downs[d as usize];
        if !down.open {
            return;
        }
        let (slot, at, gone) = (down.slot, down.at, down.gone);
        let late: Vec<usize> = down
            .pending
            .iter()
            .filter(|&o| !net.separated(o, slot as usize, at, now))
            .collect();
        let within = f.spec.detect_within;
        let n = late.len();
        self.counter.judge(late.is_empty(), || {
            format!(
                "n{slot} ({gone:?} at {at}) still listed by {n} live nodes {within} later, e.g. {}",
                late.iter()
                    .take(3)
                    .map(|o| format!("n{o}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        });
    }
    fn result(&self, end: &End) -> CheckResult {
        let f = end.facts;
        let det = Pct::of(&f.detect_ms);
        let departures = f.downs.iter().filter(|d| d.gone != Gone::Leave).count();
        let figure = format!(
            "{} of {} departures judged removed in time; removed {} over {} observer samples of {departures} departures (limit {})",
            self.counter.judged - self.counter.failed,
            self.counter.judged,
            det.short(),
            det.n,
            f.spec.detect_within
        );
        let none = format!(
            "no departure judged: each came back or the run ended before its deadline ({departures} crashes, kills or pauses; {} leaves)",
            f.downs.len() - departures
        );
        self.counter.result(self, figure, &none)
    }
}
