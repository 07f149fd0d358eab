//! The node contract, told as sentences over the in-memory harness.

use gossip_chat::testing::{addr_of, Harness};
use gossip_chat::{
    Config, DownReason, Duration, Event, Input, Instant, MemberState, MemberUpdate, Message, MsgId,
    Node, NodeKey, Output,
};
use std::collections::BTreeSet;

fn lan(seed: u64) -> Harness {
    Harness::new(Config::lan(), Duration::from_millis(5), seed)
}

/// `n` nodes, each joining through the previous one, run until everyone
/// knows everyone.
fn cluster(n: usize, seed: u64) -> Harness {
    let mut h = lan(seed);
    h.add_chain(n);
    h.run_until_true(Duration::from_secs(10), Harness::converged)
        .expect("cluster converges");
    h
}

fn chat_ids(h: &Harness, i: usize) -> Vec<MsgId> {
    h.events()
        .iter()
        .filter(|s| s.node == i)
        .filter_map(|s| match &s.event {
            Event::Chat { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

fn down_at(h: &Harness, observer: usize, who: usize) -> Option<(Instant, DownReason)> {
    h.events().iter().find_map(|s| match &s.event {
        Event::PeerDown { node, reason, .. } if s.node == observer && node.addr == addr_of(who) => {
            Some((s.at, *reason))
        }
        _ => None,
    })
}

#[test]
fn two_nodes_discover_each_other_and_exchange_messages() {
    let mut h = lan(1);
    let a = h.add_node();
    let b = h.add_node();
    h.join(b, a);
    let t = h.run_until_true(Duration::from_secs(5), Harness::converged);
    assert!(t.is_some(), "a and b never saw each other");
    h.send(a, "hello from a");
    h.send(b, "hello from b");
    h.run_for(Duration::from_secs(1));
    for i in [a, b] {
        let got: BTreeSet<String> = h.chats(i).into_iter().collect();
        assert!(
            got.contains("hello from a") && got.contains("hello from b"),
            "node {i}: {got:?}"
        );
    }
}

#[test]
fn a_third_node_joins_through_the_second_and_everyone_knows_everyone() {
    let mut h = lan(2);
    let a = h.add_node();
    let b = h.add_node();
    h.join(b, a);
    h.run_for(Duration::from_secs(1));
    let c = h.add_node();
    h.join(c, b);
    let t = h.run_until_true(Duration::from_secs(5), Harness::converged);
    assert!(t.is_some(), "c did not converge through b");
    assert!(h.node(a).knows_alive(&addr_of(c)));
    assert!(h.node(c).knows_alive(&addr_of(a)));
}

#[test]
fn a_silently_crashed_node_is_removed_by_every_live_node_within_three_seconds() {
    let mut h = cluster(6, 3);
    h.run_for(Duration::from_secs(3));
    let victim = 2;
    let crashed_at = h.now();
    h.crash(victim);
    let limit = Duration::from_secs(10);
    let done = h.run_until_true(limit, |h| {
        h.up()
            .iter()
            .all(|&i| !h.node(i).knows_alive(&addr_of(victim)))
    });
    let done = done.expect("crash never detected everywhere");
    let worst = h
        .up()
        .iter()
        .map(|&i| down_at(&h, i, victim).expect("down event").0 - crashed_at)
        .max()
        .unwrap();
    println!(
        "crash removed at every live node after {worst} (all by {})",
        done - crashed_at
    );
    assert!(worst <= Duration::from_secs(3), "took {worst}");
    for i in h.up() {
        assert_eq!(down_at(&h, i, victim).unwrap().1, DownReason::Dead);
    }
}

#[test]
fn a_graceful_leave_is_seen_by_all_at_once() {
    let mut h = cluster(5, 4);
    let leaver = 1;
    let t0 = h.now();
    h.input(leaver, Input::Leave);
    assert!(h.node(leaver).has_left());
    h.run_for(Duration::from_millis(200));
    for i in h.up().into_iter().filter(|i| *i != leaver) {
        let (at, reason) = down_at(&h, i, leaver).expect("leave seen");
        assert_eq!(reason, DownReason::Left);
        assert!(
            at - t0 <= Duration::from_millis(100),
            "node {i} saw the leave after {}",
            at - t0
        );
    }
}

#[test]
fn a_message_floods_to_all_exactly_once_in_a_full_mesh() {
    let mut h = cluster(6, 5);
    for i in 0..6 {
        h.send(i, &format!("m{i}"));
    }
    h.run_for(Duration::from_secs(2));
    for i in 0..6 {
        let ids = chat_ids(&h, i);
        let unique: BTreeSet<MsgId> = ids.iter().copied().collect();
        assert_eq!(ids.len(), 6, "node {i} delivered {ids:?}");
        assert_eq!(unique.len(), 6, "node {i} delivered a duplicate");
    }
    let dups: u64 = (0..6).map(|i| h.node(i).stats().duplicates).sum();
    assert!(
        dups > 0,
        "a full mesh must see redundant copies that dedup stopped"
    );
}

#[test]
fn a_message_floods_to_all_exactly_once_in_a_ring() {
    // A ring: each node keeps two neighbours, so floods go round both ways
    // and meet; dedup must stop them.
    let cfg = Config {
        max_connections: 2,
        ..Config::lan()
    };
    let mut h = Harness::new(cfg, Duration::from_millis(5), 6);
    let n = 6;
    h.add_chain(n);
    h.run_for(Duration::from_secs(15));
    h.send(0, "round");
    h.run_for(Duration::from_secs(2));
    for i in 0..n {
        assert_eq!(h.chats(i), vec!["round".to_string()], "node {i}");
    }
}

#[test]
fn per_sender_order_holds_when_links_reorder() {
    let mut h = cluster(4, 7);
    h.set_jitter(Duration::from_millis(40));
    for k in 0..30 {
        h.send(0, &format!("{k}"));
        h.run_for(Duration::from_millis(2));
    }
    h.run_for(Duration::from_secs(3));
    for i in 0..4 {
        let expect: Vec<String> = (0..30).map(|k| k.to_string()).collect();
        assert_eq!(h.chats(i), expect, "node {i} out of order");
    }
}

#[test]
fn a_restarted_node_is_accepted_and_its_new_messages_are_delivered() {
    let mut h = cluster(4, 8);
    h.send(3, "before");
    h.run_for(Duration::from_secs(1));
    h.crash(3);
    h.run_for(Duration::from_millis(500));
    h.restart(3, 1);
    h.run_until_true(Duration::from_secs(5), Harness::converged)
        .expect("restarted node rejoins");
    assert_eq!(h.node(3).key().incarnation, 2);
    h.send(3, "after");
    h.run_for(Duration::from_secs(1));
    for i in 0..3 {
        let chats = h.chats(i);
        assert_eq!(
            chats.iter().filter(|c| *c == "after").count(),
            1,
            "node {i}: {chats:?}"
        );
        assert_eq!(
            chats.iter().filter(|c| *c == "before").count(),
            1,
            "node {i}: {chats:?}"
        );
    }
    // The newcomer got the recent history, marked as such.
    let hist = h.events().iter().any(|s| {
        s.node == 3
            && matches!(&s.event, Event::Chat { text, history: true, .. } if &**text == "before")
    });
    assert!(hist, "restarted node should receive 'before' as history");
}

#[test]
fn a_false_death_accusation_is_refuted_and_the_node_stays() {
    let mut h = cluster(5, 9);
    let accused = 4;
    let inc = h.node(accused).key().incarnation;
    // Node 0 hears, from node 1, that node 4 is dead.
    let forged = Message::PeerList {
        full: false,
        members: vec![MemberUpdate {
            node: NodeKey {
                addr: addr_of(accused),
                incarnation: inc,
            },
            state: MemberState::Dead,
            name: "n4".into(),
        }],
    };
    assert!(h.inject(1, 0, forged));
    h.run_for(Duration::from_secs(2));
    assert!(
        h.node(accused).key().incarnation > inc,
        "the accused moved to a new life"
    );
    assert!(h
        .events()
        .iter()
        .any(|s| s.node == accused && matches!(s.event, Event::Refuted { .. })));
    for i in 0..4 {
        let alive = h
            .node(i)
            .roster()
            .any(|(k, _)| k.addr == addr_of(accused) && k.incarnation > inc);
        assert!(alive, "node {i} lost the accused");
    }
}

#[test]
fn garbage_a_wrong_version_and_an_oversized_frame_are_counted_and_dropped() {
    let mut h = cluster(3, 10);
    assert!(h.inject_frame(1, 0, vec![0xff; 40]));
    h.run_for(Duration::from_secs(1));
    assert_eq!(h.node(0).stats().malformed, 1);

    let big = vec![0u8; Config::lan().max_frame + 1];
    h.run_until_true(Duration::from_secs(3), |h| {
        h.node(0).neighbours().count() == 2
    });
    assert!(h.inject_frame(2, 0, big));
    assert_eq!(h.node(0).stats().oversized, 1);

    // A wrong version on a fresh connection: refused.
    let mut node = Node::new(
        Config::lan(),
        gossip_chat::Identity::new(addr_of(9), 1, "x"),
        1,
        Instant::ZERO,
    )
    .unwrap();
    let mut out = Vec::new();
    node.handle(
        Instant::ZERO,
        Input::Connected {
            conn: gossip_chat::ConnId(1),
            dialed: None,
        },
        &mut out,
    );
    let mut hello = match out.pop() {
        Some(Output::Send {
            msg: Message::Hello(h),
            ..
        }) => h,
        other => panic!("expected a hello, got {other:?}"),
    };
    hello.version = 99;
    hello.node.addr = addr_of(8);
    node.handle(
        Instant::ZERO,
        Input::Message {
            conn: gossip_chat::ConnId(1),
            msg: Message::Hello(hello),
        },
        &mut out,
    );
    assert_eq!(node.stats().bad_version, 1);
    assert!(out.iter().any(|o| matches!(o, Output::Close { .. })));

    // The cluster still works.
    h.run_for(Duration::from_secs(3));
    h.send(2, "still here");
    h.run_for(Duration::from_secs(1));
    for i in 0..3 {
        assert!(h.chats(i).contains(&"still here".to_string()), "node {i}");
    }
}

#[test]
fn a_replayed_old_message_is_not_delivered_twice() {
    let mut h = cluster(3, 11);
    h.send(1, "once");
    h.run_for(Duration::from_secs(1));
    let replay = h
        .events()
        .iter()
        .find_map(|s| match &s.event {
            Event::Chat { id, name, text, .. } if s.node == 0 => Some(gossip_chat::Chat {
                id: *id,
                name: name.clone(),
                text: text.clone(),
            }),
            _ => None,
        })
        .unwrap();
    assert!(h.inject(2, 0, Message::Chat(replay)));
    h.run_for(Duration::from_secs(1));
    assert_eq!(h.chats(0), vec!["once".to_string()]);
}

#[test]
fn a_text_over_the_limit_is_refused_locally() {
    let mut h = cluster(2, 12);
    let long = "x".repeat(Config::lan().max_text_len + 1);
    h.send(0, &long);
    h.run_for(Duration::from_secs(1));
    assert!(h.chats(1).is_empty());
    assert!(h
        .events()
        .iter()
        .any(|s| matches!(s.event, Event::Refused(_))));
}

#[test]
fn the_same_seed_gives_the_same_trace_byte_for_byte() {
    let run = |seed| {
        let mut h = cluster(5, seed);
        h.send(2, "x");
        h.crash(3);
        h.run_for(Duration::from_secs(5));
        h.trace().to_string()
    };
    let a = run(77);
    assert_eq!(a, run(77));
    assert_ne!(a, run(78), "another seed should change something");
}

#[test]
fn trace_of_a_join_a_chat_and_a_crash() {
    let mut h = lan(1);
    h.trace_messages = true;
    for i in 0..3 {
        h.add_node();
        if i > 0 {
            h.join(i, 0);
        }
    }
    h.run_for(Duration::from_millis(600));
    h.send(1, "hi all");
    h.run_for(Duration::from_millis(100));
    h.crash(2);
    h.run_for(Duration::from_secs(3));
    // Heartbeats are regular and many: keep them out of the snapshot.
    let lines: Vec<&str> = h
        .trace()
        .lines()
        .filter(|l| !l.contains(" ping ") && !l.contains(" pong ") && !l.ends_with(" sync"))
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn chat_links_thin_to_a_tree_and_heal_when_a_tree_link_dies() {
    let mut h = cluster(8, 13);
    let dups = |h: &Harness| -> u64 { (0..8).map(|i| h.node(i).stats().duplicates).sum() };
    for k in 0..10 {
        h.send(k % 8, "warm-up");
        h.run_for(Duration::from_millis(100));
    }
    let before = dups(&h);
    for k in 0..40 {
        h.send(k % 8, &format!("tree {k}"));
        h.run_for(Duration::from_millis(100));
    }
    let per_msg = (dups(&h) - before) as f64 / 40.0;
    println!("duplicate copies per message once pruned: {per_msg:.2}");
    // Flooding a full mesh of 8 costs about 41 duplicate copies per message.
    assert!(per_msg < 3.0, "{per_msg} duplicates per message");
    h.crash(0);
    for k in 0..20 {
        h.send(1 + k % 7, &format!("after crash {k}"));
        h.run_for(Duration::from_millis(100));
    }
    h.run_for(Duration::from_secs(5));
    for i in 1..8 {
        let got = h
            .chats(i)
            .iter()
            .filter(|c| c.starts_with("after crash"))
            .count();
        assert_eq!(got, 20, "node {i}");
    }
}
