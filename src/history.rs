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
    /// The highest seq delivered of a message sent at or before the
    /// settled mark (see [`Streams`]): what neighbours compare.
    settled: u64,
}

/// Width of one settling step, in the authors' milliseconds.
pub(crate) const MARK_MS: u64 = 250;

/// Most marks whose hash is remembered (16 s of them).
const MAX_MARKS: usize = 64;

/// Most frontier moves remembered before they settle; beyond it the oldest
/// settle early.
const MAX_UNSETTLED: usize = 1 << 16;

/// All streams, with an order-independent hash of their settled frontiers.
///
/// Two nodes compare what they delivered of the messages their authors
/// sent before a common point in time, the mark (in the authors' clock, in
/// steps of [`MARK_MS`]): a message sent after it may still be on its way
/// to either, so it is not compared yet, and a mismatch before it is a
/// loss. Each node moves its mark as time passes (its clock plus the
/// authors' lead over it, less the time messages take to reach everyone)
/// and keeps the hash at each of its recent marks, so a peer's hash at its
/// own mark can be compared with the hash here at the same mark.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    pub map: BTreeMap<NodeKey, Stream>,
    /// Streams with held messages.
    pub waiting: BTreeSet<NodeKey>,
    /// Messages held back over all streams.
    pub held_total: usize,
    /// Frontier moves of messages sent after the mark: (sent_ms, stream,
    /// seq).
    unsettled: BTreeSet<(u64, NodeKey, u64)>,
    /// Every move of a message sent at or before `mark * MARK_MS` is in
    /// the hash.
    mark: u64,
    /// The hash at each recent mark, oldest first.
    marks: VecDeque<(u64, u64)>,
    hash: u64,
    /// The authors' clock minus this node's, in ms, as the last live
    /// messages showed it (send time against arrival), newest last.
    leads: VecDeque<i64>,
}

/// Live messages whose lead over the local clock is remembered.
const MAX_LEADS: usize = 16;

impl Streams {
    /// The mark and the hash there: two nodes that delivered the same
    /// messages sent up to a mark agree on the hash at it.
    pub fn hash(&self) -> (u64, u64) {
        (self.mark, self.hash)
    }

    /// The hash at `mark` to compare a peer's with: the one remembered
    /// there; the hash now for a mark older than any remembered; `None`
    /// for a mark this node has not reached yet.
    pub fn hash_at(&self, mark: u64) -> Option<u64> {
        if mark > self.mark {
            return None;
        }
        match self.marks.binary_search_by_key(&mark, |m| m.0) {
            Ok(i) if mark < self.mark => Some(self.marks[i].1),
            _ => Some(self.hash),
        }
    }

    /// How far the authors' clock runs ahead of this node's (ms): the
    /// median of the last live messages' leads, 0 before any.
    pub fn lead(&self) -> i64 {
        let mut v = [0i64; MAX_LEADS];
        let n = self.leads.len();
        for (x, l) in v.iter_mut().zip(&self.leads) {
            *x = *l;
        }
        v[..n].sort_unstable();
        if n == 0 {
            0
        } else {
            v[n / 2]
        }
    }

    /// Settles the moves of messages sent at or before `upto_ms` (authors'
    /// clock), one mark at a time.
    pub fn settle(&mut self, upto_ms: u64) {
        let target = upto_ms / MARK_MS;
        if target <= self.mark {
            return;
        }
        let mut k = self.mark.max(target.saturating_sub(MAX_MARKS as u64));
        while k < target {
            k += 1;
            let limit = k.saturating_mul(MARK_MS);
            while let Some(&(sent, key, seq)) = self.unsettled.first() {
                if sent > limit {
                    break;
                }
                self.unsettled.pop_first();
                self.set_settled(key, seq);
            }
            self.marks.push_back((k, self.hash));
            if self.marks.len() > MAX_MARKS {
                self.marks.pop_front();
            }
        }
        self.mark = target;
    }

