//! Slow nodes (Lifeguard's anomaly, a starved CPU): while a node is slow,
//! every input it gets (a message, a connection event, its own timeout)
//! waits in a backlog and is handled a fixed delay after it arrived, in
//! arrival order, at the virtual time it is finally handled. When the
//! slowness ends, the backlog drains: an input that arrives behind it waits
//! for the inputs before it, never overtaking them. The user's own commands
//! (send, leave) are not delayed.

use super::process::Slot;
use super::{Action, Ev, Pending, State, World};
use crate::random::below;
use crate::scenario::Slow;
use gossip_chat::{Duration, Instant};

impl Slot {
    /// Whether inputs go through the backlog: the node is slow, or still
    /// has late inputs to handle.
    pub(super) fn slowed(&self) -> bool {
        self.slow_delay > Duration::ZERO || !self.backlog.is_empty()
    }

    /// Forgets the slowness with the process (a stop or a new start); the
    /// caller has taken the backlog.
    pub(super) fn end_slow(&mut self) {
        self.slow_delay = Duration::ZERO;
        self.slow_epoch += 1;
        self.backlog.clear();
        self.backlog_last = Instant::ZERO;
        self.timeout_queued = false;
    }
}

impl World {
    /// Carries out a `slow` fault: each target draws its delay.
    pub(super) fn slow(&mut self, f: &Slow) {
        let now = self.now;
        for s in self.targets(&f.target) {
            let (lo, hi) = (f.delay.0.as_millis(), f.delay.1.as_millis());
            let delay =
                Duration::from_millis(lo + below(&mut self.rng, (hi - lo + 1) as usize) as u64);
            let slot = &mut self.procs.slots[s as usize];
            if !matches!(slot.state, State::Up | State::Paused) {
                continue;
            }
            slot.slow_delay = delay;
            slot.slow_epoch += 1;
            let epoch = slot.slow_epoch;
            self.fault_note(format!("slow n{s} by {delay} for {}", f.duration));
            // Excused from removals until its backlog has drained.
            let until = now + f.duration + delay;
            self.obs.slowed(s, now, until);
            self.at_action(now + f.duration, Action::SlowEnd(s, epoch));
        }
    }

    /// The slowness of `slot` ends (if `epoch` is still its latest); the
    /// backlog drains on its own.
    pub(super) fn slow_end(&mut self, slot: u32, epoch: u32) {
        let s = &mut self.procs.slots[slot as usize];
        if s.slow_epoch != epoch || s.slow_delay == Duration::ZERO {
            return;
        }
        s.slow_delay = Duration::ZERO;
        self.fault_note(format!("slow n{slot} ends"));
    }

    /// Every slow node goes back to speed (the liveness phase).
    pub(super) fn end_all_slowness(&mut self) {
        for slot in 0..self.procs.len() as u32 {
            let epoch = self.procs.slots[slot as usize].slow_epoch;
            self.slow_end(slot, epoch);
        }
    }

    /// An input reaches the node in `slot` (up or paused): handled now,
    /// held while paused, or queued behind the backlog while slow.
    pub(super) fn arrive(&mut self, slot: u32, p: Pending) {
        let now = self.now;
        let s = &mut self.procs.slots[slot as usize];
        if s.slowed() {
            let due = (now + s.slow_delay).max(s.backlog_last);
            s.backlog_last = due;
            s.backlog.push_back(p);
            let life = s.life;
            self.push(due, Ev::Late { slot, life });
            return;
        }
        match s.state {
            State::Up => self.input(slot, p),
            State::Paused => {
                s.held.push(p);
                self.obs.max_held = self.obs.max_held.max(s.held.len());
            }
            _ => self.drop_input(p),
        }
    }

    /// The node's timer fired while it is slow: the timeout joins the
    /// backlog, and the timer stays unarmed until it is handled.
    pub(super) fn late_timeout(&mut self, slot: u32) {
        let s = &mut self.procs.slots[slot as usize];
        s.timer_at = Instant::MAX;
        s.timeout_queued = true;
        self.arrive(slot, Pending::Timeout);
    }

    /// The first input of `slot`'s backlog is due: handle it (or hold it if
    /// the node is paused).
    pub(super) fn late(&mut self, slot: u32, life: u32) {
        let s = &mut self.procs.slots[slot as usize];
        if s.life != life {
            return;
        }
        let Some(p) = s.backlog.pop_front() else {
            return;
        };
        match (s.state, p) {
            (State::Up, p) => self.input(slot, p),
            // A paused node's timer is re-armed when it resumes.
            (State::Paused, Pending::Timeout) => s.timeout_queued = false,
            (State::Paused, p) => {
                s.held.push(p);
                self.obs.max_held = self.obs.max_held.max(s.held.len());
            }
            (_, p) => self.drop_input(p),
        }
    }
}
