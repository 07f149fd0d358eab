//! The messages nodes exchange: protocol v2.
//!
//! Every neighbour connection starts with a [`Hello`] (or [`Message::Join`]
//! from a node that has not joined yet) in both directions. Everything after
//! that is membership gossip, heartbeats, probes, chat floods and history
//! repair. A probe connection (dialled only to see whether a member answers)
//! starts with a [`Message::Ping`] instead and closes after the
//! [`Message::Pong`].

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

/// The protocol version carried in every handshake. A peer with another
/// version is refused.
pub const PROTOCOL_VERSION: u16 = 2;

/// A member's identity: the first 8 bytes of the BLAKE2s hash of its
/// ed25519 public key ([`Id::of_key`]). The key is proven by the
/// adapter's handshake; the address is only where the member listens now,
/// so a member that restarts on another address stays the same member.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Id(pub [u8; 8]);

impl Id {
    /// The id of the member holding this ed25519 public key.
    pub fn of_key(key: &[u8; 32]) -> Id {
        Id::hashed(b"gossip-chat id v1", key)
    }

    /// The id of the key pair derived from an address ([`addr_key`]):
    /// the id of a node built with [`crate::Identity::new`].
    pub fn of_addr(addr: SocketAddr) -> Id {
        Id::of_key(&addr_key(addr).verifying_key().to_bytes())
    }

    /// Where this member sits on the ring of id hashes: the member first
    /// on it (lowest position, then lowest id) leads the overlay's
    /// beacons, and each member is watched by the next on it.
    pub fn ring_position(self) -> u64 {
        crate::peers::ring_pos(self)
    }

    fn hashed(domain: &[u8], data: &[u8]) -> Id {
        let mut id = [0; 8];
        id.copy_from_slice(&hash(domain, data)[..8]);
        Id(id)
    }
}

/// BLAKE2s of `data`, domain-separated.
fn hash(domain: &[u8], data: &[u8]) -> [u8; 32] {
    use blake2::Digest;
    let mut h = blake2::Blake2s256::new();
    h.update((domain.len() as u8).to_le_bytes());
    h.update(domain);
    h.update(data);
    h.finalize().into()
}

/// A signing key derived from an address. Anyone can derive it, so it
/// proves nothing: for tests and the simulator ([`crate::Identity::new`]),
/// never for a real node.
pub fn addr_key(addr: SocketAddr) -> ed25519_dalek::SigningKey {
    let mut bytes = Vec::with_capacity(18);
    match addr.ip() {
        std::net::IpAddr::V4(ip) => bytes.extend_from_slice(&ip.octets()),
        std::net::IpAddr::V6(ip) => bytes.extend_from_slice(&ip.octets()),
    }
    bytes.extend_from_slice(&addr.port().to_le_bytes());
    ed25519_dalek::SigningKey::from_bytes(&hash(b"gossip-chat address key v1", &bytes))
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Id({self})")
    }
}

/// One life of one member: its identity and incarnation.
///
/// A restart gives a higher incarnation; notices about a lower one no
/// longer apply. A life is also a chat stream: refuting an accusation does
/// not start a new life (see [`MemberUpdate::version`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeKey {
    /// Who the member is.
    pub id: Id,
    /// Grows on every restart.
    pub incarnation: u64,
}

/// The id of a chat message: never random, never reused.
///
/// `seq` starts at 1 for each `(origin, incarnation)` and grows by one per
/// message, so a receiver can tell a gap from a duplicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MsgId {
    /// The sender's life.
    pub origin: NodeKey,
    /// Position in the sender's stream, from 1.
    pub seq: u64,
}

/// What a node says about itself in a handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must equal [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The speaker's identity and incarnation.
    pub node: NodeKey,
    /// The address the speaker listens on.
    pub addr: SocketAddr,
    /// The speaker's display name.
    pub name: Arc<str>,
    /// The speaker's refutation version within the life.
    pub member_version: u32,
    /// The speaker's signature over its life, version, address and name
    /// (see [`Proof`]).
    pub proof: Proof,
    /// How many neighbours the speaker has now (used to share out
    /// connection slots).
    pub degree: u16,
    /// Digest of the speaker's membership view (see [`Sync`]).
    pub members_hash: u64,
    /// Digest of the speaker's delivered chat (see [`Sync`]).
    pub chat_hash: u64,
    /// The mark `chat_hash` was taken at (see [`Sync`]).
    pub chat_mark: u64,
    /// The newest overlay beacon the speaker has from the member it
    /// follows (see [`Beacon`]), if any: a peer whose part of the overlay
    /// lost the leader's beacons is behind, and a full node takes its dial.
    pub beacon: Option<Beacon>,
    /// The speaker dialled to join its part of the overlay, which the
    /// leader's beacons no longer reach, to the receiver's: a full receiver
    /// makes room for it.
    pub bridge: bool,
    /// The speaker dialled to shorten its way to the leader's beacons on
    /// the broadcast tree (see `Node::shortcut`): a full receiver makes
    /// room for it only by dropping a link off the tree.
    pub shortcut: bool,
}

