//! The facts every check reads: node lives and their rosters, departures,
//! and the chat messages sent and delivered.
//!
//! One owner keeps them; the checks judge from them and keep only their
//! own counters and figures.

use super::{ms, Gone, Start};
use crate::net::Bits;
use crate::scenario::{CheckSpec, Scenario};
use gossip_chat::{Config, Instant, MsgId, NodeKey};
use std::collections::BTreeMap;

/// One life of one node: from its start to its crash, kill or leave.
pub struct Life {
    /// The slot it runs in.
    pub slot: u32,
    /// When it started.
    pub start: Instant,
    /// When it ended, if it did.
    pub end: Option<Instant>,
    /// Pauses: (from, to), `to` = MAX while paused.
    pub pauses: Vec<(Instant, Instant)>,
    /// Slow spells (a `slow` fault), until its late inputs are handled:
    /// (from, to).
    pub slow: Vec<(Instant, Instant)>,
    /// The slots in its roster, by its events.
    pub roster: Bits,
    /// How many.
    pub roster_n: u32,
    /// Members in the roster that are live now.
    pub known_live: u32,
    /// Since when it owes a complete view.
    pub view_from: Option<Instant>,
    /// When its view was first complete.
    pub view_at: Option<Instant>,
    /// Initial node or joiner.
    pub start_kind: Start,
}

impl Life {
    /// Up (started, not ended, not paused) over the whole of `from..=to`.
    pub fn up_over(&self, from: Instant, to: Instant) -> bool {
        self.start <= from
            && self.end.is_none_or(|e| e > to)
            && !self.pauses.iter().any(|&(a, b)| a <= to && b > from)
    }
    /// Slow at any time in `from..=to`.
    pub fn slow_during(&self, from: Instant, to: Instant) -> bool {
        self.slow.iter().any(|&(a, b)| a <= to && b > from)
    }
    /// Paused now.
    pub fn paused(&self) -> bool {
        self.pauses.last().is_some_and(|p| p.1 == Instant::MAX)
    }
    /// Up now.
    pub fn up(&self) -> bool {
        self.end.is_none() && !self.paused()
    }
}

/// A departure (crash, kill, pause or leave) and who still lists it.
pub struct Down {
    /// The slot that went away.
    pub slot: u32,
    /// When.
    pub at: Instant,
    /// How.
    pub gone: Gone,
    /// Live honest observers that listed it and have not removed it yet.
    pub pending: Bits,
    /// Still away (a pause that ended closes it).
    pub open: bool,
}

/// A chat message a user sent.
pub struct Msg {
    /// Its id.
    pub id: MsgId,
    /// The sender's life.
    pub sender: u32,
    /// When it was sent.
    pub sent: Instant,
    /// The lives that got it.
    pub delivered: Bits,
    /// How many lives got it (the sender included).
    pub copies: u32,
    /// Hash of what its author signed besides the id (name, text, time:
    /// [`super::content_hash`]), when the sender's delivery told it.
    pub content: Option<u64>,
}

/// What one delivery to a user was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A message nobody sent.
    Unknown {
        /// The receiving slot.
        slot: u32,
        /// The id it claimed.
        id: MsgId,
    },
    /// The first time this life got it.
    First {
        /// The receiving slot.
        slot: u32,
        /// The receiving life.
        life: u32,
        /// The message.
        id: MsgId,
        /// Index of its sender's stream.
        stream: u32,
        /// Its name, text or time differ from what its sender sent.
        altered: bool,
    },
    /// This life had it already.
    Again {
        /// The receiving slot.
        slot: u32,
        /// The message.
        id: MsgId,
        /// Its name, text or time differ from what its sender sent.
        altered: bool,
    },
}

/// A removal from a roster, as a node told its user.
#[derive(Clone, Copy, Debug)]
pub struct Removal {
    /// When.
    pub now: Instant,
    /// The node that removed.
    pub slot: u32,
    /// The life of the node that removed.
    pub life: u32,
    /// The slot removed.
    pub peer: u32,
    /// The life removed.
    pub key: NodeKey,
    /// Removed as dead (not departed).
    pub dead: bool,
    /// The incarnation now up in the removed slot, if any.
    pub subject_inc: Option<u64>,
}

