//! What a check is: a named property of a kind, the facts it listens to,
//! and the result it reports.

use super::components::Components;
use super::facts::{Delivery, Facts, Removal};
use crate::check_id::CheckId;
use crate::net::Network;
use crate::report::{CheckResult, Kind, Status};
use gossip_chat::{Instant, TableSizes};

/// How many failure examples a check keeps.
pub const EXAMPLES: usize = 5;

/// What a check is told at the end of the run.
pub struct End<'a> {
    /// The facts of the run.
    pub facts: &'a Facts,
    /// The end of the run.
    pub now: Instant,
    /// Longest queue of inputs held for a paused node.
    pub max_held: usize,
}

/// One property of a run. Each hook is told one fact (after the shared
/// facts took it in); a check overrides the ones it judges.
pub trait Check {
    /// Its name.
    fn id(&self) -> CheckId;
    /// Safety or liveness.
    fn kind(&self) -> Kind;
    /// The view deadline of life `life` passed.
    fn view_deadline(&mut self, _f: &Facts, _now: Instant, _life: u32, _net: &Network) {}
    /// The detection deadline of departure `down` passed.
    fn down_deadline(&mut self, _f: &Facts, _now: Instant, _down: u32, _net: &Network) {}
    /// A node took a member out of its roster.
    fn removal(&mut self, _f: &Facts, _r: &Removal, _net: &Network) {}
    /// A chat message reached a user.
    fn delivered(&mut self, _f: &Facts, _d: &Delivery) {}
    /// The delivery deadline of message `msg` passed.
    fn delivery_deadline(&mut self, _f: &Facts, _now: Instant, _msg: u32, _net: &Network) {}
    /// One sample of the tables of the node in `slot`.
    fn tables(&mut self, _f: &Facts, _slot: u32, _t: &TableSizes) {}
    /// A convergence sample in the liveness phase.
    fn converge_sample(&mut self, _f: &Facts, _now: Instant, _net: &Network) {}
    /// The components of the honest live nodes' neighbour graph, sampled
    /// with convergence in the liveness phase and at the end of every run.
    fn overlay(&mut self, _f: &Facts, _now: Instant, _c: &Components) {}
    /// The run ends.
    fn finish(&mut self, _f: &Facts, _now: Instant) {}
    /// The verdict with its figure. A check that judged nothing says so
    /// (see [`Counter::result`]): it never reports `ok`.
    fn result(&self, end: &End) -> CheckResult;
}

/// Cases judged and failed, with a few failing examples.
#[derive(Default, Debug, Clone)]
pub struct Counter {
    /// Cases judged.
    pub judged: u64,
    /// Cases that failed.
    pub failed: u64,
    /// The first few failures.
    pub examples: Vec<String>,
}

impl Counter {
    /// One case judged, held.
    pub fn pass(&mut self) {
        self.judged += 1;
    }

    /// One case judged, failed.
    pub fn fail(&mut self, example: impl FnOnce() -> String) {
        self.judged += 1;
        self.failed += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(example());
        }
    }

    /// Judges one case: `ok`, or fails with `example`.
    pub fn judge(&mut self, ok: bool, example: impl FnOnce() -> String) {
        if ok {
            self.pass();
        } else {
            self.fail(example);
        }
    }

    /// The result of check `c` with `figure`: failed if any case failed,
    /// `n/a` (with `why_none` as its figure) if it judged nothing, else ok.
    pub fn result(&self, c: &dyn Check, figure: String, why_none: &str) -> CheckResult {
        let (status, figure) = if self.failed > 0 {
            (Status::Fail, figure)
        } else if self.judged == 0 {
            (Status::Skip, why_none.to_string())
        } else {
            (Status::Pass, figure)
        };
        CheckResult {
            name: c.id().name().to_string(),
            kind: c.kind(),
            status,
            figure,
            judged: self.judged,
            failed: self.failed,
            examples: self.examples.clone(),
        }
    }
}
