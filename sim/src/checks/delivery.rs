//! `delivery`: every message reaches every node connected to its sender
//! within the deadline.

use super::check::{Check, Counter, End};
use super::facts::{Facts, Life};
use super::{ratio, show, Start};
use crate::check_id::CheckId;
use crate::net::Network;
use crate::report::{CheckResult, Kind, Pct};
use gossip_chat::Instant;

/// Deliveries owed, judged at each message's deadline.
#[derive(Default)]
pub struct Delivery {
    /// (message, receiver) pairs judged.
    pub counter: Counter,
}

impl Check for Delivery {
    fn id(&self) -> CheckId {
        CheckId::Delivery
    }
    fn kind(&self) -> Kind {
        Kind::Eventually
    }
    /// Owed by every honest life up from the join grace before the send to
    /// the deadline, that no cut or loss burst kept from the sender, when
    /// neither end was slow in that time.
    fn delivery_deadline(&mut self, f: &Facts, now: Instant, m: u32, net: &Network) {
        let msg = &f.msgs[m as usize];
        let from = Instant::from_millis(
            msg.sent
                .as_millis()
                .saturating_sub(f.spec.join_grace.as_millis()),
        );
        let sender = &f.lives[msg.sender as usize];
        if !sender.up_over(from, now) || f.is_hostile(sender.slot) {
            return;
        }
        let (sslot, sjoined) = (sender.slot as usize, sender.start_kind == Start::Joiner);
        // A joiner that started while the network was cut may have joined
        // through a node on the other side: not judged until it had a
        // clean start.
        let cut_join =
            |life: &Life| life.start_kind == Start::Joiner && net.cut_during(life.start, now);
        if sjoined && cut_join(sender) {
            return;
        }
        // A slow node handles everything late: no deadline is owed to or
        // from it while it is slow (`eventual_delivery` still judges it).
        if sender.slow_during(from, now) {
            return;
        }
        for (l, life) in f.lives.iter().enumerate() {
            if l as u32 == msg.sender || !life.up_over(from, now) || f.is_hostile(life.slot) {
                continue;
            }
            let lslot = life.slot as usize;
            if net.separated(sslot, lslot, from, now)
                || net.lossy_burst(sslot, lslot, from, now)
                || cut_join(life)
                || life.slow_during(from, now)
            {
                continue;
            }
            let (slot, id) = (life.slot, msg.id);
            self.counter.judge(msg.delivered.get(l), || {
                format!(
                    "n{slot} lacks {} {} after it was sent",
                    show(id),
                    now - msg.sent
                )
            });
        }
    }
    fn result(&self, end: &End) -> CheckResult {
        let c = &self.counter;
        let figure = format!(
            "{} of {} owed deliveries within {} ({}); latency {}",
            c.judged - c.failed,
            c.judged,
            end.facts.spec.deliver_within,
            ratio(c.judged - c.failed, c.judged),
            Pct::of(&end.facts.delivery_ms).short()
        );
        self.counter.result(self, figure, "no delivery was owed")
    }
}
