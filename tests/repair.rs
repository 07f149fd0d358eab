//! Nothing lost: history repair after splits, pauses and for newcomers.

use gossip_chat::testing::{addr_of, Harness};
use gossip_chat::{Config, Duration, Event, MsgId};
use std::collections::BTreeMap;

fn cluster(n: usize, seed: u64) -> Harness {
    let mut h = Harness::new(Config::lan(), Duration::from_millis(5), seed);
    h.trace_messages = false;
    h.add_chain(n);
    h.run_until_true(Duration::from_secs(10), Harness::converged)
        .expect("cluster converges");
    h
}

/// Every chat node `i` delivered, by id, counting duplicates.
fn delivered(h: &Harness, i: usize) -> BTreeMap<MsgId, usize> {
    let mut m = BTreeMap::new();
    for s in h.events().iter().filter(|s| s.node == i) {
        if let Event::Chat { id, .. } = &s.event {
            *m.entry(*id).or_insert(0) += 1;
        }
    }
    m
}

/// Per-sender seqs delivered by node `i`, in delivery order.
fn per_sender_in_order(h: &Harness, i: usize) -> bool {
    let mut last: BTreeMap<_, u64> = BTreeMap::new();
    h.events()
        .iter()
        .filter(|s| s.node == i)
        .all(|s| match &s.event {
            Event::Chat { id, .. } => {
                let prev = last.insert(id.origin, id.seq).unwrap_or(0);
                id.seq > prev
            }
            _ => true,
        })
}

fn all_hold_everything(h: &Harness, nodes: &[usize], total: usize) -> bool {
    nodes.iter().all(|&i| delivered(h, i).len() == total)
}

#[test]
fn after_a_split_heals_both_sides_see_everything_said_on_either() {
    let mut h = cluster(10, 21);
    let left: Vec<usize> = (0..5).collect();
    let right: Vec<usize> = (5..10).collect();
    h.send(0, "before the split");
    h.run_for(Duration::from_secs(1));
    h.split(&left, &right);
    for k in 0..20 {
        h.send(k % 5, &format!("left {k}"));
        h.send(5 + k % 5, &format!("right {k}"));
        h.run_for(Duration::from_millis(500));
    }
    // The sides heard nothing of each other, and the links across were
    // declared dead.
    assert!(!h.chats(0).iter().any(|c| c.starts_with("right")));
    assert!(!h.chats(9).iter().any(|c| c.starts_with("left")));
    assert!((5..10).any(|j| !h.node(0).knows_alive(&addr_of(j))));
    h.heal();
    let healed_at = h.now();
    let all: Vec<usize> = (0..10).collect();
    let done = h.run_until_true(Duration::from_secs(30), |h| {
        all_hold_everything(h, &all, 41) && h.converged()
    });
    let done = done.expect("the split never fully healed");
    println!(
        "split healed: full history and roster everywhere after {}",
        done - healed_at
    );
    assert!(
        done - healed_at <= Duration::from_secs(10),
        "took {}",
        done - healed_at
    );
    for i in all {
        assert!(
            delivered(&h, i).values().all(|&n| n == 1),
            "node {i} got a duplicate"
        );
        assert!(
            per_sender_in_order(&h, i),
            "node {i} broke per-sender order"
        );
    }
}

#[test]
fn a_node_paused_shorter_than_detection_receives_everything_it_missed() {
    let mut h = cluster(5, 22);
    h.pause(4);
    for k in 0..5 {
        h.send(k % 4, &format!("while paused {k}"));
        h.run_for(Duration::from_millis(200));
    }
    h.resume(4);
    let all: Vec<usize> = (0..5).collect();
    h.run_until_true(Duration::from_secs(5), |h| all_hold_everything(h, &all, 5))
        .expect("the paused node caught up");
    assert!(per_sender_in_order(&h, 4));
    // It was never taken for dead.
    for i in 0..4 {
        assert!(h.node(i).knows_alive(&addr_of(4)));
    }
}

#[test]
fn a_node_paused_past_detection_is_removed_then_rejoins_and_catches_up() {
    let mut h = cluster(5, 23);
    h.pause(4);
    for k in 0..10 {
        h.send(k % 4, &format!("while paused {k}"));
        h.run_for(Duration::from_millis(500));
    }
    for i in 0..4 {
        assert!(
            !h.node(i).knows_alive(&addr_of(4)),
            "node {i} still lists the paused node"
        );
    }
    h.resume(4);
    let all: Vec<usize> = (0..5).collect();
    let t0 = h.now();
    let t = h
        .run_until_true(Duration::from_secs(10), |h| {
            h.converged() && all_hold_everything(h, &all, 10)
        })
        .expect("the paused node rejoined and caught up");
    println!("rejoined and caught up after {}", t - t0);
    assert!(
        h.node(4).key().incarnation > 1,
        "it refuted its death with a new life"
    );
    assert!(per_sender_in_order(&h, 4));
    assert!(delivered(&h, 4).values().all(|&n| n == 1));
}

#[test]
fn a_newcomer_receives_recent_history_marked_as_history_and_no_gaps() {
    let mut h = cluster(3, 24);
    for k in 0..150 {
        h.send(k % 3, &format!("old {k}"));
    }
    h.run_for(Duration::from_secs(2));
    let n = h.add_node();
    h.join(n, 1);
    h.run_until_true(Duration::from_secs(5), Harness::converged)
        .expect("newcomer joins");
    h.run_for(Duration::from_secs(3));
    let newcomer: Vec<&Event> = h
        .events()
        .iter()
        .filter(|s| s.node == n)
        .map(|s| &s.event)
        .collect();
    let history = newcomer
        .iter()
        .filter(|e| matches!(e, Event::Chat { history: true, .. }))
        .count();
    assert_eq!(history, Config::lan().newcomer_history);
    assert!(
        !newcomer.iter().any(|e| matches!(e, Event::Gap { .. })),
        "no gap for old history"
    );
    assert!(per_sender_in_order(&h, n));
    h.send(0, "live");
    h.run_for(Duration::from_secs(1));
    assert_eq!(h.chats(n).last().map(String::as_str), Some("live"));
}
