//! Scenario files: TOML in, a validated [`Scenario`] out.
//!
//! Every field is documented in `scenarios/README.md`. Parsing is strict
//! (unknown fields are errors) and every error names the file and line.

use crate::check_id::CheckId;
use gossip_chat::{Config, Duration};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// A scenario file that could not be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file as given.
    pub file: String,
    /// 1-based line, when the fault can be pinned to one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file it came from (used in replay commands).
    pub path: String,
    /// Short name (the file stem unless set).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Total virtual time.
    pub duration: Duration,
    /// The last stretch of the run in which every fault is healed and
    /// convergence is demanded. Zero: no liveness phase.
    pub liveness: Duration,
    /// The core config every node runs with.
    pub config: Config,
    /// Initial nodes.
    pub nodes: Nodes,
    /// The network model.
    pub network: NetSpec,
    /// Chat traffic.
    pub workload: Workload,
    /// Scheduled faults, sorted by time.
    pub faults: Vec<Fault>,
    /// Random fault mode.
    pub random: Option<RandomSpec>,
    /// Check deadlines and expectations.
    pub checks: CheckSpec,
}

/// The initial population.
#[derive(Debug, Clone)]
pub struct Nodes {
    /// How many nodes start.
    pub count: u32,
    /// Whom each initial node joins through.
    pub join: InitialJoin,
    /// Start offset between consecutive initial nodes.
    pub stagger: Duration,
}

/// Whom the initial nodes join through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialJoin {
    /// Every node joins through node 0.
    First,
    /// Each node joins through a random node started before it.
    Random,
    /// Node i joins through node i-1.
    Chain,
}

/// A latency distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Always the same.
    Constant(Duration),
    /// Uniform in `[min, max]`.
    Uniform(Duration, Duration),
    /// Log-normal with the given median and sigma, capped at `max`: most
    /// messages are fast, a few are very slow.
    LogNormal {
        /// Median latency.
        median: Duration,
        /// Shape: 0.5 is mild, 1.5 is wild.
        sigma: f64,
        /// Cap.
        max: Duration,
    },
}

/// The network model.
#[derive(Debug, Clone)]
pub struct NetSpec {
    /// One-way latency of every link.
    pub latency: Latency,
    /// Per-link FIFO (TCP-like) delivery.
    pub ordered: bool,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// How long a dial to an unreachable address takes to fail.
    pub connect_timeout: Duration,
    /// Per-link overrides.
    pub links: Vec<LinkOverride>,
}

/// Different parameters for the links from some nodes to some others.
#[derive(Debug, Clone)]
pub struct LinkOverride {
    /// Senders (empty: all).
    pub from: Vec<u32>,
    /// Receivers (empty: all).
    pub to: Vec<u32>,
    /// Replaces the latency.
    pub latency: Option<Latency>,
    /// Replaces the loss rate.
    pub loss: Option<f64>,
    /// Replaces the duplication rate.
    pub duplicate: Option<f64>,
}

/// Chat traffic.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Messages per second, cluster-wide.
    pub rate: f64,
    /// Who sends them.
    pub senders: Senders,
    /// First message no earlier than this.
    pub start: Duration,
    /// No messages from this time on.
    pub stop: Duration,
    /// Bytes of text per message.
    pub text_len: usize,
    /// Explicit messages.
    pub sends: Vec<TimedSend>,
}

/// Which nodes send the rate-driven messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Senders {
    /// Any live node, drawn per message.
    All,
    /// These nodes (the live ones among them, drawn per message).
    Nodes(Vec<u32>),
}

/// One explicit message.
#[derive(Debug, Clone)]
pub struct TimedSend {
    /// When.
    pub at: Duration,
    /// From which node.
    pub from: u32,
    /// The text.
    pub text: String,
}

/// Which nodes a fault hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// These node indices.
    Nodes(Vec<u32>),
    /// This many nodes drawn at random among the live ones when it fires.
    Random(u32),
}

/// Through whom a node joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// This node.
    Node(u32),
    /// A random live member, drawn when it fires.
    Random,
}