impl Hello {
    /// The speaker's own entry as its hello tells it: alive in its life, at
    /// its version, signed.
    pub fn entry(&self) -> MemberUpdate {
        MemberUpdate {
            node: self.node,
            addr: self.addr,
            version: self.member_version,
            state: MemberState::Alive,
            name: self.name.clone(),
            age_secs: 0,
            accuser: None,
            proof: self.proof,
        }
    }
}

/// Puts a link back on the broadcast tree: its receiver pushes chat over
/// it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graft {
    /// Messages the receiver announced and the sender never got: pushed
    /// first.
    pub ids: Vec<MsgId>,
    /// How far back, in milliseconds, the receiver also pushes what came
    /// to it (0: nothing). The sender lost a tree link, and with it
    /// whatever was on its way over it: it cannot name those.
    pub replay_ms: u32,
}

impl Graft {
    /// A graft asking for `ids` only.
    pub fn ids(ids: Vec<MsgId>) -> Graft {
        Graft { ids, replay_ms: 0 }
    }
}

/// A sign of life flooded over the broadcast tree by the member first on
/// the ring of id hashes (the leader): every node of the overlay part
/// that holds the leader hears it every `Config::beacon_interval`. A node
/// that holds the leader alive but stops hearing its beacons is in a part
/// of the overlay cut off from it, and dials it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Beacon {
    /// The leader's life.
    pub origin: NodeKey,
    /// Grows by one per beacon within the life.
    pub seq: u32,
    /// The sender's hops from the leader on the tree (0 from the leader
    /// itself): the receiver is one more.
    pub hops: u8,
    /// The member the sender took this beacon from first (its way to the
    /// leader): the receiver's grandparent on the tree, which a node too
    /// deep dials as a shortcut.
    pub up: Option<Id>,
    /// The round trip of the sender's link to `up`, in milliseconds (0:
    /// not known): the receiver takes the shortcut only where a link of
    /// its own to `up` is faster than the way through the sender.
    pub up_ms: u16,
    /// The sender's way from the leader along the tree, in milliseconds:
    /// half the round trip of each link on it, summed.
    pub at_ms: u32,
}

impl Beacon {
    /// The leader's own beacon number `seq` of its life `origin`.
    pub fn new(origin: NodeKey, seq: u32) -> Beacon {
        Beacon {
            origin,
            seq,
            hops: 0,
            up: None,
            up_ms: 0,
            at_ms: 0,
        }
    }
}

/// The state a member is in, ordered by precedence at equal incarnation
/// and version: `Left` beats `Dead` beats `Suspect` beats `Alive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberState {
    /// Reachable as far as anyone knows.
    Alive,
    /// Accused of being dead: a member could not reach it, directly or
    /// through others, or stale news (a peer list from across a healed
    /// split) says it died. Still in the roster until the suspicion times
    /// out, so the accused has time to refute.
    Suspect,
    /// A suspicion ran out unrefuted.
    Dead,
    /// Left gracefully.
    Left,
}

/// One entry of a peer list: what the sender believes about one node.
///
/// Precedence is `(node.incarnation, version, state)`: a later life beats
/// everything about an earlier one; within a life a higher version (a
/// refutation) beats an accusation of a lower one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberUpdate {
    /// The node and life this entry is about.
    pub node: NodeKey,
    /// Where it listens in that life.
    pub addr: SocketAddr,
    /// Refutation counter within the life: the node raises it to answer an
    /// accusation, keeping its life (and chat stream).
    pub version: u32,
    /// Its state in that life.
    pub state: MemberState,
    /// Its display name.
    pub name: Arc<str>,
    /// For `Dead` and `Left`: seconds since the sender first held it so,
    /// so that every node forgets a tombstone at about the same time. For
    /// `Suspect`: 0.
    pub age_secs: u32,
    /// For `Suspect`: the member that could not reach it (one of the
    /// independent accusers that shorten a suspicion), in its own signed
    /// word; for `Dead`: the member whose suspicion ran out, likewise.
    /// `None` for `Alive` and `Left`, and for a suspicion nobody signed
    /// (stale news of a death, taken as a suspicion: it counts as no
    /// accuser).
    pub accuser: Option<Accusation>,
    /// The member's own word for the life, version, address and name: for
    /// `Left` its signed departure, otherwise its signed claim to be alive
    /// at them (an accusation names a version the accused signed).
    pub proof: Proof,
}

impl MemberUpdate {
    /// Whether the member itself signed this entry's life, version,
    /// address and name (and, for `Left`, its departure).
    pub fn proven(&self) -> bool {
        self.proof.proves(
            self.node,
            self.version,
            self.addr,
            &self.name,
            self.state == MemberState::Left,
        )
    }

