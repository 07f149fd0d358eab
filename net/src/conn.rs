//! The threads of one TCP connection: a reader that cuts frames out of the
//! byte stream and verifies the signatures they carry, and a writer fed by
//! a bounded queue.
//!
//! Supervision: whatever way a reader ends (end of stream, error, bad frame,
//! panic), a guard reports [`Input::Disconnected`] for its connection.
//! Whatever way a writer ends, a guard shuts the socket down, which ends the
//! reader, which reports. So the driver always hears that a connection is
//! gone, and never from two places.

use crate::keys::{Keyring, PeerId};
use crate::secure::{self, LocalKeys, Opener, Role, Sealer, Session};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use gossip_chat::wire::{self, FrameReader};
use gossip_chat::{ConnId, Input, Message, Verified};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Stack size of the per-connection threads: they only hold a read buffer
/// reference and a frame being encoded.
pub(crate) const CONN_STACK: usize = 256 * 1024;
/// Bytes read from a socket at once.
const READ_CHUNK: usize = 16 * 1024;
/// Frames are gathered into one write up to this many bytes.
const WRITE_BATCH: usize = 64 * 1024;

/// What reaches the driver from the connection threads.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A connection is open and its writer runs; [`Input::Connected`] follows
    /// from the driver. Always sent before any frame of that connection.
    Opened {
        conn: ConnId,
        dialed: Option<SocketAddr>,
        link: Link,
        /// The peer's identity, proven by the handshake.
        peer: PeerId,
    },
    /// The payload of one frame from a peer, with the signed items it
    /// carries whose signatures held, verified on the connection's reader
    /// thread so that the driver thread does not pay for them.
    Frame {
        conn: ConnId,
        payload: Vec<u8>,
        verified: Verified,
    },
    /// Anything else for the node: bad frames, disconnections, failed
    /// dials.
    Input(Input),
    /// A writer thread finished (its socket is shut down); wakes the driver
    /// while it waits for the last writers at shutdown.
    WriterDone,
}

/// Timing and sizes for connection threads.
#[derive(Clone, Debug)]
pub(crate) struct ConnParams {
    pub max_frame: usize,
    pub send_queue: usize,
    /// Bytes all send queues together may hold.
    pub send_budget: SendBudget,
    pub linger: Duration,
    pub write_timeout: Duration,
    /// Writer threads running, so that shutdown can wait for the last
    /// goodbyes to be sent.
    pub live_writers: Arc<AtomicUsize>,
    /// This node's handshake credentials.
    pub keys: Arc<LocalKeys>,
    /// The cluster keys, changeable while the node runs.
    pub ring: Arc<Mutex<Keyring>>,
    /// Longest handshake of an accepted connection.
    pub handshake_timeout: Duration,
    /// Handshakes of accepted connections under way.
    pub pending: Arc<PendingHandshakes>,
    /// Handshake outcomes, for the node's counters.
    pub handshakes: Arc<HandshakeCounters>,
}

/// Most handshakes of accepted connections under way at once. A connection
/// accepted beyond it closes the oldest one still handshaking, so strangers
/// that open connections and say nothing cost a bounded number of threads,
/// and a newcomer gets in however many of them keep coming.
pub(crate) const MAX_PENDING_HANDSHAKES: usize = 128;

/// The accepted connections still handshaking, oldest first.
#[derive(Debug, Default)]
pub(crate) struct PendingHandshakes {
    streams: Mutex<BTreeMap<ConnId, TcpStream>>,
}

