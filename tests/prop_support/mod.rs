//! Proptest strategies for protocol v2 messages, shared by the property
//! tests.
//!
//! Every strategy is built from smaller ones for addresses, ids,
//! incarnations and seqs, so the wire tests can draw from the whole value
//! space while the node tests draw from a small universe of addresses, ids
//! and numbers where messages collide with each other and with the node
//! under test.

#![allow(dead_code)]

use ed25519_dalek::{Signature, SigningKey};
use gossip_chat::{
    Accusation, Beacon, ByeReason, Chat, Digest, Hello, History, Id, MemberState, MemberUpdate,
    Message, MsgId, NodeKey, Proof, Sync, PROTOCOL_VERSION,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;

/// Cases per property: 256, or `PROPTEST_CASES` to go deeper.
pub fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        // Shrunk failures are pinned as named regression tests instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The value spaces messages are drawn from.
#[derive(Clone)]
pub struct Universe {
    pub addr: BoxedStrategy<SocketAddr>,
    /// Member ids. A member's address and id are drawn apart (see
    /// [`Universe::located`]).
    pub id: BoxedStrategy<Id>,
    pub incarnation: BoxedStrategy<u64>,
    /// Refutation versions within a life (member entries, hellos).
    pub version: BoxedStrategy<u32>,
    pub seq: BoxedStrategy<u64>,
    pub name: BoxedStrategy<Arc<str>>,
    pub text: BoxedStrategy<Arc<str>>,
    /// Longest vectors (peer lists, digests, histories).
    pub max_len: usize,
    /// Whether histories may carry a newcomer baseline.
    pub baseline: bool,
    /// Members whose chats and state are signed, by id: a chat, member
    /// entry or hello of one of them is mostly signed by its key,
    /// sometimes forged (see [`Forgery`]). One of any other id carries
    /// arbitrary key and signature bytes.
    pub signers: BTreeMap<Id, SigningKey>,
}

/// How a chat, or the proof of a member entry or hello, of a member with a
/// key (see [`Universe::signers`]) is made.
#[derive(Clone, Debug)]
pub enum Forgery {
    /// Signed by its author.
    Genuine,
    /// Signed by its author, then its text changed.
    Altered,
    /// Signed by another key, which it carries (not the author's).
    OtherKey([u8; 32]),
    /// Carries its author's public key with another key's signature.
    Borrowed([u8; 32]),
    /// The author's key and arbitrary signature bytes.
    Bytes([u8; 64]),
}

impl Forgery {
    /// Genuine two times in three.
    pub fn any() -> BoxedStrategy<Forgery> {
        prop_oneof![
            8 => Just(Forgery::Genuine),
            1 => Just(Forgery::Altered),
            1 => any::<[u8; 32]>().prop_map(Forgery::OtherKey),
            1 => any::<[u8; 32]>().prop_map(Forgery::Borrowed),
            1 => any::<[u8; 64]>().prop_map(Forgery::Bytes),
        ]
        .boxed()
    }

    /// The chat `author` signs, forged this way.
    pub fn make(
        &self,
        author: &SigningKey,
        id: MsgId,
        name: Arc<str>,
        text: Arc<str>,
        sent_ms: u64,
    ) -> Chat {
        match self {
            Forgery::Genuine => Chat::signed(author, id, name, text, sent_ms),
            Forgery::Altered => {
                let mut c = Chat::signed(author, id, name, text.clone(), sent_ms);
                c.text = Arc::from(format!("{text}!"));
                c
            }
            Forgery::OtherKey(secret) => {
                Chat::signed(&SigningKey::from_bytes(secret), id, name, text, sent_ms)
            }
            Forgery::Borrowed(secret) => {
                let mut c = Chat::signed(&SigningKey::from_bytes(secret), id, name, text, sent_ms);
                c.key = author.verifying_key().to_bytes();
                c
            }
            Forgery::Bytes(sig) => {
                let mut c = Chat::signed(author, id, name, text, sent_ms);
                c.sig = Signature::from_bytes(sig);
                c
            }
        }
    }

    /// The proof of the claim `author` makes about itself (see
    /// [`Proof::sign`]), forged this way. `Altered` signs the other
    /// departure flag: an alive claim passed off as a departure, or the
    /// other way round.
    pub fn prove(
        &self,
        author: &SigningKey,
        node: NodeKey,
        version: u32,
        addr: SocketAddr,
        name: &str,
        left: bool,
    ) -> Proof {
        match self {
            Forgery::Genuine => Proof::sign(author, node, version, addr, name, left),
            Forgery::Altered => Proof::sign(author, node, version, addr, name, !left),
            Forgery::OtherKey(secret) => Proof::sign(
                &SigningKey::from_bytes(secret),
                node,
                version,
                addr,
                name,
                left,
            ),
            Forgery::Borrowed(secret) => {
                let mut p = Proof::sign(
                    &SigningKey::from_bytes(secret),
                    node,
                    version,
                    addr,
                    name,
                    left,
                );
                p.key = author.verifying_key().to_bytes();
                p
            }
            Forgery::Bytes(sig) => {
                let mut p = Proof::sign(author, node, version, addr, name, left);
                p.sig = Signature::from_bytes(sig);
                p
            }
        }
    }
}

/// Any proof bytes: arbitrary key and signature, or [`Proof::none`].
pub fn any_proof() -> BoxedStrategy<Proof> {
    prop_oneof![
        4 => (any::<[u8; 32]>(), any::<[u8; 64]>()).prop_map(|(key, sig)| Proof {
            key,
            sig: Signature::from_bytes(&sig),
        }),
        1 => Just(Proof::none()),
    ]
    .boxed()
}

/// Any u64, with the edges and small values drawn often.
pub fn edgy_u64() -> BoxedStrategy<u64> {
    prop_oneof![
        3 => 0u64..16,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => Just(u64::from(u32::MAX)),
        4 => any::<u64>(),
    ]
    .boxed()
}

/// Any socket address that survives serde: IPv6 flow info and scope id are
/// not part of the encoding (serde writes ip and port only), so they are 0.
pub fn any_addr() -> BoxedStrategy<SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            0,
            0
        ))),
    ]
    .boxed()
}