    /// Whether the entry's accusation, if any, was signed by its accuser
    /// for this life and version. A `Dead` entry must name its accuser: a
    /// death nobody signed is nobody's.
    pub fn attributed(&self) -> bool {
        match &self.accuser {
            Some(a) => {
                matches!(self.state, MemberState::Suspect | MemberState::Dead)
                    && a.proves(self.node, self.version)
            }
            None => self.state != MemberState::Dead,
        }
    }

    /// Who signed the entry's accusation, if anyone.
    pub fn accuser_id(&self) -> Option<Id> {
        self.accuser.as_ref().map(Accusation::by)
    }
}

/// A member's signed word that another member is unreachable in a life at
/// a version: carried by its suspicion, and by the death it declares when
/// the suspicion runs out (one claim for both: a death from others is
/// only a suspicion to a node that holds the member alive). Attributable:
/// a node holds the accuser to it, and stops listening to one whose
/// accusations keep being refuted. 96 bytes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accusation {
    /// The accuser's ed25519 public key (its hash is the accuser's id).
    pub key: [u8; 32],
    /// Its signature over [`Accusation::claim_bytes`].
    pub sig: ed25519_dalek::Signature,
}

impl Accusation {
    /// The member holding `key` accuses `accused` at `version` of being
    /// unreachable.
    pub fn sign(key: &ed25519_dalek::SigningKey, accused: NodeKey, version: u32) -> Accusation {
        use ed25519_dalek::Signer;
        let msg = Accusation::claim_bytes(accused, version);
        Accusation {
            key: key.verifying_key().to_bytes(),
            sig: key.sign(&msg),
        }
    }

    /// The accuser's id.
    pub fn by(&self) -> Id {
        Id::of_key(&self.key)
    }

    /// What an accuser signs: a domain tag, the accused's id and life and
    /// the version it accuses, as postcard encodes them.
    pub fn claim_bytes(accused: NodeKey, version: u32) -> Vec<u8> {
        postcard::to_allocvec(&("gossip-chat accusation v1", accused, version)).unwrap_or_default()
    }

    /// Whether the key signed this accusation.
    pub fn proves(&self, accused: NodeKey, version: u32) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.key) else {
            return false;
        };
        let msg = Accusation::claim_bytes(accused, version);
        key.verify_strict(&msg, &self.sig).is_ok()
    }
}

/// A member's signature over its own state: only a member can raise its
/// life or version, say where it listens or what it is called, or leave.
/// 96 bytes on the wire: the public key (its hash is the member's id) and
/// the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The member's ed25519 public key.
    pub key: [u8; 32],
    /// Its signature over [`Proof::claim_bytes`].
    pub sig: ed25519_dalek::Signature,
}

impl Proof {
    /// The member `key` signs that it is in life `node.incarnation` at
    /// `version`, listening on `addr` as `name`; or, with `left`, that it
    /// left in that life.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        node: NodeKey,
        version: u32,
        addr: SocketAddr,
        name: &str,
        left: bool,
    ) -> Proof {
        use ed25519_dalek::Signer;
        let msg = Proof::claim_bytes(node, version, addr, name, left);
        Proof {
            key: key.verifying_key().to_bytes(),
            sig: key.sign(&msg),
        }
    }

    /// A proof that proves nothing: an all-zero key and signature, which
    /// match no member's id and no valid signature (for tests).
    pub fn none() -> Proof {
        Proof {
            key: [0; 32],
            sig: ed25519_dalek::Signature::from_bytes(&[0; 64]),
        }
    }

    /// What a member signs about itself: a domain tag, then its id and
    /// life, the version, address, name and whether it left, as postcard
    /// encodes them.
    pub fn claim_bytes(
        node: NodeKey,
        version: u32,
        addr: SocketAddr,
        name: &str,
        left: bool,
    ) -> Vec<u8> {
        postcard::to_allocvec(&("gossip-chat state v1", node, version, addr, name, left))
            .unwrap_or_default()
    }

    /// Whether the key is `node`'s (its id is `node.id`) and signed this
    /// claim.
    pub fn proves(
        &self,
        node: NodeKey,
        version: u32,
        addr: SocketAddr,
        name: &str,
        left: bool,
    ) -> bool {
        if Id::of_key(&self.key) != node.id {
            return false;
        }
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.key) else {
            return false;
        };
        let msg = Proof::claim_bytes(node, version, addr, name, left);
        key.verify_strict(&msg, &self.sig).is_ok()
    }
}