impl PendingHandshakes {
    /// Registers `stream` as handshaking; if too many are, cuts the oldest
    /// (its handshake fails at once, counted as busy).
    pub(crate) fn admit(&self, conn: ConnId, stream: &TcpStream, counters: &HandshakeCounters) {
        let mut streams = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if streams.len() >= MAX_PENDING_HANDSHAKES {
            if let Some((_, oldest)) = streams.pop_first() {
                let _ = oldest.shutdown(Shutdown::Both);
                counters.busy.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Ok(s) = stream.try_clone() {
            streams.insert(conn, s);
        }
    }

    /// The handshake of `conn` ended, one way or another.
    pub(crate) fn done(&self, conn: ConnId) {
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&conn);
    }
}

/// Least time between two refusal warnings in the log (the others are
/// counted and logged at debug level).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// How handshakes ended, counted across the connection threads.
#[derive(Debug, Default)]
pub(crate) struct HandshakeCounters {
    /// Refused either way: no common cluster key, another version, another
    /// program, a bad identity proof.
    pub refused: AtomicU64,
    /// Failed on the network: timeout, reset, closed.
    pub failed: AtomicU64,
    /// Accepted connections cut while handshaking to make room for a newer
    /// one (too many handshakes under way).
    pub busy: AtomicU64,
    /// When the last refusal warning was logged.
    last_warning: Mutex<Option<std::time::Instant>>,
}

impl HandshakeCounters {
    /// Counts a failed handshake and logs it: a refusal as a warning (at
    /// most one per [`REFUSAL_LOG_INTERVAL`]), a network failure at debug
    /// level.
    pub(crate) fn failed(&self, peer: SocketAddr, role: Role, error: &secure::HandshakeError) {
        let side = match role {
            Role::Initiator => "dialled",
            Role::Responder => "accepted",
        };
        if !error.is_refusal() {
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, side, %error, "handshake failed");
            return;
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        let now = std::time::Instant::now();
        let warn = {
            let mut last = self
                .last_warning
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = last.is_none_or(|t| now - t >= REFUSAL_LOG_INTERVAL);
            if due {
                *last = Some(now);
            }
            due
        };
        if warn {
            tracing::warn!(%peer, side, %error, "connection refused");
        } else {
            tracing::debug!(%peer, side, %error, "connection refused");
        }
    }
}

/// Runs the handshake on a fresh connection with the current keyring.
pub(crate) fn handshake(
    stream: &TcpStream,
    role: Role,
    params: &ConnParams,
    timeout: Duration,
) -> Result<Session, secure::HandshakeError> {
    let ring = params
        .ring
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    secure::handshake(stream, role, &params.keys, &ring, timeout)
}

/// The bytes queued for sending over all connections, against one limit:
/// a queued message holds its text even after the history let it go, so
/// counting messages alone would let a few peers that stop reading pin
/// `send_queue` maximum-size chats each.
#[derive(Clone, Debug)]
pub(crate) struct SendBudget {
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl SendBudget {
    pub(crate) fn new(limit: usize) -> SendBudget {
        SendBudget {
            queued: Arc::default(),
            limit,
        }
    }

    /// Bytes queued over all connections.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

/// A message in a send queue, counted in its link's bytes and in the
/// budget until it is dropped: written, or thrown away with its queue.
#[derive(Debug)]
struct Queued {
    msg: Message,
    size: usize,
    link: Arc<AtomicUsize>,
    budget: Arc<AtomicUsize>,
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.link.fetch_sub(self.size, Ordering::Relaxed);
        self.budget.fetch_sub(self.size, Ordering::Relaxed);
    }
}

/// The driver's end of a connection: the writer's queue and a handle to
/// shut the socket down.
///
/// The queue is a growable channel bounded by a length check (the driver is
/// its only sender, so the check cannot be raced past): a bounded channel
/// would allocate and touch every slot up front, several hundred KiB per
/// connection at the default size, also for connections that never say a
/// word.
#[derive(Debug)]
pub(crate) struct Link {
    queue: Sender<Queued>,
    capacity: usize,
    /// Bytes (encoded payloads) waiting in the queue.
    bytes: Arc<AtomicUsize>,
    budget: SendBudget,
    stream: TcpStream,
}

/// Why a message could not be queued.
#[derive(Debug)]
pub(crate) enum QueueError {
    /// The peer does not keep up: its queue is full.
    Full,
    /// All send queues together hold the budget's bytes: the message is
    /// handed back with its size, for [`Link::force`] once room is being
    /// made.
    OverBudget(Box<Message>, usize),
    /// The writer is gone.
    Closed,
}

impl Link {
    /// Queues `msg` without blocking, within the queue's length and the
    /// send budget.
    pub(crate) fn send(&self, msg: Message) -> Result<(), QueueError> {
        if self.queue.len() >= self.capacity {
            return Err(QueueError::Full);
        }
        let size = wire::payload_len(&msg);
        if self.budget.queued().saturating_add(size) > self.budget.limit {
            return Err(QueueError::OverBudget(Box::new(msg), size));
        }
        self.force(msg, size)
    }

