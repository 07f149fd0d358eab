//! What the driver publishes about its node for readers on other threads
//! (a metrics endpoint): copies of the node's counters and table sizes,
//! taken on the driver thread. The node itself is never shared.

use gossip_chat::{MemberState, Node, Stats, TableSizes};
use std::sync::{Arc, Mutex};

/// Members of the node's table, by what the node believes of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberCounts {
    /// Believed alive.
    pub alive: usize,
    /// Suspected (still in the roster until the suspicion runs out).
    pub suspect: usize,
    /// Remembered dead.
    pub dead: usize,
    /// Remembered as having left.
    pub left: usize,
}

/// Work the adapter did around the node, counted by the driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdapterCounters {
    /// Chat messages the local user asked to send.
    pub chats_sent: u64,
    /// Protocol messages queued to neighbours (and others).
    pub messages_sent: u64,
    /// Frames received from peers.
    pub frames_received: u64,
    /// Signatures the driver thread verified itself, not verified ahead
    /// by a connection's reader (see [`gossip_chat::Checked`]): the
    /// verification work left on the node's one thread.
    pub signatures_on_driver: u64,
    /// Connections dropped because the peer did not keep up.
    pub slow_peers_dropped: u64,
    /// Handshakes refused, either way: no cluster key in common, another
    /// protocol version or program, a bad identity proof.
    pub handshakes_refused: u64,
    /// Handshakes that failed on the network (timeout, reset, closed).
    pub handshakes_failed: u64,
    /// Accepted connections cut while handshaking to make room for a newer
    /// one (too many handshakes under way).
    pub handshakes_busy: u64,
}

/// One picture of a node, taken on its driver thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The node's own counters.
    pub stats: Stats,
    /// Sizes of the node's tables.
    pub tables: TableSizes,
    /// Members by state.
    pub members: MemberCounts,
    /// The adapter's counters.
    pub adapter: AdapterCounters,
    /// Messages waiting in all connections' send queues together.
    pub send_queued: usize,
    /// The longest send queue of one connection.
    pub send_queue_max: usize,
    /// Bytes queued for sending over all connections (bounded by
    /// `NetConfig::send_queue_bytes`).
    pub send_queued_bytes: usize,
    /// Frames and connection events waiting for the driver.
    pub inbox: usize,
    /// The node's current life (it grows when the node refutes).
    pub incarnation: u64,
}

impl Snapshot {
    /// Fills in what comes from the node itself.
    pub(crate) fn of_node(node: &Node) -> Snapshot {
        let mut members = MemberCounts::default();
        for m in node.members() {
            match m.state {
                MemberState::Alive => members.alive += 1,
                MemberState::Suspect => members.suspect += 1,
                MemberState::Dead => members.dead += 1,
                MemberState::Left => members.left += 1,
            }
        }
        Snapshot {
            stats: node.stats().clone(),
            tables: node.table_sizes(),
            members,
            incarnation: node.key().incarnation,
            ..Snapshot::default()
        }
    }
}

/// Where the driver puts its latest [`Snapshot`] and readers take a copy:
/// one slot behind a mutex held only to copy in or out.
#[derive(Clone, Debug, Default)]
pub struct SnapshotBoard(Arc<Mutex<Option<Snapshot>>>);

impl SnapshotBoard {
    /// An empty board.
    pub fn new() -> SnapshotBoard {
        SnapshotBoard::default()
    }

    /// The latest snapshot, if the driver published one yet.
    pub fn latest(&self) -> Option<Snapshot> {
        self.0
            .lock()
            .map_or_else(|e| e.into_inner().clone(), |s| s.clone())
    }

    pub(crate) fn publish(&self, snapshot: Snapshot) {
        match self.0.lock() {
            Ok(mut slot) => *slot = Some(snapshot),
            Err(e) => *e.into_inner() = Some(snapshot),
        }
    }
}
