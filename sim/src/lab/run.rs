//! The lab's run loop: a schedule of actions on the lab's clock (starts,
//! faults, workload ticks, check deadlines, samples), interleaved with the
//! lines the `chat` processes print.
//!
//! The schedule mirrors the simulator's world (`world/mod.rs`,
//! `world/process.rs`, `world/workload.rs`) action for action, with real
//! processes where the world has a [`gossip_chat::Node`]: starting one is
//! spawning `chat`, crashing it is SIGSTOP with its links cut, killing it
//! SIGKILL, pausing SIGSTOP/SIGCONT, leaving `/quit`. The observer and its
//! checks are the simulator's own.

use super::clock::Clock;
use super::fabric::Fabric;
use super::procs::{Line, Procs};
use super::LabError;
use crate::checks::{Observer, Start};
use crate::net::{Bits, Network};
use crate::random::below;
use crate::scenario::{FaultKind, InitialJoin, Scenario, Senders, Via};
use gossip_chat::{Duration, Instant};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};

/// Where a slot's process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Absent,
    Up,
    Paused,
    Crashed,
    Killed,
    Left,
}

/// One node address and its current process.
pub(super) struct Slot {
    pub(super) state: State,
    /// The current process (index in [`Procs`]).
    pub(super) proc: Option<usize>,
    /// The observer's life id of the current process.
    pub(super) life: u32,
    /// Wall-clock milliseconds just before the process was spawned: its
    /// incarnations are at least this.
    pub(super) epoch: u64,
    pub(super) started: Instant,
    /// Listening (its `ready` line arrived).
    pub(super) ready: bool,
    /// Its neighbours by its last `/peers` answer, and whether that answer
    /// came after the last question.
    pub(super) neighbours: Vec<u32>,
    pub(super) answered: bool,
}

/// Things that happen at a set time.
#[derive(Clone, Debug)]
pub(super) enum Action {
    Start {
        slot: u32,
        via: Option<Via>,
        kind: Start,
        tries: u32,
    },
    DiscoveryBegins,
    Fault(FaultKind),
    Resume(u32),
    Heal(u32),
    Clog(u32, usize),
    Unclog(usize),
    Liveness,
    Send(usize),
    ChatTick,
    Sample,
    ConvergeSample,
    Overlay,
    DeliveryCheck(u32),
    DownCheck(u32),
    ViewCheck(u32),
}

/// Interval of table samples (`/stats` to every up node).
const SAMPLE_EVERY: Duration = Duration::from_millis(2000);
/// Interval of convergence samples in the liveness phase.
const CONVERGE_EVERY: Duration = Duration::from_millis(100);
/// Interval of overlay samples (`/peers`) in the liveness phase.
const OVERLAY_EVERY: Duration = Duration::from_millis(1000);
/// How long the end of the run waits for the last `/peers` and `/stats`
/// answers.
const LAST_ANSWERS: std::time::Duration = std::time::Duration::from_secs(3);

/// One real run.
pub(super) struct Lab<'a> {
    pub(super) sc: &'a Scenario,
    seed: u64,
    pub(super) clock: Clock,
    pub(super) fabric: &'a Fabric,
    pub(super) procs: Procs,
    lines: Receiver<Line>,
    pub(super) chat: String,
    stop: &'a AtomicBool,
    pub(super) now: Instant,
    /// When the last scheduled action was carried out: no line is dated
    /// before it (the checks have been told of the action already).
    pub(super) acted: Instant,
    pub(super) end: Instant,
    pub(super) net: Network,
    pub(super) crashed: Bits,
    filter_dirty: bool,
    /// The spike latency each slot's links have now (netem).
    extra: Vec<Duration>,
    pub(super) obs: Observer,
    pub(super) slots: Vec<Slot>,
    /// Which slot each process ran in.
    pub(super) proc_slot: Vec<u32>,
    pub(super) next_slot: u32,
    queue: BTreeMap<(Instant, u64), Action>,
    seq: u64,
    pub(super) rng: ChaCha8Rng,
    chat_n: u64,
    pub(super) clogs: Vec<u32>,
    /// What the lab did, with when: one line per fault carried out.
    pub(super) log: Vec<String>,
    /// Lines read from the processes.
    pub(super) lines_read: u64,
    /// Deliveries waiting for their sender's line.
    pub(super) held: super::held::Holds,
    /// Told when every initial node listens.
    pub(super) say: Option<super::Say>,
    ready_initial: u32,
}

