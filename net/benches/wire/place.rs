//! Where the wire bench runs its nodes, and what it reads there: a fresh
//! network namespace whose `lo` carries nothing but the nodes' traffic, or
//! (when namespaces cannot be made) the host, whose `lo` carries other
//! traffic too.
//!
//! Counters come from the kernel: `lo`'s from `ip -s -j link show lo`,
//! TCP's from `/proc/net/snmp`, sockets from `ss -HtainO`. Loopback counts a
//! packet once in tx (and once more in rx, as the same packet arriving):
//! its byte count is the IP packet, IPv4 and TCP headers included, with no
//! link-layer header.
//!
//! The namespace guard kills whatever still runs inside and deletes the
//! namespace when dropped: at the end, on an error and on a panic. A run
//! killed outright leaves its namespace behind; the next run removes it
//! (the namespace's name carries the pid of the run that made it).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// The prefix of every namespace the wire bench creates.
pub const PREFIX: &str = "gcwire-";

/// Runs `cmd ARGS`; its stdout, or a one-line reason on failure.
fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            err.lines().next().unwrap_or("failed").trim()
        ))
    }
}

/// A network namespace of this run, with `lo` up; killed and deleted on
/// drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a fresh namespace and brings its `lo` up.
    pub fn create() -> Result<Netns, String> {
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{seq}", std::process::id());
        run("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        run("ip", &["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// Kills every process inside namespace `name`, then deletes it (a
/// namespace outlives its name while a process is still inside).
fn remove(name: &str) {
    if let Ok(pids) = run("ip", &["netns", "pids", name]) {
        for pid in pids.split_whitespace() {
            let _ = run("kill", &["-KILL", pid]);
        }
    }
    let _ = run("ip", &["netns", "del", name]);
}

/// Removes the namespaces left by wire bench runs that no longer run
/// (killed before their guard could drop); the names removed.
pub fn remove_stale() -> Vec<String> {
    let list = run("ip", &["netns", "list"]).unwrap_or_default();
    let mut removed = Vec::new();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let running = pid == std::process::id()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                // A zombie has exited: its namespaces are not in use.
                .is_ok_and(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                });
        if !running {
            remove(name);
            removed.push(name.to_owned());
        }
    }
    removed
}

/// Where the nodes run.
pub enum Place {
    /// In a namespace of their own: its `lo` carries only their traffic.
    Netns(Netns),
    /// On the host (namespaces could not be made): `lo` carries other
    /// traffic too.
    Host,
}

impl Place {
    /// A fresh namespace, or the host with the reason it has to be.
    pub fn new() -> (Place, Option<String>) {
        match Netns::create() {
            Ok(ns) => (Place::Netns(ns), None),
            Err(why) => (Place::Host, Some(why)),
        }
    }

    /// A command that runs `program` here.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match self {
            Place::Netns(ns) => {
                // `ip netns exec` execs the program in place: the child's
                // pid is the program's.
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns.name()]).arg(program);
                cmd
            }
            Place::Host => Command::new(program),
        }
    }

    /// Runs `program ARGS` here; its stdout.
    fn output(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{program} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `lo`'s counters here.
    pub fn lo(&self) -> Result<Lo, String> {
        let out = match self {
            Place::Netns(ns) => run("ip", &["-n", ns.name(), "-s", "-j", "link", "show", "lo"])?,
            Place::Host => run("ip", &["-s", "-j", "link", "show", "lo"])?,
        };
        parse_lo(&out).ok_or_else(|| format!("no lo counters in `ip -s -j link show lo`: {out}"))
    }

    /// The TCP counters here.
    pub fn tcp(&self) -> Result<Tcp, String> {
        let out = self.output("cat", &["/proc/net/snmp"])?;
        parse_tcp(&out).ok_or_else(|| "no Tcp lines in /proc/net/snmp".to_owned())
    }

    /// The TCP sockets to or from `ports`, listening ones left out; a
    /// connection between two sockets here shows as both.
    pub fn sockets(&self, ports: &BTreeSet<u16>) -> Result<Vec<Socket>, String> {
        let out = self.output("ss", &["-HtainO"])?;
        Ok(parse_sockets(&out, ports))
    }
}

