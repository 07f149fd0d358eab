//! The report of one run: checks with their figures, traffic, latencies,
//! the fault schedule and the trace fingerprint. Rendered as a table or as
//! JSON.

use serde::Serialize;
use std::fmt::Write as _;

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Held.
    Pass,
    /// Did not hold.
    Fail,
    /// Judged nothing (nothing to judge in this run, or skipped by the
    /// scenario): printed `n/a`, never `ok`. The figure says why.
    Skip,
    /// Failed, as the scenario expects for now.
    Xfail,
    /// Held although expected to fail.
    Xpass,
}

impl Status {
    /// Whether the run counts as failed because of it.
    pub fn failed(self) -> bool {
        self == Status::Fail
    }
    fn word(self) -> &'static str {
        match self {
            Status::Pass => "ok",
            Status::Fail => "FAIL",
            Status::Skip => "n/a",
            Status::Xfail => "xfail",
            Status::Xpass => "xpass",
        }
    }
}

/// What kind of property a check is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A safety property: it must hold at every moment of the run.
    Always,
    /// A liveness property: it must come true within a deadline.
    Eventually,
}

impl Kind {
    /// `always` or `eventually`.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Always => "always",
            Kind::Eventually => "eventually",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.word())
    }
}

/// One named, typed check with its figure.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// Safety or liveness (serialized `"always"` / `"eventually"`).
    pub kind: Kind,
    /// The verdict.
    pub status: Status,
    /// What was measured.
    pub figure: String,
    /// Cases judged.
    pub judged: u64,
    /// Cases that failed.
    pub failed: u64,
    /// A few failing cases.
    pub examples: Vec<String>,
}

/// Percentiles of a sample in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Pct {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: u32,
    /// 99th percentile.
    pub p99: u32,
    /// Largest.
    pub max: u32,
}