    /// Queues `msg` of `size` bytes past the budget: room is being made
    /// by cutting the link that holds the most, and one message may wait
    /// for that.
    pub(crate) fn force(&self, msg: Message, size: usize) -> Result<(), QueueError> {
        self.bytes.fetch_add(size, Ordering::Relaxed);
        self.budget.queued.fetch_add(size, Ordering::Relaxed);
        let queued = Queued {
            msg,
            size,
            link: Arc::clone(&self.bytes),
            budget: Arc::clone(&self.budget.queued),
        };
        self.queue.try_send(queued).map_err(|e| match e {
            TrySendError::Full(_) => QueueError::Full,
            TrySendError::Disconnected(_) => QueueError::Closed,
        })
    }

    /// Messages waiting in the queue.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Bytes waiting in the queue.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Cuts the connection at once, dropping whatever is queued. Returns
    /// the queue's byte count, which falls to zero once the writer has let
    /// the queue go.
    pub(crate) fn abort(self) -> Arc<AtomicUsize> {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.bytes
    }

    // Dropping a link closes the queue: the writer sends what is queued,
    // then closes the connection gracefully.
}

/// Sets a fresh connection up: socket options, writer thread. Returns the
/// driver's link and the reader's half, or an error if no thread could be
/// started (the socket is then dropped).
pub(crate) fn open(
    stream: TcpStream,
    session: Session,
    conn: ConnId,
    params: &ConnParams,
    inbox: &Sender<Inbound>,
) -> std::io::Result<(Link, ReaderHalf)> {
    let (sealer, opener) = session.split();
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(params.write_timeout))?;
    let (queue, rx) = crossbeam_channel::unbounded();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let writer = Writer {
        conn,
        stream: stream.try_clone()?,
        queue: rx,
        sealer,
        reader_done: done_rx,
        linger: params.linger,
        _guard: WriterGuard::new(conn, &params.live_writers, stream.try_clone()?, inbox),
    };
    let driver_stream = stream.try_clone()?;
    // A writer that cannot start drops its guard with the closure: counted
    // out again, its socket shut.
    thread::Builder::new()
        .name(format!("write-{}", conn.0))
        .stack_size(CONN_STACK)
        .spawn(move || writer.run())?;
    Ok((
        Link {
            queue,
            capacity: params.send_queue,
            bytes: Arc::default(),
            budget: params.send_budget.clone(),
            stream: driver_stream,
        },
        ReaderHalf {
            conn,
            stream,
            opener,
            max_frame: params.max_frame,
            inbox: inbox.clone(),
            _done: done_tx,
        },
    ))
}

/// Reports the connection closed when the reader ends, however it ends.
struct ReportClosed {
    conn: ConnId,
    inbox: Sender<Inbound>,
}

impl Drop for ReportClosed {
    fn drop(&mut self) {
        if thread::panicking() {
            tracing::error!(conn = self.conn.0, "connection reader panicked");
        }
        let _ = self
            .inbox
            .send(Inbound::Input(Input::Disconnected { conn: self.conn }));
    }
}

/// The reading side of a connection, run on its own thread.
pub(crate) struct ReaderHalf {
    conn: ConnId,
    stream: TcpStream,
    opener: Opener,
    max_frame: usize,
    inbox: Sender<Inbound>,
    /// Dropped when the reader ends; the writer waits on it while lingering.
    _done: Sender<()>,
}

impl ReaderHalf {
    /// Reads frames until the stream ends, fails or breaks the protocol.
    pub(crate) fn run(mut self) {
        let conn = self.conn;
        let _report = ReportClosed {
            conn,
            inbox: self.inbox.clone(),
        };
        let mut frames = FrameReader::new(self.max_frame);
        let mut buf = vec![0u8; READ_CHUNK];
        let mut plain = Vec::with_capacity(READ_CHUNK);
        loop {
            let n = match (&self.stream).read(&mut buf) {
                Ok(0) => {
                    tracing::debug!(conn = conn.0, "connection closed by peer");
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(conn = conn.0, error = %e, "connection read failed");
                    return;
                }
            };
            plain.clear();
            if let Err(error) = self.opener.open(&buf[..n], &mut plain) {
                tracing::warn!(conn = conn.0, %error, "dropping connection");
                let _ = self.stream.shutdown(Shutdown::Both);
                return;
            }
            frames.extend(&plain);
            loop {
                match frames.next_frame() {
                    Ok(Some(payload)) => {
                        let frame = Inbound::Frame {
                            conn,
                            verified: self.verify(payload),
                            payload: payload.to_vec(),
                        };
                        if self.inbox.send(frame).is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(conn = conn.0, %error, "bad frame, dropping connection");
                        let _ = self
                            .inbox
                            .send(Inbound::Input(Input::BadFrame { conn, error }));
                        let _ = self.stream.shutdown(Shutdown::Both);
                        return;
                    }
                }
            }
        }
    }

