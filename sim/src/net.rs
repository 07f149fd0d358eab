//! The network model: latency, loss, duplication, partitions, clogs,
//! spikes, link faults and per-link overrides, all drawn from one seeded
//! RNG.

use crate::scenario::{Latency, LinkOverride, NetSpec};
use gossip_chat::{Duration, Instant};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

/// A set of node slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bits(Vec<u64>);

impl Bits {
    /// An empty set with room for `n` slots.
    pub fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    /// A set of these slots.
    pub fn of(n: usize, members: &[u32]) -> Self {
        let mut b = Bits::new(n);
        for &m in members {
            b.set(m as usize, true);
        }
        b
    }
    /// Membership.
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }
    /// Adds or removes `i`, growing as needed; returns the old value.
    #[inline]
    pub fn set(&mut self, i: usize, v: bool) -> bool {
        if i / 64 >= self.0.len() {
            if !v {
                return false;
            }
            self.0.resize(i / 64 + 1, 0);
        }
        let w = &mut self.0[i / 64];
        let old = *w >> (i % 64) & 1 == 1;
        if v {
            *w |= 1 << (i % 64);
        } else {
            *w &= !(1 << (i % 64));
        }
        old
    }
    /// Number of members.
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// Members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            (0..64)
                .filter(move |b| w >> b & 1 == 1)
                .map(move |b| i * 64 + b)
        })
    }
}

/// A partition: every slot is on one or more sides (a bit each, up to
/// 64). Messages between two slots that share no side are lost (only those
/// from slots on the first side when one-way). A bridge is on every side.
#[derive(Clone, Debug)]
pub struct Cut {
    /// Identifies the cut for its heal.
    pub id: u32,
    /// Sides per slot, one bit each.
    pub sides: Vec<u64>,
    /// Only the first side's messages to other sides are lost.
    pub oneway: bool,
    /// Active since.
    pub start: Instant,
    /// Healed at (None: still active).
    pub end: Option<Instant>,
}

/// The sides of a bridge: every one.
pub const BRIDGE: u64 = u64::MAX;

/// The sides mask of group `g` (1-based; group 0 is a bridge).
pub fn side_of_group(g: u16) -> u64 {
    match g {
        0 => BRIDGE,
        g => 1u64.checked_shl(u32::from(g) - 1).unwrap_or(1 << 63),
    }
}

impl Cut {
    /// Whether messages from `a` to `b` are lost under this cut.
    #[inline]
    pub fn blocks(&self, a: usize, b: usize) -> bool {
        let (sa, sb) = (self.sides[a], self.sides[b]);
        if sa & sb != 0 {
            return false;
        }
        !self.oneway || sa & 1 == 1
    }
    /// Whether the cut separates `a` and `b` in either direction.
    pub fn separates(&self, a: usize, b: usize) -> bool {
        self.blocks(a, b) || self.blocks(b, a)
    }
    /// Whether the cut gives `a` a reason to remove `b`: it separates the
    /// two. Removals of members of one's own side are not excused: a node
    /// cut off alone, or a group cut off together, accuses every member it
    /// watched across the cut, and once the cut heals those accusations
    /// reach members that never lost the accused, who must not take them
    /// for deaths. Nor are a bridge's (on more than one side): it reaches
    /// both sides, and must not take one side's accusations of the other
    /// for deaths. A one-way cut excuses every removal.
    pub fn excuses(&self, a: usize, b: usize) -> bool {
        self.oneway || self.separates(a, b)
    }
    /// Whether it was in force at any time in `[from, to]`.
    pub fn overlaps(&self, from: Instant, to: Instant) -> bool {
        self.start <= to && self.end.is_none_or(|e| e > from)
    }
}

