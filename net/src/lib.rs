//! gossip-chat over TCP: the adapter that runs a [`gossip_chat::Node`] on
//! real sockets, with `std` networking only, and (as the `chat` binary of
//! this package) the program that puts one node on a terminal.
//!
//! The protocol itself is all in the `gossip-chat` crate, a pure state
//! machine that reads no clock and owns no socket. This crate is the I/O
//! around it: sockets, threads, the monotonic clock and the user's commands.
//! A program that only needs the core (the simulator, a different
//! transport) depends on `gossip-chat` alone and compiles none of this
//! crate's dependencies (clap, tracing, serde_json, ...).
//!
//! # Threads
//!
//! - one **acceptor** takes incoming connections;
//! - per connection, a **reader** cuts frames out of the byte stream,
//!   verifies the signatures they carry (chats, member entries:
//!   [`gossip_chat::Verified`]) and sends them with the answers into one
//!   central channel, and a **writer** sends what a bounded queue holds
//!   (a peer that does not keep up fills its queue and is disconnected: it
//!   never blocks anyone else);
//! - an outbound connection is dialled, with a timeout, on a thread of its
//!   own, which then becomes that connection's reader;
//! - one **driver** owns the [`Node`] (never shared): it waits on the
//!   central channel, the user's commands and the node's next deadline, feeds
//!   what happened to the node and carries out its outputs. While the node
//!   handles a message, the driver holds that message's verified signatures
//!   in the node's judge ([`gossip_chat::Checked`]), so the single driver
//!   thread only looks them up: signature checks, tens of microseconds
//!   each, run side by side on the readers.
//!
//! A node with `n` connections runs `2n + 2` threads, plus whatever its user
//! runs (the `chat` binary adds only its main thread, which reads stdin).
//!
//! Real time becomes the core's [`gossip_chat::Instant`] in one function
//! (milliseconds since the adapter started). A connection thread that
//! fails or panics reports its connection closed; the node keeps running and
//! the protocol reconnects as needed.
//!
//! ```no_run
//! use gossip_chat_net::{self as net, NetConfig};
//! let cfg = NetConfig::new("127.0.0.1:0".parse().unwrap(), "alice");
//! let node = net::start(cfg).unwrap();
//! node.send("hello");
//! if let Ok(event) = node.events().unwrap().recv() {
//!     println!("{event:?}");
//! }
//! node.shutdown();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod conn;
mod driver;
pub mod keys;
pub mod secure;
mod snapshot;

pub use clock::wall_clock_millis;
pub use keys::{ClusterKey, DataDir, KeyError, Keyring, NodeIdentity, PeerId};
pub use snapshot::{AdapterCounters, MemberCounts, Snapshot, SnapshotBoard};

use conn::{ConnParams, Inbound};
use crossbeam_channel::{Receiver, Sender};
use gossip_chat::{Config, Event, MemberState, Node, NodeKey, Stats, TableSizes};
use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use thiserror::Error;

