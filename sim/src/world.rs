//! The discrete-event engine: a queue ordered by (virtual time, sequence
//! number) that jumps from event to event and drives real [`Node`]s.
//!
//! Messages travel as values (never encoded); byte counts use the real
//! encoded size. Connections follow the core's driver contract: every
//! `Connect` is answered with `Connected` or `ConnectFailed`, a `Close`
//! flushes what was sent before the peer sees `Disconnected`.

pub use crate::addr::{addr_of, slot_of};
use crate::checks::{Gone, Observer, Start};
use crate::hostile::{Attack, Injection, Tally};
use crate::net::{Bits, Fate, Network};
use crate::queue::Queue;
use crate::random::below;
use crate::report::{Figures, KindTraffic, MaxTables, Report};
use crate::scenario::{
    Fault, FaultKind, InitialJoin, Misbehave, Scenario, Senders, Shape, Target, Via,
};
use crate::trace::Trace;
use gossip_chat::{wire, ConnId, Event, Input, Instant, Message, Node, Output};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

/// Marks a `ConnectFailed` target that is not a simulated node.
const FOREIGN: u32 = 1 << 31;
/// Interval of table-size samples (bounded state), per node slot; at
/// least 1 s, at most 30 s (every node is sampled each time).
const SAMPLE_MS_PER_SLOT: u64 = 30;
/// Interval of convergence samples in the liveness phase.
const CONVERGE_EVERY: u64 = 100;

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Absent,
    Up,
    Paused,
    Crashed,
    Killed,
    Left,
}

struct Slot {
    node: Option<Box<Node>>,
    state: State,
    /// The observer's life id of the current process.
    life: u32,
    /// Incarnation of the next process started here.
    next_inc: u64,
    timer_at: Instant,
    held: Vec<Pending>,
    conns: Vec<u32>,
    prune_at: usize,
    up_pos: u32,
    /// When the current process started.
    started: Instant,
}

#[derive(Clone, Copy)]
struct End {
    slot: u32,
    life: u32,
    open: bool,
    /// Latest arrival scheduled at this end (FIFO).
    last: Instant,
    /// When this end learns the connection is open: nothing arrives
    /// before, even on unordered links.
    open_at: Instant,
}

struct Conn {
    ends: [End; 2],
}

/// What travels on a connection: a message (as a value), or what a
/// misbehaving node injects below the message layer.
#[derive(Clone)]
enum Payload {
    Msg(Message),
    /// A frame payload that the receiver decodes itself.
    Frame(Vec<u8>),
    /// A frame the receiving driver refuses before reading it.
    BadFrame(wire::WireError),
}

/// An input waiting for a node: in the queue, or held while it is paused.
///
/// Kept small (messages wait in a slab, addresses as slot numbers) so that
/// the event heap moves little memory.
enum Pending {
    Deliver { conn: u32, end: u8, msg: u32 },
    Connected { conn: u32, end: u8 },
    Disconnected { conn: u32, end: u8 },
    ConnectFailed { to: u32 },
}

enum Ev {
    Timer {
        slot: u32,
        life: u32,
    },
    Input {
        slot: u32,
        life: u32,
        input: Pending,
    },
    Action(u32),
    ChatTick,
    Sample,
    ConvergeSample,
    DeliveryCheck(u32),
    DownCheck(u32),
    ViewCheck(u32),
    Hostile {
        slot: u32,
        epoch: u32,
    },
}

/// Things that happen at a set time: scenario faults and their follow-ups.
#[derive(Clone, Debug)]
enum Action {
    Start { slot: u32, via: Option<Via> },
    Fault(FaultKind),
    Resume(u32),
    Heal(u32),
    Clog(u32, usize),
    Unclog(usize),
    DiscoveryBegins,
    Liveness,
    Send(usize),
}

/// One simulation run.
pub struct World<'a> {
    sc: &'a Scenario,
    seed: u64,
    now: Instant,
    end: Instant,
    queue: Queue<Ev>,
    slots: Vec<Slot>,
    next_slot: u32,
    up: Vec<u32>,
    conns: Vec<Conn>,
    net: Network,
    actions: Vec<Action>,
    out: Vec<Output>,
    obs: Observer,
    trace: Trace,
    rng: ChaCha8Rng,
    chat_n: u64,
    clogs: Vec<u32>,
    /// Messages in flight, by slab index.
    payloads: Vec<Option<Payload>>,
    free: Vec<u32>,
    /// Addresses dialled that are not simulated nodes, each once.
    foreign: Vec<SocketAddr>,
    foreign_ix: BTreeMap<SocketAddr, u32>,
    /// Misbehaving nodes' attacks, by slot.
    attacks: BTreeMap<u32, Attack>,
    /// Invented addresses, numbered in the order drawn.
    ghosts: BTreeMap<SocketAddr, u32>,
    /// Draws of the misbehaving nodes (apart, so that an attack does not
    /// reshuffle the rest of the run).
    hostile_rng: ChaCha8Rng,
    epochs: u32,
    tally: Tally,
    schedule: Vec<String>,
    events: u64,
}

