//! Shared by the real-process tests: `chat --json` processes on 127.0.0.1
//! driven through stdin and read through stdout, and raw peers that speak
//! the wire format over plain sockets. Every wait has a deadline, and every
//! process is killed when its guard drops, also when a test fails.
//!
//! `CHAT_TEST_LOG=DIR` keeps each node's log (its stderr) in a file of its
//! own under DIR; set `RUST_LOG` too.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

pub mod terminal;

use crossbeam_channel::Receiver;
use ed25519_dalek::SigningKey;
use gossip_chat::wire::FrameReader;
use gossip_chat::{
    Hello, Id, MemberState, MemberUpdate, Message, MsgId, NodeKey, Proof, PROTOCOL_VERSION,
};
use gossip_chat_net::secure::{LocalKeys, SecureStream};
use gossip_chat_net::{Keyring, NodeIdentity};
use serde_json::Value;
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

/// Longest wait for a process to start or a group to form.
pub const STARTUP: Duration = Duration::from_secs(10);
/// Longest wait for a message or an event that should come at once, also
/// under load (floods, hostile peers).
pub const DELIVERY: Duration = Duration::from_secs(10);
/// Longest wait for what a node does at once when little else is going on:
/// one short chat delivered on a quiet group, the answer to a command, the
/// exit of a process told to leave.
pub const PROMPT: Duration = Duration::from_secs(5);

/// Longest chat text the tests keep as received; longer ones are kept as
/// `"(N bytes)"`.
pub const KEPT_TEXT: usize = 2048;

/// The monotonic clock, for deadlines and for measuring how long things take.
pub fn clock() -> std::time::Instant {
    std::time::Instant::now()
}

/// Blocks for `d` without sleeping the thread through the standard sleep.
pub fn pause(d: Duration) {
    let _ = crossbeam_channel::after(d).recv();
}

/// One running `chat --json` process; killed when dropped.
pub struct Chat {
    pub name: String,
    pub addr: SocketAddr,
    /// Its member id (16 hex digits), as `ready` says: what every event
    /// about it names as `member`. Chats are told apart by it: their
    /// `origin` is the author's address only where the receiver knows it
    /// (not yet, for a newcomer's catch-up).
    pub member: String,
    /// Its data directory (identity and keys).
    pub data_dir: std::path::PathBuf,
    /// Whether the directory is removed when the process is: it was made
    /// for this process alone.
    owns_dir: bool,
    /// Where its stderr goes.
    log_path: std::path::PathBuf,
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    events: Receiver<Value>,
    seen: RefCell<Vec<Value>>,
}

impl Chat {
    /// Starts a node on a free port, joining through `join`, and waits for
    /// its `ready` line.
    pub fn start(name: &str, join: &[&Chat]) -> Chat {
        Chat::start_with(name, join, &[])
    }

    /// Like [`Chat::start`], with extra command-line options.
    pub fn start_with(name: &str, join: &[&Chat], extra: &[&str]) -> Chat {
        let mut chat = Chat::start_in(&scratch_dir(name), name, join, extra);
        chat.owns_dir = true;
        chat
    }

