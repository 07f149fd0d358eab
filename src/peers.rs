//! The membership table: every node this node knows of, alive or
//! remembered dead, with the precedence rule that merges gossip.

use crate::message::{MemberState, MemberUpdate, NodeKey};
use crate::time::Instant;
use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

/// What this node knows about one other node.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub name: Arc<str>,
    pub incarnation: u64,
    /// Refutation counter within the life.
    pub version: u32,
    pub state: MemberState,
    /// When `state` was last set (for a tombstone heard from others: when
    /// the first node held it so, from the age on the wire).
    pub since: Instant,
    /// For a suspect: when it is declared dead unless refuted.
    pub suspect_until: Option<Instant>,
    /// For a suspect: the distinct members that accused it (bounded), each
    /// of which shortens the suspicion.
    pub accusers: Vec<SocketAddr>,
    /// Others declared this life and version dead while this node still
    /// heard from it first-hand (so it verified instead of believing them):
    /// if its own check fails too, the suspicion here runs out as soon as
    /// the most confirmed one would.
    pub heard_dead: bool,
    /// Earliest time to dial it again after a failure.
    pub retry_at: Instant,
    /// Consecutive failed dials.
    pub failures: u32,
    /// It turned this node's dials away as full this many times.
    pub refusals: u8,
    /// Not dialled to fill a neighbour slot before then: it was full.
    pub full_until: Instant,
}

impl Member {
    pub fn key(&self, addr: SocketAddr) -> NodeKey {
        NodeKey {
            addr,
            incarnation: self.incarnation,
        }
    }

    /// Alive or suspect: still in the roster.
    pub fn in_roster(&self) -> bool {
        matches!(self.state, MemberState::Alive | MemberState::Suspect)
    }