/// A chat message as it travels: flooded live, or sent again by repair.
/// Signed by its author ([`Chat::signed`]); relays and repair pass the
/// signature on unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    /// Who sent it and where it stands in the sender's stream.
    pub id: MsgId,
    /// The sender's display name.
    pub name: Arc<str>,
    /// The text, at most `Config::max_text_len` bytes.
    pub text: Arc<str>,
    /// The author's wall-clock time when it was sent, in milliseconds since
    /// the Unix epoch (0: unknown). For display only: the protocol never
    /// looks at it; the author's signature covers it.
    pub sent_ms: u64,
    /// The author's ed25519 public key: its id is [`Id::of_key`] of it.
    pub key: [u8; 32],
    /// The author's signature over [`Chat::signed_bytes`].
    pub sig: ed25519_dalek::Signature,
}

impl Chat {
    /// A chat signed by `key`, whose id must be `id.origin.id`.
    pub fn signed(
        key: &ed25519_dalek::SigningKey,
        id: MsgId,
        name: Arc<str>,
        text: Arc<str>,
        sent_ms: u64,
    ) -> Chat {
        use ed25519_dalek::Signer;
        let sig = key.sign(&Chat::signed_bytes(&id, &name, &text, sent_ms));
        Chat {
            id,
            name,
            text,
            sent_ms,
            key: key.verifying_key().to_bytes(),
            sig,
        }
    }

    /// What an author signs: a domain tag, then its life, the seq, its
    /// name, the text and its time, as postcard encodes them.
    pub fn signed_bytes(id: &MsgId, name: &str, text: &str, sent_ms: u64) -> Vec<u8> {
        postcard::to_allocvec(&("gossip-chat chat v1", id, name, text, sent_ms)).unwrap_or_default()
    }

    /// Whether the key is the author's (its id is the origin's) and the
    /// signature is the key's over this chat.
    pub fn authentic(&self) -> bool {
        if Id::of_key(&self.key) != self.id.origin.id {
            return false;
        }
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.key) else {
            return false;
        };
        let msg = Chat::signed_bytes(&self.id, &self.name, &self.text, self.sent_ms);
        key.verify_strict(&msg, &self.sig).is_ok()
    }
}

/// Cheap anti-entropy probe sent to a random neighbour each sync round
/// while the sender's view changes, more rarely while it stays the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sync {
    /// Order-independent hash of the alive members `(id, incarnation)`.
    pub members_hash: u64,
    /// Hash of the chat digest: every stream with the highest seq
    /// delivered of the messages sent up to `chat_mark`.
    pub chat_hash: u64,
    /// The point in the authors' clock, in steps of 250 ms, up to which
    /// `chat_hash` covers what was sent: later messages may still be in
    /// flight. The receiver compares its own hash at the same mark.
    pub chat_mark: u64,
}

/// Per stream, the highest contiguous seq the sender has delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// `(stream, highest contiguous seq)`, sorted by stream.
    pub entries: Vec<(NodeKey, u64)>,
    /// Whether the receiver should answer with its own digest if the sender
    /// lacks something (the first leg of an exchange asks; the second not).
    pub reply: bool,
}

/// A batch of chat messages sent by repair or to a newcomer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Messages in stream order, oldest first within each stream.
    pub chats: Vec<Chat>,
    /// Sent to a newcomer: the sender's digest when it answered the join.
    /// Streams the newcomer does not know start after these seqs (minus the
    /// history included), so the newcomer does not wait for old messages.
    pub baseline: Option<Vec<(NodeKey, u64)>>,
}

/// A node that cannot take a connection now: when to come back, and other
/// members to try meanwhile (a newcomer may join through any of them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Busy {
    /// Milliseconds to wait before dialling the sender again.
    pub retry_ms: u32,
    /// A few members the sender holds alive.
    pub others: Vec<SocketAddr>,
}

/// Why a connection is being closed on purpose (not a failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ByeReason {
    /// The sender has no free connection slot.
    Full,
    /// The sender already has another connection to the receiver.
    Duplicate,
}

