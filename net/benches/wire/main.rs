//! Idle traffic on the wire: N real `chat` processes, left alone once their
//! group has formed, measured from the interface counters of a network
//! namespace of their own, so that its `lo` carries their packets and
//! nothing else. IPv4 and TCP headers are in the figure; a link-layer
//! header is not (loopback has none).
//!
//! `cargo bench -p gossip-chat-net --bench wire` (add `-- --quick` for a
//! shorter settle and window). Needs root for the namespace; without one
//! it measures the host's `lo` and says that other traffic is in it.

mod data_dirs;
mod place;
mod stop;

use place::{Lo, Place, Socket, Tcp};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};
use stop::{now, Stop};

/// The bar: most bytes and packets per second per idle node.
const BAR_BYTES: f64 = 350.0;
const BAR_PACKETS: f64 = 5.0;

/// IPv4 (20) and TCP (20) headers with the timestamp option (12, on by
/// default on Linux): what each data or ACK segment carries besides its
/// payload.
const HEADERS: u64 = 52;

/// What a node's stdout says that the bench follows.
enum Said {
    Up(usize, String),
    Down(usize, String),
    Stats(Value),
}

struct Node {
    child: Child,
    stdin: ChildStdin,
    addr: SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nodes, then where they run: fields drop in order, so every child is
/// killed and reaped before its namespace is deleted.
struct Cluster {
    nodes: Vec<Node>,
    said: crossbeam_channel::Receiver<Said>,
    place: Place,
}

/// Starts `n` nodes at `place`, all joining through the first, and waits
/// until every node counts every other as up.
fn start(place: Place, n: usize, stop: &Stop) -> Result<(Cluster, Duration), String> {
    let (said_tx, said) = crossbeam_channel::unbounded();
    let mut c = Cluster {
        nodes: Vec::new(),
        said,
        place,
    };
    let began = now();
    for i in 0..n {
        stop.check()?;
        let mut cmd = c.place.command(env!("CARGO_BIN_EXE_chat"));
        cmd.args(["--listen", "127.0.0.1:0", "--json", "--name"])
            .arg(format!("n{i}"));
        cmd.arg("--data-dir").arg(data_dirs::of(&format!("n{i}")));
        if let Some(first) = c.nodes.first() {
            cmd.args(["--join", &first.addr.to_string()]);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| format!("start chat: {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        // Push the child before reading, so that it is killed however
        // reading ends.
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.next().and_then(Result::ok).unwrap_or_default();
        let addr = serde_json::from_str::<Value>(&ready)
            .ok()
            .and_then(|v| v["addr"].as_str()?.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("node {i} did not start: {ready:?}"));
        };
        c.nodes.push(Node { child, stdin, addr });
        let said_tx = said_tx.clone();
        std::thread::spawn(move || {
            for line in lines {
                let Ok(line) = line else { return };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let addr = v["addr"].as_str().unwrap_or_default().to_owned();
                let said = match v["event"].as_str() {
                    Some("peer_up") => Said::Up(i, addr),
                    Some("peer_down") => Said::Down(i, addr),
                    Some("stats") => Said::Stats(v),
                    _ => continue,
                };
                if said_tx.send(said).is_err() {
                    return;
                }
            }
        });
    }
    let mut up = vec![BTreeSet::new(); n];
    let deadline = began + Duration::from_secs(30 + n as u64);
    while up.iter().any(|u| u.len() < n - 1) {
        stop.check()?;
        let left = deadline.saturating_duration_since(now());
        if left.is_zero() {
            let counts: Vec<usize> = up.iter().map(BTreeSet::len).collect();
            return Err(format!(
                "the group did not form: peers up per node {counts:?}"
            ));
        }
        match c.said.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(Said::Up(i, a)) => {
                up[i].insert(a);
            }
            Ok(Said::Down(i, a)) => {
                up[i].remove(&a);
            }
            Ok(Said::Stats(_)) | Err(_) => {}
        }
    }
    Ok((c, began.elapsed()))
}

/// One reading of everything the bench counts.
struct Sample {
    at: Instant,
    lo: Lo,
    tcp: Tcp,
}

fn sample(place: &Place) -> Result<Sample, String> {
    Ok(Sample {
        at: now(),
        lo: place.lo()?,
        tcp: place.tcp()?,
    })
}

/// What the connections open through a whole window sent in it.
struct Kept {
    /// Connections (each counted once, though both its ends are here).
    connections: usize,
    /// Segments, both ends together.
    segs: u64,
    /// Of those, segments with payload.
    data_segs: u64,
    /// Payload bytes, both ends together.
    bytes: u64,
}

/// The established sockets in both `first` and `last` (same local and peer
/// address, counters not gone back), and what they sent in between.
fn through(first: &[Socket], last: &[Socket]) -> Kept {
    let key = |s: &Socket| (s.local.clone(), s.peer.clone());
    let before: BTreeMap<_, &Socket> = first
        .iter()
        .filter(|s| s.state == "ESTAB")
        .map(|s| (key(s), s))
        .collect();
    let mut kept = Kept {
        connections: 0,
        segs: 0,
        data_segs: 0,
        bytes: 0,
    };
    let mut ends = 0;
    for s in last.iter().filter(|s| s.state == "ESTAB") {
        let Some(b) = before.get(&key(s)) else {
            continue;
        };
        if s.segs_out < b.segs_out
            || s.data_segs_out < b.data_segs_out
            || s.bytes_sent < b.bytes_sent
        {
            continue;
        }
        ends += 1;
        kept.segs += s.segs_out - b.segs_out;
        kept.data_segs += s.data_segs_out - b.data_segs_out;
        kept.bytes += s.bytes_sent - b.bytes_sent;
    }
    kept.connections = ends / 2;
    kept
}

/// Protocol counters summed over the nodes in the report: how often the
/// overlay was rearranged since the start.
const STATS_SUMMED: [&str; 8] = [
    "conns_refused",
    "handshake_timeouts",
    "overlay_dials",
    "bridge_dials",
    "ring_dials",
    "beacon_dials",
    "shortcut_dials",
    "suspicions",
];

/// The table sizes every node reports in `/stats`, by table name.
fn tables(c: &mut Cluster) -> BTreeMap<String, Vec<u64>> {
    for n in &mut c.nodes {
        let _ = writeln!(n.stdin, "/stats");
        let _ = n.stdin.flush();
    }
    let mut by_table: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let deadline = now() + Duration::from_secs(5);
    let mut answered = 0;
    while answered < c.nodes.len() {
        let left = deadline.saturating_duration_since(now());
        match c.said.recv_timeout(left) {
            Ok(Said::Stats(v)) => {
                answered += 1;
                for (k, v) in v["tables"].as_object().into_iter().flatten() {
                    by_table
                        .entry(k.clone())
                        .or_default()
                        .push(v.as_u64().unwrap_or(0));
                }
                // The counters that tell how much the overlay moved since
                // the start, under `stats.` (summed over the nodes below).
                for k in STATS_SUMMED {
                    by_table
                        .entry(format!("stats.{k}"))
                        .or_default()
                        .push(v["stats"][k].as_u64().unwrap_or(0));
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    by_table
}

/// Min, mean and max of `v`.
fn spread(v: &[u64]) -> String {
    if v.is_empty() {
        return "none answered".into();
    }
    let mean = v.iter().sum::<u64>() as f64 / v.len() as f64;
    format!(
        "{}/{mean:.1}/{}",
        v.iter().min().unwrap(),
        v.iter().max().unwrap()
    )
}

/// The per-node figures of one run, for the summary.
struct Figures {
    n: usize,
    /// Measured on the host's `lo`, other traffic included.
    host: bool,
    bytes: f64,
    packets: f64,
    connections: f64,
    opens: f64,
}

/// Measures `n` idle nodes: forms the group, lets it settle, then counts
/// over `window`.
fn measure(n: usize, settle: Duration, window: Duration, stop: &Stop) -> Result<Figures, String> {
    let (place, host_why) = Place::new();
    match (&place, &host_why) {
        (Place::Netns(ns), _) => println!(
            "== {n} idle nodes, in network namespace {} (its lo carries only their traffic)",
            ns.name()
        ),
        (Place::Host, why) => println!(
            "== {n} idle nodes, on the HOST's lo: the figures include any other loopback traffic \
             on this machine ({})",
            why.as_deref().unwrap_or("no namespace")
        ),
    }
    let (mut c, formed) = start(place, n, stop)?;
    let ports: BTreeSet<u16> = c.nodes.iter().map(|n| n.addr.port()).collect();
    println!(
        "group formed in {:.1} s (every node sees the {} others); settling {} s, then counting for {} s",
        formed.as_secs_f64(),
        n - 1,
        settle.as_secs(),
        window.as_secs()
    );
    stop.wait(settle)?;

    let before = sample(&c.place)?;
    let mut changes = 0usize;
    let mut established = Vec::new();
    let mut time_wait = 0usize;
    let mut other_states: BTreeMap<String, usize> = BTreeMap::new();
    let mut first: Option<Vec<Socket>> = None;
    let mut last: Vec<Socket>;
    let until = before.at + window;
    loop {
        let sockets = c.place.sockets(&ports)?;
        let mut states: BTreeMap<String, usize> = BTreeMap::new();
        for s in &sockets {
            *states.entry(s.state.clone()).or_insert(0) += 1;
        }
        established.push(states.get("ESTAB").copied().unwrap_or(0));
        time_wait = time_wait.max(states.get("TIME-WAIT").copied().unwrap_or(0));
        for (s, k) in states {
            if s != "ESTAB" && s != "TIME-WAIT" {
                let e = other_states.entry(s).or_insert(0);
                *e = (*e).max(k);
            }
        }
        first.get_or_insert_with(|| sockets.clone());
        last = sockets;
        while let Ok(said) = c.said.try_recv() {
            if matches!(said, Said::Up(..) | Said::Down(..)) {
                changes += 1;
            }
        }
        let left = until.saturating_duration_since(now());
        if left.is_zero() {
            break;
        }
        stop.wait(left.min(Duration::from_secs(1)))?;
    }
    let after = sample(&c.place)?;
    let secs = after.at.duration_since(before.at).as_secs_f64();
    while let Ok(said) = c.said.try_recv() {
        if matches!(said, Said::Up(..) | Said::Down(..)) {
            changes += 1;
        }
    }
    let kept = through(first.as_deref().unwrap_or(&[]), &last);
    let tables = tables(&mut c);

    let per_node = |d: u64| d as f64 / secs / n as f64;
    let bytes = after.lo.tx_bytes - before.lo.tx_bytes;
    let packets = after.lo.tx_packets - before.lo.tx_packets;
    let (t0, t1) = (before.tcp, after.tcp);
    // Both ends of a connection between two nodes are sockets here.
    let connections =
        established.iter().sum::<usize>() as f64 / established.len().max(1) as f64 / 2.0;
    let within = per_node(bytes) <= BAR_BYTES && per_node(packets) <= BAR_PACKETS;
    println!(
        "on the wire (lo tx_bytes and tx_packets over {secs:.1} s; loopback counts each packet \
         once in tx; IPv4+TCP headers in, no link-layer header): {:.0} B/s and {:.2} packets/s \
         per node ({:.0} B/s, {:.1} packets/s in all; {:.0} B per packet); bar {BAR_BYTES} B/s \
         and {BAR_PACKETS} packets/s per node: {}",
        per_node(bytes),
        per_node(packets),
        bytes as f64 / secs,
        packets as f64 / secs,
        bytes as f64 / packets.max(1) as f64,
        if within { "within" } else { "OVER" }
    );
    println!(
        "of which headers, at {HEADERS} B per packet: {:.0} B/s per node; payload about {:.0} B/s per node",
        per_node(packets * HEADERS),
        per_node(bytes.saturating_sub(packets * HEADERS)),
    );
    println!(
        "TCP: {connections:.1} connections open on average ({:.2} ends per node), {time_wait} \
         sockets in TIME-WAIT at most{}; {:.3} active opens/s per node ({} in the window), \
         {} failed attempts, {} resets, {} retransmitted segments; {:.2} segments/s per node sent",
        2.0 * connections / n as f64,
        if other_states.is_empty() {
            String::new()
        } else {
            format!(", also at most {other_states:?}")
        },
        per_node(t1.active_opens - t0.active_opens),
        t1.active_opens - t0.active_opens,
        t1.attempt_fails - t0.attempt_fails,
        t1.estab_resets - t0.estab_resets,
        t1.retrans_segs - t0.retrans_segs,
        per_node(t1.out_segs - t0.out_segs),
    );
    println!(
        "split: the {} connections open through the whole window sent {:.2} packets/s ({:.2} with \
         payload, the rest bare ACKs) and {:.0} B/s of payload per node (about {:.0} B/s with headers); the other {:.2} packets/s and about \
         {:.0} B/s per node are on connections opened or closed within it",
        kept.connections,
        per_node(kept.segs),
        per_node(kept.data_segs),
        per_node(kept.bytes),
        per_node(kept.bytes + kept.segs * HEADERS),
        per_node(packets.saturating_sub(kept.segs)),
        per_node(bytes.saturating_sub(kept.bytes + kept.segs * HEADERS)),
    );
    let table = |name: &str| spread(tables.get(name).map(Vec::as_slice).unwrap_or(&[]));
    println!(
        "each node's own tables (min/mean/max): connections {}, neighbours {}, probing {}, members {}",
        table("connections"),
        table("neighbours"),
        table("probing"),
        table("members"),
    );
    let sum = |name: &str| {
        tables
            .get(&format!("stats.{name}"))
            .map_or(0, |v| v.iter().sum::<u64>())
    };
    println!(
        "since the start, all nodes together: {}",
        STATS_SUMMED
            .iter()
            .map(|k| format!("{k} {}", sum(k)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "membership changes seen during the window: {}",
        if changes == 0 {
            "none".to_owned()
        } else {
            format!("{changes} peer_up/peer_down events (the group was not idle)")
        }
    );
    Ok(Figures {
        n,
        host: matches!(c.place, Place::Host),
        bytes: per_node(bytes),
        packets: per_node(packets),
        connections: 2.0 * connections / n as f64,
        opens: per_node(t1.active_opens - t0.active_opens),
    })
}

fn main() {
    let _cleanup = data_dirs::Cleanup;
    let quick = std::env::args().any(|a| a == "--quick");
    // `cargo bench` passes `--bench`; any other argument is ignored.
    let (settle, window) = if quick {
        (Duration::from_secs(5), Duration::from_secs(10))
    } else {
        (Duration::from_secs(10), Duration::from_secs(30))
    };
    let stop = Stop::install();
    for name in place::remove_stale() {
        println!("removed {name}, left by a run that was killed");
    }
    let mut all = Vec::new();
    for n in [10, 50] {
        match measure(n, settle, window, &stop) {
            Ok(f) => all.push(f),
            Err(e) => {
                println!("{n} nodes: {e}");
                std::process::exit(1);
            }
        }
    }
    println!("== idle traffic per node on the wire (Serf beside it: cargo bench -p gossip-chat-net --bench serf)");
    for f in all {
        println!(
            "{:>3} nodes: {:>4.0} B/s, {:.2} packets/s, {:.2} connection ends, {:.3} active opens/s{}",
            f.n,
            f.bytes,
            f.packets,
            f.connections,
            f.opens,
            if f.host {
                " (host lo: other traffic included)"
            } else {
                ""
            }
        );
    }
}