/// The shared facts of one run.
pub struct Facts {
    /// Deadlines and the scenario's check lists.
    pub spec: CheckSpec,
    /// The nodes' configuration.
    pub cfg: Config,
    /// Every life, by id.
    pub lives: Vec<Life>,
    /// The life now in each slot.
    pub current: Vec<Option<u32>>,
    /// Slots up now (honest only).
    pub live: Bits,
    /// How many.
    pub live_n: u32,
    /// Lives owed a view that do not have it yet.
    unconverged: Vec<u32>,
    /// Every departure, by id.
    pub downs: Vec<Down>,
    open_down: Vec<Option<u32>>,
    /// Every message sent, by id.
    pub msgs: Vec<Msg>,
    msg_index: BTreeMap<MsgId, u32>,
    streams: BTreeMap<NodeKey, u32>,
    /// Time for an initial node to know every live member.
    pub discovery_ms: Vec<u32>,
    /// Time for a joiner to know every live member.
    pub join_ms: Vec<u32>,
    /// Time from a crash, kill or pause to its removal, per observer.
    pub detect_ms: Vec<u32>,
    /// Time from a leave to its removal, per observer.
    pub leave_ms: Vec<u32>,
    /// Delivery latency, own messages and catch-up excluded.
    pub delivery_ms: Vec<u32>,
    /// Slots that misbehaved: nothing is expected of them or about them.
    pub hostile: Bits,
    /// Spells without the cluster key (a `no-key` attack): (slot, from,
    /// until).
    pub no_key: Vec<(u32, Instant, Instant)>,
    /// Forged chats and impostor hellos the hostile nodes sent so far.
    pub forgeries: u64,
    /// When the liveness phase began, if there is one.
    pub liveness_from: Option<Instant>,
    /// When a node last started, stopped, paused, resumed or turned
    /// hostile.
    pub changed_at: Option<Instant>,
    /// Messages (by id) that no honest live node held in its history at
    /// the end of a run with a liveness phase (set just before the end is
    /// judged).
    pub held_nowhere: Bits,
}

impl Facts {
    /// Facts for `slots` node slots.
    pub fn new(sc: &Scenario, slots: usize) -> Self {
        Facts {
            spec: sc.checks.clone(),
            cfg: sc.config.clone(),
            lives: Vec::new(),
            current: vec![None; slots],
            live: Bits::new(slots),
            live_n: 0,
            unconverged: Vec::new(),
            downs: Vec::new(),
            open_down: vec![None; slots],
            msgs: Vec::new(),
            msg_index: BTreeMap::new(),
            streams: BTreeMap::new(),
            discovery_ms: Vec::new(),
            join_ms: Vec::new(),
            detect_ms: Vec::new(),
            leave_ms: Vec::new(),
            delivery_ms: Vec::new(),
            hostile: Bits::new(slots),
            no_key: Vec::new(),
            forgeries: 0,
            liveness_from: None,
            changed_at: None,
            held_nowhere: Bits::default(),
        }
    }

    /// Whether the node in `slot` lacked the cluster key at `at`.
    pub fn lacks_key(&self, slot: u32, at: Instant) -> bool {
        self.no_key
            .iter()
            .any(|&(s, from, until)| s == slot && from <= at && at < until)
    }

    /// The index of message `id`, if a user sent it.
    pub fn msg_of(&self, id: &MsgId) -> Option<u32> {
        self.msg_index.get(id).copied()
    }

    /// Whether the node in `slot` misbehaved.
    pub fn is_hostile(&self, slot: u32) -> bool {
        self.hostile.get(slot as usize)
    }

    fn set_live(&mut self, slot: u32, on: bool, now: Instant) {
        // A hostile node is nobody's expectation: views need not hold it.
        let on = on && !self.is_hostile(slot);
        if self.live.set(slot as usize, on) == on {
            return;
        }
        self.changed_at = Some(now);
        if on {
            self.live_n += 1;
        } else {
            self.live_n -= 1;
        }
        for l in self.current.iter().flatten() {
            let life = &mut self.lives[*l as usize];
            if life.slot != slot && life.roster.get(slot as usize) {
                if on {
                    life.known_live += 1;
                } else {
                    life.known_live -= 1;
                }
            }
        }
        if !on {
            self.recheck_views(Some(now));
        }
    }

