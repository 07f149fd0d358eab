//! Driving the misbehaving nodes: starting an attack, and each hostile
//! frame it sends (the attack's choices live in `hostile.rs`), with the
//! tally of what was injected and what the honest nodes did.

use super::{describe::describe_msg, transport::Payload, Ev, Pending, State, World};
use crate::addr::slot_of_id;
use crate::hostile::{Attack, Injection, Me, Victim};
use crate::random::below;
use crate::scenario::{Misbehave, Mode};
use crate::trace::TraceKind;
use gossip_chat::{wire, Instant, Message};
use std::collections::BTreeSet;
use std::sync::Arc;

/// How long a hostile node holds an impostor connection open (silent
/// after its hello) unless the honest end closes it first: a few
/// heartbeat intervals.
const ROGUE_HOLD: gossip_chat::Duration = gossip_chat::Duration::from_secs(3);

/// An impostor connection a hostile node dialled for itself, unknown to
/// its core (its end is end 0).
pub(super) struct Rogue {
    /// The hostile node's slot.
    slot: u32,
    /// The hello to send once it opens (taken when sent), and whether it
    /// names another member.
    hello: Option<(Message, bool)>,
    /// When the hostile end closes it.
    until: Instant,
}

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
            let mut attack = Attack::new(
                m.modes.clone(),
                m.rate,
                until,
                self.epochs,
                m.addresses,
                &mut self.ghosts,
                &mut self.hostile_rng,
            );
            // What it delivered so far: its forgeries claim what follows.
            for id in self.obs.delivered_to(s) {
                attack.delivered(id);
            }
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
            self.close_rogues(slot, Instant::MAX);
            return;
        }
        let next = now + a.every;
        let dials = a.modes.contains(&Mode::Impersonate);
        self.push(next, Ev::Hostile { slot, epoch });
        if dials {
            self.close_rogues(slot, now);
        }
        let Some(node) = self.procs.up_node(slot) else {
            return;
        };
        let n = self.procs.len();
        let neighbours: BTreeSet<u32> = node
            .neighbours()
            .filter_map(|a| slot_of_id(&a, n))
            .collect();
        let max_frame = node.config().max_frame;
        let me = Me {
            key: node.key(),
            entry: node.own_entry(),
            name: Arc::from(node.name()),
            slot,
            wall_ms: self.wall_ms(),
        };
        let mut links: Vec<(usize, usize)> = Vec::new();
        for &c in &self.procs.slots[slot as usize].conns {
            if self.rogue.contains_key(&c) {
                // Its impostor connections are not its core's links.
                continue;
            }
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
        // An impersonating node dials for itself: it needs no link.
        if links.is_empty() && !dials {
            return;
        }
        let link = (!links.is_empty()).then(|| links[below(&mut self.hostile_rng, links.len())]);
        let (up, slots, obs) = (&self.procs.up, &self.procs.slots, &self.obs);
        let victims = || {
            let mut up = up.clone();
            up.sort_unstable();
            up.into_iter()
                .filter(|&v| v != slot && !obs.is_hostile(v))
                .filter_map(|v| {
                    let x = slots[v as usize].node.as_ref()?;
                    Some(Victim {
                        key: x.key(),
                        entry: x.own_entry(),
                        name: Arc::from(x.name()),
                        slot: v,
                    })
                })
                .collect()
        };
        let Some(a) = self.attacks.get_mut(&slot) else {
            return;
        };
        let Some(inj) = a.next(&me, victims, max_frame, &mut self.hostile_rng) else {
            return;
        };
        let inj = match inj {
            Injection::Impostor {
                hello,
                victim,
                other_id,
            } => {
                self.impostor_dial(slot, hello, victim, other_id);
                return;
            }
            inj => inj,
        };
        let Some((c, e)) = link else {
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
            Injection::Forged { msg, chats, far } => {
                t.forged_frames += 1;
                t.forged_chats += chats as u64;
                t.far_seqs += far as u64;
                if matches!(msg, Message::History(_)) {
                    t.forged_in_batches += chats as u64;
                }
                self.obs.forgery_injected(chats as u64);
                let bytes = wire::payload_len(&msg) + wire::LEN_PREFIX;
                let what = format!("forged {}{}", msg.kind(), describe_msg(&msg, n));
                (Payload::Msg(msg), bytes, what)
            }
            Injection::State { msg, forged } => {
                t.state_lists += 1;
                t.state_forgeries += forged.len() as u64;
                self.obs.state_forgery_injected();
                let bytes = wire::payload_len(&msg) + wire::LEN_PREFIX;
                let what = format!(
                    "forged state{}, {} entries",
                    describe_msg(&msg, n),
                    forged.len()
                );
                (Payload::Msg(msg), bytes, what)
            }
            Injection::Impostor { .. } => return,
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

impl World {
    /// The hostile node in `slot` dials an honest node (not `victim`, when
    /// another is up) for itself, unknown to its core, to say `hello` there
    /// once the connection opens (see [`World::rogue_input`]). A target it
    /// cannot reach now costs nothing but the attempt.
    fn impostor_dial(&mut self, slot: u32, hello: gossip_chat::Hello, victim: u32, other_id: bool) {
        let mut targets: Vec<u32> = self
            .procs
            .up
            .iter()
            .copied()
            .filter(|&t| t != slot && t != victim && !self.obs.is_hostile(t))
            .collect();
        if targets.is_empty() {
            targets.push(victim);
        }
        targets.sort_unstable();
        let t = targets[below(&mut self.hostile_rng, targets.len())];
        let (a, b) = (slot as usize, t as usize);
        let reachable = !self.net.blocked(a, b) && !self.net.blocked(b, a);
        let up = self.procs.slots[b].state == State::Up;
        let now = self.now;
        if !reachable || !up || self.lacks_key(slot) || self.lacks_key(t) {
            self.tally.impostor_dials_failed += 1;
            self.trace
                .event(now, TraceKind::Injected, [slot as u64, t as u64, 0], |l| {
                    l.push_str(&format!("n{slot} => n{t} impostor dial fails"))
                });
            return;
        }
        let c = self.open_conn(slot, t);
        let what = if other_id {
            format!("as n{victim}")
        } else {
            format!("as itself at n{victim}'s address")
        };
        self.trace.event(
            now,
            TraceKind::Injected,
            [slot as u64, t as u64, c as u64],
            |l| {
                l.push_str(&format!(
                    "n{slot} => n{t} c{c} impostor dial, to say hello {what}"
                ))
            },
        );
        let rogue = Rogue {
            slot,
            hello: Some((Message::Hello(hello), other_id)),
            until: now + ROGUE_HOLD,
        };
        self.rogue.insert(c, rogue);
    }

    /// The hostile node in `slot` closes its impostor connections due by
    /// `by` (all of them at `Instant::MAX`); the honest ends hear it.
    fn close_rogues(&mut self, slot: u32, by: Instant) {
        let due: Vec<u32> = self
            .rogue
            .iter()
            .filter(|(_, r)| r.slot == slot && (r.until <= by || by == Instant::MAX))
            .map(|(&c, _)| c)
            .collect();
        let now = self.now;
        for conn in due {
            self.rogue.remove(&conn);
            let c = conn as usize;
            let end = self.transport.conn(c).ends[0];
            if !end.open || end.slot != slot {
                continue;
            }
            self.transport.end_mut(c, 0).open = false;
            self.trace
                .event(now, TraceKind::Close, [slot as u64, conn as u64, 0], |l| {
                    l.push_str(&format!("n{slot} close c{conn} (impostor)"))
                });
            self.hang_up(slot, c, 0);
        }
    }

    /// Whether `p`, arriving at the node in `slot`, is on the hostile end
    /// of an impostor connection: then the world, not the node's core,
    /// handles it (the core never dialled it). The connection opens: the
    /// hello goes out; the honest end answers: ignored; it closes: noted.
    pub(super) fn rogue_input(&mut self, slot: u32, p: &Pending) -> bool {
        let (conn, end) = match *p {
            Pending::Deliver { conn, end, .. }
            | Pending::Connected { conn, end }
            | Pending::Disconnected { conn, end } => (conn, end),
            _ => return false,
        };
        if end != 0 || !self.rogue.contains_key(&conn) {
            return false;
        }
        let now = self.now;
        let c = conn as usize;
        let open = self.transport.conn(c).ends[0].open;
        let to = self.transport.conn(c).ends[1].slot;
        match *p {
            Pending::Connected { .. } => {
                self.transport.end_mut(c, 0).told = true;
                let Some(Some((hello, other_id))) =
                    self.rogue.get_mut(&conn).map(|r| r.hello.take())
                else {
                    return true;
                };
                if !open {
                    return true;
                }
                let bytes = wire::payload_len(&hello) + wire::LEN_PREFIX;
                self.tally.impostor_hellos += 1;
                self.tally.impostor_other_ids += u64::from(other_id);
                self.tally.bytes += bytes as u64;
                self.obs.forgery_injected(1);
                let n = self.procs.len();
                let what = match &hello {
                    Message::Hello(h) => {
                        let who = slot_of_id(&h.node.id, n).map_or(u32::MAX, |s| s);
                        let at = crate::addr::slot_of(&h.addr, n).map_or(u32::MAX, |s| s);
                        format!(" as n{who}/{} at n{at}'s address", h.node.incarnation)
                    }
                    _ => String::new(),
                };
                self.trace.event(
                    now,
                    TraceKind::Injected,
                    [slot as u64, to as u64, conn as u64],
                    |l| {
                        l.push_str(&format!(
                            "n{slot} => n{to} c{conn} impostor hello{what} {bytes}B"
                        ))
                    },
                );
                self.transmit(slot, c, 0, Payload::Msg(hello));
            }
            Pending::Deliver { msg, .. } => {
                // Whatever the honest end answers, the impostor says
                // nothing more (it closes when its hold is over).
                self.transport.unstash(msg);
            }
            Pending::Disconnected { .. } => {
                self.rogue.remove(&conn);
                if open {
                    self.transport.end_mut(c, 0).open = false;
                    self.trace.event(
                        now,
                        TraceKind::Disconnected,
                        [slot as u64, conn as u64, 0],
                        |l| l.push_str(&format!("n{slot} disconnected c{conn} (impostor)")),
                    );
                }
            }
            _ => {}
        }
        true
    }
}
