//! `--metrics ADDR`: the node's counters in the Prometheus text format,
//! served over plain HTTP (`GET /metrics`) by a thread of its own.
//!
//! The values come from the driver thread, which owns the node and
//! publishes a [`Snapshot`] on a [`SnapshotBoard`] as it runs; this thread
//! only reads the latest one. Requests are answered one at a time, each
//! bounded by a timeout, so a stuck client holds nothing but itself up.

use gossip_chat::{Stats, TableSizes};
use gossip_chat_net::{Snapshot, SnapshotBoard};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Longest a client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest request head read; longer ones are answered 431.
const MAX_REQUEST: usize = 8 * 1024;

type Labels = Vec<(&'static str, &'static str)>;

/// Every metric, registered once; set from a snapshot at each scrape.
struct Metrics {
    registry: Registry,
    members: Family<Labels, Gauge>,
    tables: Family<Labels, Gauge>,
    dropped: Family<Labels, Counter>,
    chats_sent: Counter,
    messages_sent: Counter,
    frames_received: Counter,
    signatures_on_driver: Counter,
    delivered: Counter,
    duplicates: Counter,
    repaired: Counter,
    gaps: Counter,
    deaths_detected: Counter,
    refutations: Counter,
    incarnation: Gauge,
    send_queued: Gauge,
    send_queue_max: Gauge,
    send_queued_bytes: Gauge,
    inbox: Gauge,
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("gossip_chat"),
            members: Family::default(),
            tables: Family::default(),
            dropped: Family::default(),
            chats_sent: Counter::default(),
            messages_sent: Counter::default(),
            frames_received: Counter::default(),
            signatures_on_driver: Counter::default(),
            delivered: Counter::default(),
            duplicates: Counter::default(),
            repaired: Counter::default(),
            gaps: Counter::default(),
            deaths_detected: Counter::default(),
            refutations: Counter::default(),
            incarnation: Gauge::default(),
            send_queued: Gauge::default(),
            send_queue_max: Gauge::default(),
            send_queued_bytes: Gauge::default(),
            inbox: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "members",
            "Other members known, by state (alive, suspect, dead, left)",
            m.members.clone(),
        );
        r.register(
            "table_size",
            "Entries in each of the node's bounded tables",
            m.tables.clone(),
        );
        r.register(
            "dropped",
            "Input dropped or refused, by reason",
            m.dropped.clone(),
        );
        r.register(
            "chats_sent",
            "Chat messages typed here and sent",
            m.chats_sent.clone(),
        );
        r.register(
            "messages_sent",
            "Protocol messages queued to peers",
            m.messages_sent.clone(),
        );
        r.register(
            "frames_received",
            "Frames received from peers",
            m.frames_received.clone(),
        );
        r.register(
            "signatures_on_driver",
            "Signatures the driver thread verified itself, not ahead on a connection's reader",
            m.signatures_on_driver.clone(),
        );
        r.register(
            "delivered",
            "Chat messages delivered to the user",
            m.delivered.clone(),
        );
        r.register(
            "duplicates",
            "Chat copies that arrived again",
            m.duplicates.clone(),
        );
        r.register(
            "repaired",
            "Chat messages sent to peers by history repair",
            m.repaired.clone(),
        );
        r.register(
            "gaps",
            "Gaps in a sender's messages given up",
            m.gaps.clone(),
        );
        r.register(
            "deaths_detected",
            "Neighbours declared dead by this node's heartbeat",
            m.deaths_detected.clone(),
        );
        r.register(
            "refutations",
            "Times this node refuted an accusation of being gone",
            m.refutations.clone(),
        );
        r.register(
            "incarnation",
            "This node's current life",
            m.incarnation.clone(),
        );
        r.register(
            "send_queue_messages",
            "Messages waiting in all connections' send queues",
            m.send_queued.clone(),
        );
        r.register(
            "send_queue_max_messages",
            "Messages waiting in the longest send queue",
            m.send_queue_max.clone(),
        );
        r.register(
            "send_queue_bytes",
            "Bytes waiting in all connections' send queues (bounded by the send budget)",
            m.send_queued_bytes.clone(),
        );
        r.register(
            "inbox_frames",
            "Frames and connection events waiting for the node",
            m.inbox.clone(),
        );
        m
    }

    /// Sets every metric from `s`.
    fn set(&self, s: &Snapshot) {
        let gauge = |g: &Gauge, v: usize| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        let counter = |c: &Counter, v: u64| {
            c.inner().store(v, Ordering::Relaxed);
        };
        for (state, n) in [
            ("alive", s.members.alive),
            ("suspect", s.members.suspect),
            ("dead", s.members.dead),
            ("left", s.members.left),
        ] {
            gauge(&self.members.get_or_create(&vec![("state", state)]), n);
        }
        let TableSizes {
            members,
            connections,
            neighbours,
            accepting,
            dialing,
            streams,
            held,
            history,
            recent,
            probing,
            outbox,
        } = s.tables;
        for (table, n) in [
            ("members", members),
            ("connections", connections),
            ("neighbours", neighbours),
            ("accepting", accepting),
            ("dialing", dialing),
            ("streams", streams),
            ("held", held),
            ("history", history),
            ("recent", recent),
            ("probing", probing),
            ("outbox", outbox),
        ] {
            gauge(&self.tables.get_or_create(&vec![("table", table)]), n);
        }
        let Stats {
            malformed,
            oversized,
            bad_version,
            unexpected,
            impostors,
            forged,
            forged_state,
            accusations_limited,
            accusers_limited: _,
            text_too_long,
            duplicates,
            rerouted: _,
            delivered,
            held_dropped,
            gaps,
            members_refused,
            streams_evicted,
            peer_list_truncated,
            conns_refused,
            handshake_timeouts,
            suspicions: _,
            deaths_detected,
            refutations,
            repaired_sent,
            overlay_mends: _,
            overlay_dials: _,
            bridge_dials: _,
            ring_dials: _,
            beacon_dials: _,
            shortcut_dials: _,
            quiet_rounds: _,
            mends_pruned: _,
            prunes_crossed: _,
            announced_lost: _,
            beacons_dropped,
        } = s.stats.clone();
        for (reason, n) in [
            ("malformed", malformed),
            ("oversized", oversized),
            ("bad_version", bad_version),
            ("unexpected", unexpected),
            ("impostor", impostors),
            ("forged_chat", forged),
            ("forged_state", forged_state),
            ("accuser_limited", accusations_limited),
            ("text_too_long", text_too_long),
            ("held_back_full", held_dropped),
            ("members_full", members_refused),
            ("stream_evicted", streams_evicted),
            ("peer_list_truncated", peer_list_truncated),
            ("connections_full", conns_refused),
            ("handshake_timeout", handshake_timeouts),
            ("beacon_dropped", beacons_dropped),
            ("slow_peer", s.adapter.slow_peers_dropped),
            ("handshake_refused", s.adapter.handshakes_refused),
            ("handshake_failed", s.adapter.handshakes_failed),
            ("handshake_busy", s.adapter.handshakes_busy),
        ] {
            counter(&self.dropped.get_or_create(&vec![("reason", reason)]), n);
        }
        counter(&self.chats_sent, s.adapter.chats_sent);
        counter(&self.messages_sent, s.adapter.messages_sent);
        counter(&self.frames_received, s.adapter.frames_received);
        counter(&self.signatures_on_driver, s.adapter.signatures_on_driver);
        counter(&self.delivered, delivered);
        counter(&self.duplicates, duplicates);
        counter(&self.repaired, repaired_sent);
        counter(&self.gaps, gaps);
        counter(&self.deaths_detected, deaths_detected);
        counter(&self.refutations, refutations);
        self.incarnation
            .set(i64::try_from(s.incarnation).unwrap_or(i64::MAX));
        gauge(&self.send_queued, s.send_queued);
        gauge(&self.send_queue_max, s.send_queue_max);
        gauge(&self.send_queued_bytes, s.send_queued_bytes);
        gauge(&self.inbox, s.inbox);
    }

    /// The text format of the latest snapshot (empty before the first).
    fn render(&self, board: &SnapshotBoard) -> String {
        let mut body = String::new();
        if let Some(s) = board.latest() {
            self.set(&s);
            let _ = prometheus_text::encode(&mut body, &self.registry);
        }
        body
    }
}

/// Serves `GET /metrics` on `listener` from `board`, on a thread of its
/// own, for as long as the program runs.
pub fn serve(listener: TcpListener, board: SnapshotBoard) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let metrics = Metrics::new();
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(e) = answer(s, &metrics, &board) {
                            tracing::debug!(error = %e, "metrics request failed");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "metrics accept failed"),
                }
            }
        })
        .map(|_| ())
}

/// Reads one request and answers it; the connection then closes.
fn answer(mut stream: TcpStream, metrics: &Metrics, board: &SnapshotBoard) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            );
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            let body = metrics.render(board);
            respond(&mut stream, "200 OK", prometheus_text::CONTENT_TYPE, &body)
        }
        ("GET", _) => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            "metrics are at /metrics\n",
        ),
        _ => respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n",
        ),
    }
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
