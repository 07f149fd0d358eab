//! Nothing lost: history repair after splits, pauses and for newcomers,
//! and a gap reported once when a message is lost for good.

use gossip_chat::{Config, Duration, Event, Id, Instant, MsgId, Node, Via};
use gossip_sim::addr::{addr_of, id_of, slot_of_id};
use gossip_sim::builder::Sim;
use gossip_sim::scenario::InitialJoin;
use std::collections::BTreeMap;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `n` nodes built from `cfg` on a LAN (5 ms links), each joining through
/// the previous one, with room for `spare` more; run until everyone knows
/// everyone.
fn cluster_with(cfg: Config, n: u32, spare: u32, seed: u64) -> Sim {
    let mut sim = Sim::builder()
        .nodes(n)
        .spare(spare)
        .config(cfg)
        .latency(ms(5))
        .seed(seed)
        .join(InitialJoin::Chain)
        .build();
    let done = run_until(&mut sim, s(10), move |sim| {
        sim.up().len() == n as usize && sim.converged()
    });
    done.expect("cluster converges");
    sim
}

fn cluster(n: u32, seed: u64) -> Sim {
    cluster_with(Config::lan(), n, 0, seed)
}

/// Runs until `done` holds (checked every 10 ms) or `limit` passes; the
/// time it first held.
fn run_until(sim: &mut Sim, limit: Duration, done: impl FnMut(&Sim) -> bool) -> Option<Instant> {
    let deadline = sim.now() + limit;
    sim.run_until_true(deadline, ms(10), done)
        .then(|| sim.now())
}

fn node(sim: &Sim, i: u32) -> &Node {
    sim.node(i).expect("the node is running")
}

/// Every chat node `i` delivered, by id, counting duplicates.
fn delivered(sim: &Sim, i: u32) -> BTreeMap<MsgId, usize> {
    let mut m = BTreeMap::new();
    for e in sim.events().iter().filter(|e| e.node == i) {
        if let Event::Chat { id, .. } = &e.event {
            *m.entry(*id).or_insert(0) += 1;
        }
    }
    m
}

/// The gaps node `i` reported: (origin slot's id, first, last).
fn gaps(sim: &Sim, i: u32) -> Vec<(Id, u64, u64)> {
    sim.events()
        .iter()
        .filter(|e| e.node == i)
        .filter_map(|e| match &e.event {
            Event::Gap {
                origin,
                first,
                last,
                ..
            } => Some((origin.id, *first, *last)),
            _ => None,
        })
        .collect()
}

/// Per-sender seqs delivered by node `i`, in delivery order.
fn per_sender_in_order(sim: &Sim, i: u32) -> bool {
    let mut last: BTreeMap<_, u64> = BTreeMap::new();
    sim.events()
        .iter()
        .filter(|e| e.node == i)
        .all(|e| match &e.event {
            Event::Chat { id, .. } => {
                let prev = last.insert(id.origin, id.seq).unwrap_or(0);
                id.seq > prev
            }
            _ => true,
        })
}

fn all_hold_everything(sim: &Sim, nodes: &[u32], total: usize) -> bool {
    nodes.iter().all(|&i| delivered(sim, i).len() == total)
}

#[test]
fn after_a_split_heals_both_sides_see_everything_said_on_either() {
    let mut sim = cluster(10, 21);
    let left: Vec<u32> = (0..5).collect();
    let right: Vec<u32> = (5..10).collect();
    sim.send(0, "before the split");
    sim.run_for(s(1));
    sim.split(&left, &right);
    for k in 0..20 {
        sim.send(k % 5, &format!("left {k}"));
        sim.send(5 + k % 5, &format!("right {k}"));
        sim.run_for(ms(500));
    }
    // The sides heard nothing of each other, and the links across were
    // declared dead.
    assert!(!sim.chats(0).iter().any(|c| c.starts_with("right")));
    assert!(!sim.chats(9).iter().any(|c| c.starts_with("left")));
    assert!((5..10).any(|j| !node(&sim, 0).knows_alive(&id_of(j))));
    sim.heal();
    let healed_at = sim.now();
    let all: Vec<u32> = (0..10).collect();
    let done = run_until(&mut sim, s(30), |sim| {
        all_hold_everything(sim, &all, 41) && sim.converged()
    });
    let done = done.expect("the split never fully healed");
    println!(
        "split healed: full history and roster everywhere after {}",
        done - healed_at
    );
    assert!(done - healed_at <= s(10), "took {}", done - healed_at);
    for i in all {
        assert!(
            delivered(&sim, i).values().all(|&n| n == 1),
            "node {i} got a duplicate"
        );
        assert!(
            per_sender_in_order(&sim, i),
            "node {i} broke per-sender order"
        );
    }
}

