//! The node: protocol v2 as a pure state machine.
//!
//! The type and its driving contract live here; the protocol's parts are
//! in the submodules, each an `impl Node` block of its own.

use crate::config::Config;
use crate::history::{Store, Streams};
use crate::message::{
    Beacon, Busy, ByeReason, Chat, Digest, Graft, Hello, History, Id, MemberState, MemberUpdate,
    Message, MsgId, NodeKey, Proof, Sync, PROTOCOL_VERSION,
};
use crate::peers::{rank, ring_pos, supersedes, Accusers, Member, Members, Recent};
use crate::time::{Duration, Instant};
use crate::wire;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

mod announce;
mod chat;
mod detector;
mod io;
mod links;
mod membership;
mod overlay;
mod stats;
mod timers;

use detector::Detector;
pub use detector::MAX_PROBING;
pub use io::{ConnId, DownReason, Event, Input, Output, Refusal, Via};
pub use stats::{Stats, TableSizes};
use timers::{Timer, Timers};

#[derive(Debug)]
struct Conn {
    /// For a connection this node dialled: the address it dialled.
    dialed: Option<SocketAddr>,
    /// For a dial to a member: the member it meant to reach.
    wanted: Option<Id>,
    /// The peer's identity as the adapter's handshake proved it.
    proven: Option<Id>,
    peer: Option<NodeKey>,
    opened: Instant,
    last_heard: Instant,
    /// When this node last sent anything over it.
    last_sent: Instant,
    /// The first message this node sent over it since it last heard from
    /// it: an answer, or anything, is awaited since then.
    awaiting: Option<Instant>,
    /// The first message other than chat this node sent over it since it
    /// last heard from it (see [`Node::awaited_since`]).
    awaiting_other: Option<Instant>,
    /// When this node last answered a membership mismatch over this link
    /// with its bucket digest.
    last_repair: Option<Instant>,
    /// When the peer last answered a mismatch over this link with its
    /// bucket digest: it leaves the next for `full_sync_cooldown`.
    peer_repair: Option<Instant>,
    /// The views differed at handshake: check again over this link at the
    /// next sync round, once news in flight has landed.
    recheck: bool,
    /// When the peer last pinged this node over it: it watches this link
    /// (over a probe connection a prober keeps open here: when it last
    /// pinged, see [`Node::push_answers`]).
    pinged: Option<Instant>,
    /// When this node last sent a heartbeat over it.
    ping_sent: Option<Instant>,
    /// The nonce of that heartbeat.
    ping_nonce: u32,
    /// Its answer came later than an answer is due (`answer_due` in
    /// `links.rs`): the peer runs late (see [`Node::awaited_since`]).
    answered_late: bool,
    /// The peer's neighbour count at handshake.
    degree: u16,
    /// Off the broadcast tree: chat is not pushed over it (repair still
    /// runs over it).
    lazy: bool,
    /// The peer asked this node not to announce over it while it is off
    /// the tree (`Message::Listen`).
    quiet: bool,
    /// This node asked the peer not to announce over it (see
    /// [`Node::choose_announcers`]).
    hushed: bool,
    /// When this node last asked the peer to push chat over it again
    /// (`Graft`): announcements the peer wrote before that landed name
    /// messages it will not push.
    grafted: Option<Instant>,
    /// Put on the tree by this node's graft for messages announced over it
    /// that the tree did not bring in time: a repair, not a place the
    /// leader's beacons gave it. With `Config::rooted_tree`, once copies
    /// come twice the tree delivers again, and the link leaves it (see
    /// [`Node::duplicate_over`]).
    mend: bool,
    /// When this node last took it off the tree (`Message::Prune`): what
    /// the peer pushed before the prune reached it still comes for a
    /// round trip, and is not pruned again meanwhile.
    pruned: Option<Instant>,
    /// When chat payloads were last written over it (for
    /// `Config::chat_batch`).
    payload_sent: Option<Instant>,
    /// Dialled only to ping the member once (closed after the answer).
    probe: bool,
    /// Round-trip time of the link, measured at the handshake: the dial
    /// to its answer for the dialler, its own answer to the dialler's
    /// hello for the acceptor.
    rtt: Option<Duration>,
    /// Chat copies that came over it first, and again (decayed): what
    /// decides whether it leaves the tree.
    firsts: u16,
    dups: u16,
    /// This node asked to join over it before it was ever a member: the
    /// history that answers is a newcomer's catch-up, not a repair.
    first_join: bool,
    /// A chat repair over it held back messages as still in flight to the
    /// peer: once they would have landed, this node sends its digest again
    /// (see [`Node::recheck_held_back`]).
    held_back: Option<Instant>,
    /// Made to join two parts of the overlay (this node's hello said so,
    /// or the peer's did, or the peer's beacon was behind): a repair over
    /// it just after it opens holds nothing back as in flight, since no
    /// other path between the parts can carry it (see
    /// [`Node::on_digest`]).
    bridge: bool,
    /// Over a probe connection: the beacon this node last put in an answer
    /// to a ping (the next answer leaves out the same one), or last found
    /// in an answer (one that leaves it out means that one still).
    beacon: Option<Beacon>,
    /// Over a probe connection: the chat hash this node last put in an
    /// answer to a ping (the next answer leaves out the same one).
    chat_sent: Option<u64>,
    /// A heartbeat over this watched neighbour link awaits its answer: if
    /// none has come by then, the link is checked through others while its
    /// silence runs out (see [`Node::early_checks`]).
    early_at: Option<Instant>,
    /// The place on the tree the peer's last copy of the followed
    /// leader's beacon named: the leader, that beacon's number, and the
    /// peer's way from the leader (milliseconds, hops). A peer that sat
    /// no later than this node is not sent the next beacon over a link
    /// both ends hold off the tree (see [`Node::push_beacon`]).
    beacon_copy: Option<(Id, u32, u32, u8)>,
}