    /// The signed items of a frame whose signatures hold, verified here,
    /// on the connection's thread: readers run side by side, the driver
    /// that owns the node is one thread. (The frame is decoded for this
    /// only; the node decodes it again, so that what it keeps, its history
    /// above all, is allocated on the driver thread: memory freed on one
    /// thread and allocated on many is not reused well. A payload that does
    /// not decode has nothing verified; the node counts it.)
    fn verify(&self, payload: &[u8]) -> Verified {
        wire::decode_payload(payload, self.max_frame)
            .map(|msg| Verified::of(&msg))
            .unwrap_or_default()
    }
}

/// The writing side of a connection.
struct Writer {
    conn: ConnId,
    stream: TcpStream,
    queue: Receiver<Queued>,
    sealer: Sealer,
    reader_done: Receiver<()>,
    linger: Duration,
    /// Dropped with the writer, however it ends (or if it never starts).
    _guard: WriterGuard,
}

/// Shuts the socket down and tells the driver when the writer ends, however
/// it ends; the reader then sees the end of the stream and reports.
struct WriterGuard {
    conn: ConnId,
    live: Arc<AtomicUsize>,
    stream: TcpStream,
    inbox: Sender<Inbound>,
}

impl WriterGuard {
    /// Counts a writer as live until the guard drops.
    fn new(
        conn: ConnId,
        live: &Arc<AtomicUsize>,
        stream: TcpStream,
        inbox: &Sender<Inbound>,
    ) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        WriterGuard {
            conn,
            live: live.clone(),
            stream,
            inbox: inbox.clone(),
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if thread::panicking() {
            tracing::error!(conn = self.conn.0, "connection writer panicked");
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        self.live.fetch_sub(1, Ordering::SeqCst);
        let _ = self.inbox.send(Inbound::WriterDone);
    }
}

impl Writer {
    fn run(mut self) {
        let mut buf = Vec::with_capacity(4096);
        let mut sealed = Vec::with_capacity(4096);
        // Until the driver drops its end of the queue: send everything, in
        // order, a batch of frames per write.
        while let Ok(q) = self.queue.recv() {
            buf.clear();
            wire::encode_frame(&q.msg, &mut buf);
            while buf.len() < WRITE_BATCH {
                match self.queue.try_recv() {
                    Ok(q) => wire::encode_frame(&q.msg, &mut buf),
                    Err(_) => break,
                }
            }
            sealed.clear();
            self.sealer.seal(&buf, &mut sealed);
            if let Err(e) = (&self.stream).write_all(&sealed) {
                tracing::debug!(conn = self.conn.0, error = %e, "connection write failed");
                return;
            }
            if buf.capacity() > 4 * WRITE_BATCH {
                buf = Vec::with_capacity(4096);
                sealed = Vec::with_capacity(4096);
            }
        }
        // Graceful close: end our direction, then give the peer a moment to
        // read what we sent and close its side (closing with unread input
        // would reset the connection and could lose our last frames).
        let _ = self.stream.shutdown(Shutdown::Write);
        let _ = self.reader_done.recv_timeout(self.linger);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::SecureStream;
    use gossip_chat::wire::WireError;
    use gossip_chat::Authenticity;
    use std::net::TcpListener;

    fn params() -> ConnParams {
        ConnParams {
            max_frame: 4096,
            send_queue: 8,
            send_budget: SendBudget::new(1 << 20),
            linger: Duration::from_millis(200),
            write_timeout: Duration::from_secs(5),
            live_writers: Arc::default(),
            keys: Arc::new(LocalKeys::new(crate::keys::NodeIdentity::generate())),
            ring: Arc::default(),
            handshake_timeout: Duration::from_secs(5),
            pending: Arc::default(),
            handshakes: Arc::default(),
        }
    }

    /// An accepted connection set up with [`open`] after its handshake, its
    /// reader running, and the client end.
    fn pair() -> (Link, Receiver<Inbound>, SecureStream) {
        pair_with(params())
    }

    /// [`pair`] with these parameters.
    fn pair_with(p: ConnParams) -> (Link, Receiver<Inbound>, SecureStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || {
            let keys = LocalKeys::new(crate::keys::NodeIdentity::generate());
            SecureStream::connect(addr, &keys, &Keyring::default(), Duration::from_secs(5)).unwrap()
        });
        let (server, _) = listener.accept().unwrap();
        let session = handshake(&server, Role::Responder, &p, p.handshake_timeout).unwrap();
        let (inbox, rx) = crossbeam_channel::unbounded();
        let (link, reader) = open(server, session, ConnId(7), &p, &inbox).unwrap();
        thread::spawn(move || reader.run());
        (link, rx, client.join().unwrap())
    }

