//! The driver thread: owns the [`Node`], waits on the central channel until
//! the node's next deadline, and carries out what the node asks for.

use crate::clock::Clock;
use crate::conn::{self, ConnParams, Inbound, Link, QueueError};
use crate::secure::Role;
use crate::{AdapterCounters, Command, EventSink, Member, Peer, Snapshot, SnapshotBoard};
use crossbeam_channel::{select, Receiver, Sender};
use gossip_chat::{Checked, ConnId, Id, Input, Node, Output};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How often a registered stop flag (set by a signal handler) is looked at.
const STOP_FLAG_POLL: Duration = Duration::from_millis(100);
/// While a neighbour's queue is more than this full, local sends wait: a
/// fast local sender is slowed down instead of overrunning its peers.
const BACKPRESSURE_DIVISOR: usize = 2;
/// Re-check interval while local sends are held back.
const BACKPRESSURE_POLL: Duration = Duration::from_millis(1);

pub(crate) struct Driver<S: EventSink> {
    pub node: Node,
    /// The node's judge of signatures: the driver holds each message's
    /// items verified by its reader while the node handles the message.
    pub checked: Arc<Checked>,
    pub clock: Clock,
    pub sink: S,
    pub inbox_tx: Sender<Inbound>,
    pub inbox: Receiver<Inbound>,
    pub commands: Receiver<Command>,
    pub stop_flag: Option<Arc<AtomicBool>>,
    pub params: ConnParams,
    pub connect_timeout: Duration,
    pub next_conn: Arc<AtomicU64>,
    pub acceptor_stop: Arc<AtomicBool>,
    pub listen_addr: SocketAddr,
    pub links: BTreeMap<ConnId, Link>,
    /// The byte counts of the queues of links cut as stuck, until their
    /// writers have let them go: room that is already being made.
    pub draining: Vec<Arc<AtomicUsize>>,
    pub pending: VecDeque<Input>,
    pub outputs: Vec<Output>,
    pub snapshots: Option<SnapshotBoard>,
    pub next_snapshot: std::time::Instant,
    pub counters: AdapterCounters,
}

impl<S: EventSink> Driver<S> {
    pub(crate) fn run(mut self, join: Vec<SocketAddr>) {
        self.sink.ready(self.listen_addr, self.node.name());
        for addr in join {
            self.feed(Input::Join { addr });
        }
        self.serve();
        self.finish();
        self.sink.stopped();
    }

    /// The main loop, until the node has left.
    fn serve(&mut self) {
        while !self.node.has_left() {
            if self
                .stop_flag
                .as_ref()
                .is_some_and(|f| f.load(Ordering::Relaxed))
            {
                tracing::info!("stop requested, leaving");
                self.feed(Input::Leave);
                break;
            }
            self.publish();
            // Wait for I/O, a command or the node's next deadline, measured
            // on the core's clock.
            let now = self.clock.now();
            let mut wait = self
                .node
                .poll_timeout()
                .map(|t| Duration::from_millis(t.saturating_since(now).as_millis()));
            if self.stop_flag.is_some() {
                wait = Some(wait.map_or(STOP_FLAG_POLL, |w| w.min(STOP_FLAG_POLL)));
            }
            let held_back = self.backpressure();
            if held_back {
                wait = Some(wait.map_or(BACKPRESSURE_POLL, |w| w.min(BACKPRESSURE_POLL)));
            }
            let timer = wait.map_or_else(crossbeam_channel::never, crossbeam_channel::after);
            let never = crossbeam_channel::never();
            let commands = if held_back { &never } else { &self.commands };
            if self.inbox.is_empty() && (held_back || self.commands.is_empty()) {
                self.sink.idle();
            }
            select! {
                recv(self.inbox) -> msg => {
                    // The driver holds a sender itself, so the inbox never
                    // disconnects.
                    if let Ok(msg) = msg {
                        self.inbound(msg);
                    }
                }
                recv(commands) -> cmd => match cmd {
                    Ok(cmd) => self.command(cmd),
                    // Every handle is gone: nobody can talk to the node.
                    Err(_) => self.feed(Input::Leave),
                },
                // Early wake-ups (stop flag, backpressure) make a spurious
                // timeout, which the node ignores.
                recv(timer) -> _ => self.feed(Input::Timeout),
            }
        }
    }

    /// After leaving: stop accepting, let writers send their goodbyes, and
    /// keep draining the inbox meanwhile so no reader blocks.
    fn finish(&mut self) {
        self.acceptor_stop.store(true, Ordering::SeqCst);
        wake_acceptor(self.listen_addr);
        // The node closed every connection; drop any link it did not name.
        self.links.clear();
        let give_up = crossbeam_channel::after(self.params.linger + Duration::from_millis(500));
        while self.params.live_writers.load(Ordering::SeqCst) > 0 {
            select! {
                recv(self.inbox) -> msg => {
                    if let Ok(msg) = msg {
                        self.inbound(msg);
                    }
                }
                recv(give_up) -> _ => {
                    tracing::debug!(
                        left = self.params.live_writers.load(Ordering::SeqCst),
                        "writers did not finish in time"
                    );
                    break;
                }
            }
        }
        self.sink.idle();
    }