impl<'a> World<'a> {
    /// Builds the world for `sc` under `seed` with the concrete fault
    /// schedule `faults` (the scenario's, or one drawn in random mode).
    pub fn new(sc: &'a Scenario, seed: u64, faults: &[Fault], trace: Trace) -> Self {
        let joins: u32 = faults
            .iter()
            .map(|f| match f.kind {
                FaultKind::Join(n, _) => n,
                _ => 0,
            })
            .sum();
        let n_slots = (sc.nodes.count + joins) as usize;
        let net_rng = ChaCha8Rng::seed_from_u64(mix(seed ^ 0x006e_6574_776f_726b));
        let net = Network::new(&sc.network, n_slots, net_rng);
        let lossy = net.lossy();
        let slots = (0..n_slots)
            .map(|_| Slot {
                node: None,
                state: State::Absent,
                life: u32::MAX,
                next_inc: 1,
                timer_at: Instant::MAX,
                held: Vec::new(),
                conns: Vec::new(),
                prune_at: 16,
                up_pos: u32::MAX,
                started: Instant::ZERO,
            })
            .collect();
        let mut w = World {
            sc,
            seed,
            now: Instant::ZERO,
            end: Instant::ZERO + sc.duration,
            queue: Queue::new(),
            slots,
            next_slot: sc.nodes.count,
            up: Vec::new(),
            conns: Vec::new(),
            net,
            actions: Vec::new(),
            out: Vec::with_capacity(64),
            obs: Observer::new(sc, n_slots, lossy),
            trace,
            rng: ChaCha8Rng::seed_from_u64(mix(seed)),
            chat_n: 0,
            clogs: Vec::new(),
            payloads: Vec::new(),
            free: Vec::new(),
            foreign: Vec::new(),
            foreign_ix: BTreeMap::new(),
            attacks: BTreeMap::new(),
            ghosts: BTreeMap::new(),
            hostile_rng: ChaCha8Rng::seed_from_u64(mix(seed ^ 0x686f_7374_696c_6521)),
            epochs: 0,
            tally: Tally {
                max_members: sc.config.max_members,
                ..Tally::default()
            },
            schedule: faults
                .iter()
                .map(describe)
                .chain((sc.liveness.as_millis() > 0).then(|| {
                    format!(
                        "at {}: liveness phase: heal the network, resume paused nodes",
                        gossip_chat::Duration::from_millis(
                            sc.duration.as_millis() - sc.liveness.as_millis()
                        )
                    )
                }))
                .collect(),
            events: 0,
        };
        w.trace.note(
            Instant::ZERO,
            &format!("sim {} seed {} nodes {}", sc.name, seed, sc.nodes.count),
        );
        for f in &w.schedule.clone() {
            w.trace.note(Instant::ZERO, &format!("schedule {f}"));
        }
        // Initial nodes.
        let mut last = Instant::ZERO;
        for i in 0..sc.nodes.count {
            let at = Instant::ZERO + sc.nodes.stagger.saturating_mul(i as u64);
            last = at;
            let via = match (i, sc.nodes.join) {
                (0, _) => None,
                (_, InitialJoin::First) => Some(Via::Node(0)),
                (_, InitialJoin::Chain) => Some(Via::Node(i - 1)),
                (_, InitialJoin::Random) => Some(Via::Random),
            };
            w.at_action(at, Action::Start { slot: i, via });
        }
        w.at_action(last, Action::DiscoveryBegins);
        for f in faults {
            w.at_action(Instant::ZERO + f.at, Action::Fault(f.kind.clone()));
        }
        for (i, s) in sc.workload.sends.iter().enumerate() {
            w.at_action(Instant::ZERO + s.at, Action::Send(i));
        }
        if sc.workload.rate > 0.0 {
            w.push(Instant::ZERO + sc.workload.start, Ev::ChatTick);
        }
        if sc.liveness.as_millis() > 0 {
            w.at_action(
                Instant::from_millis(w.end.as_millis() - sc.liveness.as_millis()),
                Action::Liveness,
            );
        }
        w.push(Instant::from_millis(w.sample_every()), Ev::Sample);
        w
    }

    fn stash(&mut self, msg: Payload) -> u32 {
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

    fn unstash(&mut self, i: u32) -> Option<Payload> {
        let m = self.payloads[i as usize].take();
        self.free.push(i);
        m
    }

    fn addr_at(&self, to: u32) -> SocketAddr {
        if to & FOREIGN != 0 {
            self.foreign[(to & !FOREIGN) as usize]
        } else {
            addr_of(to)
        }
    }

    fn push(&mut self, at: Instant, ev: Ev) {
        self.queue.push(at, ev);
    }

    fn at_action(&mut self, at: Instant, a: Action) {
        let i = self.actions.len() as u32;
        self.actions.push(a);
        self.push(at, Ev::Action(i));
    }

    /// Runs to the end; `progress` is called now and then with the virtual
    /// time reached.
    pub fn run(mut self, progress: &mut dyn FnMut(Instant)) -> (Report, Trace) {
        let end = self.end;
        self.advance(end, progress);
        self.now = self.end;
        progress(self.now);
        self.sample_tables();
        self.obs.finish(self.now);
        let report = self.report();
        (report, self.trace)
    }

    /// Processes every event up to `until` (at most the end of the run).
    pub fn advance(&mut self, until: Instant, progress: &mut dyn FnMut(Instant)) {
        let until = until.min(self.end);
        while let Some((at, ev)) = self.queue.pop() {
            if at > until {
                // Not yet: put it back (it keeps its place among its
                // millisecond's events, being the first of them).
                self.queue.unpop(at, ev);
                break;
            }
            self.now = at;
            self.events += 1;
            if self.events & 0xffff == 0 {
                progress(self.now);
                self.obs.max_queue = self.obs.max_queue.max(self.queue.len());
            }
            self.dispatch(ev);
        }
    }

    fn sample_every(&self) -> u64 {
        (self.slots.len() as u64 * SAMPLE_MS_PER_SLOT).clamp(1000, 30_000)
    }

    fn sample_tables(&mut self) {
        let attacked = !self.attacks.is_empty();
        for slot in 0..self.slots.len() {
            if let (State::Up, Some(n)) = (self.slots[slot].state, &self.slots[slot].node) {
                let t = n.table_sizes();
                self.obs.tables(slot as u32, t);
                if attacked && !self.obs.is_hostile(slot as u32) {
                    self.tally.honest_peak_members = self.tally.honest_peak_members.max(t.members);
                    // Every member its events list as up is in its table:
                    // nothing was evicted behind the user's back.
                    let lost: Vec<u32> = self
                        .obs
                        .roster_of(slot as u32)
                        .into_iter()
                        .filter(|&p| !n.knows_alive(&addr_of(p)))
                        .collect();
                    self.obs.roster_lost(slot as u32, &lost);
                }
            }
        }
        self.obs.max_queue = self.obs.max_queue.max(self.queue.len());
    }

    /// Adds the counters of the life in `slot` to the honest nodes' tally
    /// (if it is honest): every honest life counts, also one that ended
    /// before the first attack (the tally is reported only if one ran).
    fn count_stats(&mut self, slot: u32) {
        if self.obs.is_hostile(slot) {
            return;
        }
        if let Some(n) = &self.slots[slot as usize].node {
            self.tally.honest.add(n.stats());
        }
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Timer { slot, life } => {
                let s = &mut self.slots[slot as usize];
                if s.life != life || s.state != State::Up || s.timer_at != self.now {
                    return;
                }
                s.timer_at = Instant::MAX;
                if self.trace.writing() {
                    self.trace.event(self.now, 11, [slot as u64, 0, 0], |l| {
                        l.push_str(&format!("n{slot} timeout"))
                    });
                } else {
                    self.trace.event(self.now, 11, [slot as u64, 0, 0], |_| {});
                }
                self.handle(slot, Input::Timeout);
            }
            Ev::Input { slot, life, input } => {
                let s = &mut self.slots[slot as usize];
                match s.state {
                    State::Up if s.life == life => self.input(slot, input),
                    State::Paused if s.life == life => {
                        s.held.push(input);
                        self.obs.max_held = self.obs.max_held.max(s.held.len());
                    }
                    _ => self.drop_input(input),
                }
            }
            Ev::Action(i) => {
                let a = self.actions[i as usize].clone();
                self.action(a);
            }
            Ev::ChatTick => self.chat_tick(),
            Ev::Sample => {
                self.sample_tables();
                self.push(
                    self.now + gossip_chat::Duration::from_millis(self.sample_every()),
                    Ev::Sample,
                );
            }
            Ev::ConvergeSample => {
                self.obs.check_convergence(self.now);
                if !self.obs.converged() {
                    self.push(
                        self.now + gossip_chat::Duration::from_millis(CONVERGE_EVERY),
                        Ev::ConvergeSample,
                    );
                }
            }
            Ev::DeliveryCheck(m) => self.obs.delivery_deadline(self.now, m, &self.net),
            Ev::DownCheck(d) => self.obs.down_deadline(self.now, d, &self.net),
            Ev::ViewCheck(l) => self.obs.view_deadline(self.now, l, &self.net),
            Ev::Hostile { slot, epoch } => self.hostile_tick(slot, epoch),
        }
    }

