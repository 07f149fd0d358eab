//! gossip-chat beside HashiCorp Serf, in one run on one machine: N real
//! `chat` processes and N `serf agent` processes (Debian's `serf` package,
//! Serf 0.9.4 on memberlist; default LAN settings), each group in a network
//! namespace of its own, measured the same way:
//!
//! - idle traffic: the namespace's `lo` counters over a window once the
//!   group has formed and settled (IPv4 and TCP/UDP headers included);
//! - memory: each process's resident set at the end of that window;
//! - message latency: from the send to each other node's report of it
//!   (`chat` on stdin and its `chat` event; `serf event -coalesce=false`
//!   and the agents' `Received event: user-event` log line, timed from the
//!   sending agent's own receipt so that the CLI's start is not counted);
//! - a hung process: SIGSTOP to one node, then the time until every other
//!   node reports it gone (`peer_down`; `EventMemberFailed`), and after
//!   SIGCONT the time until every other node reports it back (`peer_up`;
//!   `EventMemberJoin`).
//!
//! `cargo bench -p gossip-chat-net --bench serf` (`-- --quick` for a short
//! idle window, `-- --only chat` or `-- --only serf` for one side alone). Needs root for the namespaces and `serf` on the PATH
//! (`tools/setup-serf` installs it); without it, it says so and exits 0.

#[path = "../wire/data_dirs.rs"]
mod data_dirs;
#[allow(dead_code)]
#[path = "../wire/place.rs"]
mod place;
#[path = "../wire/stop.rs"]
mod stop;

use place::Place;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use stop::{now, Stop};

/// Which system a group runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Serf,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Chat => "gossip-chat",
            Kind::Serf => "Serf",
        }
    }

    /// Its name after `--only`.
    fn arg(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::Serf => "serf",
        }
    }
}

/// What a node printed, as the bench reads it.
enum Heard {
    /// Node `.0` sees member `.1` (by name) up.
    Up(usize, String),
    /// Node `.0` reports member `.1` gone.
    Down(usize, String),
    /// Node `.0` received the message tagged `.1`.
    Got(usize, String),
}

/// Reads one `serf agent` log line.
fn serf_line(i: usize, line: &str) -> Option<Heard> {
    let after = |mark: &str| {
        let rest = &line[line.find(mark)? + mark.len()..];
        Some(rest.split_whitespace().next()?.to_owned())
    };
    if let Some(name) = after("serf: EventMemberJoin: ") {
        Some(Heard::Up(i, name))
    } else if let Some(name) = after("serf: EventMemberFailed: ") {
        Some(Heard::Down(i, name))
    } else {
        after("agent: Received event: user-event: ").map(|tag| Heard::Got(i, tag))
    }
}

/// Reads one `chat --json` line.
fn chat_line(i: usize, line: &str) -> Option<Heard> {
    let v: Value = serde_json::from_str(line).ok()?;
    let field = |k: &str| v[k].as_str().map(str::to_owned);
    match v["event"].as_str()? {
        "peer_up" => Some(Heard::Up(i, field("name")?)),
        "peer_down" => Some(Heard::Down(i, field("name")?)),
        "chat" if v["history"].as_bool() != Some(true) => Some(Heard::Got(i, field("text")?)),
        _ => None,
    }
}

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One group of nodes, then where it runs: the nodes drop first, so every
/// child is killed and reaped before its namespace is deleted.
struct Group {
    kind: Kind,
    procs: Vec<Proc>,
    heard: crossbeam_channel::Receiver<(Instant, Heard)>,
    place: Place,
}

const SERF_BIND: u16 = 7946;
const SERF_RPC: u16 = 17000;

fn name(i: usize) -> String {
    format!("n{i}")
}

