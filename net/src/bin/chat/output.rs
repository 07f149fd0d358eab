//! What the user sees on stdout: human lines or one JSON object per line.

use crate::colour::{paint, short_id, Colours};
use crate::recovered::{Burst, Recovered};
use crate::wall_time::{author_text, now_text as clock_time};
use crossbeam_channel::Sender;
use gossip_chat::{DownReason, Event, Id, MemberState, Refusal, Stats, TableSizes};
use gossip_chat_net::{wall_clock_millis, EventSink, KeyChange, Member, PeerId};
use serde_json::{json, Value};
use std::io::{BufWriter, Stdout, Write};
use std::net::SocketAddr;
use std::time::Instant;

/// What marks a chat delivered from history (a newcomer's catch-up, or
/// recovered by repair after a split) rather than live.
pub const HISTORY_MARK: &str = "(history) ";

/// Where printed lines go.
pub enum Out {
    /// Straight to stdout, buffered until the driver idles: scripts, pipes,
    /// `--json`.
    Plain(BufWriter<Stdout>),
    /// To the line editor's printer, which puts each line above the line
    /// being typed: a terminal.
    Screen(Sender<String>),
}

impl Out {
    /// Stdout as it is.
    pub fn plain() -> Out {
        Out::Plain(BufWriter::with_capacity(16 * 1024, std::io::stdout()))
    }

    /// Writes one line (ending in a newline).
    pub fn line(&mut self, line: String) {
        match self {
            // One write per whole line, so lines never interleave with the
            // ones the main thread prints. A closed stdout is not an error:
            // the node goes on until stdin ends.
            Out::Plain(out) => {
                let _ = out.write_all(line.as_bytes());
            }
            Out::Screen(tx) => {
                let _ = tx.send(line);
            }
        }
    }

    pub fn flush(&mut self) {
        if let Out::Plain(out) = self {
            let _ = out.flush();
        }
    }
}

/// Prints events, on the driver thread.
pub struct Printer {
    json: bool,
    /// How members' names are coloured (terminals only).
    colour: Colours,
    out: Out,
    /// Where the metrics endpoint listens, for the first line.
    metrics: Option<SocketAddr>,
    /// The node's identity, for the first line.
    id: Option<PeerId>,
    /// Run when the node has stopped, before the program exits (the line
    /// editor gives the terminal back).
    on_stop: Option<Box<dyn FnOnce() + Send>>,
    /// History deliveries, summed up in bursts.
    recovered: Recovered,
}

impl Printer {
    /// Prints to `out`: JSON objects when `json`, else lines with names
    /// coloured as `colour` says.
    pub fn new(json: bool, colour: Colours, out: Out) -> Printer {
        Printer {
            json,
            colour: if json { Colours::Off } else { colour },
            out,
            metrics: None,
            id: None,
            on_stop: None,
            recovered: Recovered::new(),
        }
    }

    /// Names the metrics endpoint in the first line.
    pub fn with_metrics(mut self, addr: Option<SocketAddr>) -> Printer {
        self.metrics = addr;
        self
    }

    /// Shows `id` on the first line.
    pub fn with_id(mut self, id: PeerId) -> Printer {
        self.id = Some(id);
        self
    }

    /// Runs `f` when the node has stopped, before the program exits.
    pub fn on_stop(mut self, f: impl FnOnce() + Send + 'static) -> Printer {
        self.on_stop = Some(Box::new(f));
        self
    }

    fn line(&mut self, line: String) {
        self.out.line(line);
    }

    /// The line for a finished burst of history deliveries.
    fn burst(&mut self, burst: Burst) {
        let line = if self.json {
            json_line(burst_json(burst))
        } else {
            burst.text()
        };
        self.line(line + "\n");
    }
}

/// The JSON line for `v`: its fields, then `ts_ms`, the wall-clock time of
/// printing in milliseconds since the Unix epoch (as `sent_ms`). Every
/// line `--json` prints carries it; it comes last, so the fields before it
/// keep their order.
pub fn json_line(v: Value) -> String {
    stamp(v, wall_clock_millis()).to_string()
}

