//! Membership on the engine: deaths heard in a full peer list are only
//! suspicions, a node at its connection cap refuses with `Bye(Full)`, and
//! a node cut off from its neighbours links elsewhere at once.

use gossip_chat::{
    Accusation, Config, Duration, Event, Identity, MemberState, MemberUpdate, Message, NodeKey,
};
use gossip_sim::addr::{addr_of, id_of, slot_of_id};
use gossip_sim::builder::Sim;
use gossip_sim::scenario::InitialJoin;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` nodes keeping at most `cap` neighbours each, joined in a chain, run
/// until everyone knows everyone and the links join them into one overlay.
fn sparse(n: u32, cap: usize, seed: u64, trace: bool) -> Sim {
    let cfg = Config {
        max_connections: cap,
        ..Config::lan()
    };
    let b = Sim::builder()
        .nodes(n)
        .config(cfg)
        .latency(ms(5))
        .seed(seed)
        .join(InitialJoin::Chain);
    let mut sim = if trace { b.record_trace() } else { b }.build();
    let deadline = sim.now() + Duration::from_secs(15);
    let done = sim.run_until_true(deadline, ms(10), |sim| {
        sim.up().len() == n as usize && sim.converged() && connected(sim, n)
    });
    assert!(done, "the cluster never converged into one overlay");
    sim
}

/// Whether the neighbour links join every node into one overlay.
fn connected(sim: &Sim, n: u32) -> bool {
    let mut seen = vec![false; n as usize];
    let mut todo = vec![0u32];
    seen[0] = true;
    while let Some(i) = todo.pop() {
        let Some(node) = sim.node(i) else { continue };
        for a in node.neighbours() {
            if let Some(j) = slot_of_id(&a, n as usize) {
                if !seen[j as usize] {
                    seen[j as usize] = true;
                    todo.push(j);
                }
            }
        }
    }
    seen.iter().all(|s| *s)
}

fn downs(sim: &Sim, observer: u32, who: u32) -> usize {
    sim.events()
        .iter()
        .filter(|e| {
            e.node == observer
                && matches!(&e.event, Event::PeerDown { node, .. } if node.id == id_of(who))
        })
        .count()
}

const N: u32 = 20;

/// Node 0 hears from a neighbour that a member it does not hear
/// first-hand died, in a full or a delta list, with the age the sender
/// gives the death; runs 5 s. Returns the accused, its key, and the sim.
fn hear_death(full: bool, age_secs: u32) -> (Sim, u32, NodeKey) {
    let mut sim = sparse(N, 3, 41, false);
    sim.run_for(Duration::from_secs(3));
    let n0 = sim.node(0).unwrap();
    let neighbours: Vec<u32> = n0
        .neighbours()
        .filter_map(|a| slot_of_id(&a, N as usize))
        .collect();
    let from = neighbours[0];
    let accused = (1..N)
        .find(|i| !neighbours.contains(i))
        .expect("a hearsay member");
    let key = sim.node(accused).unwrap().key();
    // The accused's entry as it signed it (an accusation carries the
    // accused's own proof of the life and version it names).
    let own = sim.node(accused).unwrap().own_entry();
    assert_eq!((own.node, own.version), (key, 0));
    // Declared by the sender, in its own name.
    let by = Identity::new(addr_of(from), 1, "").key;
    let stale = Message::PeerList {
        full,
        members: vec![MemberUpdate {
            state: MemberState::Dead,
            age_secs,
            accuser: Some(Accusation::sign(&by, own.node, own.version)),
            ..own
        }],
    };
    assert!(sim.inject(from, 0, stale));
    (sim, accused, key)
}

/// The death was taken as a suspicion: node 0 kept the member in its
/// roster, never took it for dead, and the accused refuted it keeping its
/// life (and chat stream), with a higher version that node 0 holds.
fn refuted_in_place(mut sim: Sim, accused: u32, key: NodeKey) {
    assert!(
        sim.node(0).unwrap().knows_alive(&id_of(accused)),
        "the death removed the member at once"
    );
    sim.run_for(Duration::from_secs(5));
    assert_eq!(
        downs(&sim, 0, accused),
        0,
        "node 0 took the member for dead"
    );
    let refuted = sim
        .events()
        .iter()
        .any(|e| e.node == accused && matches!(e.event, Event::Refuted { .. }));
    assert!(refuted, "the accused never refuted");
    let accused_node = sim.node(accused).unwrap();
    assert_eq!(accused_node.key(), key);
    assert!(accused_node.version() > 0);
    let held = sim
        .node(0)
        .unwrap()
        .members()
        .find(|m| m.node == key)
        .map(|m| m.version);
    assert_eq!(held, Some(accused_node.version()));
}

/// A full list may carry deaths from across a healed split: node 0 takes
/// the death of a member it does not hear first-hand as a suspicion.
#[test]
fn a_death_heard_in_a_full_list_is_a_suspicion_that_the_accused_refutes() {
    let (sim, accused, key) = hear_death(true, 0);
    refuted_in_place(sim, accused, key);
}

/// A node cut off from everyone declares them all dead and gossips those
/// deaths when it is back, in delta lists: a death its sender has held
/// longer than a suspicion lasts is stale news, taken as a suspicion too.
#[test]
fn an_old_death_heard_in_a_delta_list_is_a_suspicion_that_the_accused_refutes() {
    let (sim, accused, key) = hear_death(false, 10);
    refuted_in_place(sim, accused, key);
}

/// With every node at its cap of two neighbours, dials that do not need
/// the link (not a join, not a stranger, not poorly connected) are
/// refused with `Bye(Full)`; no node goes over its cap and everyone still
/// knows everyone.
#[test]
fn a_full_node_refuses_a_dial_it_does_not_need_with_bye_full() {
    let mut sim = sparse(6, 2, 42, true);
    sim.run_for(Duration::from_secs(20));
    let trace = sim.trace();
    let byes = trace
        .lines()
        .filter(|l| l.contains(" bye ") && l.ends_with(" Full"))
        .count();
    assert!(byes > 0, "no Bye(Full) in:\n{trace}");
    let refused: u64 = (0..6)
        .map(|i| sim.node(i).unwrap().stats().conns_refused)
        .sum();
    assert!(refused > 0);
    for i in 0..6 {
        assert!(sim.node(i).unwrap().neighbours().count() <= 2, "node {i}");
    }
    assert!(sim.converged());
}

/// A node whose every link is cut at once (a cut between it and its
/// neighbours, the rest of the network whole) is deaf to chat and deaths
/// until it links elsewhere. Its links go silent a heartbeat interval
/// after it last spoke over them, but hold their slots until the silence
/// closes them: it dials for those slots as soon as they go silent, and
/// links to a member it can reach before the silence closes any of them.
#[test]
fn a_node_cut_off_from_its_neighbours_links_elsewhere_before_the_silence_closes_them() {
    let n = 12;
    // Chat goes over every link (no tree), so that a message this node
    // sends awaits an answer over each of them.
    let cfg = Config {
        max_connections: 4,
        prune_duplicates: false,
        ..Config::default()
    };
    let mut sim = Sim::builder()
        .nodes(n)
        .config(cfg)
        .latency(ms(5))
        .seed(7)
        .join(InitialJoin::Chain)
        .build();
    let deadline = sim.now() + Duration::from_secs(20);
    assert!(
        sim.run_until_true(deadline, ms(10), |sim| sim.converged() && connected(sim, n)),
        "the cluster never converged into one overlay"
    );
    let x = 5;
    let neighbours = |sim: &Sim| -> Vec<u32> {
        sim.node(x)
            .unwrap()
            .neighbours()
            .filter_map(|a| slot_of_id(&a, n as usize))
            .collect()
    };
    let old = neighbours(&sim);
    assert!(old.len() >= 2, "n{x} has neighbours {old:?}");
    for &o in &old {
        sim.cut(x, o);
        sim.cut(o, x);
    }
    let cut_at = sim.now();
    // It speaks (a chat, over every link) and hears nothing back.
    sim.send(x, "anyone there?");
    // When it first links to a member it can reach, and when it first
    // closes a cut link: a new link takes a silent link's slot at once
    // when the node is full, and the silence closes them later.
    let mut linked_anew = None;
    let mut closed = None;
    let deadline = cut_at + Duration::from_secs(15);
    sim.run_until_true(deadline, ms(10), |sim| {
        let ids = neighbours(sim);
        let now = sim.now() - cut_at;
        if linked_anew.is_none() && ids.iter().any(|i| !old.contains(i)) {
            linked_anew = Some(now);
        }
        if closed.is_none() && old.iter().any(|o| !ids.contains(o)) {
            closed = Some(now);
        }
        linked_anew.is_some() && closed.is_some()
    });
    let linked_anew = linked_anew.expect("the cut-off node never linked to anyone else");
    let closed = closed.expect("the cut links were never closed");
    assert!(
        linked_anew <= closed,
        "n{x} linked to a new neighbour {linked_anew:?} after the cut, only after the silence \
         closed a cut link ({closed:?} after it)"
    );
}
