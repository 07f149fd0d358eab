//! The membership table: every node this node knows of, alive or
//! remembered dead, with the precedence rule that merges gossip.

use crate::message::{Accusation, Id, MemberState, MemberUpdate, NodeKey, Proof};
use crate::time::{Duration, Instant};
use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// What this node knows about one other node.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub name: Arc<str>,
    /// Where it listens in this life.
    pub addr: SocketAddr,
    pub incarnation: u64,
    /// Refutation counter within the life.
    pub version: u32,
    pub state: MemberState,
    /// When `state` was last set (for a tombstone heard from others: when
    /// the first node held it so, from the age on the wire).
    pub since: Instant,
    /// For a suspect: when it is declared dead unless refuted.
    pub suspect_until: Option<Instant>,
    /// For a suspect: the wait `suspect_until` was armed with, counted
    /// from when the wait started (see `Node::resumed_end`).
    pub suspect_wait: Duration,
    /// For a suspect: the distinct members that accused it (bounded), each
    /// of which shortens the suspicion.
    pub accusers: Accusers,
    /// Others declared this life and version dead while this node still
    /// heard from it first-hand (so it verified instead of believing them):
    /// if its own check fails too, the suspicion here runs out as soon as
    /// the most confirmed one would.
    pub heard_dead: bool,
    /// Earliest time to dial it again after a failure.
    pub retry_at: Instant,
    /// Consecutive failed dials.
    pub failures: u32,
    /// Until then this node's own failure to reach it is no evidence of
    /// its death: it refuted an accusation while this node could not
    /// reach it (see `Node::out_of_reach`).
    pub out_of_reach_until: Instant,
    /// When it last refuted an accusation in this life, as far as this
    /// node knows (see `Node::refuted_lately`).
    pub refuted_at: Option<Instant>,
    /// It turned this node's dials away as full this many times.
    pub refusals: u8,
    /// Not dialled to fill a neighbour slot before then: it was full.
    pub full_until: Instant,
    /// The digest bucket of its id ([`bucket_of`]): [`Members`]
    /// fills it in, whatever the entry comes with.
    pub bucket: u8,
    /// Its fingerprint as repair compares entries ([`print_of`]): likewise
    /// kept by [`Members`], which alone sets life, version and state.
    pub print: u32,
    /// Smoothed round trip to the member as this node's pings measured it
    /// (ms; 0 while unknown): timeouts for it stretch by it.
    pub rtt_ms: u16,
    /// The member's signature over this life, version, address and name
    /// (its departure, if it left): every entry this node sends of it
    /// carries it.
    pub proof: Proof,
}

/// The fingerprint of the entry for `node` at `version` in `state`, as
/// repair compares entries: its life, version and state.
pub(crate) fn print_of(node: NodeKey, version: u32, state: MemberState) -> u32 {
    print_at(fnv_id(node.id), node.incarnation, version, state)
}

/// [`print_of`] from the id's FNV state ([`fnv_id`]).
fn print_at(fnv: u64, incarnation: u64, version: u32, state: MemberState) -> u32 {
    mix(fnv_u64(
        fnv_u64(fnv, incarnation),
        (version as u64) << 8 | state as u64,
    )) as u32
}

/// The accusers of a suspect (or the one whose suspicion ran out, of a
/// death), each with its signed accusation, boxed: most members have
/// none, and a node holds an entry for every member (8 bytes each, where
/// a `Vec` takes 24).
#[derive(Clone, Debug, Default)]
#[allow(clippy::box_collection)]
pub(crate) struct Accusers(Option<Box<Vec<(Id, Accusation)>>>);