    /// Like [`Chat::start_with`], keeping the identity and keys in
    /// `data_dir` (made if missing).
    pub fn start_in(
        data_dir: &std::path::Path,
        name: &str,
        join: &[&Chat],
        extra: &[&str],
    ) -> Chat {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat"));
        cmd.args(["--listen", "127.0.0.1:0", "--name", name, "--json"]);
        cmd.arg("--data-dir").arg(data_dir);
        for j in join {
            cmd.args(["--join", &j.addr.to_string()]);
        }
        cmd.args(extra);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        // The log (stderr) goes to a file beside the data directory, or
        // into CHAT_TEST_LOG if set: see [`Chat::log`].
        let log_path = match std::env::var_os("CHAT_TEST_LOG") {
            None => data_dir.with_extension("log"),
            Some(dir) => {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::fs::create_dir_all(&dir).expect("log directory");
                std::path::Path::new(&dir).join(format!("{}-{n}-{name}.log", std::process::id()))
            }
        };
        cmd.stderr(std::fs::File::create(&log_path).expect("log file"));
        let mut child = cmd.spawn().expect("start chat");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, events) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                // Floods of long texts would fill the test's own memory:
                // keep only the length of texts over the kept size.
                if let Some(len) = v["text"].as_str().map(str::len) {
                    if len > KEPT_TEXT {
                        v["text"] = Value::from(format!("({len} bytes)"));
                    }
                }
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut chat = Chat {
            name: name.to_owned(),
            addr: "0.0.0.0:0".parse().unwrap(),
            member: String::new(),
            data_dir: data_dir.to_owned(),
            owns_dir: false,
            log_path,
            stdin: child.stdin.take(),
            child,
            events,
            seen: RefCell::new(Vec::new()),
        };
        let ready = chat.wait_for("ready", STARTUP, |e| e["event"] == "ready");
        assert_eq!(ready["name"], name);
        chat.addr = ready["addr"].as_str().unwrap().parse().unwrap();
        chat.member = ready["member"].as_str().expect("member").to_owned();
        chat
    }

    pub fn addr_str(&self) -> String {
        self.addr.to_string()
    }

    /// Types one line.
    pub fn line(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{text}").expect("write to chat");
        stdin.flush().unwrap();
    }

    /// Types many lines from a thread of its own, so that a node slowing
    /// its reader down cannot block the test. Join the thread (once the
    /// lines have been seen delivered) to get stdin back for
    /// [`Chat::give_stdin`].
    pub fn lines_in_background(
        &mut self,
        lines: Vec<String>,
    ) -> std::thread::JoinHandle<ChildStdin> {
        let mut stdin = self.stdin.take().expect("stdin open");
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            for l in &lines {
                buf.extend_from_slice(l.as_bytes());
                buf.push(b'\n');
            }
            let _ = stdin.write_all(&buf);
            let _ = stdin.flush();
            stdin
        })
    }

    /// Gives stdin back after [`Chat::lines_in_background`].
    pub fn give_stdin(&mut self, writer: std::thread::JoinHandle<ChildStdin>) {
        self.stdin = Some(writer.join().expect("stdin writer"));
    }

    /// Index of the next event to be received: a starting point for
    /// [`Chat::wait_since`].
    pub fn mark(&self) -> usize {
        self.drain();
        self.seen.borrow().len()
    }

    fn drain(&self) {
        while let Ok(v) = self.events.try_recv() {
            self.seen.borrow_mut().push(v);
        }
    }

    /// What the process has logged on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log has a line containing `text`; panics after
    /// `within`.
    pub fn wait_log(&self, text: &str, within: Duration) -> String {
        let deadline = clock() + within;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| l.contains(text)) {
                return line.to_owned();
            }
            assert!(
                clock() < deadline,
                "{}: no log line with {text:?} within {within:?}; log:\n{log}",
                self.name
            );
            pause(Duration::from_millis(50));
        }
    }

    /// Every event received so far.
    pub fn seen(&self) -> Vec<Value> {
        self.drain();
        self.seen.borrow().clone()
    }

    /// The first event (ever) matching `pred`, waiting up to `within`.
    pub fn wait_for(&self, what: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_since(0, what, within, pred)
    }

    /// The first event from index `from` on matching `pred`.
    pub fn wait_since(
        &self,
        from: usize,
        what: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = crossbeam_channel::after(within);
        let mut next = from;
        loop {
            {
                let seen = self.seen.borrow();
                if let Some(v) = seen.iter().skip(next).find(|v| pred(v)) {
                    return v.clone();
                }
                next = seen.len();
            }
            crossbeam_channel::select! {
                recv(self.events) -> v => match v {
                    Ok(v) => self.seen.borrow_mut().push(v),
                    Err(_) => panic!("{}: exited while waiting for {what}; {}", self.name, self.tail()),
                },
                recv(deadline) -> _ => panic!(
                    "{}: no {what} within {within:?}; {}",
                    self.name,
                    self.tail()
                ),
            }
        }
    }

    /// The last few events, for failure messages (chat floods make the
    /// whole list unreadable).
    fn tail(&self) -> String {
        let seen = self.seen.borrow();
        let from = seen.len().saturating_sub(20);
        format!("events {from}.. of {}: {:?}", seen.len(), &seen[from..])
    }

    /// The chat `text` from `from`, waiting up to `within`.
    pub fn wait_chat(&self, from: &Chat, text: &str, within: Duration) -> Value {
        self.wait_for(&format!("chat {text:?} from {}", from.name), within, |e| {
            e["event"] == "chat" && e["member"] == from.member.as_str() && e["text"] == text
        })
    }

    /// The chat `text` from anyone, waiting up to `within`.
    pub fn wait_chat_text(&self, text: &str, within: Duration) -> Value {
        self.wait_for(&format!("chat {text:?}"), within, |e| {
            e["event"] == "chat" && e["text"] == text
        })
    }

    /// Waits until as many chats from `from` as `texts` holds, tagged like
    /// them (see [`Chat::assert_delivered_exactly`]), have been delivered.
    pub fn wait_chats(&self, from: &Chat, texts: &[String], within: Duration) {
        let tag = tag_of(texts);
        let deadline = clock() + within;
        loop {
            let have = self
                .chats_from(from)
                .iter()
                .filter(|(_, _, t)| t.starts_with(&tag))
                .count();
            if have >= texts.len() {
                return;
            }
            let left = deadline.saturating_duration_since(clock());
            assert!(
                !left.is_zero(),
                "{}: {have} of {} chats {tag:?}... from {} within {within:?}; gaps {:?}; not chats {:?}",
                self.name,
                texts.len(),
                from.name,
                self.seen()
                    .iter()
                    .filter(|e| e["event"] == "gap")
                    .collect::<Vec<_>>(),
                self.seen()
                    .iter()
                    .filter(|e| e["event"] != "chat")
                    .map(|e| format!("{} {}", e["event"], e["addr"]))
                    .collect::<Vec<_>>(),
            );
            crossbeam_channel::select! {
                recv(self.events) -> v => match v {
                    Ok(v) => self.seen.borrow_mut().push(v),
                    Err(_) => panic!("{}: exited while waiting for chats", self.name),
                },
                recv(crossbeam_channel::after(left)) -> _ => {}
            }
        }
    }

    /// `(incarnation, seq, text)` of every chat delivered from `from`, in
    /// delivery order.
    pub fn chats_from(&self, from: &Chat) -> Vec<(u64, u64, String)> {
        self.drain();
        self.seen
            .borrow()
            .iter()
            .filter(|e| e["event"] == "chat" && e["member"] == from.member.as_str())
            .map(|e| {
                (
                    e["incarnation"].as_u64().unwrap(),
                    e["seq"].as_u64().unwrap(),
                    e["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Asserts that the chats this node delivered from `from` whose text
    /// starts like `texts[0]` (up to its first space) are exactly `texts`:
    /// each once, in order, with seqs counting up by one.
    pub fn assert_delivered_exactly(&self, from: &Chat, texts: &[String]) {
        let tag = tag_of(texts);
        let got: Vec<(u64, u64, String)> = self
            .chats_from(from)
            .into_iter()
            .filter(|(_, _, t)| t.starts_with(&tag))
            .collect();
        let got_texts: Vec<&str> = got.iter().map(|(_, _, t)| t.as_str()).collect();
        let want: Vec<&str> = texts.iter().map(String::as_str).collect();
        assert_eq!(
            got_texts.len(),
            want.len(),
            "{}: delivered {} chats {tag:?}... from {}, expected {}",
            self.name,
            got_texts.len(),
            from.name,
            want.len()
        );
        assert!(
            got_texts == want,
            "{}: chats {tag:?}... from {} not delivered exactly once in order",
            self.name,
            from.name
        );
        for pair in got.windows(2) {
            let ((i0, s0, _), (i1, s1, _)) = (&pair[0], &pair[1]);
            assert!(
                i1 > i0 || (i1 == i0 && *s1 == s0 + 1),
                "{}: seqs from {} skip or go back: {:?} then {:?}",
                self.name,
                from.name,
                (i0, s0),
                (i1, s1)
            );
        }
    }

    /// Waits until every one of `others` is in this node's roster.
    pub fn wait_peers(&self, others: &[&Chat]) {
        for o in others {
            let addr = o.addr_str();
            self.wait_for(&format!("peer_up of {}", o.name), STARTUP, |e| {
                e["event"] == "peer_up" && e["addr"] == addr.as_str()
            });
        }
    }

    /// The `/peers` answer event, waiting up to [`PROMPT`] for it.
    pub fn peers_event(&mut self) -> Value {
        let mark = self.mark();
        self.line("/peers");
        self.wait_since(mark, "peers", PROMPT, |e| e["event"] == "peers")
    }

    /// The `/peers` answer: `(addr, neighbour)` of every roster entry.
    pub fn peers(&mut self) -> Vec<(String, bool)> {
        neighbours_of(&self.peers_event())
    }

    /// Asks `/peers` until every one of `others` is a direct neighbour.
    pub fn wait_neighbours(&mut self, others: &[&Chat], within: Duration) {
        let want: Vec<String> = others.iter().map(|o| o.addr_str()).collect();
        let deadline = clock() + within;
        loop {
            let answer = self.peers_event();
            let list = neighbours_of(&answer);
            if want.iter().all(|w| list.iter().any(|(a, n)| a == w && *n)) {
                return;
            }
            assert!(
                clock() < deadline,
                "{}: not linked to all of {want:?} within {within:?}: {answer}",
                self.name
            );
            pause(Duration::from_millis(50));
        }
    }

    /// The `/stats` answer event, waiting up to [`PROMPT`] for it.
    pub fn stats(&mut self) -> Value {
        let mark = self.mark();
        self.line("/stats");
        self.wait_since(mark, "stats", PROMPT, |e| e["event"] == "stats")
    }

    /// Sends a signal (`-STOP`, `-CONT`, `-KILL`) to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {sig} {}", self.child.id());
    }

    /// The process's resident set size in KiB (`VmRSS` in
    /// `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = clock() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                clock() < deadline,
                "{} did not exit within {within:?}",
                self.name
            );
            pause(Duration::from_millis(20));
        }
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        // A stopped process must be resumed to die of anything but SIGKILL;
        // SIGKILL works either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
            if std::env::var_os("CHAT_TEST_LOG").is_none() {
                let _ = std::fs::remove_file(&self.log_path);
            }
        }
    }
}