/// Everything needed to start a node on TCP.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Address to listen on; port 0 picks a free port. The bound address is
    /// advertised to peers (the node's identity is its key, see
    /// [`NetConfig::identity`]), so it must be reachable by them (not
    /// `0.0.0.0`).
    pub listen: SocketAddr,
    /// Members to join through (any of them will do).
    pub join: Vec<SocketAddr>,
    /// Display name.
    pub name: String,
    /// Protocol settings; [`Config::lan`] by default.
    pub node: Config,
    /// Longest wait for an outbound connection to open. Default 2 s.
    pub connect_timeout: Duration,
    /// Messages queued per connection before the peer counts as stuck and is
    /// disconnected. Default 8192. The queue grows with use (an idle
    /// connection holds no slots).
    pub send_queue: usize,
    /// Bytes (encoded messages) all connections' send queues may hold
    /// together; at least two `max_frame`s. Default 8 MiB. A send past it
    /// disconnects the peer whose queue holds the most, as stuck: a queued
    /// chat keeps its text after the history has let it go, so this, not
    /// the history, bounds what peers that stop reading can pin.
    pub send_queue_bytes: usize,
    /// Longest a blocked socket write may take before the connection is
    /// dropped. Default 5 s.
    pub write_timeout: Duration,
    /// How long a closing connection waits for the peer to close its side
    /// after our last frames (so that they are not lost to a reset).
    /// Default 1 s.
    pub linger: Duration,
    /// Life number; default: wall-clock milliseconds at start, so that it
    /// grows on every restart.
    pub incarnation: Option<u64>,
    /// Seed of the node's RNG; default: from the clock and the address.
    pub seed: Option<u64>,
    /// When set (for example by a signal handler), the node leaves
    /// gracefully and stops; it is checked every 100 ms.
    pub stop_flag: Option<Arc<AtomicBool>>,
    /// When set, the driver publishes a [`Snapshot`] of the node here at
    /// most every [`SNAPSHOT_INTERVAL`] while it runs, for a reader on
    /// another thread (a metrics endpoint).
    pub snapshots: Option<SnapshotBoard>,
    /// The node's identity key; default: a fresh one for this run (the
    /// `chat` program keeps one in its data directory).
    pub identity: Option<NodeIdentity>,
    /// The cluster keys at start (see [`keys`]); default: none, the open
    /// mode. They can be changed while the node runs
    /// ([`NodeHandle::install_key`] and the rest).
    pub keyring: Keyring,
    /// Longest handshake of an accepted connection before it is closed.
    /// Default 3 s. (A dialled connection's handshake counts within
    /// `connect_timeout`.)
    pub handshake_timeout: Duration,
}

/// Least time between two snapshots published on a [`SnapshotBoard`].
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(200);

impl NetConfig {
    /// Defaults for a node listening on `listen` and called `name`.
    pub fn new(listen: SocketAddr, name: &str) -> NetConfig {
        NetConfig {
            listen,
            join: Vec::new(),
            name: name.to_owned(),
            node: Config::lan(),
            connect_timeout: Duration::from_secs(2),
            send_queue: 8192,
            send_queue_bytes: 8 << 20,
            write_timeout: Duration::from_secs(5),
            linger: Duration::from_secs(1),
            incarnation: None,
            seed: None,
            stop_flag: None,
            snapshots: None,
            identity: None,
            keyring: Keyring::default(),
            handshake_timeout: Duration::from_secs(3),
        }
    }
}

/// Why a node could not start. Nothing is left running.
#[derive(Debug, Error)]
pub enum StartError {
    /// The listen address could not be bound (in use, not local...).
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        error: std::io::Error,
    },
    /// The protocol settings are out of range.
    #[error(transparent)]
    Config(#[from] gossip_chat::ConfigError),
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// A member of the roster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its identity and life.
    pub node: NodeKey,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its display name.
    pub name: String,
    /// Whether this node has a direct, handshaken connection to it.
    pub neighbour: bool,
}

/// What the node knows of one other member, for display: see
/// [`NodeHandle::members`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its identity and life.
    pub node: NodeKey,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its display name.
    pub name: String,
    /// Alive, suspect, dead or left, as this node believes.
    pub state: MemberState,
    /// Whether this node has a direct, handshaken connection to it.
    pub neighbour: bool,
    /// For a neighbour: how long ago this node last heard from it.
    pub last_heard: Option<Duration>,
    /// How long ago this node last changed its belief about it.
    pub since: Duration,
}

/// Where the driver hands what happens. Called on the driver thread, so it
/// must not block for long.
pub trait EventSink: Send + 'static {
    /// The node listens on `addr` (its real address); called first.
    fn ready(&mut self, addr: SocketAddr, name: &str) {
        let _ = (addr, name);
    }
    /// Something happened (chat delivered, peer up or down...).
    fn event(&mut self, event: Event);
    /// The driver is about to wait: a good moment to flush buffers.
    fn idle(&mut self) {}
    /// The node has left and the driver ends; called last.
    fn stopped(&mut self) {}
}

/// The sink of [`start`]: events go into an unbounded channel.
struct ChannelSink(Sender<Event>);

