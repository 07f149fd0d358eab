//! How things are named in trace lines and the report: nodes, message
//! details and scheduled faults. These texts are fingerprinted: changing
//! one changes every fingerprint that shows it.

use crate::addr::slot_of_id;
use crate::scenario::{Fault, FaultKind, Shape, Target, Via};
use gossip_chat::{Id, Message};
use std::net::SocketAddr;

/// `n4`, or the address of a node that is not simulated (`slot` is
/// `u32::MAX`).
pub(super) fn who(slot: u32, addr: &SocketAddr) -> String {
    if slot == u32::MAX {
        addr.to_string()
    } else {
        format!("n{slot}")
    }
}

/// The details of `m` shown after its kind in a trace line.
pub(super) fn describe_msg(m: &Message, slots: usize) -> String {
    let name = |a: &Id| match slot_of_id(a, slots) {
        Some(s) => format!("n{s}"),
        None => a.to_string(),
    };
    match m {
        Message::Chat(c) => format!(
            " {}/{}#{}",
            name(&c.id.origin.id),
            c.id.origin.incarnation,
            c.id.seq
        ),
        Message::PeerList { full, members } => {
            format!(
                " {} entries{}",
                members.len(),
                if *full { " full" } else { "" }
            )
        }
        Message::RosterPart { buckets, members } => format!(
            " {} entries {} buckets",
            members.len(),
            buckets.count_ones()
        ),
        Message::History(h) => format!(" {} chats", h.chats.len()),
        Message::Digest(d) => format!(" {} streams", d.entries.len()),
        Message::Bye(r) => format!(" {r:?}"),
        Message::Beacon(b) => format!(" {}#{} hops {}", name(&b.origin.id), b.seq, b.hops),
        _ => String::new(),
    }
}

/// One line per scheduled fault, for the report and the trace header.
pub fn describe(f: &Fault) -> String {
    let t = |t: &Target| match t {
        Target::Nodes(n) => n
            .iter()
            .map(|n| format!("n{n}"))
            .collect::<Vec<_>>()
            .join(","),
        Target::Random(k) => format!("{k} random"),
        Target::Down(k) => format!("{k} random down"),
    };
    let v = |v: &Via| match v {
        Via::Node(n) => format!("n{n}"),
        Via::Random => "a random member".into(),
    };
    let what = match &f.kind {
        FaultKind::Crash(x) => format!("crash {}", t(x)),
        FaultKind::Kill(x) => format!("kill {}", t(x)),
        FaultKind::Pause(x, d) => match d {
            Some(d) => format!("pause {} for {d}", t(x)),
            None => format!("pause {}", t(x)),
        },
        FaultKind::Resume(x) => format!("resume {}", t(x)),
        FaultKind::Restart(x, via) => format!("restart {} via {}", t(x), v(via)),
        FaultKind::Leave(x) => format!("leave {}", t(x)),
        FaultKind::Join(n, via) => format!("join {n} via {}", v(via)),
        FaultKind::Partition {
            shape,
            oneway,
            duration,
        } => {
            let s = match shape {
                Shape::Halves => "halves".to_string(),
                Shape::Isolate(Some(n)) => format!("isolate n{n}"),
                Shape::Isolate(None) => "isolate a random node".into(),
                Shape::Majority => "majority/minority".into(),
                Shape::Bridge(None) => "bridge".into(),
                Shape::Bridge(Some(n)) => format!("bridge through n{n}"),
                Shape::Groups(g) => format!("groups {g:?}"),
            };
            let d = duration.map_or(String::new(), |d| format!(" for {d}"));
            format!("partition {s}{}{d}", if *oneway { " one-way" } else { "" })
        }
        FaultKind::Heal => "heal".into(),
        FaultKind::Link(l) => {
            let d = l.duration.map_or(String::new(), |d| format!(" for {d}"));
            let what = if l.loss >= 1.0 {
                "cut".to_string()
            } else {
                format!("loss {:.2}", l.loss)
            };
            let arrow = if l.oneway { "->" } else { "<->" };
            let judged = if l.excused { "" } else { " (removals judged)" };
            format!("link n{}{arrow}n{} {what}{d}{judged}", l.from, l.to)
        }
        FaultKind::Spike(x, e, d) => format!("spike +{e} on {} for {d}", t(x)),
        FaultKind::Loss(l) => format!(
            "loss {:.2} on {}{} for {}{}",
            l.rate,
            if l.inbound { "links into " } else { "" },
            t(&l.target),
            l.duration,
            if l.excused { "" } else { " (removals judged)" }
        ),
        FaultKind::Slow(s) => {
            let by = if s.delay.0 == s.delay.1 {
                format!("{}", s.delay.0)
            } else {
                format!("{}..{}", s.delay.0, s.delay.1)
            };
            format!("slow {} by {by} for {}", t(&s.target), s.duration)
        }
        FaultKind::Swizzle { count, step, hold } => {
            format!("swizzle {count} nodes, step {step}, hold {hold}")
        }
        FaultKind::Misbehave(m) => {
            let modes: Vec<&str> = m.modes.iter().map(|m| m.name()).collect();
            let d = m.duration.map_or(String::new(), |d| format!(" for {d}"));
            let injects = m.modes.iter().any(|m| *m != crate::scenario::Mode::NoKey);
            if injects {
                format!(
                    "misbehave {}{d}: {}, {} frames/s, {} invented addresses",
                    t(&m.target),
                    modes.join(" "),
                    m.rate,
                    m.addresses
                )
            } else {
                format!("misbehave {}{d}: {}", t(&m.target), modes.join(" "))
            }
        }
    };
    format!("at {}: {what}", f.at)
}
