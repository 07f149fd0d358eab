//! Quick check: 200 nodes, split in halves for 60 s with chat on both sides.
use gossip_chat::testing::Harness;
use gossip_chat::{Config, Duration, Event};
use std::collections::BTreeSet;

fn main() {
    let seed: u64 = std::env::args().nth(1).map_or(1, |s| s.parse().unwrap());
    let n = 200;
    let mut h = Harness::new(Config::lan(), Duration::from_millis(10), seed);
    h.trace_messages = false;
    for i in 0..n {
        h.add_node();
        if i > 0 {
            h.join(i, (i * 7919) % i);
        }
        h.run_for(Duration::from_millis(20));
    }
    let t = h.run_until_true(Duration::from_secs(30), Harness::converged);
    println!("converged: {:?} at {}", t.is_some(), h.now());
    let nb: Vec<usize> = (0..n).map(|i| h.node(i).neighbours().count()).collect();
    println!(
        "degree min {} max {}",
        nb.iter().min().unwrap(),
        nb.iter().max().unwrap()
    );
    let left: Vec<usize> = (0..n / 2).collect();
    let right: Vec<usize> = (n / 2..n).collect();
    h.split(&left, &right);
    let mut sent = 0;
    for k in 0..60 {
        h.send(k % (n / 2), &format!("L{k}"));
        h.send(n / 2 + k % (n / 2), &format!("R{k}"));
        sent += 2;
        h.run_for(Duration::from_secs(1));
    }
    let have0 = h
        .events()
        .iter()
        .filter(|s| s.node == 0 && matches!(s.event, Event::Chat { .. }))
        .count();
    let alive0 = h.node(0).roster().count();
    println!("before heal: node 0 has {have0} of {sent} msgs, roster {alive0}");
    h.heal();
    let t0 = h.now();
    let all = |h: &Harness| {
        (0..n).all(|i| {
            let ids: BTreeSet<_> = h
                .events()
                .iter()
                .filter(|s| s.node == i)
                .filter_map(|s| match &s.event {
                    Event::Chat { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            ids.len() == sent
        })
    };
    let done = h.run_until_true(Duration::from_secs(60), |h| all(h));
    println!("history complete after heal: {:?}", done.map(|t| t - t0));
    let conv = h.run_until_true(Duration::from_secs(60), Harness::converged);
    println!("rosters converged after heal: {:?}", conv.map(|t| t - t0));
    let dups: u64 = (0..n).map(|i| h.node(i).stats().duplicates).sum();
    let refs: u64 = (0..n).map(|i| h.node(i).stats().refutations).sum();
    println!("duplicates dropped {dups}, refutations {refs}");
}