/// Every message of protocol v2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Handshake from a node that has not joined yet: asks for the full
    /// membership and recent history.
    Join(Hello),
    /// Handshake on any other connection.
    Hello(Hello),
    /// Membership: the full view (`full`) or recent changes.
    PeerList {
        /// True for a whole view (a join answer), false for a delta.
        full: bool,
        /// The entries.
        members: Vec<MemberUpdate>,
    },
    /// Probe, or heartbeat over a link its sender watches back; answered
    /// with a [`Message::Pong`] carrying the same nonce (also as the first
    /// message on a probe connection).
    Ping(u32),
    /// Heartbeat or probe answer.
    Pong(u32),
    /// Asks a neighbour to probe `target` on the sender's behalf (the
    /// sender could not reach it); answered with [`Message::ProbeAck`] if
    /// the target answered, [`Message::ProbeNack`] if it did not.
    ProbeReq {
        /// The sender's probe, echoed in the ack.
        nonce: u32,
        /// The member to probe (one the receiver knows).
        target: Id,
    },
    /// The target of a [`Message::ProbeReq`] answered.
    ProbeAck {
        /// The nonce of the request.
        nonce: u32,
        /// The member that answered.
        target: Id,
    },
    /// The sender cannot take this connection now; it closes it.
    Busy(Busy),
    /// A chat message, flooded.
    Chat(Chat),
    /// The sender leaves the group for good (this life): its own entry in
    /// state `Left`, signed. Boxed: the largest of the messages, and one
    /// per life (the wire form is the entry's).
    Leave(Box<MemberUpdate>),
    /// The sender closes this connection on purpose.
    Bye(ByeReason),
    /// Anti-entropy probe.
    Sync(Sync),
    /// Chat digest: what the sender has delivered per stream.
    Digest(Digest),
    /// Chat history: repair or newcomer catch-up.
    History(History),
    /// Stop pushing chat to the sender over this link: it reaches the
    /// sender another way (the link is off the broadcast tree). Ids are
    /// announced over it instead ([`Message::IHave`]).
    Prune,
    /// Push chat to the sender over this link again (see [`Graft`]).
    Graft(Graft),
    /// Ids of new messages, announced over a pruned link.
    IHave(Vec<MsgId>),
    /// Membership digest by bucket (the low 32 bits of each bucket's roster
    /// hash, one per bucket): the answer to a [`Message::Sync`] whose
    /// membership hash differs. The receiver sends back its entries of the
    /// buckets that differ ([`Message::RosterPart`]).
    Buckets(Vec<u32>),
    /// The sender's whole view of some digest buckets (bit `i` of
    /// `buckets` set: bucket `i` is covered). The receiver merges it and
    /// answers with what it holds newer in those buckets. With no bucket
    /// covered: entries that repair found missing (merged with the care
    /// due to news from across a healed split, and not answered).
    RosterPart {
        /// The buckets covered.
        buckets: u64,
        /// Every entry the sender spreads in those buckets.
        members: Vec<MemberUpdate>,
    },
    /// Fingerprints of every entry the sender spreads in the digest
    /// buckets that differ (bit `i` of `buckets`: bucket `i`): the
    /// receiver sends back the entries of those buckets whose fingerprint
    /// is not among them, and asks ([`Message::Want`]) for those it lacks.
    Prints {
        /// The buckets covered.
        buckets: u64,
        /// One fingerprint per entry (its life, version and state).
        prints: Vec<u32>,
    },
    /// Asks for the entries with these fingerprints (see
    /// [`Message::Prints`]).
    Want(Vec<u32>),
    /// The target of a [`Message::ProbeReq`] did not answer in time
    /// (Lifeguard's nack): the asker's link to this helper works, so its
    /// failure to reach the target is not its own fault.
    ProbeNack {
        /// The nonce of the request.
        nonce: u32,
        /// The member that did not answer.
        target: Id,
    },
    /// A heartbeat over a link its sender picked to watch: answered like a
    /// [`Message::Ping`], and the receiver watches the link back while
    /// these keep coming. A plain ping asks for an answer only, so two ends
    /// answering each other's pings never keep each other watching.
    Heartbeat(u32),
    /// The leader's beacon, forwarded over the broadcast tree.
    Beacon(Beacon),
    /// The answer to a ping over a probe connection: a [`Message::Pong`]
    /// that carries the answerer's newest beacon from the member it
    /// follows, so that a prober whose part of the overlay the leader's
    /// beacons no longer reach learns it from any member it probes in a
    /// part they still reach.
    ProbePong {
        /// The ping's nonce.
        nonce: u32,
        /// The answerer's newest beacon (see [`Hello::beacon`]), left out
        /// when it is the one the answerer last sent over this connection
        /// (a connection kept for probing carries it once per beacon).
        beacon: Option<Beacon>,
        /// The answerer's chat mark and its chat hash there (see
        /// [`Sync::chat_mark`]), left out when the hash is the one the
        /// answerer last sent over this connection: a prober whose chat
        /// differs at a settled mark does not share the answerer's part of
        /// the overlay.
        chat: Option<(u64, u64)>,
    },
    /// Whether the sender wants announcements ([`Message::IHave`]) over
    /// this link while it is off the broadcast tree: each node asks a few
    /// of its lazy links to announce (`Config::announcers`) and the others
    /// to stay quiet, as it needs only a few announcers to learn of what
    /// the tree missed. Kept across prunes and grafts until the next.
    Listen(bool),
}