impl Conn {
    /// Accepted, and the peer has not said who it is yet: what
    /// `max_handshaking` bounds.
    fn accepting(&self) -> bool {
        self.dialed.is_none() && self.peer.is_none() && !self.probe
    }

    /// Accepted from a prober that pinged before any hello and keeps it
    /// open (for its ring predecessor): answers are pushed over it.
    fn kept_by_prober(&self) -> bool {
        self.dialed.is_none() && self.peer.is_none() && self.probe
    }

    /// Whether the peer's end holds the link off the tree as far as this
    /// end knows: this node's last word over it was a prune, not a graft.
    /// A graft from the peer that crossed that prune put this end back on
    /// the tree (it pushes), while the peer's end stays off it.
    fn peer_holds_off(&self) -> bool {
        self.pruned
            .is_some_and(|p| self.grafted.is_none_or(|g| p > g))
    }
}

/// What part of the sender's view a peer list covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cover {
    /// Changes only.
    Delta,
    /// The whole view (one frame of it: the id range it spans).
    Full,
    /// The whole view within these digest buckets.
    Buckets(u64),
}

/// The pace of anti-entropy: a [`Sync`] every `sync_interval` while the
/// view changes or a neighbour finds it different, more rarely while both
/// stay the same.
#[derive(Debug, Default)]
struct SyncPace {
    /// The hashes the last round saw.
    last: (u64, u64),
    /// Rounds since a sync went out.
    skipped: u32,
    /// Syncs sent since the view last changed: the first
    /// `STEADY_SYNCS` go every round, then every `2^(quiet -
    /// STEADY_SYNCS)` rounds.
    quiet: u32,
    /// The next sync of a settled view goes over the ring link.
    ring_turn: bool,
}

#[derive(Debug, Clone, Copy)]
struct Dial {
    /// The member dialled, if the address is a member's (not a seed's).
    member: Option<Id>,
    since: Instant,
    /// Dialled to check whether a neighbour whose connection dropped is
    /// still there; failure means dead.
    verify: bool,
    /// Dialled only to see whether a member exists while the member table
    /// is nearly full: closed as soon as it connects.
    probe: bool,
    /// Dialled to ping the member (a liveness probe): the ping's nonce.
    ping: Option<u32>,
}

/// Incarnations from here up are refused, so that no peer can push a node
/// to a life it cannot move past (one higher).
const MAX_INCARNATION: u64 = 1 << 62;
/// Versions from here up are refused, so that no peer can push a node to a
/// version it cannot refute (the refutation is one higher).
const MAX_VERSION: u32 = 1 << 30;
/// Chat seqs from here up are refused: no honest sender gets there, and
/// arithmetic on seqs cannot overflow.
const MAX_SEQ: u64 = 1 << 62;
/// Farthest a chat's seq may lie past its stream's frontier here (the
/// last seq delivered, 0 for a stream not yet heard of): a gap that wide
/// could never be repaired from a bounded history, and an author that
/// jumps its own stream there would leave every node waiting on it.
const MAX_SEQ_JUMP: u64 = 1 << 20;
/// Longest display name accepted from a peer, in bytes.
const MAX_NAME_LEN: usize = 256;

/// Who a node is: its signing key (its id is that of the public half),
/// the address it listens on and advertises, its life, and its display
/// name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Its ed25519 signing key: it signs the node's chat, and its public
    /// half names the node in every roster ([`Identity::id`]).
    pub key: ed25519_dalek::SigningKey,
    /// Where peers reach it now.
    pub addr: SocketAddr,
    /// Its life: must grow on every restart (a wall-clock reading or a
    /// persisted counter), so that old death notices do not apply and new
    /// messages are not taken for old ones.
    pub incarnation: u64,
    /// Display name, at most 256 bytes.
    pub name: String,
}

impl Identity {
    /// An identity whose key is derived from the address
    /// ([`crate::message::addr_key`]): anyone can derive it, so it is for
    /// tests and the simulator only. Its id is [`Id::of_addr`].
    pub fn new(addr: SocketAddr, incarnation: u64, name: impl Into<String>) -> Self {
        let key = crate::message::addr_key(addr);
        Identity {
            key,
            addr,
            incarnation,
            name: name.into(),
        }
    }