    /// Publishes a snapshot of the node, if one is asked for and the last
    /// one is older than [`crate::SNAPSHOT_INTERVAL`].
    fn publish(&mut self) {
        let Some(board) = &self.snapshots else {
            return;
        };
        let now = std::time::Instant::now();
        if now < self.next_snapshot {
            return;
        }
        self.next_snapshot = now + crate::SNAPSHOT_INTERVAL;
        let mut snap = Snapshot::of_node(&self.node);
        snap.adapter = self.counters;
        snap.adapter.signatures_on_driver = self.checked.verified_here();
        snap.adapter.handshakes_refused = self.params.handshakes.refused.load(Ordering::Relaxed);
        snap.adapter.handshakes_failed = self.params.handshakes.failed.load(Ordering::Relaxed);
        snap.adapter.handshakes_busy = self.params.handshakes.busy.load(Ordering::Relaxed);
        snap.send_queued = self.links.values().map(Link::queued).sum();
        snap.send_queue_max = self.links.values().map(Link::queued).max().unwrap_or(0);
        snap.send_queued_bytes = self.params.send_budget.queued();
        snap.inbox = self.inbox.len();
        board.publish(snap);
    }

    /// True while some neighbour's queue is too full to take more local
    /// sends.
    fn backpressure(&self) -> bool {
        let limit = self.params.send_queue / BACKPRESSURE_DIVISOR;
        let budget = &self.params.send_budget;
        budget.queued() > budget.limit() / BACKPRESSURE_DIVISOR
            || self.links.values().any(|l| l.queued() > limit)
    }

    fn inbound(&mut self, msg: Inbound) {
        match msg {
            Inbound::Opened {
                conn,
                dialed,
                link,
                peer,
            } => {
                tracing::trace!(conn = conn.0, ?dialed, %peer, "connection open");
                self.links.insert(conn, link);
                self.feed(Input::Connected {
                    conn,
                    dialed,
                    peer: Some(peer.member_id()),
                });
            }
            Inbound::Frame {
                conn,
                payload,
                verified,
            } => {
                self.counters.frames_received += 1;
                let checked = Arc::clone(&self.checked);
                let _hold = checked.hold(verified);
                self.feed(Input::Frame { conn, payload });
            }
            Inbound::Input(input) => {
                match input {
                    Input::Disconnected { conn } => {
                        self.links.remove(&conn);
                    }
                    Input::Frame { .. } | Input::Message { .. } => {
                        self.counters.frames_received += 1;
                    }
                    _ => {}
                }
                self.feed(input);
            }
            Inbound::WriterDone => {}
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Send(text) => {
                self.counters.chats_sent += 1;
                // The author's time, for display only.
                let wall_ms = crate::clock::wall_clock_millis();
                self.feed(Input::Send { text, wall_ms });
            }
            Command::Join(addr) => self.feed(Input::Join { addr }),
            Command::Leave => self.feed(Input::Leave),
            Command::Peers(reply) => {
                let neighbours: BTreeSet<Id> = self.node.neighbours().collect();
                let addrs: BTreeMap<Id, SocketAddr> =
                    self.node.members().map(|m| (m.node.id, m.addr)).collect();
                let mut peers: Vec<Peer> = self
                    .node
                    .roster()
                    .filter_map(|(node, name)| {
                        Some(Peer {
                            node,
                            addr: *addrs.get(&node.id)?,
                            name: name.to_owned(),
                            neighbour: neighbours.contains(&node.id),
                        })
                    })
                    .collect();
                peers.sort_by_key(|p| (p.addr, p.node));
                let _ = reply.send(peers);
            }
            Command::Members(reply) => {
                let now = self.node.now();
                let mut members: Vec<Member> = self
                    .node
                    .members()
                    .map(|m| Member {
                        node: m.node,
                        addr: m.addr,
                        name: m.name.to_string(),
                        state: m.state,
                        neighbour: m.neighbour,
                        last_heard: m.last_heard.map(|t| ago(now, t)),
                        since: ago(now, m.since),
                    })
                    .collect();
                members.sort_by_key(|m| (m.addr, m.node));
                let _ = reply.send(members);
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.node.stats().clone());
            }
            Command::Sizes(reply) => {
                let _ = reply.send(self.node.table_sizes());
            }
        }
    }

    /// Feeds one input (and any it causes) to the node and carries out the
    /// outputs.
    fn feed(&mut self, input: Input) {
        self.pending.push_back(input);
        while let Some(input) = self.pending.pop_front() {
            let now = self.clock.now();
            tracing::trace!(?now, ?input, "input");
            self.node.handle(now, input, &mut self.outputs);
            let mut outputs = std::mem::take(&mut self.outputs);
            for out in outputs.drain(..) {
                tracing::trace!(?out, "output");
                self.carry_out(out);
            }
            self.outputs = outputs;
        }
    }

    fn carry_out(&mut self, out: Output) {
        match out {
            Output::Send { conn, msg } => {
                let Some(link) = self.links.get(&conn) else {
                    return;
                };
                match link.send(msg) {
                    Ok(()) => self.counters.messages_sent += 1,
                    Err(QueueError::Full) => self.drop_slow_peer(conn),
                    Err(QueueError::OverBudget(msg, size)) => self.over_budget(conn, *msg, size),
                    Err(QueueError::Closed) => {
                        self.links.remove(&conn);
                    }
                }
            }
            Output::Connect { addr } => self.connect(addr),
            Output::Close { conn } => {
                // Dropping the link lets the writer flush and close.
                if self.links.remove(&conn).is_some() {
                    tracing::debug!(conn = conn.0, stats = ?self.node.stats(), "closing connection");
                }
            }
            Output::Event(ev) => self.sink.event(ev),
        }
    }

    /// `msg` (`size` bytes) for `conn` would take the send queues past
    /// their budget. Unless links already cut are letting go of enough,
    /// the peer whose queue holds the most is the one that does not keep
    /// up: it is cut, and `msg` queued while its queue goes.
    fn over_budget(&mut self, conn: ConnId, msg: gossip_chat::Message, size: usize) {
        self.draining.retain(|b| b.load(Ordering::Relaxed) > 0);
        let going: usize = self
            .draining
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum();
        let budget = &self.params.send_budget;
        if budget.queued().saturating_sub(going).saturating_add(size) > budget.limit() {
            let fullest = self
                .links
                .iter()
                .max_by_key(|(c, l)| (l.queued_bytes(), std::cmp::Reverse(**c)))
                .map_or(conn, |(c, _)| *c);
            self.drop_slow_peer(fullest);
            if fullest == conn {
                return;
            }
        }
        let Some(link) = self.links.get(&conn) else {
            return;
        };
        match link.force(msg, size) {
            Ok(()) => self.counters.messages_sent += 1,
            Err(QueueError::Closed) => {
                self.links.remove(&conn);
            }
            Err(_) => self.drop_slow_peer(conn),
        }
    }

    /// Cuts a peer that does not keep up with what this node sends it.
    fn drop_slow_peer(&mut self, conn: ConnId) {
        self.counters.slow_peers_dropped += 1;
        tracing::warn!(conn = conn.0, "peer does not keep up, disconnecting");
        if let Some(link) = self.links.remove(&conn) {
            self.draining.retain(|b| b.load(Ordering::Relaxed) > 0);
            self.draining.push(link.abort());
        }
        self.pending.push_back(Input::Disconnected { conn });
    }

    /// Dials on a thread of its own, which becomes the reader when the
    /// connection opens.
    fn connect(&mut self, addr: SocketAddr) {
        let conn = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let inbox = self.inbox_tx.clone();
        let params = self.params.clone();
        let timeout = self.connect_timeout;
        let spawned = thread::Builder::new()
            .name(format!("conn-{}", conn.0))
            .stack_size(conn::CONN_STACK)
            .spawn(move || dial(addr, conn, timeout, &params, inbox));
        if let Err(e) = spawned {
            tracing::warn!(%addr, error = %e, "cannot start a dial thread");
            self.pending.push_back(Input::ConnectFailed { addr });
        }
    }
}