impl EventSink for ChannelSink {
    fn event(&mut self, event: Event) {
        let _ = self.0.send(event);
    }
}

/// Commands from a [`NodeHandle`] to the driver.
#[derive(Debug)]
enum Command {
    Send(String),
    Join(SocketAddr),
    Leave,
    Peers(Sender<Vec<Peer>>),
    Members(Sender<Vec<Member>>),
    Stats(Sender<Stats>),
    Sizes(Sender<TableSizes>),
}

/// What a change of the keyring did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    /// Whether the keyring changed (each step is idempotent).
    pub changed: bool,
    /// The keyring after the change.
    pub keyring: Keyring,
}

/// A running node. Dropping it leaves the group and stops the node, like
/// [`NodeHandle::shutdown`].
#[derive(Debug)]
pub struct NodeHandle {
    addr: SocketAddr,
    id: PeerId,
    ring: Arc<Mutex<Keyring>>,
    commands: Sender<Command>,
    events: Option<Receiver<Event>>,
    driver: Option<JoinHandle<()>>,
}

/// Starts a node; its events arrive on [`NodeHandle::events`].
pub fn start(cfg: NetConfig) -> Result<NodeHandle, StartError> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut handle = start_with_sink(cfg, ChannelSink(tx))?;
    handle.events = Some(rx);
    Ok(handle)
}

/// Starts a node that hands its events to `sink`, on the driver thread.
pub fn start_with_sink<S: EventSink>(cfg: NetConfig, sink: S) -> Result<NodeHandle, StartError> {
    cfg.node.validate()?;
    let listener = TcpListener::bind(cfg.listen).map_err(|error| StartError::Bind {
        addr: cfg.listen,
        error,
    })?;
    let addr = listener.local_addr().map_err(|error| StartError::Bind {
        addr: cfg.listen,
        error,
    })?;
    let clock = clock::Clock::start();
    let identity = cfg.identity.clone().unwrap_or_else(NodeIdentity::generate);
    // The core signs this node's chat with the identity key, the one the
    // handshake proves, so its id is the member id peers know it by.
    let secret = identity.secret();
    let keys = Arc::new(secure::LocalKeys::new(identity));
    let id = keys.id();
    let ring = Arc::new(Mutex::new(cfg.keyring.clone()));
    if cfg.keyring.is_open() {
        tracing::warn!(
            "open mode: no cluster key, so anyone who can reach this node can join and read the chat"
        );
    }
    let incarnation = cfg.incarnation.unwrap_or_else(wall_clock_millis);
    let seed = cfg.seed.unwrap_or_else(|| default_seed(addr));
    let mut node = Node::new(
        cfg.node.clone(),
        gossip_chat::Identity::keyed(&secret, addr, incarnation, cfg.name.clone()),
        seed,
        clock.now(),
    )?;
    debug_assert_eq!(node.id(), id.member_id(), "the core signs as the member");
    // Signatures are verified on the connections' reader threads, side by
    // side; the node, on the driver thread, looks their answers up.
    let checked = Arc::new(gossip_chat::Checked::default());
    node.set_authenticity(checked.clone());

    let (inbox_tx, inbox) = crossbeam_channel::bounded(inbox_capacity(cfg.node.max_frame));
    let (commands_tx, commands) = crossbeam_channel::bounded(1024);
    let params = ConnParams {
        max_frame: cfg.node.max_frame,
        send_queue: cfg.send_queue.max(2),
        send_budget: conn::SendBudget::new(
            cfg.send_queue_bytes
                .max(cfg.node.max_frame.saturating_mul(2)),
        ),
        linger: cfg.linger,
        write_timeout: cfg.write_timeout,
        live_writers: Arc::default(),
        keys,
        ring: ring.clone(),
        handshake_timeout: cfg.handshake_timeout,
        pending: Arc::default(),
        handshakes: Arc::default(),
    };
    let next_conn = Arc::new(AtomicU64::new(1));
    let acceptor_stop = Arc::new(AtomicBool::new(false));

    let acceptor = Acceptor {
        listener,
        inbox: inbox_tx.clone(),
        params: params.clone(),
        next_conn: next_conn.clone(),
        stop: acceptor_stop.clone(),
    };
    thread::Builder::new()
        .name("accept".into())
        .stack_size(conn::CONN_STACK)
        .spawn(move || acceptor.run())
        .map_err(StartError::Thread)?;

    let driver = driver::Driver {
        node,
        checked,
        clock,
        sink,
        inbox_tx,
        inbox,
        commands,
        stop_flag: cfg.stop_flag.clone(),
        params,
        connect_timeout: cfg.connect_timeout,
        next_conn,
        acceptor_stop: acceptor_stop.clone(),
        listen_addr: addr,
        links: BTreeMap::new(),
        draining: Vec::new(),
        pending: VecDeque::new(),
        outputs: Vec::new(),
        snapshots: cfg.snapshots.clone(),
        next_snapshot: std::time::Instant::now(),
        counters: AdapterCounters::default(),
    };
    let join = cfg.join.clone();
    let spawned = thread::Builder::new()
        .name("driver".into())
        .spawn(move || driver.run(join));
    let driver = match spawned {
        Ok(d) => d,
        Err(e) => {
            acceptor_stop.store(true, Ordering::SeqCst);
            driver::wake_acceptor(addr);
            return Err(StartError::Thread(e));
        }
    };
    tracing::info!(%addr, %id, incarnation, name = %cfg.name, "node started");
    Ok(NodeHandle {
        addr,
        id,
        ring,
        commands: commands_tx,
        events: None,
        driver: Some(driver),
    })
}

