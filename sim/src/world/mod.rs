//! The discrete-event engine: a queue ordered by (virtual time, sequence
//! number) that jumps from event to event and drives real [`Node`]s.
//!
//! This file holds the [`World`], its events and the loop: pop an event,
//! dispatch it, feed the node, carry out its outputs. Each concern has its
//! own file:
//!
//! - `deliver.rs`: an input reaches a node; user events go to the observer.
//! - `transport.rs`: connections, messages in flight, dial and close.
//! - `process.rs`: the slots and their processes (start, stop, pause,
//!   resume, leave).
//! - `fault.rs`: scheduled actions and scenario faults, partition shapes.
//! - `misbehave.rs`: driving the misbehaving nodes and their tally.
//! - `workload.rs`: the chat workload.
//! - `report.rs` and `msg_kind.rs`: the report and its traffic figures.
//! - `describe.rs`: the texts of trace lines and of the fault schedule.
//!
//! [`Node`]: gossip_chat::Node

mod authenticity;
mod deliver;
mod describe;
mod fault;
mod misbehave;
mod msg_kind;
mod process;
mod report;
mod slow;
mod transport;
mod workload;

pub use crate::addr::{addr_of, slot_of};
pub use deliver::Seen;
pub use describe::describe;
pub use workload::WALL_EPOCH_MS;

use crate::checks::Observer;
use crate::hostile::{Attack, Tally};
use crate::net::Network;
use crate::queue::Queue;
use crate::report::Report;
use crate::scenario::{Fault, FaultKind, InitialJoin, Scenario, Via};
use crate::series;
use crate::trace::Trace;
use deliver::SeenLog;
use gossip_chat::Node;
use gossip_chat::{Input, Instant, Output};
use process::Processes;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use transport::Transport;

/// Where a slot's process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Absent,
    Up,
    Paused,
    Crashed,
    Killed,
    Left,
}

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

/// An input waiting for a node: in the queue, or held while it is paused.
///
/// Kept small (messages wait in a slab, addresses as slot numbers) so that
/// the event heap moves little memory.
enum Pending {
    Deliver {
        conn: u32,
        end: u8,
        msg: u32,
    },
    Connected {
        conn: u32,
        end: u8,
    },
    Disconnected {
        conn: u32,
        end: u8,
    },
    ConnectFailed {
        to: u32,
    },
    /// The node's own timeout, handled late (a slow node).
    Timeout,
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
    /// The first input of a slow node's backlog is due.
    Late {
        slot: u32,
        life: u32,
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
    SlowEnd(u32, u32),
    DiscoveryBegins,
    Liveness,
    Send(usize),
}

/// One simulation run.
pub struct World {
    sc: Arc<Scenario>,
    /// Judges chat signatures for every node (see [`authenticity`]).
    authenticity: Arc<authenticity::Remembered>,
    seed: u64,
    now: Instant,
    end: Instant,
    queue: Queue<Ev>,
    procs: Processes,
    transport: Transport,
    net: Network,
    actions: Vec<Action>,
    out: Vec<Output>,
    /// Connection ends written to in the step being carried out: frames a
    /// node hands one connection in one step go out in one write.
    written: Vec<(usize, usize)>,
    obs: Observer,
    trace: Trace,
    rng: ChaCha8Rng,
    chat_n: u64,
    clogs: Vec<u32>,
    /// Misbehaving nodes' attacks, by slot.
    attacks: BTreeMap<u32, Attack>,
    /// Invented addresses, numbered in the order drawn.
    ghosts: BTreeMap<SocketAddr, u32>,
    /// Draws of the misbehaving nodes (apart, so that an attack does not
    /// reshuffle the rest of the run).
    hostile_rng: ChaCha8Rng,
    epochs: u32,
    /// Impostor connections a hostile node dialled for itself (its end is
    /// end 0), with the hello to send once open.
    rogue: BTreeMap<u32, misbehave::Rogue>,
    tally: Tally,
    schedule: Vec<String>,
    events: u64,
    /// User events kept for inspection (off unless asked for).
    seen: SeenLog,
}

impl World {
    /// Builds the world for `sc` under `seed` with the concrete fault
    /// schedule `faults` (the scenario's, or one drawn in random mode).
    pub fn new(sc: &Scenario, seed: u64, faults: &[Fault], trace: Trace) -> Self {
        Self::with_spare(sc, seed, faults, trace, 0)
    }