impl Pct {
    /// Percentiles of `v`.
    pub fn of(v: &[u32]) -> Pct {
        if v.is_empty() {
            return Pct::default();
        }
        let mut s = v.to_vec();
        s.sort_unstable();
        let at = |q: f64| s[((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1];
        Pct {
            n: s.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: s[s.len() - 1],
        }
    }

    /// `p50 12ms / p99 30ms / max 41ms`, or `n/a`.
    pub fn short(&self) -> String {
        if self.n == 0 {
            "n/a".into()
        } else {
            format!(
                "p50 {}ms / p99 {}ms / max {}ms",
                self.p50, self.p99, self.max
            )
        }
    }
}

/// Traffic of one message kind.
#[derive(Clone, Debug, Serialize)]
pub struct KindTraffic {
    /// Message kind.
    pub kind: String,
    /// Messages per node per second.
    pub msgs_per_node_s: f64,
    /// Bytes per node per second (frames, length prefix included).
    pub bytes_per_node_s: f64,
}

/// How the report shows a figure a run could not measure (a real run
/// cannot count messages by kind, say): never as 0.
pub const NOT_MEASURED: &str = "n/a (not measured in a real run)";

/// Everything measured, besides the checks. A figure that is `None` was
/// not measured (a real run): it is left out of the JSON and shown as
/// [`NOT_MEASURED`] in the table. The simulator measures every one.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// Messages sent per node per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msgs_per_node_s: Option<f64>,
    /// Bytes sent per node per second.
    pub bytes_per_node_s: f64,
    /// Membership and heartbeat bytes per node per second (hello, join,
    /// peers, ping, pong, sync, leave, bye).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_bytes_per_node_s: Option<f64>,
    /// Repair bytes per node per second (digest, history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_bytes_per_node_s: Option<f64>,
    /// By kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_kind: Option<Vec<KindTraffic>>,
    /// Chat copies sent on the wire per chat delivered to a user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copies_per_delivery: Option<f64>,
    /// Messages of every kind sent between nodes (payloads, announcements,
    /// membership, heartbeats, probes, repair), over the whole run, per
    /// chat message a user sent: the figure Maelstrom's broadcast
    /// challenge counts. Reaching `n` nodes without batching takes at
    /// least `n - 1` per chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msgs_per_chat: Option<f64>,
    /// The same messages counted as writes: the frames a node hands one
    /// connection at once (in one step) leave in one write of the TCP
    /// adapter, one segment when they are small, so they are one message
    /// on the network. Per chat message a user sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes_per_chat: Option<f64>,
    /// Messages of every kind per chat sent while chat flows: those sent
    /// from the first chat a user sent to the last, per chat sent after
    /// the first. The forming of the group before and the quiet after are
    /// left out: the cost of chat in a group that has formed (None with
    /// fewer than two chats sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msgs_per_chat_flowing: Option<f64>,
    /// The same as writes (see `writes_per_chat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes_per_chat_flowing: Option<f64>,
    /// Hops to the last node: for each chat that reached another node, the
    /// most links it crossed to reach any node (its first copy there), as
    /// p50/p99/max over the chats (counts, not milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_hop: Option<Pct>,
    /// Chat messages sent by users.
    pub chats_sent: usize,
    /// Chat deliveries to users (own messages excluded).
    pub deliveries: u64,
    /// Delivery latency.
    pub delivery_ms: Pct,
    /// Time from a crash, kill or pause to its removal at each observer.
    pub detection_ms: Pct,
    /// Time from a graceful leave to its removal at each observer.
    pub leave_ms: Pct,
    /// Time for a joiner to know every live member.
    pub join_ms: Pct,
    /// Largest table sizes seen at any node.
    pub max_tables: MaxTables,
    /// Most events queued at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_queue: Option<usize>,
    /// Member and stream tables of the up nodes at the end, against how
    /// many nodes are up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_tables: Option<EndTables>,
    /// Repair bytes (digest, history) per node per second, minute by
    /// minute.
    pub repair_trend: crate::minutes::MinuteTrend,
    /// Bytes of every kind per node per second, minute by minute: in a
    /// long idle run, the first minute is what forming the group cost and
    /// the last what it costs once settled.
    pub traffic_trend: crate::minutes::MinuteTrend,
    /// Messages some owed node never got at the end of the liveness phase,
    /// and how many of them no live node still held in its history (only
    /// with a liveness phase).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<Missing>,
    /// What misbehaving nodes injected and what honest nodes refused (only
    /// when a node misbehaved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub misbehave: Option<crate::hostile::Tally>,
}

/// The up nodes' tables at the end of a run.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct EndTables {
    /// Honest nodes up at the end.
    pub live: usize,
    /// Largest member table (alive and remembered dead) among them.
    pub members_max: usize,
    /// Mean member table.
    pub members_mean: f64,
    /// Largest stream table.
    pub streams_max: usize,
    /// Joiners (and restarted nodes) up at the end.
    pub newcomers: usize,
    /// Most members a newcomer holds beyond the nodes up and the
    /// departures since it started: deaths older than the newcomer that it
    /// was handed (zero when no old death is brought back).
    pub newcomer_old_members_max: usize,
    /// Times they stopped hearing the leader's overlay beacons and put
    /// their lazy links back on the tree, in all.
    pub overlay_mends: u64,
    /// Times they still heard none after that and dialled the leader (a
    /// part of the overlay cut off from it), in all.
    pub overlay_dials: u64,
    /// Times a member others accused, which they had just reached
    /// themselves, was dialled to join two parts of the overlay, in all.
    pub bridge_dials: u64,
    /// Times a ring predecessor failed and the member after it dialled
    /// the next live one to bridge the gap, in all.
    pub ring_dials: u64,
    /// Times a probed member's newer beacons or differing chat showed the
    /// prober it was in another part of the overlay, and the prober
    /// dialled it, in all.
    pub beacon_dials: u64,
    /// Times a node deeper on the tree than the roster's size needs
    /// dialled its grandparent as a shortcut, in all.
    pub shortcut_dials: u64,
}

/// Messages missing at the end of the liveness phase.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Missing {
    /// Messages some live node was owed and never got.
    pub msgs: u64,
    /// Of those, the ones evicted from every live node's history before
    /// every node had them.
    pub evicted: u64,
}

/// Largest table sizes.
#[derive(Clone, Debug, Serialize)]
pub struct MaxTables {
    /// Members known.
    pub members: usize,
    /// Open connections.
    pub connections: usize,
    /// Neighbours.
    pub neighbours: usize,
    /// Chat streams.
    pub streams: usize,
    /// Held-back messages.
    pub held: usize,
    /// History kept.
    pub history: usize,
    /// Inputs queued for a paused node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_queue: Option<usize>,
}

