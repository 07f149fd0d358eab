//! Properties of small groups of nodes on the simulator's engine, over
//! links with random delays: every chat reaches every node once and in
//! per-sender order, also when the sender's links drop with chats in
//! flight.
//!
//! Run deeper with `PROPTEST_CASES=10000 cargo test --release -p gossip-sim
//! --test prop_group`.

use gossip_chat::{Config, Duration, Event, Id, Instant};
use gossip_sim::addr::id_of;
use gossip_sim::builder::Sim;
use gossip_sim::scenario::Latency;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::collections::BTreeSet;

/// `default_cases` cases per property, or `PROPTEST_CASES`. The cases are
/// drawn from a fixed seed, so that every run tries the same ones, or from
/// `PROPTEST_RNG_SEED` (a number) to explore others.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6f55_1e2d);
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}

/// A chat to send: from which node, after how many ms since the last one.
fn sends() -> impl Strategy<Value = Vec<(u32, u64)>> {
    prop::collection::vec((0u32..3, prop_oneof![0u64..5, 0u64..400]), 1..25)
}

/// Per node, the chats it delivered: (origin, seq, text).
fn log(sim: &Sim, i: u32) -> Vec<(Id, u64, String)> {
    sim.events()
        .iter()
        .filter(|e| e.node == i)
        .filter_map(|e| match &e.event {
            Event::Chat { id, text, .. } => Some((id.origin.id, id.seq, text.to_string())),
            _ => None,
        })
        .collect()
}

fn gaps(sim: &Sim) -> usize {
    sim.events()
        .iter()
        .filter(|e| matches!(e.event, Event::Gap { .. }))
        .count()
}

/// Starts `n` nodes joining through node 0 over links of `latency`
/// (FIFO per link), sends the chats (dropping every link of the sender
/// right after the sends marked with a drop, and checking that the chat
/// was lost: one full link delay later no other node has it), lets the
/// group settle, and checks that every node delivered every chat exactly
/// once, in per-sender order, with no gap, and still has every other node
/// in its roster.
fn group_run(
    n: u32,
    seed: u64,
    latency: (u64, u64),
    sends: Vec<(u32, u64, bool)>,
) -> Result<(), TestCaseError> {
    let (lo, hi) = latency;
    let mut sim = Sim::builder()
        .nodes(n)
        .config(Config::testing())
        .latency_dist(Latency::Uniform(
            Duration::from_millis(lo),
            Duration::from_millis(hi),
        ))
        .seed(seed)
        .build();
    sim.run_until(Instant::from_millis(3_000));
    for i in 0..n {
        let roster = sim.node(i).map_or(0, |x| x.roster().count());
        prop_assert_eq!(roster, n as usize - 1, "node {} did not join", i);
    }
    let mut sent: Vec<Vec<String>> = vec![Vec::new(); n as usize];
    for (k, (from, after, drop)) in sends.into_iter().enumerate() {
        let from = from % n;
        sim.run_for(Duration::from_millis(after));
        let text = format!("m{k}");
        sent[from as usize].push(text.clone());
        sim.send(from, &text);
        if drop {
            for j in (0..n).filter(|&j| j != from) {
                sim.reset(from, j);
            }
            // Repair sends nothing younger than a sync interval: what any
            // other node holds one link delay on came by the dropped links.
            sim.run_for(Duration::from_millis(hi + 1));
            for j in (0..n).filter(|&j| j != from) {
                prop_assert!(
                    !sim.chats(j).contains(&text),
                    "node {} got {} past the dropped links",
                    j,
                    text
                );
            }
        }
    }
    // Quiet time for floods and repair to settle.
    sim.run_for(Duration::from_secs(20));

    prop_assert_eq!(gaps(&sim), 0);
    for i in 0..n {
        let log = log(&sim, i);
        let mut seen = BTreeSet::new();
        for (origin, seq, _) in &log {
            prop_assert!(
                seen.insert((*origin, *seq)),
                "node {i} got {origin} #{seq} twice"
            );
        }
        for (j, texts) in sent.iter().enumerate() {
            let got: Vec<(u64, String)> = log
                .iter()
                .filter(|(o, _, _)| *o == id_of(j as u32))
                .map(|(_, s, t)| (*s, t.clone()))
                .collect();
            let want: Vec<(u64, String)> = texts
                .iter()
                .cloned()
                .enumerate()
                .map(|(s, t)| (s as u64 + 1, t))
                .collect();
            prop_assert_eq!(got, want, "node {} from node {}", i, j);
        }
        let roster = sim.node(i).map_or(0, |x| x.roster().count());
        prop_assert_eq!(roster, n as usize - 1, "node {} lost a peer", i);
    }
    Ok(())
}

/// A latency range: from `lo` to `lo + span` ms.
fn latency() -> impl Strategy<Value = (u64, u64)> {
    (
        prop_oneof![0u64..5, 0u64..100],
        prop_oneof![0u64..5, 0u64..300],
    )
        .prop_map(|(lo, span)| (lo, lo + span))
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn every_node_delivers_every_chat_once_in_sender_order(
        n in 2u32..=3,
        seed in any::<u64>(),
        latency in latency(),
        sends in sends(),
    ) {
        let sends = sends.into_iter().map(|(from, after)| (from, after, false)).collect();
        group_run(n, seed, latency, sends)?;
    }

    /// The sender's links drop with its chat in flight (it is lost) and
    /// are dialled again: repair fills what the floods lost.
    #[test]
    fn chats_lost_with_a_dropped_link_are_repaired(
        n in 2u32..=3,
        seed in any::<u64>(),
        latency in latency(),
        sends in sends(),
        drops in prop::collection::vec(prop::bool::weighted(0.25), 25),
        first in 0usize..25,
    ) {
        let mut sends: Vec<(u32, u64, bool)> = sends
            .into_iter()
            .zip(drops)
            .map(|((from, after), drop)| (from, after, drop))
            .collect();
        // At least one drop, so the property is never vacuous.
        let k = first % sends.len();
        sends[k].2 = true;
        group_run(n, seed, latency, sends)?;
    }
}