impl Group {
    /// Starts `n` nodes of `kind`, each joining through the first, and
    /// waits until every node sees every other up.
    fn start(kind: Kind, n: usize, stop: &Stop) -> Result<(Group, Duration), String> {
        let (place, why) = Place::new();
        if let Some(why) = why {
            return Err(format!("no network namespace ({why}): run as root"));
        }
        let (tx, heard) = crossbeam_channel::unbounded();
        let mut g = Group {
            kind,
            procs: Vec::new(),
            heard,
            place,
        };
        let began = now();
        let mut first_addr = String::new();
        for i in 0..n {
            stop.check()?;
            let mut cmd = match kind {
                Kind::Chat => {
                    let mut cmd = g.place.command(env!("CARGO_BIN_EXE_chat"));
                    cmd.args(["--listen", "127.0.0.1:0", "--json", "--name", &name(i)]);
                    cmd.arg("--data-dir").arg(data_dirs::of(&name(i)));
                    if i > 0 {
                        cmd.args(["--join", &first_addr]);
                    }
                    cmd
                }
                Kind::Serf => {
                    let mut cmd = g.place.command("serf");
                    cmd.arg("agent")
                        .arg(format!("-node={}", name(i)))
                        .arg(format!("-bind=127.0.0.1:{}", SERF_BIND + i as u16))
                        .arg(format!("-rpc-addr=127.0.0.1:{}", SERF_RPC + i as u16))
                        .arg("-log-level=info");
                    if i > 0 {
                        cmd.arg(format!("-join=127.0.0.1:{SERF_BIND}"));
                    }
                    cmd
                }
            };
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("start {}: {e}", kind.label()))?;
            let stdin = child.stdin.take();
            let stdout = child.stdout.take().expect("piped stdout");
            g.procs.push(Proc { child, stdin });
            let mut lines = BufReader::new(stdout).lines();
            // The first line that says the node is up.
            loop {
                let Some(Ok(line)) = lines.next() else {
                    return Err(format!("{} node {i} exited at start", kind.label()));
                };
                match kind {
                    Kind::Chat => {
                        let v: Value = serde_json::from_str(&line).unwrap_or_default();
                        if v["event"] == "ready" {
                            if i == 0 {
                                first_addr = v["addr"].as_str().unwrap_or_default().to_owned();
                            }
                            break;
                        }
                    }
                    Kind::Serf => {
                        if line.contains("serf: EventMemberJoin: ") {
                            break;
                        }
                    }
                }
            }
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    let heard = match kind {
                        Kind::Chat => chat_line(i, &line),
                        Kind::Serf => serf_line(i, &line),
                    };
                    if let Some(h) = heard {
                        if tx.send((now(), h)).is_err() {
                            return;
                        }
                    }
                }
            });
        }
        let mut up = vec![BTreeSet::new(); n];
        let deadline = began + Duration::from_secs(30 + n as u64);
        while up.iter().enumerate().any(|(i, u)| {
            let mut others = u.clone();
            others.remove(&name(i));
            others.len() < n - 1
        }) {
            stop.check()?;
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return Err(format!("{}: the group did not form", kind.label()));
            }
            match g.heard.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok((_, Heard::Up(i, m))) => {
                    up[i].insert(m);
                }
                Ok((_, Heard::Down(i, m))) => {
                    up[i].remove(&m);
                }
                Ok(_) | Err(_) => {}
            }
        }
        Ok((g, began.elapsed()))
    }

    fn pid(&self, i: usize) -> u32 {
        self.procs[i].child.id()
    }

    /// Sends a message tagged `tag` from node `i`; the instant it counts
    /// from, if known at once.
    fn send(&mut self, i: usize, tag: &str) -> Result<Option<Instant>, String> {
        match self.kind {
            Kind::Chat => {
                let stdin = self.procs[i].stdin.as_mut().expect("piped stdin");
                let at = now();
                writeln!(stdin, "{tag}").map_err(|e| format!("write to chat: {e}"))?;
                stdin.flush().map_err(|e| format!("write to chat: {e}"))?;
                Ok(Some(at))
            }
            Kind::Serf => {
                let out = self
                    .place
                    .command("serf")
                    .arg("event")
                    .arg("-coalesce=false")
                    .arg(format!("-rpc-addr=127.0.0.1:{}", SERF_RPC + i as u16))
                    .arg(tag)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("serf event: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "serf event: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                // Counted from the sending agent's own receipt.
                Ok(None)
            }
        }
    }

    /// Resident set size of node `i`, in KiB.
    fn rss_kib(&self, i: usize) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(i))).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map_err(|e| format!("kill: {e}"))?
        .success();
    if ok {
        Ok(())
    } else {
        Err(format!("kill {sig} {pid} failed"))
    }
}

/// Everything measured on one group.
#[derive(Default)]
struct Figures {
    formed: f64,
    bytes: f64,
    packets: f64,
    rss_kib: f64,
    /// Each delivery's latency, ms.
    deliveries: Vec<f64>,
    /// Each message's latency to the last node, ms.
    to_last: Vec<f64>,
    missed: usize,
    /// The slowest delivery: ms, which message to which node.
    slowest: Option<(f64, String)>,
    /// SIGSTOP to the first and to the last report of the hung node, s.
    hung_first: Option<f64>,
    hung_last: Option<f64>,
    /// SIGCONT to the last node that sees it back, s.
    back: Option<f64>,
}