#[test]
fn a_node_paused_shorter_than_detection_receives_everything_it_missed() {
    let mut sim = cluster(5, 22);
    sim.pause(4);
    for k in 0..5 {
        sim.send(k % 4, &format!("while paused {k}"));
        sim.run_for(ms(200));
    }
    sim.resume(4);
    let all: Vec<u32> = (0..5).collect();
    run_until(&mut sim, s(5), |sim| all_hold_everything(sim, &all, 5))
        .expect("the paused node caught up");
    assert!(per_sender_in_order(&sim, 4));
    // It was never taken for dead.
    for i in 0..4 {
        assert!(node(&sim, i).knows_alive(&id_of(4)));
    }
}

#[test]
fn a_node_paused_past_detection_is_removed_then_rejoins_and_catches_up() {
    let mut sim = cluster(5, 23);
    sim.pause(4);
    for k in 0..10 {
        sim.send(k % 4, &format!("while paused {k}"));
        sim.run_for(ms(500));
    }
    for i in 0..4 {
        assert!(
            !node(&sim, i).knows_alive(&id_of(4)),
            "node {i} still lists the paused node"
        );
    }
    sim.resume(4);
    let all: Vec<u32> = (0..5).collect();
    let t0 = sim.now();
    let t = run_until(&mut sim, s(10), |sim| {
        sim.converged() && all_hold_everything(sim, &all, 10)
    })
    .expect("the paused node rejoined and caught up");
    println!("rejoined and caught up after {}", t - t0);
    assert!(
        node(&sim, 4).version() > 0,
        "it refuted its death, keeping its life"
    );
    assert!(per_sender_in_order(&sim, 4));
    assert!(delivered(&sim, 4).values().all(|&n| n == 1));
}

#[test]
fn a_newcomer_receives_recent_history_marked_as_history_and_no_gaps() {
    // A short gap timeout, so that a gap in the history would be reported
    // well inside the time this test waits.
    let cfg = Config {
        gap_timeout: s(1),
        ..Config::lan()
    };
    let mut sim = cluster_with(cfg, 3, 1, 24);
    for k in 0..150 {
        sim.send(k % 3, &format!("old {k}"));
    }
    sim.run_for(s(2));
    let n = sim.add_node().expect("a spare slot");
    sim.join(n, 1);
    run_until(&mut sim, s(5), |sim| sim.up().len() == 4 && sim.converged())
        .expect("newcomer joins");
    sim.run_for(s(3));
    let newcomer: Vec<&Event> = sim
        .events()
        .iter()
        .filter(|e| e.node == n)
        .map(|e| &e.event)
        .collect();
    let history = newcomer
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Chat {
                    via: Via::CatchUp,
                    ..
                }
            )
        })
        .count();
    assert_eq!(history, Config::lan().newcomer_history);
    // Each catch-up message names where its author listens, though the
    // newcomer learned of the authors only with its join's answer.
    for e in &newcomer {
        if let Event::Chat { id, addr, .. } = e {
            let author = slot_of_id(&id.origin.id, 4).expect("a simulated author");
            assert_eq!(*addr, Some(addr_of(author)), "the address of n{author}");
        }
    }
    assert_eq!(gaps(&sim, n), [], "no gap for old history");
    assert!(per_sender_in_order(&sim, n));
    sim.send(0, "live");
    sim.run_for(s(1));
    assert_eq!(sim.chats(n).last().map(String::as_str), Some("live"));
}