impl NodeHandle {
    /// The address the node listens on and advertises.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node's identity (its public key).
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// The id the group knows this node by ([`PeerId::member_id`] of
    /// [`NodeHandle::id`]): it stays the same across restarts with the
    /// same identity key, on any address.
    pub fn member_id(&self) -> gossip_chat::Id {
        self.id.member_id()
    }

    /// The cluster keys, primary first (empty: the open mode).
    pub fn keyring(&self) -> Keyring {
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn change_keys(
        &self,
        f: impl FnOnce(&mut Keyring) -> Result<bool, KeyError>,
    ) -> Result<KeyChange, KeyError> {
        let mut ring = self
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = f(&mut ring)?;
        if changed {
            tracing::info!(keys = ring.keys().len(), primary = ?ring.keys().first().map(ClusterKey::id), "keyring changed");
        }
        Ok(KeyChange {
            changed,
            keyring: ring.clone(),
        })
    }

    /// Installs a cluster key: new connections are accepted with it from
    /// now on (rotation step 1). Connections already open stay open.
    pub fn install_key(&self, key: ClusterKey) -> Result<KeyChange, KeyError> {
        self.change_keys(|r| r.install(key))
    }

    /// Makes an installed key the primary, offered first when dialling
    /// (rotation step 2).
    pub fn use_key(&self, key: &ClusterKey) -> Result<KeyChange, KeyError> {
        self.change_keys(|r| r.use_key(key))
    }

    /// Removes a key: no new connection is accepted with it (rotation step
    /// 3). Connections already open stay open.
    pub fn remove_key(&self, key: &ClusterKey) -> Result<KeyChange, KeyError> {
        self.change_keys(|r| r.remove(key))
    }

    /// Sends a chat message to the group. It comes back as an
    /// [`Event::Chat`] like everyone else's.
    pub fn send(&self, text: impl Into<String>) {
        let _ = self.commands.send(Command::Send(text.into()));
    }

    /// Joins (also) through the member at `addr`.
    pub fn join(&self, addr: SocketAddr) {
        let _ = self.commands.send(Command::Join(addr));
    }

    /// The roster: every other member believed alive, sorted by address.
    /// Empty once stopped.
    pub fn peers(&self) -> Vec<Peer> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.commands.send(Command::Peers(tx)).is_err() {
            return Vec::new();
        }
        rx.recv().unwrap_or_default()
    }

