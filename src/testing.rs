//! A small in-memory network for tests: a few [`Node`]s wired together with
//! virtual time and per-link latency, no threads, no sockets.
//!
//! This is the harness the core's own tests read as sentences with; the
//! full simulator (faults, scenarios, checks, reports) is `gossip-sim`.
//! Everything is deterministic: the same calls give the same
//! [`Harness::trace`].

use crate::{Config, ConnId, Duration, Event, Input, Instant, Message, Node, Output};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// Whether a node's process is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Up,
    /// Stopped without a word: peers see silence.
    Crashed,
    /// Alive but frozen: what reaches it waits until it resumes.
    Paused,
}

struct Slot {
    node: Node,
    life: Life,
}

/// Something due at one node: an input, and the node that caused it.
#[derive(Debug)]
struct Ev {
    to: usize,
    from: Option<usize>,
    input: Input,
}

/// A delivered user event, with when and where it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    /// Virtual time.
    pub at: Instant,
    /// Index of the node that emitted it.
    pub node: usize,
    /// The event.
    pub event: Event,
}

/// A deterministic in-memory network of nodes.
pub struct Harness {
    now: Instant,
    cfg: Config,
    slots: Vec<Slot>,
    queue: BTreeMap<(Instant, u64), Ev>,
    seq: u64,
    latency: Duration,
    link_latency: BTreeMap<(usize, usize), Duration>,
    cut: BTreeMap<(usize, usize), ()>,
    fifo_last: BTreeMap<(usize, usize), Instant>,
    /// Extra random delay up to this on every message, breaking FIFO order.
    jitter: Option<Duration>,
    rng: ChaCha8Rng,
    ends: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    parked: Vec<Ev>,
    next_conn: u64,
    out: Vec<Output>,
    trace: String,
    seen: Vec<Seen>,
    /// Record every message delivery in the trace (not only events).
    pub trace_messages: bool,
}

/// The address node `i` listens on in a harness.
pub fn addr_of(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250 + 1) as u8], 7000))
}

impl Harness {
    /// An empty network with `latency` on every link, nodes built from
    /// `cfg`, randomness from `seed`.
    pub fn new(cfg: Config, latency: Duration, seed: u64) -> Self {
        Harness {
            now: Instant::ZERO,
            cfg,
            slots: Vec::new(),
            queue: BTreeMap::new(),
            seq: 0,
            latency,
            link_latency: BTreeMap::new(),
            cut: BTreeMap::new(),
            fifo_last: BTreeMap::new(),
            jitter: None,
            rng: ChaCha8Rng::seed_from_u64(seed),
            ends: BTreeMap::new(),
            parked: Vec::new(),
            next_conn: 1,
            out: Vec::new(),
            trace: String::new(),
            seen: Vec::new(),
            trace_messages: true,
        }
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Adds a node (index = number of nodes before it) in incarnation 1.
    pub fn add_node(&mut self) -> usize {
        let i = self.slots.len();
        self.add_node_at(i, 1)
    }

    /// Adds `n` nodes, each joining through the node added just before it
    /// (the first through the last node already there, if any). Returns
    /// the index of the first.
    pub fn add_chain(&mut self, n: usize) -> usize {
        let first = self.slots.len();
        for i in first..first + n {
            self.add_node();
            if i > 0 {
                self.join(i, i - 1);
            }
        }
        first
    }

    fn add_node_at(&mut self, i: usize, incarnation: u64) -> usize {
        let seed = self.rng.next_u64();
        let node = Node::new(
            self.cfg.clone(),
            crate::Identity::new(addr_of(i), incarnation, format!("n{i}")),
            seed,
            self.now,
        )
        .expect("harness config is valid");
        let slot = Slot {
            node,
            life: Life::Up,
        };
        if i == self.slots.len() {
            self.slots.push(slot);
        } else {
            self.slots[i] = slot;
        }
        i
    }

    /// The node at index `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.slots[i].node
    }

