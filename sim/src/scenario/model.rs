//! The validated scenario: what a run is made of, with every default filled
//! in and every node index checked.

use crate::check_id::CheckId;
use gossip_chat::{Config, Duration};
use std::fmt;

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
    /// This many nodes drawn at random among those down for good (crashed,
    /// killed or left) when it fires; among the live ones if none is
    /// (random mode's restarts).
    Down(u32),
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
    /// Two random halves that only one bridge node (given or random)
    /// still joins.
    Bridge(Option<u32>),
    /// Explicit groups; nodes in no group form one more group. A node
    /// named in several groups reaches each of them.
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
    /// Every partition, clog, spike, loss burst and link fault ends.
    Heal,
    /// Extra latency on every link touching the nodes.
    Spike(Target, Duration, Duration),
    /// Extra loss on every link touching the nodes (or only on those into
    /// them), for a while.
    Loss(LossBurst),
    /// Loss (1.0: a cut) on the link between two nodes, healed after `for`
    /// if given.
    Link(LinkFault),
    /// Nodes handle every input late (a starved CPU), for a while.
    Slow(Slow),
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
    /// A stranger: the node lacks the cluster key, so every connection
    /// between it and a member is refused at the handshake (as the TCP
    /// adapter's does), and the links it had are cut. It injects nothing.
    NoKey,
    /// Chats (and repair batches of them) claiming to be a live honest
    /// member's next message, signed by the hostile node: with its own key,
    /// or with the member's public key and a signature that does not match.
    ForgeChat,
    /// Forged chats (as [`Mode::ForgeChat`]) at a seq far past the
    /// member's frontier, up to the largest a node accepts.
    FarSeq,
    /// Hellos on new connections to honest nodes that name another live
    /// member (the handshake proved the hostile node's id), or the hostile
    /// node's own id with another member's address.
    Impersonate,
    /// Peer lists of forged state of live honest members, none signed by
    /// the member: a later life or version (up to just under the ceiling,
    /// which would mute it), another address or name, a departure, or a
    /// death at a version the member never signed.
    ForgeState,
}

impl Mode {
    /// Every mode, in the order of [`MODE_NAMES`].
    pub const ALL: [Mode; 8] = [
        Mode::Malformed,
        Mode::BogusPeers,
        Mode::Replay,
        Mode::NoKey,
        Mode::ForgeChat,
        Mode::FarSeq,
        Mode::Impersonate,
        Mode::ForgeState,
    ];

    /// The modes a misbehave fault that lists no `modes` uses (the others
    /// run only when listed).
    pub const INJECTING: [Mode; 3] = [Mode::Malformed, Mode::BogusPeers, Mode::Replay];

    /// The name used in scenario files and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Malformed => "malformed",
            Mode::BogusPeers => "bogus-peers",
            Mode::Replay => "replay",
            Mode::NoKey => "no-key",
            Mode::ForgeChat => "forge-chat",
            Mode::FarSeq => "far-seq",
            Mode::Impersonate => "impersonate",
            Mode::ForgeState => "forge-state",
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

/// A slow-node fault: the targets handle every input (messages,
/// connection events, their own timeouts) late by a delay, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Slow {
    /// Which nodes.
    pub target: Target,
    /// How long they stay slow.
    pub duration: Duration,
    /// Shortest and longest delay; each node draws its own in between.
    pub delay: (Duration, Duration),
}

/// The longest delay a slow node may take over an input.
pub const MAX_SLOW_DELAY: Duration = Duration::from_secs(60);

/// A loss fault on every link touching some nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct LossBurst {
    /// Which nodes.
    pub target: Target,
    /// Probability that a message on one of their links is lost.
    pub rate: f64,
    /// How long.
    pub duration: Duration,
    /// Only the links into the nodes (their own messages get through).
    pub inbound: bool,
    /// Whether `no_false_removal` excuses removals under it.
    pub excused: bool,
}

/// A fault on one link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkFault {
    /// One end.
    pub from: u32,
    /// The other end.
    pub to: u32,
    /// Only `from`'s messages to `to` are hit.
    pub oneway: bool,
    /// Probability that a message on the link is lost (1.0: cut).
    pub loss: f64,
    /// Heal after this long.
    pub duration: Option<Duration>,
    /// Whether `no_false_removal` excuses removals under it.
    pub excused: bool,
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
pub const RANDOM_OPT_IN_KINDS: &[&str] = &["misbehave", "slow"];

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

/// Default hostile frames per second per misbehaving node.
pub const MISBEHAVE_RATE: f64 = 20.0;
/// Default number of invented addresses per misbehaving node.
pub const MISBEHAVE_ADDRESSES: u32 = 256;