/// Loss (1.0: a cut) on the link between two nodes, for a while.
#[derive(Clone, Debug)]
pub struct LinkCut {
    /// Identifies it for its heal.
    pub id: u32,
    /// One end.
    pub from: usize,
    /// The other end.
    pub to: usize,
    /// Only messages from `from` to `to` are hit.
    pub oneway: bool,
    /// Loss probability on the link; 1.0 cuts it.
    pub loss: f64,
    /// Active since.
    pub start: Instant,
    /// Healed at (None: still active).
    pub end: Option<Instant>,
    /// Whether it excuses removals (see [`Network::excuses_removals`]).
    pub excused: bool,
}

impl LinkCut {
    /// Whether messages from `a` to `b` travel on this link (in its
    /// direction when one-way).
    #[inline]
    pub fn hits(&self, a: usize, b: usize) -> bool {
        (a == self.from && b == self.to) || (!self.oneway && a == self.to && b == self.from)
    }
    /// Whether it drops every message.
    pub fn cuts(&self) -> bool {
        self.loss >= 1.0
    }
    /// Whether it was in force at any time in `[from, to]`.
    pub fn overlaps(&self, from: Instant, to: Instant) -> bool {
        self.start <= to && self.end.is_none_or(|e| e > from)
    }
}

struct Override {
    from: Option<Bits>,
    to: Option<Bits>,
    latency: Option<Latency>,
    loss: Option<f64>,
    duplicate: Option<f64>,
}

impl Override {
    fn matches(&self, a: usize, b: usize) -> bool {
        self.from.as_ref().is_none_or(|s| s.get(a)) && self.to.as_ref().is_none_or(|s| s.get(b))
    }
}

/// Extra latency or loss on every link touching some nodes, for a while.
#[derive(Clone, Debug)]
pub struct Burst {
    /// Identifies it for its end.
    pub id: u32,
    /// Nodes whose links are hit.
    pub nodes: Bits,
    /// Extra one-way latency.
    pub extra: Duration,
    /// Extra loss probability.
    pub loss: f64,
    /// Only messages into `nodes` are hit.
    pub inbound: bool,
    /// Whether it excuses removals (see [`Network::excuses_removals`]).
    pub excused: bool,
    /// Active since.
    pub start: Instant,
    /// Ended at.
    pub end: Option<Instant>,
}

/// Why a message did not arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It arrives after this one-way latency.
    Arrives(Duration),
    /// A partition or clog ate it.
    Cut,
    /// Random loss ate it.
    Lost,
}

/// The seeded network.
pub struct Network {
    latency: Latency,
    loss: f64,
    duplicate: f64,
    /// Per-link FIFO delivery.
    pub ordered: bool,
    /// Time for a dial to an unreachable host to fail.
    pub connect_timeout: Duration,
    overrides: Vec<Override>,
    /// Every cut ever made (active ones have no end).
    pub cuts: Vec<Cut>,
    active_cuts: Vec<usize>,
    /// Every burst ever made.
    pub bursts: Vec<Burst>,
    active_bursts: Vec<usize>,
    /// Every link fault ever made.
    pub links: Vec<LinkCut>,
    active_links: Vec<usize>,
    next_id: u32,
    /// Extra random delay, up to this, on every message (zero: none).
    jitter: Duration,
    rng: ChaCha8Rng,
}

impl Network {
    /// A network for `slots` nodes.
    pub fn new(spec: &NetSpec, slots: usize, rng: ChaCha8Rng) -> Self {
        let set = |v: &Vec<u32>| (!v.is_empty()).then(|| Bits::of(slots, v));
        let overrides = spec
            .links
            .iter()
            .map(|l: &LinkOverride| Override {
                from: set(&l.from),
                to: set(&l.to),
                latency: l.latency,
                loss: l.loss,
                duplicate: l.duplicate,
            })
            .collect();
        Network {
            latency: spec.latency,
            loss: spec.loss,
            duplicate: spec.duplicate,
            ordered: spec.ordered,
            connect_timeout: spec.connect_timeout,
            overrides,
            cuts: Vec::new(),
            active_cuts: Vec::new(),
            bursts: Vec::new(),
            active_bursts: Vec::new(),
            links: Vec::new(),
            active_links: Vec::new(),
            next_id: 1,
            jitter: Duration::ZERO,
            rng,
        }
    }