/// `lo`'s transmit counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lo {
    /// IP packet bytes, headers included.
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub rx_packets: u64,
}

/// Parses `ip -s -j link show lo`.
pub fn parse_lo(json: &str) -> Option<Lo> {
    let links: serde_json::Value = serde_json::from_str(json).ok()?;
    let lo = links
        .as_array()?
        .iter()
        .find(|l| l["ifname"].as_str() == Some("lo"))?;
    let s = &lo["stats64"];
    Some(Lo {
        tx_bytes: s["tx"]["bytes"].as_u64()?,
        tx_packets: s["tx"]["packets"].as_u64()?,
        rx_bytes: s["rx"]["bytes"].as_u64()?,
        rx_packets: s["rx"]["packets"].as_u64()?,
    })
}

/// The TCP counters of `/proc/net/snmp` the bench prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tcp {
    /// Connections this side opened (SYNs sent).
    pub active_opens: u64,
    /// Connections accepted.
    pub passive_opens: u64,
    /// Connection attempts that failed.
    pub attempt_fails: u64,
    /// Established connections reset.
    pub estab_resets: u64,
    /// Segments sent, retransmissions left out.
    pub out_segs: u64,
    pub retrans_segs: u64,
}

/// Parses `/proc/net/snmp`: a `Tcp:` line of names, then one of values.
pub fn parse_tcp(snmp: &str) -> Option<Tcp> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let names = tcp.next()?.split_whitespace().skip(1);
    let values = tcp.next()?.split_whitespace().skip(1);
    let fields: BTreeMap<&str, &str> = names.zip(values).collect();
    let get = |name: &str| fields.get(name)?.parse::<u64>().ok();
    Some(Tcp {
        active_opens: get("ActiveOpens")?,
        passive_opens: get("PassiveOpens")?,
        attempt_fails: get("AttemptFails")?,
        estab_resets: get("EstabResets")?,
        out_segs: get("OutSegs")?,
        retrans_segs: get("RetransSegs")?,
    })
}

/// One TCP socket, as `ss -HtainO` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Socket {
    /// `ESTAB`, `TIME-WAIT`, ...
    pub state: String,
    pub local: String,
    pub peer: String,
    /// Segments sent since the connection opened, SYN and retransmissions
    /// included.
    pub segs_out: u64,
    /// Of those, segments that carried payload (the rest are bare ACKs,
    /// SYNs and FINs).
    pub data_segs_out: u64,
    /// Payload bytes sent, retransmissions included.
    pub bytes_sent: u64,
}

/// Parses `ss -HtainO`: state, queues, local and peer address, then
/// `name:value` details on the same line. Keeps the sockets whose local or
/// peer port is one of `ports`, listening ones left out.
pub fn parse_sockets(ss: &str, ports: &BTreeSet<u16>) -> Vec<Socket> {
    let port = |addr: &str| addr.rsplit(':').next()?.parse::<u16>().ok();
    let mut sockets = Vec::new();
    for line in ss.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [state, _, _, local, peer, ref details @ ..] = f[..] else {
            continue;
        };
        let ours = [local, peer]
            .iter()
            .any(|a| port(a).is_some_and(|p| ports.contains(&p)));
        if state == "LISTEN" || !ours {
            continue;
        }
        let detail = |name: &str| {
            details
                .iter()
                .find_map(|d| d.strip_prefix(name)?.strip_prefix(':')?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        sockets.push(Socket {
            state: state.to_owned(),
            local: local.to_owned(),
            peer: peer.to_owned(),
            segs_out: detail("segs_out"),
            data_segs_out: detail("data_segs_out"),
            bytes_sent: detail("bytes_sent"),
        });
    }
    sockets
}
