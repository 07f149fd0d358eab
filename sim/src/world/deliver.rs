//! Delivery: a pending input reaches an up node (message, connection
//! opened or closed, dial failed), and the user events a node emits go to
//! the trace and the observer.

use super::describe::{describe_msg, who};
use super::transport::{conn_id, Payload, FOREIGN};
use super::State;
use super::{Ev, Pending, World};
use crate::addr::{addr_of, id_of, slot_of_id};
use crate::trace::TraceKind;
use gossip_chat::{wire, Event, Input, Instant};

/// A user event a node emitted, with when and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    /// Virtual time.
    pub at: Instant,
    /// Slot of the node that emitted it.
    pub node: u32,
    /// The event.
    pub event: Event,
}

/// User events kept for inspection (when asked for), at most this many.
#[derive(Default)]
pub(super) struct SeenLog {
    pub(super) events: Vec<Seen>,
    pub(super) cap: usize,
    /// Events not kept because the log was full.
    pub(super) dropped: u64,
}

impl World {
    /// Drops an input that can no longer be delivered.
    pub(super) fn drop_input(&mut self, p: Pending) {
        if let Pending::Deliver { msg, .. } = p {
            self.transport.unstash(msg);
        }
    }

    /// Delivers a pending input to an up node, if its connection end is
    /// still open.
    pub(super) fn input(&mut self, slot: u32, p: Pending) {
        let now = self.now;
        if !self.rogue.is_empty() && self.rogue_input(slot, &p) {
            return;
        }
        match p {
            Pending::Deliver { conn, end, msg } => {
                let Some(msg) = self.transport.unstash(msg) else {
                    return;
                };
                let ends = &self.transport.conn(conn as usize).ends;
                if !ends[end as usize].open {
                    return;
                }
                let from = ends[1 - end as usize].slot;
                if self.trace.writing() {
                    let what = match &msg {
                        Payload::Msg(msg) => {
                            let bytes = wire::payload_len(msg) + wire::LEN_PREFIX;
                            let kind = msg.kind();
                            let what = describe_msg(msg, self.procs.len());
                            format!("{kind} {bytes}B{what}")
                        }
                        Payload::Frame(b) => format!("frame {}B", b.len() + wire::LEN_PREFIX),
                        Payload::BadFrame(e) => format!("bad frame: {e}"),
                    };
                    self.trace.event(
                        now,
                        TraceKind::Deliver,
                        [slot as u64, from as u64, conn as u64],
                        |l| l.push_str(&format!("n{slot} <- n{from} c{conn} {what}")),
                    );
                } else {
                    self.trace.event(
                        now,
                        TraceKind::Deliver,
                        [slot as u64, from as u64, conn as u64],
                        |_| {},
                    );
                }
                let id = conn_id(conn, end);
                let input = match msg {
                    Payload::Msg(msg) => {
                        if let Some(a) = self.attacks.get_mut(&slot) {
                            if a.active(now) {
                                a.record(&msg, &mut self.hostile_rng);
                            }
                        }
                        let chats = super::msg_kind::chat_ids(&msg);
                        if !chats.is_empty() {
                            self.obs.carried(from, slot, chats.into_iter());
                        }
                        Input::Message { conn: id, msg }
                    }
                    Payload::Frame(payload) => Input::Frame { conn: id, payload },
                    Payload::BadFrame(error) => Input::BadFrame { conn: id, error },
                };
                self.handle(slot, input);
            }
            Pending::Connected { conn, end } => {
                let me = self.transport.end_mut(conn as usize, end as usize);
                if !me.open {
                    return;
                }
                me.told = true;
                let c = self.transport.conn(conn as usize);
                let other = c.ends[1 - end as usize].slot;
                let dialed = (end == 0).then(|| addr_of(other));
                // The transport's handshake proves who answers.
                let peer = Some(id_of(other));
                let word = if end == 0 {
                    "connected to"
                } else {
                    "accepted from"
                };
                let kind = if end == 0 {
                    TraceKind::Connected
                } else {
                    TraceKind::Accepted
                };
                self.trace
                    .event(now, kind, [slot as u64, other as u64, conn as u64], |l| {
                        l.push_str(&format!("n{slot} {word} n{other} c{conn}"))
                    });
                let id = conn_id(conn, end);
                self.handle(
                    slot,
                    Input::Connected {
                        conn: id,
                        dialed,
                        peer,
                    },
                );
            }
            Pending::Disconnected { conn, end } => {
                let e = self.transport.end_mut(conn as usize, end as usize);
                if !e.open {
                    return;
                }
                e.open = false;
                self.trace.event(
                    now,
                    TraceKind::Disconnected,
                    [slot as u64, conn as u64, 0],
                    |l| l.push_str(&format!("n{slot} disconnected c{conn}")),
                );
                let id = conn_id(conn, end);
                self.handle(slot, Input::Disconnected { conn: id });
            }
            Pending::Timeout => {
                self.procs.slots[slot as usize].timeout_queued = false;
                self.trace
                    .event(now, TraceKind::Timeout, [slot as u64, 0, 0], |l| {
                        l.push_str(&format!("n{slot} timeout"))
                    });
                self.handle(slot, Input::Timeout);
            }
            Pending::ConnectFailed { to } => {
                let addr = self.transport.addr_at(to);
                let t = if to & FOREIGN == 0 { to } else { u32::MAX };
                self.trace.event(
                    now,
                    TraceKind::DialFailed,
                    [slot as u64, to as u64, 0],
                    |l| l.push_str(&format!("n{slot} dial {} failed", who(t, &addr))),
                );
                self.handle(slot, Input::ConnectFailed { addr });
            }
        }
    }

