//! Misbehaving nodes: what a hostile node injects on its links besides what
//! its own (honest) core sends, and the tally of it.
//!
//! A hostile node keeps running its core, so it stays connected and keeps
//! learning. The world asks an [`Attack`] for one [`Injection`] per tick and
//! carries it out on one of the node's handshaken connections.

use crate::random::below;
use crate::scenario::Mode;
use gossip_chat::{wire, Duration, Id, Instant, MemberState, MemberUpdate, Message, NodeKey};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use serde::Serialize;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

/// Messages a hostile node keeps for replay, per class (chat-carrying
/// and the rest): a uniform sample of all it received during the attack.
pub const REPLAY_CAP: usize = 32;
/// Longest garbage payload, in bytes.
const MAX_GARBAGE: usize = 512;
/// Most invented entries in one bogus peer list.
const LIST_MAX: usize = 64;
/// Most forged deaths and leaves of live nodes in one bogus peer list.
const FORGED_MAX: usize = 2;
/// Invented addresses live in 198.18.0.0/15 (reserved for benchmarks: no
/// simulated node listens there).
const GHOST_NET: u32 = 0xc612_0000;

/// The replay class of `msg`: 0 for what carries chat or chat ids, 1 for
/// the rest, `None` for what is not worth a replay (handshakes and
/// heartbeats: a second hello only closes the link, as garbage does).
fn replay_class(msg: &Message) -> Option<usize> {
    match msg {
        Message::Hello(_)
        | Message::Join(_)
        | Message::Ping(_)
        | Message::Heartbeat(_)
        | Message::Pong(_)
        | Message::ProbePong { .. } => None,
        Message::Chat(_) | Message::History(_) | Message::IHave(_) | Message::Graft(_) => Some(0),
        _ => Some(1),
    }
}

/// A uniform sample of a stream of messages, of at most [`REPLAY_CAP`].
#[derive(Debug, Default)]
struct Reservoir {
    kept: Vec<Message>,
    seen: u64,
}

impl Reservoir {
    fn offer(&mut self, msg: &Message, rng: &mut ChaCha8Rng) {
        self.seen += 1;
        if self.kept.len() < REPLAY_CAP {
            self.kept.push(msg.clone());
        } else {
            let j = rng.next_u64() % self.seen;
            if (j as usize) < REPLAY_CAP {
                self.kept[j as usize] = msg.clone();
            }
        }
    }
}

/// One hostile frame.
#[derive(Debug, Clone)]
pub enum Injection {
    /// A payload that does not decode.
    Garbage(Vec<u8>),
    /// A length prefix over the limit: the receiving driver reports it
    /// without reading a payload.
    Oversized(usize),
    /// A peer list of invented addresses and forged deaths and leaves.
    Peers {
        /// The list.
        msg: Message,
        /// Invented entries in it.
        invented: usize,
        /// Forged entries in it: live nodes at their current life.
        forged: Vec<NodeKey>,
    },
    /// A message received earlier, sent again.
    Replay(Message),
}

/// The attack of one hostile node.
#[derive(Debug)]
pub struct Attack {
    /// Its modes.
    pub modes: Vec<Mode>,
    /// Those that inject frames (all but `no-key`).
    injecting: Vec<Mode>,
    /// Time between two hostile frames.
    pub every: Duration,
    /// When it stops (`Instant::MAX`: never).
    pub until: Instant,
    /// Tells the ticks of this attack from those of an earlier one.
    pub epoch: u32,
    /// Invented members, each with a fixed life.
    pool: Vec<MemberUpdate>,
    /// Messages kept for replay, by class.
    recorded: [Reservoir; 2],
}

