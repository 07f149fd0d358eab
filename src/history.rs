//! Chat delivery state: per-stream frontiers with hold-back for gaps, and
//! the bounded history that repair and newcomers are served from.

use crate::message::{Chat, MsgId, NodeKey};
use crate::node::Via;
use crate::peers::key_hash;
use crate::time::{Duration, Instant};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One sender life's stream as seen by this node.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    /// Highest seq delivered; everything up to it was handed to the user
    /// (or reported as a gap) exactly once.
    pub delivered: u64,
    /// Messages past a gap, waiting for it to fill: seq -> (chat, how it came).
    pub held: BTreeMap<u64, (Chat, Via)>,
    /// When the current gap was first seen.
    pub waiting_since: Option<Instant>,
    /// Last time anything arrived for this stream.
    pub last_active: Instant,
    /// `delivered` as it was one sync interval ago: what neighbours compare,
    /// so that messages still in flight do not look like losses.
    settled: u64,
}

/// Most frontier moves remembered before they settle; beyond it the oldest
/// settle early.
const MAX_UNSETTLED: usize = 1 << 16;

/// All streams, with an order-independent hash of their settled frontiers.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    pub map: BTreeMap<NodeKey, Stream>,
    /// Streams with held messages.
    pub waiting: BTreeSet<NodeKey>,
    /// Messages held back over all streams.
    pub held_total: usize,
    /// Frontier moves not yet settled, oldest first.
    unsettled: VecDeque<(Instant, NodeKey, u64)>,
    hash: u64,
}

impl Streams {
    /// Hash of every stream's settled frontier. Two nodes that delivered
    /// the same messages more than a sync interval ago agree on it.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Settles the frontier moves made at or before `cutoff`.
    pub fn settle(&mut self, cutoff: Instant) {
        while let Some(&(at, key, seq)) = self.unsettled.front() {
            if at > cutoff && self.unsettled.len() <= MAX_UNSETTLED {
                break;
            }
            self.unsettled.pop_front();
            self.set_settled(key, seq);
        }
    }

    fn set_settled(&mut self, key: NodeKey, seq: u64) {
        if let Some(s) = self.map.get_mut(&key) {
            self.hash = self
                .hash
                .wrapping_sub(Self::contribution(key, s.settled))
                .wrapping_add(Self::contribution(key, seq));
            s.settled = seq;
        }
    }

    fn contribution(key: NodeKey, delivered: u64) -> u64 {
        if delivered == 0 {
            0
        } else {
            key_hash(key, delivered)
        }
    }

    /// Moves a stream's frontier at `now`; it settles later.
    pub fn set_delivered(&mut self, key: NodeKey, delivered: u64, now: Instant) {
        let s = self.map.entry(key).or_default();
        s.delivered = delivered;
        s.last_active = now;
        self.unsettled.push_back((now, key, delivered));
    }

    pub fn delivered(&self, key: &NodeKey) -> u64 {
        self.map.get(key).map_or(0, |s| s.delivered)
    }

    /// `(stream, delivered)` for every stream with something delivered.
    pub fn digest(&self) -> Vec<(NodeKey, u64)> {
        self.map
            .iter()
            .filter(|(_, s)| s.delivered > 0)
            .map(|(k, s)| (*k, s.delivered))
            .collect()
    }

    /// Forgets one stream entirely.
    pub fn forget(&mut self, key: NodeKey) {
        self.set_settled(key, 0);
        if let Some(s) = self.map.remove(&key) {
            self.held_total = self.held_total.saturating_sub(s.held.len());
        }
        self.waiting.remove(&key);
        self.unsettled.retain(|(_, k, _)| *k != key);
    }

    /// Forgets streams that are idle since `cutoff` and not in `keep`.
    pub fn forget_idle(&mut self, cutoff: Instant, keep: impl Fn(&NodeKey) -> bool) {
        let stale: Vec<NodeKey> = self
            .map
            .iter()
            .filter(|(k, s)| s.last_active < cutoff && s.held.is_empty() && !keep(k))
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            self.forget(k);
        }
    }
}

/// The bounded store of recent messages, by id and by arrival.
#[derive(Debug)]
pub(crate) struct Store {
    by_id: BTreeMap<MsgId, (Instant, Chat)>,
    arrivals: VecDeque<(Instant, MsgId)>,
    max: usize,
    max_age: Duration,
}

impl Store {
    pub fn new(max: usize, max_age: Duration) -> Self {
        Store {
            by_id: BTreeMap::new(),
            arrivals: VecDeque::new(),
            max,
            max_age,
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Keeps `chat` unless a message with its id is already kept; returns
    /// whether it was new here.
    pub fn insert(&mut self, now: Instant, chat: &Chat) -> bool {
        match self.by_id.entry(chat.id) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert((now, chat.clone()));
            }
            std::collections::btree_map::Entry::Occupied(_) => return false,
        }
        self.arrivals.push_back((now, chat.id));
        self.expire(now);
        true
    }

    /// Drops what is over the count or age limit, oldest arrival first.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.arrivals.front() {
            if self.arrivals.len() > self.max || at + self.max_age <= now {
                self.arrivals.pop_front();
                self.by_id.remove(&id);
            } else {
                break;
            }
        }
    }

    /// The message with this id, if still held.
    pub fn get(&self, id: &MsgId) -> Option<&Chat> {
        self.by_id.get(id).map(|(_, c)| c)
    }

    /// Held messages of `stream` with `from <= seq <= to`, in seq order,
    /// with their arrival times.
    pub fn range(
        &self,
        stream: NodeKey,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = (Instant, &Chat)> {
        let lo = MsgId {
            origin: stream,
            seq: from,
        };
        let hi = MsgId {
            origin: stream,
            seq: to,
        };
        self.by_id.range(lo..=hi).map(|(_, (at, c))| (*at, c))
    }

    /// The `n` most recent arrivals whose summed `size` fits in `budget`,
    /// in id order (stream, then seq).
    pub fn latest(&self, n: usize, size: impl Fn(&Chat) -> usize, budget: usize) -> Vec<Chat> {
        let mut used = 0;
        let mut ids: Vec<MsgId> = Vec::new();
        for (_, id) in self.arrivals.iter().rev().take(n) {
            let Some((_, c)) = self.by_id.get(id) else {
                continue;
            };
            used += size(c);
            if used > budget {
                break;
            }
            ids.push(*id);
        }
        ids.sort_unstable();
        ids.iter()
            .filter_map(|id| self.by_id.get(id).map(|(_, c)| c.clone()))
            .collect()
    }
}
