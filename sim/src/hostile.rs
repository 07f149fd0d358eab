//! Misbehaving nodes: what a hostile node injects on its links besides what
//! its own (honest) core sends, and the tally of it.
//!
//! A hostile node keeps running its core, so it stays connected and keeps
//! learning. The world asks an [`Attack`] for one [`Injection`] per tick and
//! carries it out on one of the node's handshaken connections.

use crate::addr::addr_of;
use crate::random::below;
use crate::scenario::Mode;
use gossip_chat::{
    wire, Accusation, Chat, Duration, Hello, History, Identity, Instant, MemberState, MemberUpdate,
    Message, MsgId, NodeKey, Proof, PROTOCOL_VERSION,
};
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
/// Most forged chats in one forged repair batch.
const FORGED_BATCH_MAX: usize = 4;
/// Longest forged text, in bytes.
const FORGED_TEXT_MAX: usize = 64;
/// The largest seq a node takes in (its `MAX_SEQ` is 2^62, refused).
pub const TOP_SEQ: u64 = (1 << 62) - 1;
/// The largest incarnation and version a node takes in (one under the
/// ceilings): a forged entry there would mute the member if it were taken.
pub const TOP_INCARNATION: u64 = (1 << 62) - 1;
/// See [`TOP_INCARNATION`].
pub const TOP_VERSION: u32 = (1 << 30) - 1;
/// Most forged entries in one `forge-state` peer list.
const STATE_FORGERIES_MAX: usize = 4;
/// A far seq is at least this far past the frontier.
const FAR_GAP: u64 = 1 << 10;

/// A live honest member a hostile node can name: in a forged death, a
/// forged chat or an impostor hello.
#[derive(Clone, Debug)]
pub struct Victim {
    /// Its current life.
    pub key: NodeKey,
    /// Its own signed entry, as it tells others (a hostile node has it
    /// from its hello or its peer lists).
    pub entry: MemberUpdate,
    /// Its display name.
    pub name: Arc<str>,
    /// Its slot (it listens on [`addr_of`] of it).
    pub slot: u32,
}

