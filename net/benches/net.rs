//! Real `chat` processes on loopback: throughput, latency, memory and
//! threads. A plain `main` (no criterion): the figures come from whole
//! processes and their stdout, not from a function timed in a loop.
//!
//! `cargo bench --bench net` (add `-- --quick` for a short run). Idle
//! traffic on the wire, headers included, is the `wire` bench.

#[path = "wire/data_dirs.rs"]
mod data_dirs;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

fn now() -> Instant {
    Instant::now()
}

/// A delivery seen on some node's stdout.
struct Seen {
    node: usize,
    text: String,
    at: Instant,
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

struct Cluster {
    nodes: Vec<Node>,
    seen: crossbeam_channel::Receiver<Seen>,
    peers_up: crossbeam_channel::Receiver<usize>,
}

fn start_cluster(n: usize, extra: &[&str]) -> Cluster {
    let (seen_tx, seen) = crossbeam_channel::unbounded();
    let (up_tx, peers_up) = crossbeam_channel::unbounded();
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..n {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat"));
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--name",
            &format!("n{i}"),
        ]);
        cmd.args(extra);
        cmd.arg("--data-dir").arg(data_dirs::of(&format!("n{i}")));
        if let Some(first) = nodes.first() {
            cmd.args(["--join", &first.addr.to_string()]);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start chat");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let addr = ready["addr"].as_str().unwrap().parse().unwrap();
        let (seen_tx, up_tx) = (seen_tx.clone(), up_tx.clone());
        std::thread::spawn(move || {
            for line in lines {
                let Ok(line) = line else { return };
                let at = now();
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                match v["event"].as_str() {
                    Some("chat") => {
                        let text = v["text"].as_str().unwrap_or_default().to_owned();
                        let _ = seen_tx.send(Seen { node: i, text, at });
                    }
                    Some("peer_up") => {
                        let _ = up_tx.send(i);
                    }
                    _ => {}
                }
            }
        });
        nodes.push(Node { child, stdin, addr });
    }
    let c = Cluster {
        nodes,
        seen,
        peers_up,
    };
    // Every node sees every other.
    let mut ups = vec![0; n];
    let deadline = crossbeam_channel::after(Duration::from_secs(20));
    while ups.iter().any(|u| *u < n - 1) {
        crossbeam_channel::select! {
            recv(c.peers_up) -> i => ups[i.unwrap()] += 1,
            recv(deadline) -> _ => panic!("cluster did not form: {ups:?}"),
        }
    }
    // Let the mesh settle (duplicate links resolved, neighbours dialled).
    let _ = crossbeam_channel::after(Duration::from_secs(2)).recv();
    c
}

/// Threads and resident memory (KiB) of a process, from /proc.
fn threads_rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("Threads:")?, field("VmRSS:")?))
}

fn report_resources(label: &str, c: &Cluster) {
    let mut threads = Vec::new();
    let mut rss = Vec::new();
    for n in &c.nodes {
        if let Some((t, r)) = threads_rss(n.child.id()) {
            threads.push(t);
            rss.push(r);
        }
    }
    if threads.is_empty() {
        println!("{label}: threads/RSS not available on this platform");
        return;
    }
    println!(
        "{label}: threads per node {:?} (max {}), RSS per node KiB {:?} (max {:.1} MiB)",
        threads,
        threads.iter().max().unwrap(),
        rss,
        *rss.iter().max().unwrap() as f64 / 1024.0
    );
}

/// What one load run measured.
struct Load {
    /// Per message delivered everywhere: time from the send to the last
    /// node's delivery.
    latencies: Vec<Duration>,
    /// Deliveries missing when the run gave up waiting.
    missing: usize,
    /// Deliveries seen twice.
    duplicates: usize,
    /// From the first send to the last delivery.
    elapsed: Duration,
}