/// `v` with `ts_ms` set to `now_ms` (a non-object is left as it is).
pub fn stamp(mut v: Value, now_ms: u64) -> Value {
    if let Value::Object(o) = &mut v {
        o.insert("ts_ms".into(), now_ms.into());
    }
    v
}

/// The JSON object for a finished burst of history deliveries.
pub fn burst_json(burst: Burst) -> Value {
    let (count, newcomer) = burst.parts();
    json!({"event": "recovered", "count": count, "newcomer": newcomer})
}

fn reason_str(reason: DownReason) -> &'static str {
    match reason {
        DownReason::Dead => "dead",
        DownReason::Left => "left",
    }
}

/// Where a stream's author listens, as shown: its address, or its id when
/// this node knows no address for it (a member it never knew, in history;
/// or not yet: a newcomer's catch-up comes before the roster).
fn origin_text(addr: Option<SocketAddr>, id: Id) -> String {
    addr.map_or_else(|| id.to_string(), |a| a.to_string())
}

/// The JSON object for one event. `addr` and `origin` are where the
/// member listens; `member` is its id (16 hex digits), which stays the
/// same when it restarts on another address.
pub fn event_json(event: &Event) -> Value {
    match event {
        Event::PeerUp { node, addr, name } => json!({
            "event": "peer_up",
            "addr": addr.to_string(),
            "name": &**name,
            "incarnation": node.incarnation,
            "member": node.id.to_string(),
        }),
        Event::PeerRestarted {
            node,
            addr,
            previous_addr,
            name,
        } => json!({
            "event": "peer_restarted",
            "addr": addr.to_string(),
            "previous_addr": previous_addr.to_string(),
            "name": &**name,
            "incarnation": node.incarnation,
            "member": node.id.to_string(),
        }),
        Event::PeerDown {
            node,
            addr,
            name,
            reason,
        } => json!({
            "event": "peer_down",
            "addr": addr.to_string(),
            "name": &**name,
            "incarnation": node.incarnation,
            "reason": reason_str(*reason),
            "member": node.id.to_string(),
        }),
        Event::Chat {
            id,
            addr,
            name,
            text,
            sent_ms,
            via,
        } => json!({
            "event": "chat",
            "origin": origin_text(*addr, id.origin.id),
            "incarnation": id.origin.incarnation,
            "name": &**name,
            "seq": id.seq,
            "text": &**text,
            "history": via.is_history(),
            "sent_ms": sent_ms,
            "member": id.origin.id.to_string(),
        }),
        Event::Gap {
            origin,
            addr,
            first,
            last,
        } => json!({
            "event": "gap",
            "origin": origin_text(*addr, origin.id),
            "incarnation": origin.incarnation,
            "first": first,
            "last": last,
            "member": origin.id.to_string(),
        }),
        Event::Refuted {
            incarnation,
            version,
        } => json!({
            "event": "refuted",
            "incarnation": incarnation,
            "version": version,
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

/// The human line for one event seen at `now_ms` (wall clock); names
/// coloured as `colour` says. A chat shows its author's time, and the
/// history mark when it was not delivered live.
pub fn event_text(event: &Event, colour: Colours, now_ms: u64) -> String {
    let t = author_text(0, now_ms);
    match event {
        Event::PeerUp { node, addr, name } => {
            let name = paint(colour, *node, name);
            format!("{t} * {name} joined ({addr})")
        }
        Event::PeerRestarted {
            node,
            addr,
            previous_addr,
            name,
        } => {
            let name = paint(colour, *node, name);
            if addr == previous_addr {
                format!("{t} * {name} restarted ({addr})")
            } else {
                format!("{t} * {name} restarted, now at {addr} (was {previous_addr})")
            }
        }
        Event::PeerDown {
            node,
            addr,
            name,
            reason: DownReason::Left,
        } => {
            let name = paint(colour, *node, name);
            format!("{t} * {name} left ({addr})")
        }
        Event::PeerDown {
            node,
            addr,
            name,
            reason: DownReason::Dead,
        } => {
            let name = paint(colour, *node, name);
            format!("{t} * {name} is gone: not answering ({addr})")
        }
        Event::Chat {
            id,
            name,
            text,
            sent_ms,
            via,
            ..
        } => {
            let mark = if via.is_history() { HISTORY_MARK } else { "" };
            let t = author_text(*sent_ms, now_ms);
            format!("{mark}{t} {}: {text}", paint(colour, id.origin, name))
        }
        Event::Gap {
            origin,
            addr,
            first,
            last,
        } => format!(
            "{t} * {} message(s) from {} could not be recovered",
            last - first + 1,
            origin_text(*addr, origin.id)
        ),
        Event::Refuted { version, .. } => {
            format!("{t} * others believed this node gone; refuted (version {version})")
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
            let mut v = json!({"event": "ready", "addr": addr.to_string(), "name": name});
            if let Some(id) = self.id {
                v["id"] = json!(id.to_string());
                v["member"] = json!(id.member_id().to_string());
            }
            if let Some(m) = self.metrics {
                v["metrics"] = json!(m.to_string());
            }
            json_line(v)
        } else {
            let mut line = format!(
                "{} * listening on {addr} as {name}; type a message, or /help",
                clock_time()
            );
            if let Some(id) = self.id {
                line += &format!("\n{} * this node's id: {id}", clock_time());
            }
            if let Some(m) = self.metrics {
                line += &format!("\n{} * metrics on http://{m}/metrics", clock_time());
            }
            line
        };
        self.line(line + "\n");
        // Scripts wait for this line: do not hold it back.
        self.out.flush();
    }

    fn event(&mut self, event: Event) {
        if let Event::Chat { via, .. } = event {
            if let Some(burst) = self.recovered.delivered(Instant::now(), via) {
                self.burst(burst);
            }
        }
        let line = if self.json {
            json_line(event_json(&event))
        } else {
            event_text(&event, self.colour, wall_clock_millis())
        };
        self.line(line + "\n");
    }

    fn idle(&mut self) {
        if let Some(burst) = self.recovered.tick(Instant::now()) {
            self.burst(burst);
        }
        self.out.flush();
    }

    fn stopped(&mut self) {
        self.out.flush();
        if let Some(f) = self.on_stop.take() {
            f();
        }
        // The node has left (stdin ended, /quit, or a signal): the program
        // is done, whatever the main thread is blocked on.
        std::process::exit(0);
    }
}

fn state_str(state: MemberState) -> &'static str {
    match state {
        MemberState::Alive => "alive",
        MemberState::Suspect => "suspect",
        MemberState::Dead => "dead",
        MemberState::Left => "left",
    }
}

fn in_roster(m: &Member) -> bool {
    matches!(m.state, MemberState::Alive | MemberState::Suspect)
}

/// A duration as a person reads it: `850ms`, `12s`, `3m`, `2h`.
fn ago_text(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..120_000 => format!("{}s", ms / 1000),
        120_000..7_200_000 => format!("{}m", ms / 60_000),
        _ => format!("{}h", ms / 3_600_000),
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The `/peers` answer: the roster (alive and suspect members), then the
/// members remembered gone.
pub fn peers_text(json: bool, colour: Colours, members: &[Member]) -> String {
    let (roster, gone): (Vec<&Member>, Vec<&Member>) = members.iter().partition(|m| in_roster(m));
    if json {
        let entry = |m: &&Member| {
            json!({
                "addr": m.addr.to_string(),
                "name": m.name,
                "id": short_id(m.node),
                "incarnation": m.node.incarnation,
                "neighbour": m.neighbour,
                "state": state_str(m.state),
                "last_heard_ms": m.last_heard.map(millis),
                "since_ms": millis(m.since),
                "member": m.node.id.to_string(),
            })
        };
        let peers: Vec<Value> = roster.iter().map(entry).collect();
        let gone: Vec<Value> = gone.iter().map(entry).collect();
        return json_line(json!({"event": "peers", "peers": peers, "gone": gone}));
    }
    let mut s = if roster.is_empty() {
        format!("{} * nobody else here yet", clock_time())
    } else {
        format!("{} * {} peer(s):", clock_time(), roster.len())
    };
    for m in roster.iter().chain(&gone) {
        let name = paint(colour, m.node, &m.name);
        let id = short_id(m.node);
        let addr = m.addr;
        let state = state_str(m.state);
        let link = if m.neighbour { "direct" } else { "via others" };
        let heard = match m.last_heard {
            Some(d) => format!(", heard {} ago", ago_text(d)),
            None if in_roster(m) => String::new(),
            None => format!(", {} ago", ago_text(m.since)),
        };
        if in_roster(m) {
            s.push_str(&format!(
                "\n    {name} #{id} ({addr}, {state}, {link}{heard})"
            ));
        } else {
            s.push_str(&format!("\n    {name} #{id} ({addr}, {state}{heard})"));
        }
    }
    s
}

/// The `/help` answer under `--json`: one line, like every other, with
/// the help text in `text`.
pub fn help_json(text: &str) -> String {
    json_line(json!({"event": "help", "text": text}))
}

/// The `/stats` answer: the node's counters and table sizes.
/// The answer to `/key`: the node's id and the keyring's fingerprints
/// (never the keys), primary first.
pub fn keys_text(json: bool, id: PeerId, change: &KeyChange, saved: bool) -> String {
    let ids: Vec<String> = change
        .keyring
        .keys()
        .iter()
        .map(|k| k.id().to_string())
        .collect();
    if json {
        return json_line(json!({
            "event": "keys",
            "id": id.to_string(),
            "open": change.keyring.is_open(),
            "keys": ids,
            "changed": change.changed,
            "saved": saved,
        }));
    }
    let mut s = format!("this node's id: {id}\n");
    if ids.is_empty() {
        s += "open mode: no cluster key (anyone who can reach this node may join)";
    } else {
        s += "cluster keys (fingerprints), primary first:";
        for (n, k) in ids.iter().enumerate() {
            s += &format!("\n  {k}{}", if n == 0 { "  (primary)" } else { "" });
        }
    }
    if !change.changed {
        s += "\n(no change)";
    } else if !saved {
        s += "\n(changed for this run only: no data directory)";
    }
    s
}

pub fn stats_text(json: bool, stats: &Stats, tables: &TableSizes) -> String {
    let Stats {
        malformed,
        oversized,
        bad_version,
        unexpected,
        impostors,
        forged,
        forged_state,
        accusations_limited,
        accusers_limited,
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
        suspicions,
        deaths_detected,
        refutations,
        repaired_sent,
        overlay_mends,
        overlay_dials,
        bridge_dials,
        ring_dials,
        beacon_dials,
        shortcut_dials,
        quiet_rounds,
        mends_pruned,
        prunes_crossed,
        announced_lost,
        beacons_dropped,
    } = stats.clone();
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
    } = *tables;
    let stats = json!({
        "delivered": delivered,
        "duplicates": duplicates,
        "repaired_sent": repaired_sent,
        "gaps": gaps,
        "refutations": refutations,
        "suspicions": suspicions,
        "deaths_detected": deaths_detected,
        "malformed": malformed,
        "oversized": oversized,
        "bad_version": bad_version,
        "unexpected": unexpected,
        "impostors": impostors,
        "forged": forged,
        "forged_state": forged_state,
        "accusations_limited": accusations_limited,
        "accusers_limited": accusers_limited,
        "text_too_long": text_too_long,
        "held_dropped": held_dropped,
        "members_refused": members_refused,
        "streams_evicted": streams_evicted,
        "peer_list_truncated": peer_list_truncated,
        "conns_refused": conns_refused,
        "handshake_timeouts": handshake_timeouts,
        "overlay_mends": overlay_mends,
        "overlay_dials": overlay_dials,
        "bridge_dials": bridge_dials,
        "ring_dials": ring_dials,
        "beacon_dials": beacon_dials,
        "shortcut_dials": shortcut_dials,
        "quiet_rounds": quiet_rounds,
        "mends_pruned": mends_pruned,
        "prunes_crossed": prunes_crossed,
        "announced_lost": announced_lost,
        "beacons_dropped": beacons_dropped,
    });
    let tables = json!({
        "members": members,
        "connections": connections,
        "neighbours": neighbours,
        "accepting": accepting,
        "dialing": dialing,
        "probing": probing,
        "streams": streams,
        "held": held,
        "history": history,
        "recent": recent,
        "outbox": outbox,
    });
    if json {
        return json_line(json!({"event": "stats", "stats": stats, "tables": tables}));
    }
    let pairs = |v: &Value| -> String {
        v.as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    format!(
        "{} * counters: {}\n    tables: {}",
        clock_time(),
        pairs(&stats),
        pairs(&tables)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_ends_with_its_print_time_and_keeps_the_fields_before_it() {
        let v = json!({"event": "chat", "origin": "127.0.0.1:7000", "seq": 3, "sent_ms": 5});
        let line = stamp(v, 1_700_000_000_123).to_string();
        assert_eq!(
            line,
            r#"{"event":"chat","origin":"127.0.0.1:7000","seq":3,"sent_ms":5,"ts_ms":1700000000123}"#
        );
        assert_eq!(stamp(json!("text"), 1), json!("text"));
    }

    #[test]
    fn events_name_the_member_by_id_and_show_where_it_listens() {
        use gossip_chat::{MsgId, NodeKey, Via};
        let node = NodeKey {
            id: Id([0x54, 0x44, 0xf5, 0xdb, 0x3b, 0x6c, 0x76, 0x3c]),
            incarnation: 7,
        };
        let addr: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let up = event_json(&Event::PeerUp {
            node,
            addr,
            name: "bob".into(),
        });
        assert_eq!(
            up,
            json!({"event": "peer_up", "addr": "127.0.0.1:7001", "name": "bob",
                   "incarnation": 7, "member": "5444f5db3b6c763c"})
        );
        let down = event_json(&Event::PeerDown {
            node,
            addr,
            name: "bob".into(),
            reason: DownReason::Dead,
        });
        assert_eq!(
            (&down["addr"], &down["reason"], &down["member"]),
            (
                &json!("127.0.0.1:7001"),
                &json!("dead"),
                &json!("5444f5db3b6c763c")
            )
        );
        let moved = Event::PeerRestarted {
            node,
            addr: "127.0.0.1:7009".parse().unwrap(),
            previous_addr: addr,
            name: "bob".into(),
        };
        assert_eq!(
            event_json(&moved),
            json!({"event": "peer_restarted", "addr": "127.0.0.1:7009",
                   "previous_addr": "127.0.0.1:7001", "name": "bob",
                   "incarnation": 7, "member": "5444f5db3b6c763c"})
        );
        let line = event_text(&moved, Colours::Off, 0);
        assert!(
            line.ends_with("bob restarted, now at 127.0.0.1:7009 (was 127.0.0.1:7001)"),
            "{line}"
        );
        let chat = |addr| Event::Chat {
            id: MsgId {
                origin: node,
                seq: 3,
            },
            addr,
            name: "bob".into(),
            text: "hi".into(),
            sent_ms: 0,
            via: Via::Live,
        };
        let known = event_json(&chat(Some(addr)));
        assert_eq!(known["origin"], "127.0.0.1:7001");
        assert_eq!(known["member"], "5444f5db3b6c763c");
        assert_eq!(known["seq"], 3);
        // An author whose address this node does not know: its id.
        let unknown = event_json(&chat(None));
        assert_eq!(unknown["origin"], "5444f5db3b6c763c");
        assert_eq!(unknown["member"], "5444f5db3b6c763c");
        let gap = event_json(&Event::Gap {
            origin: node,
            addr: None,
            first: 1,
            last: 2,
        });
        assert_eq!(
            (&gap["origin"], &gap["member"]),
            (&json!("5444f5db3b6c763c"), &json!("5444f5db3b6c763c"))
        );
    }
}
