//! The observer: the one owner of a run's facts and checks. The world
//! calls it; it updates the facts and forwards each one to the checks.

use super::check::{Check, End};
use super::components::Components;
use super::facts::Facts;
use super::{
    Admission, BoundedState, Convergence, Delivery, Detection, Discovery, EventualDelivery,
    ForgedState, Forgery, Gone, InventedPeers, Join, NoDuplicates, NoFalseRemoval, Order,
    OverlayConnected, Start,
};
use crate::net::Network;
use crate::report::{CheckResult, Pct, Status};
use crate::scenario::Scenario;
use crate::series::Recorder;
use gossip_chat::{DownReason, Instant, MsgId, NodeKey, TableSizes};

/// Bytes and messages by kind.
#[derive(Default, Clone)]
pub struct Traffic {
    /// (kind, messages, bytes), in first-seen order.
    pub kinds: Vec<(&'static str, u64, u64)>,
    /// Chat copies sent (live floods and inside history batches).
    pub chat_copies: u64,
    /// Writes: the frames a node hands one connection in one step, which
    /// its transport writes at once (one segment when small).
    pub writes: u64,
    /// Bytes of membership and connection upkeep (a newcomer's catch-up
    /// included).
    pub idle_bytes: u64,
    /// Bytes of anti-entropy: digests and the history they ask for.
    pub repair_bytes: u64,
    /// Messages of every kind.
    pub msgs: u64,
    /// The traffic while chat flows (see [`Flowing`]).
    pub flowing: Option<Flowing>,
}

/// Messages and writes counted from the first chat a user sent to the
/// last: what chat costs once a group has formed, without the forming
/// before it or the quiet after.
#[derive(Default, Clone, Copy)]
pub struct Flowing {
    /// Messages and writes so far when the first chat was sent.
    pub first: (u64, u64),
    /// The same when the latest chat was sent.
    pub last: (u64, u64),
    /// Chats sent after the first.
    pub chats: u64,
}

impl Flowing {
    /// Messages and writes per chat sent while chat flowed, if more than
    /// one chat was sent.
    pub fn per_chat(&self) -> Option<(f64, f64)> {
        (self.chats > 0).then(|| {
            let n = self.chats as f64;
            (
                (self.last.0 - self.first.0) as f64 / n,
                (self.last.1 - self.first.1) as f64 / n,
            )
        })
    }
}

impl Traffic {
    /// A user sent a chat message: marks the traffic so far.
    fn chat_sent(&mut self) {
        let now = (self.msgs, self.writes);
        match &mut self.flowing {
            Some(f) => {
                f.last = now;
                f.chats += 1;
            }
            None => {
                self.flowing = Some(Flowing {
                    first: now,
                    last: now,
                    chats: 0,
                })
            }
        }
    }
}

/// Every check, one field each.
struct Checks {
    discovery: Discovery,
    join: Join,
    detection: Detection,
    no_false_removal: NoFalseRemoval,
    delivery: Delivery,
    order: Order,
    no_duplicates: NoDuplicates,
    bounded_state: BoundedState,
    invented_peers: InventedPeers,
    convergence: Convergence,
    overlay_connected: OverlayConnected,
    eventual_delivery: EventualDelivery,
    admission: Admission,
    forgery: Forgery,
    forged_state: ForgedState,
}

impl Checks {
    /// Every check, in report order ([`CheckId::ALL`]).
    fn all(&self) -> [&dyn Check; 15] {
        [
            &self.discovery,
            &self.join,
            &self.detection,
            &self.no_false_removal,
            &self.delivery,
            &self.order,
            &self.no_duplicates,
            &self.bounded_state,
            &self.invented_peers,
            &self.convergence,
            &self.overlay_connected,
            &self.eventual_delivery,
            &self.admission,
            &self.forgery,
            &self.forged_state,
        ]
    }

