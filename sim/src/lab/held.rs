//! Deliveries that arrive before their sender's own line.
//!
//! Each process's output comes on its own pipe, read by its own thread: a
//! receiver's `chat` line can reach the lab before the sender's line for
//! the same message (the sender flushes its output when it idles, after
//! sending). The simulator registers a message when its sender hands it to
//! its user, so the lab holds such deliveries until the sender's line
//! comes, for at most [`HOLD`].

use gossip_chat::{Duration, Instant, MsgId};
use std::collections::BTreeSet;

/// Longest a delivery waits for its sender's line.
pub const HOLD: Duration = Duration::from_millis(2000);
/// Most deliveries held at once; past it the oldest go on unclaimed.
const MAX_HELD: usize = 100_000;

/// A delivery waiting for its sender's line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// When it arrived.
    pub at: Instant,
    /// Where.
    pub slot: u32,
    /// The process that printed it.
    pub proc: Option<usize>,
    /// The message.
    pub id: MsgId,
}

/// The held deliveries and the messages whose sender's line came.
#[derive(Default)]
pub struct Holds {
    known: BTreeSet<MsgId>,
    waiting: Vec<Held>,
}

impl Holds {
    /// Whether the sender's line for `id` came.
    pub fn knows(&self, id: &MsgId) -> bool {
        self.known.contains(id)
    }

    /// The sender's line for `id` came.
    pub fn known(&mut self, id: MsgId) {
        self.known.insert(id);
    }

    /// Holds `h`; returns the oldest one if the table is full.
    pub fn hold(&mut self, h: Held) {
        if self.waiting.len() >= MAX_HELD {
            self.waiting.remove(0);
        }
        self.waiting.push(h);
    }

    /// The deliveries of `id`, in arrival order.
    pub fn release(&mut self, id: &MsgId) -> Vec<Held> {
        let (out, keep) = self.waiting.drain(..).partition(|h| h.id == *id);
        self.waiting = keep;
        out
    }

    /// The deliveries held longer than [`HOLD`] at `now`.
    pub fn stale(&mut self, now: Instant) -> Vec<Held> {
        if self.waiting.first().is_none_or(|h| h.at + HOLD > now) {
            return Vec::new();
        }
        let (out, keep) = self.waiting.drain(..).partition(|h| h.at + HOLD <= now);
        self.waiting = keep;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossip_chat::NodeKey;

    fn id(seq: u64) -> MsgId {
        MsgId {
            origin: NodeKey {
                id: crate::addr::id_of(1),
                incarnation: 5,
            },
            seq,
        }
    }

    #[test]
    fn deliveries_wait_for_their_sender_or_the_deadline() {
        let mut h = Holds::default();
        let at = |ms| Instant::from_millis(ms);
        h.hold(Held {
            at: at(10),
            slot: 2,
            proc: Some(2),
            id: id(1),
        });
        h.hold(Held {
            at: at(20),
            slot: 3,
            proc: Some(3),
            id: id(2),
        });
        h.hold(Held {
            at: at(30),
            slot: 3,
            proc: Some(3),
            id: id(1),
        });
        let got: Vec<u32> = h.release(&id(1)).iter().map(|x| x.slot).collect();
        assert_eq!(got, vec![2, 3]);
        assert!(h.stale(at(2019)).is_empty());
        let late = h.stale(at(2020));
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].id, id(2));
        assert!(h.release(&id(2)).is_empty());
        assert!(!h.knows(&id(1)));
        h.known(id(1));
        assert!(h.knows(&id(1)));
    }
}