    fn drop_input(&mut self, p: Pending) {
        if let Pending::Deliver { msg, .. } = p {
            self.unstash(msg);
        }
    }

    /// Delivers a pending input to an up node, if its connection end is
    /// still open.
    fn input(&mut self, slot: u32, p: Pending) {
        let now = self.now;
        match p {
            Pending::Deliver { conn, end, msg } => {
                let Some(msg) = self.unstash(msg) else { return };
                let e = &self.conns[conn as usize].ends[end as usize];
                if !e.open {
                    return;
                }
                let from = self.conns[conn as usize].ends[1 - end as usize].slot;
                if self.trace.writing() {
                    let what = match &msg {
                        Payload::Msg(msg) => {
                            let bytes = wire::payload_len(msg) + wire::LEN_PREFIX;
                            let kind = msg.kind();
                            let what = describe_msg(msg, self.slots.len());
                            format!("{kind} {bytes}B{what}")
                        }
                        Payload::Frame(b) => format!("frame {}B", b.len() + wire::LEN_PREFIX),
                        Payload::BadFrame(e) => format!("bad frame: {e}"),
                    };
                    self.trace
                        .event(now, 3, [slot as u64, from as u64, conn as u64], |l| {
                            l.push_str(&format!("n{slot} <- n{from} c{conn} {what}"))
                        });
                } else {
                    self.trace
                        .event(now, 3, [slot as u64, from as u64, conn as u64], |_| {});
                }
                let id = ConnId(conn as u64 * 2 + end as u64);
                let input = match msg {
                    Payload::Msg(msg) => {
                        if let Some(a) = self.attacks.get_mut(&slot) {
                            if a.active(now) {
                                a.record(&msg, &mut self.hostile_rng);
                            }
                        }
                        Input::Message { conn: id, msg }
                    }
                    Payload::Frame(payload) => Input::Frame { conn: id, payload },
                    Payload::BadFrame(error) => Input::BadFrame { conn: id, error },
                };
                self.handle(slot, input);
            }
            Pending::Connected { conn, end } => {
                let c = &self.conns[conn as usize];
                if !c.ends[end as usize].open {
                    return;
                }
                let other = c.ends[1 - end as usize].slot;
                let dialed = (end == 0).then(|| addr_of(other));
                let word = if end == 0 {
                    "connected to"
                } else {
                    "accepted from"
                };
                self.trace.event(
                    now,
                    6 + end,
                    [slot as u64, other as u64, conn as u64],
                    |l| l.push_str(&format!("n{slot} {word} n{other} c{conn}")),
                );
                let id = ConnId(conn as u64 * 2 + end as u64);
                self.handle(slot, Input::Connected { conn: id, dialed });
            }
            Pending::Disconnected { conn, end } => {
                let e = &mut self.conns[conn as usize].ends[end as usize];
                if !e.open {
                    return;
                }
                e.open = false;
                self.trace
                    .event(now, 10, [slot as u64, conn as u64, 0], |l| {
                        l.push_str(&format!("n{slot} disconnected c{conn}"))
                    });
                let id = ConnId(conn as u64 * 2 + end as u64);
                self.handle(slot, Input::Disconnected { conn: id });
            }
            Pending::ConnectFailed { to } => {
                let addr = self.addr_at(to);
                let t = if to & FOREIGN == 0 { to } else { u32::MAX };
                self.trace.event(now, 8, [slot as u64, to as u64, 0], |l| {
                    l.push_str(&format!("n{slot} dial {} failed", who(t, &addr)))
                });
                self.handle(slot, Input::ConnectFailed { addr });
            }
        }
    }

    /// Feeds one input to the node in `slot` and carries out its outputs.
    fn handle(&mut self, slot: u32, input: Input) {
        let now = self.now;
        let mut out = std::mem::take(&mut self.out);
        let Some(node) = self.slots[slot as usize].node.as_mut() else {
            self.out = out;
            return;
        };
        node.handle(now, input, &mut out);
        let key = node.key();
        for o in out.drain(..) {
            self.output(slot, key, o);
        }
        self.out = out;
        self.reschedule(slot);
    }

    fn reschedule(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        let Some(node) = &s.node else { return };
        if s.state != State::Up {
            return;
        }
        let t = node.poll_timeout().unwrap_or(Instant::MAX).max(self.now);
        if t != s.timer_at {
            s.timer_at = t;
            if t != Instant::MAX {
                let life = s.life;
                self.push(t, Ev::Timer { slot, life });
            }
        }
    }