    fn all_mut(&mut self) -> [&mut dyn Check; 15] {
        [
            &mut self.discovery,
            &mut self.join,
            &mut self.detection,
            &mut self.no_false_removal,
            &mut self.delivery,
            &mut self.order,
            &mut self.no_duplicates,
            &mut self.bounded_state,
            &mut self.invented_peers,
            &mut self.convergence,
            &mut self.overlay_connected,
            &mut self.eventual_delivery,
            &mut self.admission,
            &mut self.forgery,
            &mut self.forged_state,
        ]
    }
}

/// The observer of one run.
pub struct Observer {
    facts: Facts,
    checks: Checks,
    /// Figures.
    pub traffic: Traffic,
    /// Largest table sizes seen.
    pub max_tables: TableSizes,
    /// Longest queue of inputs held for a paused node.
    pub max_held: usize,
    /// Most events queued at once.
    pub max_queue: usize,
    /// Dials by honest nodes to invented addresses.
    pub ghost_dials: u64,
    /// The run's time series, when asked for (see [`crate::series`]).
    pub series: Option<Box<Recorder>>,
    /// Repair bytes by minute.
    pub repair_minutes: crate::minutes::BytesByMinute,
    /// Bytes of every kind by minute.
    pub all_minutes: crate::minutes::BytesByMinute,
    /// Links each chat crossed to each life.
    pub hops: super::Hops,
}

impl Observer {
    /// An observer for `slots` node slots.
    pub fn new(sc: &Scenario, slots: usize, lossy: bool) -> Self {
        // Loss is judged through the network's record of bursts, not here.
        let _ = lossy;
        Observer {
            facts: Facts::new(sc, slots),
            checks: Checks {
                discovery: Discovery::default(),
                join: Join::default(),
                detection: Detection::default(),
                no_false_removal: NoFalseRemoval::default(),
                delivery: Delivery::default(),
                order: Order::default(),
                no_duplicates: NoDuplicates::default(),
                bounded_state: BoundedState::new(&sc.config),
                invented_peers: InventedPeers::default(),
                convergence: Convergence::default(),
                overlay_connected: OverlayConnected::default(),
                eventual_delivery: EventualDelivery::default(),
                admission: Admission::default(),
                forgery: Forgery::default(),
                forged_state: ForgedState::default(),
            },
            traffic: Traffic::default(),
            max_tables: TableSizes::default(),
            max_held: 0,
            max_queue: 0,
            ghost_dials: 0,
            series: None,
            repair_minutes: Default::default(),
            all_minutes: Default::default(),
            hops: Default::default(),
        }
    }

    /// The shared facts.
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// The life id now running in `slot`.
    pub fn life_of(&self, slot: u32) -> Option<u32> {
        self.facts.current[slot as usize]
    }

    // ---- lives ----------------------------------------------------------

    /// A node life starts in `slot`; returns its id.
    pub fn start(&mut self, now: Instant, slot: u32, kind: Start) -> u32 {
        self.facts.start(now, slot, kind)
    }

    /// The initial nodes have all started: their view is judged from now.
    pub fn discovery_begins(&mut self, now: Instant) {
        self.facts.discovery_begins(now);
    }

    /// The view deadline of a life passed: judge it.
    pub fn view_deadline(&mut self, now: Instant, l: u32, net: &Network) {
        for c in self.checks.all_mut() {
            c.view_deadline(&self.facts, now, l, net);
        }
    }

    /// The node in `slot` goes away; returns the record id to judge at the
    /// detection deadline.
    pub fn gone(&mut self, now: Instant, slot: u32, gone: Gone) -> Option<u32> {
        self.facts.gone(now, slot, gone)
    }

    /// The node in `slot` is slow from `from` until `until`: its removal
    /// in that time (and `detect_within` after) is no false removal.
    pub fn slowed(&mut self, slot: u32, from: Instant, until: Instant) {
        self.facts.slowed(slot, from, until);
    }

    /// The paused node in `slot` goes on.
    pub fn resume(&mut self, slot: u32, now: Instant) {
        self.facts.resume(slot, now);
    }

    /// The detection deadline of a departure passed.
    pub fn down_deadline(&mut self, now: Instant, d: u32, net: &Network) {
        for c in self.checks.all_mut() {
            c.down_deadline(&self.facts, now, d, net);
        }
    }

    // ---- what nodes tell their users -----------------------------------

    /// A node entered `slot`'s roster.
    pub fn peer_up(&mut self, now: Instant, slot: u32, peer: u32) {
        self.facts.peer_up(now, slot, peer);
    }

