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

/// One life of one node: its advertised address and incarnation.
///
/// A restart gives a higher incarnation; notices about a lower one no
/// longer apply. A life is also a chat stream: refuting an accusation does
/// not start a new life (see [`MemberUpdate::version`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeKey {
    /// The address the node listens on and advertises.
    pub addr: SocketAddr,
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
    /// The speaker's address and incarnation.
    pub node: NodeKey,
    /// The speaker's display name.
    pub name: Arc<str>,
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
}

/// A sign of life flooded over the broadcast tree by the member first on
/// the ring of address hashes (the leader): every node of the overlay part
/// that holds the leader hears it every `Config::beacon_interval`. A node
/// that holds the leader alive but stops hearing its beacons is in a part
/// of the overlay cut off from it, and dials it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Beacon {
    /// The leader's life.
    pub origin: NodeKey,
    /// Grows by one per beacon within the life.
    pub seq: u32,
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
    /// independent accusers that shorten a suspicion); otherwise `None`.
    pub accuser: Option<SocketAddr>,
}

/// A chat message as it travels: flooded live, or sent again by repair.
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
    /// looks at it, and nothing vouches for it.
    pub sent_ms: u64,
}

/// Cheap anti-entropy probe sent to a random neighbour each sync round
/// while the sender's view changes, more rarely while it stays the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sync {
    /// Order-independent hash of the alive members `(addr, incarnation)`.
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
        /// The member to probe.
        target: SocketAddr,
    },
    /// The target of a [`Message::ProbeReq`] answered.
    ProbeAck {
        /// The nonce of the request.
        nonce: u32,
        /// The member that answered.
        target: SocketAddr,
    },
    /// The sender cannot take this connection now; it closes it.
    Busy(Busy),
    /// A chat message, flooded.
    Chat(Chat),
    /// The sender leaves the group for good (this life).
    Leave(NodeKey),
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
    /// Push chat to the sender over this link again, starting with these
    /// messages (announced but never received).
    Graft(Vec<MsgId>),
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
        target: SocketAddr,
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
        }
    }
}