/// Node 0's first chat is cut off from everyone, and its next one pushes
/// it out of node 0's one-message history: it is lost for good. Once the
/// links heal, the second comes by repair and waits for the first; after
/// `gap_timeout` each node reports the gap once, delivers the held chat,
/// and later chats flow.
#[test]
fn a_message_lost_for_good_is_reported_as_a_gap_once_and_later_ones_flow() {
    let cfg = Config {
        gap_timeout: s(2),
        history_max: 1,
        newcomer_history: 1,
        ..Config::lan()
    };
    let mut sim = cluster_with(cfg, 3, 0, 25);
    sim.cut(0, 1);
    sim.cut(0, 2);
    sim.send(0, "lost");
    sim.send(0, "second");
    sim.run_for(ms(20));
    sim.heal();
    for i in [1, 2] {
        assert!(sim.chats(i).is_empty(), "node {i} heard across the cut");
    }
    sim.run_for(ms(1500));
    for i in [1, 2] {
        assert!(sim.chats(i).is_empty(), "node {i} delivered past the hole");
        assert_eq!(gaps(&sim, i), [], "node {i} gave up before gap_timeout");
    }
    // Repair brings the second within a sync round or two; the gap is
    // given up at the first heartbeat tick (1 s) after `gap_timeout`.
    sim.run_for(s(4));
    for i in [1, 2] {
        assert_eq!(gaps(&sim, i), [(id_of(0), 1, 1)], "node {i}");
        assert_eq!(sim.chats(i), ["second"], "node {i}");
    }
    sim.send(0, "third");
    sim.run_for(s(1));
    sim.run_for(s(30));
    for i in [1, 2] {
        assert_eq!(sim.chats(i), ["second", "third"], "node {i}");
        assert_eq!(gaps(&sim, i).len(), 1, "node {i} reported the gap again");
    }
}

/// Drops every link of node `from` now (dials still on their way
/// included).
fn drop_links(sim: &mut Sim, from: u32) {
    for j in (0..sim.len() as u32).filter(|&j| j != from) {
        sim.reset(from, j);
    }
}

/// Whether every node delivered exactly `want` (in order, each once) from
/// node `from`, and no node reported a gap.
fn everyone_has(sim: &Sim, from: u32, want: &[String]) -> bool {
    (0..sim.len() as u32).filter(|&i| i != from).all(|i| {
        let got: Vec<(u64, usize)> = delivered(sim, i)
            .into_iter()
            .filter(|(id, _)| id.origin.id == id_of(from))
            .map(|(id, n)| (id.seq, n))
            .collect();
        let want: Vec<(u64, usize)> = (1..=want.len() as u64).map(|s| (s, 1)).collect();
        got == want && gaps(sim, i).is_empty() && per_sender_in_order(sim, i)
    })
}

/// The case that once left a gap: node 0's links drop with its chat in
/// flight just after the other side took the dial back but before the
/// dialler heard it was through. The dialler is told that its dial
/// failed, dials again, and repair brings every lost chat to everyone
/// well inside `gap_timeout`, each once and in order.
#[test]
fn links_dropped_while_their_redials_are_half_open_are_redialled_and_repaired() {
    let mut sim = Sim::builder()
        .nodes(3)
        .config(Config::testing())
        .latency(ms(8))
        .seed(0)
        .build();
    sim.run_until(Instant::from_millis(3_000));
    // (sender, ms before the send, drop the sender's links after it)
    let sends = [
        (1, 0, true),
        (0, 0, true),
        (0, 107, false),
        (0, 396, false),
        (0, 0, true),
        (0, 0, false),
        (0, 0, false),
        (0, 0, true),
        (0, 0, false),
    ];
    let mut sent: Vec<Vec<String>> = vec![Vec::new(); 3];
    for (k, (from, after, drop)) in sends.into_iter().enumerate() {
        sim.run_for(ms(after));
        let text = format!("m{k}");
        sim.send(from, &text);
        sent[from as usize].push(text.clone());
        if drop {
            drop_links(&mut sim, from);
            sim.run_for(ms(9));
            for j in (0..3).filter(|&j| j != from) {
                assert!(!sim.chats(j).contains(&text), "n{j} got {text}");
            }
        }
    }
    let t0 = sim.now();
    let done = run_until(&mut sim, s(20), |sim| {
        everyone_has(sim, 0, &sent[0]) && everyone_has(sim, 1, &sent[1])
    })
    .expect("every chat reached every node once, in order, with no gap");
    assert!(done - t0 <= s(5), "repair took {}", done - t0);
    // Nobody was taken for dead on the way.
    for i in 0..3 {
        assert_eq!(node(&sim, i).roster().count(), 2, "node {i}");
    }
}

