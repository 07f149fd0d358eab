//! Processes: one slot per simulated node address, holding the running
//! [`Node`] (if any) and its life cycle: start, stop (crash or kill),
//! pause, resume, leave. Each start is a new incarnation and a new life
//! for the observer.

use super::{mix, transport::Transport, Ev, Pending, State, World};
use crate::addr::addr_of;
use crate::checks::{Gone, Start};
use crate::random::below;
use crate::scenario::Via;
use crate::trace::TraceKind;
use gossip_chat::{Input, Instant, Node};
use rand_chacha::ChaCha8Rng;

/// One node address and its current process.
pub(super) struct Slot {
    pub(super) node: Option<Box<Node>>,
    pub(super) state: State,
    /// The observer's life id of the current process.
    pub(super) life: u32,
    /// Incarnation of the next process started here.
    next_inc: u64,
    pub(super) timer_at: Instant,
    /// Inputs held while paused.
    pub(super) held: Vec<Pending>,
    /// While slow: the delay added to every input (zero: not slow).
    pub(super) slow_delay: gossip_chat::Duration,
    /// Counts slow faults on this slot, so that the end of an earlier one
    /// does not end a later one.
    pub(super) slow_epoch: u32,
    /// Inputs waiting to be handled late, in order (see `slow.rs`).
    pub(super) backlog: std::collections::VecDeque<Pending>,
    /// When the last input of the backlog is due.
    pub(super) backlog_last: Instant,
    /// A timeout waits in the backlog: the timer is not re-armed.
    pub(super) timeout_queued: bool,
    /// Connections this process has an end of (pruned now and then).
    pub(super) conns: Vec<u32>,
    prune_at: usize,
    up_pos: u32,
    /// When the current process started.
    started: Instant,
}

/// Every slot, and the list of those up (for random picks).
pub(super) struct Processes {
    pub(super) slots: Vec<Slot>,
    /// Slots up, in no particular order (sort before a seeded pick).
    pub(super) up: Vec<u32>,
    /// The next slot a joiner takes.
    pub(super) next_slot: u32,
}

impl Processes {
    /// `n` empty slots; joiners take slots from `first_joiner` on.
    pub(super) fn new(n: usize, first_joiner: u32) -> Self {
        let slots = (0..n)
            .map(|_| Slot {
                node: None,
                state: State::Absent,
                life: u32::MAX,
                next_inc: 1,
                timer_at: Instant::MAX,
                held: Vec::new(),
                slow_delay: gossip_chat::Duration::ZERO,
                slow_epoch: 0,
                backlog: std::collections::VecDeque::new(),
                backlog_last: Instant::ZERO,
                timeout_queued: false,
                conns: Vec::new(),
                prune_at: 16,
                up_pos: u32::MAX,
                started: Instant::ZERO,
            })
            .collect();
        Processes {
            slots,
            up: Vec::new(),
            next_slot: first_joiner,
        }
    }

    /// Number of slots.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The state of `slot`.
    pub(super) fn state(&self, slot: u32) -> State {
        self.slots[slot as usize].state
    }

    /// The node in `slot` if it is up.
    pub(super) fn up_node(&self, slot: u32) -> Option<&Node> {
        let s = &self.slots[slot as usize];
        s.node.as_deref().filter(|_| s.state == State::Up)
    }

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

    /// Records that `slot` has an end of connection `c`; now and then
    /// forgets the closed ones.
    pub(super) fn add_conn(&mut self, slot: u32, c: u32, transport: &Transport) {
        let s = &mut self.slots[slot as usize];
        s.conns.push(c);
        if s.conns.len() >= s.prune_at {
            transport.retain_open(slot, &mut s.conns);
            s.prune_at = (s.conns.len() * 2).max(16);
        }
    }

    fn random_up(&self, rng: &mut ChaCha8Rng, except: u32) -> Option<u32> {
        let cands = self.up.len() - usize::from(self.slots[except as usize].up_pos != u32::MAX);
        if cands == 0 {
            return None;
        }
        loop {
            let i = below(rng, self.up.len());
            let s = self.up[i];
            if s != except {
                return Some(s);
            }
        }
    }

    /// A random member to join through: a node up since `settled` or
    /// before (so a joiner does not join through another joiner of the
    /// same instant), or any up node if there is none.
    fn random_member(&self, rng: &mut ChaCha8Rng, except: u32, settled: u64) -> Option<u32> {
        let mut pool: Vec<u32> = self
            .up
            .iter()
            .copied()
            .filter(|&s| s != except && self.slots[s as usize].started.as_millis() <= settled)
            .collect();
        if pool.is_empty() {
            return self.random_up(rng, except);
        }
        pool.sort_unstable();
        let i = below(rng, pool.len());
        Some(pool[i])
    }
}

