//! `eventual_delivery`: at the end of the liveness phase every live node
//! holds every message that got out.

use super::check::{Check, Counter, End};
use super::facts::Facts;
use super::{ratio, show};
use crate::check_id::CheckId;
use crate::report::{CheckResult, Kind};
use gossip_chat::Instant;

/// (message, node) pairs judged at the end of a run with a liveness phase.
#[derive(Default)]
pub struct EventualDelivery {
    /// Pairs judged.
    pub counter: Counter,
    /// Messages some owed node never got.
    pub missing: u64,
    /// Of those, the ones no live node still holds in its history: evicted
    /// (by `history_max` or `history_max_age`) before every node had them,
    /// so no repair can bring them any more.
    pub evicted: u64,
}

impl Check for EventualDelivery {
    fn id(&self) -> CheckId {
        CheckId::EventualDelivery
    }
    fn kind(&self) -> Kind {
        Kind::Eventually
    }
    /// Every honest node up at the end holds every message that got out
    /// (its sender is still up, or someone else has it) and was sent after
    /// the node had been up for the join grace.
    fn finish(&mut self, f: &Facts, _now: Instant) {
        if f.liveness_from.is_none() {
            return;
        }
        let grace = f.spec.join_grace;
        for (m, msg) in f.msgs.iter().enumerate() {
            let sender = &f.lives[msg.sender as usize];
            let got_out = sender.end.is_none() || msg.copies >= 2;
            if !got_out || f.is_hostile(sender.slot) {
                continue;
            }
            let mut missing = false;
            for &l in f.current.iter().flatten() {
                let life = &f.lives[l as usize];
                if !life.up()
                    || life.start + grace > msg.sent
                    || l == msg.sender
                    || f.is_hostile(life.slot)
                {
                    continue;
                }
                let (slot, id, sent) = (life.slot, msg.id, msg.sent);
                let held = msg.delivered.get(l as usize);
                missing |= !held;
                self.counter.judge(held, || {
                    format!("n{slot} never got {} (sent at {sent})", show(id))
                });
            }
            if missing {
                self.missing += 1;
                if f.held_nowhere.get(m) {
                    self.evicted += 1;
                }
            }
        }
    }
    fn result(&self, end: &End) -> CheckResult {
        let c = &self.counter;
        let mut figure = format!(
            "{} of {} messages held at the end ({})",
            c.judged - c.failed,
            c.judged,
            ratio(c.judged - c.failed, c.judged)
        );
        if self.missing > 0 {
            figure.push_str(&format!(
                "; {} of {} missing messages were evicted from every history before all nodes had them",
                self.evicted, self.missing
            ));
        }
        let none = if end.facts.liveness_from.is_none() {
            "no liveness phase"
        } else {
            "no message was owed at the end"
        };
        c.result(self, figure, none)
    }
}