impl Attack {
    /// An attack with `addresses` invented addresses drawn from `rng`,
    /// avoiding those in `taken` (and adding its own to it, numbered in
    /// the order drawn).
    pub fn new(
        modes: Vec<Mode>,
        rate: f64,
        until: Instant,
        epoch: u32,
        addresses: u32,
        taken: &mut BTreeMap<SocketAddr, u32>,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let every = Duration::from_millis(((1000.0 / rate).round() as u64).max(1));
        let mut pool = Vec::new();
        if modes.contains(&Mode::BogusPeers) {
            // At most 2^17 hosts x 64512 ports: always room.
            while pool.len() < addresses as usize {
                let ip = Ipv4Addr::from(GHOST_NET + below(rng, 1 << 17) as u32);
                let port = 1024 + below(rng, 65536 - 1024) as u16;
                let addr = SocketAddr::V4(SocketAddrV4::new(ip, port));
                let g = taken.len() as u32;
                if let Entry::Vacant(e) = taken.entry(addr) {
                    e.insert(g);
                    pool.push(MemberUpdate {
                        node: NodeKey {
                            id: Id::of_addr(addr),
                            incarnation: 1 + below(rng, 3) as u64,
                        },
                        addr,
                        version: 0,
                        state: MemberState::Alive,
                        name: Arc::from(format!("ghost{}", g + 1)),
                        age_secs: 0,
                        accuser: None,
                    });
                }
            }
        }
        let injecting = modes
            .iter()
            .copied()
            .filter(|m| *m != Mode::NoKey)
            .collect();
        Attack {
            modes,
            injecting,
            every,
            until,
            epoch,
            pool,
            recorded: Default::default(),
        }
    }

    /// Whether it injects frames at all.
    pub fn injects(&self) -> bool {
        !self.injecting.is_empty()
    }

    /// Whether the attack runs at `now`.
    pub fn active(&self, now: Instant) -> bool {
        now < self.until
    }

    /// The node received `msg`: keep it for replay, as a uniform sample of
    /// everything received (so old messages stay in it).
    pub fn record(&mut self, msg: &Message, rng: &mut ChaCha8Rng) {
        if !self.modes.contains(&Mode::Replay) {
            return;
        }
        if let Some(class) = replay_class(msg) {
            self.recorded[class].offer(msg, rng);
        }
    }

    /// The next hostile frame. `victims` lists the live honest nodes with
    /// their current life and name (called only for a bogus peer list);
    /// `max_frame` is the receivers' limit. `None` when the drawn mode has
    /// nothing to send yet (no message recorded for replay).
    pub fn next(
        &mut self,
        victims: impl FnOnce() -> Vec<(NodeKey, Arc<str>)>,
        max_frame: usize,
        rng: &mut ChaCha8Rng,
    ) -> Option<Injection> {
        if self.injecting.is_empty() {
            return None;
        }
        let mode = self.injecting[below(rng, self.injecting.len())];
        match mode {
            Mode::NoKey => None,
            Mode::Malformed => {
                if below(rng, 2) == 0 {
                    let len = max_frame + 1 + below(rng, u32::MAX as usize - max_frame);
                    return Some(Injection::Oversized(len));
                }
                let len = 1 + below(rng, MAX_GARBAGE);
                let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                if wire::decode_payload(&bytes, max_frame).is_ok() {
                    // Garbage that happens to be a message: make the tag
                    // an unknown variant.
                    bytes[0] = 0x7f;
                }
                Some(Injection::Garbage(bytes))
            }
            Mode::BogusPeers => {
                let victims = victims();
                let n = 1 + below(rng, self.pool.len().min(LIST_MAX));
                let start = below(rng, self.pool.len());
                let mut members: Vec<MemberUpdate> = (0..n)
                    .map(|i| self.pool[(start + i) % self.pool.len()].clone())
                    .collect();
                let mut forged = Vec::new();
                for _ in 0..1 + below(rng, FORGED_MAX) {
                    if victims.is_empty() {
                        break;
                    }
                    let (key, name) = &victims[below(rng, victims.len())];
                    if forged.contains(key) {
                        continue;
                    }
                    let state = if below(rng, 2) == 0 {
                        MemberState::Dead
                    } else {
                        MemberState::Left
                    };
                    let at = below(rng, members.len() + 1);
                    members.insert(
                        at,
                        MemberUpdate {
                            node: *key,
                            addr: crate::addr::slot_of_id(&key.id, usize::MAX)
                                .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), crate::addr::addr_of),
                            version: 0,
                            state,
                            name: name.clone(),
                            age_secs: 0,
                            accuser: None,
                        },
                    );
                    forged.push(*key);
                }
                Some(Injection::Peers {
                    msg: Message::PeerList {
                        full: below(rng, 2) == 0,
                        members,
                    },
                    invented: n,
                    forged,
                })
            }
            Mode::Replay => {
                // Half chat, half the rest (when there is some of each).
                let mut class = below(rng, 2);
                if self.recorded[class].kept.is_empty() {
                    class = 1 - class;
                }
                let kept = &self.recorded[class].kept;
                if kept.is_empty() {
                    return None;
                }
                Some(Injection::Replay(kept[below(rng, kept.len())].clone()))
            }
        }
    }
}

