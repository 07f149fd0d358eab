//! `join`: a node that joins later (or restarts) knows every live member
//! soon after it starts.

use super::check::{Check, Counter, End};
use super::discovery::judge_view;
use super::facts::Facts;
use super::Start;
use crate::check_id::CheckId;
use crate::net::Network;
use crate::report::{CheckResult, Kind, Pct};
use gossip_chat::Instant;

/// Joiners' views, judged at their view deadline.
#[derive(Default)]
pub struct Join {
    /// Views judged.
    pub counter: Counter,
}

impl Check for Join {
    fn id(&self) -> CheckId {
        CheckId::Join
    }
    fn kind(&self) -> Kind {
        Kind::Eventually
    }
    fn view_deadline(&mut self, f: &Facts, now: Instant, l: u32, net: &Network) {
        let within = f.spec.join_within;
        judge_view(&mut self.counter, f, now, l, net, Start::Joiner, within);
    }
    fn result(&self, end: &End) -> CheckResult {
        let figure = format!(
            "{} of {} joiners knew all live {} (limit {})",
            self.counter.judged - self.counter.failed,
            self.counter.judged,
            Pct::of(&end.facts.join_ms).short(),
            end.facts.spec.join_within
        );
        self.counter.result(
            self,
            figure,
            "no joiner was up and undisturbed until its view deadline",
        )
    }
}
