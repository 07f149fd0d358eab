//! What goes into a node and what comes out of it.

use crate::message::{Id, Message, MsgId, NodeKey};
use crate::wire;
use std::net::SocketAddr;
use std::sync::Arc;

/// A transport connection, named by the driver. Ids are never reused within
/// one node's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Everything that can happen to a node.
///
/// Most inputs are messages, each moved once into [`Node::step`]: keeping
/// the message inline spares an allocation per message, at the price of
/// a few hundred bytes for the rarer inputs.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Input {
    /// A transport connection opened. `dialed` is the address this node
    /// asked for in [`Output::Connect`], or `None` for an accepted one.
    Connected {
        /// The driver's name for the connection.
        conn: ConnId,
        /// The dialled address, for outbound connections.
        dialed: Option<SocketAddr>,
        /// The peer's identity as the adapter's handshake proved it
        /// ([`Id::of_key`] of its public key), or `None` from an adapter
        /// that proves none: a hello naming another id is refused.
        peer: Option<Id>,
    },
    /// A dial asked for with [`Output::Connect`] failed or timed out. The
    /// driver answers every `Connect` with `Connected` or `ConnectFailed`.
    ConnectFailed {
        /// The address that could not be reached.
        addr: SocketAddr,
    },
    /// A connection closed: by the peer, by an error, or after
    /// [`Output::Close`].
    Disconnected {
        /// The connection.
        conn: ConnId,
    },
    /// A decoded message arrived on a connection.
    Message {
        /// The connection it came on.
        conn: ConnId,
        /// The message.
        msg: Message,
    },
    /// The payload of one frame arrived undecoded. Malformed or oversized
    /// payloads are counted and the connection closed.
    Frame {
        /// The connection it came on.
        conn: ConnId,
        /// The frame payload, without its length prefix.
        payload: Vec<u8>,
    },
    /// A framing error on a connection (for example an oversized length
    /// prefix), found by the driver before a payload could be cut out. The
    /// connection is closed and the error counted.
    BadFrame {
        /// The connection at fault.
        conn: ConnId,
        /// What was wrong.
        error: wire::WireError,
    },
    /// The deadline from [`Node::poll_timeout`] passed. Harmless at any
    /// other time.
    Timeout,
    /// Local command: join the group through the node at `addr`.
    Join {
        /// Any member's address.
        addr: SocketAddr,
    },
    /// Local command: send a chat message to the group.
    Send {
        /// The text; at most [`Config::max_text_len`] bytes.
        text: String,
        /// The author's wall-clock time, in milliseconds since the Unix
        /// epoch (0: unknown), carried with the message for display only.
        /// The driver reads the clock; the node never does.
        wall_ms: u64,
    },
    /// Local command: leave the group gracefully. Afterwards the node only
    /// closes connections.
    Leave,
}

/// Everything a node asks its driver to do, or tells its user.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send a message on a connection (in order, after earlier sends).
    Send {
        /// The connection.
        conn: ConnId,
        /// The message.
        msg: Message,
    },
    /// Open a connection to `addr`; answer with [`Input::Connected`] or
    /// [`Input::ConnectFailed`]. `Connected` is taken as proof that a node
    /// answers there (a probe is closed on it, a failing member's count is
    /// reset): a driver whose transport can accept for a dead process (a
    /// kernel backlog) should report it only once the peer's first bytes
    /// arrive, as the TCP adapter does.
    Connect {
        /// The address to dial.
        addr: SocketAddr,
    },
    /// Close a connection after the messages already sent on it. The node
    /// has forgotten it; a later `Disconnected` for it is ignored.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Something for the user.
    Event(Event),
}

/// Why a node left the roster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DownReason {
    /// It stopped answering and was declared dead.
    Dead,
    /// It left gracefully.
    Left,
}

/// What a local command was refused for. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The text is longer than [`Config::max_text_len`].
    TextTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The node has left; it sends nothing more.
    AlreadyLeft,
}

/// Events for the user of a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A node entered the roster.
    PeerUp {
        /// Its identity and incarnation.
        node: NodeKey,
        /// Where it listens.
        addr: SocketAddr,
        /// Its display name.
        name: Arc<str>,
    },
    /// A member in the roster came back in a later life (it restarted,
    /// perhaps on another address): the same member, its earlier life gone.
    PeerRestarted {
        /// Its identity and new incarnation.
        node: NodeKey,
        /// Where it listens now.
        addr: SocketAddr,
        /// Where its earlier life listened.
        previous_addr: SocketAddr,
        /// Its display name.
        name: Arc<str>,
    },
    /// A node left the roster.
    PeerDown {
        /// Its identity and incarnation.
        node: NodeKey,
        /// Where it listened.
        addr: SocketAddr,
        /// Its display name.
        name: Arc<str>,
        /// Dead or left.
        reason: DownReason,
    },
    /// A chat message, delivered exactly once and in per-sender order (own
    /// messages included).
    Chat {
        /// Sender life and seq.
        id: MsgId,
        /// Where the sender listens, as this node last knew it (`None`: a
        /// member it never knew, in history).
        addr: Option<SocketAddr>,
        /// Sender's display name.
        name: Arc<str>,
        /// The text.
        text: Arc<str>,
        /// The author's wall-clock time when it was sent, in milliseconds
        /// since the Unix epoch (0: unknown), as the author's driver gave
        /// it: for display only, unverified.
        sent_ms: u64,
        /// How it came: live, by repair, or in a newcomer's catch-up.
        via: Via,
    },
    /// Messages `first..=last` of a stream could not be obtained in time and
    /// are skipped; later ones are delivered.
    Gap {
        /// The stream.
        origin: NodeKey,
        /// Where its author listens, as this node last knew it.
        addr: Option<SocketAddr>,
        /// First missing seq.
        first: u64,
        /// Last missing seq.
        last: u64,
    },
    /// This node was accused of being dead or gone and refuted it by
    /// raising its version (its life and chat stream go on).
    Refuted {
        /// Its life (unchanged unless a later life of its id was
        /// claimed by someone else).
        incarnation: u64,
        /// The new version.
        version: u32,
    },
    /// A local command was refused.
    Refused(Refusal),
}

/// How a delivered chat reached this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Live, through the broadcast tree or a lazy link's graft.
    Live,
    /// Sent again by a neighbour's anti-entropy repair, or in the answer
    /// to a join of a member that had lost every link: it was missed live
    /// (a split, a pause, a broken link).
    Repair,
    /// Part of the recent history a node is handed when it joins for the
    /// first time (before it ever was a member of a group, however long
    /// after its start): written before this node was there.
    CatchUp,
}

impl Via {
    /// Whether it came from history (repair or catch-up) rather than live.
    pub fn is_history(self) -> bool {
        self != Via::Live
    }
}
