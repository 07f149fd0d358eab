//! What a `chat --json` line says, told to the observer as the simulator's
//! world tells it what a node hands its user (`world/deliver.rs`).
//!
//! Each event is dated by the node's own `ts_ms` (the wall time it printed
//! the line) on the run's clock, which leaves out the time the line spent
//! in the node's output buffer and the pipe; a line without one is dated
//! when the lab read it.
//!
//! The lines are untrusted input: anything that does not parse, or names
//! an address that is no node of the run, is ignored.

use super::clock::Clock;
use super::held::Held;
use super::run::{Action, Lab, State};
use crate::addr::{addr_of, id_of, slot_of};
use gossip_chat::{DownReason, Instant, MsgId, NodeKey, TableSizes};
use serde_json::Value;
use std::net::SocketAddr;

fn addr(v: &Value) -> Option<SocketAddr> {
    v.as_str()?.parse().ok()
}

fn count(v: &Value, key: &str) -> usize {
    v[key].as_u64().map_or(0, |n| n as usize)
}

/// When the line `v`, read at `read`, happened on the run's clock: its
/// `ts_ms` (Unix milliseconds, as `chat --json` prints it), or `read` for
/// a line without one. Never later than `read` (it was printed before it
/// was read; the node's clock is the lab's, but may be stepped), and never
/// before `floor`, the last action the lab carried out (the checks have
/// been told of it, and a line read after it is judged after it).
pub(super) fn line_time(v: &Value, read: Instant, floor: Instant, clock: &Clock) -> Instant {
    let printed = v["ts_ms"]
        .as_u64()
        .map_or(read, |ms| clock.at_wall(ms).unwrap_or(Instant::ZERO));
    printed.min(read).max(floor)
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
        outbox: count(v, "outbox"),
    }
}

impl Lab<'_> {
    /// One line printed by the node in `slot`, read at `read`.
    pub(super) fn event(&mut self, slot: u32, text: &str, read: Instant) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let now = line_time(&v, read, self.acted, &self.clock);
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
                // The checks name members by simulated ids.
                let _ = a;
                let key = NodeKey {
                    id: id_of(p),
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
                let Some(o) = slot_of(&origin, n) else {
                    return;
                };
                let id = MsgId {
                    origin: NodeKey {
                        id: id_of(o),
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
                self.chat(now, slot, id, own);
                if own {
                    for h in self.held.release(&id) {
                        if self.slots[h.slot as usize].proc == h.proc {
                            // Delivered when its line says, but never
                            // before the send it was held for.
                            self.chat(h.at.max(now), h.slot, h.id, false);
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
    /// A chat message reached the user of `slot` at `now`.
    fn chat(&mut self, now: Instant, slot: u32, id: MsgId, own: bool) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 1_700_000_000_000;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn time(line: &str, read: u64, floor: u64) -> Instant {
        let v: Value = serde_json::from_str(line).expect("JSON");
        line_time(&v, at(read), at(floor), &Clock::started_at(START))
    }

    #[test]
    fn a_line_is_dated_by_the_time_its_node_printed_it() {
        let line = format!(
            r#"{{"event":"peer_up","addr":"10.0.0.2:7000","ts_ms":{}}}"#,
            START + 1234
        );
        // Read 40 ms after it was printed (the node's output buffer, the
        // pipe): dated when printed.
        assert_eq!(time(&line, 1274, 1000), at(1234));
    }

    #[test]
    fn a_line_without_a_time_is_dated_when_read() {
        assert_eq!(time(r#"{"event":"peer_up"}"#, 1274, 1000), at(1274));
        assert_eq!(
            time(r#"{"event":"peer_up","ts_ms":"soon"}"#, 1274, 1000),
            at(1274)
        );
        assert_eq!(
            time(r#"{"event":"peer_up","ts_ms":-5}"#, 1274, 1000),
            at(1274)
        );
        assert_eq!(time(r#"[1, 2]"#, 1274, 1000), at(1274));
    }

    #[test]
    fn a_line_time_stays_between_the_last_action_and_its_reading() {
        // Printed after it was read (a stepped clock): dated when read.
        let late = format!(r#"{{"ts_ms":{}}}"#, START + 9000);
        assert_eq!(time(&late, 1274, 1000), at(1274));
        // Printed before the last action the checks were told of: dated
        // at that action, as a line read then would have been.
        let early = format!(r#"{{"ts_ms":{}}}"#, START + 900);
        assert_eq!(time(&early, 1274, 1000), at(1000));
        // Printed before the run began, or a time past any clock.
        let before = format!(r#"{{"ts_ms":{}}}"#, START - 5);
        assert_eq!(time(&before, 1274, 1000), at(1000));
        assert_eq!(
            time(&format!(r#"{{"ts_ms":{}}}"#, u64::MAX), 1274, 1000),
            at(1274)
        );
    }
}