    /// The other end closed the connection: the next read is the end of the
    /// stream, within 5 s. A timeout, a reset or any other read error fails,
    /// and so do bytes that were not expected.
    fn assert_closed_cleanly(client: &mut SecureStream) {
        client
            .tcp()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 16];
        match client.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("expected the end of the stream, read {n} bytes"),
            Err(e) => panic!("expected the end of the stream, the read failed: {e}"),
        }
    }

    fn next(rx: &Receiver<Inbound>) -> Inbound {
        rx.recv_timeout(Duration::from_secs(5))
            .expect("an inbound event")
    }

    /// The next inbound event, which must be a frame: its connection,
    /// payload and what the reader verified in it.
    fn next_frame(rx: &Receiver<Inbound>) -> (ConnId, Vec<u8>, Verified) {
        match next(rx) {
            Inbound::Frame {
                conn,
                payload,
                verified,
            } => (conn, payload, verified),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn frames_arrive_in_order_and_a_closed_peer_is_reported_once() {
        let (link, rx, mut client) = pair();
        let mut bytes = Vec::new();
        wire::encode_frame(&Message::Ping(1), &mut bytes);
        wire::encode_frame(&Message::Ping(2), &mut bytes);
        client.write_all(&bytes).unwrap();
        for n in [1, 2] {
            let (conn, payload, verified) = next_frame(&rx);
            assert_eq!(conn, ConnId(7));
            assert_eq!(
                wire::decode_payload(&payload, 4096).unwrap(),
                Message::Ping(n)
            );
            assert!(verified.is_empty(), "a ping carries no signature");
        }
        drop(client);
        assert!(matches!(
            next(&rx),
            Inbound::Input(Input::Disconnected { conn: ConnId(7) })
        ));
        drop(link);
        assert!(matches!(next(&rx), Inbound::WriterDone));
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    }

    /// Message `seq` of the member holding `key`, signed by it.
    fn signed_chat(key: &ed25519_dalek::SigningKey, seq: u64, text: &str) -> gossip_chat::Chat {
        let origin = gossip_chat::NodeKey {
            id: gossip_chat::Id::of_key(&key.verifying_key().to_bytes()),
            incarnation: 1,
        };
        gossip_chat::Chat::signed(
            key,
            gossip_chat::MsgId { origin, seq },
            "x".into(),
            text.into(),
            0,
        )
    }

    #[test]
    fn the_reader_verifies_the_signatures_a_frame_carries() {
        let (_link, rx, mut client) = pair();
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let good = signed_chat(&key, 1, "hello");
        // The same signature over another text.
        let forged = gossip_chat::Chat {
            text: "hello, all".into(),
            ..good.clone()
        };
        let mut bytes = Vec::new();
        for c in [&good, &forged] {
            wire::encode_frame(&Message::Chat(c.clone()), &mut bytes);
        }
        client.write_all(&bytes).unwrap();
        // Both go on, the good one with its signature verified, the forgery
        // without: the node checks it itself, refuses and counts it.
        for (c, signed) in [(good, true), (forged, false)] {
            let (_, payload, verified) = next_frame(&rx);
            assert_eq!(
                wire::decode_payload(&payload, 4096).unwrap(),
                Message::Chat(c.clone())
            );
            assert_eq!(verified.len(), usize::from(signed));
            let checked = gossip_chat::Checked::default();
            let _hold = checked.hold(verified);
            assert_eq!(checked.authentic(&c), signed);
            // Verified on the driver's side only if not ahead.
            assert_eq!(checked.verified_here(), u64::from(!signed));
        }
    }

    #[test]
    fn a_payload_that_does_not_decode_goes_on_for_the_node_to_count() {
        let (_link, rx, mut client) = pair();
        // A frame of one byte that is no message.
        client.write_all(&[0, 0, 0, 1, 0xff]).unwrap();
        let (conn, payload, verified) = next_frame(&rx);
        assert_eq!((conn, payload), (ConnId(7), vec![0xff]));
        assert!(verified.is_empty());
    }

    #[test]
    fn an_oversized_frame_is_reported_and_the_connection_cut() {
        let (_link, rx, mut client) = pair();
        client.write_all(&[0xff, 0xff, 0xff, 0xff, 0]).unwrap();
        assert!(matches!(
            next(&rx),
            Inbound::Input(Input::BadFrame {
                error: WireError::Oversized { .. },
                ..
            })
        ));
        assert!(matches!(
            next(&rx),
            Inbound::Input(Input::Disconnected { .. })
        ));
        assert_closed_cleanly(&mut client);
    }

    #[test]
    fn a_record_that_does_not_decrypt_cuts_the_connection() {
        let (_link, rx, mut client) = pair();
        // Raw bytes under the encryption: a record of garbage.
        let mut raw = client.tcp().try_clone().unwrap();
        raw.write_all(&[0, 20]).unwrap();
        raw.write_all(&[0x55; 20]).unwrap();
        assert!(matches!(
            next(&rx),
            Inbound::Input(Input::Disconnected { conn: ConnId(7) })
        ));
        assert_closed_cleanly(&mut client);
    }

    #[test]
    fn queued_messages_are_sent_before_a_graceful_close() {
        let (link, _rx, mut client) = pair();
        for n in 0..5 {
            assert!(link.send(Message::Ping(n)).is_ok());
        }
        drop(link);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        let mut frames = FrameReader::new(4096);
        frames.extend(&got);
        let mut n = 0;
        while let Some(p) = frames.next_frame().unwrap() {
            assert_eq!(wire::decode_payload(p, 4096).unwrap(), Message::Ping(n));
            n += 1;
        }
        assert_eq!(n, 5);
    }

    #[test]
    fn a_full_queue_is_refused_without_blocking() {
        let (link, _rx, _client) = pair();
        // The writer may take a few messages off the queue; the socket
        // buffers take the rest until full, then the queue fills.
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let big = Message::Chat(signed_chat(&key, 1, &"y".repeat(3000)));
        let mut full = false;
        for _ in 0..100_000 {
            if let Err(QueueError::Full) = link.send(big.clone()) {
                full = true;
                break;
            }
        }
        assert!(full, "a peer that never reads fills its queue");
        link.abort();
    }

    /// The send budget bounds the bytes of all queues together: a send
    /// past it is handed back (the driver cuts the fullest link, then
    /// forces it), and a queue thrown away with its link counts out.
    #[test]
    fn a_send_past_the_budget_is_handed_back_and_a_dropped_queue_counts_out() {
        let budget = SendBudget::new(64 * 1024);
        let (link, _rx, _client) = pair_with(ConnParams {
            send_queue: 1 << 20,
            send_budget: budget.clone(),
            ..params()
        });
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let big = Message::Chat(signed_chat(&key, 1, &"y".repeat(3000)));
        let mut handed_back = None;
        for _ in 0..100_000 {
            match link.send(big.clone()) {
                Ok(()) => {}
                Err(QueueError::OverBudget(msg, _)) => {
                    handed_back = Some(*msg);
                    break;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(handed_back.as_ref(), Some(&big), "a peer that never reads");
        assert!(budget.queued() <= budget.limit(), "{}", budget.queued());
        assert!(budget.queued() + wire::payload_len(&big) > budget.limit());
        assert_eq!(link.queued_bytes(), budget.queued());
        link.force(big.clone(), wire::payload_len(&big)).unwrap();
        assert!(budget.queued() > budget.limit());
        link.abort();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while budget.queued() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} bytes still counted",
                budget.queued()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_panicking_reader_still_reports_its_connection_closed() {
        let (inbox, rx) = crossbeam_channel::unbounded();
        let reader = thread::spawn(move || {
            let _report = ReportClosed {
                conn: ConnId(3),
                inbox,
            };
            panic!("reader bug");
        });
        assert!(reader.join().is_err());
        assert!(matches!(
            next(&rx),
            Inbound::Input(Input::Disconnected { conn: ConnId(3) })
        ));
    }

    #[test]
    fn a_panicking_writer_cuts_its_socket_so_the_reader_reports() {
        let (link, rx, mut client) = pair();
        let stream = link.stream.try_clone().unwrap();
        let live = Arc::new(AtomicUsize::new(1));
        let inbox = crossbeam_channel::unbounded().0;
        let counted = live.clone();
        let writer = thread::spawn(move || {
            let _guard = WriterGuard {
                conn: ConnId(7),
                live: counted,
                stream,
                inbox,
            };
            panic!("writer bug");
        });
        assert!(writer.join().is_err());
        // The writer is no longer counted as live, so shutdown does not wait
        // for it.
        assert_eq!(live.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(matches!(
            next(&rx),
            Inbound::Input(Input::Disconnected { conn: ConnId(7) })
        ));
        assert_closed_cleanly(&mut client);
        drop(link);
    }
}
