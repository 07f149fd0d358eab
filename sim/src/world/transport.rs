//! The transport model: connections between simulated nodes, messages in
//! flight, and the driver contract around them.
//!
//! Messages travel as values (never encoded); byte counts use the real
//! encoded size. Every `Connect` is answered with `Connected` or
//! `ConnectFailed`; a `Close` flushes what was sent before the peer sees
//! `Disconnected`. The network (`net.rs`) decides each message's fate and
//! latency; this file turns that into queued inputs.

use super::msg_kind::MsgKind;
use super::{describe::who, Ev, Pending, State, World};
use crate::addr::{addr_of, slot_of};
use crate::net::Fate;
use crate::trace::TraceKind;
use gossip_chat::{wire, ConnId, Instant, Message};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Marks a `ConnectFailed` target that is not a simulated node.
pub(super) const FOREIGN: u32 = 1 << 31;

/// One end of a connection.
#[derive(Clone, Copy)]
pub(super) struct End {
    pub(super) slot: u32,
    pub(super) life: u32,
    pub(super) open: bool,
    /// Latest arrival scheduled at this end (FIFO).
    pub(super) last: Instant,
    /// When this end learns the connection is open: nothing arrives
    /// before, even on unordered links.
    pub(super) open_at: Instant,
    /// Whether this end's node was told that the connection opened.
    pub(super) told: bool,
}

/// A connection: end 0 dialled, end 1 accepted.
pub(super) struct Conn {
    pub(super) ends: [End; 2],
}

/// What travels on a connection: a message (as a value), or what a
/// misbehaving node injects below the message layer.
#[derive(Clone)]
// Most payloads are messages: a box would cost an allocation for each one
// in flight, to save bytes only on the rare injected frames.
#[allow(clippy::large_enum_variant)]
pub(super) enum Payload {
    Msg(Message),
    /// A frame payload that the receiver decodes itself.
    Frame(Vec<u8>),
    /// A frame the receiving driver refuses before reading it.
    BadFrame(wire::WireError),
}

/// Connections, the slab of payloads in flight and the foreign addresses
/// dialled.
#[derive(Default)]
pub(super) struct Transport {
    conns: Vec<Conn>,
    /// Messages in flight, by slab index.
    payloads: Vec<Option<Payload>>,
    free: Vec<u32>,
    /// Addresses dialled that are not simulated nodes, each once.
    foreign: Vec<SocketAddr>,
    foreign_ix: BTreeMap<SocketAddr, u32>,
}

/// The node-facing id of end `e` of connection `c`.
pub(super) fn conn_id(c: u32, e: u8) -> ConnId {
    ConnId(c as u64 * 2 + e as u64)
}

/// Connection and end of a node-facing id.
fn split(id: ConnId) -> (usize, usize) {
    ((id.0 / 2) as usize, (id.0 % 2) as usize)
}

impl Transport {
    /// Keeps `msg` until it arrives; returns its slab index.
    pub(super) fn stash(&mut self, msg: Payload) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.payloads[i as usize] = Some(msg);
                i
            }
            None => {
                self.payloads.push(Some(msg));
                self.payloads.len() as u32 - 1
            }
        }
    }

    /// Takes the payload at slab index `i` (arrived or dropped).
    pub(super) fn unstash(&mut self, i: u32) -> Option<Payload> {
        let m = self.payloads[i as usize].take();
        self.free.push(i);
        m
    }

    /// The address a `ConnectFailed { to }` names.
    pub(super) fn addr_at(&self, to: u32) -> SocketAddr {
        if to & FOREIGN != 0 {
            self.foreign[(to & !FOREIGN) as usize]
        } else {
            addr_of(to)
        }
    }

    /// The number of a foreign address, with the [`FOREIGN`] mark.
    fn foreign(&mut self, addr: SocketAddr) -> u32 {
        let next = self.foreign.len() as u32;
        let i = *self.foreign_ix.entry(addr).or_insert(next);
        if i == next {
            self.foreign.push(addr);
        }
        i | FOREIGN
    }

    /// A connection (it must exist).
    pub(super) fn conn(&self, c: usize) -> &Conn {
        &self.conns[c]
    }

    /// End `e` of connection `c`.
    pub(super) fn end_mut(&mut self, c: usize, e: usize) -> &mut End {
        &mut self.conns[c].ends[e]
    }

    /// Drops from `list` the connections on which `slot` has no open end.
    pub(super) fn retain_open(&self, slot: u32, list: &mut Vec<u32>) {
        list.retain(|&c| {
            self.conns[c as usize]
                .ends
                .iter()
                .any(|e| e.slot == slot && e.open)
        });
    }
}