    /// A node left `slot`'s roster. `subject_inc` is the incarnation now
    /// up in the removed slot, if any.
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
        let dead = reason == DownReason::Dead;
        let Some(r) = self
            .facts
            .peer_down(now, slot, peer, key, dead, subject_inc)
        else {
            return;
        };
        for c in self.checks.all_mut() {
            c.removal(&self.facts, &r, net);
        }
    }

    /// A chat message reached the user of `slot` (its name, text and time
    /// not told: see [`Observer::chat_content`]).
    pub fn chat(&mut self, now: Instant, slot: u32, id: MsgId, own: bool) {
        self.chat_content(now, slot, id, own, None);
    }

    /// A chat message reached the user of `slot`; `content` is
    /// [`super::content_hash`] of its name, text and time, if known (a
    /// delivery whose content differs from the sender's is a forgery).
    pub fn chat_content(
        &mut self,
        now: Instant,
        slot: u32,
        id: MsgId,
        own: bool,
        content: Option<u64>,
    ) {
        let timed = self.facts.delivery_ms.len();
        let Some(d) = self.facts.chat(now, slot, id, own, content) else {
            return;
        };
        if let (true, super::facts::Delivery::First { life, .. }) = (own, &d) {
            self.traffic.chat_sent();
            if let Some(m) = self.facts.msg_of(&id) {
                self.hops.sent(m, *life);
            }
        }
        if let (Some(s), super::facts::Delivery::First { .. }) = (&mut self.series, &d) {
            if own {
                s.chat_sent();
            } else {
                s.delivered(self.facts.delivery_ms.get(timed).copied());
            }
        }
        for c in self.checks.all_mut() {
            c.delivered(&self.facts, &d);
        }
    }

    /// The delivery deadline of message `m` passed: every node connected to
    /// its sender must hold it.
    pub fn delivery_deadline(&mut self, now: Instant, m: u32, net: &Network) {
        for c in self.checks.all_mut() {
            c.delivery_deadline(&self.facts, now, m, net);
        }
    }

    /// The id of the message just registered by `chat(.., own = true)`.
    pub fn last_msg(&self) -> u32 {
        self.facts.msgs.len() as u32 - 1
    }

    /// Messages sent so far.
    pub fn msgs_sent(&self) -> usize {
        self.facts.msgs.len()
    }

    /// The node in `to` received `chats` (the ids a message carried) from
    /// the node in `from`.
    pub fn carried(&mut self, from: u32, to: u32, chats: impl Iterator<Item = MsgId>) {
        let (Some(f), Some(t)) = (self.life_of(from), self.life_of(to)) else {
            return;
        };
        for id in chats {
            if let Some(m) = self.facts.msg_of(&id) {
                self.hops.received(m, f, t);
            }
        }
    }

    /// Counts one message sent on the wire.
    /// `write`: the first frame of a write (see [`Traffic::writes`]).
    pub fn sent(&mut self, kind: &'static str, bytes: usize, chats: usize, write: bool) {
        if let Some(s) = &mut self.series {
            s.sent(kind, bytes);
        }
        self.traffic.chat_copies += chats as u64;
        self.traffic.writes += u64::from(write);
        self.traffic.msgs += 1;
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
        m.accepting = m.accepting.max(t.accepting);
        m.dialing = m.dialing.max(t.dialing);
        m.streams = m.streams.max(t.streams);
        m.held = m.held.max(t.held);
        m.history = m.history.max(t.history);
        m.recent = m.recent.max(t.recent);
        m.probing = m.probing.max(t.probing);
        m.outbox = m.outbox.max(t.outbox);
        for c in self.checks.all_mut() {
            c.tables(&self.facts, slot, &t);
        }
    }

    /// The liveness phase begins: faults are over.
    pub fn liveness_begins(&mut self, now: Instant) {
        self.facts.liveness_from = Some(now);
    }

    /// Whether the liveness phase converged (or there is none).
    pub fn converged(&self) -> bool {
        self.checks.convergence.converged(&self.facts)
    }

    /// Checks membership convergence at `now`: every live node lists
    /// exactly the live nodes.
    pub fn check_convergence(&mut self, now: Instant, net: &Network) {
        for c in self.checks.all_mut() {
            c.converge_sample(&self.facts, now, net);
        }
    }