/// The family: in groups of 2 to 4, the sender's links drop with a chat
/// in flight, and drop again at every point of the redials' round trip
/// (before the acceptor hears of them, between, and after the dialler
/// does). Every chat reaches every node once, in order, with no gap, well
/// inside `gap_timeout`.
#[test]
fn chats_lost_when_links_drop_at_any_point_of_a_redial_are_repaired() {
    let lat = 8;
    for n in 2..=4u32 {
        for offset in 0..=2 * lat + 2 {
            let mut sim = Sim::builder()
                .nodes(n)
                .config(Config::testing())
                .latency(ms(lat))
                .seed(u64::from(n) * 100 + offset)
                .build();
            sim.run_until(Instant::from_millis(3_000));
            let mut sent = Vec::new();
            for k in 0..3 {
                let text = format!("m{k}");
                sim.send(0, &text);
                sent.push(text);
                drop_links(&mut sim, 0);
                sim.run_for(ms(offset));
            }
            let t0 = sim.now();
            let done = run_until(&mut sim, s(20), |sim| everyone_has(sim, 0, &sent));
            let done = done.unwrap_or_else(|| {
                let got: Vec<Vec<String>> = (0..n).map(|i| sim.chats(i)).collect();
                panic!("{n} nodes, drops {offset} ms apart: not repaired: {got:?}")
            });
            assert!(
                done - t0 <= s(5),
                "{n} nodes, drops {offset} ms apart: repair took {}",
                done - t0
            );
        }
    }
}

/// How node `i` delivered each chat, by text, with the time.
fn ways(sim: &Sim, i: u32) -> Vec<(String, Via, Instant)> {
    sim.events()
        .iter()
        .filter(|e| e.node == i)
        .filter_map(|e| match &e.event {
            Event::Chat { text, via, .. } => Some((text.to_string(), *via, e.at)),
            _ => None,
        })
        .collect()
}

/// A newcomer whose seed cannot be reached for its first 8 s joins long
/// after it started: what it is handed then is still a catch-up (how the
/// messages came decides, not how long the node has been running).
#[test]
fn a_newcomer_that_joins_long_after_it_started_gets_a_catch_up() {
    let mut sim = cluster_with(Config::lan(), 3, 1, 26);
    let old: Vec<String> = (0..10).map(|k| format!("old {k}")).collect();
    for (k, text) in old.iter().enumerate() {
        sim.send(k as u32 % 3, text);
    }
    sim.run_for(s(1));
    let n = sim.add_node().expect("a spare slot");
    let started = sim.now();
    sim.split(&[n], &[0, 1, 2]);
    sim.join(n, 1);
    sim.run_for(s(8));
    assert!(
        ways(&sim, n).is_empty(),
        "the newcomer heard across the split"
    );
    sim.heal();
    let joined = run_until(&mut sim, s(20), |sim| sim.chats(n).len() == old.len())
        .expect("the newcomer gets the earlier messages");
    assert!(
        joined - started > s(5),
        "joined {:?} after start",
        joined - started
    );
    let got = ways(&sim, n);
    assert_eq!(got.len(), old.len(), "{got:?}");
    for (text, via, at) in &got {
        assert!(old.contains(text), "{text}");
        assert_eq!(*via, Via::CatchUp, "{text} at {at:?}");
        assert!(
            *at - started > s(5),
            "{text} came {:?} after start",
            *at - started
        );
    }
    // What the others send from now on comes live.
    sim.send(0, "live");
    sim.run_for(s(1));
    assert_eq!(
        ways(&sim, n).last().map(|w| (w.0.as_str(), w.1)),
        Some(("live", Via::Live))
    );
}