/// `GET path` on `addr` (a `--metrics` endpoint): status line, headers
/// and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (String, String, String) {
    use std::io::Read;
    let mut s = TcpStream::connect_timeout(&addr, PROMPT).expect("connect to metrics");
    s.set_read_timeout(Some(PROMPT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_owned(), headers.to_owned(), body.to_owned())
}

/// A fresh directory under the system's temporary directory, unique to
/// this process and call.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "gossip-chat-test-{}-{n}-{}",
        std::process::id(),
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A [`scratch_dir`] for nodes started in it with [`Chat::start_in`],
/// removed when dropped with the log beside it, whether the test passed
/// or not (the log stays if `CHAT_TEST_LOG` is set: it is written there).
pub fn scratch(name: &str) -> Scratch {
    Scratch(scratch_dir(name))
}

/// See [`scratch`].
pub struct Scratch(std::path::PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("log"));
    }
}

/// Any other child process, killed when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a process to its end and collects its output, like
/// `Command::output`, but kills it and fails the test if it has not exited
/// within `within`.
pub fn output_within(cmd: &mut Command, within: Duration) -> Output {
    use std::io::Read;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().expect("start process"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.0.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.0.stderr.take().expect("stderr")));
    let deadline = clock() + within;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for the process") {
            break status;
        }
        // The guard kills the process as the test fails.
        assert!(clock() < deadline, "{cmd:?} did not exit within {within:?}");
        pause(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// `(addr, neighbour)` of every entry of a `peers` event.
fn neighbours_of(answer: &Value) -> Vec<(String, bool)> {
    answer["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["addr"].as_str().unwrap().to_owned(),
                p["neighbour"] == true,
            )
        })
        .collect()
}