fn arc_str(re: &'static str) -> BoxedStrategy<Arc<str>> {
    re.prop_map(|s: String| Arc::from(s)).boxed()
}

/// Any id: ids of addresses (as `Identity::new` gives them), and any 8
/// bytes.
pub fn any_id() -> BoxedStrategy<Id> {
    prop_oneof![
        any_addr().prop_map(Id::of_addr),
        any::<[u8; 8]>().prop_map(Id),
        Just(Id([0; 8])),
        Just(Id([0xff; 8])),
    ]
    .boxed()
}

/// The whole value space: for codec round trips.
pub fn wide() -> Universe {
    Universe {
        addr: any_addr(),
        id: any_id(),
        incarnation: edgy_u64(),
        version: prop_oneof![
            3 => 0u32..4,
            1 => Just(u32::MAX),
            2 => any::<u32>(),
        ]
        .boxed(),
        seq: edgy_u64(),
        name: arc_str("\\PC{0,24}"),
        text: arc_str("\\PC{0,80}"),
        max_len: 12,
        baseline: true,
        signers: BTreeMap::new(),
    }
}

impl Universe {
    pub fn node_key(&self) -> BoxedStrategy<NodeKey> {
        (self.id.clone(), self.incarnation.clone())
            .prop_map(|(id, incarnation)| NodeKey { id, incarnation })
            .boxed()
    }

    /// A member's life and the address it says it listens at: mostly the
    /// address its id was derived from (as `Identity::new` makes them),
    /// sometimes any id at any address (a member that moved, or one that
    /// lies). An entry or hello of a member in [`Universe::signers`] is
    /// signed at that address all the same, as a member that moved signs
    /// it, unless its proof is forged (see [`Forgery`]).
    pub fn located(&self) -> BoxedStrategy<(NodeKey, SocketAddr)> {
        prop_oneof![
            4 => (self.addr.clone(), self.incarnation.clone()).prop_map(|(addr, incarnation)| {
                let id = Id::of_addr(addr);
                (NodeKey { id, incarnation }, addr)
            }),
            1 => (self.node_key(), self.addr.clone()),
        ]
        .boxed()
    }