    /// Whether any link may lose messages without a fault.
    pub fn lossy(&self) -> bool {
        self.loss > 0.0
            || self
                .overrides
                .iter()
                .any(|o| o.loss.is_some_and(|l| l > 0.0))
    }

    /// Whether `a`'s messages to `b` are cut off now.
    #[inline]
    pub fn blocked(&self, a: usize, b: usize) -> bool {
        self.active_cuts.iter().any(|&i| self.cuts[i].blocks(a, b))
            || self.active_links.iter().any(|&i| {
                let l = &self.links[i];
                l.cuts() && l.hits(a, b)
            })
    }

    /// What happens to one message from `a` to `b` sent now.
    pub fn fate(&mut self, a: usize, b: usize) -> Fate {
        if self.blocked(a, b) {
            return Fate::Cut;
        }
        let (mut lat, mut loss) = (self.latency, self.loss);
        for o in &self.overrides {
            if o.matches(a, b) {
                lat = o.latency.unwrap_or(lat);
                loss = o.loss.unwrap_or(loss);
            }
        }
        let mut extra = Duration::ZERO;
        for &i in &self.active_bursts {
            let burst = &self.bursts[i];
            if burst.nodes.get(b) || (!burst.inbound && burst.nodes.get(a)) {
                extra = extra + burst.extra;
                loss = 1.0 - (1.0 - loss) * (1.0 - burst.loss);
            }
        }
        for &i in &self.active_links {
            let link = &self.links[i];
            if link.hits(a, b) {
                loss = 1.0 - (1.0 - loss) * (1.0 - link.loss);
            }
        }
        if loss > 0.0 && self.chance(loss) {
            return Fate::Lost;
        }
        Fate::Arrives(self.sample(lat) + extra + self.jitter())
    }

    /// Sets the one-way latency from `a` to `b` from now on (over any
    /// other setting for that link).
    pub fn set_link_latency(&mut self, a: usize, b: usize, d: Duration) {
        self.overrides.push(Override {
            from: Some(Bits::of(a + 1, &[a as u32])),
            to: Some(Bits::of(b + 1, &[b as u32])),
            latency: Some(Latency::Constant(d)),
            loss: None,
            duplicate: None,
        });
    }

    /// Adds up to `d` of random delay to every message from now on, and
    /// lets messages on one link overtake each other.
    pub fn set_jitter(&mut self, d: Duration) {
        self.jitter = d;
        self.ordered = false;
    }

    /// One draw of the jitter (no draw when there is none).
    fn jitter(&mut self) -> Duration {
        match self.jitter.as_millis() {
            0 => Duration::ZERO,
            j => Duration::from_millis(self.rng.next_u64() % (j + 1)),
        }
    }

    /// Whether one more copy of a message from `a` to `b` arrives.
    pub fn duplicated(&mut self, a: usize, b: usize) -> bool {
        let mut dup = self.duplicate;
        for o in &self.overrides {
            if o.matches(a, b) {
                dup = o.duplicate.unwrap_or(dup);
            }
        }
        dup > 0.0 && self.chance(dup)
    }

    /// One draw of the latency from `a` to `b`, ignoring loss.
    pub fn latency(&mut self, a: usize, b: usize) -> Duration {
        match self.fate_latency_only(a, b) {
            Some(d) => d,
            None => self.sample(self.latency),
        }
    }

