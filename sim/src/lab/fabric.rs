//! The lab's network: one namespace per node slot and one hub namespace
//! holding a bridge, joined by veth pairs; packet filtering on the bridge.
//!
//! Everything lives inside namespaces named with a per-run prefix
//! (`gclab-PID-NONCE-`), so deleting them removes every interface, address
//! and filter rule the run made, and nothing outside them is touched. The
//! [`Fabric`] guard deletes them on drop: at the end of a run, on an error,
//! on Ctrl-C (the run loop returns) and on a panic (the stack unwinds).
//! Node `i` is `crate::addr::addr_of(i)` in its namespace, as in the
//! simulator; the addresses are private to the run's namespaces. Whether
//! the kernel has netem is found once, when the network is built, by
//! trying it on node 0's interface; the delays it adds
//! ([`super::netem`]) sit on interfaces inside the namespaces and go
//! with them.

use super::netem::{self, Netem};
use crate::scenario::Latency;
use gossip_chat::Duration;
use std::io::Write;
use std::process::{Command, Stdio};

/// The prefix of every namespace the lab creates.
pub const PREFIX: &str = "gclab-";

/// Why the lab cannot build its network.
#[derive(Debug)]
pub enum FabricError {
    /// Namespaces cannot be created here (not root, no iproute2, or a
    /// sandbox without them): the one-line reason.
    NoNamespaces(String),
    /// A tool the lab needs is missing.
    MissingTool(String),
    /// A command failed half-way.
    Command(String),
}

impl std::fmt::Display for FabricError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FabricError::NoNamespaces(why) => {
                write!(
                    f,
                    "cannot create network namespaces (needs root and iproute2): {why}"
                )
            }
            FabricError::MissingTool(why) => write!(f, "{why}"),
            FabricError::Command(why) => write!(f, "{why}"),
        }
    }
}

/// Runs `ip ARGS`; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args, None).map(drop)
}

/// Runs `cmd ARGS` with `input` on stdin; stdout, or stderr on failure.
fn run(cmd: &str, args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("{cmd}: {e}"))?;
    }
    let out = child
        .wait_with_output()
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

/// Bytes and packets a node sent, by the hub's end of its veth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Ethernet frame bytes.
    pub bytes: u64,
    /// Frames.
    pub packets: u64,
}

/// The namespaces of one run; deleted on drop.
pub struct Fabric {
    prefix: String,
    /// Namespaces created, hub first.
    created: Vec<String>,
    slots: usize,
    /// Whether the kernel can delay packets (found once, on node 0).
    netem: Netem,
}

impl Fabric {
    /// Creates the hub and `slots` node namespaces, each node on the
    /// bridge with its address up.
    pub fn create(slots: usize) -> Result<Fabric, FabricError> {
        if run("nft", &["--version"], None).is_err() {
            return Err(FabricError::MissingTool(
                "nft not found: the lab filters packets with nftables (run .ci/setup-lab as root)"
                    .into(),
            ));
        }
        // Unique per run: the process, the time, and a count of the fabrics
        // this process made (two may be made in one millisecond, as tests
        // running side by side do).
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nonce = crate::lab::clock::Clock::epoch_ms() % 100_000;
        let prefix = format!("{PREFIX}{}-{nonce}-{seq}-", std::process::id());
        let mut fabric = Fabric {
            prefix,
            created: Vec::new(),
            slots,
            netem: Netem::Missing("no node to try it on".into()),
        };
        let hub = fabric.hub();
        ip(&["netns", "add", &hub]).map_err(FabricError::NoNamespaces)?;
        fabric.created.push(hub.clone());
        let step = |r: Result<(), String>| r.map_err(FabricError::Command);
        step(ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]))?;
        step(ip(&["-n", &hub, "link", "set", "br0", "up"]))?;
        for slot in 0..slots {
            let ns = fabric.ns(slot);
            step(ip(&["netns", "add", &ns]))?;
            fabric.created.push(ns.clone());
            let veth = format!("v{slot}");
            step(ip(&[
                "-n", &hub, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]))?;
            step(ip(&[
                "-n", &hub, "link", "set", &veth, "master", "br0", "up",
            ]))?;
            let addr = format!("{}/8", crate::addr::addr_of(slot as u32).ip());
            step(ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"]))?;
            step(ip(&["-n", &ns, "link", "set", "eth0", "up"]))?;
            step(ip(&["-n", &ns, "link", "set", "lo", "up"]))?;
        }
        if slots > 0 {
            fabric.netem = detect_netem(&fabric.ns(0))?;
        }
        Ok(fabric)
    }

    /// Whether this kernel can delay packets.
    pub fn netem(&self) -> &Netem {
        &self.netem
    }

    /// Delays what node slot `slot` sends by `latency` plus `extra`
    /// (netem on its `eth0`).
    pub fn delay_out(&self, slot: usize, latency: Latency, extra: Duration) -> Result<(), String> {
        tc(
            &self.ns(slot),
            netem::delay_args("replace", "eth0", latency, extra),
        )
    }

    /// Delays what node slot `slot` receives by `extra` (netem on the
    /// hub's end of its veth).
    pub fn delay_in(&self, slot: usize, extra: Duration) -> Result<(), String> {
        let dev = format!("v{slot}");
        let zero = Latency::Constant(Duration::ZERO);
        tc(&self.hub(), netem::delay_args("replace", &dev, zero, extra))
    }

    /// The per-run prefix of every namespace name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn hub(&self) -> String {
        format!("{}hub", self.prefix)
    }

    /// The namespace of node slot `slot`.
    pub fn ns(&self, slot: usize) -> String {
        format!("{}n{slot}", self.prefix)
    }

    /// Replaces the hub's filter with `script` (an `nft -f` script), in
    /// one transaction.
    pub fn filter(&self, script: &str) -> Result<(), String> {
        run(
            "ip",
            &["netns", "exec", &self.hub(), "nft", "-f", "-"],
            Some(script),
        )
        .map(drop)
    }

    /// What each node slot has sent so far.
    pub fn sent(&self) -> Result<Vec<Sent>, String> {
        let out = run("ip", &["-n", &self.hub(), "-s", "-j", "link", "show"], None)?;
        let links: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| format!("ip -j link: {e}"))?;
        let mut sent = vec![Sent::default(); self.slots];
        for l in links.as_array().into_iter().flatten() {
            let Some(slot) = l["ifname"]
                .as_str()
                .and_then(|n| n.strip_prefix('v'))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            // The hub's end receives what the node sends.
            let rx = &l["stats64"]["rx"];
            if let (Some(s), Some(b), Some(p)) = (
                sent.get_mut(slot),
                rx["bytes"].as_u64(),
                rx["packets"].as_u64(),
            ) {
                *s = Sent {
                    bytes: b,
                    packets: p,
                };
            }
        }
        Ok(sent)
    }

    /// The pids of processes still inside the run's namespaces.
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.created)
    }
}