/// The report of one run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub file: String,
    /// Seed.
    pub seed: u64,
    /// Initial nodes.
    pub nodes: u32,
    /// Node slots (initial plus joiners).
    pub slots: usize,
    /// Virtual seconds simulated.
    pub virtual_s: f64,
    /// Events processed.
    pub events: u64,
    /// Hash of the event stream: equal fingerprints, same run.
    pub fingerprint: String,
    /// The fault schedule as run (drawn per seed in random mode).
    pub faults: Vec<String>,
    /// The checks.
    pub checks: Vec<CheckResult>,
    /// The figures.
    pub figures: Figures,
    /// Wall-clock milliseconds (set by the command line; never part of the
    /// fingerprint).
    pub wall_ms: Option<u64>,
    /// Whether every check held.
    pub passed: bool,
}

impl Report {
    /// The check named `name`, if the run has one.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        format!(
            "cargo run --release --bin sim -- {} --seed {}",
            self.file, self.seed
        )
    }

    /// The readable table.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scenario {} (seed {}): {} nodes ({} slots), {:.1} virtual s, {} events, fingerprint {}",
            self.scenario, self.seed, self.nodes, self.slots, self.virtual_s, self.events, self.fingerprint
        );
        if let Some(w) = self.wall_ms {
            let _ = writeln!(s, "wall time {:.2} s", w as f64 / 1000.0);
        }
        if !self.faults.is_empty() {
            let _ = writeln!(s, "faults:");
            for f in &self.faults {
                let _ = writeln!(s, "  {f}");
            }
        }
        let _ = writeln!(s, "checks:");
        let w = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            let _ = writeln!(
                s,
                "  {:<5} {:<w$}  {:<10}  {}",
                c.status.word(),
                c.name,
                c.kind,
                c.figure
            );
            if c.status != Status::Pass {
                for e in &c.examples {
                    let _ = writeln!(s, "          - {e}");
                }
            }
        }
        let unjudged: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Skip)
            .map(|c| c.name.as_str())
            .collect();
        if !unjudged.is_empty() {
            let _ = writeln!(s, "  judged nothing: {}", unjudged.join(", "));
        }
        let f = &self.figures;
        let _ = writeln!(s, "figures:");
        match (
            f.msgs_per_node_s,
            f.idle_bytes_per_node_s,
            f.repair_bytes_per_node_s,
        ) {
            (Some(m), Some(idle), Some(repair)) => {
                let _ = writeln!(
                    s,
                    "  traffic        {:.1} msgs/s and {:.0} B/s per node (idle {:.0} B/s, repair {:.0} B/s)",
                    m, f.bytes_per_node_s, idle, repair
                );
            }
            (m, idle, repair) => {
                let mut known = Vec::new();
                let mut unknown = Vec::new();
                if let Some(m) = m {
                    known.push(format!("{m:.1} msgs/s"));
                } else {
                    unknown.push("msgs/s");
                }
                known.push(format!("{:.0} B/s per node", f.bytes_per_node_s));
                for (name, v) in [("idle", idle), ("repair", repair)] {
                    match v {
                        Some(v) => known.push(format!("{name} {v:.0} B/s")),
                        None => unknown.push(name),
                    }
                }
                let _ = writeln!(
                    s,
                    "  traffic        {}; {} {NOT_MEASURED}",
                    known.join(", "),
                    unknown.join(", ")
                );
            }
        }
        match &f.by_kind {
            Some(by_kind) => {
                let kinds: Vec<String> = by_kind
                    .iter()
                    .map(|k| format!("{} {:.0}", k.kind, k.bytes_per_node_s))
                    .collect();
                let _ = writeln!(s, "  bytes by kind  {} (B/s per node)", kinds.join(", "));
            }
            None => {
                let _ = writeln!(s, "  bytes by kind  {NOT_MEASURED}");
            }
        }
        let copies = f.copies_per_delivery.map_or_else(
            || format!("payload copies per delivery {NOT_MEASURED}"),
            |c| format!("{c:.2} payload copies per delivery"),
        );
        let _ = writeln!(
            s,
            "  chat           {} sent, {} deliveries, {copies}",
            f.chats_sent, f.deliveries
        );
        let flowing = match (f.msgs_per_chat_flowing, f.writes_per_chat_flowing) {
            (Some(m), Some(w)) => format!(" ({m:.1} in {w:.1} while chat flows)"),
            _ => String::new(),
        };
        let per_chat = match f.msgs_per_chat {
            Some(m) if f.chats_sent > 0 => match f.writes_per_chat {
                Some(w) => {
                    format!("{m:.1} msgs in {w:.1} writes (all kinds) per chat sent{flowing}")
                }
                None => format!("{m:.1} msgs (all kinds) per chat sent{flowing}"),
            },
            Some(_) => "no chat sent".to_string(),
            None => format!("msgs per chat sent {NOT_MEASURED}"),
        };
        let hops = match f.last_hop {
            Some(h) if h.n > 0 => format!("hops to the last node p50 {} / max {}", h.p50, h.max),
            Some(_) => "hops to the last node n/a".to_string(),
            None => format!("hops to the last node {NOT_MEASURED}"),
        };
        let _ = writeln!(s, "  per chat       {per_chat}, {hops}");
        let _ = writeln!(s, "  delivery       {}", f.delivery_ms.short());
        let _ = writeln!(
            s,
            "  detection      {} ({} samples)",
            f.detection_ms.short(),
            f.detection_ms.n
        );
        let _ = writeln!(
            s,
            "  leave          {} ({} samples)",
            f.leave_ms.short(),
            f.leave_ms.n
        );
        let _ = writeln!(
            s,
            "  join           {} ({} joins)",
            f.join_ms.short(),
            f.join_ms.n
        );
        let t = &f.max_tables;
        let queues = match (t.paused_queue, f.max_queue) {
            (Some(p), Some(q)) => format!(", paused queue {p}, event queue {q}"),
            (Some(p), None) => format!(", paused queue {p}; event queue {NOT_MEASURED}"),
            (None, Some(q)) => format!(", event queue {q}; paused queue {NOT_MEASURED}"),
            (None, None) => format!("; paused queue, event queue {NOT_MEASURED}"),
        };
        let _ = writeln!(
            s,
            "  tables (max)   members {}, connections {}, neighbours {}, streams {}, held {}, history {}{queues}",
            t.members, t.connections, t.neighbours, t.streams, t.held, t.history
        );
        match &f.end_tables {
            Some(e) => {
                let _ = writeln!(
                    s,
                    "  tables (end)   {} live nodes: members max {}, mean {:.1}; streams max {}; {} newcomers hold up to {} members older than themselves",
                    e.live, e.members_max, e.members_mean, e.streams_max, e.newcomers, e.newcomer_old_members_max
                );
                let _ = writeln!(
                    s,
                    "  overlay        they lost the leader's beacons {} times and dialled it {} times; they dialled {} accused members they reached, {} ring predecessors past a failure, {} probed members in another part (newer beacons or other chat) and {} grandparents on the tree as shortcuts",
                    e.overlay_mends, e.overlay_dials, e.bridge_dials, e.ring_dials, e.beacon_dials, e.shortcut_dials
                );
            }
            None => {
                let _ = writeln!(s, "  tables (end)   {NOT_MEASURED}");
            }
        }
        let t = &f.traffic_trend;
        if let (Some(first), Some(last), Some(_)) = (t.per_minute.first(), t.last, t.quietest) {
            let _ = writeln!(
                s,
                "  traffic trend  {:.0} B/s per node in the last minute, {:.0} in the first (all kinds)",
                last, first
            );
        }
        let r = &f.repair_trend;
        if let (Some(q), Some(last), Some(p)) = (r.quietest, r.last, r.peak) {
            let _ = writeln!(
                s,
                "  repair trend   {:.0} B/s per node in the last minute; quietest {:.0} (minute {}), busiest {:.0} (minute {})",
                last, q.1, q.0, p.1, p.0
            );
        }
        if let Some(m) = &f.misbehave {
            let nodes: Vec<String> = m.hostile_nodes.iter().map(|n| format!("n{n}")).collect();
            let _ = writeln!(
                s,
                "  misbehave      {} injected {} frames ({} B): {} garbage, {} oversized, {} peer lists ({} full; {} invented entries over {} addresses, {} forged deaths/leaves), {} replays ({} chats)",
                nodes.join(","),
                m.malformed + m.oversized + m.peer_lists + m.replayed + m.forged_frames + m.impostor_hellos + m.state_lists,
                m.bytes,
                m.malformed,
                m.oversized,
                m.peer_lists,
                m.full_lists,
                m.invented_entries,
                m.invented_addresses,
                m.forged_entries,
                m.replayed,
                m.replayed_chats
            );
            if m.forged_frames + m.impostor_hellos + m.impostor_dials_failed > 0 {
                let _ = writeln!(
                    s,
                    "  forgery        {} forged chats in {} frames ({} in repair batches, {} at far seqs); {} impostor hellos on new connections ({} naming another member, {} its own id at another's address; {} dials found no connection); honest dropped {} forged chats, closed {} impostors",
                    m.forged_chats,
                    m.forged_frames,
                    m.forged_in_batches,
                    m.far_seqs,
                    m.impostor_hellos,
                    m.impostor_other_ids,
                    m.impostor_hellos - m.impostor_other_ids,
                    m.impostor_dials_failed,
                    m.honest.forged,
                    m.honest.impostors
                );
            }
            if m.state_lists + m.honest.forged_state > 0 {
                let _ = writeln!(
                    s,
                    "  forged state   {} entries in {} peer lists (later lives and versions up to the ceiling, other addresses and names, departures, deaths at unsigned versions); honest dropped {} entries or hellos the member did not sign",
                    m.state_forgeries, m.state_lists, m.honest.forged_state
                );
            }
            if m.refused_handshakes > 0 {
                let _ = writeln!(
                    s,
                    "  admission      {} dials refused at the handshake (no cluster key in common), {} of them by nodes without the key",
                    m.refused_handshakes, m.strangers_refused
                );
            }
            let h = &m.honest;
            let _ = writeln!(
                s,
                "  honest refused malformed {}, oversized {}, unexpected {}, duplicates {}, members refused {}, list entries truncated {}, conns refused {}; refutations {}; accusations not counted {} (accusers past their allowance {} times)",
                h.malformed, h.oversized, h.unexpected, h.duplicates, h.members_refused, h.peer_list_truncated, h.conns_refused, h.refutations, h.accusations_limited, h.accusers_limited
            );
            let _ = writeln!(
                s,
                "  honest tables  peak members {} (limit {}); {} dials to invented addresses (max {} per address while listed, max {} probes per node); {} still listed at the end",
                m.honest_peak_members,
                m.max_members,
                m.ghost_dials,
                m.ghost_dials_listed_max,
                m.ghost_probes_max,
                m.ghosts_listed_at_end
            );
        }
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(s, "result: {verdict}");
        if !self.passed {
            let _ = writeln!(s, "replay: {}", self.replay_command());
        }
        s
    }
}