    fn set_settled(&mut self, key: NodeKey, seq: u64) {
        if let Some(s) = self.map.get_mut(&key) {
            // Gap reports and repairs can settle out of seq order.
            let seq = if seq == 0 { 0 } else { seq.max(s.settled) };
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

    /// Moves a stream's frontier at `now` to `delivered`, a message its
    /// author sent at `sent_ms` (0: no message, as for a gap given up); it
    /// settles once the mark passes `sent_ms`. A live message's send time
    /// also tells the authors' lead over the local clock.
    pub fn set_delivered(
        &mut self,
        key: NodeKey,
        delivered: u64,
        now: Instant,
        sent_ms: u64,
        live: bool,
    ) {
        let s = self.map.entry(key).or_default();
        s.delivered = delivered;
        s.last_active = now;
        if live {
            let lead = (sent_ms as i64).saturating_sub(now.as_millis() as i64);
            self.leads.push_back(lead);
            if self.leads.len() > MAX_LEADS {
                self.leads.pop_front();
            }
        }
        if sent_ms <= self.mark.saturating_mul(MARK_MS) {
            // Late: past marks keep the hash they had.
            self.set_settled(key, delivered);
        } else {
            self.unsettled.insert((sent_ms, key, delivered));
            if self.unsettled.len() > MAX_UNSETTLED {
                if let Some((_, k, seq)) = self.unsettled.pop_first() {
                    self.set_settled(k, seq);
                }
            }
        }
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

    /// The messages that arrived at or after `since`, oldest first.
    pub fn since(&self, since: Instant) -> impl Iterator<Item = &Chat> {
        let first = self.arrivals.partition_point(|(at, _)| *at < since);
        self.arrivals
            .range(first..)
            .filter_map(|(_, id)| self.by_id.get(id).map(|(_, c)| c))
    }

    /// The ids of the messages that arrived at or after `from` and before
    /// `to`, oldest first.
    pub fn ids_between(&self, from: Instant, to: Instant) -> impl Iterator<Item = MsgId> + '_ {
        let first = self.arrivals.partition_point(|(at, _)| *at < from);
        let end = self.arrivals.partition_point(|(at, _)| *at < to).max(first);
        self.arrivals
            .range(first..end)
            .filter(|(_, id)| self.by_id.contains_key(id))
            .map(|(_, id)| *id)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> NodeKey {
        NodeKey {
            id: crate::message::Id::of_addr(std::net::SocketAddr::from(([10, 0, 0, i], 7000))),
            incarnation: 1,
        }
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn a_message_sent_after_the_mark_is_not_compared_yet() {
        let mut s = Streams::default();
        s.set_delivered(key(1), 1, at(100), 1_000, true);
        s.settle(1_000);
        let (mark, before) = s.hash();
        assert_eq!(mark, 1_000 / MARK_MS);
        assert_ne!(before, 0, "the message sent at the mark is in");
        s.set_delivered(key(1), 2, at(200), 1_100, true);
        assert_eq!(s.hash(), (mark, before), "sent after the mark: not yet");
        s.settle(1_250);
        assert_ne!(s.hash().1, before);
        assert_eq!(s.hash_at(mark), Some(before), "the old mark is remembered");
        assert_eq!(s.hash_at(mark + 9), None, "a mark not reached");
    }

    #[test]
    fn nodes_that_got_the_same_messages_in_any_order_agree_at_a_mark() {
        let (mut a, mut b) = (Streams::default(), Streams::default());
        a.set_delivered(key(1), 1, at(10), 500, true);
        a.set_delivered(key(2), 1, at(20), 600, true);
        a.set_delivered(key(2), 2, at(30), 2_000, true);
        b.set_delivered(key(2), 1, at(5), 600, true);
        b.set_delivered(key(1), 1, at(40), 500, true);
        a.settle(1_000);
        b.settle(1_500);
        // b has not got key(2)#2 (sent after both marks): no difference.
        assert_eq!(a.hash_at(4), b.hash_at(4));
        b.set_delivered(key(2), 1, at(50), 0, false);
        assert_eq!(
            a.hash_at(4),
            b.hash_at(4),
            "a repeated move changes nothing"
        );
        let mut c = Streams::default();
        c.set_delivered(key(1), 1, at(10), 500, true);
        c.settle(1_000);
        assert_ne!(a.hash_at(4), c.hash_at(4), "c lacks key(2)#1");
    }

    #[test]
    fn the_authors_lead_is_the_median_of_the_last_live_messages() {
        let mut s = Streams::default();
        assert_eq!(s.lead(), 0);
        for (i, lead) in [50i64, 40, 9_000, 45, 55].into_iter().enumerate() {
            let now = 1_000 + i as u64;
            s.set_delivered(
                key(1),
                i as u64 + 1,
                at(now),
                (now as i64 + lead) as u64,
                true,
            );
        }
        assert_eq!(s.lead(), 50, "one clock far off does not move it");
        s.set_delivered(key(1), 6, at(2_000), 1, false);
        assert_eq!(s.lead(), 50, "repaired messages do not count");
    }
}
