//! The engine driven step by step from code: build a few nodes on a
//! simple network, run to a time, break things now, send chats, and look
//! at the nodes and the user events they emitted.
//!
//! It is the same engine as a scenario run ([`World`]): the same
//! transport, the same faults (with the same `fault ...` trace notes), the
//! same observer. Nodes are numbered by slot, from 0.
//!
//! ```
//! use gossip_chat::Duration;
//! use gossip_sim::builder::Sim;
//! let mut sim = Sim::builder()
//!     .nodes(3)
//!     .latency(Duration::from_millis(20))
//!     .build();
//! sim.run_for(Duration::from_secs(5));
//! sim.send(0, "hello");
//! sim.run_for(Duration::from_secs(2));
//! assert_eq!(sim.chats(2), ["hello"]);
//! sim.crash(1);
//! sim.run_for(Duration::from_secs(20));
//! assert!(!sim.node(0).unwrap().knows_alive(&gossip_sim::addr::id_of(1)));
//! ```

use crate::addr::addr_of;
use crate::scenario::{self, FaultKind, InitialJoin, Latency, LinkFault, Shape, Target, Via};
use crate::trace::Trace;
use crate::world::{Seen, World};
use gossip_chat::{Config, Duration, Event, Input, Instant, Message, Node};
use std::io::Write;

/// User events kept by default (a bound: see [`SimBuilder::keep_events`]).
const KEEP_EVENTS: usize = 1 << 20;

/// Settings of a [`Sim`] before it starts.
pub struct SimBuilder {
    nodes: u32,
    latency: Latency,
    config: Config,
    seed: u64,
    horizon: Duration,
    join: InitialJoin,
    stagger: Duration,
    keep: usize,
    spare: u32,
    trace: Option<Box<dyn Write>>,
    record: bool,
}

impl SimBuilder {
    /// Number of nodes started at the beginning (default 2).
    pub fn nodes(mut self, n: u32) -> Self {
        self.nodes = n;
        self
    }

    /// One latency on every link (default 10 ms).
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = Latency::Constant(d);
        self
    }

    /// Any latency distribution on every link.
    pub fn latency_dist(mut self, l: Latency) -> Self {
        self.latency = l;
        self
    }

    /// The nodes' configuration (default: the core's default).
    pub fn config(mut self, cfg: Config) -> Self {
        self.config = cfg;
        self
    }

    /// The seed of every draw (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How far virtual time may run (default one hour).
    pub fn horizon(mut self, d: Duration) -> Self {
        self.horizon = d;
        self
    }

    /// Whom the initial nodes join through (default: node 0).
    pub fn join(mut self, j: InitialJoin) -> Self {
        self.join = j;
        self
    }

    /// Delay between the starts of the initial nodes (default 10 ms).
    pub fn stagger(mut self, d: Duration) -> Self {
        self.stagger = d;
        self
    }

    /// Keeps at most `cap` user events for [`Sim::events`].
    pub fn keep_events(mut self, cap: usize) -> Self {
        self.keep = cap;
        self
    }

    /// Room for `n` nodes started later with [`Sim::add_node`].
    pub fn spare(mut self, n: u32) -> Self {
        self.spare = n;
        self
    }

    /// Writes the trace lines to `out`.
    pub fn trace(mut self, out: Box<dyn Write>) -> Self {
        self.trace = Some(out);
        self.record = false;
        self
    }

    /// Keeps the trace lines in memory, for [`Sim::trace`].
    pub fn record_trace(mut self) -> Self {
        self.trace = None;
        self.record = true;
        self
    }

    /// Starts the simulation at time zero (nothing has run yet).
    ///
    /// # Panics
    ///
    /// If the configuration is not valid or there are no nodes.
    pub fn build(self) -> Sim {
        let text = format!(
            "duration = \"{}ms\"\n[nodes]\ncount = {}\n",
            self.horizon.as_millis().max(1),
            self.nodes
        );
        let mut sc = scenario::parse("sim", &text).expect("a valid generated scenario");
        self.config.validate().expect("a valid node config");
        sc.config = self.config;
        sc.network.latency = self.latency;
        sc.nodes.join = self.join;
        sc.nodes.stagger = self.stagger;
        let trace = if self.record {
            Trace::kept()
        } else {
            Trace::new(self.trace)
        };
        let mut world = World::with_spare(&sc, self.seed, &[], trace, self.spare);
        world.keep_events(self.keep);
        Sim { world }
    }
}

/// A simulation driven from code.
pub struct Sim {
    world: World,
}

impl Sim {
    /// Settings, from the defaults.
    pub fn builder() -> SimBuilder {
        SimBuilder {
            nodes: 2,
            latency: Latency::Constant(Duration::from_millis(10)),
            config: Config::default(),
            seed: 0,
            horizon: Duration::from_secs(3600),
            join: InitialJoin::First,
            stagger: Duration::from_millis(10),
            keep: KEEP_EVENTS,
            spare: 0,
            trace: None,
            record: false,
        }
    }

    /// The virtual time reached.
    pub fn now(&self) -> Instant {
        self.world.now()
    }

    /// Runs every event up to `t` (at most the horizon).
    pub fn run_until(&mut self, t: Instant) {
        self.world.advance(t, &mut |_| {});
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now() + d;
        self.run_until(t);
    }

