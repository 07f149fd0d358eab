//! A chat carries its author's wall-clock time to every node unchanged:
//! live, by repair after a split, and as a newcomer's history. The
//! simulator's authors read a fixed epoch plus virtual time.

use gossip_chat::{Config, Duration, Event, Input, Via};
use gossip_sim::builder::Sim;
use gossip_sim::scenario::InitialJoin;
use gossip_sim::world::WALL_EPOCH_MS;
use std::collections::BTreeMap;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Every chat delivery: (node, text, sent_ms, how it came).
fn deliveries(sim: &Sim) -> Vec<(u32, String, u64, Via)> {
    sim.events()
        .iter()
        .filter_map(|e| match &e.event {
            Event::Chat {
                text, sent_ms, via, ..
            } => Some((e.node, text.to_string(), *sent_ms, *via)),
            _ => None,
        })
        .collect()
}

#[test]
fn every_node_gets_each_chats_author_time_live_by_repair_and_as_history() {
    let mut sim = Sim::builder()
        .nodes(6)
        .spare(1)
        .config(Config::lan())
        .latency(ms(5))
        .seed(31)
        .join(InitialJoin::Chain)
        .build();
    let deadline = sim.now() + s(10);
    assert!(
        sim.run_until_true(deadline, ms(10), |sim| sim.up().len() == 6
            && sim.converged())
    );

    // text -> the author time it was sent with.
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    send(&mut sim, &mut sent, 0, "before the split".into());
    // Times the simulator would not give: unknown (0) and the largest.
    for (text, wall_ms) in [("unknown time", 0), ("far future", u64::MAX)] {
        sim.input(
            1,
            Input::Send {
                text: text.into(),
                wall_ms,
            },
        );
        sent.insert(text.into(), wall_ms);
    }
    sim.run_for(s(1));

    let left = [0, 1, 2];
    let right = [3, 4, 5];
    sim.split(&left, &right);
    for k in 0..10 {
        send(&mut sim, &mut sent, k % 3, format!("left {k}"));
        send(&mut sim, &mut sent, 3 + k % 3, format!("right {k}"));
        sim.run_for(ms(700));
    }
    sim.heal();
    let everyone = sent.len();
    let deadline = sim.now() + s(30);
    assert!(
        sim.run_until_true(deadline, ms(50), |sim| (0..6)
            .all(|i| sim.chats(i).len() == everyone)),
        "the split did not heal"
    );
    let newcomer = sim.add_node().expect("a spare slot");
    sim.join(newcomer, 4);
    sim.run_for(s(5));

    let got = deliveries(&sim);
    for (node, text, sent_ms, _) in &got {
        assert_eq!(
            Some(sent_ms),
            sent.get(text),
            "node {node} shows {text:?} with another time"
        );
    }
    // Every old node delivered everything; across the healed split some
    // came by repair (the nodes at the ends of the first link across; they
    // pass it on live).
    for i in 0..6 {
        assert_eq!(got.iter().filter(|d| d.0 == i).count(), everyone);
    }
    for (side, other) in [(left, "right"), (right, "left")] {
        assert!(
            got.iter()
                .any(|d| side.contains(&d.0) && d.3 == Via::Repair && d.1.starts_with(other)),
            "nothing repaired into {side:?}"
        );
    }
    assert!(
        got.iter()
            .filter(|d| d.0 == newcomer && d.3 == Via::CatchUp)
            .count()
            >= 10,
        "the newcomer's history"
    );
}

/// Node `i` sends `text` now; its author time (the simulator's epoch plus
/// virtual now) goes into `sent`.
fn send(sim: &mut Sim, sent: &mut BTreeMap<String, u64>, i: u32, text: String) {
    sent.insert(text.clone(), WALL_EPOCH_MS + sim.now().as_millis());
    sim.send(i, &text);
}