/// A report whose figures the simulator measured (`measured`) or a
/// real run's, for tests.
#[cfg(test)]
pub(crate) fn sample(measured: bool) -> Report {
    let some = |v: f64| measured.then_some(v);
    Report {
        scenario: "t".into(),
        file: "t.toml".into(),
        seed: 0,
        nodes: 3,
        slots: 3,
        virtual_s: 10.0,
        events: 100,
        fingerprint: "f".into(),
        faults: Vec::new(),
        checks: Vec::new(),
        figures: Figures {
            msgs_per_node_s: some(12.5),
            bytes_per_node_s: 900.0,
            idle_bytes_per_node_s: some(300.0),
            repair_bytes_per_node_s: some(40.0),
            by_kind: measured.then(|| {
                vec![KindTraffic {
                    kind: "chat".into(),
                    msgs_per_node_s: 2.0,
                    bytes_per_node_s: 560.0,
                }]
            }),
            copies_per_delivery: some(1.5),
            msgs_per_chat: some(31.25),
            writes_per_chat: some(20.5),
            msgs_per_chat_flowing: some(24.5),
            writes_per_chat_flowing: some(18.0),
            last_hop: measured.then(|| Pct::of(&[1, 2, 2, 3])),
            chats_sent: 4,
            deliveries: 8,
            delivery_ms: Pct::of(&[3, 5]),
            detection_ms: Pct::default(),
            leave_ms: Pct::default(),
            join_ms: Pct::default(),
            max_tables: MaxTables {
                members: 3,
                connections: 2,
                neighbours: 2,
                streams: 3,
                held: 1,
                history: 4,
                paused_queue: measured.then_some(6),
            },
            max_queue: measured.then_some(7),
            end_tables: measured.then(EndTables::default),
            repair_trend: crate::minutes::MinuteTrend::default(),
            traffic_trend: crate::minutes::MinuteTrend::default(),
            missing: None,
            misbehave: None,
        },
        wall_ms: None,
        passed: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(measured: bool) -> Report {
        sample(measured)
    }

    #[test]
    fn percentiles_pick_ranks() {
        let v: Vec<u32> = (1..=100).collect();
        let p = Pct::of(&v);
        assert_eq!((p.p50, p.p99, p.max, p.n), (50, 99, 100, 100));
        assert_eq!(Pct::of(&[]).short(), "n/a");
        assert_eq!(Pct::of(&[7]).p99, 7);
    }

    fn figure_lines(r: &Report) -> Vec<String> {
        let text = r.render();
        let from = text.find("figures:").expect("a figures section");
        text[from..].lines().map(str::to_string).collect()
    }

    #[test]
    fn measured_figures_print_as_they_always_have() {
        let lines = figure_lines(&report(true));
        assert_eq!(
            lines[1],
            "  traffic        12.5 msgs/s and 900 B/s per node (idle 300 B/s, repair 40 B/s)"
        );
        assert_eq!(lines[2], "  bytes by kind  chat 560 (B/s per node)");
        assert_eq!(
            lines[3],
            "  chat           4 sent, 8 deliveries, 1.50 payload copies per delivery"
        );
        assert_eq!(
            lines[4],
            "  per chat       31.2 msgs in 20.5 writes (all kinds) per chat sent (24.5 in 18.0 while chat flows), hops to the last node p50 2 / max 3"
        );
        assert_eq!(
            lines[9],
            "  tables (max)   members 3, connections 2, neighbours 2, streams 3, held 1, history 4, paused queue 6, event queue 7"
        );
        assert!(
            lines[10].starts_with("  tables (end)   0 live nodes"),
            "{lines:?}"
        );
    }

    #[test]
    fn figures_a_real_run_cannot_measure_are_not_printed_as_zero() {
        let r = report(false);
        let lines = figure_lines(&r);
        assert_eq!(
            lines[1],
            format!("  traffic        900 B/s per node; msgs/s, idle, repair {NOT_MEASURED}")
        );
        assert_eq!(lines[2], format!("  bytes by kind  {NOT_MEASURED}"));
        assert_eq!(
            lines[3],
            format!(
                "  chat           4 sent, 8 deliveries, payload copies per delivery {NOT_MEASURED}"
            )
        );
        assert_eq!(
            lines[4],
            format!("  per chat       msgs per chat sent {NOT_MEASURED}, hops to the last node {NOT_MEASURED}")
        );
        assert_eq!(
            lines[9],
            format!("  tables (max)   members 3, connections 2, neighbours 2, streams 3, held 1, history 4; paused queue, event queue {NOT_MEASURED}")
        );
        assert_eq!(lines[10], format!("  tables (end)   {NOT_MEASURED}"));
        // No figure line shows a bare zero for what was not measured.
        for l in &lines {
            assert!(!l.contains(" 0.0 ") && !l.contains("0.00 payload"), "{l}");
        }
        // The JSON leaves them out rather than giving 0.
        let json = serde_json::to_value(&r).expect("serializes");
        let f = &json["figures"];
        for key in [
            "msgs_per_node_s",
            "idle_bytes_per_node_s",
            "repair_bytes_per_node_s",
            "by_kind",
            "copies_per_delivery",
            "msgs_per_chat",
            "msgs_per_chat_flowing",
            "writes_per_chat_flowing",
            "last_hop",
            "max_queue",
            "end_tables",
        ] {
            assert!(f.get(key).is_none(), "{key} in {f}");
        }
        assert!(f["max_tables"].get("paused_queue").is_none(), "{f}");
        assert_eq!(f["bytes_per_node_s"], 900.0);
        let sim = serde_json::to_value(report(true)).expect("serializes");
        assert_eq!(sim["figures"]["copies_per_delivery"], 1.5);
        assert_eq!(sim["figures"]["msgs_per_chat"], 31.25);
        assert_eq!(sim["figures"]["msgs_per_chat_flowing"], 24.5);
        assert_eq!(sim["figures"]["writes_per_chat_flowing"], 18.0);
        assert_eq!(sim["figures"]["last_hop"]["p50"], 2);
        assert_eq!(sim["figures"]["last_hop"]["max"], 3);
        assert_eq!(sim["figures"]["max_tables"]["paused_queue"], 6);
    }
}