impl World {
    /// `Output::Send`: counts the message and puts it on the wire.
    pub(super) fn send(&mut self, slot: u32, conn: ConnId, msg: Message) {
        let (c, e) = split(conn);
        let Some(cn) = self.transport.conns.get(c) else {
            return;
        };
        if cn.ends[e].slot != slot || !cn.ends[e].open {
            return;
        }
        let bytes = wire::payload_len(&msg) + wire::LEN_PREFIX;
        let chats = match &msg {
            Message::Chat(_) => 1,
            Message::History(h) => h.chats.len(),
            _ => 0,
        };
        let kind = MsgKind::of(&msg);
        let write = !self.written.contains(&(c, e));
        if write {
            self.written.push((c, e));
        }
        self.obs.sent(kind.name(), bytes, chats, write);
        self.obs.all_minutes.sent(self.now, bytes);
        match super::msg_kind::purpose_of(&msg) {
            super::msg_kind::Purpose::Repair => {
                self.obs.traffic.repair_bytes += bytes as u64;
                self.obs.repair_minutes.sent(self.now, bytes);
            }
            super::msg_kind::Purpose::Idle => self.obs.traffic.idle_bytes += bytes as u64,
            super::msg_kind::Purpose::Dissemination => {}
        }
        self.transmit(slot, c, e, Payload::Msg(msg));
    }

    /// `Output::Close`: closes the node's end; the peer sees
    /// `Disconnected` after what was sent before.
    pub(super) fn close(&mut self, slot: u32, conn: ConnId) {
        let (c, e) = split(conn);
        let Some(cn) = self.transport.conns.get_mut(c) else {
            return;
        };
        if cn.ends[e].slot != slot || !cn.ends[e].open {
            return;
        }
        cn.ends[e].open = false;
        self.trace.event(
            self.now,
            TraceKind::Close,
            [slot as u64, c as u64, 0],
            |l| l.push_str(&format!("n{slot} close c{c}")),
        );
        self.hang_up(slot, c, e);
    }

    /// Tells the other end of connection `c` (closed at end `e` by `slot`)
    /// that it is closed, if it can still hear it.
    pub(super) fn hang_up(&mut self, slot: u32, c: usize, e: usize) {
        let f = 1 - e;
        let other = self.transport.conns[c].ends[f];
        if other.open && !self.net.blocked(slot as usize, other.slot as usize) {
            let lat = self.net.latency(slot as usize, other.slot as usize);
            let at = (self.now + lat).max(other.last);
            self.transport.conns[c].ends[f].last = at;
            self.push(
                at,
                Ev::Input {
                    slot: other.slot,
                    life: other.life,
                    input: Pending::Disconnected {
                        conn: c as u32,
                        end: f as u8,
                    },
                },
            );
        }
    }