impl Accusers {
    /// None, or the one that came with an update.
    pub fn first_of(accuser: Option<Accusation>) -> Accusers {
        Accusers(accuser.map(|a| Box::new(vec![(a.by(), a)])))
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |v| v.len())
    }

    pub fn contains(&self, a: &Id) -> bool {
        self.get(a).is_some()
    }

    /// `a`'s accusation, if `a` is one of them.
    pub fn get(&self, a: &Id) -> Option<&Accusation> {
        self.0
            .as_ref()
            .and_then(|v| v.iter().find(|(id, _)| id == a).map(|(_, x)| x))
    }

    pub fn first(&self) -> Option<&Accusation> {
        self.0.as_ref().and_then(|v| v.first()).map(|(_, a)| a)
    }

    /// Their ids.
    pub fn ids(&self) -> impl Iterator<Item = Id> + '_ {
        self.0.iter().flat_map(|v| v.iter().map(|(id, _)| *id))
    }

    pub fn push(&mut self, a: Accusation) {
        self.0.get_or_insert_default().push((a.by(), a));
    }

    /// Puts `a` in the place of accuser `old`, if `old` is one of them.
    pub fn replace(&mut self, old: Id, a: Accusation) {
        if let Some(slot) = self
            .0
            .as_mut()
            .and_then(|v| v.iter_mut().find(|(id, _)| *id == old))
        {
            *slot = (a.by(), a);
        }
    }
}

impl Member {
    pub fn key(&self, id: Id) -> NodeKey {
        NodeKey {
            id,
            incarnation: self.incarnation,
        }
    }

    /// Alive or suspect: still in the roster.
    pub fn in_roster(&self) -> bool {
        matches!(self.state, MemberState::Alive | MemberState::Suspect)
    }

    /// The entry as it goes on the wire at `now`.
    pub fn update(&self, id: Id, now: Instant) -> MemberUpdate {
        let tomb = matches!(self.state, MemberState::Dead | MemberState::Left);
        MemberUpdate {
            node: self.key(id),
            addr: self.addr,
            version: self.version,
            state: self.state,
            name: self.name.clone(),
            age_secs: if tomb {
                ((now - self.since).as_millis() / 1000).min(u32::MAX as u64) as u32
            } else {
                0
            },
            accuser: self.accusers.first().copied(),
            proof: self.proof,
        }
    }

    /// Whether it goes in peer lists: alive, suspect, or a tombstone set
    /// after `cutoff` (older ones are kept only for retries).
    pub fn spread(&self, cutoff: Instant) -> bool {
        self.in_roster() || self.since >= cutoff
    }

    /// Its precedence, as [`supersedes`] compares it.
    pub fn rank(&self) -> Rank {
        (self.incarnation, self.version, self.state)
    }
}

/// Precedence of what is known about a member: life, then refutation
/// version, then state.
pub(crate) type Rank = (u64, u32, MemberState);

/// The precedence of an update.
pub(crate) fn rank(u: &MemberUpdate) -> Rank {
    (u.node.incarnation, u.version, u.state)
}

/// True if `new` takes precedence over `old`.
pub(crate) fn supersedes(new: Rank, old: Rank) -> bool {
    new > old
}

/// How many buckets the roster digest splits members into (by id),
/// so that two views that differ in a few members trade only those
/// members' buckets.
pub(crate) const BUCKETS: usize = 64;

/// The digest bucket of a member: the same on every node, whatever life.
pub(crate) fn bucket_of(id: Id) -> usize {
    bucket_at(fnv_id(id))
}

/// [`bucket_of`] from the id's FNV state ([`fnv_id`]).
fn bucket_at(fnv: u64) -> usize {
    (mix(fnv_u64(fnv.wrapping_mul(FNV_POW[8]), 0xb0c4)) >> 58) as usize % BUCKETS
}

/// Members keyed by id, in insertion order (deterministic, and cheap
/// to sample at random by index). The hash of the roster, whole and per
/// bucket, is kept up to date on every change.
#[derive(Debug)]
pub(crate) struct Members {
    map: IndexMap<Id, Member, FxBuildHasher>,
    hash: u64,
    buckets: [u64; BUCKETS],
    /// The members in the roster by their place on the ring of id
    /// hashes (see [`ring_pos`]), kept with the map. Sorted when read
    /// (see [`Ring`]): reading it takes `&self`.
    ring: RefCell<Ring>,
}