    /// Number of nodes ever added.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True if no node was added.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Indexes of the nodes that are running.
    pub fn up(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|i| self.slots[*i].life == Life::Up)
            .collect()
    }

    /// Sets the one-way latency of the link `a -> b`.
    pub fn set_latency(&mut self, a: usize, b: usize, d: Duration) {
        self.link_latency.insert((a, b), d);
    }

    /// Adds up to `d` of random delay to every message, so that messages on
    /// one link can overtake each other.
    pub fn set_jitter(&mut self, d: Duration) {
        self.jitter = Some(d);
    }

    /// Silently drops everything `a` sends to `b` from now on.
    pub fn cut(&mut self, a: usize, b: usize) {
        self.cut.insert((a, b), ());
    }

    /// Undoes every [`Harness::cut`].
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Feeds a local input to node `i` now.
    pub fn input(&mut self, i: usize, input: Input) {
        self.step(i, input);
    }

    /// Node `i` joins through node `via`.
    pub fn join(&mut self, i: usize, via: usize) {
        self.input(i, Input::Join { addr: addr_of(via) });
    }

    /// Node `i` sends a chat message.
    pub fn send(&mut self, i: usize, text: &str) {
        self.input(i, Input::Send { text: text.into() });
    }

    /// Delivers `msg` to node `to` as if it came on its connection with
    /// node `from` (for forged or replayed traffic). Returns false if there
    /// is no such connection.
    pub fn inject(&mut self, from: usize, to: usize, msg: Message) -> bool {
        self.inject_input(from, to, |conn| Input::Message { conn, msg })
    }

    /// Delivers a raw frame payload to node `to` on its connection with
    /// node `from`.
    pub fn inject_frame(&mut self, from: usize, to: usize, payload: Vec<u8>) -> bool {
        self.inject_input(from, to, |conn| Input::Frame { conn, payload })
    }

    /// Feeds node `to` the input built for its end of the link with `from`.
    fn inject_input(
        &mut self,
        from: usize,
        to: usize,
        input: impl FnOnce(ConnId) -> Input,
    ) -> bool {
        let conn = self
            .ends
            .iter()
            .find(|((n, _), (m, _))| *n == from && *m == to)
            .map(|(_, (_, c))| *c);
        match conn {
            Some(conn) => {
                self.step(to, input(conn));
                true
            }
            None => false,
        }
    }

    /// Stops node `i` without a word: peers see only silence.
    pub fn crash(&mut self, i: usize) {
        self.slots[i].life = Life::Crashed;
        let _ = writeln!(self.trace, "{} n{i} CRASH", self.now);
    }

    /// Freezes node `i`: it runs no timers and what reaches it waits.
    pub fn pause(&mut self, i: usize) {
        self.slots[i].life = Life::Paused;
        let _ = writeln!(self.trace, "{} n{i} PAUSE", self.now);
    }

    /// Thaws node `i`: it handles what waited, in arrival order, now.
    pub fn resume(&mut self, i: usize) {
        self.slots[i].life = Life::Up;
        let _ = writeln!(self.trace, "{} n{i} RESUME", self.now);
        let (mine, rest): (Vec<Ev>, Vec<Ev>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|e| e.to == i);
        self.parked = rest;
        for ev in mine {
            self.step_from(ev.to, ev.from, ev.input);
        }
    }

    /// Cuts every link between the groups `a` and `b`, both ways.
    pub fn split(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut(x, y);
                self.cut(y, x);
            }
        }
    }

    /// Replaces node `i` by a fresh node on the same address with the next
    /// incarnation, and makes it join through `via`.
    pub fn restart(&mut self, i: usize, via: usize) {
        let inc = self.slots[i].node.key().incarnation + 1;
        self.ends.retain(|(n, _), (m, _)| *n != i && *m != i);
        self.add_node_at(i, inc);
        let _ = writeln!(self.trace, "{} n{i} RESTART inc={inc}", self.now);
        self.join(i, via);
    }

    /// Runs until virtual time `t`.
    pub fn run_until(&mut self, t: Instant) {
        loop {
            let next_ev = self.queue.keys().next().map(|k| k.0);
            let next_timer = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.life == Life::Up)
                .filter_map(|(i, s)| s.node.poll_timeout().map(|at| (at, i)))
                .min();
            let ev_first = match (next_ev, next_timer) {
                (Some(e), Some((tm, _))) => e <= tm,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if ev_first {
                let (&key, _) = self.queue.iter().next().expect("queue not empty");
                if key.0 > t {
                    break;
                }
                let ev = self.queue.remove(&key).expect("key present");
                self.now = self.now.max(key.0);
                match self.slots[ev.to].life {
                    Life::Up => self.step_from(ev.to, ev.from, ev.input),
                    Life::Paused => self.parked.push(ev),
                    Life::Crashed => {}
                }
            } else {
                let (at, i) = next_timer.expect("timer present");
                if at > t {
                    break;
                }
                self.now = self.now.max(at);
                self.step(i, Input::Timeout);
            }
        }
        self.now = self.now.max(t);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    /// Runs until `pred` holds (checked after every step) or `limit` passes;
    /// returns the time it first held.
    pub fn run_until_true(
        &mut self,
        limit: Duration,
        mut pred: impl FnMut(&Harness) -> bool,
    ) -> Option<Instant> {
        let end = self.now + limit;
        while self.now < end {
            if pred(self) {
                return Some(self.now);
            }
            let step = Duration::from_millis(10);
            let t = (self.now + step).min(end);
            self.run_until(t);
        }
        pred(self).then_some(self.now)
    }

    /// Every user event so far, in order.
    pub fn events(&self) -> &[Seen] {
        &self.seen
    }

    /// The chat texts node `i` delivered, in order.
    pub fn chats(&self, i: usize) -> Vec<String> {
        self.seen
            .iter()
            .filter(|s| s.node == i)
            .filter_map(|s| match &s.event {
                Event::Chat { text, .. } => Some(text.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Whether every running node has every other running node in its
    /// roster.
    pub fn converged(&self) -> bool {
        let up = self.up();
        up.iter().all(|&i| {
            up.iter()
                .all(|&j| i == j || self.slots[i].node.knows_alive(&addr_of(j)))
        })
    }

    /// The trace so far: one line per delivered message and user event,
    /// virtual time first.
    pub fn trace(&self) -> &str {
        &self.trace
    }

    fn push(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn link_delay(&mut self, a: usize, b: usize) -> Duration {
        let base = self
            .link_latency
            .get(&(a, b))
            .copied()
            .unwrap_or(self.latency);
        match self.jitter {
            Some(j) if j.as_millis() > 0 => {
                base + Duration::from_millis(self.rng.next_u64() % (j.as_millis() + 1))
            }
            _ => base,
        }
    }

    /// When something sent now from `a` arrives at `b`: in order per link
    /// unless jitter is on.
    fn arrival(&mut self, a: usize, b: usize) -> Instant {
        let at = self.now + self.link_delay(a, b);
        if self.jitter.is_some() {
            return at;
        }
        let last = self.fifo_last.entry((a, b)).or_insert(Instant::ZERO);
        let at = at.max(*last);
        *last = at;
        at
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        (0..self.slots.len()).find(|i| addr_of(*i) == addr)
    }

    fn step(&mut self, i: usize, input: Input) {
        self.step_from(i, None, input);
    }

    fn step_from(&mut self, i: usize, from: Option<usize>, input: Input) {
        if self.trace_messages {
            if let Input::Message { conn, msg } = &input {
                let from = from.or_else(|| self.ends.get(&(i, *conn)).map(|e| e.0));
                let from = from.map_or("?".to_string(), |f| format!("n{f}"));
                let _ = writeln!(self.trace, "{} {from}->n{i} {}", self.now, describe(msg));
            }
        }
        let mut out = std::mem::take(&mut self.out);
        self.slots[i].node.handle(self.now, input, &mut out);
        for o in out.drain(..) {
            self.carry_out(i, o);
        }
        self.out = out;
    }

    fn carry_out(&mut self, i: usize, o: Output) {
        match o {
            Output::Send { conn, msg } => {
                let Some(&(j, cj)) = self.ends.get(&(i, conn)) else {
                    return;
                };
                if self.cut.contains_key(&(i, j)) {
                    return;
                }
                let at = self.arrival(i, j);
                self.push(
                    at,
                    Ev {
                        to: j,
                        from: Some(i),
                        input: Input::Message { conn: cj, msg },
                    },
                );
            }
            Output::Connect { addr } => {
                let target = self.index_of(addr);
                let rtt = self.latency.saturating_mul(2);
                match target {
                    Some(j)
                        if self.slots[j].life == Life::Up && !self.cut.contains_key(&(i, j)) =>
                    {
                        let ci = ConnId(self.next_conn);
                        let cj = ConnId(self.next_conn + 1);
                        self.next_conn += 2;
                        self.ends.insert((i, ci), (j, cj));
                        self.ends.insert((j, cj), (i, ci));
                        let at_j = self.arrival(i, j);
                        self.push(
                            at_j,
                            Ev {
                                to: j,
                                from: Some(i),
                                input: Input::Connected {
                                    conn: cj,
                                    dialed: None,
                                },
                            },
                        );
                        let at_i = self.now + rtt;
                        self.push(
                            at_i,
                            Ev {
                                to: i,
                                from: Some(j),
                                input: Input::Connected {
                                    conn: ci,
                                    dialed: Some(addr),
                                },
                            },
                        );
                    }
                    Some(j) if self.slots[j].life != Life::Up || self.cut.contains_key(&(i, j)) => {
                        // No answer at all: the dial times out.
                        let at = self.now + Duration::from_secs(1);
                        self.push(
                            at,
                            Ev {
                                to: i,
                                from: None,
                                input: Input::ConnectFailed { addr },
                            },
                        );
                    }
                    _ => {
                        let at = self.now + rtt;
                        self.push(
                            at,
                            Ev {
                                to: i,
                                from: None,
                                input: Input::ConnectFailed { addr },
                            },
                        );
                    }
                }
            }
            Output::Close { conn } => {
                if let Some((j, cj)) = self.ends.remove(&(i, conn)) {
                    self.ends.remove(&(j, cj));
                    let at = self.arrival(i, j);
                    self.push(
                        at,
                        Ev {
                            to: j,
                            from: Some(i),
                            input: Input::Disconnected { conn: cj },
                        },
                    );
                }
            }
            Output::Event(event) => {
                let _ = writeln!(self.trace, "{} n{i} {}", self.now, describe_event(&event));
                self.seen.push(Seen {
                    at: self.now,
                    node: i,
                    event,
                });
            }
        }
    }
}

/// One short line for a message, as used in traces.
pub fn describe(msg: &Message) -> String {
    match msg {
        Message::Join(h) | Message::Hello(h) => format!(
            "{} {}#{} deg={}",
            msg.kind(),
            h.node.addr,
            h.node.incarnation,
            h.degree
        ),
        Message::PeerList { full, members } => format!(
            "peers{} [{}]",
            if *full { " full" } else { "" },
            members
                .iter()
                .map(|u| format!("{}#{}:{:?}", u.node.addr, u.node.incarnation, u.state))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Message::Ping(n) => format!("ping {n}"),
        Message::Pong(n) => format!("pong {n}"),
        Message::Chat(c) => format!(
            "chat {}#{}/{} {:?}",
            c.id.origin.addr, c.id.origin.incarnation, c.id.seq, c.text
        ),
        Message::Leave(k) => format!("leave {}#{}", k.addr, k.incarnation),
        Message::Bye(r) => format!("bye {r:?}"),
        Message::Sync(_) => "sync".to_string(),
        Message::Prune => "prune".to_string(),
        Message::Graft(ids) => format!("graft {} ids", ids.len()),
        Message::IHave(ids) => format!(
            "ihave {}",
            ids.iter()
                .map(|id| format!("{}#{}/{}", id.origin.addr, id.origin.incarnation, id.seq))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Message::Digest(d) => format!("digest {} streams", d.entries.len()),
        Message::History(h) => format!(
            "history {} msgs{}",
            h.chats.len(),
            if h.baseline.is_some() {
                " +baseline"
            } else {
                ""
            }
        ),
    }
}

/// One short line for a user event, as used in traces.
pub fn describe_event(e: &Event) -> String {
    match e {
        Event::PeerUp { node, name } => format!("UP {}#{} {name}", node.addr, node.incarnation),
        Event::PeerDown { node, reason, .. } => {
            format!("DOWN {}#{} {reason:?}", node.addr, node.incarnation)
        }
        Event::Chat {
            id, text, history, ..
        } => format!(
            "DELIVER {}#{}/{} {text:?}{}",
            id.origin.addr,
            id.origin.incarnation,
            id.seq,
            if *history { " (history)" } else { "" }
        ),
        Event::Gap {
            origin,
            first,
            last,
        } => format!(
            "GAP {}#{} {first}..={last}",
            origin.addr, origin.incarnation
        ),
        Event::Refuted { incarnation } => format!("REFUTED inc={incarnation}"),
        Event::Refused(r) => format!("REFUSED {r:?}"),
    }
}
