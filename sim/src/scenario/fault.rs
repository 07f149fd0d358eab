//! One `[[fault]]` table to one [`Fault`]: the fields each kind takes, its
//! defaults, and the node indices it names.

use super::model::{
    Fault, FaultKind, LinkFault, LossBurst, Misbehave, Mode, Shape, Slow, Target, Via,
    MAX_SLOW_DELAY, MISBEHAVE_ADDRESSES, MISBEHAVE_RATE, MODE_NAMES,
};
use super::raw::{RawDelay, RawFault, RawVia};
use gossip_chat::Duration;

/// The most groups a partition may list (one more side holds the rest).
pub const MAX_GROUPS: usize = 63;

/// Converts one fault; `slots` grows by the nodes a join adds.
pub(super) fn fault_from_raw(f: &RawFault, slots: &mut u32) -> Result<Fault, String> {
    if f.kind != "link" && (f.from.is_some() || f.to.is_some() || f.loss.is_some()) {
        return Err(format!(
            "{}: from, to and loss go with kind = \"link\" only",
            f.kind
        ));
    }
    if f.kind != "loss" && f.inbound.is_some() {
        return Err(format!(
            "{}: inbound goes with kind = \"loss\" only",
            f.kind
        ));
    }
    if !matches!(f.kind.as_str(), "loss" | "link") && f.excused.is_some() {
        return Err(format!(
            "{}: excused goes with kind = \"loss\" or \"link\" only",
            f.kind
        ));
    }
    if f.kind != "slow" && f.delay.is_some() {
        return Err(format!("{}: delay goes with kind = \"slow\" only", f.kind));
    }
    let need = |d: Option<_>, what: &str| {
        d.map(|d: super::duration::Dur| d.0)
            .ok_or(format!("{} needs {what}", f.kind))
    };
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
        "partition" => partition(f)?,
        "link" => FaultKind::Link(link(f)?),
        "heal" => FaultKind::Heal,
        "spike" => FaultKind::Spike(target(f), need(f.extra, "extra")?, need(f.for_, "for")?),
        "loss" => {
            let rate = f.rate.ok_or("loss needs rate")?;
            if !(0.0..=1.0).contains(&rate) {
                return Err("loss rate must be in 0..=1".into());
            }
            FaultKind::Loss(LossBurst {
                target: target(f),
                rate,
                duration: need(f.for_, "for")?,
                inbound: f.inbound.unwrap_or(false),
                excused: f.excused.unwrap_or(true),
            })
        }
        "swizzle" => FaultKind::Swizzle {
            count: f.count.unwrap_or(3),
            step: f.step.map_or(Duration::from_millis(500), |d| d.0),
            hold: f.hold.map_or(Duration::from_secs(5), |d| d.0),
        },
        "misbehave" => FaultKind::Misbehave(misbehave(f)?),
        "slow" => FaultKind::Slow(slow(f)?),
        k => {
            return Err(format!(
                "unknown fault kind {k:?} (crash, kill, pause, resume, restart, leave, join, partition, link, heal, spike, loss, slow, swizzle, misbehave)"
            ))
        }
    };
    Ok(Fault { at: f.at.0, kind })
}

