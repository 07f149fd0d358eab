//! `discovery`: every initial node knows every live member soon after the
//! last initial node started.

use super::check::{Check, Counter, End};
use super::facts::Facts;
use super::Start;
use crate::check_id::CheckId;
use crate::net::Network;
use crate::report::{CheckResult, Kind, Pct};
use gossip_chat::{Duration, Instant};

/// Initial nodes' views, judged at their view deadline.
#[derive(Default)]
pub struct Discovery {
    /// Views judged.
    pub counter: Counter,
}

/// Judges the view of life `l` if it is of `kind` and owed one: up over
/// the whole wait, honest, and no partition in between.
pub(super) fn judge_view(
    counter: &mut Counter,
    f: &Facts,
    now: Instant,
    l: u32,
    net: &Network,
    kind: Start,
    within: Duration,
) {
    let life = &f.lives[l as usize];
    let Some(from) = life.view_from else { return };
    if life.start_kind != kind
        || !life.up_over(from, now)
        || net.disturbed(from, now)
        || f.is_hostile(life.slot)
    {
        return;
    }
    let ok = life.view_at.is_some_and(|t| t - from <= within);
    let (slot, k, n) = (life.slot, life.known_live, f.live_n - 1);
    counter.judge(ok, || {
        format!("n{slot} knew {k} of {n} live members {within} after {from}")
    });
}

impl Check for Discovery {
    fn id(&self) -> CheckId {
        CheckId::Discovery
    }
    fn kind(&self) -> Kind {
        Kind::Eventually
    }
    fn view_deadline(&mut self, f: &Facts, now: Instant, l: u32, net: &Network) {
        let within = f.spec.discovery_within;
        judge_view(&mut self.counter, f, now, l, net, Start::Initial, within);
    }
    fn result(&self, end: &End) -> CheckResult {
        let within = end.facts.spec.discovery_within;
        let figure = format!(
            "{} of {} initial nodes had a full view {} after the last start (limit {within})",
            self.counter.judged - self.counter.failed,
            self.counter.judged,
            Pct::of(&end.facts.discovery_ms).short(),
        );
        self.counter.result(
            self,
            figure,
            "no initial node was up and undisturbed until its view deadline",
        )
    }
}