    /// An identity from its parts: `secret` is the node's ed25519 secret
    /// key (the one its adapter proves in every handshake).
    pub fn keyed(
        secret: &[u8; 32],
        addr: SocketAddr,
        incarnation: u64,
        name: impl Into<String>,
    ) -> Self {
        Identity {
            key: ed25519_dalek::SigningKey::from_bytes(secret),
            addr,
            incarnation,
            name: name.into(),
        }
    }

    /// Its id: [`Id::of_key`] of its public key.
    pub fn id(&self) -> Id {
        Id::of_key(&self.key.verifying_key().to_bytes())
    }
}

/// Decides whether a chat is its author's and a member entry its member's.
/// Every node checks with [`Chat::authentic`] and [`MemberUpdate::proven`]
/// unless its driver installs another judge with
/// [`Node::set_authenticity`]: a simulator running thousands of nodes in
/// one process shares one that remembers each copy's answer, since every
/// node checks the same signed copies. A judge must answer as those do.
pub trait Authenticity: Send + std::marker::Sync + std::fmt::Debug {
    /// Whether `chat` was signed by its author.
    fn authentic(&self, chat: &Chat) -> bool;
    /// Whether the member that `u` is about signed its life, version,
    /// address and name (and its departure, for `Left`).
    fn proven(&self, u: &MemberUpdate) -> bool;
    /// Whether the accuser named in `u`, if any, signed its accusation
    /// ([`MemberUpdate::attributed`]).
    fn attributed(&self, u: &MemberUpdate) -> bool {
        u.attributed()
    }
}

/// [`Chat::authentic`] and [`MemberUpdate::proven`], each time.
#[derive(Debug)]
struct Verify;

impl Authenticity for Verify {
    fn authentic(&self, chat: &Chat) -> bool {
        chat.authentic()
    }

    fn proven(&self, u: &MemberUpdate) -> bool {
        u.proven()
    }
}

/// What a node knows about one other member: [`Node::members`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// Its identity and life.
    pub node: NodeKey,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its display name.
    pub name: Arc<str>,
    /// Alive, suspect, dead or left, as this node believes.
    pub state: MemberState,
    /// When this node last changed its belief about the member.
    pub since: Instant,
    /// Its refutation counter within the life.
    pub version: u32,
    /// Whether it is a neighbour (a handshaken connection).
    pub neighbour: bool,
    /// For a neighbour: when this node last heard from it.
    pub last_heard: Option<Instant>,
}

/// Bytes of a frame kept free for the envelope around batched entries.
const FRAME_SLACK: usize = 1024;

/// Upper bound of the encoded size of one peer-list entry.
fn update_size(u: &MemberUpdate) -> usize {
    u.name.len() + 40 + 96
}

/// Upper bound of the encoded size of one chat.
fn chat_size(c: &Chat) -> usize {
    c.text.len() + c.name.len() + 48 + 96
}