    /// [`World::new`] with `spare` more slots, for nodes started with
    /// [`World::start_now`].
    pub fn with_spare(
        sc: &Scenario,
        seed: u64,
        faults: &[Fault],
        trace: Trace,
        spare: u32,
    ) -> Self {
        let joins: u32 = faults
            .iter()
            .map(|f| match f.kind {
                FaultKind::Join(n, _) => n,
                _ => 0,
            })
            .sum();
        let n_slots = (sc.nodes.count + joins + spare) as usize;
        let net_rng = ChaCha8Rng::seed_from_u64(mix(seed ^ 0x006e_6574_776f_726b));
        let net = Network::new(&sc.network, n_slots, net_rng);
        let lossy = net.lossy();
        let mut w = World {
            sc: Arc::new(sc.clone()),
            authenticity: Arc::default(),
            seed,
            now: Instant::ZERO,
            end: Instant::ZERO + sc.duration,
            queue: Queue::new(),
            procs: Processes::new(n_slots, sc.nodes.count),
            transport: Transport::default(),
            net,
            actions: Vec::new(),
            out: Vec::with_capacity(64),
            written: Vec::new(),
            obs: Observer::new(sc, n_slots, lossy),
            trace,
            rng: ChaCha8Rng::seed_from_u64(mix(seed)),
            chat_n: 0,
            clogs: Vec::new(),
            attacks: BTreeMap::new(),
            ghosts: BTreeMap::new(),
            hostile_rng: ChaCha8Rng::seed_from_u64(mix(seed ^ 0x686f_7374_696c_6521)),
            epochs: 0,
            rogue: BTreeMap::new(),
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
            seen: SeenLog::default(),
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
        let report = self.finish(progress);
        (report, self.trace)
    }

    /// [`World::run`] with the time series asked for by
    /// [`World::record_series`] (empty if it was not).
    pub fn run_with_series(
        mut self,
        progress: &mut dyn FnMut(Instant),
    ) -> (Report, Trace, crate::series::Series) {
        let report = self.finish(progress);
        let series = self.obs.series.take().map(|r| r.finish());
        (report, self.trace, series.unwrap_or_default())
    }

    /// Records the run's time series (see [`crate::series`]), marking the
    /// fault schedule `faults` on it.
    pub fn record_series(&mut self, faults: &[Fault]) {
        let mut marks: Vec<series::Mark> = faults
            .iter()
            .map(|f| series::Mark {
                t_ms: f.at.as_millis(),
                label: describe(f)
                    .split_once(": ")
                    .map_or_else(String::new, |x| x.1.into()),
            })
            .collect();
        if self.sc.liveness.as_millis() > 0 {
            marks.push(series::Mark {
                t_ms: self.end.as_millis() - self.sc.liveness.as_millis(),
                label: "liveness: heal, resume".into(),
            });
        }
        let title = format!("{} seed {}", self.sc.name, self.seed);
        let r = series::Recorder::new(title, self.end.as_millis(), marks);
        self.obs.series = Some(Box::new(r));
    }

    /// Samples the time series at each of its instants up to `until`.
    fn sample_series(&mut self, until: Instant) {
        let until = until.min(self.end).as_millis();
        while self
            .obs
            .series
            .as_ref()
            .is_some_and(|s| s.next_ms() <= until)
        {
            let views = self.obs.views();
            let live = self.procs.up.len() as u32;
            if let Some(s) = self.obs.series.as_mut() {
                s.sample(live, &views);
            }
        }
    }

    /// Runs to the end and returns the report.
    fn finish(&mut self, progress: &mut dyn FnMut(Instant)) -> Report {
        let end = self.end;
        self.advance(end, progress);
        self.now = self.end;
        self.sample_series(end);
        progress(self.now);
        self.sample_tables();
        self.sample_overlay();
        let procs = &self.procs;
        let holds =
            |slot: u32, id: &gossip_chat::MsgId| procs.up_node(slot).is_some_and(|n| n.holds(id));
        self.obs.finish(self.now, &holds);
        self.report()
    }

    /// Processes every event up to `until` (at most the end of the run).
    pub fn advance(&mut self, until: Instant, progress: &mut dyn FnMut(Instant)) {
        let until = until.min(self.end);
        while let Some((at, ev)) = self.queue.pop() {
            if at > until {
                // Not yet: put it back (it keeps its place among its
                // millisecond's events, being the first of them).
                self.queue.unpop(at, ev);
                self.queue.rewind(until);
                break;
            }
            if self
                .obs
                .series
                .as_ref()
                .is_some_and(|s| s.next_ms() <= at.as_millis())
            {
                self.sample_series(at);
            }
            self.now = at;
            self.events += 1;
            if self.events & 0xffff == 0 {
                progress(self.now);
                self.obs.max_queue = self.obs.max_queue.max(self.queue.len());
            }
            self.dispatch(ev);
        }
        self.now = self.now.max(until);
    }

    fn sample_every(&self) -> u64 {
        (self.procs.len() as u64 * SAMPLE_MS_PER_SLOT).clamp(1000, 30_000)
    }

    /// Samples every up node's table sizes (and, under attack, what the
    /// honest nodes still list).
    fn sample_tables(&mut self) {
        let attacked = !self.attacks.is_empty();
        for slot in 0..self.procs.len() {
            if let Some(n) = self.procs.up_node(slot as u32) {
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
                        .filter(|&p| !n.knows_alive(&crate::addr::id_of(p)))
                        .collect();
                    self.obs.roster_lost(slot as u32, &lost);
                    let wrong = self.unsigned_state(n);
                    self.obs.state_sample(slot as u32, &wrong);
                }
            }
        }
        self.obs.max_queue = self.obs.max_queue.max(self.queue.len());
    }

