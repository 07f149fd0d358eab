//! What a `chat --json` line says, told to the observer as the simulator's
//! world tells it what a node hands its user (`world/deliver.rs`).
//!
//! The lines are untrusted input: anything that does not parse, or names
//! an address that is no node of the run, is ignored.

use super::held::Held;
use super::run::{Action, Lab, State};
use crate::addr::{addr_of, slot_of};
use gossip_chat::{DownReason, MsgId, NodeKey, TableSizes};
use serde_json::Value;
use std::net::SocketAddr;

fn addr(v: &Value) -> Option<SocketAddr> {
    v.as_str()?.parse().ok()
}

fn count(v: &Value, key: &str) -> usize {
    v[key].as_u64().map_or(0, |n| n as usize)
}

/// The tables of a `/stats` answer.
fn tables(v: &Value) -> TableSizes {
    TableSizes {
        members: count(v, "members"),
        connections: count(v, "connections"),
        neighbours: count(v, "neighbours"),
        accepting: count(v, "accepting"),
        dialing: count(v, "dialing"),
        streams: count(v, "streams"),
        probing: count(v, "probing"),
        held: count(v, "held"),
        history: count(v, "history"),
        recent: count(v, "recent"),
    }
}

impl Lab<'_> {
    /// One line printed by the node in `slot`.
    pub(super) fn event(&mut self, slot: u32, text: &str) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let now = self.now;
        let n = self.slots.len();
        let peer = |key: &str| addr(&v[key]).and_then(|a| slot_of(&a, n).map(|s| (a, s)));
        match v["event"].as_str() {
            Some("ready") => self.ready(slot),
            Some("peer_up") => {
                if let Some((_, p)) = peer("addr") {
                    self.obs.peer_up(now, slot, p);
                }
            }
            Some("peer_down") => {
                let (Some((a, p)), Some(inc)) = (peer("addr"), v["incarnation"].as_u64()) else {
                    return;
                };
                let reason = match v["reason"].as_str() {
                    Some("left") => DownReason::Left,
                    _ => DownReason::Dead,
                };
                // The incarnation up in the removed slot: the one removed
                // if it is of the current process, a newer one otherwise.
                let s = &self.slots[p as usize];
                let subject = (s.state == State::Up).then_some(inc.max(s.epoch));
                let key = NodeKey {
                    addr: a,
                    incarnation: inc,
                };
                self.obs
                    .peer_down(now, slot, p, key, reason, subject, &self.net);
            }
            Some("chat") => {
                let (Some(origin), Some(inc), Some(seq)) = (
                    addr(&v["origin"]),
                    v["incarnation"].as_u64(),
                    v["seq"].as_u64(),
                ) else {
                    return;
                };
                let id = MsgId {
                    origin: NodeKey {
                        addr: origin,
                        incarnation: inc,
                    },
                    seq,
                };
                // Its own message when sent by this process: older
                // processes on the same address had smaller incarnations.
                let own = origin == addr_of(slot) && inc >= self.slots[slot as usize].epoch;
                if !own && !self.held.knows(&id) {
                    // The sender's own line is on another pipe and may come
                    // later: hold the delivery until it does.
                    let proc = self.slots[slot as usize].proc;
                    self.held.hold(Held {
                        at: now,
                        slot,
                        proc,
                        id,
                    });
                    return;
                }
                self.chat(slot, id, own);
                if own {
                    for h in self.held.release(&id) {
                        if self.slots[h.slot as usize].proc == h.proc {
                            self.chat(h.slot, h.id, false);
                        }
                    }
                }
            }
            Some("stats") if self.is_up(slot) => {
                self.obs.tables(slot, tables(&v["tables"]));
            }
            Some("peers") => {
                let list: Vec<u32> = v["peers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| m["neighbour"].as_bool() == Some(true))
                    .filter_map(|m| addr(&m["addr"]).and_then(|a| slot_of(&a, n)))
                    .collect();
                let s = &mut self.slots[slot as usize];
                s.neighbours = list;
                s.answered = true;
            }
            _ => {}
        }
    }
}

impl Lab<'_> {
    /// A chat message reached the user of `slot`.
    fn chat(&mut self, slot: u32, id: MsgId, own: bool) {
        let now = self.now;
        let before = self.obs.msgs_sent();
        self.obs.chat(now, slot, id, own);
        if self.obs.msgs_sent() > before {
            self.held.known(id);
            let m = self.obs.last_msg();
            let at = now + self.sc.checks.deliver_within;
            self.at(at, Action::DeliveryCheck(m));
        }
    }

    /// Deliveries held longer than [`super::held::HOLD`]: no sender ever
    /// claimed them, so the checks are told as they are (a message
    /// nobody sent).
    pub(super) fn release_stale(&mut self) {
        let now = self.now;
        for h in self.held.stale(now) {
            if self.slots[h.slot as usize].proc == h.proc {
                self.obs.chat(now, h.slot, h.id, false);
            }
        }
    }
}
