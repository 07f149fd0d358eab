//! Driving the misbehaving nodes: starting an attack, and each hostile
//! frame it sends (the attack's choices live in `hostile.rs`), with the
//! tally of what was injected and what the honest nodes did.

use super::{describe::describe_msg, transport::Payload, Ev, World};
use crate::addr::slot_of_id;
use crate::hostile::{Attack, Injection};
use crate::random::below;
use crate::scenario::{Misbehave, Mode};
use crate::trace::TraceKind;
use gossip_chat::{wire, Instant, Message};
use std::collections::BTreeSet;
use std::sync::Arc;

impl World {
    /// Whether the node in `slot` lacks the cluster key now (a `no-key`
    /// attack runs on it).
    pub(super) fn lacks_key(&self, slot: u32) -> bool {
        self.attacks
            .get(&slot)
            .is_some_and(|a| a.modes.contains(&Mode::NoKey) && a.active(self.now))
    }

    /// Adds the counters of the life in `slot` to the honest nodes' tally
    /// (if it is honest): every honest life counts, also one that ended
    /// before the first attack (the tally is reported only if one ran).
    pub(super) fn count_stats(&mut self, slot: u32) {
        if self.obs.is_hostile(slot) {
            return;
        }
        if let Some(n) = &self.procs.slots[slot as usize].node {
            self.tally.honest.add(n.stats());
        }
    }

    /// Starts the attack `m` on its target nodes.
    pub(super) fn misbehave(&mut self, m: &Misbehave) {
        let now = self.now;
        let until = m.duration.map_or(Instant::MAX, |d| now + d);
        for s in self.targets(&m.target) {
            let modes: Vec<&str> = m.modes.iter().map(|m| m.name()).collect();
            self.fault_note(format!("misbehave n{s}: {}", modes.join(", ")));
            self.epochs += 1;
            let attack = Attack::new(
                m.modes.clone(),
                m.rate,
                until,
                self.epochs,
                m.addresses,
                &mut self.ghosts,
                &mut self.hostile_rng,
            );
            // Its counters so far were honest.
            self.count_stats(s);
            self.obs.misbehaves(s, now);
            let injects = attack.injects();
            self.attacks.insert(s, attack);
            if m.modes.contains(&Mode::NoKey) {
                self.obs.no_key(s, now, until);
                // It no longer holds the cluster key: its links are cut
                // (a node restarted with another key), and no new one
                // opens with a member.
                let mut others: Vec<u32> = self.procs.slots[s as usize]
                    .conns
                    .iter()
                    .flat_map(|&c| self.transport.conn(c as usize).ends.map(|e| e.slot))
                    .filter(|&o| o != s)
                    .collect();
                others.sort_unstable();
                others.dedup();
                for o in others {
                    self.reset_now(s, o);
                }
            }
            // Ticks for each hostile frame; an attack that injects nothing
            // (`no-key`) ticks once, at its end, to note it.
            let epoch = self.epochs;
            if injects {
                self.push(now, Ev::Hostile { slot: s, epoch });
            } else if until != Instant::MAX {
                self.push(until, Ev::Hostile { slot: s, epoch });
            }
        }
    }

    /// One hostile frame from the node in `slot`, on one of its
    /// handshaken connections.
    pub(super) fn hostile_tick(&mut self, slot: u32, epoch: u32) {
        let now = self.now;
        let Some(a) = self.attacks.get(&slot) else {
            return;
        };
        if a.epoch != epoch {
            return;
        }
        if !a.active(now) {
            self.fault_note(format!("misbehave n{slot} ends"));
            return;
        }
        let next = now + a.every;
        self.push(next, Ev::Hostile { slot, epoch });
        let Some(node) = self.procs.up_node(slot) else {
            return;
        };
        let n = self.procs.len();
        let neighbours: BTreeSet<u32> = node
            .neighbours()
            .filter_map(|a| slot_of_id(&a, n))
            .collect();
        let max_frame = node.config().max_frame;
        let mut links: Vec<(usize, usize)> = Vec::new();
        for &c in &self.procs.slots[slot as usize].conns {
            let cn = self.transport.conn(c as usize);
            for e in 0..2 {
                let (me, other) = (cn.ends[e], cn.ends[1 - e]);
                if me.slot == slot && me.open && neighbours.contains(&other.slot) {
                    links.push((c as usize, e));
                }
            }
        }
        links.sort_unstable();
        links.dedup();
        if links.is_empty() {
            return;
        }
        let (c, e) = links[below(&mut self.hostile_rng, links.len())];
        let (up, slots, obs) = (&self.procs.up, &self.procs.slots, &self.obs);
        let victims = || {
            let mut up = up.clone();
            up.sort_unstable();
            up.into_iter()
                .filter(|&v| v != slot && !obs.is_hostile(v))
                .filter_map(|v| slots[v as usize].node.as_ref())
                .map(|x| (x.key(), Arc::from(x.name())))
                .collect()
        };
        let Some(a) = self.attacks.get_mut(&slot) else {
            return;
        };
        let Some(inj) = a.next(victims, max_frame, &mut self.hostile_rng) else {
            return;
        };
        let t = &mut self.tally;
        let (payload, bytes, what) = match inj {
            Injection::Garbage(b) => {
                t.malformed += 1;
                let bytes = b.len() + wire::LEN_PREFIX;
                (Payload::Frame(b), bytes, "garbage".to_string())
            }
            Injection::Oversized(len) => {
                t.oversized += 1;
                let e = wire::WireError::Oversized {
                    len,
                    max: max_frame,
                };
                (
                    Payload::BadFrame(e),
                    wire::LEN_PREFIX,
                    format!("oversized prefix {len}"),
                )
            }
            Injection::Peers {
                msg,
                invented,
                forged,
            } => {
                t.peer_lists += 1;
                if matches!(msg, Message::PeerList { full: true, .. }) {
                    t.full_lists += 1;
                }
                t.invented_entries += invented as u64;
                t.forged_entries += forged.len() as u64;
                self.obs.ghosts_injected();
                for k in &forged {
                    if let Some(v) = slot_of_id(&k.id, n) {
                        self.obs.forged(v, k.incarnation);
                    }
                }
                let bytes = wire::payload_len(&msg) + wire::LEN_PREFIX;
                let what = format!(
                    "bogus peers{}, {} forged",
                    describe_msg(&msg, n),
                    forged.len()
                );
                (Payload::Msg(msg), bytes, what)
            }
            Injection::Replay(msg) => {
                t.replayed += 1;
                t.replayed_chats += match &msg {
                    Message::Chat(_) => 1,
                    Message::History(h) => h.chats.len() as u64,
                    _ => 0,
                };
                let bytes = wire::payload_len(&msg) + wire::LEN_PREFIX;
                let what = format!("replay {}{}", msg.kind(), describe_msg(&msg, n));
                (Payload::Msg(msg), bytes, what)
            }
        };
        t.bytes += bytes as u64;
        let to = self.transport.conn(c).ends[1 - e].slot;
        self.trace.event(
            now,
            TraceKind::Injected,
            [slot as u64, to as u64, c as u64],
            |l| l.push_str(&format!("n{slot} => n{to} c{c} {what} {bytes}B")),
        );
        self.transmit(slot, c, e, payload);
    }
}