/// Hands what is heard to `see` until it returns true or `limit` passes.
fn follow(
    g: &Group,
    limit: Duration,
    stop: &Stop,
    mut see: impl FnMut(Instant, Heard) -> bool,
) -> Result<(), String> {
    let until = now() + limit;
    loop {
        stop.check()?;
        let left = until.saturating_duration_since(now());
        if left.is_zero() {
            return Ok(());
        }
        if let Ok((at, h)) = g.heard.recv_timeout(left.min(Duration::from_millis(50))) {
            if see(at, h) {
                return Ok(());
            }
        }
    }
}

/// When each of the nodes but `victim` first reported `victim` as `pick`
/// picks it (up or down), until all did or `limit` passes.
fn reports(
    g: &Group,
    victim: usize,
    limit: Duration,
    stop: &Stop,
    pick: impl Fn(Heard) -> Option<(usize, String)>,
) -> Result<BTreeMap<usize, Instant>, String> {
    let (n, vname) = (g.procs.len(), name(victim));
    let mut first = BTreeMap::new();
    follow(g, limit, stop, |at, h| {
        if let Some((i, m)) = pick(h) {
            if m == vname && i != victim {
                first.entry(i).or_insert(at);
            }
        }
        first.len() >= n - 1
    })?;
    Ok(first)
}

/// When each node received each message, by tag.
type Got = BTreeMap<String, BTreeMap<usize, Instant>>;

fn note_got(got: &mut Got, at: Instant, h: Heard) {
    if let Heard::Got(i, tag) = h {
        got.entry(tag).or_default().entry(i).or_insert(at);
    }
}

fn measure(kind: Kind, n: usize, window: Duration, stop: &Stop) -> Result<Figures, String> {
    let mut f = Figures::default();
    let (mut g, formed) = Group::start(kind, n, stop)?;
    f.formed = formed.as_secs_f64();
    println!(
        "-- {} x{n}: formed in {:.1} s; settling 10 s, then counting {} s idle",
        kind.label(),
        f.formed,
        window.as_secs()
    );
    stop.wait(Duration::from_secs(10))?;
    let lo0 = g.place.lo()?;
    let t0 = now();
    stop.wait(window)?;
    let lo1 = g.place.lo()?;
    let secs = t0.elapsed().as_secs_f64();
    f.bytes = (lo1.tx_bytes - lo0.tx_bytes) as f64 / secs / n as f64;
    f.packets = (lo1.tx_packets - lo0.tx_packets) as f64 / secs / n as f64;
    let rss: Vec<u64> = (0..n).filter_map(|i| g.rss_kib(i)).collect();
    f.rss_kib = rss.iter().sum::<u64>() as f64 / rss.len().max(1) as f64;
    while g.heard.try_recv().is_ok() {}

    // Message latency: 10 messages from different nodes, 500 ms apart.
    let mut sent: BTreeMap<String, (usize, Option<Instant>)> = BTreeMap::new();
    let mut got = Got::new();
    for k in 0..10 {
        let from = (k * 7) % n;
        let tag = format!("m{k}-{}", std::process::id());
        let at = g.send(from, &tag)?;
        sent.insert(tag, (from, at));
        follow(&g, Duration::from_millis(500), stop, |at, h| {
            note_got(&mut got, at, h);
            false
        })?;
    }
    let all_got = |got: &Got| {
        sent.iter().all(|(tag, (from, _))| {
            let others = got
                .get(tag)
                .map_or(0, |m| m.keys().filter(|i| *i != from).count());
            others >= n - 1
        })
    };
    follow(&g, Duration::from_secs(10), stop, |at, h| {
        note_got(&mut got, at, h);
        all_got(&got)
    })?;
    for (tag, (from, at)) in &sent {
        let at_node = got.get(tag).cloned().unwrap_or_default();
        let Some(start) = at.or_else(|| at_node.get(from).copied()) else {
            f.missed += n - 1;
            continue;
        };
        let mut last = 0.0f64;
        for i in (0..n).filter(|i| i != from) {
            match at_node.get(&i) {
                Some(t) => {
                    let ms = t.saturating_duration_since(start).as_secs_f64() * 1e3;
                    if f.slowest.as_ref().is_none_or(|s| s.0 < ms) {
                        f.slowest =
                            Some((ms, format!("{tag} from {} to {}", name(*from), name(i))));
                    }
                    f.deliveries.push(ms);
                    last = last.max(ms);
                }
                None => f.missed += 1,
            }
        }
        f.to_last.push(last);
    }

    // A hung process: SIGSTOP the last node started, then SIGCONT.
    let victim = n - 1;
    while g.heard.try_recv().is_ok() {}
    signal(g.pid(victim), "-STOP")?;
    let stopped = now();
    let down = reports(&g, victim, Duration::from_secs(90), stop, |h| match h {
        Heard::Down(i, m) => Some((i, m)),
        _ => None,
    })?;
    let since = |t: &Instant| t.saturating_duration_since(stopped).as_secs_f64();
    f.hung_first = down.values().map(since).reduce(f64::min);
    if down.len() >= n - 1 {
        f.hung_last = down.values().map(since).reduce(f64::max);
    }
    signal(g.pid(victim), "-CONT")?;
    let resumed = now();
    let up = reports(&g, victim, Duration::from_secs(60), stop, |h| match h {
        Heard::Up(i, m) => Some((i, m)),
        _ => None,
    })?;
    if up.len() >= n - 1 {
        f.back = up
            .values()
            .map(|t| t.saturating_duration_since(resumed).as_secs_f64())
            .reduce(f64::max);
    }
    Ok(f)
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    s[((s.len() - 1) as f64 * p).round() as usize]
}