impl<'a> Lab<'a> {
    /// A run of `sc` under `seed` with the fault schedule `faults`.
    pub(super) fn new(
        sc: &'a Scenario,
        seed: u64,
        faults: &[crate::scenario::Fault],
        fabric: &'a Fabric,
        slots: usize,
        chat: String,
        stop: &'a AtomicBool,
    ) -> Self {
        let clock = Clock::start();
        let (procs, lines) = Procs::new(clock);
        let net = Network::new(
            &sc.network,
            slots,
            ChaCha8Rng::seed_from_u64(seed ^ 0x006c_6162),
        );
        let lossy = net.lossy();
        let mut lab = Lab {
            sc,
            seed,
            clock,
            fabric,
            procs,
            lines,
            chat,
            stop,
            now: Instant::ZERO,
            acted: Instant::ZERO,
            end: Instant::ZERO + sc.duration,
            net,
            crashed: Bits::new(slots),
            filter_dirty: true,
            extra: vec![Duration::ZERO; slots],
            obs: Observer::new(sc, slots, lossy),
            slots: (0..slots)
                .map(|_| Slot {
                    state: State::Absent,
                    proc: None,
                    life: u32::MAX,
                    epoch: 0,
                    started: Instant::ZERO,
                    ready: false,
                    neighbours: Vec::new(),
                    answered: false,
                })
                .collect(),
            proc_slot: Vec::new(),
            next_slot: sc.nodes.count,
            queue: BTreeMap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            chat_n: 0,
            clogs: Vec::new(),
            log: Vec::new(),
            lines_read: 0,
            held: super::held::Holds::default(),
            say: None,
            ready_initial: 0,
        };
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
            let kind = Start::Initial;
            lab.at(
                at,
                Action::Start {
                    slot: i,
                    via,
                    kind,
                    tries: 0,
                },
            );
        }
        lab.at(last, Action::DiscoveryBegins);
        for f in faults {
            lab.at(Instant::ZERO + f.at, Action::Fault(f.kind.clone()));
        }
        for (i, s) in sc.workload.sends.iter().enumerate() {
            lab.at(Instant::ZERO + s.at, Action::Send(i));
        }
        if sc.workload.rate > 0.0 {
            lab.at(Instant::ZERO + sc.workload.start, Action::ChatTick);
        }
        if sc.liveness.as_millis() > 0 {
            let at = Instant::from_millis(lab.end.as_millis() - sc.liveness.as_millis());
            lab.at(at, Action::Liveness);
        }
        lab.at(Instant::ZERO + SAMPLE_EVERY, Action::Sample);
        lab
    }

    /// The node in `slot` listens.
    pub(super) fn ready(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        if s.ready {
            return;
        }
        s.ready = true;
        if slot < self.sc.nodes.count
            && self.obs.facts().lives[s.life as usize].start_kind == Start::Initial
        {
            self.ready_initial += 1;
            if self.ready_initial == self.sc.nodes.count {
                let t = self.clock.now();
                if let Some(say) = &mut self.say {
                    say(&format!("{} nodes ready at {t}", self.ready_initial));
                }
            }
        }
    }

    pub(super) fn seed(&self) -> u64 {
        self.seed
    }

    pub(super) fn at(&mut self, at: Instant, a: Action) {
        self.seq += 1;
        self.queue.insert((at, self.seq), a);
    }

    /// A line in the log of what the lab did.
    pub(super) fn note(&mut self, text: String) {
        let line = format!("at {}: {text}", self.now);
        self.log.push(line);
    }

    /// Runs to the end of the scenario, then asks every node for its last
    /// tables and neighbours.
    pub(super) fn run(&mut self) -> Result<(), LabError> {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Err(LabError::Interrupted);
            }
            let due = self.queue.keys().next().map(|k| k.0).unwrap_or(self.end);
            let now = self.clock.now();
            if due <= now && due <= self.end {
                self.drain();
                let (_, a) = self.queue.pop_first().expect("a due action");
                self.now = self.now.max(due);
                self.action(a)?;
                self.acted = self.now;
                self.apply_filter()?;
                continue;
            }
            if now >= self.end {
                break;
            }
            let wait = due
                .min(self.end)
                .as_millis()
                .saturating_sub(now.as_millis());
            let wait = std::time::Duration::from_millis(wait.clamp(1, 50));
            match self.lines.recv_timeout(wait) {
                Ok(l) => self.line(l),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => unreachable!("the lab holds a sender"),
            }
        }
        self.drain();
        self.now = self.now.max(self.end);
        self.last_answers()
    }

    /// Takes in every line already read.
    fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.line(l);
        }
        self.release_stale();
    }

    fn line(&mut self, l: Line) {
        let Some(&slot) = self.proc_slot.get(l.proc) else {
            return;
        };
        let s = &self.slots[slot as usize];
        if s.proc != Some(l.proc) {
            return;
        }
        self.now = self.now.max(l.at);
        if let Some(text) = l.text {
            self.lines_read += 1;
            self.event(slot, &text, l.at);
        }
    }

    /// Asks every up node for its tables and neighbours and waits (with a
    /// deadline) for the answers.
    fn last_answers(&mut self) -> Result<(), LabError> {
        let up = self.up();
        for &s in &up {
            self.ask(s, true);
        }
        let deadline = self.clock.elapsed() + LAST_ANSWERS;
        while up
            .iter()
            .any(|&s| self.is_up(s) && !self.slots[s as usize].answered)
        {
            if self.stop.load(Ordering::SeqCst) {
                return Err(LabError::Interrupted);
            }
            let left = deadline.saturating_sub(self.clock.elapsed());
            if left.is_zero() {
                break;
            }
            if let Ok(l) = self
                .lines
                .recv_timeout(left.min(std::time::Duration::from_millis(50)))
            {
                self.line(l);
            }
        }
        let now = self.now;
        self.overlay_sample(now);
        Ok(())
    }

    /// Types `/peers` (and `/stats` with `stats`) into the node in `slot`.
    fn ask(&mut self, slot: u32, stats: bool) {
        let Some(p) = self.slots[slot as usize].proc else {
            return;
        };
        self.slots[slot as usize].answered = false;
        if stats {
            self.procs.type_line(p, "/stats");
        }
        self.procs.type_line(p, "/peers");
    }

    fn overlay_sample(&mut self, now: Instant) {
        let slots = &self.slots;
        let neighbours = |s: u32| slots[s as usize].neighbours.clone();
        self.obs.overlay(now, &neighbours);
    }

    pub(super) fn is_up(&self, slot: u32) -> bool {
        self.slots[slot as usize].state == State::Up
    }

    /// Slots whose node is up, in order.
    pub(super) fn up(&self) -> Vec<u32> {
        (0..self.slots.len() as u32)
            .filter(|&s| self.is_up(s))
            .collect()
    }

    /// Rewrites the bridge's filter if the network changed.
    pub(super) fn apply_filter(&mut self) -> Result<(), LabError> {
        if !self.filter_dirty {
            return Ok(());
        }
        self.filter_dirty = false;
        let n = self.slots.len();
        let (net, spec, crashed) = (&self.net, &self.sc.network, &self.crashed);
        let script = super::filter::script(n, |a, b| {
            super::filter::drop_chance(net, spec, crashed, a, b)
        });
        self.fabric.filter(&script).map_err(LabError::Fabric)?;
        self.apply_delays()
    }

    /// Gives each slot's links the extra latency of the spikes in force
    /// on it (netem; only where it changed).
    fn apply_delays(&mut self) -> Result<(), LabError> {
        if !self.fabric.netem().present() {
            return Ok(());
        }
        for slot in 0..self.slots.len() {
            let extra = self
                .net
                .bursts
                .iter()
                .filter(|b| b.end.is_none() && b.nodes.get(slot))
                .fold(Duration::ZERO, |sum, b| sum + b.extra);
            if extra == self.extra[slot] {
                continue;
            }
            self.fabric
                .delay_out(slot, self.sc.network.latency, extra)
                .and_then(|()| self.fabric.delay_in(slot, extra))
                .map_err(LabError::Fabric)?;
            self.extra[slot] = extra;
        }
        Ok(())
    }

    /// The network changed: rewrite the filter before going on.
    pub(super) fn network_changed(&mut self) {
        self.filter_dirty = true;
    }

    /// Carries out one scheduled action.
    fn action(&mut self, a: Action) -> Result<(), LabError> {
        let now = self.now;
        let checks = &self.sc.checks;
        match a {
            Action::Start {
                slot,
                via,
                kind,
                tries,
            } => self.start(slot, via, kind, tries)?,
            Action::DiscoveryBegins => {
                self.obs.discovery_begins(now);
                let within = checks.discovery_within;
                for slot in 0..self.sc.nodes.count {
                    if let Some(l) = self.obs.life_of(slot) {
                        self.at(now + within, Action::ViewCheck(l));
                    }
                }
            }
            Action::Fault(kind) => self.fault(kind)?,
            Action::Resume(slot) => {
                self.note(format!("resume n{slot} (SIGCONT)"));
                self.resume(slot);
            }
            Action::Heal(id) => {
                self.note(format!("heal #{id}"));
                self.net.heal(Some(id), now);
                self.network_changed();
            }
            Action::Clog(slot, token) => {
                let groups: Vec<u16> = (0..self.slots.len())
                    .map(|s| if s as u32 == slot { 2 } else { 1 })
                    .collect();
                let id = self.net.cut(groups, false, now);
                self.clogs[token] = id;
                self.note(format!("clog n{slot} (#{id})"));
                self.network_changed();
            }
            Action::Unclog(token) => {
                let id = self.clogs[token];
                self.note(format!("unclog #{id}"));
                self.net.heal(Some(id), now);
                self.network_changed();
            }
            Action::Liveness => {
                self.note("liveness phase: heal everything, resume every paused node".into());
                self.net.heal(None, now);
                self.network_changed();
                // The phase begins when the packets flow again: rewriting
                // the filter takes a few tens of milliseconds.
                self.apply_filter()?;
                self.now = self.now.max(self.clock.now());
                let now = self.now;
                for slot in 0..self.slots.len() as u32 {
                    self.resume(slot);
                }
                self.obs.liveness_begins(now);
                self.at(now, Action::ConvergeSample);
                self.at(now, Action::Overlay);
            }
            Action::Send(i) => {
                let s = self.sc.workload.sends[i].clone();
                if self.is_up(s.from) {
                    self.type_chat(s.from, &s.text);
                }
            }
            Action::ChatTick => self.chat_tick(),
            Action::Sample => {
                for s in self.up() {
                    if let Some(p) = self.slots[s as usize].proc {
                        self.procs.type_line(p, "/stats");
                    }
                }
                self.at(now + SAMPLE_EVERY, Action::Sample);
            }
            Action::ConvergeSample => {
                self.obs.check_convergence(now, &self.net);
                self.at(now + CONVERGE_EVERY, Action::ConvergeSample);
            }
            Action::Overlay => {
                self.overlay_sample(now);
                for s in self.up() {
                    self.ask(s, false);
                }
                self.at(now + OVERLAY_EVERY, Action::Overlay);
            }
            Action::DeliveryCheck(m) => self.obs.delivery_deadline(now, m, &self.net),
            Action::DownCheck(d) => self.obs.down_deadline(now, d, &self.net),
            Action::ViewCheck(l) => self.obs.view_deadline(now, l, &self.net),
        }
        Ok(())
    }

    /// Types a chat line into the node in `slot`.
    fn type_chat(&mut self, slot: u32, text: &str) {
        if let Some(p) = self.slots[slot as usize].proc {
            // A line starting with '/' is a command: `//` sends it as text.
            let line = if text.starts_with('/') {
                format!("/{text}")
            } else {
                text.to_string()
            };
            self.procs.type_line(p, &line);
        }
    }

    /// One chat from a random up sender; schedules the next.
    fn chat_tick(&mut self) {
        let now = self.now;
        let w = &self.sc.workload;
        if now >= Instant::ZERO + w.stop {
            return;
        }
        self.chat_n += 1;
        let next_ms = w.start.as_millis() + (self.chat_n as f64 * 1000.0 / w.rate).round() as u64;
        let next = Instant::from_millis(next_ms.max(now.as_millis() + 1));
        let pool: Vec<u32> = match &w.senders {
            Senders::All => self.up(),
            Senders::Nodes(list) => list.iter().copied().filter(|&s| self.is_up(s)).collect(),
        };
        if !pool.is_empty() {
            let s = pool[below(&mut self.rng, pool.len())];
            let mut text = format!("m{} from n{s} ", self.chat_n);
            while text.len() < self.sc.workload.text_len {
                text.push('.');
            }
            text.truncate(self.sc.workload.text_len);
            self.type_chat(s, &text);
        }
        self.at(next, Action::ChatTick);
    }
}