    /// Records a user event of the node in `slot` (`me`).
    pub(super) fn user_event(&mut self, slot: u32, me: gossip_chat::NodeKey, ev: Event) {
        let now = self.now;
        let n = self.procs.len();
        let log = &mut self.seen;
        if log.cap > 0 {
            if log.events.len() < log.cap {
                log.events.push(Seen {
                    at: now,
                    node: slot,
                    event: ev.clone(),
                });
            } else {
                log.dropped += 1;
            }
        }
        match ev {
            Event::PeerUp { node, addr, .. } => {
                let p = slot_of_id(&node.id, n).unwrap_or(u32::MAX);
                self.trace.event(
                    now,
                    TraceKind::PeerUp,
                    [slot as u64, p as u64, node.incarnation],
                    |l| {
                        l.push_str(&format!(
                            "n{slot} up {}/{}",
                            who(p, &addr),
                            node.incarnation
                        ))
                    },
                );
                if p != u32::MAX {
                    self.obs.peer_up(now, slot, p);
                } else if let Some(&g) = self.ghosts.get(&addr) {
                    self.obs.ghost_listed(slot, g, true);
                }
            }
            Event::PeerDown {
                node, addr, reason, ..
            } => {
                let p = slot_of_id(&node.id, n).unwrap_or(u32::MAX);
                self.trace.event(
                    now,
                    TraceKind::PeerDown,
                    [slot as u64, p as u64, node.incarnation],
                    |l| {
                        l.push_str(&format!(
                            "n{slot} down {}/{} {reason:?}",
                            who(p, &addr),
                            node.incarnation
                        ))
                    },
                );
                if p != u32::MAX {
                    let s = &self.procs.slots[p as usize];
                    let inc = match (s.state, &s.node) {
                        (State::Up, Some(x)) => Some(x.key().incarnation),
                        _ => None,
                    };
                    self.obs
                        .peer_down(now, slot, p, node, reason, inc, &self.net);
                } else if let Some(&g) = self.ghosts.get(&addr) {
                    self.obs.ghost_listed(slot, g, false);
                }
            }
            Event::Chat {
                id,
                via,
                name,
                text,
                sent_ms,
                ..
            } => {
                if let Some(a) = self.attacks.get_mut(&slot) {
                    a.delivered(id);
                }
                let o = slot_of_id(&id.origin.id, n).unwrap_or(u32::MAX);
                let own = id.origin == me;
                self.trace
                    .event(now, TraceKind::Chat, [slot as u64, o as u64, id.seq], |l| {
                        let h = if via.is_history() { " (history)" } else { "" };
                        l.push_str(&format!(
                            "n{slot} chat n{o}/{}#{}{h}",
                            id.origin.incarnation, id.seq
                        ))
                    });
                let before = self.obs.msgs_sent();
                let content = crate::checks::content_hash(&name, &text, sent_ms);
                self.obs.chat_content(now, slot, id, own, Some(content));
                if self.obs.msgs_sent() > before {
                    let m = self.obs.last_msg();
                    self.push(now + self.sc.checks.deliver_within, Ev::DeliveryCheck(m));
                }
            }
            Event::Gap {
                origin,
                first,
                last,
                ..
            } => {
                let o = slot_of_id(&origin.id, n).unwrap_or(u32::MAX);
                self.trace
                    .event(now, TraceKind::Gap, [slot as u64, o as u64, first], |l| {
                        l.push_str(&format!(
                            "n{slot} gap n{o}/{} {first}..={last}",
                            origin.incarnation
                        ))
                    });
            }
            Event::Refuted {
                incarnation,
                version,
            } => {
                self.trace.event(
                    now,
                    TraceKind::Refuted,
                    [slot as u64, incarnation, version as u64],
                    |l| {
                        l.push_str(&format!(
                            "n{slot} refuted, now incarnation {incarnation} version {version}"
                        ))
                    },
                );
            }
            Event::PeerRestarted { node, addr, .. } => {
                let p = slot_of_id(&node.id, n).unwrap_or(u32::MAX);
                self.trace.event(
                    now,
                    TraceKind::PeerRestarted,
                    [slot as u64, p as u64, node.incarnation],
                    |l| {
                        l.push_str(&format!(
                            "n{slot} restarted {}/{}",
                            who(p, &addr),
                            node.incarnation
                        ))
                    },
                );
            }
            Event::Refused(r) => {
                self.trace
                    .event(now, TraceKind::Refused, [slot as u64, 0, 0], |l| {
                        l.push_str(&format!("n{slot} refused {r:?}"))
                    });
            }
        }
    }
}