impl Message {
    /// A short lowercase name for logs, traces and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Join(_) => "join",
            Message::Hello(_) => "hello",
            Message::PeerList { full: true, .. } => "full-list",
            Message::PeerList { .. } => "peers",
            Message::Ping(_) => "ping",
            Message::Pong(_) | Message::ProbePong { .. } => "pong",
            Message::ProbeReq { .. } => "probe-req",
            Message::ProbeAck { .. } => "probe-ack",
            Message::ProbeNack { .. } => "probe-nack",
            Message::Heartbeat(_) => "heartbeat",
            Message::Busy(_) => "busy",
            Message::Chat(_) => "chat",
            Message::Leave(_) => "leave",
            Message::Bye(_) => "bye",
            Message::Sync(_) => "sync",
            Message::Digest(_) => "digest",
            Message::History(_) => "history",
            Message::Prune => "prune",
            Message::Graft(_) => "graft",
            Message::IHave(_) => "ihave",
            Message::Buckets(_) => "buckets",
            Message::RosterPart { .. } => "part-list",
            Message::Prints { .. } => "prints",
            Message::Want(_) => "want",
            Message::Beacon(_) => "beacon",
            Message::Listen(_) => "listen",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes [`Id::of_addr`] hashes for `addr`.
    fn addr_bytes(addr: SocketAddr) -> Vec<u8> {
        let mut bytes = match addr.ip() {
            std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
            std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
        };
        bytes.extend_from_slice(&addr.port().to_le_bytes());
        bytes
    }

    #[test]
    fn an_id_of_a_key_is_stable() {
        // Pinned: an id that changed would make every node a stranger to
        // the group it was in (BLAKE2s-256 over the length-prefixed domain
        // and the key, first 8 bytes).
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let id = Id::of_key(&key);
        assert_eq!(id, Id([0x54, 0x44, 0xf5, 0xdb, 0x3b, 0x6c, 0x76, 0x3c]));
        assert_eq!(id, Id::of_key(&key), "the same key, the same id");
        assert_eq!(id.to_string(), "5444f5db3b6c763c");
        assert_eq!(format!("{id:?}"), "Id(5444f5db3b6c763c)");
        assert_eq!(
            Id::of_key(&[0; 32]),
            Id([0x5a, 0x85, 0x75, 0xe7, 0x6d, 0xeb, 0x4d, 0xf7])
        );
        let mut other = key;
        other[31] ^= 1;
        assert_ne!(Id::of_key(&other), id, "one bit of the key changes it");
    }

    #[test]
    fn an_id_of_an_address_is_stable() {
        // Pinned: the simulator's and the tests' nodes are named by it
        // (the id of the key pair `addr_key` derives from the address).
        let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert_eq!(
            Id::of_addr(addr),
            Id([0x57, 0x22, 0xb7, 0x5e, 0x59, 0x3c, 0xff, 0x5c])
        );
        assert_eq!(
            Id::of_addr(addr),
            Id::of_key(&addr_key(addr).verifying_key().to_bytes())
        );
        assert_ne!(
            Id::of_addr("127.0.0.1:7001".parse().unwrap()),
            Id::of_addr(addr)
        );
        assert_ne!(
            Id::of_addr("[::1]:7000".parse().unwrap()),
            Id::of_addr(addr)
        );
    }

    #[test]
    fn an_address_key_is_hashed_in_a_domain_of_its_own() {
        let addrs: [SocketAddr; 2] = [
            "127.0.0.1:7000".parse().unwrap(),
            "[2001:db8::ff00:42:8329]:9000".parse().unwrap(),
        ];
        for addr in addrs {
            let bytes = addr_bytes(addr);
            // The secret is the address's bytes hashed in the address-key
            // domain, and the id is that of its public half.
            assert_eq!(
                addr_key(addr).to_bytes(),
                hash(b"gossip-chat address key v1", &bytes)
            );
            assert_ne!(
                addr_key(addr).to_bytes(),
                hash(b"gossip-chat id v1", &bytes)
            );
            // The same bytes hashed in the key domain give another id.
            assert_ne!(Id::hashed(b"gossip-chat id v1", &bytes), Id::of_addr(addr));
            // A key that starts with the address's bytes is not the address.
            let mut key = [0u8; 32];
            key[..bytes.len()].copy_from_slice(&bytes);
            assert_ne!(Id::of_key(&key), Id::of_addr(addr));
        }
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(Id::hashed(b"gossip-chat id v1", &key), Id::of_key(&key));
        assert_ne!(
            Id::hashed(b"gossip-chat address key v1", &key),
            Id::of_key(&key)
        );
    }

    fn author() -> (ed25519_dalek::SigningKey, SocketAddr) {
        let addr: SocketAddr = "10.0.0.2:7000".parse().unwrap();
        (addr_key(addr), addr)
    }

    fn signed_chat() -> Chat {
        let (key, addr) = author();
        let id = MsgId {
            origin: NodeKey {
                id: Id::of_addr(addr),
                incarnation: 7,
            },
            seq: 300,
        };
        Chat::signed(
            &key,
            id,
            "bob".into(),
            "hello, world".into(),
            1_700_000_000_123,
        )
    }