    /// Every other member the node knows of, alive, suspect or remembered
    /// gone, sorted by address. Empty once stopped.
    pub fn members(&self) -> Vec<Member> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.commands.send(Command::Members(tx)).is_err() {
            return Vec::new();
        }
        rx.recv().unwrap_or_default()
    }

    /// The node's counters of dropped input and work done.
    pub fn stats(&self) -> Option<Stats> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.commands.send(Command::Stats(tx)).ok()?;
        rx.recv().ok()
    }

    /// Sizes of the node's tables (members, connections, neighbours...).
    pub fn table_sizes(&self) -> Option<TableSizes> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.commands.send(Command::Sizes(tx)).ok()?;
        rx.recv().ok()
    }

    /// The node's events, for a node started with [`start`].
    pub fn events(&self) -> Option<&Receiver<Event>> {
        self.events.as_ref()
    }

    /// Leaves the group gracefully (peers see the node as left at once) and
    /// waits until the node has stopped.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.commands.send(Command::Leave);
        if let Some(driver) = self.driver.take() {
            let _ = driver.join();
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Bytes that frames waiting for the driver (from all connections
/// together) may hold at most: the inbox is bounded by a count of frames,
/// chosen so that this many frames of `max_frame` fit. (With each frame
/// come the items its reader verified: for a frame of chats, about as many
/// bytes again; for member entries, at most 64 of them.)
const INBOX_BYTES: usize = 16 << 20;

/// Frames the inbox holds: `INBOX_BYTES` worth of the largest frames,
/// between 16 and 1024. A reader whose frame does not fit waits, and so
/// does the peer behind it (TCP flow control), instead of the node's memory
/// growing with what peers send faster than the driver can take it.
fn inbox_capacity(max_frame: usize) -> usize {
    (INBOX_BYTES / max_frame.max(1)).clamp(16, 1024)
}

/// A seed that differs between nodes and runs.
fn default_seed(addr: SocketAddr) -> u64 {
    let mut h = wall_clock_millis() ^ 0x9e37_79b9_7f4a_7c15;
    h ^= u64::from(addr.port()) << 32;
    if let std::net::IpAddr::V4(ip) = addr.ip() {
        h ^= u64::from(u32::from(ip));
    }
    h.wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// Accepts connections until told to stop.
struct Acceptor {
    listener: TcpListener,
    inbox: Sender<Inbound>,
    params: ConnParams,
    next_conn: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Acceptor {
    fn run(self) {
        for stream in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let conn = gossip_chat::ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
            self.params
                .pending
                .admit(conn, &stream, &self.params.handshakes);
            let params = self.params.clone();
            let inbox = self.inbox.clone();
            let spawned = thread::Builder::new()
                .name(format!("read-{}", conn.0))
                .stack_size(conn::CONN_STACK)
                .spawn(move || accepted(stream, conn, &params, &inbox));
            if let Err(e) = spawned {
                // The stream was dropped with the closure.
                self.params.pending.done(conn);
                tracing::warn!(error = %e, "cannot start a connection thread");
            }
        }
    }
}

/// Runs the handshake of an accepted connection, then (if it opens) its
/// reader, on the connection's own thread.
fn accepted(
    stream: TcpStream,
    conn: gossip_chat::ConnId,
    params: &ConnParams,
    inbox: &Sender<Inbound>,
) {
    let peer_addr = stream.peer_addr().ok();
    let shaken = conn::handshake(
        &stream,
        secure::Role::Responder,
        params,
        params.handshake_timeout,
    );
    params.pending.done(conn);
    let session = match shaken {
        Ok(s) => s,
        Err(e) => {
            if let Some(addr) = peer_addr {
                params.handshakes.failed(addr, secure::Role::Responder, &e);
            }
            return;
        }
    };
    let peer = session.peer;
    let (link, reader) = match conn::open(stream, session, conn, params, inbox) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e, "cannot set an accepted connection up");
            return;
        }
    };
    tracing::debug!(conn = conn.0, %peer, "accepted");
    let opened = Inbound::Opened {
        conn,
        dialed: None,
        link,
        peer,
    };
    if inbox.send(opened).is_ok() {
        reader.run();
    }
}