/// The number in a `Name:  N ...` line of a `/proc/PID/status` text.
fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status_field(&status, "VmRSS").expect("VmRSS in /proc/PID/status")
}

/// Threads and resident KiB of a process, or `None` where there is no
/// `/proc` to tell.
pub fn threads_rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((
        status_field(&status, "Threads")?,
        status_field(&status, "VmRSS")?,
    ))
}

/// A group of `n` nodes (`{prefix}0`...), all joined through the first,
/// each in every other's roster and directly linked to every other.
pub fn mesh(prefix: &str, n: usize, extra: &[&str]) -> Vec<Chat> {
    let first = Chat::start_with(&format!("{prefix}0"), &[], extra);
    let mut nodes = vec![first];
    for i in 1..n {
        let c = Chat::start_with(&format!("{prefix}{i}"), &[&nodes[0]], extra);
        nodes.push(c);
    }
    for (i, node) in nodes.iter().enumerate() {
        let others: Vec<&Chat> = nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, c)| c)
            .collect();
        node.wait_peers(&others);
    }
    wait_mesh(&mut nodes, STARTUP);
    nodes
}

/// Waits until every node of `nodes` has every other as a direct
/// neighbour, each within `within`.
pub fn wait_mesh(nodes: &mut [Chat], within: Duration) {
    for i in 0..nodes.len() {
        let (before, rest) = nodes.split_at_mut(i);
        let (me, after) = rest.split_first_mut().unwrap();
        let others: Vec<&Chat> = before.iter().chain(after.iter()).collect();
        me.wait_neighbours(&others, within);
    }
}