impl World {
    /// Starts a new process (a new incarnation) in `slot`, joining `via`.
    pub(super) fn start(&mut self, slot: u32, via: Option<Via>, kind: Start) {
        let now = self.now;
        let s = &mut self.procs.slots[slot as usize];
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
        // Room for every other slot's member up front: the tables of
        // thousands of nodes do not grow (and copy) step by step.
        let mut node = node;
        node.reserve_members(self.procs.slots.len() - 1);
        node.set_authenticity(self.authenticity.clone());
        let s = &mut self.procs.slots[slot as usize];
        s.node = Some(Box::new(node));
        s.started = now;
        s.state = State::Up;
        s.timer_at = Instant::MAX;
        s.held.clear();
        s.end_slow();
        s.conns.clear();
        s.prune_at = 16;
        let life = self.obs.start(now, slot, kind);
        self.procs.slots[slot as usize].life = life;
        self.procs.set_up(slot, true);
        let via = match via {
            None => None,
            Some(Via::Node(v)) => Some(v),
            // Initial nodes join through any node started before them;
            // later joiners through a settled member.
            Some(Via::Random) if kind == Start::Initial => {
                self.procs.random_up(&mut self.rng, slot)
            }
            Some(Via::Random) => {
                let settled = now
                    .as_millis()
                    .saturating_sub(self.sc.checks.join_grace.as_millis());
                self.procs.random_member(&mut self.rng, slot, settled)
            }
        };
        self.trace.event(
            now,
            TraceKind::Start,
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
    pub(super) fn stop(&mut self, slot: u32, reset: bool) {
        let now = self.now;
        let s = &mut self.procs.slots[slot as usize];
        if !matches!(s.state, State::Up | State::Paused) {
            return;
        }
        let gone = if reset { Gone::Kill } else { Gone::Crash };
        if let Some(n) = &s.node {
            s.next_inc = s.next_inc.max(n.key().incarnation + 1);
        }
        self.count_stats(slot);
        let s = &mut self.procs.slots[slot as usize];
        s.node = None;
        s.state = if reset { State::Killed } else { State::Crashed };
        s.timer_at = Instant::MAX;
        let mut held = std::mem::take(&mut s.held);
        held.extend(s.backlog.drain(..));
        s.end_slow();
        let conns = std::mem::take(&mut s.conns);
        for p in held {
            self.drop_input(p);
        }
        for &c in &conns {
            for e in 0..2 {
                let end = self.transport.end_mut(c as usize, e);
                if end.slot != slot || !end.open {
                    continue;
                }
                end.open = false;
                if reset {
                    self.hang_up(slot, c as usize, e);
                }
            }
        }
        self.procs.set_up(slot, false);
        if let Some(d) = self.obs.gone(now, slot, gone) {
            self.push(now + self.sc.checks.detect_within, Ev::DownCheck(d));
        }
    }

    pub(super) fn pause(&mut self, slot: u32) {
        let now = self.now;
        if self.procs.slots[slot as usize].state != State::Up {
            return;
        }
        let s = &mut self.procs.slots[slot as usize];
        s.state = State::Paused;
        s.timer_at = Instant::MAX;
        self.procs.set_up(slot, false);
        if let Some(d) = self.obs.gone(now, slot, Gone::Pause) {
            self.push(now + self.sc.checks.detect_within, Ev::DownCheck(d));
        }
    }

    pub(super) fn resume(&mut self, slot: u32) {
        if self.procs.slots[slot as usize].state != State::Paused {
            return;
        }
        self.procs.slots[slot as usize].state = State::Up;
        self.procs.set_up(slot, true);
        self.obs.resume(slot, self.now);
        let held = std::mem::take(&mut self.procs.slots[slot as usize].held);
        for p in held {
            if self.procs.slots[slot as usize].state != State::Up {
                break;
            }
            self.arrive(slot, p);
        }
        self.reschedule(slot);
    }

    pub(super) fn leave(&mut self, slot: u32) {
        let now = self.now;
        if self.procs.slots[slot as usize].state != State::Up {
            return;
        }
        self.handle(slot, Input::Leave);
        self.count_stats(slot);
        let s = &mut self.procs.slots[slot as usize];
        if let Some(n) = &s.node {
            s.next_inc = s.next_inc.max(n.key().incarnation + 1);
        }
        s.node = None;
        s.state = State::Left;
        s.timer_at = Instant::MAX;
        let backlog: Vec<Pending> = s.backlog.drain(..).collect();
        s.end_slow();
        for p in backlog {
            self.drop_input(p);
        }
        let s = &mut self.procs.slots[slot as usize];
        // The node closed its connections; anything still open is closed
        // with a reset.
        let conns = std::mem::take(&mut s.conns);
        for &c in &conns {
            for e in 0..2 {
                let end = self.transport.end_mut(c as usize, e);
                if end.slot == slot && end.open {
                    end.open = false;
                }
            }
        }
        self.procs.set_up(slot, false);
        if let Some(d) = self.obs.gone(now, slot, Gone::Leave) {
            self.push(now + self.sc.checks.detect_within, Ev::DownCheck(d));
        }
    }
}