/// A partition shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Two random halves.
    Halves,
    /// One node (given or random) cut from everyone.
    Isolate(Option<u32>),
    /// A random minority (less than half) cut from the rest.
    Majority,
    /// Two random halves that only one bridge node still joins.
    Bridge,
    /// Explicit groups; nodes in no group form one more group.
    Groups(Vec<Vec<u32>>),
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// The process stops; peers see nothing.
    Crash(Target),
    /// The process dies; peers' connections reset at once.
    Kill(Target),
    /// The process stops processing, then resumes after `for` if given.
    Pause(Target, Option<Duration>),
    /// Paused nodes go on.
    Resume(Target),
    /// A new incarnation on the same address joins through `via`.
    Restart(Target, Via),
    /// A graceful leave.
    Leave(Target),
    /// New nodes join.
    Join(u32, Via),
    /// A partition, healed after `for` if given.
    Partition {
        /// Who is cut from whom.
        shape: Shape,
        /// Only the first group's messages to the others are lost.
        oneway: bool,
        /// Heal after this long.
        duration: Option<Duration>,
    },
    /// Every partition, clog, spike and loss burst ends.
    Heal,
    /// Extra latency on every link touching the nodes.
    Spike(Target, Duration, Duration),
    /// Extra loss on every link touching the nodes.
    Loss(Target, f64, Duration),
    /// Nodes turn hostile: besides what their own core sends, they inject
    /// malformed frames, bogus peer lists and replays on their links.
    Misbehave(Misbehave),
    /// Swizzle-clog: cut `n` random nodes one by one, `step` apart, then
    /// restore them one by one in random order after `hold`.
    Swizzle {
        /// How many nodes.
        count: u32,
        /// Time between two cuts (and between two restores).
        step: Duration,
        /// Time between the last cut and the first restore.
        hold: Duration,
    },
}

/// What a misbehaving node injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// Payloads that do not decode, and frames over the size limit.
    Malformed,
    /// Peer lists full of invented addresses and forged deaths and leaves
    /// of live nodes.
    BogusPeers,
    /// Messages it received earlier, sent again.
    Replay,
}

impl Mode {
    /// Every mode, in the order of [`MODE_NAMES`].
    pub const ALL: [Mode; 3] = [Mode::Malformed, Mode::BogusPeers, Mode::Replay];

    /// The name used in scenario files and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Malformed => "malformed",
            Mode::BogusPeers => "bogus-peers",
            Mode::Replay => "replay",
        }
    }
}

/// The mode names a scenario may list in `modes`: the names of
/// [`Mode::ALL`], in its order.
pub const MODE_NAMES: &[&str] = &{
    let mut names = [""; Mode::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Mode::ALL[i].name();
        i += 1;
    }
    names
};

/// A misbehaving-node fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Misbehave {
    /// Which nodes turn hostile.
    pub target: Target,
    /// How long (to the end of the run if `None`).
    pub duration: Option<Duration>,
    /// Hostile frames per second, per hostile node.
    pub rate: f64,
    /// What they inject (sorted, no repeats).
    pub modes: Vec<Mode>,
    /// Distinct invented addresses each hostile node draws its bogus peer
    /// lists from.
    pub addresses: u32,
}

/// A fault at a point in time.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// When it fires.
    pub at: Duration,
    /// What it does.
    pub kind: FaultKind,
}

/// Random fault mode: each seed draws its own schedule within these bounds.
#[derive(Debug, Clone)]
pub struct RandomSpec {
    /// Fewest and most faults.
    pub faults: (u32, u32),
    /// Kinds to draw from.
    pub kinds: Vec<String>,
    /// Faults start no earlier than this.
    pub start: Duration,
    /// Faults start before this.
    pub end: Duration,
    /// Shortest and longest fault.
    pub durations: (Duration, Duration),
}

/// The fault kinds random mode can draw.
pub const RANDOM_KINDS: &[&str] = &[
    "crash",
    "kill",
    "pause",
    "restart",
    "leave",
    "join",
    "partition",
    "oneway",
    "spike",
    "loss",
    "swizzle",
];

/// Kinds random mode draws only when `kinds` lists them.
pub const RANDOM_OPT_IN_KINDS: &[&str] = &["misbehave"];

/// Deadlines for the checks and which of them may fail.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    /// Initial nodes know every live member within this of their start.
    pub discovery_within: Duration,
    /// A joiner knows every live member within this of its join.
    pub join_within: Duration,
    /// A dead node is out of every live roster within this.
    pub detect_within: Duration,
    /// A message reaches every connected node within this.
    pub deliver_within: Duration,
    /// A node must have been up this long before a message is sent to be
    /// owed it.
    pub join_grace: Duration,
    /// Membership converges within this after the liveness phase starts.
    pub converge_within: Duration,
    /// Checks not run.
    pub skip: Vec<CheckId>,
    /// Checks expected to fail for now: reported, but not a failure.
    pub xfail: Vec<CheckId>,
    /// Checks this scenario claims to exercise: each must judge at least
    /// one case, or the run fails. `None` when the file does not say.
    pub judge: Option<Vec<CheckId>>,
}