/// Waits at every one of `survivors` for `victim` (an address) to go down
/// with `reason`, all within `within`; returns the slowest detection time.
pub fn wait_down_everywhere(
    survivors: &[Chat],
    victim: &str,
    reason: &str,
    within: Duration,
) -> Duration {
    let start = clock();
    let mut slowest = Duration::ZERO;
    for s in survivors {
        let left = within.saturating_sub(start.elapsed());
        s.wait_for(&format!("peer_down of {victim} ({reason})"), left, |e| {
            e["event"] == "peer_down" && e["addr"] == victim && e["reason"] == reason
        });
        slowest = slowest.max(start.elapsed());
    }
    slowest
}

/// A peer the tests play by hand: a fresh identity key, and the member id
/// its handshake proves. Its hellos must name that id (a node closes a
/// connection whose hello names another, as an impostor's).
pub struct RawPeer {
    keys: LocalKeys,
    /// Its identity key (the one its handshake proves): what it signs its
    /// chats with.
    pub key: SigningKey,
    /// [`Id::of_key`] of its public key.
    pub id: Id,
}

impl RawPeer {
    /// A stranger with a key of its own.
    pub fn new() -> RawPeer {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the operating system's randomness");
        let keys = LocalKeys::new(NodeIdentity::from_seed(seed));
        let key = SigningKey::from_bytes(&seed);
        let id = keys.id().member_id();
        assert_eq!(id, Id::of_key(&key.verifying_key().to_bytes()));
        RawPeer { keys, key, id }
    }