/// Sends `count` messages from node 0 (paced at `rate` per second, or as
/// fast as possible when `None`) and waits until every node delivered each
/// one, or `PATIENCE` passed without any progress.
fn run_load(c: &mut Cluster, tag: &str, count: usize, rate: Option<u64>) -> Load {
    let patience = PATIENCE;
    let n = c.nodes.len();
    let start = now();
    let mut sent_at = vec![start; count];
    let mut stdin = c.nodes[0].stdin.try_clone_for_bench();
    let tag2 = tag.to_owned();
    let (sent_tx, sent_rx) = crossbeam_channel::unbounded::<(usize, Instant)>();
    let writer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for i in 0..count {
            if let Some(rate) = rate {
                let due = start + Duration::from_micros(i as u64 * 1_000_000 / rate);
                let _ = crossbeam_channel::at(due).recv();
            }
            buf.clear();
            writeln!(buf, "{tag2}{i}").unwrap();
            let _ = sent_tx.send((i, now()));
            stdin.write_all(&buf).unwrap();
        }
        stdin.flush().unwrap();
        stdin
    });
    let mut got: BTreeMap<usize, Vec<Option<Instant>>> = BTreeMap::new();
    let mut delivered = 0usize;
    let mut duplicates = 0usize;
    let mut last = start;
    while delivered < count * n {
        match c.seen.recv_timeout(patience) {
            Ok(s) => {
                let Some(i) = s
                    .text
                    .strip_prefix(tag)
                    .and_then(|x| x.parse::<usize>().ok())
                else {
                    continue;
                };
                let slot = &mut got.entry(i).or_insert_with(|| vec![None; n])[s.node];
                if slot.is_some() {
                    duplicates += 1;
                } else {
                    *slot = Some(s.at);
                    delivered += 1;
                    last = s.at;
                }
            }
            Err(_) => break,
        }
    }
    let stdin = writer.join().unwrap();
    c.nodes[0].stdin = stdin;
    while let Ok((i, at)) = sent_rx.try_recv() {
        sent_at[i] = at;
    }
    let latencies = got
        .iter()
        .filter(|(_, all)| all.iter().all(Option::is_some))
        .map(|(i, all)| {
            let latest = all.iter().flatten().max().unwrap();
            latest.saturating_duration_since(sent_at[*i])
        })
        .collect();
    Load {
        latencies,
        missing: count * n - delivered,
        duplicates,
        elapsed: last.duration_since(start),
    }
}

/// How long a load run waits for any further delivery before counting
/// the rest as missing.
const PATIENCE: Duration = Duration::from_secs(15);

fn integrity(l: &Load) -> String {
    if l.missing == 0 && l.duplicates == 0 {
        "none lost or duplicated".into()
    } else {
        format!(
            "{} deliveries MISSING (after {:?} without progress), {} duplicated",
            l.missing, PATIENCE, l.duplicates
        )
    }
}

trait CloneForBench {
    fn try_clone_for_bench(&mut self) -> ChildStdin;
}

impl CloneForBench for ChildStdin {
    /// Hands the pipe to the writer thread, leaving a placeholder behind.
    fn try_clone_for_bench(&mut self) -> ChildStdin {
        let placeholder = Command::new("true")
            .stdin(Stdio::piped())
            .spawn()
            .ok()
            .and_then(|mut c| {
                let s = c.stdin.take();
                let _ = c.wait();
                s
            })
            .expect("placeholder pipe");
        std::mem::replace(self, placeholder)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let _cleanup = data_dirs::Cleanup;
    let quick = std::env::args().any(|a| a == "--quick");
    // `cargo bench` passes `--bench`; any other argument is ignored.
    let (lat_count, tput_count) = if quick { (1000, 5000) } else { (5000, 20000) };

    for (label, extra) in [
        ("default config", &[][..]),
        ("--no-prune", &["--no-prune"][..]),
    ] {
        println!("== 5 nodes, {label}");
        let mut c = start_cluster(5, extra);
        report_resources("idle, 4 connections each", &c);

        let mut l = run_load(&mut c, "L", lat_count, Some(1000));
        l.latencies.sort();
        if l.latencies.is_empty() {
            println!(
                "latency at 1000 msg/s: no message reached every node; {}",
                integrity(&l)
            );
        } else {
            println!(
                "latency at 1000 msg/s, {lat_count} messages from one node, until all 5 nodes delivered: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {}",
                percentile(&l.latencies, 0.50).as_secs_f64() * 1e3,
                percentile(&l.latencies, 0.99).as_secs_f64() * 1e3,
                l.latencies.last().unwrap().as_secs_f64() * 1e3,
                integrity(&l)
            );
        }
        report_resources("after the latency run", &c);

        let l = run_load(&mut c, "T", tput_count, None);
        println!(
            "throughput, one node sending {tput_count} messages as fast as it can: all 5 nodes done in {:.2} s = {:.0} msg/s; {}",
            l.elapsed.as_secs_f64(),
            tput_count as f64 / l.elapsed.as_secs_f64(),
            integrity(&l)
        );
        report_resources("after the throughput run", &c);
    }

    let c = start_cluster(9, &[]);
    println!("== 9 nodes");
    report_resources("idle, 8 connections each (full mesh)", &c);
}
