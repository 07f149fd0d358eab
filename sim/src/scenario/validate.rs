//! Raw TOML to a validated [`Scenario`], one section at a time. Every error
//! names the file and, where it can, the line.

use super::duration::Dur;
use super::fault::{fault_from_raw, named_nodes};
use super::model::{
    CheckSpec, InitialJoin, Latency, LinkOverride, NetSpec, Nodes, RandomSpec, Scenario,
    ScenarioError, Senders, TimedSend, Workload, RANDOM_KINDS, RANDOM_OPT_IN_KINDS,
};
use super::raw::{
    RawChecks, RawFault, RawLatency, RawNetwork, RawNode, RawNodes, RawRandom, RawScenario,
    RawSenders, RawWorkload,
};
use crate::check_id::CheckId;
use gossip_chat::{Config, Duration};
use std::ops::Range;
use toml::Spanned;

/// The file being read: names it and turns spans into lines.
struct Ctx<'a> {
    path: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Option<Range<usize>>, message: String) -> ScenarioError {
        ScenarioError {
            file: self.path.to_string(),
            line: span.map(|s| line_of(self.text, s.start)),
            message,
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Validates scenario text; `path` names it in errors and replay commands.
pub fn parse(path: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let cx = Ctx { path, text };
    let raw: RawScenario =
        toml::from_str(text).map_err(|e| cx.err(e.span(), e.message().into()))?;
    let stem = std::path::Path::new(path).file_stem().map_or_else(
        || "scenario".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let (duration, liveness) = run_length(&cx, &raw)?;
    let config = match &raw.node {
        None => Config::lan(),
        Some(n) => config(&cx, n)?,
    };
    let nodes = nodes(&cx, &raw.nodes)?;
    // Faults first: joins add node slots that later sections may name.
    let (faults, slots) = faults(&cx, &raw.fault, nodes.count, duration)?;
    let network = network(&cx, raw.network.as_ref(), slots)?;
    let checks = match &raw.checks {
        None => default_checks(),
        Some(c) => checks(&cx, c)?,
    };
    let workload = match &raw.workload {
        None => Workload {
            rate: 0.0,
            senders: Senders::All,
            start: Duration::ZERO,
            stop: duration,
            text_len: 32,
            sends: Vec::new(),
        },
        Some(w) => {
            let run = RunLength {
                duration,
                liveness,
                slots,
            };
            workload(&cx, w, &run, &checks, &config)?
        }
    };
    let random = match &raw.random {
        None => None,
        Some(r) => Some(random(&cx, r, duration, liveness)?),
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

/// `duration` and `liveness`.
fn run_length(cx: &Ctx, raw: &RawScenario) -> Result<(Duration, Duration), ScenarioError> {
    let duration = raw.duration.get_ref().0;
    let liveness = raw
        .liveness
        .as_ref()
        .map_or(Duration::ZERO, |d| d.get_ref().0);
    if duration.as_millis() == 0 {
        return Err(cx.err(
            Some(raw.duration.span()),
            "duration must be more than 0".into(),
        ));
    }
    if liveness >= duration {
        let span = raw.liveness.as_ref().map(|l| l.span());
        return Err(cx.err(span, "liveness must be shorter than duration".into()));
    }
    Ok((duration, liveness))
}

/// `[node]`: the core config.
fn config(cx: &Ctx, n: &Spanned<RawNode>) -> Result<Config, ScenarioError> {
    let span = Some(n.span());
    let n = n.get_ref();
    let mut config = match n.preset.as_deref() {
        None | Some("lan") => Config::lan(),
        Some("testing") => Config::testing(),
        Some("slow-links") => Config::slow_links(),
        Some(p) => {
            return Err(cx.err(
                span,
                format!("unknown preset {p:?} (lan, testing or slow-links)"),
            ));
        }
    };
    let set_d = |d: &Option<Dur>, f: &mut Duration| {
        if let Some(d) = d {
            *f = d.0;
        }
    };
    if let Some(v) = n.max_connections {
        config.max_connections = v;
    }
    if let Some(v) = n.watched_links {
        config.watched_links = v;
    }
    if let Some(v) = n.missed_pings {
        config.missed_pings = v;
    }
    if let Some(v) = n.accuser_allowance {
        config.accuser_allowance = v;
    }
    set_d(&n.accuser_forgive, &mut config.accuser_forgive);
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
    set_d(&n.probe_interval, &mut config.probe_interval);
    set_d(&n.beacon_interval, &mut config.beacon_interval);
    set_d(&n.gossip_interval, &mut config.gossip_interval);
    set_d(&n.sync_interval, &mut config.sync_interval);
    set_d(&n.reconnect_interval, &mut config.reconnect_interval);
    set_d(&n.suspect_timeout, &mut config.suspect_timeout);
    set_d(&n.gap_timeout, &mut config.gap_timeout);
    set_d(&n.graft_timeout, &mut config.graft_timeout);
    set_d(&n.ihave_interval, &mut config.ihave_interval);
    set_d(&n.chat_batch, &mut config.chat_batch);
    if let Some(v) = n.lazy_fanout {
        config.lazy_fanout = v;
    }
    if let Some(v) = n.announcers {
        config.announcers = v;
    }
    if let Some(v) = n.strict_prune {
        config.strict_prune = v;
    }
    if let Some(v) = n.rooted_tree {
        config.rooted_tree = v;
    }
    if let Some(d) = &n.ring_push_interval {
        config.ring_push_interval = (d.0 > Duration::ZERO).then_some(d.0);
    }
    if let Some(d) = &n.optimize_threshold {
        config.optimize_threshold = (d.0 > Duration::ZERO).then_some(d.0);
    }
    config
        .validate()
        .map_err(|e| cx.err(span, format!("[node]: {e}")))?;
    Ok(config)
}

/// `[nodes]`: the initial population.
fn nodes(cx: &Ctx, raw: &Spanned<RawNodes>) -> Result<Nodes, ScenarioError> {
    let span = Some(raw.span());
    let rn = raw.get_ref();
    if rn.count == 0 || rn.count > 100_000 {
        return Err(cx.err(span, "nodes.count must be 1..=100000".into()));
    }
    let join = match rn.join.as_deref() {
        None | Some("random") => InitialJoin::Random,
        Some("first") => InitialJoin::First,
        Some("chain") => InitialJoin::Chain,
        Some(j) => {
            return Err(cx.err(
                span,
                format!("nodes.join {j:?} must be \"random\", \"first\" or \"chain\""),
            ))
        }
    };
    Ok(Nodes {
        count: rn.count,
        join,
        stagger: rn.stagger.map_or(Duration::from_millis(10), |d| d.0),
    })
}

/// Node indices must exist by the end of the run (`slots` of them).
fn check_nodes(list: &[u32], what: &str, slots: u32) -> Result<(), String> {
    match list.iter().find(|n| **n >= slots) {
        Some(n) => Err(format!(
            "{what}: node {n} does not exist ({slots} nodes in this scenario)"
        )),
        None => Ok(()),
    }
}

/// `[[fault]]`: sorted by time; returns them and the node slots the run
/// has by its end (initial nodes plus joins).
fn faults(
    cx: &Ctx,
    raw: &[Spanned<RawFault>],
    count: u32,
    duration: Duration,
) -> Result<(Vec<super::model::Fault>, u32), ScenarioError> {
    let mut slots = count;
    let mut sorted: Vec<&Spanned<RawFault>> = raw.iter().collect();
    sorted.sort_by_key(|f| f.get_ref().at.0);
    let mut faults = Vec::new();
    for f in &sorted {
        let span = Some(f.span());
        let before = slots;
        let fault = fault_from_raw(f.get_ref(), &mut slots).map_err(|m| cx.err(span.clone(), m))?;
        if fault.at >= duration {
            return Err(cx.err(span, "fault is at or after the end of the run".into()));
        }
        let times = repeats(f.get_ref()).map_err(|m| cx.err(span.clone(), m))?;
        let every = f.get_ref().every.map_or(Duration::ZERO, |d| d.0);
        // Each repeat of a join adds its nodes.
        slots = slots.saturating_add((slots - before).saturating_mul(times - 1));
        for k in 0..times {
            let at = fault.at + every.saturating_mul(u64::from(k));
            if at >= duration {
                return Err(cx.err(
                    span,
                    format!(
                        "repeat {} of {times} (at {at}) is at or after the end of the run",
                        k + 1
                    ),
                ));
            }
            faults.push((
                super::model::Fault {
                    at,
                    kind: fault.kind.clone(),
                },
                span.clone(),
            ));
        }
    }
    if slots > 100_000 {
        return Err(cx.err(None, format!("{slots} node slots: at most 100000")));
    }
    for (f, span) in &faults {
        check_nodes(&named_nodes(&f.kind), "fault", slots).map_err(|m| cx.err(span.clone(), m))?;
    }
    let mut faults: Vec<super::model::Fault> = faults.into_iter().map(|f| f.0).collect();
    faults.sort_by_key(|f| f.at);
    Ok((faults, slots))
}

/// How many times a fault fires: `times` (with `every`), else once.
fn repeats(f: &RawFault) -> Result<u32, String> {
    match (f.every, f.times) {
        (None, None) => Ok(1),
        (Some(e), Some(t)) if e.0.as_millis() > 0 && (1..=100_000).contains(&t) => Ok(t),
        (Some(_), Some(_)) => Err("every must be more than 0 and times 1..=100000".into()),
        _ => Err("every and times go together (the fault fires times times, every apart)".into()),
    }
}

/// `[network]` and its `[[network.link]]` overrides.
fn network(cx: &Ctx, net: Option<&RawNetwork>, slots: u32) -> Result<NetSpec, ScenarioError> {
    let Some(net) = net else {
        return Ok(NetSpec {
            latency: Latency::Constant(Duration::from_millis(5)),
            ordered: true,
            loss: 0.0,
            duplicate: 0.0,
            connect_timeout: Duration::from_secs(1),
            links: Vec::new(),
        });
    };
    let prob = |p: &Option<Spanned<f64>>, name: &str| -> Result<f64, ScenarioError> {
        match p {
            None => Ok(0.0),
            Some(s) if (0.0..=1.0).contains(s.get_ref()) => Ok(*s.get_ref()),
            Some(s) => Err(cx.err(
                Some(s.span()),
                format!("network.{name} must be a probability in 0..=1"),
            )),
        }
    };
    let latency = |l: &Spanned<RawLatency>| {
        latency_from_raw(l.get_ref()).map_err(|m| cx.err(Some(l.span()), m))
    };
    let mut links = Vec::new();
    for l in &net.link {
        let span = Some(l.span());
        let r = l.get_ref();
        let ok_p = |p: Option<f64>| p.is_none_or(|p| (0.0..=1.0).contains(&p));
        if !ok_p(r.loss) || !ok_p(r.duplicate) {
            return Err(cx.err(span, "link loss/duplicate must be in 0..=1".into()));
        }
        check_nodes(&r.from, "link.from", slots).map_err(|m| cx.err(span.clone(), m))?;
        check_nodes(&r.to, "link.to", slots).map_err(|m| cx.err(span.clone(), m))?;
        links.push(LinkOverride {
            from: r.from.clone(),
            to: r.to.clone(),
            latency: r.latency.as_ref().map(latency).transpose()?,
            loss: r.loss,
            duplicate: r.duplicate,
        });
    }
    Ok(NetSpec {
        latency: match &net.latency {
            None => Latency::Constant(Duration::from_millis(5)),
            Some(l) => latency(l)?,
        },
        ordered: net.ordered.unwrap_or(true),
        loss: prob(&net.loss, "loss")?,
        duplicate: prob(&net.duplicate, "duplicate")?,
        connect_timeout: net.connect_timeout.map_or(Duration::from_secs(1), |d| d.0),
        links,
    })
}

fn latency_from_raw(l: &RawLatency) -> Result<Latency, String> {
    let d = match l {
        RawLatency::Constant(d) => return Ok(Latency::Constant(d.0)),
        RawLatency::Dist(d) => d,
    };
    match d.dist.as_str() {
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
    }
}

fn default_checks() -> CheckSpec {
    CheckSpec {
        discovery_within: Duration::from_secs(5),
        join_within: Duration::from_secs(3),
        detect_within: Duration::from_secs(10),
        deliver_within: Duration::from_secs(5),
        join_grace: Duration::from_secs(2),
        converge_within: Duration::from_secs(20),
        skip: Vec::new(),
        xfail: Vec::new(),
        judge: None,
    }
}

/// `[checks]`: deadlines and check names.
fn checks(cx: &Ctx, c: &Spanned<RawChecks>) -> Result<CheckSpec, ScenarioError> {
    let span = Some(c.span());
    let c = c.get_ref();
    let mut checks = default_checks();
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
                    cx.err(
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
    Ok(checks)
}

/// What the workload's defaults and bounds depend on.
struct RunLength {
    duration: Duration,
    liveness: Duration,
    slots: u32,
}

/// `[workload]`: chat traffic.
fn workload(
    cx: &Ctx,
    w: &Spanned<RawWorkload>,
    run: &RunLength,
    checks: &CheckSpec,
    config: &Config,
) -> Result<Workload, ScenarioError> {
    let wspan = Some(w.span());
    let w = w.get_ref();
    if !(0.0..=100_000.0).contains(&w.rate) {
        return Err(cx.err(wspan, "workload.rate must be in 0..=100000".into()));
    }
    let senders = match &w.senders {
        None => Senders::All,
        Some(s) => match s.get_ref() {
            RawSenders::Word(w) if w == "all" => Senders::All,
            RawSenders::Word(w) => {
                return Err(cx.err(
                    Some(s.span()),
                    format!("workload.senders {w:?}: use \"all\" or a list of nodes"),
                ))
            }
            RawSenders::Nodes(n) => {
                check_nodes(n, "workload.senders", run.slots)
                    .map_err(|m| cx.err(Some(s.span()), m))?;
                if n.is_empty() {
                    return Err(cx.err(Some(s.span()), "workload.senders is empty".into()));
                }
                Senders::Nodes(n.clone())
            }
        },
    };
    // By default traffic stops early enough for every message to be judged
    // before the end.
    let default_stop = Duration::from_millis(
        run.duration
            .as_millis()
            .saturating_sub(checks.deliver_within.as_millis())
            .saturating_sub(run.liveness.as_millis() / 2),
    );
    let mut sends = Vec::new();
    for s in &w.send {
        let r = s.get_ref();
        check_nodes(&[r.from], "workload.send", run.slots)
            .map_err(|m| cx.err(Some(s.span()), m))?;
        if r.at.0 >= run.duration {
            return Err(cx.err(Some(s.span()), "send is after the end of the run".into()));
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
        return Err(cx.err(
            wspan,
            format!("workload.text_len must be 1..={}", config.max_text_len),
        ));
    }
    Ok(Workload {
        rate: w.rate,
        senders,
        start: w.start.map_or(Duration::from_secs(2), |d| d.0),
        stop: w.stop.map_or(default_stop, |d| d.0),
        text_len,
        sends,
    })
}

/// `[random]`: bounds of the per-seed fault schedule.
fn random(
    cx: &Ctx,
    r: &Spanned<RawRandom>,
    duration: Duration,
    liveness: Duration,
) -> Result<RandomSpec, ScenarioError> {
    let span = Some(r.span());
    let g = r.get_ref();
    let kinds = g
        .kinds
        .clone()
        .unwrap_or_else(|| RANDOM_KINDS.iter().map(|s| s.to_string()).collect());
    let known = |k: &str| RANDOM_KINDS.contains(&k) || RANDOM_OPT_IN_KINDS.contains(&k);
    if let Some(k) = kinds.iter().find(|k| !known(k)) {
        return Err(cx.err(
            span,
            format!(
                "random.kinds: unknown kind {k:?} (one of {}, {})",
                RANDOM_KINDS.join(", "),
                RANDOM_OPT_IN_KINDS.join(", ")
            ),
        ));
    }
    if kinds.is_empty() || g.faults[0] > g.faults[1] || g.start.0 >= g.end.0 {
        return Err(cx.err(
            span,
            "random: need kinds, faults = [min, max] with min <= max, start < end".into(),
        ));
    }
    let durations = g.durations.map_or(
        (Duration::from_secs(1), Duration::from_secs(10)),
        |[a, b]| (a.0, b.0),
    );
    if durations.0 > durations.1 {
        return Err(cx.err(span, "random.durations: min > max".into()));
    }
    if liveness.as_millis() == 0 {
        return Err(cx.err(
            span,
            "random mode needs a liveness phase (liveness = \"30s\")".into(),
        ));
    }
    if (g.end.0 + durations.1).as_millis() > duration.as_millis() - liveness.as_millis() {
        return Err(cx.err(
            span,
            "random: faults (end + longest duration) must be over before the liveness phase".into(),
        ));
    }
    Ok(RandomSpec {
        faults: (g.faults[0], g.faults[1]),
        kinds,
        start: g.start.0,
        end: g.end.0,
        durations,
    })
}