    fn fate_latency_only(&mut self, a: usize, b: usize) -> Option<Duration> {
        let mut lat = self.latency;
        for o in &self.overrides {
            if o.matches(a, b) {
                lat = o.latency.unwrap_or(lat);
            }
        }
        let mut extra = Duration::ZERO;
        for &i in &self.active_bursts {
            let burst = &self.bursts[i];
            if burst.nodes.get(a) || burst.nodes.get(b) {
                extra = extra + burst.extra;
            }
        }
        Some(self.sample(lat) + extra + self.jitter())
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A uniform draw in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn sample(&mut self, l: Latency) -> Duration {
        match l {
            Latency::Constant(d) => d,
            Latency::Uniform(a, b) => {
                let span = b.as_millis() - a.as_millis() + 1;
                Duration::from_millis(a.as_millis() + self.rng.next_u64() % span)
            }
            Latency::LogNormal { median, sigma, max } => {
                // Box-Muller: one standard normal draw.
                let u1 = self.unit().max(f64::MIN_POSITIVE);
                let u2 = self.unit();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let ms = median.as_millis() as f64 * (sigma * z).exp();
                Duration::from_millis((ms.round() as u64).clamp(0, max.as_millis()))
            }
        }
    }

    /// Starts a partition of one group per slot (group 0: a bridge);
    /// returns its id.
    pub fn cut(&mut self, groups: Vec<u16>, oneway: bool, now: Instant) -> u32 {
        self.cut_sides(groups.into_iter().map(side_of_group).collect(), oneway, now)
    }

    /// Starts a partition of sides per slot (see [`Cut`]); returns its id.
    pub fn cut_sides(&mut self, sides: Vec<u64>, oneway: bool, now: Instant) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.cuts.push(Cut {
            id,
            sides,
            oneway,
            start: now,
            end: None,
        });
        self.active_cuts.push(self.cuts.len() - 1);
        id
    }

