//! The observer: watches every node life and judges the checks.
//!
//! The world tells it when lives start, pause, resume and end, what every
//! node hands its user, and what crosses the network. Each check keeps the
//! figure it reports, not only a verdict. The definitions (what "live",
//! "connected" and "owed" mean) are spelled out in `scenarios/README.md`.

use crate::check_id::CheckId;
use crate::net::{Bits, Network};
use crate::report::{CheckResult, Pct, Status};
use crate::scenario::{CheckSpec, Scenario};
use gossip_chat::{Config, DownReason, Duration, Instant, MsgId, NodeKey, TableSizes};
use std::collections::BTreeMap;

/// How many failure examples a check keeps.
const EXAMPLES: usize = 5;

/// Why a life is owed a complete view within a deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// An initial node (judged by `discovery`).
    Initial,
    /// A node joining later, or a restart (judged by `join`).
    Joiner,
}

/// Why a node went away, for the detection figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// Silent crash.
    Crash,
    /// Killed: connections reset.
    Kill,
    /// Paused.
    Pause,
    /// Graceful leave.
    Leave,
}

struct Life {
    slot: u32,
    start: Instant,
    end: Option<Instant>,
    /// Pauses: (from, to), `to` = MAX while paused.
    pauses: Vec<(Instant, Instant)>,
    roster: Bits,
    roster_n: u32,
    /// Members in the roster that are live now.
    known_live: u32,
    view_from: Option<Instant>,
    view_at: Option<Instant>,
    start_kind: Start,
}

impl Life {
    fn up_over(&self, from: Instant, to: Instant) -> bool {
        self.start <= from
            && self.end.is_none_or(|e| e > to)
            && !self.pauses.iter().any(|&(a, b)| a <= to && b > from)
    }
    fn paused(&self) -> bool {
        self.pauses.last().is_some_and(|p| p.1 == Instant::MAX)
    }
    fn up(&self) -> bool {
        self.end.is_none() && !self.paused()
    }
}

struct Down {
    slot: u32,
    at: Instant,
    gone: Gone,
    pending: Bits,
    open: bool,
}

struct Msg {
    id: MsgId,
    sender: u32,
    sent: Instant,
    delivered: Bits,
    copies: u32,
}

#[derive(Default)]
struct Counter {
    judged: u64,
    failed: u64,
    examples: Vec<String>,
}

impl Counter {
    fn fail(&mut self, example: impl FnOnce() -> String) {
        self.failed += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(example());
        }
    }
}