    fn output(&mut self, slot: u32, me: gossip_chat::NodeKey, o: Output) {
        let now = self.now;
        match o {
            Output::Send { conn, msg } => self.send(slot, conn, msg),
            Output::Connect { addr } => self.connect(slot, addr),
            Output::Close { conn } => {
                let (c, e) = ((conn.0 / 2) as usize, (conn.0 % 2) as usize);
                let Some(cn) = self.conns.get_mut(c) else {
                    return;
                };
                if cn.ends[e].slot != slot || !cn.ends[e].open {
                    return;
                }
                cn.ends[e].open = false;
                let f = 1 - e;
                let other = cn.ends[f];
                self.trace.event(now, 9, [slot as u64, c as u64, 0], |l| {
                    l.push_str(&format!("n{slot} close c{c}"))
                });
                if other.open && !self.net.blocked(slot as usize, other.slot as usize) {
                    let lat = self.net.latency(slot as usize, other.slot as usize);
                    let at = (now + lat).max(other.last);
                    self.conns[c].ends[f].last = at;
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
            Output::Event(ev) => self.user_event(slot, me, ev),
        }
    }

    fn user_event(&mut self, slot: u32, me: gossip_chat::NodeKey, ev: Event) {
        let now = self.now;
        let n = self.slots.len();
        match ev {
            Event::PeerUp { node, .. } => {
                let p = slot_of(&node.addr, n).unwrap_or(u32::MAX);
                self.trace
                    .event(now, 12, [slot as u64, p as u64, node.incarnation], |l| {
                        l.push_str(&format!(
                            "n{slot} up {}/{}",
                            who(p, &node.addr),
                            node.incarnation
                        ))
                    });
                if p != u32::MAX {
                    self.obs.peer_up(now, slot, p);
                } else if let Some(&g) = self.ghosts.get(&node.addr) {
                    self.obs.ghost_listed(slot, g, true);
                }
            }
            Event::PeerDown { node, reason, .. } => {
                let p = slot_of(&node.addr, n).unwrap_or(u32::MAX);
                self.trace
                    .event(now, 13, [slot as u64, p as u64, node.incarnation], |l| {
                        l.push_str(&format!(
                            "n{slot} down {}/{} {reason:?}",
                            who(p, &node.addr),
                            node.incarnation
                        ))
                    });
                if p != u32::MAX {
                    let s = &self.slots[p as usize];
                    let inc = match (s.state, &s.node) {
                        (State::Up, Some(x)) => Some(x.key().incarnation),
                        _ => None,
                    };
                    self.obs
                        .peer_down(now, slot, p, node, reason, inc, &self.net);
                } else if let Some(&g) = self.ghosts.get(&node.addr) {
                    self.obs.ghost_listed(slot, g, false);
                }
            }
            Event::Chat { id, history, .. } => {
                let o = slot_of(&id.origin.addr, n).unwrap_or(u32::MAX);
                let own = id.origin == me;
                self.trace
                    .event(now, 14, [slot as u64, o as u64, id.seq], |l| {
                        let h = if history { " (history)" } else { "" };
                        l.push_str(&format!(
                            "n{slot} chat n{o}/{}#{}{h}",
                            id.origin.incarnation, id.seq
                        ))
                    });
                let before = self.obs.msgs_sent();
                self.obs.chat(now, slot, id, own);
                if self.obs.msgs_sent() > before {
                    let m = self.obs.last_msg();
                    self.push(now + self.sc.checks.deliver_within, Ev::DeliveryCheck(m));
                }
            }
            Event::Gap {
                origin,
                first,
                last,
            } => {
                let o = slot_of(&origin.addr, n).unwrap_or(u32::MAX);
                self.trace
                    .event(now, 15, [slot as u64, o as u64, first], |l| {
                        l.push_str(&format!(
                            "n{slot} gap n{o}/{} {first}..={last}",
                            origin.incarnation
                        ))
                    });
            }
            Event::Refuted { incarnation } => {
                self.trace
                    .event(now, 16, [slot as u64, incarnation, 0], |l| {
                        l.push_str(&format!("n{slot} refuted, now incarnation {incarnation}"))
                    });
            }
            Event::Refused(r) => {
                self.trace.event(now, 17, [slot as u64, 0, 0], |l| {
                    l.push_str(&format!("n{slot} refused {r:?}"))
                });
            }
        }
    }

    fn send(&mut self, slot: u32, conn: ConnId, msg: Message) {
        let (c, e) = ((conn.0 / 2) as usize, (conn.0 % 2) as usize);
        let Some(cn) = self.conns.get(c) else { return };
        if cn.ends[e].slot != slot || !cn.ends[e].open {
            return;
        }
        let bytes = wire::payload_len(&msg) + wire::LEN_PREFIX;
        let chats = match &msg {
            Message::Chat(_) => 1,
            Message::History(h) => h.chats.len(),
            _ => 0,
        };
        self.obs.sent(msg.kind(), bytes, chats);
        self.transmit(slot, c, e, Payload::Msg(msg));
    }

    /// Puts `msg` on the wire from end `e` of connection `c`: lost, cut, or
    /// delivered (maybe twice) after the link's latency, in order.
    fn transmit(&mut self, slot: u32, c: usize, e: usize, msg: Payload) {
        let now = self.now;
        let f = 1 - e;
        let other = self.conns[c].ends[f];
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
                self.conns[c].ends[f].last = self.conns[c].ends[f].last.max(at);
                let dup = self.net.duplicated(a, b).then(|| msg.clone());
                let msg = self.stash(msg);
                self.push(
                    at,
                    Ev::Input {
                        slot: other.slot,
                        life: other.life,
                        input: Pending::Deliver {
                            conn: c as u32,
                            end: f as u8,
                            msg,
                        },
                    },
                );
                if let Some(msg) = dup {
                    let msg = self.stash(msg);
                    let lat2 = self.net.latency(a, b);
                    let at2 = if self.net.ordered {
                        at
                    } else {
                        (now + lat2).max(other.open_at)
                    };
                    self.push(
                        at2,
                        Ev::Input {
                            slot: other.slot,
                            life: other.life,
                            input: Pending::Deliver {
                                conn: c as u32,
                                end: f as u8,
                                msg,
                            },
                        },
                    );
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
                self.trace
                    .event(now, 4, [slot as u64, to as u64, c as u64], |l| {
                        l.push_str(&format!("n{slot} -> n{to} c{c} {kind} {why}"))
                    });
            }
        }
    }

    fn connect(&mut self, slot: u32, addr: SocketAddr) {
        let now = self.now;
        let life = self.slots[slot as usize].life;
        let target = slot_of(&addr, self.slots.len());
        self.trace.event(
            now,
            5,
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
                let next = self.foreign.len() as u32;
                let i = *self.foreign_ix.entry(addr).or_insert(next);
                if i == next {
                    self.foreign.push(addr);
                }
                i | FOREIGN
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
        let state = self.slots[b].state;
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
        let there = now + self.net.latency(a, b);
        let back = there + self.net.latency(b, a);
        let c = self.conns.len() as u32;
        let tlife = self.slots[b].life;
        self.conns.push(Conn {
            ends: [
                End {
                    slot,
                    life,
                    open: true,
                    last: back,
                    open_at: back,
                },
                End {
                    slot: t,
                    life: tlife,
                    open: true,
                    last: there,
                    open_at: there,
                },
            ],
        });
        self.add_conn(slot, c);
        self.add_conn(t, c);
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
    }

    fn add_conn(&mut self, slot: u32, c: u32) {
        let s = &mut self.slots[slot as usize];
        s.conns.push(c);
        if s.conns.len() >= s.prune_at {
            let conns = &self.conns;
            s.conns.retain(|&c| {
                conns[c as usize]
                    .ends
                    .iter()
                    .any(|e| e.slot == slot && e.open)
            });
            s.prune_at = (s.conns.len() * 2).max(16);
        }
    }

    // ---- processes ------------------------------------------------------

    fn set_up(&mut self, slot: u32, on: bool) {
        let pos = self.slots[slot as usize].up_pos;
        if on && pos == u32::MAX {
            self.slots[slot as usize].up_pos = self.up.len() as u32;
            self.up.push(slot);
        } else if !on && pos != u32::MAX {
            self.up.swap_remove(pos as usize);
            if let Some(&moved) = self.up.get(pos as usize) {
                self.slots[moved as usize].up_pos = pos;
            }
            self.slots[slot as usize].up_pos = u32::MAX;
        }
    }

    fn below(&mut self, n: usize) -> usize {
        below(&mut self.rng, n)
    }

    fn random_up(&mut self, except: u32) -> Option<u32> {
        let cands = self.up.len() - usize::from(self.slots[except as usize].up_pos != u32::MAX);
        if cands == 0 {
            return None;
        }
        loop {
            let i = self.below(self.up.len());
            let s = self.up[i];
            if s != except {
                return Some(s);
            }
        }
    }

    /// A random member to join through: a node up for at least the join
    /// grace (so a joiner does not join through another joiner of the same
    /// instant), or any up node if there is none.
    fn random_member(&mut self, except: u32) -> Option<u32> {
        let settled = self
            .now
            .as_millis()
            .saturating_sub(self.sc.checks.join_grace.as_millis());
        let mut pool: Vec<u32> = self
            .up
            .iter()
            .copied()
            .filter(|&s| s != except && self.slots[s as usize].started.as_millis() <= settled)
            .collect();
        if pool.is_empty() {
            return self.random_up(except);
        }
        pool.sort_unstable();
        let i = self.below(pool.len());
        Some(pool[i])
    }

    fn start(&mut self, slot: u32, via: Option<Via>, kind: Start) {
        let now = self.now;
        let s = &mut self.slots[slot as usize];
        if matches!(s.state, State::Up | State::Paused) {
            return;
        }
        let inc = s.next_inc;
        s.next_inc += 1;
        let node_seed = mix(self.seed ^ mix(slot as u64) ^ (inc << 48));
        let node = Node::new(
            self.sc.config.clone(),
            gossip_chat::Identity::new(addr_of(slot), inc, format!("n{slot}")),
            node_seed,
            now,
        )
        .expect("the scenario's config was validated");
        s.node = Some(Box::new(node));
        s.started = now;
        s.state = State::Up;
        s.timer_at = Instant::MAX;
        s.held.clear();
        s.conns.clear();
        s.prune_at = 16;
        let life = self.obs.start(now, slot, kind);
        self.slots[slot as usize].life = life;
        self.set_up(slot, true);
        let via = match via {
            None => None,
            Some(Via::Node(v)) => Some(v),
            // Initial nodes join through any node started before them;
            // later joiners through a settled member.
            Some(Via::Random) if kind == Start::Initial => self.random_up(slot),
            Some(Via::Random) => self.random_member(slot),
        };
        self.trace.event(
            now,
            1,
            [slot as u64, inc, via.unwrap_or(u32::MAX) as u64],
            |l| match via {
                Some(v) => l.push_str(&format!("n{slot} start incarnation {inc}, join via n{v}")),
                None => l.push_str(&format!("n{slot} start incarnation {inc}")),
            },
        );
        if kind == Start::Joiner {
            let within = self.sc.checks.join_within;
            self.push(now + within, Ev::ViewCheck(life));
        }
        match via {
            Some(v) if v != slot => self.handle(slot, Input::Join { addr: addr_of(v) }),
            _ => self.reschedule(slot),
        }
    }

    /// Ends the process in `slot`: silently (crash) or with resets (kill).
    fn stop(&mut self, slot: u32, reset: bool) {
        let now = self.now;
        let s = &mut self.slots[slot as usize];
        if !matches!(s.state, State::Up | State::Paused) {
            return;
        }
        let gone = if reset { Gone::Kill } else { Gone::Crash };
        if let Some(n) = &s.node {
            s.next_inc = s.next_inc.max(n.key().incarnation + 1);
        }
        self.count_stats(slot);
        let s = &mut self.slots[slot as usize];
        s.node = None;
        s.state = if reset { State::Killed } else { State::Crashed };
        s.timer_at = Instant::MAX;
        let held = std::mem::take(&mut s.held);
        let conns = std::mem::take(&mut s.conns);
        for p in held {
            self.drop_input(p);
        }
        for &c in &conns {
            for e in 0..2 {
                let end = self.conns[c as usize].ends[e];
                if end.slot != slot || !end.open {
                    continue;
                }
                self.conns[c as usize].ends[e].open = false;
                let other = self.conns[c as usize].ends[1 - e];
                if reset && other.open && !self.net.blocked(slot as usize, other.slot as usize) {
                    let lat = self.net.latency(slot as usize, other.slot as usize);
                    let at = (now + lat).max(other.last);
                    self.conns[c as usize].ends[1 - e].last = at;
                    self.push(
                        at,
                        Ev::Input {
                            slot: other.slot,
                            life: other.life,
                            input: Pending::Disconnected {
                                conn: c,
                                end: 1 - e as u8,
                            },
                        },
                    );
                }
            }
        }
        self.set_up(slot, false);
        if let Some(d) = self.obs.gone(now, slot, gone) {
            self.push(now + self.sc.checks.detect_within, Ev::DownCheck(d));
        }
    }

    fn pause(&mut self, slot: u32) {
        let now = self.now;
        if self.slots[slot as usize].state != State::Up {
            return;
        }
        let s = &mut self.slots[slot as usize];
        s.state = State::Paused;
        s.timer_at = Instant::MAX;
        self.set_up(slot, false);
        if let Some(d) = self.obs.gone(now, slot, Gone::Pause) {
            self.push(now + self.sc.checks.detect_within, Ev::DownCheck(d));
        }
    }

    fn resume(&mut self, slot: u32) {
        if self.slots[slot as usize].state != State::Paused {
            return;
        }
        self.slots[slot as usize].state = State::Up;
        self.set_up(slot, true);
        self.obs.resume(slot, self.now);
        let held = std::mem::take(&mut self.slots[slot as usize].held);
        for p in held {
            if self.slots[slot as usize].state != State::Up {
                break;
            }
            self.input(slot, p);
        }
        self.reschedule(slot);
    }

    fn leave(&mut self, slot: u32) {
        let now = self.now;
        if self.slots[slot as usize].state != State::Up {
            return;
        }
        self.handle(slot, Input::Leave);
        self.count_stats(slot);
        let s = &mut self.slots[slot as usize];
        if let Some(n) = &s.node {
            s.next_inc = s.next_inc.max(n.key().incarnation + 1);
        }
        s.node = None;
        s.state = State::Left;
        s.timer_at = Instant::MAX;
        // The node closed its connections; anything still open is closed
        // with a reset.
        let conns = std::mem::take(&mut s.conns);
        for &c in &conns {
            for e in 0..2 {
                let end = &mut self.conns[c as usize].ends[e];
                if end.slot == slot && end.open {
                    end.open = false;
                }
            }
        }
        self.set_up(slot, false);
        if let Some(d) = self.obs.gone(now, slot, Gone::Leave) {
            self.push(now + self.sc.checks.detect_within, Ev::DownCheck(d));
        }
    }

    // ---- scheduled actions ------------------------------------------------

    fn targets(&mut self, t: &Target) -> Vec<u32> {
        match t {
            Target::Nodes(n) => n.clone(),
            Target::Random(k) => {
                let mut pool = self.up.clone();
                pool.sort_unstable();
                let mut out = Vec::new();
                for _ in 0..*k {
                    if pool.is_empty() {
                        break;
                    }
                    let i = self.below(pool.len());
                    out.push(pool.swap_remove(i));
                }
                out
            }
        }
    }

    fn fault_note(&mut self, text: String) {
        let now = self.now;
        self.trace.note(now, &format!("fault {text}"));
    }

    fn action(&mut self, a: Action) {
        let now = self.now;
        match a {
            Action::Start { slot, via } => self.start(slot, via, Start::Initial),
            Action::DiscoveryBegins => {
                self.obs.discovery_begins(now);
                let within = self.sc.checks.discovery_within;
                for slot in 0..self.sc.nodes.count {
                    if let Some(l) = self.obs.life_of(slot) {
                        self.push(now + within, Ev::ViewCheck(l));
                    }
                }
            }
            Action::Send(i) => {
                let s = self.sc.workload.sends[i].clone();
                if self.slots[s.from as usize].state == State::Up {
                    self.handle(s.from, Input::Send { text: s.text });
                }
            }
            Action::Resume(slot) => {
                self.fault_note(format!("resume n{slot}"));
                self.resume(slot);
            }
            Action::Heal(id) => {
                self.fault_note(format!("heal #{id}"));
                self.net.heal(Some(id), now);
            }
            Action::Clog(slot, token) => {
                let groups: Vec<u16> = (0..self.slots.len())
                    .map(|s| if s as u32 == slot { 2 } else { 1 })
                    .collect();
                let id = self.net.cut(groups, false, now);
                self.clogs[token] = id;
                self.fault_note(format!("clog n{slot} (#{id})"));
            }
            Action::Unclog(token) => {
                let id = self.clogs[token];
                self.fault_note(format!("unclog #{id}"));
                self.net.heal(Some(id), now);
            }
            Action::Liveness => {
                self.fault_note("liveness phase: heal everything, resume every paused node".into());
                self.net.heal(None, now);
                for slot in 0..self.slots.len() as u32 {
                    self.resume(slot);
                }
                self.obs.liveness_begins(now);
                self.push(now, Ev::ConvergeSample);
            }
            Action::Fault(kind) => self.fault(kind),
        }
    }

    fn fault(&mut self, kind: FaultKind) {
        let now = self.now;
        match kind {
            FaultKind::Crash(ref t) | FaultKind::Kill(ref t) => {
                let reset = matches!(kind, FaultKind::Kill(_));
                for s in self.targets(t) {
                    self.fault_note(format!("{} n{s}", if reset { "kill" } else { "crash" }));
                    self.stop(s, reset);
                }
            }
            FaultKind::Pause(ref t, d) => {
                for s in self.targets(t) {
                    self.fault_note(format!("pause n{s}"));
                    self.pause(s);
                    if let Some(d) = d {
                        self.at_action(now + d, Action::Resume(s));
                    }
                }
            }
            FaultKind::Resume(t) => {
                let list = match t {
                    Target::Nodes(n) => n,
                    Target::Random(k) => (0..self.slots.len() as u32)
                        .filter(|s| self.slots[*s as usize].state == State::Paused)
                        .take(k as usize)
                        .collect(),
                };
                for s in list {
                    self.fault_note(format!("resume n{s}"));
                    self.resume(s);
                }
            }
            FaultKind::Restart(t, via) => {
                for s in self.targets(&t) {
                    self.fault_note(format!("restart n{s}"));
                    self.stop(s, true);
                    self.start(s, Some(via), Start::Joiner);
                }
            }
            FaultKind::Leave(t) => {
                for s in self.targets(&t) {
                    self.fault_note(format!("leave n{s}"));
                    self.leave(s);
                }
            }
            FaultKind::Join(n, via) => {
                for _ in 0..n {
                    let s = self.next_slot;
                    self.next_slot += 1;
                    self.fault_note(format!("join n{s}"));
                    self.start(s, Some(via), Start::Joiner);
                }
            }
            FaultKind::Partition {
                shape,
                oneway,
                duration,
            } => {
                let sides = self.shape(&shape);
                let id = self.net.cut_sides(sides.clone(), oneway, now);
                // Side 0 lists the bridges; a node on several sides (but not
                // all) is listed on each.
                let on = |i: usize, g: u32| match g {
                    0 => sides[i] == crate::net::BRIDGE,
                    g => sides[i] != crate::net::BRIDGE && sides[i] >> (g - 1) & 1 == 1,
                };
                let side = |g: u32| -> String {
                    let v: Vec<String> = (0..sides.len().min(self.next_slot as usize))
                        .filter(|&i| on(i, g))
                        .map(|i| format!("n{i}"))
                        .collect();
                    if v.len() > 12 {
                        format!("{} nodes", v.len())
                    } else {
                        v.join(",")
                    }
                };
                let desc: Vec<String> = (0..=64)
                    .map(|g| format!("{}[{}]", if g == 0 { "bridge" } else { "group" }, side(g)))
                    .filter(|s| !s.ends_with("[]"))
                    .collect();
                self.fault_note(format!(
                    "partition #{id}{} {}",
                    if oneway { " one-way" } else { "" },
                    desc.join(" | ")
                ));
                if let Some(d) = duration {
                    self.at_action(now + d, Action::Heal(id));
                }
            }
            FaultKind::Heal => {
                self.fault_note("heal all".into());
                self.net.heal(None, now);
            }
            FaultKind::Spike(ref t, _, d) | FaultKind::Loss(ref t, _, d) => {
                let (extra, loss) = match kind {
                    FaultKind::Loss(_, r, _) => (gossip_chat::Duration::ZERO, r),
                    FaultKind::Spike(_, e, _) => (e, 0.0),
                    _ => unreachable!(),
                };
                let nodes = self.targets(t);
                let bits = Bits::of(self.slots.len(), &nodes);
                let id = self.net.burst(bits, extra, loss, now);
                let names: Vec<String> = nodes.iter().map(|n| format!("n{n}")).collect();
                self.fault_note(format!(
                    "{} #{id} on {} for {d}",
                    if loss > 0.0 {
                        format!("loss {loss}")
                    } else {
                        format!("spike +{extra}")
                    },
                    names.join(",")
                ));
                self.at_action(now + d, Action::Heal(id));
            }
            FaultKind::Link(l) => {
                let id = self
                    .net
                    .link(l.from as usize, l.to as usize, l.oneway, l.loss, now);
                let arrow = if l.oneway { "->" } else { "<->" };
                let what = if l.loss >= 1.0 {
                    "cut".to_string()
                } else {
                    format!("loss {}", l.loss)
                };
                self.fault_note(format!("link #{id} n{}{arrow}n{} {what}", l.from, l.to));
                if let Some(d) = l.duration {
                    self.at_action(now + d, Action::Heal(id));
                }
            }
            FaultKind::Misbehave(m) => self.misbehave(&m),
            FaultKind::Swizzle { count, step, hold } => {
                let nodes = self.targets(&Target::Random(count));
                self.fault_note(format!(
                    "swizzle {}",
                    nodes
                        .iter()
                        .map(|n| format!("n{n}"))
                        .collect::<Vec<_>>()
                        .join(",")
                ));
                // Cut one by one; restore in random order.
                let first = self.clogs.len();
                self.clogs.extend(nodes.iter().map(|_| 0));
                let mut order: Vec<u32> = (0..nodes.len() as u32).collect();
                for i in (1..order.len()).rev() {
                    let j = self.below(i + 1);
                    order.swap(i, j);
                }
                for (i, &s) in nodes.iter().enumerate() {
                    self.at_action(
                        now + step.saturating_mul(i as u64),
                        Action::Clog(s, first + i),
                    );
                }
                let restore =
                    now + step.saturating_mul(nodes.len().saturating_sub(1) as u64) + hold;
                for (k, &i) in order.iter().enumerate() {
                    self.at_action(
                        restore + step.saturating_mul(k as u64),
                        Action::Unclog(first + i as usize),
                    );
                }
            }
        }
    }

    fn misbehave(&mut self, m: &Misbehave) {
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
            self.attacks.insert(s, attack);
            let epoch = self.epochs;
            self.push(now, Ev::Hostile { slot: s, epoch });
        }
    }

    /// One hostile frame from the node in `slot`, on one of its
    /// handshaken connections.
    fn hostile_tick(&mut self, slot: u32, epoch: u32) {
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
        let s = &self.slots[slot as usize];
        let Some(node) = s.node.as_ref().filter(|_| s.state == State::Up) else {
            return;
        };
        let n = self.slots.len();
        let neighbours: BTreeSet<u32> = node.neighbours().filter_map(|a| slot_of(&a, n)).collect();
        let max_frame = node.config().max_frame;
        let mut links: Vec<(usize, usize)> = Vec::new();
        for &c in &s.conns {
            let cn = &self.conns[c as usize];
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
        let (up, slots, obs) = (&self.up, &self.slots, &self.obs);
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
                    if let Some(v) = slot_of(&k.addr, n) {
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
        let to = self.conns[c].ends[1 - e].slot;
        self.trace
            .event(now, 18, [slot as u64, to as u64, c as u64], |l| {
                l.push_str(&format!("n{slot} => n{to} c{c} {what} {bytes}B"))
            });
        self.transmit(slot, c, e, payload);
    }

    /// Sides per slot (see [`crate::net::Cut`]) for a partition shape over the
    /// current nodes. Slots not started yet go on the first side.
    fn shape(&mut self, shape: &Shape) -> Vec<u64> {
        let (first, second) = (crate::net::side_of_group(1), crate::net::side_of_group(2));
        let n = self.slots.len();
        let mut sides = vec![first; n];
        let mut present: Vec<u32> = (0..self.next_slot)
            .filter(|s| !matches!(self.slots[*s as usize].state, State::Absent))
            .collect();
        // Seeded shuffle: who ends up where differs per seed.
        for i in (1..present.len()).rev() {
            let j = self.below(i + 1);
            present.swap(i, j);
        }
        match shape {
            Shape::Halves => {
                for &s in &present[present.len() / 2..] {
                    sides[s as usize] = second;
                }
            }
            Shape::Majority => {
                let minority = (present.len().saturating_sub(1)) / 2;
                for &s in &present[..minority] {
                    sides[s as usize] = second;
                }
            }
            Shape::Isolate(node) => {
                let s = node.or_else(|| {
                    let mut up = self.up.clone();
                    up.sort_unstable();
                    (!up.is_empty()).then(|| up[self.below(up.len())])
                });
                if let Some(s) = s {
                    sides[s as usize] = second;
                }
            }
            Shape::Bridge(node) => {
                // The given bridge, or the first of the shuffle; the others
                // split in halves as they were shuffled.
                if let Some(bridge) = node.or_else(|| present.first().copied()) {
                    sides[bridge as usize] = crate::net::BRIDGE;
                    let rest: Vec<u32> = present.iter().copied().filter(|&s| s != bridge).collect();
                    for &s in &rest[rest.len() / 2..] {
                        sides[s as usize] = second;
                    }
                }
            }
            Shape::Groups(gs) => {
                // A node named in several groups is on each of their sides;
                // nodes in no group form one more side.
                sides.fill(0);
                for (i, g) in gs.iter().enumerate() {
                    for &s in g {
                        sides[s as usize] |= crate::net::side_of_group(i as u16 + 1);
                    }
                }
                let extra = crate::net::side_of_group(gs.len() as u16 + 1);
                for m in sides.iter_mut().filter(|m| **m == 0) {
                    *m = extra;
                }
            }
        }
        sides
    }

    fn chat_tick(&mut self) {
        let now = self.now;
        let w = &self.sc.workload;
        if now >= Instant::ZERO + w.stop {
            return;
        }
        self.chat_n += 1;
        let next_ms = w.start.as_millis() + (self.chat_n as f64 * 1000.0 / w.rate).round() as u64;
        let next = Instant::from_millis(next_ms.max(now.as_millis() + 1));
        let sender = match &w.senders {
            Senders::All => {
                if self.up.is_empty() {
                    None
                } else {
                    let i = self.below(self.up.len());
                    Some(self.up[i])
                }
            }
            Senders::Nodes(list) => {
                let live: Vec<u32> = list
                    .iter()
                    .copied()
                    .filter(|s| self.slots[*s as usize].state == State::Up)
                    .collect();
                (!live.is_empty()).then(|| live[self.below(live.len())])
            }
        };
        if let Some(s) = sender {
            let mut text = format!("m{} from n{s} ", self.chat_n);
            while text.len() < self.sc.workload.text_len {
                text.push('.');
            }
            text.truncate(self.sc.workload.text_len);
            self.handle(s, Input::Send { text });
        }
        self.push(next, Ev::ChatTick);
    }

    fn report(&mut self) -> Report {
        let end = self.end;
        let misbehave = (!self.attacks.is_empty()).then(|| {
            for slot in 0..self.slots.len() as u32 {
                self.count_stats(slot);
            }
            let mut tally = self.tally.clone();
            tally.hostile_nodes = self.attacks.keys().copied().collect();
            tally.invented_addresses = self.ghosts.len();
            tally.ghost_dials = self.obs.ghost_dials;
            (tally.ghost_dials_listed_max, tally.ghost_probes_max) = self.obs.ghost_dial_peaks();
            tally.ghosts_listed_at_end = self.obs.ghosts_listed();
            tally
        });
        let checks = self.obs.results(end);
        let passed = !checks.iter().any(|c| c.status.failed());
        let secs = self.obs.node_seconds(end).max(1e-9);
        let t = &self.obs.traffic;
        let total_msgs: u64 = t.kinds.iter().map(|k| k.1).sum();
        let total_bytes: u64 = t.kinds.iter().map(|k| k.2).sum();
        let sum_of = |names: &[&str]| -> u64 {
            t.kinds
                .iter()
                .filter(|k| names.contains(&k.0))
                .map(|k| k.2)
                .sum()
        };
        let idle = sum_of(&[
            "hello", "join", "peers", "ping", "pong", "sync", "leave", "bye",
        ]);
        let repair = sum_of(&["digest", "history"]);
        let mut kinds = t.kinds.clone();
        kinds.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
        let deliveries = self.obs.deliveries();
        let mt = self.obs.max_tables;

        let figures = Figures {
            msgs_per_node_s: total_msgs as f64 / secs,
            bytes_per_node_s: total_bytes as f64 / secs,
            idle_bytes_per_node_s: idle as f64 / secs,
            repair_bytes_per_node_s: repair as f64 / secs,
            by_kind: kinds
                .iter()
                .map(|k| KindTraffic {
                    kind: k.0.to_string(),
                    msgs_per_node_s: k.1 as f64 / secs,
                    bytes_per_node_s: k.2 as f64 / secs,
                })
                .collect(),
            copies_per_delivery: if deliveries == 0 {
                0.0
            } else {
                t.chat_copies as f64 / deliveries as f64
            },
            chats_sent: self.obs.msgs_sent(),
            deliveries,
            delivery_ms: self.obs.delivery_pct(),
            detection_ms: self.obs.detection_pct(),
            leave_ms: self.obs.leave_pct(),
            join_ms: self.obs.join_pct(),
            max_tables: MaxTables {
                members: mt.members,
                connections: mt.connections,
                neighbours: mt.neighbours,
                streams: mt.streams,
                held: mt.held,
                history: mt.history,
                paused_queue: self.obs.max_held,
            },
            max_queue: self.obs.max_queue,
            misbehave,
        };
        let _ = self.trace.finish();
        Report {
            scenario: self.sc.name.clone(),
            file: self.sc.path.clone(),
            seed: self.seed,
            nodes: self.sc.nodes.count,
            slots: self.slots.len(),
            virtual_s: end.as_millis() as f64 / 1000.0,
            events: self.events,
            fingerprint: self.trace.fingerprint(),
            faults: self.schedule.clone(),
            checks,
            figures,
            wall_ms: None,
            passed,
        }
    }
}

/// `n4`, or the address of a node that is not simulated (`slot` is
/// `u32::MAX`).
fn who(slot: u32, addr: &SocketAddr) -> String {
    if slot == u32::MAX {
        addr.to_string()
    } else {
        format!("n{slot}")
    }
}

fn describe_msg(m: &Message, slots: usize) -> String {
    let name = |a: &SocketAddr| match slot_of(a, slots) {
        Some(s) => format!("n{s}"),
        None => a.to_string(),
    };
    match m {
        Message::Chat(c) => format!(
            " {}/{}#{}",
            name(&c.id.origin.addr),
            c.id.origin.incarnation,
            c.id.seq
        ),
        Message::PeerList { full, members } => {
            format!(
                " {} entries{}",
                members.len(),
                if *full { " full" } else { "" }
            )
        }
        Message::History(h) => format!(" {} chats", h.chats.len()),
        Message::Digest(d) => format!(" {} streams", d.entries.len()),
        Message::Bye(r) => format!(" {r:?}"),
        _ => String::new(),
    }
}

/// One line per scheduled fault, for the report and the trace header.
pub fn describe(f: &Fault) -> String {
    let t = |t: &Target| match t {
        Target::Nodes(n) => n
            .iter()
            .map(|n| format!("n{n}"))
            .collect::<Vec<_>>()
            .join(","),
        Target::Random(k) => format!("{k} random"),
    };
    let v = |v: &Via| match v {
        Via::Node(n) => format!("n{n}"),
        Via::Random => "a random member".into(),
    };
    let what = match &f.kind {
        FaultKind::Crash(x) => format!("crash {}", t(x)),
        FaultKind::Kill(x) => format!("kill {}", t(x)),
        FaultKind::Pause(x, d) => match d {
            Some(d) => format!("pause {} for {d}", t(x)),
            None => format!("pause {}", t(x)),
        },
        FaultKind::Resume(x) => format!("resume {}", t(x)),
        FaultKind::Restart(x, via) => format!("restart {} via {}", t(x), v(via)),
        FaultKind::Leave(x) => format!("leave {}", t(x)),
        FaultKind::Join(n, via) => format!("join {n} via {}", v(via)),
        FaultKind::Partition {
            shape,
            oneway,
            duration,
        } => {
            let s = match shape {
                Shape::Halves => "halves".to_string(),
                Shape::Isolate(Some(n)) => format!("isolate n{n}"),
                Shape::Isolate(None) => "isolate a random node".into(),
                Shape::Majority => "majority/minority".into(),
                Shape::Bridge(None) => "bridge".into(),
                Shape::Bridge(Some(n)) => format!("bridge through n{n}"),
                Shape::Groups(g) => format!("groups {g:?}"),
            };
            let d = duration.map_or(String::new(), |d| format!(" for {d}"));
            format!("partition {s}{}{d}", if *oneway { " one-way" } else { "" })
        }
        FaultKind::Heal => "heal".into(),
        FaultKind::Link(l) => {
            let d = l.duration.map_or(String::new(), |d| format!(" for {d}"));
            let what = if l.loss >= 1.0 {
                "cut".to_string()
            } else {
                format!("loss {:.2}", l.loss)
            };
            let arrow = if l.oneway { "->" } else { "<->" };
            format!("link n{}{arrow}n{} {what}{d}", l.from, l.to)
        }
        FaultKind::Spike(x, e, d) => format!("spike +{e} on {} for {d}", t(x)),
        FaultKind::Loss(x, r, d) => format!("loss {r:.2} on {} for {d}", t(x)),
        FaultKind::Swizzle { count, step, hold } => {
            format!("swizzle {count} nodes, step {step}, hold {hold}")
        }
        FaultKind::Misbehave(m) => {
            let modes: Vec<&str> = m.modes.iter().map(|m| m.name()).collect();
            let d = m.duration.map_or(String::new(), |d| format!(" for {d}"));
            format!(
                "misbehave {}{d}: {}, {} frames/s, {} invented addresses",
                t(&m.target),
                modes.join(" "),
                m.rate,
                m.addresses
            )
        }
    };
    format!("at {}: {what}", f.at)
}