    /// A stranger whose key puts it first on the ring, ahead of each of
    /// `members` (16 hex digits each, as [`Chat::member`]): a node whose
    /// roster holds only those and this peer follows this peer's beacons.
    pub fn ahead_of(members: &[&str]) -> RawPeer {
        let first = |id: Id| (id.ring_position(), id);
        let ids: Vec<Id> = members
            .iter()
            .map(|m| {
                let mut bytes = [0u8; 8];
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&m[2 * i..2 * i + 2], 16).expect("a hex member id");
                }
                Id(bytes)
            })
            .collect();
        loop {
            let peer = RawPeer::new();
            if ids.iter().all(|&id| first(peer.id) < first(id)) {
                return peer;
            }
        }
    }

    /// A hello naming this peer, listening on `addr`, signed with its key
    /// (the one its handshake proves): its first life at version 0.
    pub fn hello(&self, addr: SocketAddr, name: &str) -> Hello {
        signed_hello(&self.key, addr, name)
    }

    /// Chat `seq` of this peer's first life, signed by it: a chat the
    /// group takes as its own.
    pub fn chat(&self, seq: u64, name: &str, text: &str) -> Message {
        let origin = NodeKey {
            id: self.id,
            incarnation: 1,
        };
        self.chat_as(origin, seq, name, text)
    }

    /// Chat `seq` of the life `origin` (anyone's), signed with this peer's
    /// own key: genuine only where `origin` is this peer's.
    pub fn chat_as(&self, origin: NodeKey, seq: u64, name: &str, text: &str) -> Message {
        signed_chat(&self.key, origin, seq, name, text)
    }

    /// Connects to `node` with the handshake of the open mode (no cluster
    /// key), as any stranger can.
    pub fn connect(&self, node: SocketAddr) -> SecureStream {
        SecureStream::connect(node, &self.keys, &Keyring::default(), PROMPT).expect("handshake")
    }

    /// Connects to `node` and sends `msgs`, framed.
    pub fn send(&self, node: SocketAddr, msgs: &[Message]) -> SecureStream {
        let mut s = self.connect(node);
        // A node that keeps the link but stops reading fails the write, not
        // the test run.
        s.tcp()
            .set_write_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        for m in msgs {
            s.write_all(&frame(m)).expect("write frame");
        }
        s
    }
}

/// A hello naming member `id`, listening on `addr`, in its first life,
/// with a proof that proves nothing ([`Proof::none`]): an impostor's hello
/// (a node closes the connection of a hello whose proof fails, as well as
/// one naming another id than the handshake proved). Genuine hellos come
/// from [`signed_hello`] ([`RawPeer::hello`]).
pub fn hello_as(id: Id, addr: SocketAddr, name: &str) -> Hello {
    Hello {
        version: PROTOCOL_VERSION,
        node: NodeKey { id, incarnation: 1 },
        addr,
        name: name.into(),
        member_version: 0,
        proof: Proof::none(),
        degree: 0,
        members_hash: 0,
        chat_hash: 0,
        chat_mark: 0,
        beacon: None,
        bridge: false,
        shortcut: false,
    }
}

/// A hello of the member whose key is `key` (its id is [`Id::of_key`] of
/// the public half), listening on `addr` in its first life at version 0,
/// with its own signature over that claim: what a node takes from a peer
/// whose handshake proved that key.
pub fn signed_hello(key: &SigningKey, addr: SocketAddr, name: &str) -> Hello {
    let id = Id::of_key(&key.verifying_key().to_bytes());
    let mut hello = hello_as(id, addr, name);
    hello.proof = Proof::sign(key, hello.node, hello.member_version, addr, name, false);
    hello
}

/// Chat `seq` of the life `origin`, signed with `key`: genuine only where
/// `origin.id` is [`Id::of_key`] of `key`'s public half.
pub fn signed_chat(key: &SigningKey, origin: NodeKey, seq: u64, name: &str, text: &str) -> Message {
    Message::Chat(gossip_chat::Chat::signed(
        key,
        MsgId { origin, seq },
        name.into(),
        text.into(),
        0,
    ))
}