    /// Samples the overlay: `neighbours(slot)` lists the slots of the
    /// neighbours of the node in `slot` (asked of honest live nodes only).
    pub fn overlay(&mut self, now: Instant, neighbours: &dyn Fn(u32) -> Vec<u32>) {
        let f = &self.facts;
        let nodes: Vec<u32> = f.live.iter().map(|s| s as u32).collect();
        let edges: Vec<(u32, u32)> = nodes
            .iter()
            .flat_map(|&a| neighbours(a).into_iter().map(move |b| (a, b)))
            .collect();
        let c = Components::of(f.current.len(), &nodes, &edges);
        for check in self.checks.all_mut() {
            check.overlay(&self.facts, now, &c);
        }
    }

    /// End of run: judge what can only be judged at the end. `holds(slot,
    /// id)` says whether the node in `slot` still has message `id` in its
    /// history.
    pub fn finish(&mut self, now: Instant, holds: &dyn Fn(u32, &MsgId) -> bool) {
        if self.facts.liveness_from.is_some() {
            let f = &self.facts;
            let mut nowhere = crate::net::Bits::new(f.msgs.len());
            for (m, msg) in f.msgs.iter().enumerate() {
                let got = |s: usize| f.current[s].is_some_and(|l| msg.delivered.get(l as usize));
                if !f.live.iter().all(got) && !f.live.iter().any(|s| holds(s as u32, &msg.id)) {
                    nowhere.set(m, true);
                }
            }
            self.facts.held_nowhere = nowhere;
        }
        for c in self.checks.all_mut() {
            c.finish(&self.facts, now);
        }
    }

    /// Messages some owed node never got at the end, and how many of them
    /// no live node still held in its history.
    pub fn missing_msgs(&self) -> (u64, u64) {
        let e = &self.checks.eventual_delivery;
        (e.missing, e.evicted)
    }

    // ---- misbehaving nodes -------------------------------------------------

    /// The node in `slot` turns hostile: from now on nothing is expected of
    /// it or about it.
    pub fn misbehaves(&mut self, slot: u32, now: Instant) {
        self.facts.misbehaves(slot, now);
    }

    /// The node in `slot` lacks the cluster key from `from` to `until`.
    pub fn no_key(&mut self, slot: u32, from: Instant, until: Instant) {
        self.facts.no_key.push((slot, from, until));
    }

    /// A dial was refused at the handshake: one end lacked the key.
    pub fn refused_handshake(&mut self) {
        self.checks.admission.refused += 1;
    }

    /// Whether the node in `slot` misbehaved.
    pub fn is_hostile(&self, slot: u32) -> bool {
        self.facts.is_hostile(slot)
    }

    /// A hostile node sent `n` forged chats, or an impostor hello: from
    /// now on `forgery` judges every delivery to an honest user.
    pub fn forgery_injected(&mut self, n: u64) {
        self.facts.forgeries += n;
    }

    /// A hostile node sent forged member state.
    pub fn state_forgery_injected(&mut self) {
        self.checks.forged_state.injected();
    }

    /// A sample of the honest node in `slot` under attack: `wrong`
    /// describes each entry of an honest member it holds that the member
    /// did not sign.
    pub fn state_sample(&mut self, slot: u32, wrong: &[String]) {
        self.checks.forged_state.sample(slot, wrong);
    }

    /// The messages the life now in `slot` got.
    pub fn delivered_to(&self, slot: u32) -> Vec<MsgId> {
        self.facts.delivered_to(slot)
    }

    /// Invented addresses went out in a bogus peer list.
    pub fn ghosts_injected(&mut self) {
        self.checks.invented_peers.injected();
    }

    /// The honest life now in `slot`, if any.
    fn honest_life(&self, slot: u32) -> Option<u32> {
        self.life_of(slot).filter(|_| !self.is_hostile(slot))
    }

    /// Invented address `ghost` entered (`on`) or left the roster of the
    /// node in `slot`.
    pub fn ghost_listed(&mut self, slot: u32, ghost: u32, on: bool) {
        if let Some(l) = self.honest_life(slot) {
            self.checks.invented_peers.listed(l, ghost, on);
        }
    }

