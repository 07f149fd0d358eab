//! The node: protocol v1 as a pure state machine.

use crate::config::Config;
use crate::history::{Store, Streams};
use crate::message::{
    ByeReason, Chat, Digest, Hello, History, MemberState, MemberUpdate, Message, MsgId, NodeKey,
    Sync, PROTOCOL_VERSION,
};
use crate::peers::{supersedes, Member, Members};
use crate::time::{Duration, Instant};
use crate::wire;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

/// A transport connection, named by the driver. Ids are never reused within
/// one node's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Everything that can happen to a node.
#[derive(Clone, Debug)]
pub enum Input {
    /// A transport connection opened. `dialed` is the address this node
    /// asked for in [`Output::Connect`], or `None` for an accepted one.
    Connected {
        /// The driver's name for the connection.
        conn: ConnId,
        /// The dialled address, for outbound connections.
        dialed: Option<SocketAddr>,
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
    /// [`Input::ConnectFailed`].
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
        /// Its address and incarnation.
        node: NodeKey,
        /// Its display name.
        name: Arc<str>,
    },
    /// A node left the roster.
    PeerDown {
        /// Its address and incarnation.
        node: NodeKey,
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
        /// Sender's display name.
        name: Arc<str>,
        /// The text.
        text: Arc<str>,
        /// True when it came by repair or as a newcomer's catch-up rather
        /// than live.
        history: bool,
    },
    /// Messages `first..=last` of a stream could not be obtained in time and
    /// are skipped; later ones are delivered.
    Gap {
        /// The stream.
        origin: NodeKey,
        /// First missing seq.
        first: u64,
        /// Last missing seq.
        last: u64,
    },
    /// This node was accused of being dead or gone and refuted it by moving
    /// to a new incarnation.
    Refuted {
        /// The new incarnation.
        incarnation: u64,
    },
    /// A local command was refused.
    Refused(Refusal),
}

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
    /// Gaps given up.
    pub gaps: u64,
    /// New members refused because the table was full.
    pub members_refused: u64,
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

#[derive(Debug)]
struct Conn {
    dialed: Option<SocketAddr>,
    peer: Option<NodeKey>,
    opened: Instant,
    last_heard: Instant,
    /// The peer's neighbour count at handshake.
    degree: u16,
}

#[derive(Debug, Clone, Copy)]
struct Dial {
    since: Instant,
    /// Dialled to check whether a neighbour whose connection dropped is
    /// still there; failure means dead.
    verify: bool,
}

/// Most recent membership changes kept for gossip rounds.
const MAX_RECENT: usize = 256;
/// Most members a node probes when sampling at random.
const SAMPLE_TRIES: usize = 8;

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
/// use gossip_chat::{Config, Input, Instant, Node, Output};
/// let addr = "127.0.0.1:7000".parse().unwrap();
/// let mut node = Node::new(Config::default(), addr, 1, "alice", 42, Instant::ZERO).unwrap();
/// let mut out = Vec::new();
/// node.handle(Instant::from_millis(5), Input::Send { text: "hi".into() }, &mut out);
/// assert!(out.iter().any(|o| matches!(o, Output::Event(_))));
/// ```
#[derive(Debug)]
pub struct Node {
    cfg: Config,
    me: NodeKey,
    name: Arc<str>,
    rng: ChaCha8Rng,
    now: Instant,
    left: bool,
    joined: bool,
    next_seq: u64,
    members: Members,
    conns: BTreeMap<ConnId, Conn>,
    neighbours: BTreeMap<SocketAddr, ConnId>,
    dialing: BTreeMap<SocketAddr, Dial>,
    seeds: BTreeMap<SocketAddr, Instant>,
    recent: VecDeque<(MemberUpdate, u8)>,
    /// Suspects and when their suspicion runs out.
    suspects: BTreeMap<SocketAddr, Instant>,
    streams: Streams,
    store: Store,
    next_ping: Instant,
    next_gossip: Instant,
    next_sync: Instant,
    next_reconnect: Instant,
    next_gc: Instant,
    next_dial: Instant,
    last_full_sync: Option<Instant>,
    /// When timers last ran, to notice that this node was frozen.
    last_tick: Instant,
    ping_nonce: u32,
    stats: Stats,
}

impl Node {
    /// A node listening on (and advertising) `addr`, in life `incarnation`
    /// (which must grow on every restart), called `name`, with its RNG
    /// seeded from `seed`. It knows nobody until it is told to
    /// [`Input::Join`] or someone connects.
    pub fn new(
        cfg: Config,
        addr: SocketAddr,
        incarnation: u64,
        name: &str,
        seed: u64,
        now: Instant,
    ) -> Result<Node, crate::ConfigError> {
        cfg.validate()?;
        let store = Store::new(cfg.history_max, cfg.history_max_age);
        Ok(Node {
            me: NodeKey { addr, incarnation },
            name: Arc::from(name),
            rng: ChaCha8Rng::seed_from_u64(seed),
            now,
            left: false,
            joined: true,
            next_seq: 1,
            members: Members::default(),
            conns: BTreeMap::new(),
            neighbours: BTreeMap::new(),
            dialing: BTreeMap::new(),
            seeds: BTreeMap::new(),
            recent: VecDeque::new(),
            suspects: BTreeMap::new(),
            streams: Streams::default(),
            store,
            next_ping: now + cfg.ping_interval,
            next_gossip: now + cfg.gossip_interval,
            next_sync: now + cfg.sync_interval,
            next_reconnect: now + cfg.reconnect_interval,
            next_gc: now + Duration::from_secs(60),
            next_dial: now,
            last_full_sync: None,
            last_tick: now,
            ping_nonce: 0,
            stats: Stats::default(),
            cfg,
        })
    }

