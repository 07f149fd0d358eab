//! Counters and table sizes, for reports and invariant checks.

use super::announce::{MAX_HELD_PAYLOADS, MAX_QUEUED};
use super::{MAX_ARRIVALS, MAX_PROBES, MAX_PROBING, MAX_RECENT, MAX_SEEDS, MAX_URGENT};
use crate::config::Config;

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
    /// Hellos naming an id other than the one the adapter's handshake
    /// proved (closed).
    pub impostors: u64,
    /// Chats whose signature is not their author's: dropped before they
    /// were stored, passed on or delivered.
    pub forged: u64,
    /// Member entries (and hellos) whose life, version, address, name or
    /// departure the member did not sign: dropped before they changed
    /// anything.
    pub forged_state: u64,
    /// Accusations (suspicions, deaths) taken and passed on but not
    /// counted: their accuser's accusations kept being refuted
    /// (`Config::accuser_allowance`).
    pub accusations_limited: u64,
    /// Times an accuser reached `Config::accuser_allowance` refuted
    /// accusations here, and its accusations stopped counting.
    pub accusers_limited: u64,
    /// Chat texts over the length limit.
    pub text_too_long: u64,
    /// Chat copies that arrived again (dedup at work).
    pub duplicates: u64,
    /// Tree links swapped for a lazy link whose announcement came
    /// noticeably earlier than the message over the tree.
    pub rerouted: u64,
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
    /// Members this node suspected on its own evidence (it could not reach
    /// them, nor could the neighbours it asked).
    pub suspicions: u64,
    /// Suspicions that ran out at this node and became deaths.
    pub deaths_detected: u64,
    /// Times this node refuted an accusation.
    pub refutations: u64,
    /// Chat messages sent by repair.
    pub repaired_sent: u64,
    /// Times this node stopped hearing the leader's overlay beacons and put
    /// its lazy links back on the broadcast tree.
    pub overlay_mends: u64,
    /// Times this node still heard no beacon after that and dialled the
    /// leader: its part of the overlay was cut off.
    pub overlay_dials: u64,
    /// Times others accused a member this node had just reached itself, so
    /// it dialled that member to join their parts of the overlay (and
    /// handed it the accusation to refute).
    pub bridge_dials: u64,
    /// Times a ring predecessor failed and this node dialled the next live
    /// one to bridge the gap in the overlay.
    pub ring_dials: u64,
    /// Times a member this node probed showed it was in another part of
    /// the overlay, so this node dialled it to join the parts: it held a
    /// newer beacon from the leader than this node, whose beacons had
    /// stopped coming (or one from another member, two past the newest
    /// here), or its chat differed at a settled mark.
    pub beacon_dials: u64,
    /// Times this node sat deeper on the broadcast tree than the roster's
    /// size needs and dialled its grandparent as a shortcut (see
    /// `Node::shortcut`).
    pub shortcut_dials: u64,
    /// Times this node had heard nothing over any neighbour link for a
    /// silence's time while chat flowed, and pinged every one of them
    /// (see `Node::maintain`).
    pub quiet_rounds: u64,
    /// Links a graft for missing messages had put on the broadcast tree,
    /// taken off it again once copies came twice (see
    /// `Node::duplicate_over`).
    pub mends_pruned: u64,
    /// Prunes left unheeded: they crossed this node's graft of the same
    /// link (see `Node::on_prune`).
    pub prunes_crossed: u64,
    /// Announced messages that no announcer's answer brought after every
    /// round of asks, each sending this node's digest to a neighbour (see
    /// `Node::graft_missing`).
    pub announced_lost: u64,
    /// Beacons dropped: from a member not in the roster, or sooner than
    /// a tenth of an interval after the last one of that leader.
    pub beacons_dropped: u64,
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
    /// Probes and indirect checks in flight.
    pub probing: usize,
    /// What waits for its pace: chat payloads and announced ids for their
    /// link's window (`Config::chat_batch`, `Config::ihave_interval`),
    /// membership news for the next flood or batch of arrivals.
    pub outbox: usize,
}

impl Config {
    /// The most each table of [`TableSizes`] may hold at a node run with
    /// this config and given `seeds` join addresses. The bounds come from
    /// the same values the node enforces:
    ///
    /// - members: `max_members`; neighbours: `max_connections`; accepted
    ///   connections waiting for a hello: `max_handshaking`;
    /// - dials in flight: the node fills its free neighbour slots (its
    ///   dials count against them, so at most `max_connections`), re-dials
    ///   each neighbour whose link dropped (at most `max_connections`
    ///   more), keeps at most [`MAX_PROBES`] probes in flight, starts one
    ///   reconnect dial per `reconnect_interval` (each given up after twice
    ///   `handshake_timeout`), and dials its seeds;
    /// - open connections: the neighbours, the accepted ones waiting and
    ///   the dials (a dial that connects has `handshake_timeout` to say
    ///   hello);
    /// - chat streams: twice `max_members` (members' streams and departed
    ///   ones still in history); held-back messages: `max_holdback`;
    /// - history: `history_max`; membership changes queued for gossip:
    ///   [`MAX_RECENT`]; probes and checks in flight: [`MAX_PROBING`], each
    ///   probe of a non-neighbour a dial and a connection too;
    /// - the outbox: per open connection, a full batch of payloads and
    ///   one of announced ids (each is written at once when full), and
    ///   the urgent news and arrivals that go out at once when full.
    pub fn table_bounds(&self, seeds: usize) -> TableSizes {
        let every = self.reconnect_interval.as_millis().max(1);
        let reconnects = (2 * self.handshake_timeout.as_millis()).div_ceil(every) as usize + 1;
        let dialing =
            2 * self.max_connections + MAX_PROBES + MAX_PROBING + reconnects + seeds.max(MAX_SEEDS);
        let connections = self.max_connections + self.max_handshaking + dialing;
        TableSizes {
            members: self.max_members,
            connections,
            neighbours: self.max_connections,
            accepting: self.max_handshaking,
            dialing,
            streams: self.max_members.saturating_mul(2),
            held: self.max_holdback,
            history: self.history_max,
            recent: MAX_RECENT,
            probing: MAX_PROBING,
            outbox: connections * (MAX_HELD_PAYLOADS + MAX_QUEUED) + MAX_URGENT + MAX_ARRIVALS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_bounds_count_every_source_of_dials() {
        let b = Config::lan().table_bounds(1);
        assert_eq!((b.neighbours, b.accepting), (8, 32));
        // 8 slots + 8 re-dials + 16 probes + pings + 4 reconnects + seeds.
        assert_eq!(b.dialing, 2 * 8 + MAX_PROBES + MAX_PROBING + 4 + MAX_SEEDS);
        assert_eq!(b.connections, 8 + 32 + b.dialing);
        assert_eq!(b.recent, MAX_RECENT);
    }
}