// ---- durations -----------------------------------------------------------

/// Parses `"250ms"`, `"10s"`, `"1.5s"`, `"2m"`, `"1h"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration {s:?} has no unit (use ms, s, m or h)"))?;
    let (num, unit) = s.split_at(split);
    let scale = match unit.trim() {
        "ms" => 1.0,
        "s" => 1000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        u => {
            return Err(format!(
                "unknown duration unit {u:?} in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like \"250ms\" or \"10s\""))?;
    let ms = n * scale;
    if !(0.0..=1e15).contains(&ms) || ms.fract() != 0.0 {
        return Err(format!(
            "duration {s:?} is not a whole number of milliseconds"
        ));
    }
    Ok(Duration::from_millis(ms as u64))
}

#[derive(Debug, Clone, Copy)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, like \"250ms\" or \"10s\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                parse_duration(s).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

// ---- raw TOML shapes -----------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    #[serde(default)]
    description: String,
    duration: Spanned<Dur>,
    liveness: Option<Spanned<Dur>>,
    #[serde(default)]
    node: Option<Spanned<RawNode>>,
    nodes: Spanned<RawNodes>,
    #[serde(default)]
    network: Option<RawNetwork>,
    #[serde(default)]
    workload: Option<Spanned<RawWorkload>>,
    #[serde(default)]
    fault: Vec<Spanned<RawFault>>,
    random: Option<Spanned<RawRandom>>,
    #[serde(default)]
    checks: Option<Spanned<RawChecks>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    preset: Option<String>,
    max_connections: Option<usize>,
    ping_interval: Option<Dur>,
    missed_pings: Option<u32>,
    gossip_interval: Option<Dur>,
    gossip_fanout: Option<usize>,
    sync_interval: Option<Dur>,
    reconnect_interval: Option<Dur>,
    suspect_timeout: Option<Dur>,
    history_max: Option<usize>,
    gap_timeout: Option<Dur>,
    max_members: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNodes {
    count: u32,
    join: Option<String>,
    stagger: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawLatency {
    Constant(Dur),
    Dist(RawDist),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDist {
    dist: String,
    min: Option<Dur>,
    max: Option<Dur>,
    median: Option<Dur>,
    sigma: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    latency: Option<Spanned<RawLatency>>,
    ordered: Option<bool>,
    loss: Option<Spanned<f64>>,
    duplicate: Option<Spanned<f64>>,
    connect_timeout: Option<Dur>,
    #[serde(default)]
    link: Vec<Spanned<RawLink>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    #[serde(default)]
    from: Vec<u32>,
    #[serde(default)]
    to: Vec<u32>,
    latency: Option<Spanned<RawLatency>>,
    loss: Option<f64>,
    duplicate: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSenders {
    Word(String),
    Nodes(Vec<u32>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    #[serde(default)]
    rate: f64,
    senders: Option<Spanned<RawSenders>>,
    start: Option<Dur>,
    stop: Option<Dur>,
    text_len: Option<usize>,
    #[serde(default)]
    send: Vec<Spanned<RawSend>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSend {
    at: Dur,
    from: u32,
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawVia {
    Node(u32),
    Word(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    at: Dur,
    kind: String,
    nodes: Option<Vec<u32>>,
    node: Option<u32>,
    count: Option<u32>,
    via: Option<RawVia>,
    #[serde(rename = "for")]
    for_: Option<Dur>,
    shape: Option<String>,
    groups: Option<Vec<Vec<u32>>>,
    oneway: Option<bool>,
    extra: Option<Dur>,
    rate: Option<f64>,
    step: Option<Dur>,
    hold: Option<Dur>,
    modes: Option<Vec<String>>,
    addresses: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRandom {
    faults: [u32; 2],
    kinds: Option<Vec<String>>,
    start: Dur,
    end: Dur,
    durations: Option<[Dur; 2]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChecks {
    discovery_within: Option<Dur>,
    join_within: Option<Dur>,
    detect_within: Option<Dur>,
    deliver_within: Option<Dur>,
    join_grace: Option<Dur>,
    converge_within: Option<Dur>,
    #[serde(default)]
    skip: Vec<String>,
    #[serde(default)]
    xfail: Vec<String>,
    judge: Option<Vec<String>>,
}

// ---- loading -------------------------------------------------------------

/// Reads and validates a scenario file.
pub fn load(path: &str) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_string(),
        line: None,
        message: format!("cannot read: {e}"),
    })?;
    parse(path, &text)
}

/// Validates scenario text; `path` names it in errors and replay commands.
pub fn parse(path: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let err = |span: Option<Range<usize>>, message: String| ScenarioError {
        file: path.to_string(),
        line: span.map(|s| line_of(text, s.start)),
        message,
    };
    let raw: RawScenario = toml::from_str(text).map_err(|e| err(e.span(), e.message().into()))?;
    let stem = std::path::Path::new(path).file_stem().map_or_else(
        || "scenario".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let duration = raw.duration.get_ref().0;
    let liveness = raw
        .liveness
        .as_ref()
        .map_or(Duration::ZERO, |d| d.get_ref().0);
    if duration.as_millis() == 0 {
        return Err(err(
            Some(raw.duration.span()),
            "duration must be more than 0".into(),
        ));
    }
    if liveness >= duration {
        let span = raw.liveness.as_ref().map(|l| l.span());
        return Err(err(span, "liveness must be shorter than duration".into()));
    }

    // Core config.
    let mut config = Config::lan();
    if let Some(n) = &raw.node {
        let span = Some(n.span());
        let n = n.get_ref();
        config = match n.preset.as_deref() {
            None | Some("lan") => Config::lan(),
            Some("testing") => Config::testing(),
            Some(p) => return Err(err(span, format!("unknown preset {p:?} (lan or testing)"))),
        };
        let set_d = |d: &Option<Dur>, f: &mut Duration| {
            if let Some(d) = d {
                *f = d.0;
            }
        };
        if let Some(v) = n.max_connections {
            config.max_connections = v;
        }
        if let Some(v) = n.missed_pings {
            config.missed_pings = v;
        }
        if let Some(v) = n.gossip_fanout {
            config.gossip_fanout = v;
        }
        if let Some(v) = n.max_members {
            config.max_members = v;
        }
        if let Some(v) = n.history_max {
            config.history_max = v;
            config.newcomer_history = config.newcomer_history.min(v);
        }
        set_d(&n.ping_interval, &mut config.ping_interval);
        set_d(&n.gossip_interval, &mut config.gossip_interval);
        set_d(&n.sync_interval, &mut config.sync_interval);
        set_d(&n.reconnect_interval, &mut config.reconnect_interval);
        set_d(&n.suspect_timeout, &mut config.suspect_timeout);
        set_d(&n.gap_timeout, &mut config.gap_timeout);
        config
            .validate()
            .map_err(|e| err(span.clone(), format!("[node]: {e}")))?;
    }

    // Nodes.
    let nspan = Some(raw.nodes.span());
    let rn = raw.nodes.get_ref();
    if rn.count == 0 || rn.count > 100_000 {
        return Err(err(nspan, "nodes.count must be 1..=100000".into()));
    }
    let join = match rn.join.as_deref() {
        None | Some("random") => InitialJoin::Random,
        Some("first") => InitialJoin::First,
        Some("chain") => InitialJoin::Chain,
        Some(j) => {
            return Err(err(
                nspan,
                format!("nodes.join {j:?} must be \"random\", \"first\" or \"chain\""),
            ))
        }
    };
    let nodes = Nodes {
        count: rn.count,
        join,
        stagger: rn.stagger.map_or(Duration::from_millis(10), |d| d.0),
    };
    let count = rn.count;

    // Faults first: joins add node slots that later faults may name.
    let mut slots = count;
    let mut faults = Vec::new();
    let mut raw_faults: Vec<&Spanned<RawFault>> = raw.fault.iter().collect();
    raw_faults.sort_by_key(|f| f.get_ref().at.0);
    for f in raw_faults {
        let span = Some(f.span());
        let fault = fault_from_raw(f.get_ref(), &mut slots).map_err(|m| err(span.clone(), m))?;
        if fault.at >= duration {
            return Err(err(span, "fault is at or after the end of the run".into()));
        }
        faults.push(fault);
    }
    // Node indices must exist by the end (joins add slots in order).
    let check_nodes = |list: &[u32], what: &str| -> Result<(), String> {
        match list.iter().find(|n| **n >= slots) {
            Some(n) => Err(format!(
                "{what}: node {n} does not exist ({slots} nodes in this scenario)"
            )),
            None => Ok(()),
        }
    };
    for (f, raw) in faults.iter().zip(sorted_spans(&raw.fault)) {
        let list: Vec<u32> = match &f.kind {
            FaultKind::Crash(Target::Nodes(n))
            | FaultKind::Kill(Target::Nodes(n))
            | FaultKind::Pause(Target::Nodes(n), _)
            | FaultKind::Resume(Target::Nodes(n))
            | FaultKind::Restart(Target::Nodes(n), _)
            | FaultKind::Leave(Target::Nodes(n))
            | FaultKind::Spike(Target::Nodes(n), _, _)
            | FaultKind::Loss(Target::Nodes(n), _, _)
            | FaultKind::Misbehave(Misbehave {
                target: Target::Nodes(n),
                ..
            }) => n.clone(),
            FaultKind::Partition {
                shape: Shape::Groups(g),
                ..
            } => g.iter().flatten().copied().collect(),
            FaultKind::Partition {
                shape: Shape::Isolate(Some(n)),
                ..
            } => vec![*n],
            _ => Vec::new(),
        };
        let mut list = list;
        match &f.kind {
            FaultKind::Restart(_, Via::Node(v)) | FaultKind::Join(_, Via::Node(v)) => list.push(*v),
            _ => {}
        }
        check_nodes(&list, "fault").map_err(|m| err(Some(raw.clone()), m))?;
    }

    // Network.
    let net = raw.network.unwrap_or(RawNetwork {
        latency: None,
        ordered: None,
        loss: None,
        duplicate: None,
        connect_timeout: None,
        link: Vec::new(),
    });
    let prob = |p: &Option<Spanned<f64>>, name: &str| -> Result<f64, ScenarioError> {
        match p {
            None => Ok(0.0),
            Some(s) if (0.0..=1.0).contains(s.get_ref()) => Ok(*s.get_ref()),
            Some(s) => Err(err(
                Some(s.span()),
                format!("network.{name} must be a probability in 0..=1"),
            )),
        }
    };
    let latency = match &net.latency {
        None => Latency::Constant(Duration::from_millis(5)),
        Some(l) => latency_from_raw(l.get_ref()).map_err(|m| err(Some(l.span()), m))?,
    };
    let mut links = Vec::new();
    for l in &net.link {
        let span = Some(l.span());
        let r = l.get_ref();
        let ok_p = |p: Option<f64>| p.is_none_or(|p| (0.0..=1.0).contains(&p));
        if !ok_p(r.loss) || !ok_p(r.duplicate) {
            return Err(err(span, "link loss/duplicate must be in 0..=1".into()));
        }
        check_nodes(&r.from, "link.from").map_err(|m| err(span.clone(), m))?;
        check_nodes(&r.to, "link.to").map_err(|m| err(span.clone(), m))?;
        let latency = match &r.latency {
            None => None,
            Some(l) => Some(latency_from_raw(l.get_ref()).map_err(|m| err(Some(l.span()), m))?),
        };
        links.push(LinkOverride {
            from: r.from.clone(),
            to: r.to.clone(),
            latency,
            loss: r.loss,
            duplicate: r.duplicate,
        });
    }
    let network = NetSpec {
        latency,
        ordered: net.ordered.unwrap_or(true),
        loss: prob(&net.loss, "loss")?,
        duplicate: prob(&net.duplicate, "duplicate")?,
        connect_timeout: net.connect_timeout.map_or(Duration::from_secs(1), |d| d.0),
        links,
    };

    // Checks.
    let mut checks = CheckSpec {
        discovery_within: Duration::from_secs(5),
        join_within: Duration::from_secs(3),
        detect_within: Duration::from_secs(10),
        deliver_within: Duration::from_secs(5),
        join_grace: Duration::from_secs(2),
        converge_within: Duration::from_secs(20),
        skip: Vec::new(),
        xfail: Vec::new(),
        judge: None,
    };
    if let Some(c) = &raw.checks {
        let span = Some(c.span());
        let c = c.get_ref();
        let set = |d: &Option<Dur>, f: &mut Duration| {
            if let Some(d) = d {
                *f = d.0;
            }
        };
        set(&c.discovery_within, &mut checks.discovery_within);
        set(&c.join_within, &mut checks.join_within);
        set(&c.detect_within, &mut checks.detect_within);
        set(&c.deliver_within, &mut checks.deliver_within);
        set(&c.join_grace, &mut checks.join_grace);
        set(&c.converge_within, &mut checks.converge_within);
        let ids = |names: &[String]| -> Result<Vec<CheckId>, ScenarioError> {
            names
                .iter()
                .map(|name| {
                    CheckId::from_name(name).ok_or_else(|| {
                        err(
                            span.clone(),
                            format!("unknown check {name:?} (one of {})", CheckId::names()),
                        )
                    })
                })
                .collect()
        };
        checks.skip = ids(&c.skip)?;
        checks.xfail = ids(&c.xfail)?;
        checks.judge = c.judge.as_deref().map(&ids).transpose()?;
    }

    // Workload.
    let workload = match raw.workload {
        None => Workload {
            rate: 0.0,
            senders: Senders::All,
            start: Duration::ZERO,
            stop: duration,
            text_len: 32,
            sends: Vec::new(),
        },
        Some(w) => {
            let wspan = Some(w.span());
            let w = w.into_inner();
            if !(0.0..=100_000.0).contains(&w.rate) {
                return Err(err(wspan, "workload.rate must be in 0..=100000".into()));
            }
            let senders = match &w.senders {
                None => Senders::All,
                Some(s) => match s.get_ref() {
                    RawSenders::Word(w) if w == "all" => Senders::All,
                    RawSenders::Word(w) => {
                        return Err(err(
                            Some(s.span()),
                            format!("workload.senders {w:?}: use \"all\" or a list of nodes"),
                        ))
                    }
                    RawSenders::Nodes(n) => {
                        check_nodes(n, "workload.senders").map_err(|m| err(Some(s.span()), m))?;
                        if n.is_empty() {
                            return Err(err(Some(s.span()), "workload.senders is empty".into()));
                        }
                        Senders::Nodes(n.clone())
                    }
                },
            };
            // By default traffic stops early enough for every message to
            // be judged before the end.
            let default_stop = Duration::from_millis(
                duration
                    .as_millis()
                    .saturating_sub(checks.deliver_within.as_millis())
                    .saturating_sub(liveness.as_millis() / 2),
            );
            let mut sends = Vec::new();
            for s in &w.send {
                let r = s.get_ref();
                check_nodes(&[r.from], "workload.send").map_err(|m| err(Some(s.span()), m))?;
                if r.at.0 >= duration {
                    return Err(err(
                        Some(s.span()),
                        "send is after the end of the run".into(),
                    ));
                }
                sends.push(TimedSend {
                    at: r.at.0,
                    from: r.from,
                    text: r
                        .text
                        .clone()
                        .unwrap_or_else(|| format!("hello from n{}", r.from)),
                });
            }
            sends.sort_by_key(|s| s.at);
            let text_len = w.text_len.unwrap_or(32);
            if text_len == 0 || text_len > config.max_text_len {
                return Err(err(
                    wspan,
                    format!("workload.text_len must be 1..={}", config.max_text_len),
                ));
            }
            Workload {
                rate: w.rate,
                senders,
                start: w.start.map_or(Duration::from_secs(2), |d| d.0),
                stop: w.stop.map_or(default_stop, |d| d.0),
                text_len,
                sends,
            }
        }
    };

    let random = match &raw.random {
        None => None,
        Some(r) => {
            let span = Some(r.span());
            let g = r.get_ref();
            let kinds = g
                .kinds
                .clone()
                .unwrap_or_else(|| RANDOM_KINDS.iter().map(|s| s.to_string()).collect());
            let known = |k: &str| RANDOM_KINDS.contains(&k) || RANDOM_OPT_IN_KINDS.contains(&k);
            if let Some(k) = kinds.iter().find(|k| !known(k)) {
                return Err(err(
                    span,
                    format!(
                        "random.kinds: unknown kind {k:?} (one of {}, {})",
                        RANDOM_KINDS.join(", "),
                        RANDOM_OPT_IN_KINDS.join(", ")
                    ),
                ));
            }
            if kinds.is_empty() || g.faults[0] > g.faults[1] || g.start.0 >= g.end.0 {
                return Err(err(
                    span,
                    "random: need kinds, faults = [min, max] with min <= max, start < end".into(),
                ));
            }
            let durations = g.durations.map_or(
                (Duration::from_secs(1), Duration::from_secs(10)),
                |[a, b]| (a.0, b.0),
            );
            if durations.0 > durations.1 {
                return Err(err(span, "random.durations: min > max".into()));
            }
            if liveness.as_millis() == 0 {
                return Err(err(
                    span,
                    "random mode needs a liveness phase (liveness = \"30s\")".into(),
                ));
            }
            if (g.end.0 + durations.1).as_millis() > duration.as_millis() - liveness.as_millis() {
                return Err(err(
                    span,
                    "random: faults (end + longest duration) must be over before the liveness phase"
                        .into(),
                ));
            }
            Some(RandomSpec {
                faults: (g.faults[0], g.faults[1]),
                kinds,
                start: g.start.0,
                end: g.end.0,
                durations,
            })
        }
    };

    Ok(Scenario {
        path: path.to_string(),
        name: raw.name.unwrap_or(stem),
        description: raw.description,
        duration,
        liveness,
        config,
        nodes,
        network,
        workload,
        faults,
        random,
        checks,
    })
}

fn sorted_spans(faults: &[Spanned<RawFault>]) -> Vec<Range<usize>> {
    let mut v: Vec<&Spanned<RawFault>> = faults.iter().collect();
    v.sort_by_key(|f| f.get_ref().at.0);
    v.iter().map(|f| f.span()).collect()
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn latency_from_raw(l: &RawLatency) -> Result<Latency, String> {
    match l {
        RawLatency::Constant(d) => Ok(Latency::Constant(d.0)),
        RawLatency::Dist(d) => match d.dist.as_str() {
            "constant" => Ok(Latency::Constant(
                d.min.ok_or("constant latency needs min")?.0,
            )),
            "uniform" => {
                let (min, max) = (
                    d.min.ok_or("uniform latency needs min")?.0,
                    d.max.ok_or("uniform latency needs max")?.0,
                );
                if min > max {
                    return Err("uniform latency: min > max".into());
                }
                Ok(Latency::Uniform(min, max))
            }
            "lognormal" => {
                let median = d.median.ok_or("lognormal latency needs median")?.0;
                let sigma = d.sigma.unwrap_or(1.0);
                if !(0.0..=4.0).contains(&sigma) {
                    return Err("lognormal sigma must be in 0..=4".into());
                }
                let max = d
                    .max
                    .map_or(Duration::from_millis(median.as_millis() * 100), |d| d.0);
                Ok(Latency::LogNormal { median, sigma, max })
            }
            other => Err(format!(
                "unknown latency dist {other:?} (constant, uniform or lognormal)"
            )),
        },
    }
}

fn target(f: &RawFault) -> Target {
    match (&f.nodes, f.node) {
        (Some(n), _) => Target::Nodes(n.clone()),
        (None, Some(n)) => Target::Nodes(vec![n]),
        (None, None) => Target::Random(f.count.unwrap_or(1)),
    }
}

fn via(f: &RawFault) -> Result<Via, String> {
    match &f.via {
        None => Ok(Via::Random),
        Some(RawVia::Node(n)) => Ok(Via::Node(*n)),
        Some(RawVia::Word(w)) if w == "random" => Ok(Via::Random),
        Some(RawVia::Word(w)) => Err(format!("via {w:?}: use a node index or \"random\"")),
    }
}

/// Default hostile frames per second per misbehaving node.
pub const MISBEHAVE_RATE: f64 = 20.0;
/// Default number of invented addresses per misbehaving node.
pub const MISBEHAVE_ADDRESSES: u32 = 256;

fn misbehave(f: &RawFault) -> Result<Misbehave, String> {
    let rate = f.rate.unwrap_or(MISBEHAVE_RATE);
    if !(rate > 0.0 && rate <= 1000.0) {
        return Err(format!(
            "misbehave.rate {rate}: hostile frames per second must be in (0, 1000]"
        ));
    }
    let modes = match &f.modes {
        None => Mode::ALL.to_vec(),
        Some(names) => {
            let mut modes = Vec::new();
            for n in names {
                let m = Mode::ALL
                    .into_iter()
                    .find(|m| m.name() == n)
                    .ok_or_else(|| {
                        format!(
                            "misbehave.modes: unknown mode {n:?} (one of {})",
                            MODE_NAMES.join(", ")
                        )
                    })?;
                modes.push(m);
            }
            modes.sort_unstable();
            modes.dedup();
            if modes.is_empty() {
                return Err(format!(
                    "misbehave.modes is empty (list some of {}, or leave it out for all)",
                    MODE_NAMES.join(", ")
                ));
            }
            modes
        }
    };
    let addresses = f.addresses.unwrap_or(MISBEHAVE_ADDRESSES);
    if addresses == 0 || addresses > 100_000 {
        return Err(format!(
            "misbehave.addresses {addresses} must be 1..=100000"
        ));
    }
    Ok(Misbehave {
        target: target(f),
        duration: f.for_.map(|d| d.0),
        rate,
        modes,
        addresses,
    })
}

fn fault_from_raw(f: &RawFault, slots: &mut u32) -> Result<Fault, String> {
    let need =
        |d: Option<Dur>, what: &str| d.map(|d| d.0).ok_or(format!("{} needs {what}", f.kind));
    let kind = match f.kind.as_str() {
        "crash" => FaultKind::Crash(target(f)),
        "kill" => FaultKind::Kill(target(f)),
        "pause" => FaultKind::Pause(target(f), f.for_.map(|d| d.0)),
        "resume" => FaultKind::Resume(target(f)),
        "restart" => FaultKind::Restart(target(f), via(f)?),
        "leave" => FaultKind::Leave(target(f)),
        "join" => {
            let n = f.count.unwrap_or(1);
            if n == 0 || n > 100_000 {
                return Err("join count must be 1..=100000".into());
            }
            *slots += n;
            FaultKind::Join(n, via(f)?)
        }
        "partition" => {
            let shape = match (f.shape.as_deref(), &f.groups) {
                (None, Some(g)) | (Some("groups"), Some(g)) => {
                    if g.is_empty() {
                        return Err("partition groups are empty".into());
                    }
                    Shape::Groups(g.clone())
                }
                (Some("halves"), None) | (None, None) => Shape::Halves,
                (Some("isolate"), None) => Shape::Isolate(f.node),
                (Some("majority"), None) => Shape::Majority,
                (Some("bridge"), None) => Shape::Bridge,
                (Some(s), _) => {
                    return Err(format!(
                        "partition shape {s:?}: halves, isolate, majority, bridge, or groups = [[..], ..]"
                    ))
                }
            };
            FaultKind::Partition {
                shape,
                oneway: f.oneway.unwrap_or(false),
                duration: f.for_.map(|d| d.0),
            }
        }
        "heal" => FaultKind::Heal,
        "spike" => FaultKind::Spike(target(f), need(f.extra, "extra")?, need(f.for_, "for")?),
        "loss" => {
            let rate = f.rate.ok_or("loss needs rate")?;
            if !(0.0..=1.0).contains(&rate) {
                return Err("loss rate must be in 0..=1".into());
            }
            FaultKind::Loss(target(f), rate, need(f.for_, "for")?)
        }
        "swizzle" => FaultKind::Swizzle {
            count: f.count.unwrap_or(3),
            step: f.step.map_or(Duration::from_millis(500), |d| d.0),
            hold: f.hold.map_or(Duration::from_secs(5), |d| d.0),
        },
        "misbehave" => FaultKind::Misbehave(misbehave(f)?),
        k => {
            return Err(format!(
                "unknown fault kind {k:?} (crash, kill, pause, resume, restart, leave, join, partition, heal, spike, loss, swizzle, misbehave)"
            ))
        }
    };
    Ok(Fault { at: f.at.0, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10 parsecs").is_err());
    }

    #[test]
    fn errors_name_the_line() {
        let text = "duration = \"10s\"\n[nodes]\ncount = 3\n\n[[fault]]\nat = \"1s\"\nkind = \"explode\"\n";
        let e = parse("x.toml", text).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("explode"), "{e}");
        let e = parse(
            "x.toml",
            "duration = \"10s\"\n[nodes]\ncount = 3\ncolour = 1\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        let e = parse("x.toml", "duration = \"10\"\n[nodes]\ncount = 3\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.to_string().starts_with("x.toml:1: "), "{e}");
    }

    #[test]
    fn fault_nodes_must_exist() {
        let text = "duration = \"10s\"\n[nodes]\ncount = 3\n[[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = 7\n";
        let e = parse("x.toml", text).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("node 7"), "{e}");
    }
}