/// Who the hostile node is now, for what it signs and says as itself.
#[derive(Clone, Debug)]
pub struct Me {
    /// Its current life.
    pub key: NodeKey,
    /// Its own signed entry.
    pub entry: MemberUpdate,
    /// Its display name.
    pub name: Arc<str>,
    /// Its slot.
    pub slot: u32,
    /// The wall clock in milliseconds, for the time a forged chat claims.
    pub wall_ms: u64,
}

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
    /// Chats claiming to be live honest members', signed by the hostile
    /// node: one `Chat`, or a repair batch (`History`) of them.
    Forged {
        /// The chat or the batch.
        msg: Message,
        /// Forged chats in it.
        chats: usize,
        /// Of which at a seq far past the member's frontier.
        far: usize,
    },
    /// A peer list of forged state of live honest members (`forge-state`).
    State {
        /// The peer list.
        msg: Message,
        /// The member lives it forges state of.
        forged: Vec<NodeKey>,
    },
    /// A hello to send on a new connection to an honest node: naming
    /// `victim`'s id (while the handshake proves the hostile node's), or
    /// the hostile node's own id with `victim`'s address.
    Impostor {
        /// The hello.
        hello: Hello,
        /// The member it names or whose address it gives.
        victim: u32,
        /// Whether it names the victim's id (else the hostile node's own).
        other_id: bool,
    },
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
    /// The highest seq of each stream the node delivered (what it
    /// believes each member's last message is): forgeries claim the next.
    frontier: BTreeMap<NodeKey, u64>,
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
                    // An invented member is the hostile node's own: it
                    // holds its key, and signs its entry.
                    let ghost =
                        Identity::new(addr, 1 + below(rng, 3) as u64, format!("ghost{}", g + 1));
                    let node = NodeKey {
                        id: ghost.id(),
                        incarnation: ghost.incarnation,
                    };
                    let proof = Proof::sign(&ghost.key, node, 0, addr, &ghost.name, false);
                    pool.push(MemberUpdate {
                        node,
                        addr,
                        version: 0,
                        state: MemberState::Alive,
                        name: Arc::from(ghost.name),
                        age_secs: 0,
                        accuser: None,
                        proof,
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
            frontier: BTreeMap::new(),
        }
    }

    /// The node delivered chat `id` (forgeries claim what follows).
    pub fn delivered(&mut self, id: MsgId) {
        let f = self.frontier.entry(id.origin).or_insert(0);
        *f = (*f).max(id.seq);
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

    /// The next hostile frame of the node `me`. `victims` lists the live
    /// honest nodes (called only for a mode that names them); `max_frame`
    /// is the receivers' limit. `None` when the drawn mode has nothing to
    /// send yet (no message recorded for replay, no live honest node).
    pub fn next(
        &mut self,
        me: &Me,
        victims: impl FnOnce() -> Vec<Victim>,
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
                    let Victim { key, entry, .. } = &victims[below(rng, victims.len())];
                    if forged.contains(key) {
                        continue;
                    }
                    // A death names the victim's life and version, with the
                    // proof its entry carries (any member can accuse), and
                    // is the hostile node's own accusation: half signed as
                    // its own, half passed off as another member's (its
                    // key, the hostile node's signature). A departure would
                    // need the victim's own signature, so the hostile node
                    // signs it itself.
                    let forgery = if below(rng, 2) == 0 {
                        let mut accusation = Accusation::sign(
                            &Identity::new(addr_of(me.slot), 1, "").key,
                            entry.node,
                            entry.version,
                        );
                        if below(rng, 2) == 0 {
                            let other = &victims[below(rng, victims.len())];
                            accusation.key = other.entry.proof.key;
                        }
                        MemberUpdate {
                            state: MemberState::Dead,
                            accuser: Some(accusation),
                            ..entry.clone()
                        }
                    } else {
                        MemberUpdate {
                            state: MemberState::Left,
                            proof: Proof::sign(
                                &Identity::new(addr_of(me.slot), 1, "").key,
                                entry.node,
                                entry.version,
                                entry.addr,
                                &entry.name,
                                true,
                            ),
                            ..entry.clone()
                        }
                    };
                    let at = below(rng, members.len() + 1);
                    members.insert(at, forgery);
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
            Mode::ForgeChat => {
                let victims = victims();
                if victims.is_empty() {
                    return None;
                }
                // A quarter of the time a repair batch of forgeries (of
                // one or more members, each stream in order).
                let batch = below(rng, 4) == 0;
                let n = if batch {
                    1 + below(rng, FORGED_BATCH_MAX)
                } else {
                    1
                };
                let mut next: BTreeMap<NodeKey, u64> = BTreeMap::new();
                let mut chats = Vec::new();
                for _ in 0..n {
                    let v = &victims[below(rng, victims.len())];
                    let front = self.frontier.get(&v.key).copied().unwrap_or(0);
                    let seq = next.entry(v.key).or_insert(front);
                    *seq += 1;
                    chats.push(forge(me, v, *seq, rng));
                }
                chats.sort_by_key(|c| (c.id.origin, c.id.seq));
                let msg = if batch {
                    Message::History(History {
                        chats,
                        baseline: None,
                    })
                } else {
                    Message::Chat(chats.pop()?)
                };
                Some(Injection::Forged {
                    msg,
                    chats: n,
                    far: 0,
                })
            }
            Mode::FarSeq => {
                let victims = victims();
                if victims.is_empty() {
                    return None;
                }
                let v = &victims[below(rng, victims.len())];
                let front = self.frontier.get(&v.key).copied().unwrap_or(0);
                let seq = if below(rng, 2) == 0 {
                    TOP_SEQ
                } else {
                    let from = front.saturating_add(FAR_GAP).min(TOP_SEQ);
                    from + below(rng, (TOP_SEQ - from) as usize + 1) as u64
                };
                Some(Injection::Forged {
                    msg: Message::Chat(forge(me, v, seq, rng)),
                    chats: 1,
                    far: 1,
                })
            }
            Mode::ForgeState => {
                let victims = victims();
                if victims.is_empty() {
                    return None;
                }
                let mine = Identity::new(addr_of(me.slot), 1, "").key;
                let n = 1 + below(rng, STATE_FORGERIES_MAX);
                let mut members = Vec::with_capacity(n);
                let mut forged = Vec::with_capacity(n);
                for _ in 0..n {
                    let v = &victims[below(rng, victims.len())];
                    let mut u = v.entry.clone();
                    let kind = below(rng, 5);
                    match kind {
                        // A later life, up to just under the ceiling.
                        0 => {
                            u.node.incarnation = if below(rng, 2) == 0 {
                                TOP_INCARNATION
                            } else {
                                u.node.incarnation + 1 + below(rng, 1 << 20) as u64
                            };
                            u.version = 0;
                        }
                        // A later version of this life, up to the ceiling.
                        1 => {
                            u.version = if below(rng, 2) == 0 {
                                TOP_VERSION
                            } else {
                                u.version + 1 + below(rng, 16) as u32
                            };
                        }
                        // Another address or name, a version on.
                        2 => {
                            u.version += 1;
                            if below(rng, 2) == 0 {
                                u.addr = addr_of(me.slot);
                            } else {
                                u.name = Arc::from(format!("{}-forged", u.name));
                            }
                        }
                        // Its departure.
                        3 => u.state = MemberState::Left,
                        // A death at a version it never signed (the proof
                        // is of its current one), the hostile node's own
                        // accusation.
                        _ => {
                            u.state = MemberState::Dead;
                            u.version += 1 + below(rng, 16) as u32;
                            u.accuser = Some(Accusation::sign(&mine, u.node, u.version));
                        }
                    }
                    if kind < 4 {
                        // Signed by the hostile node: half with its own key,
                        // half under the member's public key.
                        u.proof = Proof::sign(
                            &mine,
                            u.node,
                            u.version,
                            u.addr,
                            &u.name,
                            u.state == MemberState::Left,
                        );
                        if below(rng, 2) == 0 {
                            u.proof.key = v.entry.proof.key;
                        }
                    }
                    forged.push(u.node);
                    members.push(u);
                }
                Some(Injection::State {
                    msg: Message::PeerList {
                        full: below(rng, 2) == 0,
                        members,
                    },
                    forged,
                })
            }
            Mode::Impersonate => {
                let victims = victims();
                let others: Vec<&Victim> = victims.iter().filter(|v| v.slot != me.slot).collect();
                if others.is_empty() {
                    return None;
                }
                let v = others[below(rng, others.len())];
                // Half the time the victim's id (the handshake proved the
                // hostile node's), half its own id at the victim's address.
                let other_id = below(rng, 2) == 0;
                // Either way the proof is a real one: the victim's own (as
                // its hello carried it), or the hostile node's own.
                let (node, name, entry) = if other_id {
                    (v.key, v.name.clone(), &v.entry)
                } else {
                    (me.key, me.name.clone(), &me.entry)
                };
                let hello = Hello {
                    version: PROTOCOL_VERSION,
                    node,
                    addr: addr_of(v.slot),
                    name,
                    member_version: entry.version,
                    proof: entry.proof,
                    degree: below(rng, 9) as u16,
                    members_hash: rng.next_u64(),
                    chat_hash: rng.next_u64(),
                    chat_mark: 0,
                    beacon: None,
                    bridge: false,
                    shortcut: false,
                };
                Some(Injection::Impostor {
                    hello,
                    victim: v.slot,
                    other_id,
                })
            }
        }
    }
}