    /// This node's current life (the incarnation grows on refutation).
    pub fn key(&self) -> NodeKey {
        self.me
    }

    /// This node's display name.
    pub fn name(&self) -> &str {
        &self.name
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

    /// The roster: every other node believed alive, by address.
    pub fn roster(&self) -> impl Iterator<Item = (NodeKey, &str)> + '_ {
        self.members
            .iter()
            .filter(|(_, m)| m.in_roster())
            .map(|(a, m)| (m.key(*a), &*m.name))
    }

    /// Whether `addr` is in the roster.
    pub fn knows_alive(&self, addr: &SocketAddr) -> bool {
        self.members.get(addr).is_some_and(Member::in_roster)
    }

    /// Addresses of the current neighbours (handshaken connections).
    pub fn neighbours(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.neighbours.keys().copied()
    }

    /// Sizes of every bounded table, for reports and invariant checks.
    pub fn table_sizes(&self) -> TableSizes {
        TableSizes {
            members: self.members.len(),
            connections: self.conns.len(),
            neighbours: self.neighbours.len(),
            dialing: self.dialing.len(),
            streams: self.streams.map.len(),
            held: self.streams.map.values().map(|s| s.held.len()).sum(),
            history: self.store.len(),
            recent: self.recent.len(),
        }
    }