    /// Starts loss (1.0: a cut) on the link from `from` to `to` (and back
    /// unless `oneway`); returns its id.
    pub fn link(&mut self, from: usize, to: usize, oneway: bool, loss: f64, now: Instant) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.links.push(LinkCut {
            id,
            from,
            to,
            oneway,
            loss,
            start: now,
            end: None,
            excused: true,
        });
        self.active_links.push(self.links.len() - 1);
        id
    }

    /// Ends the cut, burst or link fault `id` (every one when `None`).
    pub fn heal(&mut self, id: Option<u32>, now: Instant) {
        let cuts = &mut self.cuts;
        self.active_cuts.retain(|&i| {
            let hit = id.is_none_or(|id| cuts[i].id == id);
            if hit {
                cuts[i].end = Some(now);
            }
            !hit
        });
        let bursts = &mut self.bursts;
        self.active_bursts.retain(|&i| {
            let hit = id.is_none_or(|id| bursts[i].id == id);
            if hit {
                bursts[i].end = Some(now);
            }
            !hit
        });
        let links = &mut self.links;
        self.active_links.retain(|&i| {
            let hit = id.is_none_or(|id| links[i].id == id);
            if hit {
                links[i].end = Some(now);
            }
            !hit
        });
    }

    /// Starts extra latency and loss on every link touching `nodes`.
    pub fn burst(&mut self, nodes: Bits, extra: Duration, loss: f64, now: Instant) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.bursts.push(Burst {
            id,
            nodes,
            extra,
            loss,
            inbound: false,
            excused: true,
            start: now,
            end: None,
        });
        self.active_bursts.push(self.bursts.len() - 1);
        id
    }

    /// Whether any cut (or link cut) that separates `a` and `b` was in
    /// force in `[from, to]`.
    pub fn separated(&self, a: usize, b: usize, from: Instant, to: Instant) -> bool {
        self.cuts
            .iter()
            .any(|c| c.overlaps(from, to) && c.separates(a, b))
            || self
                .links
                .iter()
                .any(|l| l.cuts() && l.overlaps(from, to) && (l.hits(a, b) || l.hits(b, a)))
    }

    /// Whether any fault of the network (cut, clog, spike, loss burst, link
    /// fault) was in force in `[from, to]`.
    pub fn disturbed(&self, from: Instant, to: Instant) -> bool {
        self.cuts.iter().any(|c| c.overlaps(from, to))
            || self
                .bursts
                .iter()
                .any(|b| b.start <= to && b.end.is_none_or(|e| e > from))
            || self.links.iter().any(|l| l.overlaps(from, to))
    }

    /// Whether a network fault that excuses `a` removing `b` was in force
    /// in `[from, to]`: a partition or clog that gave `a` a reason (see
    /// [`Cut::excuses`]), and any burst or link fault not marked
    /// `excused = false` (faults a membership protocol must ride out
    /// without removing anyone).
    pub fn excuses_removals(&self, a: usize, b: usize, from: Instant, to: Instant) -> bool {
        self.cuts
            .iter()
            .any(|c| c.overlaps(from, to) && c.excuses(a, b))
            || self
                .bursts
                .iter()
                .any(|b| b.excused && b.start <= to && b.end.is_none_or(|e| e > from))
            || self.links.iter().any(|l| l.excused && l.overlaps(from, to))
    }

    /// Whether a loss burst touching `a` or `b`, or a lossy link fault
    /// between them, was in force in `[from, to]`.
    pub fn lossy_burst(&self, a: usize, b: usize, from: Instant, to: Instant) -> bool {
        self.bursts.iter().any(|x| {
            x.loss > 0.0
                && (x.nodes.get(a) || x.nodes.get(b))
                && x.start <= to
                && x.end.is_none_or(|e| e > from)
        }) || self
            .links
            .iter()
            .any(|l| !l.cuts() && l.overlaps(from, to) && (l.hits(a, b) || l.hits(b, a)))
    }

    /// Whether any cut (or link cut) was in force at some time in
    /// `[from, to]`.
    pub fn cut_during(&self, from: Instant, to: Instant) -> bool {
        self.cuts.iter().any(|c| c.overlaps(from, to))
            || self.links.iter().any(|l| l.cuts() && l.overlaps(from, to))
    }

    /// Whether any cut (or link cut) is in force now.
    pub fn any_cut(&self) -> bool {
        !self.active_cuts.is_empty() || self.active_links.iter().any(|&i| self.links[i].cuts())
    }

    /// Draws from the network's RNG (for shapes and targets).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_nodes_reach_both_sides_and_oneway_cuts_one_direction() {
        let c = Cut {
            id: 1,
            sides: [1, 1, 2, 0].map(side_of_group).to_vec(),
            oneway: false,
            start: Instant::ZERO,
            end: None,
        };
        assert!(c.blocks(0, 2) && c.blocks(2, 0));
        assert!(!c.blocks(0, 1) && !c.blocks(3, 2) && !c.blocks(0, 3));
        let c = Cut { oneway: true, ..c };
        assert!(c.blocks(0, 2) && !c.blocks(2, 0));
        assert!(c.separates(2, 0));
    }

    /// A removal is excused across the cut only: not of a member of
    /// one's own side, whether a third node is isolated or whole groups
    /// are cut apart, nor by a bridge, which reaches both sides.
    #[test]
    fn a_cut_excuses_removals_across_it_only() {
        let cut = |groups: &[u16]| Cut {
            id: 1,
            sides: groups.iter().map(|g| side_of_group(*g)).collect(),
            oneway: false,
            start: Instant::ZERO,
            end: None,
        };
        let isolated = cut(&[1, 1, 1, 2]);
        assert!(!isolated.excuses(0, 1));
        assert!(isolated.excuses(0, 3) && isolated.excuses(3, 0));
        let bridged = cut(&[1, 1, 0, 2, 2]);
        assert!(!bridged.excuses(0, 1) && !bridged.excuses(2, 1) && bridged.excuses(0, 3));
        let two = cut(&[1, 1, 1, 2, 2]);
        assert!(!two.excuses(0, 1) && !two.excuses(3, 4) && two.excuses(0, 3));
        assert!(Cut {
            oneway: true,
            ..isolated
        }
        .excuses(0, 1));
    }

    #[test]
    fn bits_grow_and_count() {
        let mut b = Bits::new(3);
        b.set(130, true);
        b.set(2, true);
        assert_eq!(b.count(), 2);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![2, 130]);
        assert!(!b.get(500));
    }
}