/// A chat claiming to be `v`'s message `seq`, with a random text, signed by
/// the hostile node `me`: half the time it carries `me`'s key (the key is
/// not the author's), half the time `v`'s real public key (the signature
/// is not that key's).
fn forge(me: &Me, v: &Victim, seq: u64, rng: &mut ChaCha8Rng) -> Chat {
    let len = 1 + below(rng, FORGED_TEXT_MAX);
    let text: String = (0..len)
        .map(|_| (b'a' + below(rng, 26) as u8) as char)
        .collect();
    let id = MsgId { origin: v.key, seq };
    let mine = Identity::new(addr_of(me.slot), me.key.incarnation, &*me.name);
    let mut chat = Chat::signed(&mine.key, id, v.name.clone(), Arc::from(text), me.wall_ms);
    if below(rng, 2) == 0 {
        let theirs = Identity::new(addr_of(v.slot), v.key.incarnation, &*v.name);
        chat.key = theirs.key.verifying_key().to_bytes();
    }
    chat
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
    /// Frames of forged chats sent (`forge-chat`, `far-seq`): single
    /// chats and repair batches.
    pub forged_frames: u64,
    /// Forged chats in them.
    pub forged_chats: u64,
    /// Of which inside forged repair batches.
    pub forged_in_batches: u64,
    /// Of which at a seq far past the member's frontier (`far-seq`).
    pub far_seqs: u64,
    /// Impostor hellos sent on new connections (`impersonate`).
    pub impostor_hellos: u64,
    /// Of which naming another member's id (the rest: the hostile node's
    /// own id with another member's address).
    pub impostor_other_ids: u64,
    /// Impostor dials that found no connection (the target down or cut
    /// off): no hello went out.
    pub impostor_dials_failed: u64,
    /// Peer lists of forged member state sent (`forge-state`).
    pub state_lists: u64,
    /// Forged entries in them.
    pub state_forgeries: u64,
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
    /// Chats dropped because their author did not sign them.
    pub forged: u64,
    /// Hellos closed for naming another id than the handshake proved.
    pub impostors: u64,
    /// Member entries and hellos dropped because the member did not sign
    /// them.
    pub forged_state: u64,
    /// Accusations taken but not counted: their accuser's kept being
    /// refuted.
    pub accusations_limited: u64,
    /// Times an accuser went past its allowance of refuted accusations.
    pub accusers_limited: u64,
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
        self.forged += s.forged;
        self.impostors += s.impostors;
        self.forged_state += s.forged_state;
        self.accusations_limited += s.accusations_limited;
        self.accusers_limited += s.accusers_limited;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::id_of;
    use gossip_chat::Id;
    use rand_core::SeedableRng;

    fn attack(modes: Vec<Mode>, rng: &mut ChaCha8Rng) -> Attack {
        Attack::new(modes, 20.0, Instant::MAX, 1, 8, &mut BTreeMap::new(), rng)
    }

    fn key(slot: u32, incarnation: u64) -> NodeKey {
        NodeKey {
            id: id_of(slot),
            incarnation,
        }
    }

    /// The signed own entry of the node in `slot`, in life `incarnation`.
    fn entry(slot: u32, incarnation: u64) -> MemberUpdate {
        let name = format!("n{slot}");
        let id = Identity::new(addr_of(slot), incarnation, name.clone());
        let node = key(slot, incarnation);
        assert_eq!(id.id(), node.id);
        MemberUpdate {
            node,
            addr: addr_of(slot),
            version: 0,
            state: MemberState::Alive,
            name: Arc::from(name.as_str()),
            age_secs: 0,
            accuser: None,
            proof: Proof::sign(&id.key, node, 0, addr_of(slot), &name, false),
        }
    }

    fn me() -> Me {
        Me {
            key: key(3, 1),
            entry: entry(3, 1),
            name: Arc::from("n3"),
            slot: 3,
            wall_ms: 1_700_000_000_000,
        }
    }

    fn victims() -> Vec<Victim> {
        (0..3)
            .map(|slot| Victim {
                key: key(slot, 2),
                entry: entry(slot, 2),
                name: Arc::from(format!("n{slot}")),
                slot,
            })
            .collect()
    }

    fn forged(inj: Option<Injection>) -> (Vec<Chat>, usize) {
        match inj {
            Some(Injection::Forged { msg, chats, far }) => {
                let list = match msg {
                    Message::Chat(c) => vec![c],
                    Message::History(h) => {
                        assert_eq!(h.baseline, None);
                        h.chats
                    }
                    other => panic!("not a chat: {other:?}"),
                };
                assert_eq!(list.len(), chats);
                (list, far)
            }
            other => panic!("not a forgery: {other:?}"),
        }
    }

    #[test]
    fn forged_state_is_never_the_members_own_word() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut a = attack(vec![Mode::ForgeState], &mut rng);
        let (mut ceiling, mut left, mut dead, mut moved, mut later) = (0, 0, 0, 0, 0);
        for _ in 0..300 {
            let Some(Injection::State { msg, forged }) = a.next(&me(), victims, 65536, &mut rng)
            else {
                panic!("not a forged state list");
            };
            let Message::PeerList { members, .. } = msg else {
                panic!("not a peer list");
            };
            assert_eq!(members.len(), forged.len());
            assert!((1..=STATE_FORGERIES_MAX).contains(&members.len()));
            for u in &members {
                assert!(!u.proven(), "{u:?}");
                let slot = crate::addr::slot_of_id(&u.node.id, 3).expect("a victim");
                let own = entry(slot, 2);
                ceiling +=
                    usize::from(u.node.incarnation == TOP_INCARNATION || u.version == TOP_VERSION);
                left += usize::from(u.state == MemberState::Left);
                dead += usize::from(u.state == MemberState::Dead);
                moved += usize::from(u.addr != own.addr || u.name != own.name);
                later += usize::from((u.node.incarnation, u.version) > (2, 0));
            }
        }
        for (what, n) in [
            ("ceiling", ceiling),
            ("left", left),
            ("dead", dead),
            ("moved", moved),
            ("later", later),
        ] {
            assert!(n > 20, "{what}: {n}");
        }
    }

    #[test]
    fn forged_chats_claim_a_members_next_seq_and_are_never_authentic() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut a = attack(vec![Mode::ForgeChat], &mut rng);
        for slot in 0..3 {
            a.delivered(MsgId {
                origin: key(slot, 2),
                seq: 10 + slot as u64,
            });
        }
        let (mut own_key, mut their_key, mut batches) = (0, 0, 0);
        for _ in 0..200 {
            let (chats, far) = forged(a.next(&me(), victims, 65536, &mut rng));
            assert_eq!(far, 0);
            batches += usize::from(chats.len() > 1);
            let mut next: BTreeMap<NodeKey, u64> = BTreeMap::new();
            for c in &chats {
                assert!(!c.authentic(), "{c:?}");
                let slot = crate::addr::slot_of_id(&c.id.origin.id, 3).unwrap();
                assert_eq!(c.id.origin.incarnation, 2);
                assert_eq!(&*c.name, format!("n{slot}"));
                // The member's next messages, in stream order.
                let seq = next.entry(c.id.origin).or_insert(10 + slot as u64);
                *seq += 1;
                assert_eq!(c.id.seq, *seq, "{c:?}");
                let theirs = Identity::new(addr_of(slot), 2, "").key;
                if c.key == theirs.verifying_key().to_bytes() {
                    their_key += 1;
                } else {
                    assert_eq!(Id::of_key(&c.key), id_of(3));
                    own_key += 1;
                }
            }
        }
        assert!(own_key > 50 && their_key > 50, "{own_key} {their_key}");
        assert!(batches > 20 && batches < 100, "{batches}");
    }

    #[test]
    fn far_seqs_are_far_past_the_frontier_and_within_what_a_node_takes() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut a = attack(vec![Mode::FarSeq], &mut rng);
        let mut top = 0;
        for _ in 0..100 {
            let (chats, far) = forged(a.next(&me(), victims, 65536, &mut rng));
            assert_eq!((chats.len(), far), (1, 1));
            let c = &chats[0];
            assert!(!c.authentic());
            assert!(c.id.seq > FAR_GAP && c.id.seq <= TOP_SEQ, "{}", c.id.seq);
            top += usize::from(c.id.seq == TOP_SEQ);
        }
        assert!(top > 25 && top < 75, "{top}");
        // Nobody to forge: nothing sent.
        assert!(a.next(&me(), Vec::new, 65536, &mut rng).is_none());
    }

    #[test]
    fn impostor_hellos_name_another_member_or_give_its_address() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut a = attack(vec![Mode::Impersonate], &mut rng);
        let mut other = 0;
        for _ in 0..100 {
            let Some(Injection::Impostor {
                hello,
                victim,
                other_id,
            }) = a.next(&me(), victims, 65536, &mut rng)
            else {
                panic!("not an impostor hello");
            };
            assert!(victim < 3);
            assert_eq!(hello.addr, addr_of(victim));
            assert_eq!(hello.version, PROTOCOL_VERSION);
            if other_id {
                other += 1;
                assert_eq!(hello.node, key(victim, 2));
            } else {
                assert_eq!(hello.node, me().key);
            }
        }
        assert!(other > 25 && other < 75, "{other}");
    }
}
