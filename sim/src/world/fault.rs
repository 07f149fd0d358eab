//! Faults: the scheduled actions of a run (starts, scenario faults and
//! their follow-ups such as heals and resumes), who they hit, and the
//! partition shapes. Each fault writes a `fault ...` note to the trace.

use super::State;
use super::{Action, Ev, World};
use crate::checks::Start;
use crate::net::Bits;
use crate::scenario::{FaultKind, LossBurst, Shape, Target};

impl World {
    /// The slots a fault hits (random ones among those up, or among those
    /// down for good).
    pub(super) fn targets(&mut self, t: &Target) -> Vec<u32> {
        match t {
            Target::Nodes(n) => n.clone(),
            Target::Random(k) | Target::Down(k) => {
                let down: Vec<u32> = match t {
                    Target::Down(_) => (0..self.procs.next_slot)
                        .filter(|&s| {
                            matches!(
                                self.procs.state(s),
                                State::Crashed | State::Killed | State::Left
                            )
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let mut pool = if down.is_empty() {
                    self.procs.up.clone()
                } else {
                    down
                };
                pool.sort_unstable();
                let mut out = Vec::new();
                for _ in 0..*k {
                    if pool.is_empty() {
                        break;
                    }
                    let i = self.below(pool.len());
                    out.push(pool.swap_remove(i));
                }
                out
            }
        }
    }

    /// A `fault ...` note in the trace.
    pub(super) fn fault_note(&mut self, text: String) {
        let now = self.now;
        self.trace.note(now, &format!("fault {text}"));
    }

    /// Carries out a scheduled action.
    pub(super) fn action(&mut self, a: Action) {
        let now = self.now;
        match a {
            Action::Start { slot, via } => self.start(slot, via, Start::Initial),
            Action::DiscoveryBegins => {
                self.obs.discovery_begins(now);
                let within = self.sc.checks.discovery_within;
                for slot in 0..self.sc.nodes.count {
                    if let Some(l) = self.obs.life_of(slot) {
                        self.push(now + within, Ev::ViewCheck(l));
                    }
                }
            }
            Action::Send(i) => self.timed_send(i),
            Action::Resume(slot) => {
                self.fault_note(format!("resume n{slot}"));
                self.resume(slot);
            }
            Action::Heal(id) => {
                self.fault_note(format!("heal #{id}"));
                self.net.heal(Some(id), now);
            }
            Action::Clog(slot, token) => {
                let groups: Vec<u16> = (0..self.procs.len())
                    .map(|s| if s as u32 == slot { 2 } else { 1 })
                    .collect();
                let id = self.net.cut(groups, false, now);
                self.clogs[token] = id;
                self.fault_note(format!("clog n{slot} (#{id})"));
            }
            Action::Unclog(token) => {
                let id = self.clogs[token];
                self.fault_note(format!("unclog #{id}"));
                self.net.heal(Some(id), now);
            }
            Action::SlowEnd(slot, epoch) => self.slow_end(slot, epoch),
            Action::Liveness => {
                self.fault_note("liveness phase: heal everything, resume every paused node".into());
                self.net.heal(None, now);
                self.end_all_slowness();
                for slot in 0..self.procs.len() as u32 {
                    self.resume(slot);
                }
                self.obs.liveness_begins(now);
                self.push(now, Ev::ConvergeSample);
            }
            Action::Fault(kind) => self.fault(kind),
        }
    }

    /// Carries out one scenario fault.
    pub(super) fn fault(&mut self, kind: FaultKind) {
        let now = self.now;
        match kind {
            FaultKind::Crash(ref t) | FaultKind::Kill(ref t) => {
                let reset = matches!(kind, FaultKind::Kill(_));
                for s in self.targets(t) {
                    self.fault_note(format!("{} n{s}", if reset { "kill" } else { "crash" }));
                    self.stop(s, reset);
                }
            }
            FaultKind::Pause(ref t, d) => {
                for s in self.targets(t) {
                    self.fault_note(format!("pause n{s}"));
                    self.pause(s);
                    if let Some(d) = d {
                        self.at_action(now + d, Action::Resume(s));
                    }
                }
            }
            FaultKind::Resume(t) => {
                let list = match t {
                    Target::Nodes(n) => n,
                    Target::Random(k) | Target::Down(k) => (0..self.procs.len() as u32)
                        .filter(|s| self.procs.slots[*s as usize].state == State::Paused)
                        .take(k as usize)
                        .collect(),
                };
                for s in list {
                    self.fault_note(format!("resume n{s}"));
                    self.resume(s);
                }
            }
            FaultKind::Restart(t, via) => {
                for s in self.targets(&t) {
                    self.fault_note(format!("restart n{s}"));
                    self.stop(s, true);
                    self.start(s, Some(via), Start::Joiner);
                }
            }
            FaultKind::Leave(t) => {
                for s in self.targets(&t) {
                    self.fault_note(format!("leave n{s}"));
                    self.leave(s);
                }
            }
            FaultKind::Join(n, via) => {
                for _ in 0..n {
                    let s = self.procs.next_slot;
                    self.procs.next_slot += 1;
                    self.fault_note(format!("join n{s}"));
                    self.start(s, Some(via), Start::Joiner);
                }
            }
            FaultKind::Partition {
                shape,
                oneway,
                duration,
            } => {
                let sides = self.shape(&shape);
                let id = self.net.cut_sides(sides.clone(), oneway, now);
                // Side 0 lists the bridges; a node on several sides (but not
                // all) is listed on each.
                let on = |i: usize, g: u32| match g {
                    0 => sides[i] == crate::net::BRIDGE,
                    g => sides[i] != crate::net::BRIDGE && sides[i] >> (g - 1) & 1 == 1,
                };
                let side = |g: u32| -> String {
                    let v: Vec<String> = (0..sides.len().min(self.procs.next_slot as usize))
                        .filter(|&i| on(i, g))
                        .map(|i| format!("n{i}"))
                        .collect();
                    if v.len() > 12 {
                        format!("{} nodes", v.len())
                    } else {
                        v.join(",")
                    }
                };
                let desc: Vec<String> = (0..=64)
                    .map(|g| format!("{}[{}]", if g == 0 { "bridge" } else { "group" }, side(g)))
                    .filter(|s| !s.ends_with("[]"))
                    .collect();
                self.fault_note(format!(
                    "partition #{id}{} {}",
                    if oneway { " one-way" } else { "" },
                    desc.join(" | ")
                ));
                if let Some(d) = duration {
                    self.at_action(now + d, Action::Heal(id));
                }
            }
            FaultKind::Link(l) => {
                let id = self
                    .net
                    .link(l.from as usize, l.to as usize, l.oneway, l.loss, now);
                self.net.links.last_mut().expect("just made").excused = l.excused;
                let arrow = if l.oneway { "->" } else { "<->" };
                let what = if l.loss >= 1.0 {
                    "cut".to_string()
                } else {
                    format!("loss {}", l.loss)
                };
                self.fault_note(format!("link #{id} n{}{arrow}n{} {what}", l.from, l.to));
                if let Some(d) = l.duration {
                    self.at_action(now + d, Action::Heal(id));
                }
            }
            FaultKind::Heal => {
                self.fault_note("heal all".into());
                self.net.heal(None, now);
            }
            FaultKind::Spike(ref t, _, d)
            | FaultKind::Loss(LossBurst {
                target: ref t,
                duration: d,
                ..
            }) => {
                let (extra, loss, inbound, excused) = match kind {
                    FaultKind::Loss(ref l) => {
                        (gossip_chat::Duration::ZERO, l.rate, l.inbound, l.excused)
                    }
                    FaultKind::Spike(_, e, _) => (e, 0.0, false, true),
                    _ => unreachable!(),
                };
                let nodes = self.targets(t);
                let bits = Bits::of(self.procs.len(), &nodes);
                let id = self.net.burst(bits, extra, loss, now);
                let b = self.net.bursts.last_mut().expect("just made");
                (b.inbound, b.excused) = (inbound, excused);
                let names: Vec<String> = nodes.iter().map(|n| format!("n{n}")).collect();
                let names = if names.len() > 12 {
                    format!("{} nodes", names.len())
                } else {
                    names.join(",")
                };
                self.fault_note(format!(
                    "{} #{id} on {}{names} for {d}{}",
                    if loss > 0.0 {
                        format!("loss {loss}")
                    } else {
                        format!("spike +{extra}")
                    },
                    if inbound { "links into " } else { "" },
                    if excused { "" } else { " (removals judged)" },
                ));
                self.at_action(now + d, Action::Heal(id));
            }
            FaultKind::Misbehave(m) => self.misbehave(&m),
            FaultKind::Slow(ref f) => self.slow(f),
            FaultKind::Swizzle { count, step, hold } => {
                let nodes = self.targets(&Target::Random(count));
                self.fault_note(format!(
                    "swizzle {}",
                    nodes
                        .iter()
                        .map(|n| format!("n{n}"))
                        .collect::<Vec<_>>()
                        .join(",")
                ));
                // Cut one by one; restore in random order.
                let first = self.clogs.len();
                self.clogs.extend(nodes.iter().map(|_| 0));
                let mut order: Vec<u32> = (0..nodes.len() as u32).collect();
                for i in (1..order.len()).rev() {
                    let j = self.below(i + 1);
                    order.swap(i, j);
                }
                for (i, &s) in nodes.iter().enumerate() {
                    self.at_action(
                        now + step.saturating_mul(i as u64),
                        Action::Clog(s, first + i),
                    );
                }
                let restore =
                    now + step.saturating_mul(nodes.len().saturating_sub(1) as u64) + hold;
                for (k, &i) in order.iter().enumerate() {
                    self.at_action(
                        restore + step.saturating_mul(k as u64),
                        Action::Unclog(first + i as usize),
                    );
                }
            }
        }
    }

    /// Sides per slot (see [`crate::net::Cut`]) for a partition shape over the
    /// current nodes. Slots not started yet go on the first side.
    fn shape(&mut self, shape: &Shape) -> Vec<u64> {
        let (first, second) = (crate::net::side_of_group(1), crate::net::side_of_group(2));
        let n = self.procs.len();
        let mut sides = vec![first; n];
        let mut present: Vec<u32> = (0..self.procs.next_slot)
            .filter(|s| !matches!(self.procs.slots[*s as usize].state, State::Absent))
            .collect();
        // Seeded shuffle: who ends up where differs per seed.
        for i in (1..present.len()).rev() {
            let j = self.below(i + 1);
            present.swap(i, j);
        }
        match shape {
            Shape::Halves => {
                for &s in &present[present.len() / 2..] {
                    sides[s as usize] = second;
                }
            }
            Shape::Majority => {
                let minority = (present.len().saturating_sub(1)) / 2;
                for &s in &present[..minority] {
                    sides[s as usize] = second;
                }
            }
            Shape::Isolate(node) => {
                let s = node.or_else(|| {
                    let mut up = self.procs.up.clone();
                    up.sort_unstable();
                    (!up.is_empty()).then(|| up[self.below(up.len())])
                });
                if let Some(s) = s {
                    sides[s as usize] = second;
                }
            }
            Shape::Bridge(node) => {
                // The given bridge, or the first of the shuffle; the others
                // split in halves as they were shuffled.
                if let Some(bridge) = node.or_else(|| present.first().copied()) {
                    sides[bridge as usize] = crate::net::BRIDGE;
                    let rest: Vec<u32> = present.iter().copied().filter(|&s| s != bridge).collect();
                    for &s in &rest[rest.len() / 2..] {
                        sides[s as usize] = second;
                    }
                }
            }
            Shape::Groups(gs) => {
                // A node named in several groups is on each of their sides;
                // nodes in no group form one more side.
                sides.fill(0);
                for (i, g) in gs.iter().enumerate() {
                    for &s in g {
                        sides[s as usize] |= crate::net::side_of_group(i as u16 + 1);
                    }
                }
                let extra = crate::net::side_of_group(gs.len() as u16 + 1);
                for m in sides.iter_mut().filter(|m| **m == 0) {
                    *m = extra;
                }
            }
        }
        sides
    }
}