    /// Puts `msg` on the wire from end `e` of connection `c`: lost, cut, or
    /// delivered (maybe twice) after the link's latency, in order.
    pub(super) fn transmit(&mut self, slot: u32, c: usize, e: usize, msg: Payload) {
        let now = self.now;
        let f = 1 - e;
        let other = self.transport.conns[c].ends[f];
        if !other.open {
            return;
        }
        let (a, b) = (slot as usize, other.slot as usize);
        match self.net.fate(a, b) {
            Fate::Arrives(lat) => {
                let mut at = (now + lat).max(other.open_at);
                if self.net.ordered {
                    at = at.max(other.last);
                }
                let end = &mut self.transport.conns[c].ends[f];
                end.last = end.last.max(at);
                let dup = self.net.duplicated(a, b).then(|| msg.clone());
                let msg = self.transport.stash(msg);
                let deliver = |msg| Ev::Input {
                    slot: other.slot,
                    life: other.life,
                    input: Pending::Deliver {
                        conn: c as u32,
                        end: f as u8,
                        msg,
                    },
                };
                self.push(at, deliver(msg));
                if let Some(msg) = dup {
                    let msg = self.transport.stash(msg);
                    let lat2 = self.net.latency(a, b);
                    let at2 = if self.net.ordered {
                        at
                    } else {
                        (now + lat2).max(other.open_at)
                    };
                    self.push(at2, deliver(msg));
                }
            }
            fate => {
                let why = if fate == Fate::Cut { "cut" } else { "lost" };
                let kind = match &msg {
                    Payload::Msg(m) => m.kind(),
                    Payload::Frame(_) => "frame",
                    Payload::BadFrame(_) => "bad frame",
                };
                let to = other.slot;
                self.trace.event(
                    now,
                    TraceKind::Lost,
                    [slot as u64, to as u64, c as u64],
                    |l| l.push_str(&format!("n{slot} -> n{to} c{c} {kind} {why}")),
                );
            }
        }
    }

    /// `Output::Connect`: opens a connection after a round trip, or fails
    /// it (refused after a round trip, timed out if nothing answers).
    pub(super) fn connect(&mut self, slot: u32, addr: SocketAddr) {
        let now = self.now;
        let life = self.procs.slots[slot as usize].life;
        let target = slot_of(&addr, self.procs.len());
        self.trace.event(
            now,
            TraceKind::Dial,
            [slot as u64, target.unwrap_or(u32::MAX) as u64, 0],
            |l| {
                let t = target.unwrap_or(u32::MAX);
                l.push_str(&format!("n{slot} dial {}", who(t, &addr)))
            },
        );
        let to = match target {
            Some(t) => t,
            None => {
                if let Some(&g) = self.ghosts.get(&addr) {
                    self.obs.ghost_dial(now, slot, g);
                }
                self.transport.foreign(addr)
            }
        };
        let fail_at = |w: &mut World, at: Instant| {
            w.push(
                at,
                Ev::Input {
                    slot,
                    life,
                    input: Pending::ConnectFailed { to },
                },
            );
        };
        let Some(t) = target else {
            // No simulated host there: nothing answers, the dial times out.
            let at = now + self.net.connect_timeout;
            fail_at(self, at);
            return;
        };
        let (a, b) = (slot as usize, t as usize);
        let reachable = !self.net.blocked(a, b) && !self.net.blocked(b, a);
        let state = self.procs.slots[b].state;
        if !reachable || matches!(state, State::Crashed | State::Paused) {
            let at = now + self.net.connect_timeout;
            fail_at(self, at);
            return;
        }
        if state != State::Up {
            // Nothing listens there: refused after a round trip.
            let rtt = self.net.latency(a, b) + self.net.latency(b, a);
            fail_at(self, now + rtt);
            return;
        }
        let stranger = self.lacks_key(slot);
        if stranger || self.lacks_key(t) {
            // The adapter's handshake finds no cluster key in common: the
            // answering end refuses in its second message, after TCP's
            // round trip and Noise's first, and neither node hears of the
            // connection.
            let rtt = self.net.latency(a, b) + self.net.latency(b, a);
            self.tally.refused_handshakes += 1;
            self.obs.refused_handshake();
            if stranger {
                self.tally.strangers_refused += 1;
            }
            self.trace
                .event(now, TraceKind::Note, [slot as u64, t as u64, 0], |l| {
                    l.push_str(&format!(
                        "n{slot} dial n{t} refused: no cluster key in common"
                    ))
                });
            fail_at(self, now + rtt + rtt);
            return;
        }
        self.open_conn(slot, t);
    }

