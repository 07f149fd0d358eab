//! Process life cycles: a node starts as a `chat` process in its
//! namespace (a new incarnation each time), crashes (SIGSTOP, links cut),
//! is killed (SIGKILL), pauses and resumes (SIGSTOP, SIGCONT) or leaves
//! (`/quit`); the observer is told as the simulator's world tells it
//! (`world/process.rs`).

use super::clock::Clock;
use super::refuse::chat_config;
use super::run::{Action, Lab, State};
use super::LabError;
use crate::addr::addr_of;
use crate::checks::{Gone, Start};
use crate::random::below;
use crate::scenario::Via;
use gossip_chat::Duration;
use nix::sys::signal::Signal;

impl Lab<'_> {
    /// The `chat` arguments for the node in `slot` joining through `via`.
    fn args(&self, slot: u32, via: Option<u32>) -> Vec<String> {
        let c = chat_config(&self.sc.config);
        let mut a: Vec<String> = vec![
            "--listen".into(),
            addr_of(slot).to_string(),
            "--name".into(),
            format!("n{slot}"),
            "--json".into(),
            "--data-dir".into(),
            super::procs::data_root()
                .join(format!("n{slot}"))
                .to_string_lossy()
                .into_owned(),
            format!("--ping-ms={}", c.ping_interval.as_millis()),
            format!("--missed-pings={}", c.missed_pings),
            format!("--gossip-ms={}", c.gossip_interval.as_millis()),
            format!("--sync-ms={}", c.sync_interval.as_millis()),
            format!("--reconnect-ms={}", c.reconnect_interval.as_millis()),
            format!("--gap-timeout-ms={}", c.gap_timeout.as_millis()),
            format!("--max-connections={}", c.max_connections),
            format!(
                "--connect-timeout-ms={}",
                self.sc.network.connect_timeout.as_millis()
            ),
        ];
        if !c.prune_duplicates {
            a.push("--no-prune".into());
        }
        if let Some(v) = via {
            a.push("--join".into());
            a.push(addr_of(v).to_string());
        }
        a
    }

    /// Starts a new process (a new incarnation) in `slot`, joining `via`.
    pub(super) fn start(
        &mut self,
        slot: u32,
        via: Option<Via>,
        kind: Start,
        tries: u32,
    ) -> Result<(), LabError> {
        let now = self.now;
        if matches!(self.slots[slot as usize].state, State::Up | State::Paused) {
            return Ok(());
        }
        let via = match via {
            None => None,
            Some(Via::Node(v)) => Some(v),
            Some(Via::Random) => {
                let settled = now
                    .as_millis()
                    .saturating_sub(self.sc.checks.join_grace.as_millis());
                let mut pool: Vec<u32> = self
                    .up()
                    .into_iter()
                    .filter(|&s| s != slot)
                    .filter(|&s| {
                        kind == Start::Initial
                            || self.slots[s as usize].started.as_millis() <= settled
                    })
                    .collect();
                if pool.is_empty() {
                    pool = self.up().into_iter().filter(|&s| s != slot).collect();
                }
                (!pool.is_empty()).then(|| pool[below(&mut self.rng, pool.len())])
            }
        };
        // Join through a node that listens already: a process takes a few
        // milliseconds to come up (at most 5 s of waiting).
        if let Some(v) = via {
            if self.is_up(v) && !self.slots[v as usize].ready && tries < 250 {
                let retry = Action::Start {
                    slot,
                    via: Some(Via::Node(v)),
                    kind,
                    tries: tries + 1,
                };
                self.at(now + Duration::from_millis(20), retry);
                return Ok(());
            }
        }
        // A crashed process is still there, stopped: it goes for good.
        if let Some(p) = self.slots[slot as usize].proc.take() {
            self.procs.kill(p);
        }
        if self.crashed.set(slot as usize, false) {
            self.network_changed();
        }
        self.apply_filter()?;
        let args = self.args(slot, via);
        let ns = self.fabric.ns(slot as usize);
        let epoch = Clock::epoch_ms();
        let p = self
            .procs
            .spawn(&ns, &self.chat, &args)
            .map_err(LabError::Process)?;
        self.proc_slot.push(slot);
        let life = self.obs.start(now, slot, kind);
        let s = &mut self.slots[slot as usize];
        s.state = State::Up;
        s.proc = Some(p);
        s.life = life;
        s.epoch = epoch;
        s.started = now;
        s.ready = false;
        s.neighbours.clear();
        s.answered = false;
        if kind == Start::Joiner {
            self.at(now + self.sc.checks.join_within, Action::ViewCheck(life));
        }
        Ok(())
    }

    /// Ends the process in `slot`: silently (crash: stopped, links cut) or
    /// with resets (kill).
    pub(super) fn stop(&mut self, slot: u32, reset: bool) {
        let now = self.now;
        let s = &mut self.slots[slot as usize];
        if !matches!(s.state, State::Up | State::Paused) {
            return;
        }
        let Some(p) = s.proc else { return };
        if reset {
            s.state = State::Killed;
            s.proc = None;
            self.procs.kill(p);
        } else {
            s.state = State::Crashed;
            self.procs.signal(p, Signal::SIGSTOP);
            self.crashed.set(slot as usize, true);
            self.network_changed();
        }
        let gone = if reset { Gone::Kill } else { Gone::Crash };
        if let Some(d) = self.obs.gone(now, slot, gone) {
            self.at(now + self.sc.checks.detect_within, Action::DownCheck(d));
        }
    }

    pub(super) fn pause(&mut self, slot: u32) {
        let now = self.now;
        if !self.is_up(slot) {
            return;
        }
        let s = &mut self.slots[slot as usize];
        s.state = State::Paused;
        if let Some(p) = s.proc {
            self.procs.signal(p, Signal::SIGSTOP);
        }
        if let Some(d) = self.obs.gone(now, slot, Gone::Pause) {
            self.at(now + self.sc.checks.detect_within, Action::DownCheck(d));
        }
    }

    pub(super) fn resume(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        if s.state != State::Paused {
            return;
        }
        s.state = State::Up;
        if let Some(p) = s.proc {
            self.procs.signal(p, Signal::SIGCONT);
        }
        self.obs.resume(slot, self.now);
    }

    pub(super) fn leave(&mut self, slot: u32) {
        let now = self.now;
        if !self.is_up(slot) {
            return;
        }
        let s = &mut self.slots[slot as usize];
        s.state = State::Left;
        if let Some(p) = s.proc.take() {
            self.procs.type_line(p, "/quit");
        }
        if let Some(d) = self.obs.gone(now, slot, Gone::Leave) {
            self.at(now + self.sc.checks.detect_within, Action::DownCheck(d));
        }
    }
}