/// How long before `now` the instant `then` was, on the core's clock.
fn ago(now: gossip_chat::Instant, then: gossip_chat::Instant) -> Duration {
    Duration::from_millis(now.saturating_since(then).as_millis())
}

fn dial(
    addr: SocketAddr,
    conn: ConnId,
    timeout: Duration,
    params: &ConnParams,
    inbox: Sender<Inbound>,
) {
    let stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%addr, error = %e, "dial failed");
            let _ = inbox.send(Inbound::Input(Input::ConnectFailed { addr }));
            return;
        }
    };
    // A completed TCP handshake only proves that the kernel took the
    // connection: a process that was just killed (its listening socket not
    // closed yet) or is stopped accepts too. The connection counts as open
    // when the encrypted handshake completes (the peer's process answered
    // and holds a common cluster key); silence, a reset or a refusal within
    // the timeout is a failed dial.
    let session = match conn::handshake(&stream, Role::Initiator, params, timeout) {
        Ok(s) => s,
        Err(e) => {
            params.handshakes.failed(addr, Role::Initiator, &e);
            let _ = inbox.send(Inbound::Input(Input::ConnectFailed { addr }));
            return;
        }
    };
    let peer = session.peer;
    match conn::open(stream, session, conn, params, &inbox) {
        Ok((link, reader)) => {
            tracing::debug!(conn = conn.0, %addr, %peer, "connected");
            let opened = Inbound::Opened {
                conn,
                dialed: Some(addr),
                link,
                peer,
            };
            if inbox.send(opened).is_ok() {
                reader.run();
            }
        }
        Err(e) => {
            tracing::warn!(%addr, error = %e, "cannot set a connection up");
            let _ = inbox.send(Inbound::Input(Input::ConnectFailed { addr }));
        }
    }
}

/// Unblocks the acceptor's `accept` so that it sees its stop flag.
pub(crate) fn wake_acceptor(listen: SocketAddr) {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
}