    /// Opens a connection from the up node in `slot` to the up node in `t`
    /// (reachable, both holding the key): the acceptor hears of it after
    /// one latency, the dialler after a round trip. Returns its number.
    pub(super) fn open_conn(&mut self, slot: u32, t: u32) -> u32 {
        let now = self.now;
        let life = self.procs.slots[slot as usize].life;
        let (a, b) = (slot as usize, t as usize);
        let there = now + self.net.latency(a, b);
        let back = there + self.net.latency(b, a);
        let c = self.transport.conns.len() as u32;
        let tlife = self.procs.slots[b].life;
        self.transport.conns.push(Conn {
            ends: [
                End {
                    slot,
                    life,
                    open: true,
                    last: back,
                    open_at: back,
                    told: false,
                },
                End {
                    slot: t,
                    life: tlife,
                    open: true,
                    last: there,
                    open_at: there,
                    told: false,
                },
            ],
        });
        self.procs.add_conn(slot, c, &self.transport);
        self.procs.add_conn(t, c, &self.transport);
        self.push(
            there,
            Ev::Input {
                slot: t,
                life: tlife,
                input: Pending::Connected { conn: c, end: 1 },
            },
        );
        self.push(
            back,
            Ev::Input {
                slot,
                life,
                input: Pending::Connected { conn: c, end: 0 },
            },
        );
        c
    }

    /// Feeds the node in `to` now, on its open connection with `from`,
    /// the input `input` builds for that connection; whether there was
    /// one (and `to` is up).
    pub fn inject_now(
        &mut self,
        from: u32,
        to: u32,
        input: impl FnOnce(ConnId) -> gossip_chat::Input,
    ) -> bool {
        let Some(s) = self.procs.slots.get(to as usize) else {
            return false;
        };
        if s.state != State::Up {
            return false;
        }
        let found = s.conns.iter().find_map(|&c| {
            let ends = &self.transport.conns[c as usize].ends;
            (0..2).find_map(|e| {
                let (me, other) = (ends[e], ends[1 - e]);
                (me.slot == to && me.open && other.slot == from).then(|| conn_id(c, e as u8))
            })
        });
        match found {
            Some(id) => {
                self.handle(to, input(id));
                true
            }
            None => false,
        }
    }
    /// The network, to change its latency or jitter from now on.
    pub fn network_mut(&mut self) -> &mut crate::net::Network {
        &mut self.net
    }

    /// Drops every open connection between the up nodes in `a` and `b`
    /// now: both ends hear `Disconnected` at once, and what was in flight
    /// on it is lost. An end not yet told that the connection opened hears
    /// what a real driver reports then: the dialler that its dial failed
    /// (every `Connect` is answered), the acceptor nothing. Returns how
    /// many were dropped.
    pub fn reset_now(&mut self, a: u32, b: u32) -> usize {
        let up =
            |w: &World, s: u32| w.procs.slots.get(s as usize).map(|x| x.state) == Some(State::Up);
        if !up(self, a) || !up(self, b) {
            return 0;
        }
        let hit: Vec<u32> = self.procs.slots[a as usize]
            .conns
            .iter()
            .copied()
            .filter(|&c| {
                let ends = &self.transport.conns[c as usize].ends;
                let pair = (ends[0].slot, ends[1].slot);
                (pair == (a, b) || pair == (b, a)) && ends[0].open && ends[1].open
            })
            .collect();
        for &c in &hit {
            self.fault_note(format!("reset c{c} n{a}<->n{b}"));
            for e in 0..2 {
                self.transport.end_mut(c as usize, e).open = false;
            }
            for e in 0..2 {
                let ends = self.transport.conns[c as usize].ends;
                let (slot, other) = (ends[e].slot, ends[1 - e].slot);
                if ends[e].told {
                    self.trace.event(
                        self.now,
                        TraceKind::Disconnected,
                        [slot as u64, c as u64, 0],
                        |l| l.push_str(&format!("n{slot} disconnected c{c}")),
                    );
                    let conn = conn_id(c, e as u8);
                    self.handle(slot, gossip_chat::Input::Disconnected { conn });
                } else if e == 0 {
                    self.trace.event(
                        self.now,
                        TraceKind::DialFailed,
                        [slot as u64, other as u64, 0],
                        |l| l.push_str(&format!("n{slot} dial n{other} failed")),
                    );
                    let addr = addr_of(other);
                    self.handle(slot, gossip_chat::Input::ConnectFailed { addr });
                }
            }
        }
        hit.len()
    }
}
