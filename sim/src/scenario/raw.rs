//! The scenario file as TOML gives it: every field optional where the file
//! may leave it out, spans kept for error lines. Validation turns it into
//! the model.

use super::duration::Dur;
use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) description: String,
    pub(super) duration: Spanned<Dur>,
    pub(super) liveness: Option<Spanned<Dur>>,
    #[serde(default)]
    pub(super) node: Option<Spanned<RawNode>>,
    pub(super) nodes: Spanned<RawNodes>,
    #[serde(default)]
    pub(super) network: Option<RawNetwork>,
    #[serde(default)]
    pub(super) workload: Option<Spanned<RawWorkload>>,
    #[serde(default)]
    pub(super) fault: Vec<Spanned<RawFault>>,
    pub(super) random: Option<Spanned<RawRandom>>,
    #[serde(default)]
    pub(super) checks: Option<Spanned<RawChecks>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) preset: Option<String>,
    pub(super) max_connections: Option<usize>,
    pub(super) watched_links: Option<usize>,
    pub(super) ping_interval: Option<Dur>,
    pub(super) probe_interval: Option<Dur>,
    pub(super) ring_push_interval: Option<Dur>,
    pub(super) beacon_interval: Option<Dur>,
    pub(super) missed_pings: Option<u32>,
    pub(super) gossip_interval: Option<Dur>,
    pub(super) gossip_fanout: Option<usize>,
    pub(super) sync_interval: Option<Dur>,
    pub(super) reconnect_interval: Option<Dur>,
    pub(super) suspect_timeout: Option<Dur>,
    pub(super) accuser_allowance: Option<u32>,
    pub(super) accuser_forgive: Option<Dur>,
    pub(super) history_max: Option<usize>,
    pub(super) gap_timeout: Option<Dur>,
    pub(super) max_members: Option<usize>,
    pub(super) graft_timeout: Option<Dur>,
    pub(super) ihave_interval: Option<Dur>,
    pub(super) chat_batch: Option<Dur>,
    pub(super) optimize_threshold: Option<Dur>,
    pub(super) lazy_fanout: Option<usize>,
    pub(super) announcers: Option<usize>,
    pub(super) strict_prune: Option<bool>,
    pub(super) rooted_tree: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNodes {
    pub(super) count: u32,
    pub(super) join: Option<String>,
    pub(super) stagger: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawLatency {
    Constant(Dur),
    Dist(RawDist),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDist {
    pub(super) dist: String,
    pub(super) min: Option<Dur>,
    pub(super) max: Option<Dur>,
    pub(super) median: Option<Dur>,
    pub(super) sigma: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub(super) latency: Option<Spanned<RawLatency>>,
    pub(super) ordered: Option<bool>,
    pub(super) loss: Option<Spanned<f64>>,
    pub(super) duplicate: Option<Spanned<f64>>,
    pub(super) connect_timeout: Option<Dur>,
    #[serde(default)]
    pub(super) link: Vec<Spanned<RawLink>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLink {
    #[serde(default)]
    pub(super) from: Vec<u32>,
    #[serde(default)]
    pub(super) to: Vec<u32>,
    pub(super) latency: Option<Spanned<RawLatency>>,
    pub(super) loss: Option<f64>,
    pub(super) duplicate: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawSenders {
    Word(String),
    Nodes(Vec<u32>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    #[serde(default)]
    pub(super) rate: f64,
    pub(super) senders: Option<Spanned<RawSenders>>,
    pub(super) start: Option<Dur>,
    pub(super) stop: Option<Dur>,
    pub(super) text_len: Option<usize>,
    #[serde(default)]
    pub(super) send: Vec<Spanned<RawSend>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSend {
    pub(super) at: Dur,
    pub(super) from: u32,
    pub(super) text: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawVia {
    Node(u32),
    Word(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub(super) at: Dur,
    pub(super) kind: String,
    pub(super) nodes: Option<Vec<u32>>,
    pub(super) node: Option<u32>,
    pub(super) count: Option<u32>,
    pub(super) via: Option<RawVia>,
    #[serde(rename = "for")]
    pub(super) for_: Option<Dur>,
    pub(super) shape: Option<String>,
    pub(super) groups: Option<Vec<Vec<u32>>>,
    pub(super) oneway: Option<bool>,
    pub(super) from: Option<u32>,
    pub(super) to: Option<u32>,
    pub(super) loss: Option<f64>,
    pub(super) extra: Option<Dur>,
    pub(super) rate: Option<f64>,
    pub(super) step: Option<Dur>,
    pub(super) hold: Option<Dur>,
    pub(super) modes: Option<Vec<String>>,
    pub(super) addresses: Option<u32>,
    pub(super) delay: Option<RawDelay>,
    pub(super) inbound: Option<bool>,
    pub(super) every: Option<Dur>,
    pub(super) times: Option<u32>,
    pub(super) excused: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawDelay {
    One(Dur),
    Range([Dur; 2]),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRandom {
    pub(super) faults: [u32; 2],
    pub(super) kinds: Option<Vec<String>>,
    pub(super) start: Dur,
    pub(super) end: Dur,
    pub(super) durations: Option<[Dur; 2]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChecks {
    pub(super) discovery_within: Option<Dur>,
    pub(super) join_within: Option<Dur>,
    pub(super) detect_within: Option<Dur>,
    pub(super) deliver_within: Option<Dur>,
    pub(super) join_grace: Option<Dur>,
    pub(super) converge_within: Option<Dur>,
    #[serde(default)]
    pub(super) skip: Vec<String>,
    #[serde(default)]
    pub(super) xfail: Vec<String>,
    pub(super) judge: Option<Vec<String>>,
}
