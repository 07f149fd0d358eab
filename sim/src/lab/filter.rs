//! From the network's state to packet filter rules: the chance that a
//! packet from one node to another is dropped, for every ordered pair,
//! rendered as one `nft` script for the hub's bridge.
//!
//! The simulator's [`Network`] stays the record of every cut, link fault
//! and loss burst (the checks read it); this file only turns what is in
//! force now into rules. A crashed node has every link cut: its kernel
//! would otherwise go on acknowledging packets for the stopped process.

use crate::addr::addr_of;
use crate::net::{Bits, Network};
use crate::scenario::NetSpec;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Drop chances are applied in steps of 1/`SCALE`.
pub const SCALE: u32 = 10_000;

/// The drop chance (in 1/[`SCALE`]) of packets from `a` to `b` now.
pub fn drop_chance(net: &Network, spec: &NetSpec, crashed: &Bits, a: usize, b: usize) -> u32 {
    if crashed.get(a) || crashed.get(b) || net.blocked(a, b) {
        return SCALE;
    }
    let mut loss = spec.loss;
    for o in &spec.links {
        let hit = |set: &Vec<u32>, x: usize| set.is_empty() || set.contains(&(x as u32));
        if hit(&o.from, a) && hit(&o.to, b) {
            loss = o.loss.unwrap_or(loss);
        }
    }
    for burst in net.bursts.iter().filter(|x| x.end.is_none()) {
        if burst.nodes.get(a) || burst.nodes.get(b) {
            loss = 1.0 - (1.0 - loss) * (1.0 - burst.loss);
        }
    }
    for link in net.links.iter().filter(|l| l.end.is_none()) {
        if link.hits(a, b) {
            loss = 1.0 - (1.0 - loss) * (1.0 - link.loss);
        }
    }
    (loss.clamp(0.0, 1.0) * f64::from(SCALE)).round() as u32
}

/// The `nft -f` script that replaces the hub's table with rules dropping
/// packets between the first `slots` nodes with the chances given by
/// `chance(a, b)`.
pub fn script(slots: usize, chance: impl Fn(usize, usize) -> u32) -> String {
    // Pairs grouped by chance: one set and one rule per distinct chance.
    let mut groups: BTreeMap<u32, Vec<(usize, usize)>> = BTreeMap::new();
    for a in 0..slots {
        for b in 0..slots {
            let c = chance(a, b);
            if a != b && c > 0 {
                groups.entry(c).or_default().push((a, b));
            }
        }
    }
    let mut s = String::from("add table bridge lab\ndelete table bridge lab\ntable bridge lab {\n");
    for (i, pairs) in groups.values().enumerate() {
        let elems: Vec<String> = pairs
            .iter()
            .map(|&(a, b)| format!("{} . {}", addr_of(a as u32).ip(), addr_of(b as u32).ip()))
            .collect();
        let _ = writeln!(
            s,
            "  set d{i} {{ type ipv4_addr . ipv4_addr; elements = {{ {} }} }}",
            elems.join(", ")
        );
    }
    s.push_str("  chain links {\n    type filter hook forward priority 0; policy accept;\n");
    for (i, &c) in groups.keys().enumerate() {
        if c >= SCALE {
            let _ = writeln!(s, "    ip saddr . ip daddr @d{i} drop");
        } else {
            let _ = writeln!(
                s,
                "    ip saddr . ip daddr @d{i} numgen random mod {SCALE} < {c} drop"
            );
        }
    }
    s.push_str("  }\n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Latency;
    use gossip_chat::{Duration, Instant};
    use rand_core::SeedableRng;

    fn spec(loss: f64) -> NetSpec {
        NetSpec {
            latency: Latency::Constant(Duration::from_millis(1)),
            ordered: true,
            loss,
            duplicate: 0.0,
            connect_timeout: Duration::from_secs(1),
            links: Vec::new(),
        }
    }

    fn net(spec: &NetSpec) -> Network {
        Network::new(spec, 4, rand_chacha::ChaCha8Rng::seed_from_u64(0))
    }

    #[test]
    fn cuts_crashes_and_loss_become_drop_chances() {
        let sp = spec(0.05);
        let mut n = net(&sp);
        let none = Bits::new(4);
        assert_eq!(drop_chance(&n, &sp, &none, 0, 1), 500);
        // One-way cut: the first side's packets to the other are dropped.
        let id = n.cut(vec![1, 1, 2, 2], true, Instant::ZERO);
        assert_eq!(drop_chance(&n, &sp, &none, 0, 2), SCALE);
        assert_eq!(drop_chance(&n, &sp, &none, 2, 0), 500);
        n.heal(Some(id), Instant::ZERO);
        assert_eq!(drop_chance(&n, &sp, &none, 0, 2), 500);
        // A crashed node is cut both ways.
        let crashed = Bits::of(4, &[3]);
        assert_eq!(drop_chance(&n, &sp, &crashed, 3, 1), SCALE);
        assert_eq!(drop_chance(&n, &sp, &crashed, 1, 3), SCALE);
        // A loss burst on node 1 compounds with the base loss.
        n.burst(Bits::of(4, &[1]), Duration::ZERO, 0.5, Instant::ZERO);
        assert_eq!(drop_chance(&n, &sp, &none, 0, 1), 5250);
        assert_eq!(drop_chance(&n, &sp, &none, 0, 2), 500);
    }

    #[test]
    fn the_script_groups_pairs_by_chance() {
        let s = script(3, |a, b| match (a, b) {
            (0, 1) | (1, 0) => SCALE,
            (2, _) => 300,
            _ => 0,
        });
        assert!(s.contains("set d0 { type ipv4_addr . ipv4_addr; elements = { 10.0.0.3 . 10.0.0.1, 10.0.0.3 . 10.0.0.2 } }"), "{s}");
        assert!(s.contains("set d1 { type ipv4_addr . ipv4_addr; elements = { 10.0.0.1 . 10.0.0.2, 10.0.0.2 . 10.0.0.1 } }"), "{s}");
        assert!(s.contains("ip saddr . ip daddr @d0 numgen random mod 10000 < 300 drop"));
        assert!(s.contains("ip saddr . ip daddr @d1 drop"));
        // No loss anywhere: an empty chain that still replaces the old one.
        let empty = script(3, |_, _| 0);
        assert!(empty.starts_with("add table bridge lab\ndelete table bridge lab\n"));
        assert!(!empty.contains("drop"));
    }
}
