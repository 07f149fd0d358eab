//! What of a scenario the lab can carry out with real processes, and what
//! it refuses (`FILE:LINE: why`, like the simulator's validation) or
//! carries out differently (a note in the report).
//!
//! Latency depends on the kernel: with netem the model's latency and
//! spikes are added, without it they are not (spikes refused). Until the
//! network is built that is not known, and the judgement leaves those
//! fields alone.

use super::netem::{self, Netem};
use crate::scenario::{Fault, FaultKind, Latency, Scenario, ScenarioError, Target};
use gossip_chat::Config;

/// The most node slots (processes at once) the lab runs.
pub const MAX_SLOTS: usize = 200;

/// The scenario's fields the lab cannot carry out, and notes on those it
/// carries out differently from the simulator.
pub struct Verdict {
    /// Refusals, each with the file and line.
    pub refused: Vec<ScenarioError>,
    /// How the real run differs from the model.
    pub notes: Vec<String>,
}

/// The `[node]` keys `chat` has a flag for (`--ping-ms` and so on).
const CHAT_KEYS: &[&str] = &[
    "max_connections",
    "ping_interval",
    "missed_pings",
    "gossip_interval",
    "sync_interval",
    "reconnect_interval",
    "gap_timeout",
];

/// The config `chat` runs with when given the flags for `c`.
pub fn chat_config(c: &Config) -> Config {
    Config {
        ping_interval: c.ping_interval,
        missed_pings: c.missed_pings,
        gossip_interval: c.gossip_interval,
        sync_interval: c.sync_interval,
        reconnect_interval: c.reconnect_interval,
        max_connections: c.max_connections,
        prune_duplicates: c.prune_duplicates,
        gap_timeout: c.gap_timeout,
        ..Config::lan()
    }
}

/// Judges `sc` (whose file reads `text`) with the concrete fault schedule
/// `faults` over `slots` node slots, on a kernel with or without `netem`
/// (`None`: not known yet; what depends on it is neither refused nor
/// noted).
pub fn judge(
    sc: &Scenario,
    text: &str,
    faults: &[Fault],
    slots: usize,
    netem: Option<&Netem>,
) -> Verdict {
    let file = Lines::new(&sc.path, text);
    let mut refused = Vec::new();
    let mut notes = Vec::new();
    if slots > MAX_SLOTS {
        refused.push(file.at(
            file.key_line("[nodes]", "count"),
            format!("{slots} node slots: the lab runs at most {MAX_SLOTS} processes (try --nodes)"),
        ));
    }
    let mut used = Vec::new();
    let mut spike_pairs = false;
    for f in faults {
        let why = match &f.kind {
            FaultKind::Misbehave(_) => {
                Some("misbehave: a real chat process cannot be made hostile")
            }
            FaultKind::Slow(_) => Some(
                "slow: delaying every input of a real process needs a CPU throttle the lab does not drive",
            ),
            FaultKind::Loss(l) if l.inbound => Some(
                "loss with inbound = true: the lab's filter drops packets both ways on a node's links",
            ),
            FaultKind::Spike(t, ..) => {
                spike_pairs |= match t {
                    Target::Nodes(n) => n.len() > 1,
                    Target::Random(k) | Target::Down(k) => *k > 1,
                };
                match netem {
                    Some(Netem::Missing(_)) => Some(
                        "spike: extra latency needs the kernel's netem queueing discipline, which this kernel does not have",
                    ),
                    _ => None,
                }
            }
            _ => None,
        };
        let name = kind_name(&f.kind);
        if let Some(why) = why {
            let line = file.fault_line(name, &mut used);
            refused.push(file.at(line, why.to_string()));
        }
        for n in crate::scenario::named_nodes(&f.kind) {
            if n as usize >= slots {
                let line = file.fault_line(name, &mut used);
                refused.push(file.at(
                    line,
                    format!("{name}: node {n} does not exist with {slots} node slots"),
                ));
            }
        }
    }
    if let (Some(n), Some(i)) = (
        netem,
        sc.network.links.iter().position(|l| l.latency.is_some()),
    ) {
        let why = if n.present() {
            "network.link latency: netem is present, but per-link latency is not carried out (it needs a per-destination qdisc tree on every node, which the lab does not build)"
        } else {
            "network.link latency: per-link latency needs netem, which this kernel does not have"
        };
        refused.push(file.at(file.nth_line("[[network.link]]", i), why.into()));
    }
    if chat_config(&sc.config) != sc.config {
        let key = file.node_key_outside(CHAT_KEYS);
        refused.push(file.at(
            key.or_else(|| file.find("[node]")),
            format!(
                "[node]: chat has flags for {} only; the lab cannot set the rest",
                CHAT_KEYS.join(", ")
            ),
        ));
    }
    let latency = match sc.network.latency {
        Latency::Constant(d) => format!("{d}"),
        Latency::Uniform(a, b) => format!("uniform {a}..{b}"),
        Latency::LogNormal { median, .. } => format!("log-normal, median {median}"),
    };
    match netem {
        Some(Netem::Present) => {
            notes.push(format!(
                "latency is added with netem on each node's interface: {}; the host's own (well under 1 ms) comes on top",
                netem::describe(sc.network.latency)
            ));
            if spike_pairs {
                notes.push("spike on several nodes: a link between two of them gets the extra latency at both ends (twice), the model once".into());
            }
        }
        Some(Netem::Missing(why)) => notes.push(format!(
            "latency ({latency} in the model) is not added: links run at the host's own latency (well under 1 ms); {why}"
        )),
        None => {}
    }
    if !sc.network.ordered {
        notes.push(
            "ordered = false: TCP keeps each link in order, one of the behaviours the model allows"
                .into(),
        );
    }
    if sc.network.duplicate > 0.0 {
        notes.push(format!(
            "duplicate = {}: not carried out; TCP removes duplicate packets before chat sees them",
            sc.network.duplicate
        ));
    }
    let lossy = sc.network.loss > 0.0
        || sc.network.links.iter().any(|l| l.loss.is_some())
        || faults
            .iter()
            .any(|f| matches!(f.kind, FaultKind::Loss(..) | FaultKind::Link(_)));
    if lossy {
        notes.push("loss is dropped packets (nftables): TCP resends them, so nodes see delay, not lost messages".into());
    }
    Verdict { refused, notes }
}

