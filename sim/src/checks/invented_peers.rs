//! `invented_peers`: addresses a hostile node invented are neither kept
//! for good nor dialled without end, and no member an honest node lists is
//! evicted behind its user's back.

use super::check::{Check, Counter, End};
use super::facts::Facts;
use crate::check_id::CheckId;
use crate::report::{CheckResult, Kind};
use gossip_chat::Instant;
use std::collections::BTreeMap;

/// Dials to invented addresses and roster samples, each judged.
#[derive(Default)]
pub struct InventedPeers {
    /// Dials and roster samples judged.
    pub counter: Counter,
    /// Whether invented addresses were injected.
    injected: bool,
    /// Per (life, invented address): listed in its roster now, and dials
    /// made while listed.
    ghosts: BTreeMap<(u32, u32), (bool, u32)>,
    /// Per life: dials to invented addresses that were not listed.
    probes: BTreeMap<u32, u32>,
    /// Dials by honest nodes to invented addresses.
    pub dials: u64,
}

impl InventedPeers {
    /// Invented addresses went out in a bogus peer list.
    pub fn injected(&mut self) {
        self.injected = true;
    }

    /// Invented address `ghost` entered (`on`) or left the roster of the
    /// honest life `l`.
    pub fn listed(&mut self, l: u32, ghost: u32, on: bool) {
        let g = self.ghosts.entry((l, ghost)).or_insert((false, 0));
        if on && !g.0 {
            // Listed afresh (its entry was given up and evicted, then
            // announced again): the core counts failed dials anew.
            g.1 = 0;
        }
        g.0 = on;
    }

    /// The honest life `l` in `slot` dialled invented address `ghost`.
    /// While the address is in its roster, the core gives it up after
    /// `max_dial_failures` failed dials in a row; after that it may only
    /// probe it as a dead member, one probe per `reconnect_interval` over
    /// all dead members.
    pub fn dial(&mut self, f: &Facts, now: Instant, slot: u32, l: u32, ghost: u32) {
        self.dials += 1;
        let g = self.ghosts.entry((l, ghost)).or_insert((false, 0));
        if g.0 {
            let max = f.cfg.max_dial_failures;
            g.1 += 1;
            self.counter.judge(g.1 <= max, || {
                format!(
                    "n{slot} dialled an invented address more than {max} times while listing it"
                )
            });
            return;
        }
        let p = self.probes.entry(l).or_insert(0);
        *p += 1;
        let up = now - f.lives[l as usize].start;
        let interval = f.cfg.reconnect_interval;
        let limit = 1 + up.as_millis() / interval.as_millis().max(1);
        let n = *p;
        self.counter.judge(n as u64 <= limit, || {
            format!(
                "n{slot} probed invented addresses {n} times in {up} (limit one per {interval})"
            )
        });
    }

    /// A sample of the node in `slot` found the members in `lost` (listed
    /// as up by its events) no longer in its table.
    pub fn roster_sample(&mut self, slot: u32, lost: &[u32]) {
        self.counter.judge(lost.is_empty(), || {
            let l: Vec<String> = lost.iter().map(|s| format!("n{s}")).collect();
            format!(
                "n{slot} lost {} from its table without a removal",
                l.join(" ")
            )
        });
    }

    /// Invented addresses listed by honest lives that are up.
    pub fn listed_now(&self, f: &Facts) -> u64 {
        self.ghosts
            .iter()
            .filter(|((l, _), g)| g.0 && f.lives[*l as usize].up())
            .count() as u64
    }

    /// Most dials by one honest life to one invented address while listed,
    /// and most reconnect probes by one honest life.
    pub fn peaks(&self) -> (u32, u32) {
        (
            self.ghosts.values().map(|g| g.1).max().unwrap_or(0),
            self.probes.values().copied().max().unwrap_or(0),
        )
    }
}

impl Check for InventedPeers {
    fn id(&self) -> CheckId {
        CheckId::InventedPeers
    }
    fn kind(&self) -> Kind {
        Kind::Always
    }
    fn result(&self, end: &End) -> CheckResult {
        let (listed_max, probes_max) = self.peaks();
        let figure = if self.injected {
            format!(
                "{} dials to invented addresses; at most {} per address while listed (limit {}), {} reconnect probes per node; {} cases judged",
                self.dials,
                listed_max,
                end.facts.cfg.max_dial_failures,
                probes_max,
                self.counter.judged
            )
        } else {
            format!(
                "no invented addresses injected; {} roster samples",
                self.counter.judged
            )
        };
        // Roster samples are judged under any attack: n/a only when there
        // was nothing to judge.
        let none = if self.injected {
            "invented addresses injected, but no honest node dialled one and no roster was sampled"
        } else {
            "no invented addresses injected"
        };
        self.counter.result(self, figure, none)
    }
}