fn secs(v: Option<f64>) -> String {
    v.map_or("not seen".to_owned(), |s| {
        if s < 0.1 {
            format!("{:.1} ms", s * 1e3)
        } else {
            format!("{s:.2} s")
        }
    })
}

/// `a / b` as a ratio, with three figures when it is small.
fn times(a: f64, b: f64) -> String {
    let r = a / b;
    if r < 0.1 {
        format!("{r:.4}x")
    } else {
        format!("{r:.2}x")
    }
}

fn report(kind: Kind, n: usize, f: &Figures) {
    println!(
        "{:<11} x{n:<3} idle {:>5.0} B/s {:>5.2} pkt/s per node, RSS {:>6.0} KiB; \
         message p50 {:>6.1} ms max {:>6.1} ms (to last node p50 {:>6.1} max {:>6.1}){}; \
         SIGSTOP gone at first {} at all {}; SIGCONT back at all {}",
        kind.label(),
        f.bytes,
        f.packets,
        f.rss_kib,
        pct(&f.deliveries, 0.5),
        pct(&f.deliveries, 1.0),
        pct(&f.to_last, 0.5),
        pct(&f.to_last, 1.0),
        if f.missed > 0 {
            format!(", {} deliveries missing", f.missed)
        } else {
            String::new()
        },
        secs(f.hung_first),
        secs(f.hung_last),
        secs(f.back),
    );
    if let Some((ms, what)) = &f.slowest {
        println!(
            "{:<11} x{n:<3} slowest delivery: {what}, {ms:.1} ms",
            kind.label()
        );
    }
}

fn main() {
    let _cleanup = data_dirs::Cleanup;
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--only chat` or `--only serf`: one side alone (no ratios).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let window = Duration::from_secs(if quick { 10 } else { 30 });
    if Command::new("serf").arg("version").output().is_err() {
        println!("serf bench: skipped: `serf` is not on the PATH (tools/setup-serf installs it)");
        return;
    }
    let stop = Stop::install();
    for name in place::remove_stale() {
        println!("removed {name}, left by a run that was killed");
    }
    let mut rows = Vec::new();
    for n in [10, 50] {
        for kind in [Kind::Serf, Kind::Chat] {
            if only.is_some_and(|o| o != kind.arg()) {
                continue;
            }
            match measure(kind, n, window, &stop) {
                Ok(f) => {
                    report(kind, n, &f);
                    rows.push((kind, n, f));
                }
                Err(e) => {
                    println!("{} x{n}: {e}", kind.label());
                    std::process::exit(1);
                }
            }
        }
    }
    println!("== gossip-chat / Serf, same run (below 1 is better for gossip-chat)");
    for pair in rows.chunks(2) {
        let [(Kind::Serf, n, serf), (Kind::Chat, _, chat)] = pair else {
            continue;
        };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => times(a, b),
            _ => "-".to_owned(),
        };
        println!(
            "{n:>3} nodes: idle bytes {}, packets {}, RSS {}; message p50 {}, max {}; \
             hung node gone at all {}; back at all {}",
            times(chat.bytes, serf.bytes),
            times(chat.packets, serf.packets),
            times(chat.rss_kib, serf.rss_kib),
            times(pct(&chat.deliveries, 0.5), pct(&serf.deliveries, 0.5)),
            times(pct(&chat.deliveries, 1.0), pct(&serf.deliveries, 1.0)),
            ratio(chat.hung_last, serf.hung_last),
            ratio(chat.back, serf.back),
        );
    }
}