fn kind_name(k: &FaultKind) -> &'static str {
    match k {
        FaultKind::Crash(_) => "crash",
        FaultKind::Kill(_) => "kill",
        FaultKind::Pause(..) => "pause",
        FaultKind::Resume(_) => "resume",
        FaultKind::Restart(..) => "restart",
        FaultKind::Leave(_) => "leave",
        FaultKind::Join(..) => "join",
        FaultKind::Partition { .. } => "partition",
        FaultKind::Heal => "heal",
        FaultKind::Spike(..) => "spike",
        FaultKind::Loss(..) => "loss",
        FaultKind::Link(_) => "link",
        FaultKind::Misbehave(_) => "misbehave",
        FaultKind::Swizzle { .. } => "swizzle",
        FaultKind::Slow(_) => "slow",
    }
}

/// The scenario file's lines, to point at the one a refusal is about.
struct Lines<'a> {
    path: &'a str,
    lines: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    fn new(path: &'a str, text: &'a str) -> Self {
        Lines {
            path,
            lines: text.lines().collect(),
        }
    }

    fn at(&self, line: Option<usize>, message: String) -> ScenarioError {
        ScenarioError {
            file: self.path.to_string(),
            line,
            message,
        }
    }

    /// 1-based line of the first line that starts with `start`.
    fn find(&self, start: &str) -> Option<usize> {
        self.lines
            .iter()
            .position(|l| l.trim_start().starts_with(start))
            .map(|i| i + 1)
    }

    /// 1-based line of the `n`th (from 0) line that starts with `start`,
    /// or the first.
    fn nth_line(&self, start: &str, n: usize) -> Option<usize> {
        let mut hits = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with(start))
            .map(|(i, _)| i + 1);
        let first = self.find(start);
        hits.nth(n).or(first)
    }

    /// The lines of the table that starts at 0-based line `i`.
    fn table(&self, i: usize) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        self.lines
            .iter()
            .enumerate()
            .skip(i + 1)
            .take_while(|(_, l)| !l.trim_start().starts_with('['))
            .map(|(j, l)| (j, *l))
    }

    /// Line of `key = ...` in the table headed `header`.
    fn key_line(&self, header: &str, key: &str) -> Option<usize> {
        let h = self.lines.iter().position(|l| l.trim() == header)?;
        self.table(h)
            .find(|(_, l)| key_of(l) == Some(key))
            .map(|(j, _)| j + 1)
    }

    /// Line of the first `[node]` key chat has no flag for.
    fn node_key_outside(&self, keys: &[&str]) -> Option<usize> {
        let h = self.lines.iter().position(|l| l.trim() == "[node]")?;
        self.table(h)
            .find(|(_, l)| key_of(l).is_some_and(|k| !keys.contains(&k)))
            .map(|(j, _)| j + 1)
    }

    /// Line of the `kind = "NAME"` of the first `[[fault]]` of that kind
    /// not pointed at yet (faults are sorted by time in the model, not in
    /// file order); the `[random]` table for drawn faults.
    fn fault_line(&self, name: &str, used: &mut Vec<usize>) -> Option<usize> {
        for (i, l) in self.lines.iter().enumerate() {
            if l.trim() != "[[fault]]" {
                continue;
            }
            let hit = self.table(i).find(|(_, l)| {
                key_of(l) == Some("kind")
                    && l.split_once('=')
                        .is_some_and(|(_, v)| v.trim().trim_matches('"') == name)
            });
            if let Some((j, _)) = hit {
                if !used.contains(&j) {
                    used.push(j);
                    return Some(j + 1);
                }
            }
        }
        self.find("[random]")
    }
}