    /// The entry as it goes on the wire at `now`.
    pub fn update(&self, addr: SocketAddr, now: Instant) -> MemberUpdate {
        let tomb = matches!(self.state, MemberState::Dead | MemberState::Left);
        MemberUpdate {
            node: self.key(addr),
            version: self.version,
            state: self.state,
            name: self.name.clone(),
            age_secs: if tomb {
                ((now - self.since).as_millis() / 1000).min(u32::MAX as u64) as u32
            } else {
                0
            },
            accuser: self.accusers.first().copied(),
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

/// How many buckets the roster digest splits members into (by address),
/// so that two views that differ in a few members trade only those
/// members' buckets.
pub(crate) const BUCKETS: usize = 64;

/// The digest bucket of an address: the same on every node, whatever life.
pub(crate) fn bucket_of(addr: SocketAddr) -> usize {
    let key = NodeKey {
        addr,
        incarnation: 0,
    };
    (key_hash(key, 0xb0c4) >> 58) as usize % BUCKETS
}

/// Members keyed by address, in insertion order (deterministic, and cheap
/// to sample at random by index). The hash of the roster, whole and per
/// bucket, is kept up to date on every change.
#[derive(Debug)]
pub(crate) struct Members {
    map: IndexMap<SocketAddr, Member, FxBuildHasher>,
    hash: u64,
    buckets: [u64; BUCKETS],
    /// The members in the roster by their place on the ring of address
    /// hashes (see [`ring_pos`]), kept with the map.
    ring: BTreeSet<(u64, SocketAddr)>,
}

impl Default for Members {
    fn default() -> Members {
        Members {
            map: IndexMap::default(),
            hash: 0,
            buckets: [0; BUCKETS],
            ring: BTreeSet::new(),
        }
    }
}

/// A member's place on the ring of address hashes (by address alone, so
/// that a restart keeps it).
pub(crate) fn ring_pos(addr: SocketAddr) -> u64 {
    key_hash(
        NodeKey {
            addr,
            incarnation: 0,
        },
        0,
    )
}

impl Members {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn get(&self, addr: &SocketAddr) -> Option<&Member> {
        self.map.get(addr)
    }

    pub fn get_mut(&mut self, addr: &SocketAddr) -> Option<&mut Member> {
        self.map.get_mut(addr)
    }

    pub fn get_index(&self, i: usize) -> Option<(&SocketAddr, &Member)> {
        self.map.get_index(i)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SocketAddr, &Member)> {
        self.map.iter()
    }

    /// Order-independent hash of the roster's `(addr, incarnation)` pairs.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The roster hash of each bucket (see [`bucket_of`]).
    pub fn bucket_hashes(&self) -> &[u64; BUCKETS] {
        &self.buckets
    }

    fn contribution(addr: SocketAddr, m: &Member) -> u64 {
        if m.in_roster() {
            key_hash(m.key(addr), 0)
        } else {
            0
        }
    }

    /// The member in the roster first on the ring, with its place.
    pub fn first(&self) -> Option<(u64, SocketAddr)> {
        self.ring.first().copied()
    }

    /// The members in the roster going back round the ring from `from`
    /// (excluded), nearest first.
    pub fn before(&self, from: SocketAddr) -> impl Iterator<Item = (SocketAddr, &Member)> + '_ {
        let at = (ring_pos(from), from);
        let before = self.ring.range(..at).rev();
        let wrapped = self.ring.range(at..).rev().filter(move |k| **k != at);
        before
            .chain(wrapped)
            .filter_map(|&(_, a)| self.map.get(&a).map(|m| (a, m)))
    }

    /// Inserts or replaces the entry for `addr`, keeping the hash current.
    pub fn set(&mut self, addr: SocketAddr, m: Member) {
        let new_in = m.in_roster();
        let new_c = Self::contribution(addr, &m);
        let (_, old) = self.map.insert_full(addr, m);
        let old_in = old.as_ref().is_some_and(Member::in_roster);
        // The ring holds exactly the members in the roster.
        if new_in != old_in {
            let at = (ring_pos(addr), addr);
            if new_in {
                self.ring.insert(at);
            } else {
                self.ring.remove(&at);
            }
        }
        let old_c = old.as_ref().map_or(0, |o| Self::contribution(addr, o));
        if old_c != new_c {
            self.hash = self.hash.wrapping_sub(old_c).wrapping_add(new_c);
            let b = &mut self.buckets[bucket_of(addr)];
            *b = b.wrapping_sub(old_c).wrapping_add(new_c);
        }
    }

    /// Room for `n` more members without growing the table on the way
    /// (a join answer's worth).
    pub fn reserve(&mut self, n: usize) {
        self.map.reserve(n);
    }

    /// Removes the entry for `addr`, keeping the hash current.
    pub fn remove(&mut self, addr: &SocketAddr) {
        self.ring.remove(&(ring_pos(*addr), *addr));
        if let Some(old) = self.map.shift_remove(addr) {
            let c = Self::contribution(*addr, &old);
            self.hash = self.hash.wrapping_sub(c);
            let b = &mut self.buckets[bucket_of(*addr)];
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
    /// accused it, so it has nothing to refute); false if there is none.
    pub fn evict_oldest_tombstone(&mut self, cutoff: Instant, give_up: u32) -> bool {
        let oldest = self
            .map
            .iter()
            .filter(|(_, m)| !m.in_roster() && (m.since < cutoff || m.failures >= give_up))
            .min_by_key(|(addr, m)| (m.since, **addr))
            .map(|(addr, _)| *addr);
        match oldest {
            Some(addr) => {
                self.map.shift_remove(&addr);
                true
            }
            None => false,
        }
    }
}

/// A fixed, platform-independent hash of a node life and a number, used for
/// the order-independent digests that neighbours compare.
pub(crate) fn key_hash(key: NodeKey, extra: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    match key.addr.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().iter().for_each(|b| eat(*b)),
        std::net::IpAddr::V6(ip) => ip.octets().iter().for_each(|b| eat(*b)),
    }
    key.addr.port().to_le_bytes().iter().for_each(|b| eat(*b));
    key.incarnation.to_le_bytes().iter().for_each(|b| eat(*b));
    extra.to_le_bytes().iter().for_each(|b| eat(*b));
    // splitmix64 finaliser: spreads FNV's weak low bits.
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Membership changes waiting to be resent in gossip rounds: oldest first,
/// at most one (the latest) per address.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    by_seq: BTreeMap<u64, (MemberUpdate, u8)>,
    seq_of: BTreeMap<SocketAddr, u64>,
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
    /// same address and dropping the oldest beyond `max`.
    pub fn push(&mut self, u: MemberUpdate, rounds: u8, max: usize) {
        if let Some(old) = self.seq_of.remove(&u.node.addr) {
            self.by_seq.remove(&old);
        }
        while self.by_seq.len() >= max.max(1) {
            if let Some((_, (gone, _))) = self.by_seq.pop_first() {
                self.seq_of.remove(&gone.node.addr);
            }
        }
        if rounds == 0 {
            return;
        }
        self.next += 1;
        self.seq_of.insert(u.node.addr, self.next);
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
                self.seq_of.remove(&u.node.addr);
            }
        }
        out
    }
}