/// Splits `items` into batches whose summed `size` stays within `budget`
/// (an item bigger than the budget travels alone).
fn batches<T>(items: Vec<T>, size: impl Fn(&T) -> usize, budget: usize) -> Vec<Vec<T>> {
    if items.is_empty() {
        return Vec::new();
    }
    // Most lists fit in one frame: then they go as they are, not moved
    // item by item into a new one.
    if items.iter().map(&size).sum::<usize>() <= budget {
        return vec![items];
    }
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut cur = Vec::new();
    let mut used = 0;
    for it in items {
        let n = size(&it);
        if !cur.is_empty() && used + n > budget {
            out.push(std::mem::take(&mut cur));
            used = 0;
        }
        used += n;
        cur.push(it);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// How long a tombstone is kept even when the table is full: a live member
/// accused by forged news needs it to refute in place (its refutation would
/// otherwise be a new name, refused by a full table).
const TOMBSTONE_MIN_AGE: Duration = Duration::from_secs(60);
/// Probe dials in flight at once while the member table is under pressure.
pub const MAX_PROBES: usize = 16;
/// Most announced-but-missing messages tracked at once.
const MAX_MISSING: usize = 4096;
/// Most earlier messages of a stream asked for when a later one comes
/// ahead of them (see `pull_gap`).
const MAX_GAP_PULL: usize = 8;
/// How long after it last found chat lost a node announces every message
/// over every lazy link (see `pick_announcers`).
const LOSS_MEMORY: Duration = Duration::from_secs(10);
/// Most members remembered as back from the other side of a cut (see
/// `Node::back`): a split of thousands refutes thousands at once, and
/// what does not fit is taken as before.
const MAX_BACK: usize = 4096;

/// Most accusers a node keeps strikes for ([`Node::strikes`]).
const MAX_STRIKES: usize = 1024;

/// Refuted accusations held against one accuser: the count, less one per
/// `Config::accuser_forgive` since the last.
#[derive(Clone, Copy, Debug, Default)]
struct Strikes {
    count: u32,
    last: Instant,
}

impl Strikes {
    /// The count after forgiveness, at `now`.
    fn standing(&self, now: Instant, forgive: Duration) -> u32 {
        let per = forgive.as_millis().max(1);
        let gone = (now - self.last).as_millis() / per;
        self.count
            .saturating_sub(u32::try_from(gone).unwrap_or(u32::MAX))
    }
}
/// Most membership changes sent in one gossip round.
const GOSSIP_BATCH: usize = 64;

/// How long a node that hears from no one holds its suspicions before it
/// declares them deaths anyway (see `expire_suspicions`).
const ISOLATED_WAIT: Duration = Duration::from_secs(60);
/// How long arrivals wait to be sent together: a group that starts at once
/// floods a few lists rather than one small frame per member.
const ARRIVAL_BATCH: Duration = Duration::from_millis(10);
/// Over slow links arrivals wait longer: this share of a typical round
/// trip, up to `ARRIVAL_BATCH_MAX`.
const ARRIVAL_RTT_SHARE: u64 = 8;
/// The longest arrivals wait over slow links.
const ARRIVAL_BATCH_MAX: Duration = Duration::from_millis(25);
/// Most arrivals waiting for a batch; past it the batch goes at once.
const MAX_ARRIVALS: usize = 1024;
/// Urgent news (accusations, deaths, departures) goes out at once unless
/// some went out within this: then together with whatever else comes until
/// this after the last, each link all but what came over it. A burst (a
/// cut, a mass failure) costs one message per link per pace, not one per
/// piece of news, as memberlist gathers its broadcasts per gossip round.
/// A refutation never waits (it races its accusers' suspicions).
const URGENT_PACE: Duration = Duration::from_millis(50);
/// Most urgent news waiting at once.
const MAX_URGENT: usize = 256;
/// Most probe connections other members keep open to this node (each
/// member keeps one, to its ring predecessor); past it a probe connection
/// is closed after its answer.
const MAX_PROBE_LINKS: usize = 8;
/// A quiet node syncs at least every `2^MAX_SYNC_QUIET` sync intervals.
const MAX_SYNC_QUIET: u32 = 4;
/// Syncs that go every round after a change before the pace slows: news
/// that reached this node over a tree still forming may have missed
/// others (or others' news missed it), and a neighbour with the same gap
/// finds nothing different.
const STEADY_SYNCS: u32 = 3;
/// While chat flows with nothing lost, a node syncs at least every
/// `2^CHAT_SYNC_PACE` rounds.
const CHAT_SYNC_PACE: u32 = 2;
/// Suspicions held at once that make a burst, at the least (see
/// `Node::burst_in_sight`).
const BURST: usize = 3;
/// A burst is suspicions of at least one in this many of the members
/// known.
const BURST_SHARE: usize = 8;
/// Most recent membership changes kept for gossip rounds.
pub const MAX_RECENT: usize = 256;
/// Most members a node probes when sampling at random.
const SAMPLE_TRIES: usize = 8;
/// Members a busy node names for the dialler to try instead.
const BUSY_OTHERS: usize = 4;
/// Most join addresses a joining node keeps (its own and those named by
/// busy nodes).
pub(crate) const MAX_SEEDS: usize = 16;
/// How often a joined node dials the join addresses no member it knows
/// listens at (see `redial_lost_seeds`).
const SEED_REDIAL: Duration = Duration::from_secs(60);

/// One gossip-chat node: the whole protocol as a pure state machine.
///
/// # Driving contract
///
/// The node does no I/O, reads no clock and draws no global randomness: it
/// is `(state, input, now) -> (state, outputs)`. A driver (the simulator,
/// the TCP adapter, a test) runs this loop:
///
/// 1. feed every event with [`Node::handle`]: connections opening and
///    closing, frames or decoded messages, and local commands;
/// 2. after **every** call, drain and carry out the outputs it appended
///    (send, connect, close, user events), in order;
/// 3. call [`Node::poll_timeout`] and, when that instant comes, feed
///    [`Input::Timeout`].
///
/// `now` must never decrease between calls (a smaller value is treated as
/// the last one seen). A timeout fed early, late or twice is harmless: timers
/// only fire when due. Two nodes built with the same config, identity and
/// seed, fed the same inputs at the same instants, produce the same outputs.
///
/// ```
/// use gossip_chat::{Config, Identity, Input, Instant, Node, Output};
/// let addr = "127.0.0.1:7000".parse().unwrap();
/// let mut node = Node::new(Config::default(), Identity::new(addr, 1, "alice"), 42, Instant::ZERO).unwrap();
/// let mut out = Vec::new();
/// node.handle(Instant::from_millis(5), Input::Send { text: "hi".into(), wall_ms: 0 }, &mut out);
/// assert!(out.iter().any(|o| matches!(o, Output::Event(_))));
/// ```
#[derive(Debug)]
pub struct Node {
    cfg: Config,
    me: NodeKey,
    /// Where this node listens.
    addr: SocketAddr,
    /// Signs this node's chat.
    key: ed25519_dalek::SigningKey,
    /// Checks the chat of others.
    authenticity: Arc<dyn Authenticity>,
    /// This node's refutation counter within its life.
    version: u32,
    name: Arc<str>,
    /// This node's signature over its life, version, address and name
    /// ([`Node::sign_me`] renews it when one changes).
    proof: Proof,
    rng: ChaCha8Rng,
    now: Instant,
    left: bool,
    joined: bool,
    /// Has been a member of a group: a join of its completed, or a peer
    /// became its neighbour while it was joined. Until then, messages a
    /// join's answer brings were written before it was there.
    member: bool,
    next_seq: u64,
    members: Members,
    conns: BTreeMap<ConnId, Conn>,
    neighbours: BTreeMap<Id, ConnId>,
    dialing: BTreeMap<SocketAddr, Dial>,
    seeds: BTreeMap<SocketAddr, Instant>,
    /// The join addresses given to this node (`Input::Join`; at most
    /// [`MAX_SEEDS`]), not those busy nodes named: dialled again after
    /// joining while no member holds them (see `redial_lost_seeds`).
    given: BTreeSet<SocketAddr>,
    /// When the join addresses are next dialled if lost: once a minute,
    /// at a point of the minute drawn from this node's id, so that the
    /// nodes of one side of a split dial at different times.
    redial_at: Instant,
    /// Joins asked of this node while it was joining itself: answered
    /// once its own join completes (see `defer_join`).
    pending_joins: Vec<ConnId>,
    recent: Recent,
    /// How often this node's anti-entropy probes go out.
    sync: SyncPace,
    /// Arrivals waiting for the next batch, each with the link it came
    /// over (not sent back there).
    arrivals: Vec<(MemberUpdate, Option<ConnId>)>,
    /// Accusations and refutations waiting for the next flood (see
    /// [`Node::flood_updates`]), each with the links that brought it.
    urgent: Vec<(MemberUpdate, Vec<ConnId>)>,
    /// When urgent news last went out.
    urgent_sent: Instant,
    /// Announcements queued for lazy links, and announced messages not
    /// received yet.
    announce: announce::Announce,
    /// When this node last took in a chat message it did not have.
    last_new_chat: Instant,
    /// When this node last found chat lost on its way here (a gap ahead
    /// of a live message, or a message only repair brought; where tree
    /// links hold payloads, a gap the graft wait did not fill).
    last_loss: Option<Instant>,
    /// Suspects and when their suspicion runs out.
    suspects: BTreeMap<Id, Instant>,
    /// When this node last saw the mark of a cut among the accusations it
    /// holds: the accused accusing, or a suspect answering its own ping
    /// (see `Node::cut_in_sight`).
    cut_seen_at: Option<Instant>,
    /// Members this node suspected or held dead in a life that then came
    /// back alive (refuted), and until when the deaths they tell are taken
    /// as suspicions (see [`Node::on_peer_list`]). At most [`MAX_BACK`].
    back: BTreeMap<Id, Instant>,
    /// Accusers whose accusations were refuted, held against them (see
    /// `Node::limited`). At most [`MAX_STRIKES`].
    strikes: BTreeMap<Id, Strikes>,
    streams: Streams,
    store: Store,
    timers: Timers,
    detector: Detector,
    /// The leader's beacons: whether this node's part of the overlay is
    /// still joined to the rest.
    overlay: overlay::Overlay,
    /// Earliest time to look for more neighbours.
    next_dial: Instant,
    /// Dials to fill the last neighbour slots turned away as full since a
    /// neighbour was last lost: the look for more slows down with each.
    fill_refused: u32,
    /// When timers last ran, to notice that this node was frozen.
    last_tick: Instant,
    /// When this node last sent its own entry out again because others
    /// still spread an accusation it had already refuted.
    reasserted: Option<Instant>,
    /// When a neighbour and this node last found their chat different (a
    /// digest went either way): their part of the overlay is repairing
    /// losses, and a probed member's differing chat means nothing more.
    chat_repaired: Option<Instant>,
    /// The wake-up last asked of the driver, if it lay ahead.
    wake: Option<Instant>,
    stats: Stats,
}

impl Node {
    /// A node with this identity, its RNG seeded from `seed`, created at
    /// `now`. It knows nobody until it is told to [`Input::Join`] or someone
    /// connects. Fails, changing nothing, if the config is out of range.
    pub fn new(
        cfg: Config,
        identity: Identity,
        seed: u64,
        now: Instant,
    ) -> Result<Node, crate::ConfigError> {
        cfg.validate()?;
        let store = Store::new(cfg.history_max, cfg.history_max_age);
        let me_id = identity.id();
        Ok(Node {
            me: NodeKey {
                id: me_id,
                incarnation: identity.incarnation,
            },
            addr: identity.addr,
            proof: Proof::sign(
                &identity.key,
                NodeKey {
                    id: identity.id(),
                    incarnation: identity.incarnation,
                },
                0,
                identity.addr,
                &identity.name,
                false,
            ),
            key: identity.key,
            authenticity: Arc::new(Verify),
            version: 0,
            name: Arc::from(identity.name),
            rng: ChaCha8Rng::seed_from_u64(seed),
            now,
            left: false,
            joined: true,
            member: false,
            next_seq: 1,
            members: Members::default(),
            conns: BTreeMap::new(),
            neighbours: BTreeMap::new(),
            dialing: BTreeMap::new(),
            seeds: BTreeMap::new(),
            given: BTreeSet::new(),
            redial_at: now
                + SEED_REDIAL
                + Duration::from_millis(ring_pos(me_id) % SEED_REDIAL.as_millis()),
            pending_joins: Vec::new(),
            recent: Recent::default(),
            arrivals: Vec::new(),
            urgent: Vec::new(),
            urgent_sent: Instant::ZERO,
            sync: SyncPace::default(),
            suspects: BTreeMap::new(),
            cut_seen_at: None,
            back: BTreeMap::new(),
            strikes: BTreeMap::new(),
            announce: announce::Announce::default(),
            last_new_chat: Instant::ZERO,
            last_loss: None,
            streams: Streams::default(),
            store,
            timers: Timers::new(now, &cfg),
            detector: Detector::default(),
            overlay: overlay::Overlay::default(),
            next_dial: now,
            fill_refused: 0,
            last_tick: now,
            reasserted: None,
            chat_repaired: None,
            wake: None,
            stats: Stats::default(),
            cfg,
        })
    }

    /// This node's current life (the incarnation grows on refutation).
    pub fn key(&self) -> NodeKey {
        self.me
    }

    /// This node's refutation counter within its life: raised each time it
    /// refutes an accusation.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// This node's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This node's own member entry, signed: alive in its life and version
    /// at its address, as it tells others.
    pub fn own_entry(&self) -> MemberUpdate {
        self.my_update()
    }

    /// The config it runs with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Counters of dropped input and work done.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// True once [`Input::Leave`] was handled.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// The roster: every other node believed alive, by id.
    pub fn roster(&self) -> impl Iterator<Item = (NodeKey, &str)> + '_ {
        self.members
            .iter()
            .filter(|(_, m)| m.in_roster())
            .map(|(a, m)| (m.key(*a), &*m.name))
    }

    /// Every other member this node knows of, alive, suspect or remembered
    /// gone, in the member table's order; read-only, for display.
    pub fn members(&self) -> impl Iterator<Item = MemberInfo> + '_ {
        self.members.iter().map(|(id, m)| {
            let link = self.neighbours.get(id).and_then(|c| self.conns.get(c));
            MemberInfo {
                node: m.key(*id),
                addr: m.addr,
                name: m.name.clone(),
                state: m.state,
                since: m.since,
                version: m.version,
                neighbour: link.is_some(),
                last_heard: link.map(|c| c.last_heard),
            }
        })
    }

    /// The latest instant the node was fed (its clock as it last saw it).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Whether `id` is in the roster.
    pub fn knows_alive(&self, id: &Id) -> bool {
        self.members.get(id).is_some_and(Member::in_roster)
    }

    /// This node's id.
    pub fn id(&self) -> Id {
        self.me.id
    }

    /// Has `judge` decide whether a chat is its author's (see
    /// [`Authenticity`]).
    pub fn set_authenticity(&mut self, judge: Arc<dyn Authenticity>) {
        self.authenticity = judge;
    }

    /// The member whose overlay beacons this node follows (the member
    /// first on the ring of ids, if before this node), once it has joined.
    pub fn leader(&self) -> Option<Id> {
        self.overlay.leader()
    }

    /// Ids of the current neighbours (handshaken connections).
    pub fn neighbours(&self) -> impl Iterator<Item = Id> + '_ {
        self.neighbours.keys().copied()
    }

    /// Whether the message `id` is still in this node's history (the
    /// messages it keeps for repair).
    pub fn holds(&self, id: &MsgId) -> bool {
        self.store.get(id).is_some()
    }

    /// Sizes of every bounded table, for reports and invariant checks.
    pub fn table_sizes(&self) -> TableSizes {
        TableSizes {
            members: self.members.len(),
            connections: self.conns.len(),
            neighbours: self.neighbours.len(),
            accepting: self.conns.values().filter(|c| c.accepting()).count(),
            dialing: self.dialing.len(),
            streams: self.streams.map.len(),
            held: self.streams.held_total,
            history: self.store.len(),
            recent: self.recent.len(),
            probing: self.detector.len(),
            outbox: self.announce.outbox_len() + self.urgent.len() + self.arrivals.len(),
        }
    }

    /// Makes room for `n` members (at most `max_members`) in the member
    /// table at once, so that it does not grow step by step as the group
    /// is learned: for a driver that knows the group's size, such as a
    /// simulator running thousands of nodes. Only memory changes: what the
    /// node does is the same with or without it.
    pub fn reserve_members(&mut self, n: usize) {
        let room = n
            .min(self.cfg.max_members)
            .saturating_sub(self.members.len());
        self.members.reserve(room);
    }

    /// The instant at which the node next wants [`Input::Timeout`], or
    /// `None` after it has left.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.left {
            return None;
        }
        Some(self.timers.next().min(self.announce.next_due()))
    }

    /// Feeds one input at time `now`; appends what the node wants done to
    /// `out`. See the driving contract on [`Node`].
    pub fn handle(&mut self, now: Instant, input: Input, out: &mut Vec<Output>) {
        self.now = self.now.max(now);
        let first = out.len();
        if self.left {
            if let Input::Connected { conn, .. } = input {
                out.push(Output::Close { conn });
            }
            return;
        }
        match input {
            Input::Connected { conn, dialed, peer } => self.on_connected(conn, dialed, peer, out),
            Input::ConnectFailed { addr } => self.on_connect_failed(addr, true, out),
            Input::Disconnected { conn } => self.on_disconnected(conn, out),
            Input::Message { conn, msg } => self.on_message(conn, msg, out),
            Input::Frame { conn, payload } => {
                match wire::decode_payload(&payload, self.cfg.max_frame) {
                    Ok(msg) => self.on_message(conn, msg, out),
                    Err(e) => self.on_bad_frame(conn, e, out),
                }
            }
            Input::BadFrame { conn, error } => self.on_bad_frame(conn, error, out),
            Input::Timeout => self.on_timeout(out),
            Input::Join { addr } => {
                if addr != self.addr {
                    if self.neighbours.is_empty() {
                        self.joined = false;
                    }
                    self.seeds.insert(addr, self.now);
                    if self.given.len() < MAX_SEEDS {
                        self.given.insert(addr);
                    }
                    self.dial_addr(addr, None, false, out);
                }
            }
            Input::Send { text, wall_ms } => self.send_chat(text, wall_ms, out),
            Input::Leave => self.leave(out),
        }
        self.choose_announcers(out);
        // Announcements waiting for a link that is written to now go in
        // the same write (in the order of the first write to each link; no
        // allocation unless some link has any waiting).
        let mut riding: Vec<ConnId> = Vec::new();
        for o in &out[first..] {
            if let Output::Send { conn, .. } = o {
                if (self.announce.has_queued(*conn) || self.announce.has_held(*conn))
                    && !riding.contains(conn)
                {
                    riding.push(*conn);
                }
            }
        }
        for conn in riding {
            if let Some(chats) = self.announce.take_held(conn) {
                self.write_payloads(conn, chats, out);
            }
            if let Some(ids) = self.announce.take(conn) {
                self.send_ihave(conn, ids, out);
            }
        }
        // What the peers hear from this node, for the heartbeats.
        for o in &out[first..] {
            if let Output::Send { conn, msg } = o {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.last_sent = self.now;
                    // An answer to a ping (pushed or asked for), or a
                    // beacon, awaits nothing back.
                    if !matches!(
                        msg,
                        Message::Pong(_)
                            | Message::ProbePong { .. }
                            | Message::Beacon(_)
                            | Message::IHave(_)
                            | Message::Listen(_)
                    ) {
                        c.awaiting.get_or_insert(self.now);
                        if !matches!(msg, Message::Chat(_)) {
                            c.awaiting_other.get_or_insert(self.now);
                        }
                    }
                }
            }
        }
        // The wake-up the driver is now asked for, to tell a timer handled
        // late from a deadline that was already due when it was set.
        self.wake = self.poll_timeout().filter(|t| *t > self.now);
    }

    // ---- shared helpers ----------------------------------------------

    pub(super) fn random_neighbour(&mut self) -> Option<ConnId> {
        if self.neighbours.is_empty() {
            return None;
        }
        let i = self.below(self.neighbours.len());
        self.neighbours.values().nth(i).copied()
    }

    /// Where a sync round's membership check goes. Once the view has
    /// stayed the same for a round, every second check goes over the link
    /// kept for probing the ring predecessor, if there is one: membership
    /// news rides the overlay, and neighbours only compare views within
    /// their part of it, so two parts whose views differ while each stays
    /// the same (news that spread before the overlay was cut in two) would
    /// never find out. The ring runs through every member and crosses any
    /// cut of the overlay; a check over it costs what a check of a
    /// neighbour would (memberlist's push-pull with a random member,
    /// without a connection of its own).
    pub(super) fn sync_target(&mut self) -> Option<ConnId> {
        if self.sync.quiet >= 2 {
            self.sync.ring_turn = !self.sync.ring_turn;
            let ring = self
                .detector
                .ring_link
                .map(|(_, c)| c)
                .filter(|c| self.conns.contains_key(c));
            if let Some(c) = ring.filter(|_| self.sync.ring_turn) {
                return Some(c);
            }
        }
        self.sync_neighbour()
    }

    /// A random neighbour for a sync round, among those that did not
    /// answer a mismatch with their bucket digest within
    /// `full_sync_cooldown` (they would leave the next one unanswered), if
    /// there are any. If every neighbour did (a node whose view kept
    /// changing after it repaired over each link, as in a join storm: news
    /// that missed it then waits out the cooldown), the ring link, if it
    /// is ready.
    fn sync_neighbour(&mut self) -> Option<ConnId> {
        let now = self.now;
        let cooldown = self.cfg.full_sync_cooldown;
        let ready = |c: &ConnId| {
            self.conns
                .get(c)
                .is_none_or(|c| c.peer_repair.is_none_or(|t| now - t >= cooldown))
        };
        let neighbours: Vec<ConnId> = self.neighbours.values().copied().filter(ready).collect();
        if neighbours.is_empty() {
            let ring = self
                .detector
                .ring_link
                .map(|(_, c)| c)
                .filter(|c| self.conns.contains_key(c) && ready(c));
            return ring.or_else(|| self.random_neighbour());
        }
        let i = self.below(neighbours.len());
        Some(neighbours[i])
    }

    /// Hash of the roster including this node, so that two nodes with the
    /// same view agree.
    pub(super) fn roster_hash(&self) -> u64 {
        self.members
            .hash()
            .wrapping_add(crate::peers::key_hash(self.me, 0))
    }

    /// The roster digest by bucket, this node included, as it goes in
    /// [`Message::Buckets`].
    pub(super) fn roster_buckets(&self) -> Vec<u32> {
        let mut b = *self.members.bucket_hashes();
        let mine = &mut b[crate::peers::bucket_of(self.me.id)];
        *mine = mine.wrapping_add(crate::peers::key_hash(self.me, 0));
        b.iter().map(|h| *h as u32).collect()
    }

    /// This node's own entry, as it goes in peer lists.
    pub(super) fn my_update(&self) -> MemberUpdate {
        MemberUpdate {
            node: self.me,
            addr: self.addr,
            version: self.version,
            state: MemberState::Alive,
            name: self.name.clone(),
            age_secs: 0,
            accuser: None,
            proof: self.proof,
        }
    }

    /// Signs this node's life and version anew, after one changed.
    pub(super) fn sign_me(&mut self) {
        self.proof = Proof::sign(
            &self.key,
            self.me,
            self.version,
            self.addr,
            &self.name,
            false,
        );
    }

    /// Whether `conn` leads to one of the members this node was told to
    /// join through.
    pub(super) fn is_seed_link(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            let peer_addr = c.peer.and_then(|p| self.members.get(&p.id)).map(|m| m.addr);
            c.dialed
                .or(peer_addr)
                .is_some_and(|a| self.seeds.contains_key(&a))
        })
    }

    /// Where member `id` (or this node) listens, as far as this node
    /// knows.
    pub(super) fn addr_of(&self, id: Id) -> Option<SocketAddr> {
        if id == self.me.id {
            return Some(self.addr);
        }
        self.members.get(&id).map(|m| m.addr)
    }

    /// The neighbour link to the node listening at `addr` (a seed's), if
    /// any.
    pub(super) fn link_at(&self, addr: SocketAddr) -> Option<ConnId> {
        self.neighbours
            .iter()
            .find(|(id, c)| {
                self.conns.get(c).is_some_and(|x| x.dialed == Some(addr))
                    || self.members.get(id).is_some_and(|m| m.addr == addr)
            })
            .map(|(_, c)| *c)
    }

    /// Room for batched entries in one frame.
    pub(super) fn frame_budget(&self) -> usize {
        self.cfg.max_frame.saturating_sub(FRAME_SLACK)
    }

    /// Sends a peer list in as many frames as its size needs.
    pub(super) fn send_peer_list(
        &self,
        conn: ConnId,
        full: bool,
        members: Vec<MemberUpdate>,
        out: &mut Vec<Output>,
    ) {
        for members in batches(members, update_size, self.frame_budget()) {
            out.push(Output::Send {
                conn,
                msg: Message::PeerList { full, members },
            });
        }
    }

    /// This node's settled mark and its chat hash there (see
    /// [`crate::history::Streams`]): the authors' clock now, less the time
    /// a message may take to reach everyone (`settle_wait`).
    pub(super) fn chat_hash(&mut self) -> (u64, u64) {
        let authors_now = (self.now.as_millis() as i64).saturating_add(self.streams.lead());
        let upto = (authors_now.max(0) as u64).saturating_sub(self.settle_wait().as_millis());
        self.streams.settle(upto);
        self.streams.hash()
    }

    /// How long a message may take to reach every node with nothing lost:
    /// a sync interval plus four round trips of this node's slowest
    /// neighbour link (a few hops of the tree, or an announcement, a graft
    /// and its answer, on links like its own).
    pub(super) fn settle_wait(&self) -> Duration {
        let slowest = self
            .neighbours
            .values()
            .map(|c| self.rtt(*c))
            .max()
            .unwrap_or(Duration::ZERO);
        self.cfg.sync_interval + slowest.saturating_mul(4)
    }

    /// A uniform random number in `0..n` (n > 0) from the node's own RNG.
    pub(super) fn below(&mut self, n: usize) -> usize {
        ((self.rng.next_u64() as u128 * n as u128) >> 64) as usize
    }
}