    /// The node in `slot` dialled invented address `ghost`.
    pub fn ghost_dial(&mut self, now: Instant, slot: u32, ghost: u32) {
        if let Some(l) = self.honest_life(slot) {
            self.ghost_dials += 1;
            let f = &self.facts;
            self.checks.invented_peers.dial(f, now, slot, l, ghost);
        }
    }

    /// A sample of the node in `slot` found the members it lists as up
    /// (by its events) no longer in its table: something evicted them.
    pub fn roster_lost(&mut self, slot: u32, lost: &[u32]) {
        self.checks.invented_peers.roster_sample(slot, lost);
    }

    /// The slots in the roster of the node in `slot`, by its events.
    pub fn roster_of(&self, slot: u32) -> Vec<u32> {
        match self.life_of(slot) {
            Some(l) => self.facts.lives[l as usize]
                .roster
                .iter()
                .map(|s| s as u32)
                .collect(),
            None => Vec::new(),
        }
    }

    /// The membership view of each honest live node: itself and the
    /// slots in its roster, in order.
    pub fn views(&self) -> Vec<Vec<u32>> {
        let f = &self.facts;
        f.live
            .iter()
            .filter_map(|s| {
                let l = f.current[s]?;
                let mut v: Vec<u32> = f.lives[l as usize]
                    .roster
                    .iter()
                    .map(|p| p as u32)
                    .collect();
                if let Err(i) = v.binary_search(&(s as u32)) {
                    v.insert(i, s as u32);
                }
                Some(v)
            })
            .collect()
    }

    /// Invented addresses listed by honest lives now.
    pub fn ghosts_listed(&self) -> u64 {
        self.checks.invented_peers.listed_now(&self.facts)
    }

    /// Most dials by one honest life to one invented address while listed,
    /// and most reconnect probes by one honest life.
    pub fn ghost_dial_peaks(&self) -> (u32, u32) {
        self.checks.invented_peers.peaks()
    }

    // ---- results ----------------------------------------------------------

    /// Every check with its figure, in report order, after the scenario's
    /// `skip`, `xfail` and `judge` lists.
    pub fn results(&self, end: Instant) -> Vec<CheckResult> {
        let e = End {
            facts: &self.facts,
            now: end,
            max_held: self.max_held,
        };
        let spec = &self.facts.spec;
        let mut out = Vec::new();
        for check in self.checks.all() {
            let id = check.id();
            let mut c = check.result(&e);
            if spec.skip.contains(&id) {
                c.status = Status::Skip;
                c.figure = format!("skipped by the scenario; {}", c.figure);
            } else if spec.xfail.contains(&id) {
                c.status = match c.status {
                    Status::Fail => Status::Xfail,
                    Status::Pass => Status::Xpass,
                    s => s,
                };
            }
            let must_judge = spec.judge.as_ref().is_some_and(|j| j.contains(&id));
            if must_judge && c.judged == 0 && !spec.skip.contains(&id) {
                c.status = Status::Fail;
                c.figure = format!(
                    "judged nothing, but the scenario must judge it: {}",
                    c.figure
                );
            }
            out.push(c);
        }
        out
    }

    /// Detection figure (crash, kill, pause).
    pub fn detection_pct(&self) -> Pct {
        Pct::of(&self.facts.detect_ms)
    }
    /// Leave removal figure.
    pub fn leave_pct(&self) -> Pct {
        Pct::of(&self.facts.leave_ms)
    }
    /// Delivery latency figure.
    pub fn delivery_pct(&self) -> Pct {
        Pct::of(&self.facts.delivery_ms)
    }
    /// Join convergence figure.
    pub fn join_pct(&self) -> Pct {
        Pct::of(&self.facts.join_ms)
    }
    /// Deliveries to users, own messages excluded.
    pub fn deliveries(&self) -> u64 {
        self.facts.delivery_ms.len() as u64
    }
    /// Life-seconds of up time, for per-node rates.
    pub fn node_seconds(&self, end: Instant) -> f64 {
        self.facts.node_seconds(end)
    }
}

/// The report order is the one list of check names.
#[cfg(test)]
pub(super) fn ids_in_order(obs: &Observer) -> Vec<crate::check_id::CheckId> {
    obs.checks.all().iter().map(|c| c.id()).collect()
}