    pub fn msg_id(&self) -> BoxedStrategy<MsgId> {
        (self.node_key(), self.seq.clone())
            .prop_map(|(origin, seq)| MsgId { origin, seq })
            .boxed()
    }

    /// The proof of the claim of `node` about itself (see [`Proof::sign`]):
    /// of a member in [`Universe::signers`], signed by it or forged; of
    /// anyone else, arbitrary bytes.
    pub fn proof(
        &self,
    ) -> impl Fn((Forgery, Proof), NodeKey, u32, SocketAddr, &str, bool) -> Proof + Clone {
        let signers = self.signers.clone();
        move |(forgery, bytes), node, version, addr, name, left| match signers.get(&node.id) {
            Some(author) => forgery.prove(author, node, version, addr, name, left),
            None => bytes,
        }
    }

    pub fn hello(&self) -> BoxedStrategy<Hello> {
        let prove = self.proof();
        (
            prop_oneof![4 => Just(PROTOCOL_VERSION), 1 => any::<u16>()],
            self.located(),
            self.name.clone(),
            any::<u16>(),
            any::<u64>(),
            (any::<u64>(), any::<u64>()),
            (
                prop::option::of(self.beacon()),
                any::<bool>(),
                any::<bool>(),
            ),
            (self.version.clone(), Forgery::any(), any_proof()),
        )
            .prop_map(
                move |(
                    version,
                    (node, addr),
                    name,
                    degree,
                    members_hash,
                    (chat_hash, chat_mark),
                    (beacon, bridge, shortcut),
                    (member_version, forgery, bytes),
                )| Hello {
                    version,
                    node,
                    addr,
                    proof: prove((forgery, bytes), node, member_version, addr, &name, false),
                    name,
                    member_version,
                    degree,
                    members_hash,
                    chat_hash,
                    chat_mark,
                    beacon,
                    bridge,
                    shortcut,
                },
            )
            .boxed()
    }

    pub fn beacon(&self) -> BoxedStrategy<Beacon> {
        (
            self.node_key(),
            any::<u32>(),
            any::<u8>(),
            prop::option::of(self.id.clone()),
            any::<u16>(),
            any::<u32>(),
        )
            .prop_map(|(origin, seq, hops, up, up_ms, at_ms)| Beacon {
                origin,
                seq,
                hops,
                up,
                up_ms,
                at_ms,
            })
            .boxed()
    }

    pub fn member_update(&self) -> BoxedStrategy<MemberUpdate> {
        self.member_update_in(member_state())
    }

    /// A member entry in one of the states `state` draws, with its proof
    /// (see [`Universe::proof`]): for `Left` the departure, otherwise the
    /// alive claim at the entry's life, version, address and name.
    pub fn member_update_in(
        &self,
        state: BoxedStrategy<MemberState>,
    ) -> BoxedStrategy<MemberUpdate> {
        let prove = self.proof();
        let accusers: Vec<SigningKey> = self.signers.values().cloned().collect();
        (
            self.located(),
            state,
            self.name.clone(),
            self.version.clone(),
            (Forgery::any(), any_proof()),
            (any::<prop::sample::Index>(), 0..5u8),
        )
            .prop_map(
                move |((node, addr), state, name, version, proof, (by, how))| {
                    let left = state == MemberState::Left;
                    // An accusation: mostly signed by one of the signers,
                    // sometimes by nobody, sometimes of another version.
                    let accuser = match (accusers.is_empty(), how) {
                        (true, _) | (_, 0) => None,
                        (false, 1) => Some(Accusation::sign(
                            by.get(&accusers),
                            node,
                            version.wrapping_add(1),
                        )),
                        (false, _) => Some(Accusation::sign(by.get(&accusers), node, version)),
                    };
                    MemberUpdate {
                        node,
                        addr,
                        version,
                        state,
                        proof: prove(proof, node, version, addr, &name, left),
                        name,
                        age_secs: 0,
                        accuser,
                    }
                },
            )
            .boxed()
    }

    /// A goodbye: the leaver's own entry, mostly in state `Left`.
    pub fn leave(&self) -> BoxedStrategy<MemberUpdate> {
        self.member_update_in(
            prop_oneof![4 => Just(MemberState::Left), 1 => member_state()].boxed(),
        )
    }