/// A place on the ring: the id's hash, then the id.
type Place = (u64, Id);

/// The places of the members in the roster, sorted, with the changes not
/// sorted in yet. A node learns most of a group within a few frames and
/// reads the ring about once a heartbeat, so the changes are sorted in at
/// the next read, all at once: O(n) per read that follows a change, where
/// a search tree costs a descent and node splits for every member learned.
#[derive(Debug, Default)]
struct Ring {
    sorted: Vec<Place>,
    /// Changes since `sorted`, oldest first: true adds the place, false
    /// removes it.
    pending: Vec<(Place, bool)>,
    /// Whether `pending` removes any place (otherwise it only adds places
    /// that are not on the ring, each once).
    removes: bool,
    /// The last place looked up in `sorted` and how many places precede
    /// it (a node looks up its own place a few times a heartbeat).
    split: Option<(Place, usize)>,
}

impl Ring {
    fn add(&mut self, at: Place) {
        self.change(at, true);
    }

    fn remove(&mut self, at: Place) {
        self.change(at, false);
    }

    fn change(&mut self, at: Place, add: bool) {
        self.pending.push((at, add));
        self.removes |= !add;
        // Bounded even if the ring is not read for a long time.
        if self.pending.len() > self.sorted.len().max(64) {
            self.settle();
        }
    }

    /// Sorts the pending changes in.
    fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.split = None;
        if !std::mem::take(&mut self.removes) {
            self.add_pending();
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        // By place; the sort is stable, so the last change of a place is
        // the last of its run, and it is the one that holds.
        pending.sort_by_key(|(at, _)| *at);
        pending.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                *earlier = *later;
            }
            same
        });
        let old = std::mem::take(&mut self.sorted);
        let mut sorted = Vec::with_capacity(old.len() + pending.len());
        let mut changes = pending.into_iter().peekable();
        for at in old {
            while let Some((new, add)) = changes.next_if(|(new, _)| *new < at) {
                if add {
                    sorted.push(new);
                }
            }
            match changes.next_if(|(new, _)| *new == at) {
                Some((_, false)) => {}
                _ => sorted.push(at),
            }
        }
        sorted.extend(changes.filter(|(_, add)| *add).map(|(at, _)| at));
        self.sorted = sorted;
    }

    /// Sorts in pending changes that only add new places: merged from the
    /// back, in place.
    fn add_pending(&mut self) {
        self.pending.sort_unstable_by_key(|(at, _)| *at);
        let old = self.sorted.len();
        // No room to spare: the merge below costs as much as the copy.
        self.sorted.reserve_exact(self.pending.len());
        self.sorted.extend(self.pending.iter().map(|(at, _)| *at));
        let (mut i, mut j) = (old, self.pending.len());
        while j > 0 {
            let new = self.pending[j - 1].0;
            let w = i + j - 1;
            if i > 0 && self.sorted[i - 1] > new {
                self.sorted[w] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[w] = new;
                j -= 1;
            }
        }
        // Its room goes too: a node learns a group once.
        self.pending = Vec::new();
    }
}

impl Default for Members {
    fn default() -> Members {
        Members {
            map: IndexMap::default(),
            hash: 0,
            buckets: [0; BUCKETS],
            ring: RefCell::default(),
        }
    }
}

/// A member's place on the ring of id hashes (by id alone, so
/// that a restart keeps it).
pub(crate) fn ring_pos(id: Id) -> u64 {
    ring_at(fnv_id(id))
}

/// [`ring_pos`] from the id's FNV state ([`fnv_id`]): the
/// incarnation and the extra number are both zero.
fn ring_at(fnv: u64) -> u64 {
    mix(fnv.wrapping_mul(FNV_POW[8]).wrapping_mul(FNV_POW[8]))
}

impl Members {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn get(&self, id: &Id) -> Option<&Member> {
        self.map.get(id)
    }

