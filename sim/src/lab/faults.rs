//! Scenario faults carried out on real processes and real links, with
//! the simulator's choices (targets among the up nodes, partition shapes
//! drawn from a seeded shuffle) made the same way as in `world/fault.rs`.

use super::run::{Action, Lab, State};
use super::LabError;
use crate::checks::Start;
use crate::net::{side_of_group, Bits, BRIDGE};
use crate::random::below;
use crate::scenario::{FaultKind, Shape, Target};

fn names(v: &[u32]) -> String {
    v.iter()
        .map(|n| format!("n{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Lab<'_> {
    /// The slots a fault hits (random ones among those up).
    fn targets(&mut self, t: &Target) -> Vec<u32> {
        match t {
            Target::Nodes(n) => n.clone(),
            Target::Random(k) | Target::Down(k) => {
                // Restarts drawn at random go to nodes down for good (or
                // up ones if none is), as in the simulator.
                let down: Vec<u32> = match t {
                    Target::Down(_) => (0..self.slots.len() as u32)
                        .filter(|&s| {
                            matches!(
                                self.slots[s as usize].state,
                                State::Crashed | State::Killed | State::Left
                            )
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let mut pool = if down.is_empty() { self.up() } else { down };
                let mut out = Vec::new();
                for _ in 0..*k {
                    if pool.is_empty() {
                        break;
                    }
                    let i = below(&mut self.rng, pool.len());
                    out.push(pool.swap_remove(i));
                }
                out
            }
        }
    }

    /// Carries out one scenario fault.
    pub(super) fn fault(&mut self, kind: FaultKind) -> Result<(), LabError> {
        let now = self.now;
        match kind {
            FaultKind::Crash(ref t) | FaultKind::Kill(ref t) => {
                let reset = matches!(kind, FaultKind::Kill(_));
                for s in self.targets(t) {
                    let how = if reset {
                        "kill n{} (SIGKILL)"
                    } else {
                        "crash n{} (SIGSTOP, links cut)"
                    };
                    self.note(how.replace("{}", &s.to_string()));
                    self.stop(s, reset);
                }
            }
            FaultKind::Pause(ref t, d) => {
                for s in self.targets(t) {
                    self.note(format!("pause n{s} (SIGSTOP)"));
                    self.pause(s);
                    if let Some(d) = d {
                        self.at(now + d, Action::Resume(s));
                    }
                }
            }
            FaultKind::Resume(t) => {
                let list = match t {
                    Target::Nodes(n) => n,
                    Target::Random(k) | Target::Down(k) => (0..self.slots.len() as u32)
                        .filter(|s| self.slots[*s as usize].state == State::Paused)
                        .take(k as usize)
                        .collect(),
                };
                for s in list {
                    self.note(format!("resume n{s} (SIGCONT)"));
                    self.resume(s);
                }
            }
            FaultKind::Restart(t, via) => {
                for s in self.targets(&t) {
                    self.note(format!("restart n{s}"));
                    // As in the simulator, the new process starts at once.
                    self.stop(s, true);
                    self.start(s, Some(via), Start::Joiner, 0)?;
                }
            }
            FaultKind::Leave(t) => {
                for s in self.targets(&t) {
                    self.note(format!("leave n{s} (/quit)"));
                    self.leave(s);
                }
            }
            FaultKind::Join(n, via) => {
                for _ in 0..n {
                    let s = self.next_slot;
                    self.next_slot += 1;
                    self.note(format!("join n{s}"));
                    let kind = Start::Joiner;
                    self.at(
                        now,
                        Action::Start {
                            slot: s,
                            via: Some(via),
                            kind,
                            tries: 0,
                        },
                    );
                }
            }
            FaultKind::Partition {
                shape,
                oneway,
                duration,
            } => {
                let sides = self.shape(&shape);
                let id = self.net.cut_sides(sides.clone(), oneway, now);
                self.network_changed();
                let group = |g: u64| -> Vec<u32> {
                    (0..self.next_slot)
                        .filter(|&i| sides[i as usize] != BRIDGE && sides[i as usize] & g != 0)
                        .collect()
                };
                let bridges: Vec<u32> = (0..self.next_slot)
                    .filter(|&i| sides[i as usize] == BRIDGE)
                    .collect();
                let mut desc: Vec<String> = (1..=64u16)
                    .map(|g| group(side_of_group(g)))
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("[{}]", names(&v)))
                    .collect();
                if !bridges.is_empty() {
                    desc.insert(0, format!("bridge [{}]", names(&bridges)));
                }
                let way = if oneway { " one-way" } else { "" };
                self.note(format!("partition #{id}{way} {}", desc.join(" | ")));
                if let Some(d) = duration {
                    self.at(now + d, Action::Heal(id));
                }
            }
            FaultKind::Link(l) => {
                let id = self
                    .net
                    .link(l.from as usize, l.to as usize, l.oneway, l.loss, now);
                self.network_changed();
                let arrow = if l.oneway { "->" } else { "<->" };
                self.note(format!(
                    "link #{id} n{}{arrow}n{} loss {}",
                    l.from, l.to, l.loss
                ));
                if let Some(d) = l.duration {
                    self.at(now + d, Action::Heal(id));
                }
            }
            FaultKind::Heal => {
                self.note("heal all".into());
                self.net.heal(None, now);
                self.network_changed();
            }
            FaultKind::Loss(ref l) => {
                let (rate, d) = (l.rate, l.duration);
                let nodes = self.targets(&l.target);
                let bits = Bits::of(self.slots.len(), &nodes);
                let id = self.net.burst(bits, gossip_chat::Duration::ZERO, rate, now);
                if let Some(b) = self.net.bursts.last_mut() {
                    b.excused = l.excused;
                }
                self.network_changed();
                self.note(format!("loss {rate} #{id} on {} for {d}", names(&nodes)));
                self.at(now + d, Action::Heal(id));
            }
            FaultKind::Swizzle { count, step, hold } => {
                let nodes = self.targets(&Target::Random(count));
                self.note(format!("swizzle {}", names(&nodes)));
                let first = self.clogs.len();
                self.clogs.extend(nodes.iter().map(|_| 0));
                let mut order: Vec<u32> = (0..nodes.len() as u32).collect();
                for i in (1..order.len()).rev() {
                    let j = below(&mut self.rng, i + 1);
                    order.swap(i, j);
                }
                for (i, &s) in nodes.iter().enumerate() {
                    self.at(
                        now + step.saturating_mul(i as u64),
                        Action::Clog(s, first + i),
                    );
                }
                let restore =
                    now + step.saturating_mul(nodes.len().saturating_sub(1) as u64) + hold;
                for (k, &i) in order.iter().enumerate() {
                    let at = restore + step.saturating_mul(k as u64);
                    self.at(at, Action::Unclog(first + i as usize));
                }
            }
            FaultKind::Spike(ref t, extra, d) => {
                // Refused before the run starts without netem (see
                // `refuse.rs`); `apply_delays` carries it out.
                let nodes = self.targets(t);
                let bits = Bits::of(self.slots.len(), &nodes);
                let id = self.net.burst(bits, extra, 0.0, now);
                self.network_changed();
                self.note(format!(
                    "spike +{extra} #{id} on {} for {d} (netem)",
                    names(&nodes)
                ));
                self.at(now + d, Action::Heal(id));
            }
            // Refused before the run starts (see `refuse.rs`).
            FaultKind::Misbehave(_) | FaultKind::Slow(_) => {
                return Err(LabError::Process(format!("{kind:?} cannot be carried out")));
            }
        }
        Ok(())
    }

    /// Sides per slot for a partition shape over the nodes started so far
    /// (as in the simulator; slots not started yet go on the first side).
    fn shape(&mut self, shape: &Shape) -> Vec<u64> {
        let (first, second) = (side_of_group(1), side_of_group(2));
        let n = self.slots.len();
        let mut sides = vec![first; n];
        let mut present: Vec<u32> = (0..self.next_slot)
            .filter(|s| self.slots[*s as usize].state != State::Absent)
            .collect();
        for i in (1..present.len()).rev() {
            let j = below(&mut self.rng, i + 1);
            present.swap(i, j);
        }
        match shape {
            Shape::Halves => {
                for &s in &present[present.len() / 2..] {
                    sides[s as usize] = second;
                }
            }
            Shape::Majority => {
                let minority = present.len().saturating_sub(1) / 2;
                for &s in &present[..minority] {
                    sides[s as usize] = second;
                }
            }
            Shape::Isolate(node) => {
                let s = node.or_else(|| {
                    let up = self.up();
                    (!up.is_empty()).then(|| up[below(&mut self.rng, up.len())])
                });
                if let Some(s) = s {
                    sides[s as usize] = second;
                }
            }
            Shape::Bridge(node) => {
                if let Some(bridge) = node.or_else(|| present.first().copied()) {
                    sides[bridge as usize] = BRIDGE;
                    let rest: Vec<u32> = present.iter().copied().filter(|&s| s != bridge).collect();
                    for &s in &rest[rest.len() / 2..] {
                        sides[s as usize] = second;
                    }
                }
            }
            Shape::Groups(gs) => {
                sides.fill(0);
                for (i, g) in gs.iter().enumerate() {
                    for &s in g {
                        sides[s as usize] |= side_of_group(i as u16 + 1);
                    }
                }
                let extra = side_of_group(gs.len() as u16 + 1);
                for m in sides.iter_mut().filter(|m| **m == 0) {
                    *m = extra;
                }
            }
        }
        sides
    }
}