    /// A chat: of a member in [`Universe::signers`], signed by it or
    /// forged; of anyone else, with arbitrary key and signature bytes
    /// (which the codec carries as they are).
    pub fn chat(&self) -> BoxedStrategy<Chat> {
        let signers = self.signers.clone();
        (
            self.msg_id(),
            self.name.clone(),
            self.text.clone(),
            any::<u64>(),
            Forgery::any(),
            (any::<[u8; 32]>(), any::<[u8; 64]>()),
        )
            .prop_map(move |(id, name, text, sent_ms, forgery, (key, sig))| {
                match signers.get(&id.origin.id) {
                    Some(author) => forgery.make(author, id, name, text, sent_ms),
                    None => Chat {
                        id,
                        name,
                        text,
                        sent_ms,
                        key,
                        sig: Signature::from_bytes(&sig),
                    },
                }
            })
            .boxed()
    }

    pub fn digest_entries(&self) -> BoxedStrategy<Vec<(NodeKey, u64)>> {
        prop::collection::vec((self.node_key(), self.seq.clone()), 0..=self.max_len).boxed()
    }

    pub fn message(&self) -> BoxedStrategy<Message> {
        let n = self.max_len;
        let baseline = if self.baseline {
            prop::option::of(self.digest_entries()).boxed()
        } else {
            Just(None).boxed()
        };
        prop_oneof![
            self.hello().prop_map(Message::Join),
            self.hello().prop_map(Message::Hello),
            (
                any::<bool>(),
                prop::collection::vec(self.member_update(), 0..=n)
            )
                .prop_map(|(full, members)| Message::PeerList { full, members }),
            any::<u32>().prop_map(Message::Ping),
            any::<u32>().prop_map(Message::Pong),
            self.chat().prop_map(Message::Chat),
            self.leave().prop_map(|u| Message::Leave(Box::new(u))),
            prop_oneof![Just(ByeReason::Full), Just(ByeReason::Duplicate)].prop_map(Message::Bye),
            (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
                |(members_hash, chat_hash, chat_mark)| Message::Sync(Sync {
                    members_hash,
                    chat_hash,
                    chat_mark,
                })
            ),
            (self.digest_entries(), any::<bool>())
                .prop_map(|(entries, reply)| Message::Digest(Digest { entries, reply })),
            (prop::collection::vec(self.chat(), 0..=n), baseline)
                .prop_map(|(chats, baseline)| Message::History(History { chats, baseline })),
            prop::collection::vec(any::<u32>(), 0..=70).prop_map(Message::Buckets),
            (
                any::<u64>(),
                prop::collection::vec(self.member_update(), 0..=n)
            )
                .prop_map(|(buckets, members)| Message::RosterPart { buckets, members }),
            (any::<u64>(), prop::collection::vec(any::<u32>(), 0..=n))
                .prop_map(|(buckets, prints)| Message::Prints { buckets, prints }),
            prop::collection::vec(any::<u32>(), 0..=n).prop_map(Message::Want),
            (any::<u32>(), self.id.clone())
                .prop_map(|(nonce, target)| Message::ProbeReq { nonce, target }),
            (any::<u32>(), self.id.clone())
                .prop_map(|(nonce, target)| Message::ProbeAck { nonce, target }),
            (any::<u32>(), self.id.clone())
                .prop_map(|(nonce, target)| Message::ProbeNack { nonce, target }),
            any::<u32>().prop_map(Message::Heartbeat),
            self.beacon().prop_map(Message::Beacon),
            any::<bool>().prop_map(Message::Listen),
            (
                any::<u32>(),
                prop::option::of(self.beacon()),
                prop::option::of(any::<(u64, u64)>())
            )
                .prop_map(|(nonce, beacon, chat)| Message::ProbePong {
                    nonce,
                    beacon,
                    chat
                }),
        ]
        .boxed()
    }
}

pub fn member_state() -> BoxedStrategy<MemberState> {
    prop_oneof![
        Just(MemberState::Alive),
        Just(MemberState::Suspect),
        Just(MemberState::Dead),
        Just(MemberState::Left),
    ]
    .boxed()
}