    pub fn get_mut(&mut self, id: &Id) -> Option<&mut Member> {
        self.map.get_mut(id)
    }

    pub fn get_index(&self, i: usize) -> Option<(&Id, &Member)> {
        self.map.get_index(i)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Id, &Member)> {
        self.map.iter()
    }

    /// Order-independent hash of the roster's `(id, incarnation)` pairs.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The roster hash of each bucket (see [`bucket_of`]).
    pub fn bucket_hashes(&self) -> &[u64; BUCKETS] {
        &self.buckets
    }

    fn contribution(id: Id, m: &Member) -> u64 {
        if m.in_roster() {
            key_hash(m.key(id), 0)
        } else {
            0
        }
    }

    /// The member in the roster first on the ring, with its place.
    pub fn first(&self) -> Option<(u64, Id)> {
        let mut ring = self.ring.borrow_mut();
        ring.settle();
        ring.sorted.first().copied()
    }

    /// The members in the roster going back round the ring from `from`
    /// (excluded), nearest first.
    pub fn before(&self, from: Id) -> impl Iterator<Item = (Id, &Member)> + '_ {
        let at = (ring_pos(from), from);
        let (split, end) = {
            let mut ring = self.ring.borrow_mut();
            ring.settle();
            let split = match ring.split {
                Some((place, split)) if place == at => split,
                _ => {
                    let split = ring.sorted.partition_point(|k| *k < at);
                    ring.split = Some((at, split));
                    split
                }
            };
            (split, ring.sorted.len())
        };
        // Nothing changes the ring while `self` is borrowed.
        let place = move |i: usize| self.ring.borrow().sorted[i];
        let before = (0..split).rev().map(place);
        let wrapped = (split..end).rev().map(place).filter(move |k| *k != at);
        before
            .chain(wrapped)
            .filter_map(|(_, a)| self.map.get(&a).map(|m| (a, m)))
    }

    /// The index of the entry for `id` (see [`get_index`](Self::get_index)).
    pub fn index_of(&self, id: &Id) -> Option<usize> {
        self.map.get_index_of(id)
    }

    /// Inserts or replaces the entry for `id`, keeping the hash current.
    pub fn set(&mut self, id: Id, mut m: Member) {
        let new = m.in_roster().then_some(m.incarnation);
        let fnv = fnv_id(id);
        m.bucket = bucket_at(fnv) as u8;
        m.print = print_at(fnv, m.incarnation, m.version, m.state);
        let len = self.map.len();
        if len == self.map.capacity() {
            // Twice the room, not the map's own growth, which sizes the
            // entries to its index table: about 1.75 times the members.
            self.map.reserve_exact(len.max(4));
        }
        let (_, old) = self.map.insert_full(id, m);
        self.changed(id, fnv, old.as_ref(), new);
    }

    /// Replaces the entry at index `i` (which must exist), keeping the
    /// hash current.
    pub fn set_index(&mut self, i: usize, mut m: Member) {
        let new = m.in_roster().then_some(m.incarnation);
        let Some((id, slot)) = self.map.get_index_mut(i) else {
            return;
        };
        let id = *id;
        let fnv = fnv_id(id);
        m.bucket = slot.bucket;
        m.print = print_at(fnv, m.incarnation, m.version, m.state);
        let old = std::mem::replace(slot, m);
        self.changed(id, fnv, Some(&old), new);
    }

    /// Keeps the ring and the hashes current after the entry for `id`
    /// went from `old` to a member in the roster in life `new` (`None`:
    /// not in the roster).
    /// `fnv` is the id's FNV state ([`fnv_id`]).
    fn changed(&mut self, id: Id, fnv: u64, old: Option<&Member>, new: Option<u64>) {
        // The life in the roster before and after: the hashes change only
        // if it does.
        let old = old
            .as_ref()
            .filter(|o| o.in_roster())
            .map(|o| o.incarnation);
        if old == new {
            return;
        }
        let ring = ring_at(fnv);
        // The ring holds exactly the members in the roster.
        if new.is_some() != old.is_some() {
            let at = (ring, id);
            let mut r = self.ring.borrow_mut();
            if new.is_some() {
                r.add(at);
            } else {
                r.remove(at);
            }
        }
        // A life's contribution (see `contribution`); life 0's is its
        // place on the ring.
        let contribution = |life: Option<u64>| match life {
            None => 0,
            Some(0) => ring,
            Some(i) => mix(fnv_u64(fnv_u64(fnv, i), 0)),
        };
        let (old_c, new_c) = (contribution(old), contribution(new));
        self.hash = self.hash.wrapping_sub(old_c).wrapping_add(new_c);
        let b = &mut self.buckets[bucket_at(fnv)];
        *b = b.wrapping_sub(old_c).wrapping_add(new_c);
    }

    /// Room for `n` more members without growing the table on the way
    /// (a join answer's worth).
    pub fn reserve(&mut self, n: usize) {
        self.map.reserve_exact(n);
    }

    /// Removes the entry for `id`, keeping the hash current.
    pub fn remove(&mut self, id: &Id) {
        if let Some(old) = self.map.shift_remove(id) {
            if old.in_roster() {
                self.ring.get_mut().remove((ring_pos(*id), *id));
            }
            let c = Self::contribution(*id, &old);
            self.hash = self.hash.wrapping_sub(c);
            let b = &mut self.buckets[bucket_of(*id)];
            *b = b.wrapping_sub(c);
        }
    }

    /// Removes departures older than `left_cutoff` and deaths older than
    /// `dead_cutoff` (the dead are kept longer: they are retried, so that
    /// a split of any length heals); returns how many.
    pub fn forget_before(&mut self, left_cutoff: Instant, dead_cutoff: Instant) -> usize {
        let before = self.map.len();
        self.map.retain(|_, m| match m.state {
            MemberState::Alive | MemberState::Suspect => true,
            MemberState::Dead => m.since >= dead_cutoff,
            MemberState::Left => m.since >= left_cutoff,
        });
        before - self.map.len()
    }

    /// Removes, to make room, the oldest tombstone set before `cutoff` or of
    /// a member this node gave up on after `give_up` failed dials (nobody
    /// accused it, so it has nothing to refute), save those `dialled` says
    /// a dial is in flight to (a dial goes to a member this node holds);
    /// false if there is none.
    pub fn evict_oldest_tombstone(
        &mut self,
        cutoff: Instant,
        give_up: u32,
        dialled: impl Fn(&SocketAddr) -> bool,
    ) -> bool {
        let oldest = self
            .map
            .iter()
            .filter(|(_, m)| {
                !m.in_roster() && (m.since < cutoff || m.failures >= give_up) && !dialled(&m.addr)
            })
            .min_by_key(|(id, m)| (m.since, **id))
            .map(|(id, _)| *id);
        match oldest {
            Some(id) => {
                self.map.shift_remove(&id);
                true
            }
            None => false,
        }
    }
}