/// Bytes and messages by kind.
#[derive(Default, Clone)]
pub struct Traffic {
    /// (kind, messages, bytes), in first-seen order.
    pub kinds: Vec<(&'static str, u64, u64)>,
    /// Chat copies sent (live floods and inside history batches).
    pub chat_copies: u64,
}

/// The observer of one run.
pub struct Observer {
    spec: CheckSpec,
    cfg: Config,
    lives: Vec<Life>,
    current: Vec<Option<u32>>,
    live: Bits,
    live_n: u32,
    unconverged: Vec<u32>,
    downs: Vec<Down>,
    open_down: Vec<Option<u32>>,
    msgs: Vec<Msg>,
    msg_index: BTreeMap<MsgId, u32>,
    streams: BTreeMap<NodeKey, u32>,
    /// Per life, per stream: the last seq delivered.
    last_seq: Vec<Vec<u64>>,
    /// Figures.
    pub traffic: Traffic,
    delivery_ms: Vec<u32>,
    detect_ms: Vec<u32>,
    leave_ms: Vec<u32>,
    discovery_ms: Vec<u32>,
    join_ms: Vec<u32>,
    discovery: Counter,
    join: Counter,
    detection: Counter,
    false_removal: Counter,
    delivery: Counter,
    order: Counter,
    duplicates: Counter,
    bounded: Counter,
    eventual: Counter,
    unknown_chats: u64,
    /// Largest table sizes seen.
    pub max_tables: TableSizes,
    /// Longest queue of inputs held for a paused node.
    pub max_held: usize,
    /// Most events queued at once.
    pub max_queue: usize,
    liveness_from: Option<Instant>,
    converged_at: Option<Instant>,
    convergence_examples: Vec<String>,
    lossy: bool,
    /// Slots that misbehaved: nothing is expected of them or about them.
    hostile: Bits,
    /// Per slot, the highest life a hostile node forged a death or leave
    /// of: removals of it up to that life are the forgery's doing.
    forged: Vec<u64>,
    /// Whether invented addresses were injected (else `invented_peers`
    /// judges only roster samples, and is skipped without any).
    ghosts_injected: bool,
    /// Per (life, invented address): listed in its roster now, and dials
    /// made while listed.
    ghosts: BTreeMap<(u32, u32), (bool, u32)>,
    /// Per life: dials to invented addresses that were not listed.
    probes: BTreeMap<u32, u32>,
    ghost_check: Counter,
    /// Dials by honest nodes to invented addresses.
    pub ghost_dials: u64,
}

fn ms(d: Duration) -> u32 {
    d.as_millis().min(u32::MAX as u64) as u32
}

impl Observer {
    /// An observer for `slots` node slots.
    pub fn new(sc: &Scenario, slots: usize, lossy: bool) -> Self {
        Observer {
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
            last_seq: Vec::new(),
            traffic: Traffic::default(),
            delivery_ms: Vec::new(),
            detect_ms: Vec::new(),
            leave_ms: Vec::new(),
            discovery_ms: Vec::new(),
            join_ms: Vec::new(),
            discovery: Counter::default(),
            join: Counter::default(),
            detection: Counter::default(),
            false_removal: Counter::default(),
            delivery: Counter::default(),
            order: Counter::default(),
            duplicates: Counter::default(),
            bounded: Counter::default(),
            eventual: Counter::default(),
            unknown_chats: 0,
            max_tables: TableSizes::default(),
            max_held: 0,
            max_queue: 0,
            liveness_from: None,
            converged_at: None,
            convergence_examples: Vec::new(),
            lossy,
            hostile: Bits::new(slots),
            forged: vec![0; slots],
            ghosts_injected: false,
            ghosts: BTreeMap::new(),
            probes: BTreeMap::new(),
            ghost_check: Counter::default(),
            ghost_dials: 0,
        }
    }

    /// The life id now running in `slot`.
    pub fn life_of(&self, slot: u32) -> Option<u32> {
        self.current[slot as usize]
    }

    // ---- liveness bookkeeping -------------------------------------------

