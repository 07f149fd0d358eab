//! A hostile neighbourhood around one node: connections opening and
//! closing, forged and replayed messages, raw garbage frames, time jumps
//! (forwards and backwards) and local commands, in any order.
//!
//! Addresses, incarnations and seqs come from small universes so that
//! messages collide with each other and with the node itself. After every
//! step the node's tables must be within their bounds, no chat may be
//! delivered twice, each stream must be delivered in increasing order,
//! and every member entry the node sends (in peer lists, goodbyes and
//! hellos) must carry its member's signature.

#![no_main]

use arbitrary::Arbitrary;
use gossip_chat::{
    Accusation, Busy, ByeReason, Chat, Config, ConnId, Digest, Duration, Event, Hello, History, Id,
    Input, Instant, MemberState, MemberUpdate, Message, MsgId, Node, NodeKey, Output, Proof, Sync,
    PROTOCOL_VERSION,
};
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

/// Addresses 10.0.0.0..ADDRS; the node under test is 10.0.0.0.
const ADDRS: u8 = 6;
const CONNS: u8 = 6;

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i % ADDRS], 7000))
}

/// The id of the node at `addr(i)`, as `Identity::new` derives it.
fn id(i: u8) -> Id {
    Id::of_addr(addr(i))
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Num {
    Small(u8),
    Max,
    MaxMinusOne,
    Any(u64),
}

impl Num {
    fn get(self) -> u64 {
        match self {
            Num::Small(n) => u64::from(n % 8),
            Num::Max => u64::MAX,
            Num::MaxMinusOne => u64::MAX - 1,
            Num::Any(n) => n,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Key {
    addr: u8,
    incarnation: Num,
}

impl Key {
    fn get(self) -> NodeKey {
        NodeKey {
            id: id(self.addr),
            incarnation: self.incarnation.get(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum State {
    Alive,
    Suspect,
    Dead,
    Left,
}

impl State {
    fn get(self) -> MemberState {
        match self {
            State::Alive => MemberState::Alive,
            State::Suspect => MemberState::Suspect,
            State::Dead => MemberState::Dead,
            State::Left => MemberState::Left,
        }
    }
}

/// How the proof of a member entry or a hello is made (see
/// [`Proof::sign`]): the member's own signature over its life, version,
/// address and name (its departure, for `Left`), or a forgery.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum FProof {
    /// Signed by the member (the key `Identity::new` derives from the
    /// address its id is of), so that it gets past verification.
    Genuine,
    /// Signed by the member with the other departure flag: an alive claim
    /// passed off as a departure, or the other way round.
    Flipped,
    /// Signed by the key of another address (the member's own if the
    /// address is its own).
    OtherKey(u8),
    /// No proof at all.
    None,
    /// Arbitrary key and signature bytes.
    Bytes([u8; 32], [u8; 64]),
}

impl FProof {
    /// The proof of the claim of `k`'s member about itself.
    fn get(self, k: &Key, version: u32, addr: SocketAddr, name: &str, left: bool) -> Proof {
        let node = k.get();
        let sign =
            |by: u8, left: bool| Proof::sign(&signer(by).key, node, version, addr, name, left);
        match self {
            FProof::Genuine => sign(k.addr, left),
            FProof::Flipped => sign(k.addr, !left),
            FProof::OtherKey(other) => sign(other, left),
            FProof::None => Proof::none(),
            FProof::Bytes(key, sig) => Proof {
                key,
                sig: ed25519_dalek::Signature::from_bytes(&sig),
            },
        }
    }
}

/// One peer-list entry: the member and life, version, state, age, accuser
/// (signed by the key of that address, for that life and version) and how
/// its proof is made.
type FEntry = (Key, u32, State, u32, Option<u8>, FProof);

#[derive(Arbitrary, Debug, Clone)]
struct FChat {
    origin: Key,
    seq: Num,
    name_len: u16,
    text_len: u16,
    sent_ms: u64,
    /// Signed by its author (the key `Identity::new` derives from the
    /// origin's address), so that it gets past verification; otherwise
    /// forged.
    genuine: bool,
    forgery: Forgery,
}

/// How a chat that is not its author's is made.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Forgery {
    /// Signed by its author, then its text changed.
    Altered,
    /// Signed by the key of another address, which it carries (the
    /// author's own if the address is the origin's).
    OtherKey(u8),
    /// Carries its author's public key with another address's signature.
    Borrowed(u8),
    /// Arbitrary key and signature bytes.
    Bytes([u8; 32], [u8; 64]),
}

/// The key the node at `addr(i)` signs with.
fn signer(i: u8) -> gossip_chat::Identity {
    gossip_chat::Identity::new(addr(i), 0, "")
}

impl FChat {
    fn get(&self) -> Chat {
        let id = MsgId {
            origin: self.origin.get(),
            seq: self.seq.get(),
        };
        let name: Arc<str> = Arc::from("n".repeat(usize::from(self.name_len % 300)));
        let text: Arc<str> = Arc::from("t".repeat(usize::from(self.text_len % 1100)));
        let author = signer(self.origin.addr);
        let sign = |by: &gossip_chat::Identity, text: Arc<str>| {
            Chat::signed(&by.key, id, name.clone(), text, self.sent_ms)
        };
        if self.genuine {
            return sign(&author, text);
        }
        match self.forgery {
            Forgery::Altered => {
                let mut c = sign(&author, text);
                c.text = Arc::from(format!("{}!", c.text));
                c
            }
            Forgery::OtherKey(other) => sign(&signer(other), text),
            Forgery::Borrowed(other) => {
                let mut c = sign(&signer(other), text);
                c.key = author.key.verifying_key().to_bytes();
                c
            }
            Forgery::Bytes(key, sig) => {
                let mut c = sign(&author, text);
                c.key = key;
                c.sig = ed25519_dalek::Signature::from_bytes(&sig);
                c
            }
        }
    }
}

/// A handshake: the speaker, its degree, whether its protocol version is
/// wrong, its member version, and how its proof is made.
type FHello = (Key, u16, bool, u32, FProof);

#[derive(Arbitrary, Debug, Clone)]
enum FMsg {
    Join(FHello),
    Hello(FHello),
    PeerList(bool, Vec<FEntry>),
    Ping(u32),
    Pong(u32),
    ProbeReq(u32, u8),
    ProbeAck(u32, u8),
    ProbeNack(u32, u8),
    Heartbeat(u32),
    Busy(u32, Vec<u8>),
    Chat(FChat),
    /// A goodbye: the leaver's entry (mostly `Left`), version and proof.
    Leave(Key, u32, State, FProof),
    Bye(bool),
    Sync(u64, u64, u64),
    Digest(Vec<(Key, Num)>, bool),
    History(Vec<FChat>, Option<Vec<(Key, Num)>>),
    Buckets(Vec<u32>),
    Prints(u64, Vec<u32>),
    Want(Vec<u32>),
    RosterPart(u64, Vec<FEntry>),
}

impl FMsg {
    fn get(&self) -> Message {
        let hello = |(k, degree, bad_version, member_version, proof): &FHello| Hello {
            version: if *bad_version {
                PROTOCOL_VERSION.wrapping_add(1)
            } else {
                PROTOCOL_VERSION
            },
            node: k.get(),
            addr: addr(k.addr),
            name: Arc::from("peer"),
            member_version: *member_version,
            proof: proof.get(k, *member_version, addr(k.addr), "peer", false),
            degree: *degree,
            members_hash: 0,
            chat_hash: 0,
            chat_mark: 0,
            beacon: None,
            bridge: false,
            shortcut: false,
        };
        let digest = |d: &[(Key, Num)]| d.iter().map(|(k, n)| (k.get(), n.get())).collect();
        let entry = |k: &Key, version: u32, s: State, proof: FProof| {
            let state = s.get();
            let left = state == MemberState::Left;
            MemberUpdate {
                node: k.get(),
                addr: addr(k.addr),
                version,
                age_secs: 0,
                accuser: None,
                state,
                name: Arc::from("m"),
                proof: proof.get(k, version, addr(k.addr), "m", left),
            }
        };
        let updates = |members: &[FEntry]| -> Vec<MemberUpdate> {
            members
                .iter()
                .map(|(k, version, s, age_secs, accuser, proof)| MemberUpdate {
                    age_secs: *age_secs,
                    accuser: accuser.map(|a| Accusation::sign(&signer(a).key, k.get(), *version)),
                    ..entry(k, *version, *s, *proof)
                })
                .collect()
        };
        match self {
            FMsg::Join(h) => Message::Join(hello(h)),
            FMsg::Hello(h) => Message::Hello(hello(h)),
            FMsg::PeerList(full, members) => Message::PeerList {
                full: *full,
                members: updates(members),
            },
            FMsg::Buckets(b) => Message::Buckets(b.clone()),
            FMsg::Prints(buckets, prints) => Message::Prints {
                buckets: *buckets,
                prints: prints.clone(),
            },
            FMsg::Want(w) => Message::Want(w.clone()),
            FMsg::RosterPart(buckets, members) => Message::RosterPart {
                buckets: *buckets,
                members: updates(members),
            },
            FMsg::Ping(n) => Message::Ping(*n),
            FMsg::Pong(n) => Message::Pong(*n),
            FMsg::ProbeReq(nonce, t) => Message::ProbeReq {
                nonce: *nonce,
                target: id(*t),
            },
            FMsg::ProbeAck(nonce, t) => Message::ProbeAck {
                nonce: *nonce,
                target: id(*t),
            },
            FMsg::ProbeNack(nonce, t) => Message::ProbeNack {
                nonce: *nonce,
                target: id(*t),
            },
            FMsg::Heartbeat(n) => Message::Heartbeat(*n),
            FMsg::Busy(retry_ms, others) => Message::Busy(Busy {
                retry_ms: *retry_ms,
                others: others.iter().map(|a| addr(*a)).collect(),
            }),
            FMsg::Chat(c) => Message::Chat(c.get()),
            FMsg::Leave(k, version, s, proof) => {
                Message::Leave(Box::new(entry(k, *version, *s, *proof)))
            }
            FMsg::Bye(full) => Message::Bye(if *full {
                ByeReason::Full
            } else {
                ByeReason::Duplicate
            }),
            FMsg::Sync(m, c, k) => Message::Sync(Sync {
                members_hash: *m,
                chat_hash: *c,
                chat_mark: *k,
            }),
            FMsg::Digest(d, reply) => Message::Digest(Digest {
                entries: digest(d),
                reply: *reply,
            }),
            FMsg::History(chats, base) => Message::History(History {
                chats: chats.iter().map(FChat::get).collect(),
                baseline: base.as_deref().map(digest),
            }),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Step {
    Connected { conn: u8, dialed: Option<u8> },
    ConnectFailed { addr: u8 },
    Disconnected { conn: u8 },
    Message { conn: u8, msg: FMsg },
    Frame { conn: u8, payload: Vec<u8> },
    Wait { ms: u16 },
    WaitLong { secs: u16 },
    Backwards { ms: u16 },
    Timeout,
    Join { addr: u8 },
    Send { len: u16 },
    Leave,
}

#[derive(Arbitrary, Debug)]
struct Run {
    seed: u64,
    incarnation: u8,
    steps: Vec<Step>,
}

fn config() -> Config {
    Config {
        max_connections: 2,
        max_handshaking: 2,
        max_members: 4,
        max_peer_list: 8,
        history_max: 8,
        newcomer_history: 4,
        repair_batch: 4,
        max_holdback: 3,
        max_frame: 4096,
        max_text_len: 1024,
        gap_timeout: Duration::from_secs(10),
        ..Config::testing()
    }
}

/// The member entries `msg` carries: its peer lists' entries, a goodbye's,
/// and a hello's own.
fn entries_in(msg: &Message) -> Vec<MemberUpdate> {
    match msg {
        Message::PeerList { members, .. } | Message::RosterPart { members, .. } => members.clone(),
        Message::Leave(u) => vec![(**u).clone()],
        Message::Hello(h) | Message::Join(h) => vec![h.entry()],
        _ => Vec::new(),
    }
}

/// Keeps the chats `input` brings (in a message or a frame), to check what
/// the node delivers.
fn note_chats(fed: &mut BTreeMap<MsgId, Vec<Chat>>, input: &Input, cfg: &Config) {
    let decoded;
    let msg = match input {
        Input::Message { msg, .. } => msg,
        Input::Frame { payload, .. } => {
            match gossip_chat::wire::decode_payload(payload, cfg.max_frame) {
                Ok(m) => {
                    decoded = m;
                    &decoded
                }
                Err(_) => return,
            }
        }
        _ => return,
    };
    let chats = match msg {
        Message::Chat(c) => std::slice::from_ref(c),
        Message::History(h) => &h.chats[..],
        _ => return,
    };
    for c in chats {
        fed.entry(c.id).or_default().push(c.clone());
    }
}

/// A stream idle for `tombstone_ttl` may be forgotten, and a replay of it
/// is then new to the node: the one case where the protocol delivers an id
/// again (a replay carries its author's signature, and nothing dates it).
fn forget_if_idle(
    frontier: &mut BTreeMap<NodeKey, (u64, Instant)>,
    delivered: &mut BTreeSet<MsgId>,
    origin: NodeKey,
    now: Instant,
    cfg: &Config,
) {
    if let Some(&(_, at)) = frontier.get(&origin) {
        if now - at >= cfg.tombstone_ttl {
            frontier.remove(&origin);
            delivered.retain(|id| id.origin != origin);
        }
    }
}

/// A stream of a sender the node never knew as a member may be evicted to
/// make room (counted in `streams_evicted`); a replay of it is then new to
/// the node. Members' streams never are.
fn forget_if_evicted(
    node: &Node,
    frontier: &mut BTreeMap<NodeKey, (u64, Instant)>,
    delivered: &mut BTreeSet<MsgId>,
    origin: NodeKey,
    evicted: &mut u64,
) {
    if *evicted > 0 && !node.roster().any(|(k, _)| k == origin) {
        *evicted -= 1;
        frontier.remove(&origin);
        delivered.retain(|id| id.origin != origin);
    }
}

fuzz_target!(|run: Run| {
    let cfg = config();
    let mut now = Instant::from_millis(1_000);
    let mut node = Node::new(
        cfg.clone(),
        gossip_chat::Identity::new(addr(0), u64::from(run.incarnation), "me"),
        run.seed,
        now,
    )
    .expect("valid config");
    let mut out = Vec::new();
    let mut delivered: BTreeSet<MsgId> = BTreeSet::new();
    let mut frontier: BTreeMap<NodeKey, (u64, Instant)> = BTreeMap::new();
    let mut evictions = 0;
    let mut fed: BTreeMap<MsgId, Vec<Chat>> = BTreeMap::new();
    for step in run.steps.iter().take(400) {
        let input = match step {
            Step::Connected { conn, dialed } => Input::Connected {
                conn: ConnId(u64::from(conn % CONNS)),
                dialed: dialed.map(addr),
                peer: None,
            },
            Step::ConnectFailed { addr: a } => Input::ConnectFailed { addr: addr(*a) },
            Step::Disconnected { conn } => Input::Disconnected {
                conn: ConnId(u64::from(conn % CONNS)),
            },
            Step::Message { conn, msg } => Input::Message {
                conn: ConnId(u64::from(conn % CONNS)),
                msg: msg.get(),
            },
            Step::Frame { conn, payload } => Input::Frame {
                conn: ConnId(u64::from(conn % CONNS)),
                payload: payload.clone(),
            },
            Step::Wait { ms } => {
                now += Duration::from_millis(u64::from(*ms));
                Input::Timeout
            }
            Step::WaitLong { secs } => {
                now += Duration::from_secs(u64::from(*secs));
                Input::Timeout
            }
            Step::Backwards { ms } => {
                let back = Instant::from_millis(now.as_millis().saturating_sub(u64::from(*ms)));
                node.handle(back, Input::Timeout, &mut out);
                Input::Timeout
            }
            Step::Timeout => match node.poll_timeout() {
                Some(t) => {
                    now = now.max(t);
                    Input::Timeout
                }
                None => Input::Timeout,
            },
            Step::Join { addr: a } => Input::Join { addr: addr(*a) },
            Step::Send { len } => Input::Send {
                text: "x".repeat(usize::from(len % 1100)),
                wall_ms: u64::from(*len),
            },
            Step::Leave => Input::Leave,
        };
        note_chats(&mut fed, &input, &cfg);
        let timeout = matches!(input, Input::Timeout);
        node.handle(now, input, &mut out);
        if timeout {
            let next = node.poll_timeout();
            assert!(
                next.is_none_or(|t| t > now),
                "deadline {next:?} not after {now}"
            );
        }
        // Evictions this step may account for, one origin each.
        let mut evicted = node.stats().streams_evicted - evictions;
        evictions = node.stats().streams_evicted;
        for o in out.drain(..) {
            match o {
                Output::Event(Event::Chat {
                    id,
                    name,
                    text,
                    sent_ms,
                    ..
                }) => {
                    // What others wrote is delivered only as they signed
                    // it (this node's own messages are its user's).
                    let signed = fed.get(&id).is_some_and(|chats| {
                        chats.iter().any(|c| {
                            (&c.name, &c.text, c.sent_ms) == (&name, &text, sent_ms)
                                && c.authentic()
                        })
                    });
                    assert!(
                        id.origin == node.key() || signed,
                        "chat {id:?} delivered as its author never signed it"
                    );
                    forget_if_idle(&mut frontier, &mut delivered, id.origin, now, &cfg);
                    if delivered.contains(&id) {
                        forget_if_evicted(
                            &node,
                            &mut frontier,
                            &mut delivered,
                            id.origin,
                            &mut evicted,
                        );
                    }
                    assert!(delivered.insert(id), "chat {id:?} delivered twice");
                    let (f, at) = frontier.entry(id.origin).or_insert((0, now));
                    assert!(
                        id.seq > *f,
                        "stream {:?} went back to {}",
                        id.origin,
                        id.seq
                    );
                    (*f, *at) = (id.seq, now);
                }
                Output::Event(Event::Gap {
                    origin,
                    first,
                    last,
                    ..
                }) => {
                    forget_if_idle(&mut frontier, &mut delivered, origin, now, &cfg);
                    if frontier.get(&origin).is_some_and(|(f, _)| first <= *f) {
                        forget_if_evicted(
                            &node,
                            &mut frontier,
                            &mut delivered,
                            origin,
                            &mut evicted,
                        );
                    }
                    assert!(first <= last, "empty gap");
                    let (f, at) = frontier.entry(origin).or_insert((0, now));
                    assert!(first > *f, "gap {first}..={last} behind {f}");
                    (*f, *at) = (last, now);
                }
                Output::Send { msg, .. } => {
                    assert!(
                        gossip_chat::wire::payload_len(&msg) <= cfg.max_frame,
                        "node sent an oversized {} frame",
                        msg.kind()
                    );
                    // Nothing goes out about a member that the member did
                    // not sign: whatever came in forged stopped here.
                    for u in entries_in(&msg) {
                        assert!(u.proven(), "node sent an entry never signed: {u:?}");
                    }
                }
                _ => {}
            }
        }
        let t = node.table_sizes();
        assert!(t.members <= cfg.max_members, "{t:?}");
        assert!(t.neighbours <= cfg.max_connections, "{t:?}");
        assert!(t.neighbours <= t.connections, "{t:?}");
        assert!(t.accepting <= cfg.max_handshaking, "{t:?}");
        assert!(
            t.connections - t.neighbours - t.accepting <= cfg.max_members + usize::from(ADDRS),
            "{t:?}"
        );
        assert!(t.streams <= 2 * cfg.max_members, "{t:?}");
        assert!(t.held <= cfg.max_holdback, "{t:?}");
        assert!(t.history <= cfg.history_max, "{t:?}");
        if node.has_left() {
            assert_eq!(node.poll_timeout(), None);
        } else {
            assert!(node.poll_timeout().is_some());
        }
    }
});