fn key_of(line: &str) -> Option<&str> {
    let l = line.trim_start();
    if l.starts_with('#') {
        return None;
    }
    l.split_once('=').map(|(k, _)| k.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(text: &str, netem: Option<&Netem>) -> Verdict {
        let sc = crate::scenario::parse("t.toml", text).expect("valid");
        let faults = crate::random::schedule(&sc, 0);
        judge(&sc, text, &faults, sc.nodes.count as usize, netem)
    }

    fn missing() -> Netem {
        Netem::Missing("this kernel has no netem".into())
    }

    fn verdict(text: &str) -> Verdict {
        on(text, Some(&missing()))
    }

    const SPIKE: &str = "duration = \"10s\"\n[nodes]\ncount = 4\n\n[[fault]]\nat = \"5s\"\nkind = \"spike\"\nnodes = [1, 2]\nextra = \"50ms\"\nfor = \"1s\"\n";

    #[test]
    fn spikes_are_carried_out_with_netem_and_refused_without() {
        let with = on(SPIKE, Some(&Netem::Present));
        assert!(with.refused.is_empty(), "{:?}", with.refused);
        let notes = with.notes.join("\n");
        assert!(
            notes.contains("latency is added with netem") && notes.contains("5ms per hop"),
            "{notes}"
        );
        assert!(notes.contains("twice"), "{notes}");
        let without = on(SPIKE, Some(&missing()));
        let shown: Vec<String> = without.refused.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].starts_with("t.toml:7: spike:") && shown[0].contains("does not have"),
            "{shown:?}"
        );
        // Not known yet: left for the run to judge.
        let early = on(SPIKE, None);
        assert!(early.refused.is_empty() && early.notes.iter().all(|n| !n.contains("latency")));
    }

    #[test]
    fn the_latency_note_says_whether_latency_is_added() {
        let text = "duration = \"10s\"\n[nodes]\ncount = 3\n[network]\nlatency = { dist = \"uniform\", min = \"1ms\", max = \"15ms\" }\n";
        let with = on(text, Some(&Netem::Present)).notes.join("\n");
        assert!(
            with.contains("uniform 1ms..15ms per hop") && !with.contains("not added"),
            "{with}"
        );
        let without = on(text, Some(&missing())).notes.join("\n");
        assert!(
            without.contains("latency (uniform 1ms..15ms in the model) is not added")
                && without.contains("no netem"),
            "{without}"
        );
    }

    #[test]
    fn per_link_latency_is_refused_at_its_table_with_or_without_netem() {
        let text = "duration = \"10s\"\n[nodes]\ncount = 3\n[[network.link]]\nfrom = [0]\nloss = 0.1\n[[network.link]]\nfrom = [1]\nlatency = \"40ms\"\n";
        let with = on(text, Some(&Netem::Present));
        let shown: Vec<String> = with.refused.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].starts_with("t.toml:7: network.link latency: netem is present, but per-link latency is not carried out"),
            "{shown:?}"
        );
        let without = on(text, Some(&missing()));
        assert!(without.refused[0].to_string().contains("does not have"));
        assert!(on(text, None).refused.is_empty());
    }

    #[test]
    fn hostile_nodes_and_spikes_are_refused_at_their_line() {
        let v = verdict(
            "duration = \"10s\"\n[nodes]\ncount = 4\n\n[[fault]]\nat = \"5s\"\nkind = \"spike\"\nnode = 1\nextra = \"50ms\"\nfor = \"1s\"\n\n[[fault]]\nat = \"2s\"\nkind = \"misbehave\"\nnode = 2\n",
        );
        let shown: Vec<String> = v.refused.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(shown[0].starts_with("t.toml:14: misbehave:"), "{shown:?}");
        assert!(shown[1].starts_with("t.toml:7: spike:"), "{shown:?}");
    }

    #[test]
    fn node_settings_without_a_chat_flag_are_refused() {
        let v = verdict("duration = \"10s\"\n[node]\nping_interval = \"200ms\"\nhistory_max = 50\n[nodes]\ncount = 3\n");
        assert_eq!(v.refused.len(), 1);
        assert!(v.refused[0].to_string().starts_with("t.toml:4: [node]:"));
        let ok = verdict("duration = \"10s\"\n[node]\nping_interval = \"200ms\"\nmissed_pings = 6\n[nodes]\ncount = 3\n");
        assert!(ok.refused.is_empty());
    }

    #[test]
    fn datagram_links_are_carried_out_as_tcp_with_a_note() {
        let v = verdict("duration = \"10s\"\n[nodes]\ncount = 3\n[network]\nordered = false\nloss = 0.05\nduplicate = 0.01\n");
        assert!(v.refused.is_empty());
        let notes = v.notes.join("\n");
        assert!(
            notes.contains("ordered = false")
                && notes.contains("duplicate")
                && notes.contains("nftables"),
            "{notes}"
        );
    }
}