/// The first life of a member invented at `addr`, one no process stands
/// behind: its id is [`Id::of_addr`], its key [`addr_key`] (the core's
/// test key of the address), which anyone can derive.
pub fn invented(addr: SocketAddr) -> NodeKey {
    NodeKey {
        id: Id::of_addr(addr),
        incarnation: 1,
    }
}

/// The core's test key of `addr` (`gossip_chat::message::addr_key`, which
/// [`gossip_chat::Identity::new`] uses): the key of the member invented
/// there.
pub fn addr_key(addr: SocketAddr) -> SigningKey {
    gossip_chat::Identity::new(addr, 1, "").key
}

/// Chat `seq` of the member invented at `addr` ([`invented`]), signed with
/// its key: the group delivers it like any member's.
pub fn invented_chat(addr: SocketAddr, seq: u64, name: &str, text: &str) -> Message {
    signed_chat(&addr_key(addr), invented(addr), seq, name, text)
}

/// The entry of the member invented at `addr` ([`invented`]) in `state`
/// at version 0, named `name`, with its proof signed by its key
/// ([`addr_key`]): its own word for its first life (its departure, for
/// `Left`; for `Suspect` and `Dead`, the alive claim an accusation names),
/// so that a node takes it like any member's entry.
pub fn invented_entry(addr: SocketAddr, state: MemberState, name: &str) -> MemberUpdate {
    let node = invented(addr);
    let left = state == MemberState::Left;
    MemberUpdate {
        node,
        addr,
        version: 0,
        state,
        name: name.into(),
        age_secs: 0,
        accuser: None,
        proof: Proof::sign(&addr_key(addr), node, 0, addr, name, left),
    }
}

/// One message as a frame on the wire.
pub fn frame(msg: &Message) -> Vec<u8> {
    let mut f = Vec::new();
    gossip_chat::wire::encode_frame(msg, &mut f);
    f
}

/// A connection the tests read from: plain TCP, or the encrypted channel
/// after a handshake.
pub trait Conn: std::io::Read {
    /// The TCP connection underneath.
    fn tcp(&self) -> &TcpStream;
}

impl Conn for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Conn for SecureStream {
    fn tcp(&self) -> &TcpStream {
        SecureStream::tcp(self)
    }
}

/// Connects to `addr` with the handshake of the open mode (a fresh
/// identity, no cluster key), as any stranger can.
pub fn secure_peer(addr: SocketAddr) -> SecureStream {
    RawPeer::new().connect(addr)
}

/// A raw member of the group: a stranger (a fresh key) that connects to
/// `node`, says hello as `name` listening on `addr` (under the id its
/// handshake proves), then sends `msgs`.
pub fn raw_member(
    node: SocketAddr,
    addr: SocketAddr,
    name: &str,
    msgs: &[Message],
) -> SecureStream {
    let peer = RawPeer::new();
    let mut all = vec![Message::Hello(peer.hello(addr, name))];
    all.extend_from_slice(msgs);
    peer.send(node, &all)
}