    fn set_live(&mut self, slot: u32, on: bool, now: Instant) {
        // A hostile node is nobody's expectation: views need not hold it.
        let on = on && !self.hostile.get(slot as usize);
        if self.live.set(slot as usize, on) == on {
            return;
        }
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

    /// The view deadline of a life passed: judge it.
    pub fn view_deadline(&mut self, now: Instant, l: u32, net: &Network) {
        let life = &self.lives[l as usize];
        let Some(from) = life.view_from else { return };
        // Not judged: it went away, or a partition made it impossible, or
        // it misbehaved.
        if !life.up_over(from, now)
            || net.disturbed(from, now)
            || self.hostile.get(life.slot as usize)
        {
            return;
        }
        let slot = life.slot;
        let (counter, within) = match life.start_kind {
            Start::Initial => (&mut self.discovery, self.spec.discovery_within),
            Start::Joiner => (&mut self.join, self.spec.join_within),
        };
        counter.judged += 1;
        if life.view_at.is_none_or(|t| t - from > within) {
            let (k, n) = (life.known_live, self.live_n - 1);
            counter.fail(|| format!("n{slot} knew {k} of {n} live members {within} after {from}"));
        }
    }

    /// The node in `slot` goes away; returns the record id to judge at the
    /// detection deadline.
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
        if was_paused || self.hostile.get(slot as usize) {
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

    /// The detection deadline of a departure passed. Observers that a
    /// partition or clog cut off from the departed node in the meantime are
    /// not judged.
    pub fn down_deadline(&mut self, now: Instant, d: u32, net: &Network) {
        let down = &self.downs[d as usize];
        if !down.open {
            // It came back (a pause that ended): pending observers are
            // not judged.
            return;
        }
        let (slot, at, gone) = (down.slot, down.at, down.gone);
        let late: Vec<usize> = down
            .pending
            .iter()
            .filter(|&o| !net.separated(o, slot as usize, at, now))
            .collect();
        self.detection.judged += 1;
        if !late.is_empty() {
            let within = self.spec.detect_within;
            let n = late.len();
            self.detection.fail(|| {
                format!(
                    "n{slot} ({gone:?} at {at}) still listed by {n} live nodes {within} later, e.g. {}",
                    late.iter().take(3).map(|o| format!("n{o}")).collect::<Vec<_>>().join(" ")
                )
            });
        }
    }

    // ---- what nodes tell their users -----------------------------------

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

    /// A node left `slot`'s roster. `subject` is the life now in the
    /// removed slot with its current incarnation, if it is up.
    #[allow(clippy::too_many_arguments)]
    pub fn peer_down(
        &mut self,
        now: Instant,
        slot: u32,
        peer: u32,
        key: NodeKey,
        reason: DownReason,
        subject_inc: Option<u64>,
        net: &Network,
    ) {
        let Some(l) = self.current[slot as usize] else {
            return;
        };
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
        // No false removal: the removed node is up in the same life, and
        // nothing in the last detection window excuses it.
        if reason == DownReason::Dead {
            self.false_removal.judged += 1;
        }
        // Removals by or of a hostile node, and removals of a life whose
        // death or leave a hostile node forged, are the attack's doing.
        let attacked = self.hostile.get(slot as usize)
            || self.hostile.get(peer as usize)
            || key.incarnation <= self.forged[peer as usize];
        if reason == DownReason::Dead && subject_inc == Some(key.incarnation) && !attacked {
            let w = self.spec.detect_within;
            let from = Instant::from_millis(now.as_millis().saturating_sub(w.as_millis()));
            let Some(pl) = self.current[peer as usize] else {
                return;
            };
            let (obs, subj) = (&self.lives[l as usize], &self.lives[pl as usize]);
            let clean = |x: &Life| x.up_over(from.max(x.start), now);
            if clean(obs) && clean(subj) && !net.disturbed(from, now) {
                self.false_removal.fail(|| {
                    format!(
                        "n{slot} removed n{peer} as dead at {now} while it was up and reachable"
                    )
                });
            }
        }
    }

    /// A chat message reached the user of `slot`.
    pub fn chat(&mut self, now: Instant, slot: u32, id: MsgId, own: bool) {
        let Some(l) = self.current[slot as usize] else {
            return;
        };
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
                });
                self.msg_index.insert(id, m);
                m
            }
            None => {
                self.unknown_chats += 1;
                return;
            }
        };
        let stream = {
            let n = self.streams.len() as u32;
            *self.streams.entry(id.origin).or_insert(n)
        };
        let msg = &mut self.msgs[m as usize];
        if msg.delivered.set(l as usize, true) {
            self.duplicates
                .fail(|| format!("n{slot} got {} twice", show(id)));
            return;
        }
        msg.copies += 1;
        // A newcomer's catch-up on older messages is not delivery latency.
        if !own && self.lives[l as usize].start <= msg.sent {
            self.delivery_ms.push(ms(now - msg.sent));
        }
        if self.last_seq.len() <= l as usize {
            self.last_seq.resize_with(l as usize + 1, Vec::new);
        }
        let seqs = &mut self.last_seq[l as usize];
        if seqs.len() <= stream as usize {
            seqs.resize(stream as usize + 1, 0);
        }
        let last = &mut seqs[stream as usize];
        if id.seq <= *last {
            let was = *last;
            self.order
                .fail(|| format!("n{slot} got {} after #{was}", show(id)));
        } else {
            *last = id.seq;
        }
    }

    /// The delivery deadline of message `m` passed: every node connected to
    /// its sender must hold it.
    pub fn delivery_deadline(&mut self, now: Instant, m: u32, net: &Network) {
        let msg = &self.msgs[m as usize];
        let from = Instant::from_millis(
            msg.sent
                .as_millis()
                .saturating_sub(self.spec.join_grace.as_millis()),
        );
        let sender = &self.lives[msg.sender as usize];
        if !sender.up_over(from, now) || self.hostile.get(sender.slot as usize) {
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
        for (l, life) in self.lives.iter().enumerate() {
            if l as u32 == msg.sender
                || !life.up_over(from, now)
                || self.hostile.get(life.slot as usize)
            {
                continue;
            }
            let lslot = life.slot as usize;
            if net.separated(sslot, lslot, from, now)
                || net.lossy_burst(sslot, lslot, from, now)
                || cut_join(life)
            {
                continue;
            }
            self.delivery.judged += 1;
            if !msg.delivered.get(l) {
                let (slot, id) = (life.slot, msg.id);
                self.delivery.fail(|| {
                    format!(
                        "n{slot} lacks {} {} after it was sent",
                        show(id),
                        now - msg.sent
                    )
                });
            }
        }
    }

    /// The id of the message just registered by `chat(.., own = true)`.
    pub fn last_msg(&self) -> u32 {
        self.msgs.len() as u32 - 1
    }

    /// Messages sent so far.
    pub fn msgs_sent(&self) -> usize {
        self.msgs.len()
    }

    /// Counts one message sent on the wire.
    pub fn sent(&mut self, kind: &'static str, bytes: usize, chats: usize) {
        self.traffic.chat_copies += chats as u64;
        match self.traffic.kinds.iter_mut().find(|k| k.0 == kind) {
            Some(k) => {
                k.1 += 1;
                k.2 += bytes as u64;
            }
            None => self.traffic.kinds.push((kind, 1, bytes as u64)),
        }
    }

    // ---- state sampling and the liveness phase -------------------------

    /// One sample of a node's tables.
    pub fn tables(&mut self, slot: u32, t: TableSizes) {
        let m = &mut self.max_tables;
        m.members = m.members.max(t.members);
        m.connections = m.connections.max(t.connections);
        m.neighbours = m.neighbours.max(t.neighbours);
        m.dialing = m.dialing.max(t.dialing);
        m.streams = m.streams.max(t.streams);
        m.held = m.held.max(t.held);
        m.history = m.history.max(t.history);
        m.recent = m.recent.max(t.recent);
        let c = &self.cfg;
        let over = [
            ("members", t.members, c.max_members),
            ("connections", t.connections, c.max_connections * 4),
            ("neighbours", t.neighbours, c.max_connections),
            ("history", t.history, c.history_max),
            ("streams", t.streams, c.max_members * 2),
            ("recent", t.recent, 256),
            ("dialing", t.dialing, c.max_members),
        ];
        for (name, v, max) in over {
            self.bounded.judged += 1;
            if v > max {
                self.bounded
                    .fail(|| format!("n{slot}: {name} = {v} > {max}"));
            }
        }
    }

    /// The liveness phase begins: faults are over.
    pub fn liveness_begins(&mut self, now: Instant) {
        self.liveness_from = Some(now);
    }

    /// Whether the liveness phase converged (or there is none).
    pub fn converged(&self) -> bool {
        self.liveness_from.is_none() || self.converged_at.is_some()
    }

    /// Checks membership convergence at `now`: every live node lists
    /// exactly the live nodes.
    pub fn check_convergence(&mut self, now: Instant) {
        if self.converged_at.is_some() || self.liveness_from.is_none() {
            return;
        }
        let n = self.live_n;
        let all = self.current.iter().flatten().all(|&l| {
            let life = &self.lives[l as usize];
            let listed_hostile = self.hostile.iter().filter(|&h| life.roster.get(h)).count() as u32;
            !life.up()
                || self.hostile.get(life.slot as usize)
                || (life.known_live + 1 == n && life.roster_n - listed_hostile + 1 == n)
        });
        if all {
            self.converged_at = Some(now);
        }
    }

    /// End of run: judge what can only be judged at the end.
    pub fn finish(&mut self, now: Instant) {
        if self.liveness_from.is_none() {
            return;
        }
        if self.converged_at.is_none() {
            // Say whose view is off, and how.
            for &l in self.current.iter().flatten() {
                let life = &self.lives[l as usize];
                if !life.up()
                    || self.hostile.get(life.slot as usize)
                    || self.convergence_examples.len() >= EXAMPLES
                {
                    continue;
                }
                let extra: Vec<String> = life
                    .roster
                    .iter()
                    .filter(|&s| !self.live.get(s) && !self.hostile.get(s))
                    .map(|s| format!("n{s}"))
                    .collect();
                let missing: Vec<String> = self
                    .live
                    .iter()
                    .filter(|&s| s != life.slot as usize && !life.roster.get(s))
                    .map(|s| format!("n{s}"))
                    .collect();
                if !extra.is_empty() || !missing.is_empty() {
                    self.convergence_examples.push(format!(
                        "n{} lists down nodes [{}] and misses up nodes [{}]",
                        life.slot,
                        extra.join(" "),
                        missing.join(" ")
                    ));
                }
            }
        }
        // Every node up at the end holds every message that got out
        // (its sender is still up, or someone else has it) and was sent
        // after the node had been up for the grace period.
        let grace = self.spec.join_grace;
        for msg in &self.msgs {
            let sender = &self.lives[msg.sender as usize];
            let got_out = sender.end.is_none() || msg.copies >= 2;
            if !got_out || self.hostile.get(sender.slot as usize) {
                continue;
            }
            for &l in self.current.iter().flatten() {
                let life = &self.lives[l as usize];
                if !life.up()
                    || life.start + grace > msg.sent
                    || l == msg.sender
                    || self.hostile.get(life.slot as usize)
                {
                    continue;
                }
                self.eventual.judged += 1;
                if !msg.delivered.get(l as usize) {
                    let (slot, id) = (life.slot, msg.id);
                    self.eventual
                        .fail(|| format!("n{slot} never got {} (sent at {})", show(id), msg.sent));
                }
            }
        }
        let _ = now;
    }

    // ---- misbehaving nodes -------------------------------------------------

    /// The node in `slot` turns hostile: from now on nothing is expected of
    /// it or about it.
    pub fn misbehaves(&mut self, slot: u32, now: Instant) {
        if self.hostile.set(slot as usize, true) {
            return;
        }
        self.set_live(slot, false, now);
        for d in self.downs.iter_mut().filter(|d| d.open) {
            d.pending.set(slot as usize, false);
        }
    }

    /// Whether the node in `slot` misbehaved.
    pub fn is_hostile(&self, slot: u32) -> bool {
        self.hostile.get(slot as usize)
    }

    /// A hostile node forged the death or leave of `slot` in life `inc`.
    pub fn forged(&mut self, slot: u32, inc: u64) {
        let f = &mut self.forged[slot as usize];
        *f = (*f).max(inc);
    }

    /// Invented addresses went out in a bogus peer list.
    pub fn ghosts_injected(&mut self) {
        self.ghosts_injected = true;
    }

    /// Invented address `ghost` entered (`on`) or left the roster of the
    /// node in `slot`.
    pub fn ghost_listed(&mut self, slot: u32, ghost: u32, on: bool) {
        let Some(l) = self.current[slot as usize] else {
            return;
        };
        if self.hostile.get(slot as usize) {
            return;
        }
        let g = self.ghosts.entry((l, ghost)).or_insert((false, 0));
        if on && !g.0 {
            // Listed afresh (its entry was given up and evicted, then
            // announced again): the core counts failed dials anew.
            g.1 = 0;
        }
        g.0 = on;
    }

    /// The node in `slot` dialled invented address `ghost`. While the
    /// address is in its roster, the core gives it up after
    /// `max_dial_failures` failed dials in a row; after that it may only
    /// probe it as a dead member, one probe per `reconnect_interval` over
    /// all dead members.
    pub fn ghost_dial(&mut self, now: Instant, slot: u32, ghost: u32) {
        let Some(l) = self.current[slot as usize] else {
            return;
        };
        if self.hostile.get(slot as usize) {
            return;
        }
        self.ghost_dials += 1;
        let g = self.ghosts.entry((l, ghost)).or_insert((false, 0));
        let max = self.cfg.max_dial_failures;
        if g.0 {
            g.1 += 1;
            if g.1 == max + 1 {
                self.ghost_check.judged += 1;
                self.ghost_check.fail(|| {
                    format!("n{slot} dialled an invented address more than {max} times while listing it")
                });
            }
            return;
        }
        let p = self.probes.entry(l).or_insert(0);
        *p += 1;
        let up = now - self.lives[l as usize].start;
        let every = self.cfg.reconnect_interval.as_millis().max(1);
        let limit = 1 + up.as_millis() / every;
        if *p as u64 > limit {
            let n = *p;
            self.ghost_check.fail(|| {
                format!(
                    "n{slot} probed invented addresses {n} times in {up} (limit one per {})",
                    self.cfg.reconnect_interval
                )
            });
        }
    }

    /// A sample of the node in `slot` found the members it lists as up
    /// (by its events) no longer in its table: something evicted them.
    pub fn roster_lost(&mut self, slot: u32, lost: &[u32]) {
        self.ghost_check.judged += 1;
        if !lost.is_empty() {
            let l: Vec<String> = lost.iter().map(|s| format!("n{s}")).collect();
            self.ghost_check.fail(|| {
                format!(
                    "n{slot} lost {} from its table without a removal",
                    l.join(" ")
                )
            });
        }
    }

    /// The slots in the roster of the node in `slot`, by its events.
    pub fn roster_of(&self, slot: u32) -> Vec<u32> {
        match self.current[slot as usize] {
            Some(l) => self.lives[l as usize]
                .roster
                .iter()
                .map(|s| s as u32)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Invented addresses listed by honest lives now.
    pub fn ghosts_listed(&self) -> u64 {
        self.ghosts
            .iter()
            .filter(|((l, _), g)| g.0 && self.lives[*l as usize].up())
            .count() as u64
    }

    /// Most dials by one honest life to one invented address while listed,
    /// and most reconnect probes by one honest life.
    pub fn ghost_dial_peaks(&self) -> (u32, u32) {
        (
            self.ghosts.values().map(|g| g.1).max().unwrap_or(0),
            self.probes.values().copied().max().unwrap_or(0),
        )
    }

    // ---- results ----------------------------------------------------------

    /// Every check with its figure.
    pub fn results(&self, end: Instant) -> Vec<CheckResult> {
        let sp = &self.spec;
        let mut out = Vec::new();
        let mk = |name: &'static str, always: bool, c: &Counter, figure: String| CheckResult {
            name: name.to_string(),
            kind: if always { "always" } else { "eventually" }.to_string(),
            status: if c.failed == 0 {
                Status::Pass
            } else {
                Status::Fail
            },
            figure,
            judged: c.judged,
            failed: c.failed,
            examples: c.examples.clone(),
        };
        let disc = Pct::of(&self.discovery_ms);
        out.push(mk(
            "discovery",
            false,
            &self.discovery,
            format!(
                "full view {} after the last start (limit {})",
                disc.short(),
                sp.discovery_within
            ),
        ));
        let join = Pct::of(&self.join_ms);
        out.push(mk(
            "join",
            false,
            &self.join,
            format!(
                "joiner knows all live {} (limit {})",
                join.short(),
                sp.join_within
            ),
        ));
        let det = Pct::of(&self.detect_ms);
        out.push(mk(
            "detection",
            false,
            &self.detection,
            format!(
                "removed {} over {} observer samples of {} departures (limit {})",
                det.short(),
                det.n,
                self.downs.iter().filter(|d| d.gone != Gone::Leave).count(),
                sp.detect_within
            ),
        ));
        out.push(mk(
            "no_false_removal",
            true,
            &self.false_removal,
            format!(
                "{} false removals among {} removals as dead",
                self.false_removal.failed, self.false_removal.judged
            ),
        ));
        let lat = Pct::of(&self.delivery_ms);
        out.push(mk(
            "delivery",
            false,
            &self.delivery,
            format!(
                "{} of {} owed deliveries within {} ({}); latency {}",
                self.delivery.judged - self.delivery.failed,
                self.delivery.judged,
                sp.deliver_within,
                ratio(
                    self.delivery.judged - self.delivery.failed,
                    self.delivery.judged
                ),
                lat.short()
            ),
        ));
        out.push(mk(
            "order",
            true,
            &self.order,
            format!("{} out-of-order deliveries", self.order.failed),
        ));
        let mut dups = mk(
            "no_duplicates",
            true,
            &self.duplicates,
            format!(
                "{} duplicates handed to users ({} unknown messages)",
                self.duplicates.failed, self.unknown_chats
            ),
        );
        if self.unknown_chats > 0 {
            dups.status = Status::Fail;
        }
        out.push(dups);
        let t = &self.max_tables;
        out.push(mk(
            "bounded_state",
            true,
            &self.bounded,
            format!(
                "max members {} conns {} neighbours {} history {} held {} recent {} paused-queue {}",
                t.members, t.connections, t.neighbours, t.history, t.held, t.recent, self.max_held
            ),
        ));
        let (listed_max, probes_max) = self.ghost_dial_peaks();
        let mut ghosts = mk(
            "invented_peers",
            true,
            &self.ghost_check,
            format!(
                "{} dials to invented addresses; at most {} per address while listed (limit {}), {} reconnect probes per node",
                self.ghost_dials,
                listed_max,
                self.cfg.max_dial_failures,
                probes_max,
            ),
        );
        if !self.ghosts_injected {
            // Roster samples are judged under any attack: skipped only
            // when there was nothing to judge.
            ghosts.figure = format!(
                "no invented addresses injected; {} roster samples",
                self.ghost_check.judged
            );
            if self.ghost_check.judged == 0 && self.ghost_check.failed == 0 {
                ghosts.status = Status::Skip;
                ghosts.figure = "no invented addresses injected".into();
            }
        }
        out.push(ghosts);
        let mut conv = CheckResult {
            name: "convergence".into(),
            kind: "eventually".into(),
            status: Status::Pass,
            figure: String::new(),
            judged: 0,
            failed: 0,
            examples: Vec::new(),
        };
        match (self.liveness_from, self.converged_at) {
            (None, _) => {
                conv.status = Status::Skip;
                conv.figure = "no liveness phase".into();
            }
            (Some(from), Some(at)) => {
                conv.judged = 1;
                conv.figure = format!(
                    "membership converged {} after faults ended (limit {})",
                    at - from,
                    sp.converge_within
                );
                if at - from > sp.converge_within {
                    conv.status = Status::Fail;
                    conv.failed = 1;
                }
            }
            (Some(from), None) => {
                conv.judged = 1;
                conv.failed = 1;
                conv.status = Status::Fail;
                conv.figure = format!("membership not converged {} after faults ended", end - from);
                conv.examples = self.convergence_examples.clone();
            }
        }
        out.push(conv);
        let mut ev = mk(
            "eventual_delivery",
            false,
            &self.eventual,
            format!(
                "{} of {} messages held at the end ({})",
                self.eventual.judged - self.eventual.failed,
                self.eventual.judged,
                ratio(
                    self.eventual.judged - self.eventual.failed,
                    self.eventual.judged
                )
            ),
        );
        if self.liveness_from.is_none() {
            ev.status = Status::Skip;
            ev.figure = "no liveness phase".into();
        }
        out.push(ev);
        for c in &mut out {
            let id = CheckId::from_name(&c.name);
            if id.is_some_and(|id| sp.skip.contains(&id)) {
                c.status = Status::Skip;
            } else if id.is_some_and(|id| sp.xfail.contains(&id)) {
                c.status = match c.status {
                    Status::Fail => Status::Xfail,
                    Status::Pass => Status::Xpass,
                    s => s,
                };
            }
        }
        let _ = self.lossy;
        out
    }

    /// Detection figure (crash, kill, pause).
    pub fn detection_pct(&self) -> Pct {
        Pct::of(&self.detect_ms)
    }
    /// Leave removal figure.
    pub fn leave_pct(&self) -> Pct {
        Pct::of(&self.leave_ms)
    }
    /// Delivery latency figure.
    pub fn delivery_pct(&self) -> Pct {
        Pct::of(&self.delivery_ms)
    }
    /// Join convergence figure.
    pub fn join_pct(&self) -> Pct {
        Pct::of(&self.join_ms)
    }
    /// Deliveries to users, own messages excluded.
    pub fn deliveries(&self) -> u64 {
        self.delivery_ms.len() as u64
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

/// `n3/1#7`: sender slot, incarnation and seq.
fn show(id: MsgId) -> String {
    let slot = crate::addr::slot_of(&id.origin.addr, usize::MAX)
        .map_or_else(|| id.origin.addr.to_string(), |s| format!("n{s}"));
    format!("{slot}/{}#{}", id.origin.incarnation, id.seq)
}

fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        "none owed".into()
    } else {
        format!("{:.2}%", a as f64 * 100.0 / b as f64)
    }
}