/// FNV-1a's prime.
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// `FNV_PRIME` to the powers 0..=8: FNV-1a over a zero byte is one
/// multiplication by the prime, so a run of zero bytes is one
/// multiplication by its power.
const FNV_POW: [u64; 9] = {
    let mut p = [1u64; 9];
    let mut i = 1;
    while i < 9 {
        p[i] = p[i - 1].wrapping_mul(FNV_PRIME);
        i += 1;
    }
    p
};

/// FNV-1a over the eight little-endian bytes of `x`: the bytes up to the
/// last non-zero one, then the zero bytes above it in one step.
fn fnv_u64(mut h: u64, x: u64) -> u64 {
    let len = 8 - (x.leading_zeros() / 8) as usize;
    for b in &x.to_le_bytes()[..len] {
        h ^= *b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h.wrapping_mul(FNV_POW[8 - len])
}

/// FNV-1a over a member's id (its eight bytes).
fn fnv_id(id: Id) -> u64 {
    id.0.iter().fold(0xcbf2_9ce4_8422_2325, |h: u64, b| {
        (h ^ *b as u64).wrapping_mul(FNV_PRIME)
    })
}

/// splitmix64's finaliser: spreads FNV's weak low bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fixed, platform-independent hash of a node life and a number, used for
/// the order-independent digests that neighbours compare: FNV-1a over the
/// id, the incarnation and `extra` (little-endian), then mixed.
pub(crate) fn key_hash(key: NodeKey, extra: u64) -> u64 {
    mix(fnv_u64(fnv_u64(fnv_id(key.id), key.incarnation), extra))
}

/// Membership changes waiting to be resent in gossip rounds: oldest first,
/// at most one (the latest) per member.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    by_seq: BTreeMap<u64, (MemberUpdate, u8)>,
    seq_of: BTreeMap<Id, u64>,
    next: u64,
}