    /// The entries `n` holds of honest members that are up which the
    /// member did not sign: ahead of its own life and version, another
    /// address or name at its own, or gone in the life it runs.
    fn unsigned_state(&self, n: &gossip_chat::Node) -> Vec<String> {
        let slots = self.procs.len();
        let mut wrong = Vec::new();
        for m in n.members() {
            let Some(p) = crate::addr::slot_of_id(&m.node.id, slots) else {
                continue;
            };
            if self.obs.is_hostile(p) {
                continue;
            }
            let Some(own) = self.procs.up_node(p).map(|x| x.own_entry()) else {
                continue;
            };
            if let Some(w) = crate::checks::unsigned(&m, &own) {
                wrong.push(format!("n{p} at {w}"));
            }
        }
        wrong
    }

    /// Samples the honest live nodes' neighbour graph.
    fn sample_overlay(&mut self) {
        let procs = &self.procs;
        let slots = procs.len();
        let neighbours = |slot: u32| -> Vec<u32> {
            procs.up_node(slot).map_or_else(Vec::new, |n| {
                n.neighbours()
                    .filter_map(|a| crate::addr::slot_of_id(&a, slots))
                    .collect()
            })
        };
        self.obs.overlay(self.now, &neighbours);
    }

    /// The trace lines kept so far (see [`Trace::kept`]).
    pub fn trace_text(&self) -> &str {
        self.trace.text()
    }

    /// The virtual time reached.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The end of the run.
    pub fn end(&self) -> Instant {
        self.end
    }

    /// The node running in `slot` (up or paused), if any.
    pub fn node(&self, slot: u32) -> Option<&Node> {
        self.procs.slots.get(slot as usize)?.node.as_deref()
    }

    /// Number of node slots (initial nodes and joiners).
    pub fn slots(&self) -> usize {
        self.procs.len()
    }

    /// Keeps the next `cap` user events for [`World::seen`] (counting
    /// those past the cap in [`World::seen_dropped`]).
    pub fn keep_events(&mut self, cap: usize) {
        self.seen.cap = cap;
    }

    /// The user events kept so far.
    pub fn seen(&self) -> &[Seen] {
        &self.seen.events
    }

    /// User events not kept because the log was full.
    pub fn seen_dropped(&self) -> u64 {
        self.seen.dropped
    }

    /// Carries out `kind` now, as if scheduled at this instant.
    pub fn fault_now(&mut self, kind: FaultKind) {
        self.fault(kind);
    }

