//! Command-line options, parsed with clap and turned once into a validated
//! node config.

use anyhow::{anyhow, Context};
use clap::{Parser, ValueEnum};
use gossip_chat::{Config, Duration};
use gossip_chat_net::{ClusterKey, NetConfig};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// Peer-to-peer group chat with no server. Each line typed is a message to
/// everyone; lines starting with `/` are commands (`/help` lists them).
#[derive(Debug, Parser)]
#[command(name = "chat", version)]
pub struct Args {
    /// Address to listen on and be known by (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", value_parser = parse_addr, required_unless_present = "gen_cluster_key")]
    pub listen: Option<SocketAddr>,
    /// A member to join through; repeat to give several.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub join: Vec<SocketAddr>,
    /// Display name shown to others.
    #[arg(long, default_value = "anon")]
    pub name: String,
    /// One JSON object per line on stdout, for scripts.
    #[arg(long)]
    pub json: bool,
    /// Full screen: scrollback, member list, status line and input line
    /// (needs a terminal; not with --json).
    #[arg(long)]
    pub tui: bool,
    /// More logging on stderr (-v info, -vv debug, -vvv trace); without it,
    /// RUST_LOG decides (default: warnings).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Heartbeat interval on each connection, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = Config::lan().ping_interval.as_millis())]
    pub ping_ms: u64,
    /// Heartbeats missed before a neighbour is checked through others (and
    /// suspected if none reaches it).
    #[arg(long, value_name = "N", default_value_t = Config::lan().missed_pings)]
    pub missed_pings: u32,
    /// Interval between membership gossip rounds, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = Config::lan().gossip_interval.as_millis())]
    pub gossip_ms: u64,
    /// Interval between anti-entropy probes, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = Config::lan().sync_interval.as_millis())]
    pub sync_ms: u64,
    /// Interval between attempts to reach a member believed dead, in
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = Config::lan().reconnect_interval.as_millis())]
    pub reconnect_ms: u64,
    /// Longest wait for an outbound connection, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub connect_timeout_ms: u64,
    /// How long a gap in a sender's messages may hold delivery back before
    /// it is given up and reported, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = Config::lan().gap_timeout.as_millis())]
    pub gap_timeout_ms: u64,
    /// Flood every chat message on every link instead of pruning links that
    /// bring duplicates down to a spanning tree: more copies, but no wait for
    /// repair when the tree breaks.
    #[arg(long)]
    pub no_prune: bool,
    /// Serve the node's counters in the Prometheus text format at
    /// http://ADDR/metrics (port 0 picks a free port, shown at start).
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub metrics: Option<SocketAddr>,
    /// Where the node keeps its identity key and cluster keys (created
    /// owner-only if missing; one running node per directory). Default: the
    /// per-user data directory's `gossip-chat` (if another node uses it,
    /// this one runs with a temporary identity).
    #[arg(long, value_name = "DIR", env = "GOSSIP_CHAT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The cluster key: only nodes that hold it can connect. Installed and
    /// made primary in the data directory's keyring, which keeps it for the
    /// next start. Without any key the node runs open (anyone may join).
    #[arg(
        long,
        value_name = "KEY",
        env = "GOSSIP_CHAT_CLUSTER_KEY",
        hide_env_values = true
    )]
    pub cluster_key: Option<ClusterKey>,
    /// Print a new random cluster key and exit.
    #[arg(long, conflicts_with_all = ["listen", "join", "cluster_key"])]
    pub gen_cluster_key: bool,
    /// Most neighbours kept.
    #[arg(long, value_name = "N", default_value_t = Config::lan().max_connections)]
    pub max_connections: usize,
    /// Protocol settings the other options start from: `lan` for links of
    /// a few milliseconds, `slow-links` for wide-area links of 50 ms or
    /// more (chat payloads and announcements gathered per link, fewer
    /// messages for some delay per hop).
    #[arg(long, value_enum, default_value_t = Preset::Lan)]
    pub preset: Preset,
}

/// The config presets of `--preset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// `Config::lan`.
    Lan,
    /// `Config::slow_links`.
    SlowLinks,
}

impl Preset {
    fn config(self) -> Config {
        match self {
            Preset::Lan => Config::lan(),
            Preset::SlowLinks => Config::slow_links(),
        }
    }
}

/// An address as `IP:PORT`, or `HOST:PORT` resolved once at start.
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("`{s}` resolves to no address")),
        Err(_) => Err(format!("`{s}` is not an address (expected IP:PORT)")),
    }
}

impl Args {
    /// The node config these options describe, or why they are invalid.
    pub fn net_config(&self) -> anyhow::Result<NetConfig> {
        if self.name.is_empty() || self.name.len() > 64 || self.name.chars().any(char::is_control) {
            return Err(anyhow!(
                "invalid value for '--name': 1 to 64 bytes of printable text"
            ));
        }
        let listen = self.listen.ok_or_else(|| {
            anyhow!("the following required arguments were not provided: --listen <ADDR>")
        })?;
        if listen.ip().is_unspecified() {
            return Err(anyhow!(
                "invalid value for '--listen': {listen} is not an address peers can reach; listen on a specific IP"
            ));
        }
        let node = Config {
            ping_interval: Duration::from_millis(self.ping_ms),
            missed_pings: self.missed_pings,
            gossip_interval: Duration::from_millis(self.gossip_ms),
            sync_interval: Duration::from_millis(self.sync_ms),
            reconnect_interval: Duration::from_millis(self.reconnect_ms),
            max_connections: self.max_connections,
            prune_duplicates: !self.no_prune,
            gap_timeout: Duration::from_millis(self.gap_timeout_ms),
            ..self.preset.config()
        };
        node.validate().context("invalid timing options")?;
        let mut cfg = NetConfig::new(listen, &self.name);
        cfg.node = node;
        cfg.join = self.join.clone();
        cfg.connect_timeout = std::time::Duration::from_millis(self.connect_timeout_ms.max(1));
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preset_sets_what_no_option_overrides() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["chat", "--listen", "127.0.0.1:7000"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv)
                .expect("parses")
                .net_config()
                .expect("valid")
                .node
        };
        let lan = parse(&[]);
        assert_eq!(lan.chat_batch, Config::lan().chat_batch);
        let slow = parse(&["--preset", "slow-links", "--ping-ms", "700"]);
        assert_eq!(slow.chat_batch, Config::slow_links().chat_batch);
        assert_eq!(slow.ihave_interval, Config::slow_links().ihave_interval);
        assert_ne!(slow.chat_batch, lan.chat_batch);
        assert_eq!(slow.ping_interval, Duration::from_millis(700));
        assert!(
            Args::try_parse_from(["chat", "--listen", "127.0.0.1:7000", "--preset", "fast"])
                .is_err()
        );
    }
}
