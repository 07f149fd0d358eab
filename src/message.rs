//! The messages nodes exchange: protocol v1.
//!
//! Every connection starts with a [`Hello`] (or [`Message::Join`] from a
//! node that has not joined yet) in both directions. Everything after that is
//! membership gossip, heartbeats, chat floods and history repair.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

/// The protocol version carried in every handshake. A peer with another
/// version is refused.
pub const PROTOCOL_VERSION: u16 = 1;

/// One life of one node: its advertised address and incarnation.
///
/// A restart, or a refutation of a death notice, gives a higher incarnation;
/// notices about a lower one no longer apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeKey {
    /// The address the node listens on and advertises.
    pub addr: SocketAddr,
    /// Grows on every restart and every refutation.
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
}

/// The state a member is in, ordered by precedence at equal incarnation:
/// `Left` beats `Dead` beats `Suspect` beats `Alive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberState {
    /// Reachable as far as anyone knows.
    Alive,
    /// Accused of being dead by stale news (a peer list from across a
    /// healed split); still in the roster until the suspicion times out, so
    /// the accused has time to refute.
    Suspect,
    /// Declared dead by a neighbour that stopped hearing from it.
    Dead,
    /// Left gracefully.
    Left,
}

/// One entry of a peer list: what the sender believes about one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberUpdate {
    /// The node and life this entry is about.
    pub node: NodeKey,
    /// Its state in that life.
    pub state: MemberState,
    /// Its display name.
    pub name: Arc<str>,
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
}

/// Cheap anti-entropy probe sent to one random neighbour per sync round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sync {
    /// Order-independent hash of the alive members `(addr, incarnation)`.
    pub members_hash: u64,
    /// Hash of the chat digest: every stream with its highest contiguous seq.
    pub chat_hash: u64,
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

/// Why a connection is being closed on purpose (not a failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ByeReason {
    /// The sender has no free connection slot.
    Full,
    /// The sender already has another connection to the receiver.
    Duplicate,
}

/// Every message of protocol v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Handshake from a node that has not joined yet: asks for the full
    /// membership and recent history.
    Join(Hello),
    /// Handshake on any other connection.
    Hello(Hello),
    /// Membership: the full view (`full`) or recent changes.
    PeerList {
        /// True for a whole view (join answer, slow repair), false for a delta.
        full: bool,
        /// The entries.
        members: Vec<MemberUpdate>,
    },
    /// Heartbeat; answered with a [`Message::Pong`] carrying the same nonce.
    Ping(u32),
    /// Heartbeat answer.
    Pong(u32),
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
}

impl Message {
    /// A short lowercase name for logs, traces and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Join(_) => "join",
            Message::Hello(_) => "hello",
            Message::PeerList { .. } => "peers",
            Message::Ping(_) => "ping",
            Message::Pong(_) => "pong",
            Message::Chat(_) => "chat",
            Message::Leave(_) => "leave",
            Message::Bye(_) => "bye",
            Message::Sync(_) => "sync",
            Message::Digest(_) => "digest",
            Message::History(_) => "history",
            Message::Prune => "prune",
            Message::Graft(_) => "graft",
            Message::IHave(_) => "ihave",
        }
    }
}