    fn recheck_views(&mut self, now: Option<Instant>) {
        let mut i = 0;
        while i < self.unconverged.len() {
            let l = self.unconverged[i];
            if self.try_converge(l, now) {
                self.unconverged.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn try_converge(&mut self, l: u32, now: Option<Instant>) -> bool {
        let live_n = self.live_n;
        let life = &mut self.lives[l as usize];
        if life.view_at.is_some() {
            return true;
        }
        let Some(from) = life.view_from else {
            return false;
        };
        if life.up() && life.known_live + 1 >= live_n {
            let at = now.unwrap_or(from).max(from);
            life.view_at = Some(at);
            let d = ms(at - from);
            match life.start_kind {
                Start::Initial => self.discovery_ms.push(d),
                Start::Joiner => self.join_ms.push(d),
            }
            return true;
        }
        false
    }

    /// A node life starts in `slot`; returns its id.
    pub fn start(&mut self, now: Instant, slot: u32, kind: Start) -> u32 {
        let id = self.lives.len() as u32;
        self.lives.push(Life {
            slot,
            start: now,
            end: None,
            pauses: Vec::new(),
            slow: Vec::new(),
            roster: Bits::new(self.current.len()),
            roster_n: 0,
            known_live: 0,
            view_from: (kind == Start::Joiner).then_some(now),
            view_at: None,
            start_kind: kind,
        });
        self.current[slot as usize] = Some(id);
        self.back(slot);
        self.set_live(slot, true, now);
        if kind == Start::Joiner {
            self.unconverged.push(id);
        }
        id
    }

    /// The initial nodes have all started: their view is judged from now.
    pub fn discovery_begins(&mut self, now: Instant) {
        for l in self.current.iter().flatten() {
            let life = &mut self.lives[*l as usize];
            if life.start_kind == Start::Initial && life.view_from.is_none() {
                life.view_from = Some(now);
                self.unconverged.push(*l);
            }
        }
        self.recheck_views(Some(now));
    }

    /// The node in `slot` goes away; returns the departure to judge at
    /// the detection deadline.
    pub fn gone(&mut self, now: Instant, slot: u32, gone: Gone) -> Option<u32> {
        let l = self.current[slot as usize]?;
        let was_paused = self.lives[l as usize].paused();
        match gone {
            Gone::Pause => self.lives[l as usize].pauses.push((now, Instant::MAX)),
            _ => {
                self.lives[l as usize].end = Some(now);
                self.current[slot as usize] = None;
            }
        }
        self.set_live(slot, false, now);
        // This node no longer observes anything.
        for d in self.downs.iter_mut().filter(|d| d.open) {
            d.pending.set(slot as usize, false);
        }
        if was_paused || self.is_hostile(slot) {
            // Already counted as down when it paused; or hostile, and
            // nobody owes it a removal.
            return None;
        }
        let mut pending = Bits::new(self.current.len());
        for l in self.current.iter().flatten() {
            let life = &self.lives[*l as usize];
            if life.up()
                && life.slot != slot
                && life.roster.get(slot as usize)
                && !self.hostile.get(life.slot as usize)
            {
                pending.set(life.slot as usize, true);
            }
        }
        let id = self.downs.len() as u32;
        self.downs.push(Down {
            slot,
            at: now,
            gone,
            pending,
            open: true,
        });
        self.open_down[slot as usize] = Some(id);
        Some(id)
    }

    /// The node in `slot` is slow from `from` until `until` (its late
    /// inputs handled).
    pub fn slowed(&mut self, slot: u32, from: Instant, until: Instant) {
        if let Some(l) = self.current[slot as usize] {
            self.lives[l as usize].slow.push((from, until));
        }
    }

    /// The paused node in `slot` goes on.
    pub fn resume(&mut self, slot: u32, now: Instant) {
        if let Some(l) = self.current[slot as usize] {
            if let Some(p) = self.lives[l as usize].pauses.last_mut() {
                if p.1 == Instant::MAX {
                    p.1 = now;
                }
            }
        }
        self.back(slot);
        self.set_live(slot, true, now);
    }

    fn back(&mut self, slot: u32) {
        if let Some(d) = self.open_down[slot as usize].take() {
            self.downs[d as usize].open = false;
        }
    }

    /// A node entered `slot`'s roster.
    pub fn peer_up(&mut self, now: Instant, slot: u32, peer: u32) {
        let Some(l) = self.current[slot as usize] else {
            return;
        };
        let life = &mut self.lives[l as usize];
        if life.roster.set(peer as usize, true) {
            return;
        }
        life.roster_n += 1;
        if self.live.get(peer as usize) {
            life.known_live += 1;
            if life.view_at.is_none()
                && life.view_from.is_some()
                && life.known_live + 1 >= self.live_n
            {
                // Converged; it leaves the waiting list on the next recheck.
                self.try_converge(l, Some(now));
            }
        }
    }

    /// A node left `slot`'s roster; returns the removal if `slot` is up.
    pub fn peer_down(
        &mut self,
        now: Instant,
        slot: u32,
        peer: u32,
        key: NodeKey,
        dead: bool,
        subject_inc: Option<u64>,
    ) -> Option<Removal> {
        let l = self.current[slot as usize]?;
        let life = &mut self.lives[l as usize];
        if life.roster.set(peer as usize, false) {
            life.roster_n -= 1;
            if self.live.get(peer as usize) {
                life.known_live -= 1;
            }
        }
        if let Some(d) = self.open_down[peer as usize] {
            let down = &mut self.downs[d as usize];
            if down.pending.set(slot as usize, false) {
                let t = ms(now - down.at);
                match down.gone {
                    Gone::Leave => self.leave_ms.push(t),
                    _ => self.detect_ms.push(t),
                }
            }
        }
        Some(Removal {
            now,
            slot,
            life: l,
            peer,
            key,
            dead,
            subject_inc,
        })
    }

    /// A chat message reached the user of `slot`; `own` if it sent it;
    /// `content` is the hash of its name, text and time, if known.
    /// Returns what the delivery was, or nothing if `slot` is not up.
    pub fn chat(
        &mut self,
        now: Instant,
        slot: u32,
        id: MsgId,
        own: bool,
        content: Option<u64>,
    ) -> Option<Delivery> {
        let l = self.current[slot as usize]?;
        let m = match self.msg_index.get(&id) {
            Some(&m) => m,
            None if own => {
                let m = self.msgs.len() as u32;
                self.msgs.push(Msg {
                    id,
                    sender: l,
                    sent: now,
                    delivered: Bits::default(),
                    copies: 0,
                    content,
                });
                self.msg_index.insert(id, m);
                m
            }
            None => return Some(Delivery::Unknown { slot, id }),
        };
        let stream = {
            let n = self.streams.len() as u32;
            *self.streams.entry(id.origin).or_insert(n)
        };
        let msg = &mut self.msgs[m as usize];
        let altered = matches!((msg.content, content), (Some(a), Some(b)) if a != b);
        if msg.delivered.set(l as usize, true) {
            return Some(Delivery::Again { slot, id, altered });
        }
        msg.copies += 1;
        // A newcomer's catch-up on older messages is not delivery latency.
        if !own && self.lives[l as usize].start <= msg.sent {
            self.delivery_ms.push(ms(now - msg.sent));
        }
        Some(Delivery::First {
            slot,
            life: l,
            id,
            stream,
            altered,
        })
    }

    /// The messages the life now in `slot` got, in the order sent.
    pub fn delivered_to(&self, slot: u32) -> Vec<MsgId> {
        let Some(l) = self.current[slot as usize] else {
            return Vec::new();
        };
        self.msgs
            .iter()
            .filter(|m| m.delivered.get(l as usize))
            .map(|m| m.id)
            .collect()
    }

    /// The node in `slot` turns hostile.
    pub fn misbehaves(&mut self, slot: u32, now: Instant) {
        if self.hostile.set(slot as usize, true) {
            return;
        }
        self.set_live(slot, false, now);
        for d in self.downs.iter_mut().filter(|d| d.open) {
            d.pending.set(slot as usize, false);
        }
    }

    /// Life-seconds of up time, for per-node rates.
    pub fn node_seconds(&self, end: Instant) -> f64 {
        self.lives
            .iter()
            .map(|l| {
                let stop = l.end.unwrap_or(end);
                let paused: u64 = l
                    .pauses
                    .iter()
                    .map(|&(a, b)| (b.min(stop) - a).as_millis())
                    .sum();
                (stop - l.start).as_millis().saturating_sub(paused) as f64 / 1000.0
            })
            .sum()
    }
}
