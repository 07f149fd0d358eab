//! The chat workload: chats at the scenario's rate from random senders,
//! and the scenario's timed sends.

use super::State;
use super::{Ev, World};
use crate::scenario::Senders;
use gossip_chat::{Input, Instant};

/// The wall clock of every simulated node at virtual time zero, in
/// milliseconds since the Unix epoch (2023-11-14 22:13:20 UTC): an author's
/// time is this plus the virtual time it sent at, so traces stay
/// deterministic.
pub const WALL_EPOCH_MS: u64 = 1_700_000_000_000;

impl World {
    /// The wall-clock time a simulated author reads now.
    pub fn wall_ms(&self) -> u64 {
        WALL_EPOCH_MS + self.now.as_millis()
    }

    /// One of the scenario's timed sends, if its sender is up.
    pub(super) fn timed_send(&mut self, i: usize) {
        let s = self.sc.workload.sends[i].clone();
        if self.procs.state(s.from) == State::Up {
            let wall_ms = self.wall_ms();
            self.handle(
                s.from,
                Input::Send {
                    text: s.text,
                    wall_ms,
                },
            );
        }
    }

    /// One chat from a random up sender; schedules the next.
    pub(super) fn chat_tick(&mut self) {
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
                if self.procs.up.is_empty() {
                    None
                } else {
                    let i = self.below(self.procs.up.len());
                    Some(self.procs.up[i])
                }
            }
            Senders::Nodes(list) => {
                let live: Vec<u32> = list
                    .iter()
                    .copied()
                    .filter(|s| self.procs.slots[*s as usize].state == State::Up)
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
            let wall_ms = self.wall_ms();
            self.handle(s, Input::Send { text, wall_ms });
        }
        self.push(next, Ev::ChatTick);
    }
}