impl Recent {
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// Queues `u` for `rounds` gossip rounds, replacing older news of the
    /// same member and dropping the oldest beyond `max`.
    pub fn push(&mut self, u: MemberUpdate, rounds: u8, max: usize) {
        if let Some(old) = self.seq_of.remove(&u.node.id) {
            self.by_seq.remove(&old);
        }
        while self.by_seq.len() >= max.max(1) {
            if let Some((_, (gone, _))) = self.by_seq.pop_first() {
                self.seq_of.remove(&gone.node.id);
            }
        }
        if rounds == 0 {
            return;
        }
        self.next += 1;
        self.seq_of.insert(u.node.id, self.next);
        self.by_seq.insert(self.next, (u, rounds));
    }

    /// The `n` oldest changes for one round; those with no round left are
    /// dropped.
    pub fn round(&mut self, n: usize) -> Vec<MemberUpdate> {
        let mut out = Vec::new();
        let mut done = Vec::new();
        for (seq, (u, left)) in self.by_seq.iter_mut().take(n) {
            out.push(u.clone());
            *left = left.saturating_sub(1);
            if *left == 0 {
                done.push(*seq);
            }
        }
        for seq in done {
            if let Some((u, _)) = self.by_seq.remove(&seq) {
                self.seq_of.remove(&u.node.id);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash as first written: FNV-1a byte by byte over the id's eight
    /// bytes, the incarnation and `extra` (little-endian), then mixed.
    fn key_hash_bytewise(key: NodeKey, extra: u64) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: u8| {
            h ^= b as u64;
            h = h.wrapping_mul(FNV_PRIME);
        };
        key.id.0.iter().for_each(|b| eat(*b));
        key.incarnation.to_le_bytes().iter().for_each(|b| eat(*b));
        extra.to_le_bytes().iter().for_each(|b| eat(*b));
        mix(h)
    }

    /// Ids of nodes without keys (from addresses, v4 and v6), and a few
    /// chosen ones: all zero, all ones, a single high or low byte.
    fn ids() -> Vec<Id> {
        let mut v: Vec<Id> = (0..300u32)
            .map(|i| {
                let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i * 7919);
                Id::of_addr(SocketAddr::from((ip, (i * 131) as u16)))
            })
            .collect();
        v.push(Id::of_addr("[::1]:7000".parse().unwrap()));
        v.push(Id::of_addr("[2001:db8::ff00:42:8329]:0".parse().unwrap()));
        v.push(Id([0; 8]));
        v.push(Id([0xff; 8]));
        v.push(Id([0, 0, 0, 0, 0, 0, 0, 1]));
        v.push(Id([1, 0, 0, 0, 0, 0, 0, 0]));
        v
    }

    #[test]
    fn hashes_match_the_bytewise_definition() {
        let numbers = [0, 1, 0xff, 0x100, 0xb0c4, 1 << 40, u64::MAX >> 8, u64::MAX];
        for id in ids() {
            for &incarnation in &numbers {
                for &extra in &numbers {
                    let key = NodeKey { id, incarnation };
                    assert_eq!(key_hash(key, extra), key_hash_bytewise(key, extra));
                    let (version, state) = (extra as u32, MemberState::Dead);
                    let print = key_hash_bytewise(key, (version as u64) << 8 | state as u64);
                    assert_eq!(print_of(key, version, state), print as u32);
                }
            }
            let life0 = NodeKey { id, incarnation: 0 };
            assert_eq!(ring_pos(id), key_hash_bytewise(life0, 0));
            let bucket = (key_hash_bytewise(life0, 0xb0c4) >> 58) as usize % BUCKETS;
            assert_eq!(bucket_of(id), bucket);
        }
    }

    fn member(incarnation: u64, state: MemberState) -> Member {
        let t = Instant::from_millis(0);
        Member {
            name: Arc::from(""),
            addr: SocketAddr::from(([10, 0, 0, 1], 7000)),
            incarnation,
            version: 0,
            state,
            since: t,
            suspect_until: None,
            suspect_wait: Duration::ZERO,
            accusers: Accusers::default(),
            bucket: 0,
            print: 0,
            heard_dead: false,
            retry_at: t,
            failures: 0,
            out_of_reach_until: t,
            refuted_at: None,
            refusals: 0,
            full_until: t,
            rtt_ms: 0,
            // The ring and hashes never look at it.
            proof: Proof::none(),
        }
    }

    /// The ring's places in order, read from the table.
    fn places(members: &Members) -> Vec<Place> {
        let mut want: Vec<Place> = members
            .iter()
            .filter(|(_, m)| m.in_roster())
            .map(|(a, _)| (ring_pos(*a), *a))
            .collect();
        want.sort();
        want
    }

    #[test]
    fn the_ring_takes_arrivals_in_batches() {
        let mut members = Members::default();
        for (i, id) in ids().into_iter().enumerate() {
            members.set(id, member(0, MemberState::Alive));
            if i % 13 == 0 {
                let want = places(&members);
                assert_eq!(members.first(), want.first().copied());
                let ring: Vec<Id> = members.before(id).map(|(a, _)| a).collect();
                assert_eq!(ring.len(), want.len() - 1);
            }
        }
        let want = places(&members);
        members.first();
        assert_eq!(members.ring.borrow().sorted, want);
    }

    #[test]
    fn the_ring_and_hashes_follow_every_change() {
        let ids = ids();
        let mut members = Members::default();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for step in 0..5000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let id = ids[(rng % ids.len() as u64) as usize];
            let state = [MemberState::Alive, MemberState::Suspect, MemberState::Dead]
                [(rng >> 20) as usize % 3];
            if (rng >> 40) % 7 == 0 {
                members.remove(&id);
            } else {
                members.set(id, member((rng >> 30) % 3, state));
            }
            if step % 97 != 0 {
                continue;
            }
            let want = places(&members);
            assert_eq!(members.first(), want.first().copied());
            let from = ids[step % ids.len()];
            let got: Vec<Id> = members.before(from).map(|(a, _)| a).collect();
            let at = (ring_pos(from), from);
            let split = want.partition_point(|k| *k < at);
            let expected: Vec<Id> = want[..split]
                .iter()
                .rev()
                .chain(want[split..].iter().rev().filter(|k| **k != at))
                .map(|k| k.1)
                .collect();
            assert_eq!(got, expected);
            let mut hash = 0u64;
            let mut buckets = [0u64; BUCKETS];
            for (a, m) in members.iter() {
                assert_eq!(m.bucket as usize, bucket_of(*a));
                assert_eq!(m.print, print_of(m.key(*a), m.version, m.state));
                let c = Members::contribution(*a, m);
                hash = hash.wrapping_add(c);
                let b = &mut buckets[bucket_of(*a)];
                *b = b.wrapping_add(c);
            }
            assert_eq!(members.hash(), hash);
            assert_eq!(members.bucket_hashes(), &buckets);
        }
    }
}