    /// Starts a node in the next free slot, joining through `via` (or
    /// alone); its slot, or `None` if no slot is left.
    pub fn start_now(&mut self, via: Option<u32>) -> Option<u32> {
        let slot = self.procs.next_slot;
        if slot as usize >= self.procs.len() {
            return None;
        }
        self.procs.next_slot += 1;
        self.start(slot, via.map(Via::Node), crate::checks::Start::Joiner);
        Some(slot)
    }

    /// Slots whose node is up, in order.
    pub fn up(&self) -> Vec<u32> {
        let mut up = self.procs.up.clone();
        up.sort_unstable();
        up
    }

    /// Feeds `input` to the node in `slot` now (if it is up).
    pub fn input_now(&mut self, slot: u32, input: Input) {
        if self.procs.slots.get(slot as usize).map(|s| s.state) == Some(State::Up) {
            self.handle(slot, input);
        }
    }

    /// The user of the node in `slot` sends `text` now (if it is up).
    pub fn send_now(&mut self, slot: u32, text: &str) {
        if self.procs.slots.get(slot as usize).map(|s| s.state) == Some(State::Up) {
            self.handle(
                slot,
                Input::Send {
                    text: text.to_string(),
                    wall_ms: self.wall_ms(),
                },
            );
        }
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Carries out one event of the queue.
    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Timer { slot, life } => {
                let s = &mut self.procs.slots[slot as usize];
                if s.life != life || s.state != State::Up || s.timer_at != self.now {
                    return;
                }
                if s.slowed() {
                    self.late_timeout(slot);
                    return;
                }
                s.timer_at = Instant::MAX;
                self.input(slot, Pending::Timeout);
            }
            Ev::Input { slot, life, input } => {
                let s = &self.procs.slots[slot as usize];
                match s.state {
                    State::Up | State::Paused if s.life == life => self.arrive(slot, input),
                    _ => self.drop_input(input),
                }
            }
            Ev::Late { slot, life } => self.late(slot, life),
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
                // Sampled to the end of the run: convergence must hold once
                // reached. Neither traced nor drawing randomness, so the
                // samples leave the run's path alone.
                self.obs.check_convergence(self.now, &self.net);
                self.sample_overlay();
                self.push(
                    self.now + gossip_chat::Duration::from_millis(CONVERGE_EVERY),
                    Ev::ConvergeSample,
                );
            }
            Ev::DeliveryCheck(m) => self.obs.delivery_deadline(self.now, m, &self.net),
            Ev::DownCheck(d) => self.obs.down_deadline(self.now, d, &self.net),
            Ev::ViewCheck(l) => self.obs.view_deadline(self.now, l, &self.net),
            Ev::Hostile { slot, epoch } => self.hostile_tick(slot, epoch),
        }
    }

    /// Feeds one input to the node in `slot` and carries out its outputs.
    fn handle(&mut self, slot: u32, input: Input) {
        let now = self.now;
        let mut out = std::mem::take(&mut self.out);
        let Some(node) = self.procs.slots[slot as usize].node.as_mut() else {
            self.out = out;
            return;
        };
        node.handle(now, input, &mut out);
        let key = node.key();
        self.written.clear();
        for o in out.drain(..) {
            self.output(slot, key, o);
        }
        self.out = out;
        self.reschedule(slot);
    }

    /// Sets the timer of the node in `slot` to its next deadline.
    fn reschedule(&mut self, slot: u32) {
        let s = &mut self.procs.slots[slot as usize];
        let Some(node) = &s.node else { return };
        if s.state != State::Up || s.timeout_queued {
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

    /// Carries out one output of the node in `slot`.
    fn output(&mut self, slot: u32, me: gossip_chat::NodeKey, o: Output) {
        match o {
            Output::Send { conn, msg } => self.send(slot, conn, msg),
            Output::Connect { addr } => self.connect(slot, addr),
            Output::Close { conn } => self.close(slot, conn),
            Output::Event(ev) => self.user_event(slot, me, ev),
        }
    }

    /// A seeded draw below `n` from the run's main generator.
    fn below(&mut self, n: usize) -> usize {
        crate::random::below(&mut self.rng, n)
    }
}