    #[test]
    fn what_an_author_signs_is_stable() {
        // Pinned: a change would make every chat of an older node a forgery
        // to a newer one (postcard of the domain tag, the life, the seq,
        // the name, the text and the time).
        let c = signed_chat();
        let bytes = Chat::signed_bytes(&c.id, &c.name, &c.text, c.sent_ms);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let want = [
            "13676f737369702d636861742063686174207631", // "gossip-chat chat v1"
            "1a70ce6594855302",                         // the origin's id ...
            "07",                                       // ... and incarnation
            "ac02",                                     // seq 300
            "03626f62",                                 // "bob"
            "0c68656c6c6f2c20776f726c64",               // "hello, world"
            "fbd095ffbc31",                             // sent_ms
        ];
        assert_eq!(hex, want.concat());
        // ed25519 signatures are deterministic: the same chat, the same
        // signature.
        assert_eq!(signed_chat().sig, c.sig);
        assert_eq!(c.key, author().0.verifying_key().to_bytes());
    }

    /// Bob's life 7 at version 3, listening where his key comes from.
    fn bob() -> (ed25519_dalek::SigningKey, NodeKey, SocketAddr) {
        let (key, addr) = author();
        let node = NodeKey {
            id: Id::of_addr(addr),
            incarnation: 7,
        };
        (key, node, addr)
    }

