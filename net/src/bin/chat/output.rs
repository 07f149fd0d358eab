//! What the user sees on stdout: human lines or one JSON object per line.

use gossip_chat::{DownReason, Event, NodeKey, Refusal};
use gossip_chat_net::{wall_clock_millis, EventSink, Peer};
use serde_json::{json, Value};
use std::io::{BufWriter, Stdout, Write};
use std::net::SocketAddr;

/// Prints events, on the driver thread, buffered until the driver idles.
pub struct Printer {
    json: bool,
    out: BufWriter<Stdout>,
}

impl Printer {
    pub fn new(json: bool) -> Printer {
        Printer {
            json,
            out: BufWriter::with_capacity(16 * 1024, std::io::stdout()),
        }
    }

    fn line(&mut self, line: String) {
        // One write per whole line, so lines never interleave with the ones
        // the main thread prints. A closed stdout is not an error: the node
        // goes on until stdin ends.
        let _ = self.out.write_all(line.as_bytes());
    }
}

/// `HH:MM:SS` (UTC) of now.
fn clock_time() -> String {
    let secs = wall_clock_millis() / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

fn reason_str(reason: DownReason) -> &'static str {
    match reason {
        DownReason::Dead => "dead",
        DownReason::Left => "left",
    }
}

/// The JSON object for one event.
pub fn event_json(event: &Event) -> Value {
    match event {
        Event::PeerUp { node, name } => json!({
            "event": "peer_up",
            "addr": node.addr.to_string(),
            "name": &**name,
            "incarnation": node.incarnation,
        }),
        Event::PeerDown { node, name, reason } => json!({
            "event": "peer_down",
            "addr": node.addr.to_string(),
            "name": &**name,
            "incarnation": node.incarnation,
            "reason": reason_str(*reason),
        }),
        Event::Chat {
            id,
            name,
            text,
            history,
        } => json!({
            "event": "chat",
            "origin": id.origin.addr.to_string(),
            "incarnation": id.origin.incarnation,
            "name": &**name,
            "seq": id.seq,
            "text": &**text,
            "history": history,
        }),
        Event::Gap {
            origin,
            first,
            last,
        } => json!({
            "event": "gap",
            "origin": origin.addr.to_string(),
            "incarnation": origin.incarnation,
            "first": first,
            "last": last,
        }),
        Event::Refuted { incarnation } => json!({
            "event": "refuted",
            "incarnation": incarnation,
        }),
        Event::Refused(Refusal::TextTooLong { len, max }) => json!({
            "event": "refused",
            "reason": "text_too_long",
            "len": len,
            "max": max,
        }),
        Event::Refused(Refusal::AlreadyLeft) => json!({
            "event": "refused",
            "reason": "already_left",
        }),
    }
}

/// The human line for one event.
fn event_text(event: &Event) -> String {
    let t = clock_time();
    match event {
        Event::PeerUp { node, name } => format!("{t} * {name} joined ({})", node.addr),
        Event::PeerDown {
            node,
            name,
            reason: DownReason::Left,
        } => format!("{t} * {name} left ({})", node.addr),
        Event::PeerDown {
            node,
            name,
            reason: DownReason::Dead,
        } => format!("{t} * {name} is gone: not answering ({})", node.addr),
        Event::Chat { name, text, .. } => format!("{t} {name}: {text}"),
        Event::Gap {
            origin,
            first,
            last,
        } => format!(
            "{t} * {} message(s) from {} could not be recovered",
            last - first + 1,
            origin.addr
        ),
        Event::Refuted { incarnation } => {
            format!("{t} * others believed this node gone; now life {incarnation}")
        }
        Event::Refused(Refusal::TextTooLong { len, max }) => {
            format!("{t} * not sent: {len} bytes, the limit is {max}")
        }
        Event::Refused(Refusal::AlreadyLeft) => format!("{t} * not sent: already left"),
    }
}

impl EventSink for Printer {
    fn ready(&mut self, addr: SocketAddr, name: &str) {
        let line = if self.json {
            json!({"event": "ready", "addr": addr.to_string(), "name": name}).to_string()
        } else {
            format!(
                "{} * listening on {addr} as {name}; type a message, or /help",
                clock_time()
            )
        };
        self.line(line + "\n");
        // Scripts wait for this line: do not hold it back.
        let _ = self.out.flush();
    }

    fn event(&mut self, event: Event) {
        let line = if self.json {
            event_json(&event).to_string()
        } else {
            event_text(&event)
        };
        self.line(line + "\n");
    }

    fn idle(&mut self) {
        let _ = self.out.flush();
    }

    fn stopped(&mut self) {
        let _ = self.out.flush();
        // The node has left (stdin ended, /quit, or a signal): the program
        // is done, whatever the main thread is blocked on.
        std::process::exit(0);
    }
}

/// The `/peers` answer.
pub fn peers_text(json: bool, peers: &[Peer]) -> String {
    if json {
        let list: Vec<Value> = peers
            .iter()
            .map(|p| {
                json!({
                    "addr": p.node.addr.to_string(),
                    "name": p.name,
                    "incarnation": p.node.incarnation,
                    "neighbour": p.neighbour,
                })
            })
            .collect();
        return json!({"event": "peers", "peers": list}).to_string();
    }
    if peers.is_empty() {
        return format!("{} * nobody else here yet", clock_time());
    }
    let mut s = format!("{} * {} peer(s):", clock_time(), peers.len());
    for Peer {
        node,
        name,
        neighbour,
    } in peers
    {
        let NodeKey { addr, .. } = node;
        let link = if *neighbour { "direct" } else { "via others" };
        s.push_str(&format!("\n    {name} ({addr}, {link})"));
    }
    s
}