/// Every node index a fault names (they must exist by the end of the run).
pub(crate) fn named_nodes(kind: &FaultKind) -> Vec<u32> {
    let mut list: Vec<u32> = match kind {
        FaultKind::Crash(Target::Nodes(n))
        | FaultKind::Kill(Target::Nodes(n))
        | FaultKind::Pause(Target::Nodes(n), _)
        | FaultKind::Resume(Target::Nodes(n))
        | FaultKind::Restart(Target::Nodes(n), _)
        | FaultKind::Leave(Target::Nodes(n))
        | FaultKind::Spike(Target::Nodes(n), _, _)
        | FaultKind::Loss(LossBurst {
            target: Target::Nodes(n),
            ..
        })
        | FaultKind::Slow(Slow {
            target: Target::Nodes(n),
            ..
        })
        | FaultKind::Misbehave(Misbehave {
            target: Target::Nodes(n),
            ..
        }) => n.clone(),
        FaultKind::Partition {
            shape: Shape::Groups(g),
            ..
        } => g.iter().flatten().copied().collect(),
        FaultKind::Partition {
            shape: Shape::Isolate(Some(n)) | Shape::Bridge(Some(n)),
            ..
        } => vec![*n],
        FaultKind::Link(l) => vec![l.from, l.to],
        _ => Vec::new(),
    };
    match kind {
        FaultKind::Restart(_, Via::Node(v)) | FaultKind::Join(_, Via::Node(v)) => list.push(*v),
        _ => {}
    }
    list
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

fn partition(f: &RawFault) -> Result<FaultKind, String> {
    let no_node = |shape: &str| match f.node {
        Some(n) => Err(format!(
            "partition {shape}: node = {n} means nothing here (only isolate and bridge name a node)"
        )),
        None => Ok(()),
    };
    let shape = match (f.shape.as_deref(), &f.groups) {
        (None, Some(g)) | (Some("groups"), Some(g)) => {
            no_node("groups")?;
            if g.is_empty() {
                return Err("partition groups are empty".into());
            }
            if g.len() > MAX_GROUPS {
                return Err(format!("partition: at most {MAX_GROUPS} groups"));
            }
            Shape::Groups(g.clone())
        }
        (Some("halves"), None) | (None, None) => {
            no_node("halves")?;
            Shape::Halves
        }
        (Some("isolate"), None) => Shape::Isolate(f.node),
        (Some("majority"), None) => {
            no_node("majority")?;
            Shape::Majority
        }
        (Some("bridge"), None) => Shape::Bridge(f.node),
        (Some(s), _) => {
            return Err(format!(
                "partition shape {s:?}: halves, isolate, majority, bridge, or groups = [[..], ..]"
            ))
        }
    };
    Ok(FaultKind::Partition {
        shape,
        oneway: f.oneway.unwrap_or(false),
        duration: f.for_.map(|d| d.0),
    })
}

fn link(f: &RawFault) -> Result<LinkFault, String> {
    let (Some(from), Some(to)) = (f.from, f.to) else {
        return Err("link needs from and to (node indices)".into());
    };
    if from == to {
        return Err(format!("link from n{from} to itself"));
    }
    if f.node.is_some() || f.nodes.is_some() || f.count.is_some() {
        return Err("link names its nodes with from and to (not node, nodes or count)".into());
    }
    let loss = f.loss.unwrap_or(1.0);
    if !(loss > 0.0 && loss <= 1.0) {
        return Err(format!(
            "link loss {loss} must be in (0, 1] (1 cuts the link)"
        ));
    }
    Ok(LinkFault {
        from,
        to,
        oneway: f.oneway.unwrap_or(false),
        loss,
        duration: f.for_.map(|d| d.0),
        excused: f.excused.unwrap_or(true),
    })
}

fn misbehave(f: &RawFault) -> Result<Misbehave, String> {
    let rate = f.rate.unwrap_or(MISBEHAVE_RATE);
    if !(rate > 0.0 && rate <= 1000.0) {
        return Err(format!(
            "misbehave.rate {rate}: hostile frames per second must be in (0, 1000]"
        ));
    }
    let modes = match &f.modes {
        None => Mode::INJECTING.to_vec(),
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
                    "misbehave.modes is empty (list some of {}, or leave it out for {})",
                    MODE_NAMES.join(", "),
                    Mode::INJECTING.map(Mode::name).join(", ")
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

fn slow(f: &RawFault) -> Result<Slow, String> {
    let duration = f
        .for_
        .ok_or("slow needs for (how long the nodes stay slow)")?
        .0;
    if duration.as_millis() == 0 {
        return Err("slow: for must be more than 0".into());
    }
    let delay = match &f.delay {
        None => return Err("slow needs delay (\"2s\", or a range [\"1s\", \"3s\"])".into()),
        Some(RawDelay::One(d)) => (d.0, d.0),
        Some(RawDelay::Range([a, b])) => (a.0, b.0),
    };
    if delay.0.as_millis() == 0 || delay.1 > MAX_SLOW_DELAY {
        return Err(format!(
            "slow.delay must be more than 0 and at most {MAX_SLOW_DELAY}"
        ));
    }
    if delay.0 > delay.1 {
        return Err(format!(
            "slow.delay [{}, {}]: the shortest comes first",
            delay.0, delay.1
        ));
    }
    Ok(Slow {
        target: target(f),
        duration,
        delay,
    })
}
