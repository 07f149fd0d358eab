//! `convergence`: after the faults end, every live node lists exactly the
//! live nodes within the deadline, and keeps doing so to the end of the
//! run.
//!
//! Once the views first agree, every later sample must agree too, unless
//! something views take time to follow happened since they last agreed
//! and is recent: a node started, stopped, paused, resumed or turned
//! hostile less than `converge_within` ago, or a network fault
//! (partition, clog, spike, loss burst, link fault) is in force or ended
//! less than `converge_within` ago.

use super::check::{Check, Counter, End, EXAMPLES};
use super::facts::{Facts, Life};
use crate::check_id::CheckId;
use crate::net::Network;
use crate::report::{CheckResult, Kind};
use gossip_chat::Instant;

/// The membership in the liveness phase, sampled to the end of the run.
#[derive(Default)]
pub struct Convergence {
    /// When every live view first agreed.
    converged_at: Option<Instant>,
    /// Whose view was off at the end, and how (if it never agreed).
    examples: Vec<String>,
    /// Samples after the first agreement, outside the changes that excuse
    /// a disagreement: each judged, failed if some view was off.
    after: Counter,
    /// The previous judged sample disagreed (an example is kept for the
    /// first sample of each stretch of disagreement only).
    off: bool,
    /// When the views first disagreed again.
    diverged_at: Option<Instant>,
    /// The last sample at which the views agreed.
    agreed_at: Option<Instant>,
}

impl Convergence {
    /// Whether the liveness phase converged (or there is none).
    pub fn converged(&self, f: &Facts) -> bool {
        f.liveness_from.is_none() || self.converged_at.is_some()
    }
}

/// Whether the view of `life` (an honest, up life) is exactly the honest
/// live nodes.
fn agrees(f: &Facts, life: &Life) -> bool {
    let n = f.live_n;
    let listed_hostile = f.hostile.iter().filter(|&h| life.roster.get(h)).count() as u32;
    life.known_live + 1 == n && life.roster_n - listed_hostile + 1 == n
}

/// The honest up lives, in slot order.
fn judged_lives(f: &Facts) -> impl Iterator<Item = &Life> {
    f.current
        .iter()
        .flatten()
        .map(|&l| &f.lives[l as usize])
        .filter(|life| life.up() && !f.is_hostile(life.slot))
}

/// How the view of `life` is off: `n3 lists down nodes [..] and misses up
/// nodes [..]`.
fn how_off(f: &Facts, life: &Life) -> String {
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
    format!(
        "n{} lists down nodes [{}] and misses up nodes [{}]",
        life.slot,
        extra.join(" "),
        missing.join(" ")
    )
}

impl Check for Convergence {
    fn id(&self) -> CheckId {
        CheckId::Convergence
    }
    fn kind(&self) -> Kind {
        Kind::Eventually
    }
    /// Every honest live node lists exactly the honest live nodes.
    fn converge_sample(&mut self, f: &Facts, now: Instant, net: &Network) {
        if f.liveness_from.is_none() {
            return;
        }
        let off = judged_lives(f).find(|life| !agrees(f, life));
        let Some(agreed) = self.agreed_at else {
            if off.is_none() {
                self.converged_at = Some(now);
                self.agreed_at = Some(now);
            }
            return;
        };
        if off.is_some() {
            let recent = Instant::from_millis(
                now.as_millis()
                    .saturating_sub(f.spec.converge_within.as_millis()),
            );
            let changed = f.changed_at.filter(|&c| c > agreed);
            let net_changed = net.disturbed(agreed, now);
            if changed.is_some_and(|c| c >= recent) || (net_changed && net.disturbed(recent, now)) {
                // Views are still following a change.
                self.off = false;
                return;
            }
        }
        match off {
            None => {
                self.after.pass();
                self.agreed_at = Some(now);
                self.off = false;
            }
            Some(life) => {
                self.after.judged += 1;
                self.after.failed += 1;
                self.diverged_at.get_or_insert(now);
                if !self.off && self.after.examples.len() < EXAMPLES {
                    let how = how_off(f, life);
                    self.after.examples.push(format!("at {now}: {how}"));
                }
                self.off = true;
            }
        }
    }
    fn finish(&mut self, f: &Facts, _now: Instant) {
        if f.liveness_from.is_none() || self.converged_at.is_some() {
            return;
        }
        // Say whose view is off, and how.
        for life in judged_lives(f) {
            if self.examples.len() >= EXAMPLES {
                break;
            }
            if !agrees(f, life) {
                self.examples.push(how_off(f, life));
            }
        }
    }
    fn result(&self, end: &End) -> CheckResult {
        let limit = end.facts.spec.converge_within;
        let mut c = Counter::default();
        let figure = match (end.facts.liveness_from, self.converged_at) {
            (None, _) => String::new(),
            (Some(from), Some(at)) => {
                c.judge(at - from <= limit, || {
                    format!("converged only {} after faults ended", at - from)
                });
                let a = &self.after;
                c.judged += a.judged;
                c.failed += a.failed;
                c.examples.extend(a.examples.iter().cloned());
                c.examples.truncate(EXAMPLES);
                let then = match self.diverged_at {
                    None => format!("held in {} later samples", a.judged),
                    Some(t) => format!(
                        "disagreed again in {} of {} later samples, first at {t}",
                        a.failed, a.judged
                    ),
                };
                format!(
                    "membership converged {} after faults ended (limit {limit}); {then}",
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
