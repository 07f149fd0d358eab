//! Counters and table sizes, for reports and invariant checks.

/// Counters of everything dropped or refused, and of work done. All grow
/// monotonically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Payloads that did not decode.
    pub malformed: u64,
    /// Frames over the size limit.
    pub oversized: u64,
    /// Handshakes with another protocol version.
    pub bad_version: u64,
    /// Messages that made no sense where they came (before a handshake, on
    /// an unknown connection, a second hello, a forged leave...).
    pub unexpected: u64,
    /// Chat texts over the length limit.
    pub text_too_long: u64,
    /// Chat copies that arrived again (dedup at work).
    pub duplicates: u64,
    /// Chat messages delivered to the user.
    pub delivered: u64,
    /// Messages past a gap not held back because the hold-back was full
    /// (they wait in the history store instead).
    pub held_dropped: u64,
    /// Gaps given up.
    pub gaps: u64,
    /// New members (or chat streams) refused because the table was full.
    pub members_refused: u64,
    /// Chat streams of never-known senders forgotten to make room for
    /// another stream.
    pub streams_evicted: u64,
    /// Peer-list entries dropped for exceeding the per-list limit.
    pub peer_list_truncated: u64,
    /// Connections refused or closed for lack of slots.
    pub conns_refused: u64,
    /// Connections closed for not finishing their handshake in time.
    pub handshake_timeouts: u64,
    /// Neighbours declared dead by this node's heartbeat.
    pub deaths_detected: u64,
    /// Times this node refuted an accusation.
    pub refutations: u64,
    /// Chat messages sent by repair.
    pub repaired_sent: u64,
}

/// Sizes of a node's bounded tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableSizes {
    /// Members known, alive or remembered dead.
    pub members: usize,
    /// Open connections, handshaken or not.
    pub connections: usize,
    /// Handshaken connections.
    pub neighbours: usize,
    /// Accepted connections still waiting for the peer's hello (at most
    /// `max_handshaking`).
    pub accepting: usize,
    /// Dials in flight.
    pub dialing: usize,
    /// Chat streams tracked.
    pub streams: usize,
    /// Messages held back for gaps.
    pub held: usize,
    /// Messages kept for repair.
    pub history: usize,
    /// Membership changes queued for gossip.
    pub recent: usize,
}