    /// The instant at which the node next wants [`Input::Timeout`], or
    /// `None` after it has left.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.left {
            return None;
        }
        Some(
            self.next_ping
                .min(self.next_gossip)
                .min(self.next_sync)
                .min(self.next_reconnect)
                .min(self.next_gc),
        )
    }

    /// Feeds one input at time `now`; appends what the node wants done to
    /// `out`. See the driving contract on [`Node`].
    pub fn handle(&mut self, now: Instant, input: Input, out: &mut Vec<Output>) {
        self.now = self.now.max(now);
        if self.left {
            if let Input::Connected { conn, .. } = input {
                out.push(Output::Close { conn });
            }
            return;
        }
        match input {
            Input::Connected { conn, dialed } => self.on_connected(conn, dialed, out),
            Input::ConnectFailed { addr } => self.on_connect_failed(addr, out),
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
                if addr != self.me.addr {
                    if self.neighbours.is_empty() {
                        self.joined = false;
                    }
                    self.seeds.insert(addr, self.now);
                    self.dial(addr, false, out);
                }
            }
            Input::Send { text } => self.send_chat(text, out),
            Input::Leave => self.leave(out),
        }
    }

    // ---- connections -------------------------------------------------

    fn hello(&self) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            node: self.me,
            name: self.name.clone(),
            degree: self.neighbours.len() as u16,
            members_hash: self.roster_hash(),
            chat_hash: self.streams.hash(),
        }
    }

    fn dial(&mut self, addr: SocketAddr, verify: bool, out: &mut Vec<Output>) {
        if self.dialing.contains_key(&addr) {
            return;
        }
        self.dialing.insert(
            addr,
            Dial {
                since: self.now,
                verify,
            },
        );
        out.push(Output::Connect { addr });
    }

    fn close(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(p) = c.peer {
                if self.neighbours.get(&p.addr) == Some(&conn) {
                    self.neighbours.remove(&p.addr);
                }
            }
            out.push(Output::Close { conn });
        }
    }

    fn bye(&mut self, conn: ConnId, reason: ByeReason, out: &mut Vec<Output>) {
        out.push(Output::Send {
            conn,
            msg: Message::Bye(reason),
        });
        self.close(conn, out);
    }

    fn on_connected(&mut self, conn: ConnId, dialed: Option<SocketAddr>, out: &mut Vec<Output>) {
        let verify = dialed
            .and_then(|a| self.dialing.remove(&a))
            .is_some_and(|d| d.verify);
        if self.conns.contains_key(&conn) {
            self.stats.unexpected += 1;
            return;
        }
        let handshaking = self.conns.len() - self.neighbours.len();
        if handshaking >= self.cfg.max_handshaking {
            self.stats.conns_refused += 1;
            out.push(Output::Close { conn });
            return;
        }
        let _ = verify;
        self.conns.insert(
            conn,
            Conn {
                dialed,
                peer: None,
                opened: self.now,
                last_heard: self.now,
                degree: 0,
            },
        );
        let hello = self.hello();
        let msg = if self.joined {
            Message::Hello(hello)
        } else {
            Message::Join(hello)
        };
        out.push(Output::Send { conn, msg });
    }

    fn on_connect_failed(&mut self, addr: SocketAddr, out: &mut Vec<Output>) {
        let Some(dial) = self.dialing.remove(&addr) else {
            return;
        };
        self.dial_failed(addr, true, out);
        if dial.verify && !self.neighbours.contains_key(&addr) {
            if let Some(m) = self.members.get(&addr) {
                if m.state == MemberState::Alive {
                    let key = m.key(addr);
                    self.declare_dead(key, out);
                }
            }
        }
    }

    /// Backs off dialling `addr`. A member that could not be reached
    /// `max_dial_failures` times in a row is taken out of this node's
    /// roster (not spread: others may reach it), so invented addresses in a
    /// peer list cannot keep the node dialling.
    fn dial_failed(&mut self, addr: SocketAddr, unreachable: bool, out: &mut Vec<Output>) {
        let base = self.cfg.dial_backoff;
        let max = self.cfg.dial_backoff_max;
        let mut give_up = None;
        if let Some(m) = self.members.get_mut(&addr) {
            m.failures = m.failures.saturating_add(1);
            let wait = base
                .saturating_mul(1u64 << m.failures.min(20).saturating_sub(1))
                .min(max);
            m.retry_at = self.now + wait;
            if unreachable && m.failures >= self.cfg.max_dial_failures && m.in_roster() {
                give_up = Some(MemberUpdate {
                    node: m.key(addr),
                    state: MemberState::Dead,
                    name: m.name.clone(),
                });
            }
        }
        if let Some(u) = give_up {
            self.apply(&u, out);
        }
        if let Some(at) = self.seeds.get_mut(&addr) {
            *at = self.now + base;
        }
    }

    fn on_disconnected(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        match c.peer {
            None => {
                if let Some(addr) = c.dialed {
                    self.dial_failed(addr, true, out);
                }
            }
            Some(peer) => {
                if self.neighbours.get(&peer.addr) != Some(&conn) {
                    return;
                }
                self.neighbours.remove(&peer.addr);
                // The link dropped without a goodbye: check at once whether
                // the node is still there; a failed dial means it is dead.
                if self.members.get(&peer.addr).is_some_and(|m| {
                    m.state == MemberState::Alive && m.incarnation == peer.incarnation
                }) {
                    self.dial(peer.addr, true, out);
                }
            }
        }
    }

    fn on_bad_frame(&mut self, conn: ConnId, e: wire::WireError, out: &mut Vec<Output>) {
        match e {
            wire::WireError::Oversized { .. } => self.stats.oversized += 1,
            _ => self.stats.malformed += 1,
        }
        self.close(conn, out);
    }

    fn on_message(&mut self, conn: ConnId, msg: Message, out: &mut Vec<Output>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            self.stats.unexpected += 1;
            return;
        };
        c.last_heard = self.now;
        let established = c.peer.is_some();
        match msg {
            Message::Join(h) => self.on_hello(conn, h, true, out),
            Message::Hello(h) => self.on_hello(conn, h, false, out),
            _ if !established => {
                self.stats.unexpected += 1;
                self.close(conn, out);
            }
            Message::Ping(n) => out.push(Output::Send {
                conn,
                msg: Message::Pong(n),
            }),
            Message::Pong(_) => {}
            Message::PeerList { full, members } => self.on_peer_list(conn, full, members, out),
            Message::Chat(chat) => {
                if self.valid_chat(&chat) {
                    self.on_chat(chat, Some(conn), false, true, out);
                }
            }
            Message::Leave(key) => self.on_leave(conn, key, out),
            Message::Bye(reason) => {
                let peer = self.conns.get(&conn).and_then(|c| c.peer);
                self.close(conn, out);
                if let (Some(p), ByeReason::Full) = (peer, reason) {
                    self.dial_failed(p.addr, false, out);
                }
            }
            Message::Sync(s) => self.on_sync(conn, s.members_hash, s.chat_hash, out),
            Message::Digest(d) => self.on_digest(conn, d, out),
            Message::History(h) => self.on_history(conn, h, out),
        }
    }

    fn on_hello(&mut self, conn: ConnId, h: Hello, join: bool, out: &mut Vec<Output>) {
        if h.version != PROTOCOL_VERSION {
            self.stats.bad_version += 1;
            self.close(conn, out);
            return;
        }
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.peer.is_some() || h.node.addr == self.me.addr || h.name.len() > 256 {
            self.stats.unexpected += 1;
            self.close(conn, out);
            return;
        }
        let dialed_by_me = c.dialed.is_some();
        let peer = h.node;

        // What we know of it: a restart or a first meeting is news; a node we
        // hold dead in this very life is told so, so that it refutes.
        let stranger = !self.knows_alive(&peer.addr);
        self.learn_direct(&h, conn, out);

        // One connection per pair: the one dialled by the lower address wins.
        if let Some(&other) = self.neighbours.get(&peer.addr) {
            let other_conn = self.conns.get(&other);
            let other_dialed_by_me = other_conn.is_some_and(|c| c.dialed.is_some());
            let other_life = other_conn.and_then(|c| c.peer).map_or(0, |p| p.incarnation);
            let keep_new = if other_life < peer.incarnation || dialed_by_me == other_dialed_by_me {
                true
            } else {
                dialed_by_me == (self.me.addr < peer.addr)
            };
            let loser = if keep_new { other } else { conn };
            self.bye(loser, ByeReason::Duplicate, out);
            if !keep_new {
                return;
            }
        }

        if self.neighbours.len() >= self.cfg.max_connections {
            // Make room for links that matter: ones this node asked for,
            // newcomers, poorly connected nodes, and nodes this node did not
            // hold alive (the other side of a healed split).
            let needy = dialed_by_me
                || join
                || stranger
                || (h.degree as usize) < self.cfg.max_connections / 2;
            let victim = self
                .neighbours
                .values()
                .copied()
                .filter(|c| *c != conn)
                .max_by_key(|c| (self.conns.get(c).map_or(0, |x| x.degree), *c));
            match victim {
                Some(v) if needy => {
                    self.stats.conns_refused += 1;
                    self.bye(v, ByeReason::Full, out);
                }
                _ => {
                    self.stats.conns_refused += 1;
                    if join {
                        self.answer_join(conn, out);
                    }
                    self.bye(conn, ByeReason::Full, out);
                    return;
                }
            }
        }

        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(peer);
            c.degree = h.degree;
        }
        self.neighbours.insert(peer.addr, conn);
        if let Some(m) = self.members.get_mut(&peer.addr) {
            m.failures = 0;
            m.retry_at = self.now;
        }
        if join {
            self.answer_join(conn, out);
        } else if self.joined {
            self.on_sync(conn, h.members_hash, h.chat_hash, out);
        }
    }

    /// A handshake is first-hand evidence that the speaker is alive.
    fn learn_direct(&mut self, h: &Hello, conn: ConnId, out: &mut Vec<Output>) {
        let known = self.members.get(&h.node.addr).cloned();
        match known {
            Some(m) if m.incarnation == h.node.incarnation && !m.in_roster() => {
                // We hold it dead or gone in this life: tell it, it refutes.
                out.push(Output::Send {
                    conn,
                    msg: Message::PeerList {
                        full: false,
                        members: vec![m.update(h.node.addr)],
                    },
                });
            }
            Some(m) if m.incarnation >= h.node.incarnation => {}
            _ => {
                let u = MemberUpdate {
                    node: h.node,
                    state: MemberState::Alive,
                    name: h.name.clone(),
                };
                if self.apply(&u, out) {
                    self.flood_updates(vec![u], Some(conn), out);
                }
            }
        }
    }

    fn answer_join(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        // History first: the newcomer has its baseline before it dials
        // anyone else.
        let chats = self.store.latest(self.cfg.newcomer_history);
        out.push(Output::Send {
            conn,
            msg: Message::History(History {
                chats,
                baseline: Some(self.streams.digest()),
            }),
        });
        out.push(Output::Send {
            conn,
            msg: Message::PeerList {
                full: true,
                members: self.full_list(),
            },
        });
    }

    fn full_list(&self) -> Vec<MemberUpdate> {
        let mut list: Vec<MemberUpdate> = Vec::with_capacity(self.members.len() + 1);
        list.push(MemberUpdate {
            node: self.me,
            state: MemberState::Alive,
            name: self.name.clone(),
        });
        list.extend(self.members.iter().map(|(a, m)| m.update(*a)));
        list.truncate(self.cfg.max_peer_list);
        list
    }

    // ---- membership --------------------------------------------------

    /// Merges one update; true if it changed the table (news to spread).
    /// `stale_risk` marks updates from a full list, which may carry deaths
    /// from across a healed split: those become suspicions.
    fn apply_update(&mut self, u: &MemberUpdate, stale_risk: bool, out: &mut Vec<Output>) -> bool {
        let addr = u.node.addr;
        if addr == self.me.addr {
            self.about_me(u, out);
            return false;
        }
        let mut u = u.clone();
        if let Some(m) = self.members.get(&addr) {
            if !supersedes((u.node.incarnation, u.state), (m.incarnation, m.state)) {
                return false;
            }
            let same_life = m.incarnation == u.node.incarnation;
            if same_life
                && m.in_roster()
                && matches!(u.state, MemberState::Dead | MemberState::Suspect)
            {
                // First-hand evidence beats hearsay: a neighbour we heard
                // from within a heartbeat is alive. Pass the accusation to it.
                if let Some(&c) = self.neighbours.get(&addr) {
                    let fresh = self.conns.get(&c).is_some_and(|c| {
                        self.now - c.last_heard < self.cfg.ping_interval.saturating_mul(2)
                    });
                    if fresh {
                        out.push(Output::Send {
                            conn: c,
                            msg: Message::PeerList {
                                full: false,
                                members: vec![u],
                            },
                        });
                        return false;
                    }
                }
                if stale_risk {
                    if m.state == MemberState::Suspect {
                        return false;
                    }
                    u.state = MemberState::Suspect;
                }
            }
        }
        self.apply(&u, out);
        let changed = self
            .members
            .get(&addr)
            .is_some_and(|m| m.incarnation == u.node.incarnation && m.state == u.state);
        if changed {
            if let (MemberState::Suspect, Some(m)) = (u.state, self.members.get_mut(&addr)) {
                let until = self.now + self.cfg.suspect_timeout;
                m.suspect_until = Some(until);
                self.suspects.insert(addr, until);
            }
        }
        changed
    }

    /// Writes `u` into the table if it supersedes what is there, emitting
    /// roster events. Returns whether the table changed.
    fn apply(&mut self, u: &MemberUpdate, out: &mut Vec<Output>) -> bool {
        let addr = u.node.addr;
        let now = self.now;
        let old = self.members.get(&addr).cloned();
        if let Some(m) = &old {
            if !supersedes((u.node.incarnation, u.state), (m.incarnation, m.state)) {
                return false;
            }
        } else if self.members.len() >= self.cfg.max_members
            && !self.members.evict_oldest_tombstone()
        {
            self.stats.members_refused += 1;
            return false;
        }
        let was_in = old.as_ref().is_some_and(Member::in_roster);
        let entry = Member {
            name: u.name.clone(),
            incarnation: u.node.incarnation,
            state: u.state,
            since: now,
            suspect_until: None,
            retry_at: old.as_ref().map_or(now, |m| m.retry_at),
            failures: old.as_ref().map_or(0, |m| m.failures),
        };
        let is_in = entry.in_roster();
        self.members.set(addr, entry);
        let ev = match (was_in, is_in) {
            (false, true) => Some(Event::PeerUp {
                node: u.node,
                name: u.name.clone(),
            }),
            (true, false) => Some(Event::PeerDown {
                node: u.node,
                name: u.name.clone(),
                reason: if u.state == MemberState::Left {
                    DownReason::Left
                } else {
                    DownReason::Dead
                },
            }),
            _ => None,
        };
        if let Some(ev) = ev {
            out.push(Output::Event(ev));
        }
        true
    }

    fn about_me(&mut self, u: &MemberUpdate, out: &mut Vec<Output>) {
        let accused = u.state != MemberState::Alive && u.node.incarnation >= self.me.incarnation;
        if !(accused || u.node.incarnation > self.me.incarnation) {
            return;
        }
        self.me.incarnation = u.node.incarnation + 1;
        self.next_seq = 1;
        self.stats.refutations += 1;
        out.push(Output::Event(Event::Refuted {
            incarnation: self.me.incarnation,
        }));
        let me = MemberUpdate {
            node: self.me,
            state: MemberState::Alive,
            name: self.name.clone(),
        };
        self.flood_updates(vec![me], None, out);
    }

    fn on_peer_list(
        &mut self,
        conn: ConnId,
        full: bool,
        mut members: Vec<MemberUpdate>,
        out: &mut Vec<Output>,
    ) {
        if members.len() > self.cfg.max_peer_list {
            self.stats.peer_list_truncated += (members.len() - self.cfg.max_peer_list) as u64;
            members.truncate(self.cfg.max_peer_list);
        }
        let mut news = Vec::new();
        for u in &members {
            if u.name.len() > 256 {
                self.stats.unexpected += 1;
                continue;
            }
            if self.apply_update(u, full, out) {
                news.push(
                    self.members
                        .get(&u.node.addr)
                        .map_or(u.clone(), |m| m.update(u.node.addr)),
                );
            }
        }
        if full && self.joined {
            // Slow repair: tell the sender what it lacks or holds older.
            let theirs: BTreeMap<SocketAddr, (u64, MemberState)> = members
                .iter()
                .map(|u| (u.node.addr, (u.node.incarnation, u.state)))
                .collect();
            let mut back: Vec<MemberUpdate> = self
                .members
                .iter()
                .filter(|(a, m)| {
                    theirs
                        .get(a)
                        .is_none_or(|t| supersedes((m.incarnation, m.state), *t))
                })
                .map(|(a, m)| m.update(*a))
                .collect();
            if theirs.get(&self.me.addr) != Some(&(self.me.incarnation, MemberState::Alive)) {
                back.push(MemberUpdate {
                    node: self.me,
                    state: MemberState::Alive,
                    name: self.name.clone(),
                });
            }
            back.truncate(self.cfg.max_peer_list);
            if !back.is_empty() {
                out.push(Output::Send {
                    conn,
                    msg: Message::PeerList {
                        full: false,
                        members: back,
                    },
                });
            }
        }
        if full {
            self.joined = true;
        }
        if !news.is_empty() {
            self.flood_updates(news, Some(conn), out);
        }
        self.maintain(out);
    }

    /// Sends membership changes to every neighbour but `except`, and queues
    /// them for the next gossip rounds.
    fn flood_updates(
        &mut self,
        updates: Vec<MemberUpdate>,
        except: Option<ConnId>,
        out: &mut Vec<Output>,
    ) {
        for u in &updates {
            self.recent.retain(|(r, _)| r.node.addr != u.node.addr);
            if self.recent.len() >= MAX_RECENT {
                self.recent.pop_front();
            }
            self.recent
                .push_back((u.clone(), self.cfg.gossip_retransmits));
        }
        self.broadcast(
            &Message::PeerList {
                full: false,
                members: updates,
            },
            except,
            out,
        );
    }

    fn broadcast(&self, msg: &Message, except: Option<ConnId>, out: &mut Vec<Output>) {
        for &conn in self.neighbours.values() {
            if Some(conn) != except {
                out.push(Output::Send {
                    conn,
                    msg: msg.clone(),
                });
            }
        }
    }

    fn declare_dead(&mut self, key: NodeKey, out: &mut Vec<Output>) {
        let u = self.members.get(&key.addr).map(|m| MemberUpdate {
            node: key,
            state: MemberState::Dead,
            name: m.name.clone(),
        });
        if let Some(u) = u {
            if self.apply(&u, out) {
                self.stats.deaths_detected += 1;
                self.flood_updates(vec![u], None, out);
            }
        }
    }

    fn on_leave(&mut self, conn: ConnId, key: NodeKey, out: &mut Vec<Output>) {
        let peer = self.conns.get(&conn).and_then(|c| c.peer);
        if peer.map(|p| p.addr) != Some(key.addr) {
            // Only a node itself may say goodbye on its own connection.
            self.stats.unexpected += 1;
            return;
        }
        self.close(conn, out);
        let name = self
            .members
            .get(&key.addr)
            .map_or_else(|| Arc::from(""), |m| m.name.clone());
        let u = MemberUpdate {
            node: key,
            state: MemberState::Left,
            name,
        };
        if self.apply(&u, out) {
            self.flood_updates(vec![u], None, out);
        }
    }

    fn leave(&mut self, out: &mut Vec<Output>) {
        self.broadcast(&Message::Leave(self.me), None, out);
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            self.close(c, out);
        }
        self.left = true;
    }

    // ---- chat --------------------------------------------------------

    fn valid_chat(&mut self, chat: &Chat) -> bool {
        if chat.text.len() > self.cfg.max_text_len || chat.name.len() > 256 || chat.id.seq == 0 {
            self.stats.text_too_long += 1;
            return false;
        }
        true
    }

    fn send_chat(&mut self, text: String, out: &mut Vec<Output>) {
        if text.len() > self.cfg.max_text_len {
            out.push(Output::Event(Event::Refused(Refusal::TextTooLong {
                len: text.len(),
                max: self.cfg.max_text_len,
            })));
            return;
        }
        let chat = Chat {
            id: MsgId {
                origin: self.me,
                seq: self.next_seq,
            },
            name: self.name.clone(),
            text: Arc::from(text),
        };
        self.next_seq += 1;
        self.on_chat(chat, None, false, true, out);
    }

    /// Takes in a chat message from anywhere: dedup, hold-back, delivery,
    /// storage and flooding. Returns whether it was new.
    fn on_chat(
        &mut self,
        chat: Chat,
        from: Option<ConnId>,
        history: bool,
        forward: bool,
        out: &mut Vec<Output>,
    ) -> bool {
        let key = chat.id.origin;
        let seq = chat.id.seq;
        if !self.streams.map.contains_key(&key)
            && self.streams.map.len() >= self.cfg.max_members * 2
        {
            self.stats.members_refused += 1;
            return false;
        }
        let s = self.streams.map.entry(key).or_default();
        if seq <= s.delivered || s.held.contains_key(&seq) {
            self.stats.duplicates += 1;
            return false;
        }
        s.last_active = self.now;
        let in_order = seq == s.delivered + 1;
        self.store.insert(self.now, &chat);
        if forward {
            self.broadcast(&Message::Chat(chat.clone()), from, out);
        }
        if in_order {
            self.deliver(chat, history, out);
            self.drain_held(key, out);
        } else if let Some(s) = self.streams.map.get_mut(&key) {
            s.held.insert(seq, (chat, history));
            s.waiting_since.get_or_insert(self.now);
            self.streams.waiting.insert(key);
            if s.held.len() > self.cfg.max_holdback {
                self.give_up_gap(key, out);
            }
        }
        true
    }

    fn deliver(&mut self, chat: Chat, history: bool, out: &mut Vec<Output>) {
        self.streams.set_delivered(chat.id.origin, chat.id.seq);
        self.stats.delivered += 1;
        out.push(Output::Event(Event::Chat {
            id: chat.id,
            name: chat.name,
            text: chat.text,
            history,
        }));
    }

    fn drain_held(&mut self, key: NodeKey, out: &mut Vec<Output>) {
        loop {
            let Some(s) = self.streams.map.get_mut(&key) else {
                return;
            };
            let next = s.delivered + 1;
            match s.held.remove(&next) {
                Some((chat, history)) => self.deliver(chat, history, out),
                None => break,
            }
        }
        if let Some(s) = self.streams.map.get_mut(&key) {
            if s.held.is_empty() {
                s.waiting_since = None;
                self.streams.waiting.remove(&key);
            } else {
                s.waiting_since = Some(self.now);
            }
        }
    }

    fn give_up_gap(&mut self, key: NodeKey, out: &mut Vec<Output>) {
        let Some(s) = self.streams.map.get(&key) else {
            return;
        };
        let Some(&first_held) = s.held.keys().next() else {
            return;
        };
        let first = s.delivered + 1;
        let last = first_held - 1;
        self.stats.gaps += 1;
        self.streams.set_delivered(key, last);
        out.push(Output::Event(Event::Gap {
            origin: key,
            first,
            last,
        }));
        self.drain_held(key, out);
    }

    // ---- anti-entropy ------------------------------------------------

    fn on_sync(&mut self, conn: ConnId, members_hash: u64, chat_hash: u64, out: &mut Vec<Output>) {
        if members_hash != self.roster_hash() {
            let due = self
                .last_full_sync
                .is_none_or(|t| self.now - t >= self.cfg.full_sync_cooldown);
            if due {
                self.last_full_sync = Some(self.now);
                out.push(Output::Send {
                    conn,
                    msg: Message::PeerList {
                        full: true,
                        members: self.full_list(),
                    },
                });
            }
        }
        if chat_hash != self.streams.hash() {
            out.push(Output::Send {
                conn,
                msg: Message::Digest(Digest {
                    entries: self.streams.digest(),
                    reply: true,
                }),
            });
        }
    }

    fn on_digest(&mut self, conn: ConnId, d: Digest, out: &mut Vec<Output>) {
        if d.entries.len() > self.cfg.max_members * 2 {
            self.stats.unexpected += 1;
            return;
        }
        let theirs: BTreeMap<NodeKey, u64> = d.entries.iter().copied().collect();
        let mut chats = Vec::new();
        'streams: for (key, s) in &self.streams.map {
            let have = theirs.get(key).copied().unwrap_or(0);
            if s.delivered > have {
                for (at, c) in self.store.range(*key, have + 1, s.delivered) {
                    if chats.len() >= self.cfg.repair_batch {
                        break 'streams;
                    }
                    // What arrived here within the last sync interval is
                    // most likely still in flight to the peer.
                    if self.now - at >= self.cfg.sync_interval {
                        chats.push(c.clone());
                    }
                }
            }
        }
        let behind = theirs
            .iter()
            .any(|(k, seq)| *seq > self.streams.delivered(k));
        if !chats.is_empty() {
            self.stats.repaired_sent += chats.len() as u64;
            out.push(Output::Send {
                conn,
                msg: Message::History(History {
                    chats,
                    baseline: None,
                }),
            });
        }
        if d.reply && behind {
            out.push(Output::Send {
                conn,
                msg: Message::Digest(Digest {
                    entries: self.streams.digest(),
                    reply: false,
                }),
            });
        }
    }

    fn on_history(&mut self, conn: ConnId, h: History, out: &mut Vec<Output>) {
        let newcomer = h.baseline.is_some();
        if let Some(base) = h.baseline {
            if !self.joined {
                for (key, seq) in base {
                    if self.streams.map.contains_key(&key) || key.addr == self.me.addr {
                        continue;
                    }
                    let first_sent = h
                        .chats
                        .iter()
                        .filter(|c| c.id.origin == key)
                        .map(|c| c.id.seq)
                        .min();
                    let start = first_sent.map_or(seq, |f| seq.min(f - 1));
                    self.streams.set_delivered(key, start);
                    if let Some(s) = self.streams.map.get_mut(&key) {
                        s.last_active = self.now;
                    }
                }
                self.joined = true;
            }
        }
        for chat in h
            .chats
            .into_iter()
            .take(self.cfg.repair_batch.max(self.cfg.newcomer_history))
        {
            if self.valid_chat(&chat) {
                self.on_chat(chat, Some(conn), true, !newcomer, out);
            }
        }
    }

    // ---- timers ------------------------------------------------------

    fn on_timeout(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        if now - self.last_tick > self.cfg.ping_interval.saturating_mul(2) {
            // This node was frozen (paused, starved, suspended): the silence
            // it sees is its own. Give every neighbour a fresh window rather
            // than accusing them all.
            for c in self.conns.values_mut() {
                c.last_heard = c.last_heard.max(now);
            }
        }
        self.last_tick = now;
        if now >= self.next_ping {
            self.next_ping = now + self.cfg.ping_interval;
            self.heartbeat(out);
            self.expire_gaps(out);
            self.maintain(out);
        }
        if now >= self.next_gossip {
            self.next_gossip = now + self.cfg.gossip_interval;
            self.gossip(out);
        }
        if now >= self.next_sync {
            self.next_sync = now + self.cfg.sync_interval;
            if let Some(conn) = self.random_neighbour() {
                out.push(Output::Send {
                    conn,
                    msg: Message::Sync(Sync {
                        members_hash: self.roster_hash(),
                        chat_hash: self.streams.hash(),
                    }),
                });
            }
        }
        if now >= self.next_reconnect {
            self.next_reconnect = now + self.cfg.reconnect_interval;
            self.reconnect(out);
        }
        if now >= self.next_gc {
            self.next_gc = now + Duration::from_secs(60);
            self.gc();
        }
    }

    fn heartbeat(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        let dead_after = self.cfg.dead_after();
        let mut dead = Vec::new();
        let mut stale = Vec::new();
        for (&id, c) in &self.conns {
            match c.peer {
                Some(p) if now - c.last_heard >= dead_after => dead.push((id, p)),
                Some(_) => {}
                None if now - c.opened >= self.cfg.handshake_timeout => stale.push(id),
                None => {}
            }
        }
        for id in stale {
            self.stats.handshake_timeouts += 1;
            self.close(id, out);
        }
        for (id, peer) in dead {
            self.close(id, out);
            if self
                .members
                .get(&peer.addr)
                .is_some_and(|m| m.incarnation == peer.incarnation && m.in_roster())
            {
                self.declare_dead(peer, out);
            }
        }
        // The dialling side pings, the other answers: both hear from each
        // other once per interval, at two messages per connection.
        self.ping_nonce = self.ping_nonce.wrapping_add(1);
        for (&conn, c) in &self.conns {
            if c.peer.is_some() && c.dialed.is_some() {
                out.push(Output::Send {
                    conn,
                    msg: Message::Ping(self.ping_nonce),
                });
            }
        }
        // Suspicions that nobody refuted in time become deaths.
        let expired: Vec<SocketAddr> = self
            .suspects
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(a, _)| *a)
            .collect();
        for addr in expired {
            self.suspects.remove(&addr);
            let still = self
                .members
                .get(&addr)
                .filter(|m| {
                    m.state == MemberState::Suspect && m.suspect_until.is_some_and(|t| t <= now)
                })
                .map(|m| m.key(addr));
            if let Some(key) = still {
                self.declare_dead(key, out);
            }
        }
        // Dials the driver never answered.
        let limit = self.cfg.handshake_timeout.saturating_mul(2);
        let lost: Vec<SocketAddr> = self
            .dialing
            .iter()
            .filter(|(_, d)| now - d.since >= limit)
            .map(|(a, _)| *a)
            .collect();
        for a in lost {
            self.on_connect_failed(a, out);
        }
    }

    fn expire_gaps(&mut self, out: &mut Vec<Output>) {
        let now = self.now;
        let due: Vec<NodeKey> = self
            .streams
            .waiting
            .iter()
            .filter(|k| {
                self.streams.map.get(k).is_some_and(|s| {
                    s.waiting_since
                        .is_some_and(|t| now - t >= self.cfg.gap_timeout)
                })
            })
            .copied()
            .collect();
        for k in due {
            self.give_up_gap(k, out);
        }
    }

    fn gossip(&mut self, out: &mut Vec<Output>) {
        if self.recent.is_empty() || self.neighbours.is_empty() {
            return;
        }
        let updates: Vec<MemberUpdate> = self.recent.iter().map(|(u, _)| u.clone()).collect();
        for (_, left) in self.recent.iter_mut() {
            *left = left.saturating_sub(1);
        }
        self.recent.retain(|(_, left)| *left > 0);
        let msg = Message::PeerList {
            full: false,
            members: updates,
        };
        let mut targets: Vec<ConnId> = self.neighbours.values().copied().collect();
        for _ in 0..self.cfg.gossip_fanout.min(targets.len()) {
            let i = self.below(targets.len());
            let conn = targets.swap_remove(i);
            out.push(Output::Send {
                conn,
                msg: msg.clone(),
            });
        }
    }

    /// Opens connections while under the neighbour target.
    fn maintain(&mut self, out: &mut Vec<Output>) {
        if !self.joined {
            // Still joining: retry the seeds, nothing else.
            let due: Vec<SocketAddr> = self
                .seeds
                .iter()
                .filter(|(_, at)| **at <= self.now)
                .map(|(a, _)| *a)
                .collect();
            if self.neighbours.is_empty() && self.dialing.is_empty() {
                for a in due {
                    self.dial(a, false, out);
                }
            }
            return;
        }
        let outbound_pending = self.dialing.len()
            + self
                .conns
                .values()
                .filter(|c| c.peer.is_none() && c.dialed.is_some())
                .count();
        let have = self.neighbours.len() + outbound_pending;
        if have >= self.cfg.max_connections || self.now < self.next_dial {
            return;
        }
        let mut want = (self.cfg.max_connections - have).min(2);
        for _ in 0..SAMPLE_TRIES {
            if want == 0 || self.members.len() == 0 {
                break;
            }
            let i = self.below(self.members.len());
            let Some((addr, m)) = self.members.get_index(i) else {
                break;
            };
            let addr = *addr;
            if m.state != MemberState::Alive
                || m.retry_at > self.now
                || self.neighbours.contains_key(&addr)
                || self.dialing.contains_key(&addr)
            {
                continue;
            }
            self.dial(addr, false, out);
            want -= 1;
        }
        if self.neighbours.len() >= self.cfg.max_connections / 2 {
            // Well connected: look for the last slots at a gentle pace.
            self.next_dial = self.now + self.cfg.reconnect_interval;
        }
        if self.neighbours.is_empty() && self.dialing.is_empty() {
            let due: Vec<SocketAddr> = self
                .seeds
                .iter()
                .filter(|(_, at)| **at <= self.now)
                .map(|(a, _)| *a)
                .collect();
            for a in due {
                self.dial(a, false, out);
            }
        }
    }

    /// Tries one random dead member: the other side of a healed split, or a
    /// node that came back.
    fn reconnect(&mut self, out: &mut Vec<Output>) {
        for _ in 0..SAMPLE_TRIES {
            if self.members.len() == 0 {
                return;
            }
            let i = self.below(self.members.len());
            let Some((addr, m)) = self.members.get_index(i) else {
                return;
            };
            let addr = *addr;
            if m.state == MemberState::Dead
                && m.retry_at <= self.now
                && !self.dialing.contains_key(&addr)
                && !self.neighbours.contains_key(&addr)
            {
                self.dial(addr, false, out);
                return;
            }
        }
    }

    fn gc(&mut self) {
        let now = self.now;
        if let Some(cutoff) = now
            .as_millis()
            .checked_sub(self.cfg.tombstone_ttl.as_millis())
        {
            let cutoff = Instant::from_millis(cutoff);
            self.members.forget_before(cutoff);
            let members = &self.members;
            let me = self.me;
            self.streams.forget_idle(cutoff, |k| {
                *k == me
                    || members
                        .get(&k.addr)
                        .is_some_and(|m| m.in_roster() && m.incarnation == k.incarnation)
            });
        }
        self.store.expire(now);
    }

    fn random_neighbour(&mut self) -> Option<ConnId> {
        if self.neighbours.is_empty() {
            return None;
        }
        let i = self.below(self.neighbours.len());
        self.neighbours.values().nth(i).copied()
    }

    /// Hash of the roster including this node, so that two nodes with the
    /// same view agree.
    fn roster_hash(&self) -> u64 {
        self.members
            .hash()
            .wrapping_add(crate::peers::key_hash(self.me, 0))
    }

    /// A uniform random number in `0..n` (n > 0) from the node's own RNG.
    fn below(&mut self, n: usize) -> usize {
        ((self.rng.next_u64() as u128 * n as u128) >> 64) as usize
    }
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