/// Whether the node closed `s` (end of stream or reset) within `within`;
/// whatever it sends meanwhile is read and dropped.
pub fn closed_within(s: &mut impl Conn, within: Duration) -> bool {
    let deadline = clock() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(clock());
        if left.is_zero() {
            return false;
        }
        s.tcp().set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// What a node sent on a connection, read but not yet looked at.
pub fn unread() -> FrameReader {
    FrameReader::new(usize::MAX >> 1)
}

/// Takes in what the node has sent on `s` so far, without waiting, as a
/// peer that keeps reading would: a node may close a connection whose
/// peer leaves its writes unread. [`wait_for_message_in`] looks at it.
pub fn read_sent(s: &mut impl Conn, reader: &mut FrameReader) {
    let mut buf = [0u8; 16 * 1024];
    s.tcp()
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    loop {
        match s.read(&mut buf) {
            Ok(0) => panic!("connection closed"),
            Ok(n) => reader.extend(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return
            }
            Err(e) => panic!("reading: {e}"),
        }
    }
}

/// Reads what the node sends on `s` until a message matching `pred`
/// arrives; panics after `within`.
pub fn wait_for_message(
    s: &mut impl Conn,
    what: &str,
    within: Duration,
    pred: impl Fn(&Message) -> bool,
) -> Message {
    wait_for_message_in(s, &mut unread(), what, within, pred)
}

/// [`wait_for_message`], starting with what `reader` already took in.
pub fn wait_for_message_in(
    s: &mut impl Conn,
    reader: &mut FrameReader,
    what: &str,
    within: Duration,
    pred: impl Fn(&Message) -> bool,
) -> Message {
    let deadline = clock() + within;
    let mut buf = [0u8; 16 * 1024];
    loop {
        while let Some(payload) = reader.next_frame().expect("node sent a bad frame") {
            let msg = gossip_chat::wire::decode_payload(payload, usize::MAX >> 1)
                .expect("node sent an undecodable frame");
            if pred(&msg) {
                return msg;
            }
        }
        let left = deadline.saturating_duration_since(clock());
        assert!(!left.is_zero(), "no {what} within {within:?}");
        s.tcp().set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => panic!("connection closed before {what}"),
            Ok(n) => reader.extend(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading for {what}: {e}"),
        }
    }
}

/// `n` distinct texts `{prefix} {i}`, padded with `x` to `len` bytes.
pub fn texts(prefix: &str, n: usize, len: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut t = format!("{prefix} {i} ");
            while t.len() < len {
                t.push('x');
            }
            t
        })
        .collect()
}

/// The first word of the first text, with its space: what
/// [`Chat::wait_chats`] and [`Chat::assert_delivered_exactly`] pick the
/// chats of one batch by.
fn tag_of(texts: &[String]) -> String {
    let first = texts
        .first()
        .and_then(|t| t.split(' ').next())
        .unwrap_or_default();
    format!("{first} ")
}

/// Samples a process's VmRSS every 10 ms on a thread of its own, until
/// [`RssPeak::stop`] returns the highest value seen, in KiB.
pub struct RssPeak {
    stop: crossbeam_channel::Sender<()>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssPeak {
    pub fn watch(pid: u32) -> RssPeak {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            loop {
                let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                    return peak;
                };
                if let Some(kib) = status_field(&status, "VmRSS") {
                    peak = peak.max(kib);
                }
                match stopped.recv_timeout(Duration::from_millis(10)) {
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    _ => return peak,
                }
            }
        });
        RssPeak { stop, thread }
    }

    pub fn stop(self) -> u64 {
        drop(self.stop);
        self.thread.join().expect("RSS sampler")
    }
}

/// Each node of `nodes` sends `per_node` short messages; every node must
/// deliver every one of them exactly once, in per-sender order.
pub fn everyone_chats(nodes: &mut [Chat], tag: &str, per_node: usize) {
    everyone_chats_within(nodes, tag, per_node, DELIVERY);
}

/// [`everyone_chats`], each delivered within `within`.
pub fn everyone_chats_within(nodes: &mut [Chat], tag: &str, per_node: usize, within: Duration) {
    let sent: Vec<Vec<String>> = nodes
        .iter_mut()
        .map(|n| {
            let t = texts(&format!("{tag} from {}", n.name), per_node, 40);
            for line in &t {
                n.line(line);
            }
            t
        })
        .collect();
    for n in nodes.iter() {
        for (from, t) in nodes.iter().zip(&sent) {
            n.wait_chats(from, t, within);
        }
    }
    for n in nodes.iter() {
        for (from, t) in nodes.iter().zip(&sent) {
            n.assert_delivered_exactly(from, t);
        }
    }
}