/// Runs `tc -n NS ARGS`.
fn tc(ns: &str, args: Vec<String>) -> Result<(), String> {
    let mut all = vec!["-n".to_string(), ns.to_string()];
    all.extend(args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    run("tc", &all, None).map(drop)
}

/// Whether the kernel has netem: tries to add it on `eth0` in `ns` (and
/// takes it off again). A kernel without it, or no `tc`, is an answer;
/// any other failure is an error.
fn detect_netem(ns: &str) -> Result<Netem, FabricError> {
    let probe = Latency::Constant(Duration::from_millis(1));
    match tc(ns, netem::delay_args("add", "eth0", probe, Duration::ZERO)) {
        Ok(()) => {
            tc(
                ns,
                ["qdisc", "del", "dev", "eth0", "root"]
                    .map(String::from)
                    .to_vec(),
            )
            .map_err(FabricError::Command)?;
            Ok(Netem::Present)
        }
        Err(e) if netem::unknown_qdisc(&e) => Ok(Netem::Missing(
            "this kernel has no netem (tc: \"Specified qdisc kind is unknown\")".into(),
        )),
        // `run` names the program alone when it cannot be started.
        Err(e) if e.starts_with("tc: ") => Ok(Netem::Missing(format!("{e} (install iproute2)"))),
        Err(e) => Err(FabricError::Command(e)),
    }
}

fn pids_in(namespaces: &[String]) -> Vec<i32> {
    let mut pids = Vec::new();
    for ns in namespaces {
        if let Ok(out) = run("ip", &["netns", "pids", ns], None) {
            pids.extend(out.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    pids
}

/// Kills every process in `namespaces` and deletes them (children of a
/// lab that died without cleaning up are found through their namespace).
fn remove(namespaces: &[String]) {
    for pid in pids_in(namespaces) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    for ns in namespaces.iter().rev() {
        let _ = ip(&["netns", "del", ns]);
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        remove(&self.created);
        self.created.clear();
    }
}

/// The namespaces on this machine whose names carry [`PREFIX`].
pub fn lab_namespaces() -> Vec<String> {
    run("ip", &["netns", "list"], None)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_string)
        .collect()
}

/// Whether process `pid` runs (exists and is not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        // The state follows the command name in parentheses.
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Removes the namespaces (and their processes) left by labs that are no
/// longer running (killed with SIGKILL, say); returns their names.
pub fn sweep_stale() -> Vec<String> {
    let stale: Vec<String> = lab_namespaces()
        .into_iter()
        .filter(|n| {
            let pid = n[PREFIX.len()..].split('-').next().unwrap_or("");
            pid.parse::<u32>().is_ok_and(|p| !running(p))
        })
        .collect();
    remove(&stale);
    stale
}