    #[test]
    fn what_a_member_signs_about_itself_is_stable() {
        // Pinned: a change would make every entry of an older node a
        // forgery to a newer one (postcard of the domain tag, the life,
        // the version, the address, the name and the departure flag).
        let (key, node, addr) = bob();
        let hex = |left| -> String {
            Proof::claim_bytes(node, 3, addr, "bob", left)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let want = [
            "14676f737369702d63686174207374617465207631", // "gossip-chat state v1"
            "1a70ce6594855302",                           // the id ...
            "07",                                         // ... and incarnation
            "03",                                         // version 3
            "000a000002d836",                             // 10.0.0.2:7000
            "03626f62",                                   // "bob"
        ]
        .concat();
        assert_eq!(hex(false), want.clone() + "00");
        assert_eq!(hex(true), want + "01");
        // Deterministic, and carrying the member's public key.
        let p = Proof::sign(&key, node, 3, addr, "bob", false);
        assert_eq!(p, Proof::sign(&key, node, 3, addr, "bob", false));
        assert_eq!(p.key, key.verifying_key().to_bytes());
    }

    #[test]
    fn an_accusation_is_its_accusers_word_for_that_life_and_version() {
        let (key, node, addr) = bob();
        let carol = addr_key("10.0.0.3:7000".parse().unwrap());
        let alive = MemberUpdate {
            node,
            addr,
            version: 3,
            state: MemberState::Alive,
            name: "bob".into(),
            age_secs: 0,
            accuser: None,
            proof: Proof::sign(&key, node, 3, addr, "bob", false),
        };
        assert!(alive.attributed(), "nobody accuses the living");
        let suspect = MemberUpdate {
            state: MemberState::Suspect,
            accuser: Some(Accusation::sign(&carol, node, 3)),
            ..alive.clone()
        };
        assert!(suspect.attributed());
        assert_eq!(
            suspect.accuser_id(),
            Some(Id::of_key(&carol.verifying_key().to_bytes()))
        );
        // The same word declares the death its suspicion runs out into.
        let dead = MemberUpdate {
            state: MemberState::Dead,
            ..suspect.clone()
        };
        assert!(dead.attributed());
        // A suspicion nobody signed counts as no accuser; a death must be
        // someone's.
        assert!(MemberUpdate {
            accuser: None,
            ..suspect.clone()
        }
        .attributed());
        assert!(!MemberUpdate {
            accuser: None,
            ..dead.clone()
        }
        .attributed());
        // Another version or life, an accusation carried by the living or
        // a departure, a changed signature, another's key: refused.
        let forged: [MemberUpdate; 6] = [
            MemberUpdate {
                accuser: suspect.accuser.map(|mut a| {
                    a.key = key.verifying_key().to_bytes();
                    a
                }),
                ..suspect.clone()
            },
            MemberUpdate {
                version: 4,
                ..suspect.clone()
            },
            MemberUpdate {
                node: NodeKey {
                    incarnation: node.incarnation + 1,
                    ..node
                },
                ..dead.clone()
            },
            MemberUpdate {
                state: MemberState::Alive,
                ..suspect.clone()
            },
            MemberUpdate {
                state: MemberState::Left,
                ..dead.clone()
            },
            MemberUpdate {
                accuser: suspect.accuser.map(|mut a| {
                    let mut sig = a.sig.to_bytes();
                    sig[1] ^= 1;
                    a.sig = ed25519_dalek::Signature::from_bytes(&sig);
                    a
                }),
                ..suspect.clone()
            },
        ];
        for (i, f) in forged.iter().enumerate() {
            assert!(!f.attributed(), "forgery {i}");
        }
    }

    #[test]
    fn a_proof_proves_only_what_its_member_signed() {
        let (key, node, addr) = bob();
        for left in [false, true] {
            let u = MemberUpdate {
                node,
                addr,
                version: 3,
                state: if left {
                    MemberState::Left
                } else {
                    MemberState::Alive
                },
                name: "bob".into(),
                age_secs: 0,
                accuser: None,
                proof: Proof::sign(&key, node, 3, addr, "bob", left),
            };
            assert!(u.proven(), "left {left}");
            // An accusation carries the accused's alive claim; neither it
            // nor its age is signed by the accused (the accuser signs its
            // accusation).
            if !left {
                let carol = addr_key("10.0.0.3:7000".parse().unwrap());
                for state in [MemberState::Suspect, MemberState::Dead] {
                    let accused = MemberUpdate {
                        state,
                        age_secs: 90,
                        accuser: Some(Accusation::sign(&carol, node, 3)),
                        ..u.clone()
                    };
                    assert!(accused.proven(), "{state:?}");
                }
            }
            // Every part the member signed: changed, the proof fails.
            let changed: [fn(&mut MemberUpdate); 8] = [
                |u| u.node.incarnation += 1,
                |u| u.version += 1,
                |u| u.addr.set_port(7001),
                |u| u.name = "eve".into(),
                // The other departure flag: an alive claim is no departure,
                // a departure no alive claim.
                |u| {
                    u.state = if u.state == MemberState::Left {
                        MemberState::Dead
                    } else {
                        MemberState::Left
                    }
                },
                |u| u.node.id = Id::of_addr("10.0.0.3:7000".parse().unwrap()),
                |u| {
                    let mut sig = u.proof.sig.to_bytes();
                    sig[0] ^= 1;
                    u.proof.sig = ed25519_dalek::Signature::from_bytes(&sig);
                },
                |u| u.proof = Proof::none(),
            ];
            for (i, change) in changed.iter().enumerate() {
                let mut forged = u.clone();
                change(&mut forged);
                assert!(!forged.proven(), "left {left}, change {i}");
            }
            // Signed by another key, which it carries: not the member's.
            let eve = addr_key("10.0.0.3:7000".parse().unwrap());
            let by_eve = MemberUpdate {
                proof: Proof::sign(&eve, node, 3, addr, "bob", left),
                ..u.clone()
            };
            assert!(!by_eve.proven());
            // The member's key with another key's signature.
            let borrowed = MemberUpdate {
                proof: Proof {
                    key: u.proof.key,
                    ..by_eve.proof
                },
                ..u.clone()
            };
            assert!(!borrowed.proven());
        }
    }

    #[test]
    fn a_hello_tells_its_speakers_entry() {
        let (key, node, addr) = bob();
        let h = Hello {
            version: PROTOCOL_VERSION,
            node,
            addr,
            name: "bob".into(),
            member_version: 3,
            proof: Proof::sign(&key, node, 3, addr, "bob", false),
            degree: 2,
            members_hash: 1,
            chat_hash: 2,
            chat_mark: 3,
            beacon: None,
            bridge: true,
            shortcut: false,
        };
        let u = h.entry();
        assert_eq!(
            (u.node, u.addr, u.version, u.state, &*u.name, u.age_secs, u.accuser),
            (node, addr, 3, MemberState::Alive, "bob", 0, None)
        );
        assert!(u.proven());
        // Its version is signed too.
        let later = Hello {
            member_version: 4,
            ..h
        };
        assert!(!later.entry().proven());
    }

    #[test]
    fn a_chat_is_authentic_only_as_its_author_signed_it() {
        let c = signed_chat();
        assert!(c.authentic());
        // Every part the author signed: changed, the signature fails.
        let changed: [fn(&mut Chat); 6] = [
            |c| c.id.seq += 1,
            |c| c.id.origin.incarnation += 1,
            |c| c.name = "eve".into(),
            |c| c.text = "hello, world!".into(),
            |c| c.sent_ms += 1,
            |c| {
                let mut sig = c.sig.to_bytes();
                sig[0] ^= 1;
                c.sig = ed25519_dalek::Signature::from_bytes(&sig);
            },
        ];
        for (i, change) in changed.iter().enumerate() {
            let mut forged = c.clone();
            change(&mut forged);
            assert!(!forged.authentic(), "change {i}");
        }
        // Another life's id: the key is not its author's.
        let mut other = c.clone();
        other.id.origin.id = Id::of_addr("10.0.0.3:7000".parse().unwrap());
        assert!(!other.authentic());
        // Signed by another key, which it carries: not the origin's key.
        let eve = addr_key("10.0.0.3:7000".parse().unwrap());
        let by_eve = Chat::signed(&eve, c.id, c.name.clone(), c.text.clone(), c.sent_ms);
        assert!(!by_eve.authentic());
        // The origin's key with another key's signature.
        let mut borrowed = by_eve.clone();
        borrowed.key = c.key;
        assert!(!borrowed.authentic());
    }
}