    /// Runs in steps of `step` until `done` holds or `deadline` passes;
    /// whether it held.
    pub fn run_until_true(
        &mut self,
        deadline: Instant,
        step: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if self.now() >= deadline.min(self.world.end()) {
                return false;
            }
            let t = (self.now() + step).min(deadline);
            self.run_until(t);
        }
    }

    /// The node in slot `i`, if one runs there (up or paused).
    pub fn node(&self, i: u32) -> Option<&Node> {
        self.world.node(i)
    }

    /// Number of node slots.
    pub fn len(&self) -> usize {
        self.world.slots()
    }

    /// Whether there are no node slots (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots whose node is up, in order.
    pub fn up(&self) -> Vec<u32> {
        self.world.up()
    }

    /// Whether every up node lists every other up node as alive.
    pub fn converged(&self) -> bool {
        let up = self.up();
        up.iter().all(|&i| {
            up.iter().all(|&j| {
                i == j
                    || self
                        .node(i)
                        .is_some_and(|n| n.knows_alive(&crate::addr::id_of(j)))
            })
        })
    }

    /// Starts a node in the next spare slot, alone (see [`Sim::join`]);
    /// its slot, or `None` if no spare slot is left.
    pub fn add_node(&mut self) -> Option<u32> {
        self.world.start_now(None)
    }

    /// Node `i` joins the group through node `via`.
    pub fn join(&mut self, i: u32, via: u32) {
        self.input(i, Input::Join { addr: addr_of(via) });
    }

    /// Feeds node `i` any input now (if it is up).
    pub fn input(&mut self, i: u32, input: Input) {
        self.world.input_now(i, input);
    }

    /// Delivers `msg` to node `to` now, on its connection with node
    /// `from`; whether there was one.
    pub fn inject(&mut self, from: u32, to: u32, msg: Message) -> bool {
        self.world
            .inject_now(from, to, |conn| Input::Message { conn, msg })
    }

    /// Delivers a raw frame payload to node `to` now, on its connection
    /// with node `from`; whether there was one.
    pub fn inject_frame(&mut self, from: u32, to: u32, payload: Vec<u8>) -> bool {
        self.world
            .inject_now(from, to, |conn| Input::Frame { conn, payload })
    }

    /// The user events seen so far, in order.
    pub fn events(&self) -> &[Seen] {
        self.world.seen()
    }

    /// The chat texts node `i` delivered, in order.
    pub fn chats(&self, i: u32) -> Vec<String> {
        self.events()
            .iter()
            .filter(|s| s.node == i)
            .filter_map(|s| match &s.event {
                Event::Chat { text, .. } => Some(text.to_string()),
                _ => None,
            })
            .collect()
    }

    /// The user of node `i` sends `text` (if the node is up).
    pub fn send(&mut self, i: u32, text: &str) {
        self.world.send_now(i, text);
    }

    /// Node `i` stops silently.
    pub fn crash(&mut self, i: u32) {
        self.world
            .fault_now(FaultKind::Crash(Target::Nodes(vec![i])));
    }

    /// Node `i` stops; its connections are reset.
    pub fn kill(&mut self, i: u32) {
        self.world
            .fault_now(FaultKind::Kill(Target::Nodes(vec![i])));
    }

    /// Node `i` freezes: inputs wait until it resumes.
    pub fn pause(&mut self, i: u32) {
        self.world
            .fault_now(FaultKind::Pause(Target::Nodes(vec![i]), None));
    }

    /// Paused node `i` goes on, first with what it missed.
    pub fn resume(&mut self, i: u32) {
        self.world
            .fault_now(FaultKind::Resume(Target::Nodes(vec![i])));
    }

    /// Node `i` stops and starts again (a new incarnation) through `via`.
    pub fn restart(&mut self, i: u32, via: u32) {
        self.world
            .fault_now(FaultKind::Restart(Target::Nodes(vec![i]), Via::Node(via)));
    }

    /// Node `i` leaves the group.
    pub fn leave(&mut self, i: u32) {
        self.world
            .fault_now(FaultKind::Leave(Target::Nodes(vec![i])));
    }

    /// Cuts the network into `groups` (nodes in none form one more group),
    /// until [`Sim::heal`].
    pub fn partition(&mut self, groups: &[&[u32]]) {
        let groups = groups.iter().map(|g| g.to_vec()).collect();
        self.world.fault_now(FaultKind::Partition {
            shape: Shape::Groups(groups),
            oneway: false,
            duration: None,
        });
    }

    /// Heals every partition.
    pub fn heal(&mut self) {
        self.world.fault_now(FaultKind::Heal);
    }

    /// The engine underneath.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Sets the one-way latency from node `a` to node `b` from now on.
    pub fn set_latency(&mut self, a: u32, b: u32, d: Duration) {
        self.world
            .network_mut()
            .set_link_latency(a as usize, b as usize, d);
    }

    /// Adds up to `d` of random delay to every message from now on, so
    /// that messages on one link can overtake each other.
    pub fn set_jitter(&mut self, d: Duration) {
        self.world.network_mut().set_jitter(d);
    }

    /// Silently drops everything node `a` sends to node `b`, until
    /// [`Sim::heal`].
    pub fn cut(&mut self, a: u32, b: u32) {
        self.world.fault_now(FaultKind::Link(LinkFault {
            from: a,
            to: b,
            oneway: true,
            loss: 1.0,
            duration: None,
            excused: true,
        }));
    }

    /// Cuts every link between the groups `a` and `b`, both ways, until
    /// [`Sim::heal`].
    pub fn split(&mut self, a: &[u32], b: &[u32]) {
        self.partition(&[a, b]);
    }

    /// Drops the connection between up nodes `a` and `b` now: both hear
    /// of it at once (a dialler not yet through hears that its dial
    /// failed) and what was in flight on it is lost. Whether there was one.
    pub fn reset(&mut self, a: u32, b: u32) -> bool {
        self.world.reset_now(a, b) > 0
    }

    /// The trace lines so far (empty unless built with
    /// [`SimBuilder::record_trace`]).
    pub fn trace(&self) -> &str {
        self.world.trace_text()
    }
}