/// What the misbehaving nodes did and what the honest nodes refused.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tally {
    /// Nodes that misbehaved.
    pub hostile_nodes: Vec<u32>,
    /// Payloads that do not decode, injected.
    pub malformed: u64,
    /// Oversized frames, injected.
    pub oversized: u64,
    /// Bogus peer lists, injected (full and delta).
    pub peer_lists: u64,
    /// Of which full lists.
    pub full_lists: u64,
    /// Invented entries in them.
    pub invented_entries: u64,
    /// Forged deaths and leaves of live nodes in them.
    pub forged_entries: u64,
    /// Messages replayed.
    pub replayed: u64,
    /// Of which chat messages.
    pub replayed_chats: u64,
    /// Bytes of hostile frames on the wire (length prefixes included).
    pub bytes: u64,
    /// Invented addresses drawn.
    pub invented_addresses: usize,
    /// What the honest nodes counted (summed over their lives).
    pub honest: HonestStats,
    /// Largest member table at an honest node.
    pub honest_peak_members: usize,
    /// The member-table bound.
    pub max_members: usize,
    /// Dials by honest nodes to invented addresses.
    pub ghost_dials: u64,
    /// Most dials by one honest life to one invented address while it was
    /// in that life's roster.
    pub ghost_dials_listed_max: u32,
    /// Most dials by one honest life to invented addresses that were not
    /// in its roster (reconnect probes).
    pub ghost_probes_max: u32,
    /// Invented addresses in honest rosters at the end (sum over nodes).
    pub ghosts_listed_at_end: u64,
    /// Dials refused at the handshake: one end lacked the cluster key.
    pub refused_handshakes: u64,
    /// Of which dials by the nodes that lacked it.
    pub strangers_refused: u64,
}

/// The honest nodes' counters of refused input.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct HonestStats {
    /// Payloads that did not decode.
    pub malformed: u64,
    /// Frames over the size limit.
    pub oversized: u64,
    /// Messages that made no sense where they came.
    pub unexpected: u64,
    /// Chat copies that arrived again.
    pub duplicates: u64,
    /// New members refused for a full table.
    pub members_refused: u64,
    /// Peer-list entries over the per-list limit.
    pub peer_list_truncated: u64,
    /// Accusations refuted.
    pub refutations: u64,
    /// Connections refused for lack of slots.
    pub conns_refused: u64,
}

impl HonestStats {
    /// Adds one life's counters.
    pub fn add(&mut self, s: &gossip_chat::Stats) {
        self.malformed += s.malformed;
        self.oversized += s.oversized;
        self.unexpected += s.unexpected;
        self.duplicates += s.duplicates;
        self.members_refused += s.members_refused;
        self.peer_list_truncated += s.peer_list_truncated;
        self.refutations += s.refutations;
        self.conns_refused += s.conns_refused;
    }
}