/// A split that heals within 5 s of the start: what crosses the healed
/// split comes by repair, never as a catch-up, though every node is only
/// seconds old.
#[test]
fn a_split_healed_soon_after_start_is_repaired_not_caught_up() {
    let mut sim = cluster_with(Config::lan(), 6, 0, 27);
    let (left, right) = ([0, 1, 2], [3, 4, 5]);
    sim.split(&left, &right);
    let mut sent = Vec::new();
    for k in 0..3u32 {
        for i in [k, 3 + k] {
            let text = format!("{} {k}", if i < 3 { "left" } else { "right" });
            sim.send(i, &text);
            sent.push(text);
        }
        sim.run_for(ms(200));
    }
    // Long enough for every link across to be found dead.
    sim.run_for(s(2));
    assert!(
        sim.now() < Instant::ZERO + s(5),
        "heals at {:?}: not soon after start",
        sim.now()
    );
    sim.heal();
    run_until(&mut sim, s(20), |sim| {
        (0..6).all(|i| sim.chats(i).len() == sent.len())
    })
    .expect("the split heals");
    for (side, other) in [(left, "right"), (right, "left")] {
        let mut repaired = 0;
        for i in side {
            for (text, via, _) in ways(&sim, i).iter().filter(|w| w.0.starts_with(other)) {
                assert_ne!(*via, Via::CatchUp, "node {i}: {text}");
                repaired += usize::from(*via == Via::Repair);
            }
        }
        assert!(repaired > 0, "nothing repaired into {side:?}");
    }
}

/// A member cut off until it has no link left, then told to join again
/// (the library's `NodeHandle::join`): what it missed comes in the join's
/// answer, yet it is a repair, not a catch-up: the node was a member
/// when those messages were written.
#[test]
fn a_member_that_joins_again_after_a_split_is_repaired_not_caught_up() {
    let mut sim = cluster_with(Config::lan(), 4, 0, 28);
    sim.send(0, "before");
    sim.run_for(s(1));
    sim.split(&[3], &[0, 1, 2]);
    let missed: Vec<String> = (0..6).map(|k| format!("missed {k}")).collect();
    for (k, text) in missed.iter().enumerate() {
        sim.send(k as u32 % 3, text);
    }
    run_until(&mut sim, s(20), |sim| {
        node(sim, 3).neighbours().count() == 0
    })
    .expect("the cut-off node drops its links");
    sim.join(3, 0);
    sim.run_for(s(1));
    sim.heal();
    run_until(&mut sim, s(30), |sim| {
        sim.chats(3).len() == 1 + missed.len()
    })
    .expect("the node gets what it missed");
    let got = ways(&sim, 3);
    for (text, via, _) in got.iter().filter(|w| w.0.starts_with("missed")) {
        assert_eq!(*via, Via::Repair, "{text}: {got:?}");
    }
}

/// The family: groups on links of 1 ms to 500 ms one way, chat flowing
/// from every node, nothing lost. Two nodes compare what was sent up to a
/// common mark, past which messages may still be on their way, so no
/// digest and no history goes out once the group has formed, however
/// long messages stay in flight. A comparison at each node's own instant
/// (the hash of what each has now) differs whenever messages are in
/// flight, and each mismatch answered would cost a digest.
#[test]
fn nothing_lost_means_no_repair_on_any_link_latency() {
    for (k, lat) in [1u64, 20, 100, 300, 500].into_iter().enumerate() {
        let mut sim = Sim::builder()
            .nodes(12)
            .config(Config::lan())
            .latency(ms(lat))
            .seed(40 + k as u64)
            .record_trace()
            .build();
        run_until(&mut sim, s(30), |sim| {
            sim.up().len() == 12 && sim.converged()
        })
        .expect("the group forms");
        sim.run_for(s(5));
        let from = sim.trace().lines().count();
        for i in 0..120u32 {
            sim.send(i % 12, &format!("m{i}"));
            sim.run_for(ms(100));
        }
        sim.run_for(s(15));
        for i in 0..12 {
            assert_eq!(sim.chats(i).len(), 120, "{lat} ms links: node {i}");
        }
        let repair: Vec<&str> = sim
            .trace()
            .lines()
            .skip(from)
            .filter(|l| l.contains(" digest ") || l.contains(" history "))
            .take(3)
            .collect();
        assert!(repair.is_empty(), "{lat} ms links: repair sent: {repair:?}");
    }
}
