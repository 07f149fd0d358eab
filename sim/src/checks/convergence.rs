//! `convergence`: after the faults end, every live node lists exactly the
//! live nodes within the deadline.

use super::check::{Check, Counter, End, EXAMPLES};
use super::facts::Facts;
use crate::check_id::CheckId;
use crate::report::{CheckResult, Kind};
use gossip_chat::Instant;

/// The membership in the liveness phase, sampled until it agrees.
#[derive(Default)]
pub struct Convergence {
    /// When every live view first agreed.
    converged_at: Option<Instant>,
    /// Whose view was off at the end, and how.
    examples: Vec<String>,
}

impl Convergence {
    /// Whether the liveness phase converged (or there is none).
    pub fn converged(&self, f: &Facts) -> bool {
        f.liveness_from.is_none() || self.converged_at.is_some()
    }
}

impl Check for Convergence {
    fn id(&self) -> CheckId {
        CheckId::Convergence
    }
    fn kind(&self) -> Kind {
        Kind::Eventually
    }
    /// Every honest live node lists exactly the honest live nodes.
    fn converge_sample(&mut self, f: &Facts, now: Instant) {
        if self.converged_at.is_some() || f.liveness_from.is_none() {
            return;
        }
        let n = f.live_n;
        let all = f.current.iter().flatten().all(|&l| {
            let life = &f.lives[l as usize];
            let listed_hostile = f.hostile.iter().filter(|&h| life.roster.get(h)).count() as u32;
            !life.up()
                || f.is_hostile(life.slot)
                || (life.known_live + 1 == n && life.roster_n - listed_hostile + 1 == n)
        });
        if all {
            self.converged_at = Some(now);
        }
    }
    fn finish(&mut self, f: &Facts, _now: Instant) {
        if f.liveness_from.is_none() || self.converged_at.is_some() {
            return;
        }
        // Say whose view is off, and how.
        for &l in f.current.iter().flatten() {
            let life = &f.lives[l as usize];
            if !life.up() || f.is_hostile(life.slot) || self.examples.len() >= EXAMPLES {
                continue;
            }
            let extra: Vec<String> = life
                .roster
                .iter()
                .filter(|&s| !f.live.get(s) && !f.hostile.get(s))
                .map(|s| format!("n{s}"))
                .collect();
            let missing: Vec<String> = f
                .live
                .iter()
                .filter(|&s| s != life.slot as usize && !life.roster.get(s))
                .map(|s| format!("n{s}"))
                .collect();
            if !extra.is_empty() || !missing.is_empty() {
                self.examples.push(format!(
                    "n{} lists down nodes [{}] and misses up nodes [{}]",
                    life.slot,
                    extra.join(" "),
                    missing.join(" ")
                ));
            }
        }
    }
    fn result(&self, end: &End) -> CheckResult {
        let limit = end.facts.spec.converge_within;
        let mut c = Counter::default();
        let figure = match (end.facts.liveness_from, self.converged_at) {
            (None, _) => String::new(),
            (Some(from), Some(at)) => {
                c.judge(at - from <= limit, String::new);
                c.examples.clear();
                format!(
                    "membership converged {} after faults ended (limit {limit})",
                    at - from
                )
            }
            (Some(from), None) => {
                c.fail(String::new);
                c.examples = self.examples.clone();
                format!(
                    "membership not converged {} after faults ended",
                    end.now - from
                )
            }
        };
        c.result(self, figure, "no liveness phase")
    }
}
