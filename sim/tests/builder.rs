//! The engine driven from code: faults now, chats, user events.

use gossip_chat::{Duration, Event};
use gossip_sim::addr::{addr_of, id_of};
use gossip_sim::builder::Sim;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_partition_splits_the_chat_until_healed() {
    let mut sim = Sim::builder().nodes(4).seed(3).build();
    sim.run_for(s(10));
    sim.partition(&[&[0, 1], &[2, 3]]);
    sim.run_for(s(1));
    sim.send(0, "inside");
    sim.run_for(s(2));
    assert_eq!(sim.chats(1), ["inside"]);
    assert!(sim.chats(3).is_empty(), "crossed the partition");
    sim.heal();
    let deadline = sim.now() + s(60);
    assert!(
        sim.run_until_true(deadline, Duration::from_millis(500), |sim| sim
            .chats(3)
            .contains(&"inside".to_string())),
        "repair never brought the chat across"
    );
}

#[test]
fn a_paused_node_gets_what_it_missed_on_resume() {
    let mut sim = Sim::builder().nodes(3).build();
    sim.run_for(s(5));
    sim.pause(2);
    sim.send(0, "while away");
    sim.run_for(Duration::from_millis(500));
    assert!(sim.chats(2).is_empty(), "a paused node handled input");
    sim.resume(2);
    sim.run_for(s(2));
    assert_eq!(sim.chats(2), ["while away"]);
}

#[test]
fn a_restart_is_a_new_incarnation_and_the_crashed_is_seen_down() {
    let mut sim = Sim::builder().nodes(3).build();
    sim.run_for(s(5));
    assert_eq!(sim.node(1).unwrap().key().incarnation, 1);
    sim.restart(1, 0);
    assert_eq!(sim.node(1).unwrap().key().incarnation, 2);
    sim.crash(2);
    assert!(sim.node(2).is_none());
    sim.run_for(s(30));
    let down = sim.events().iter().any(|e| {
        e.node == 0 && matches!(&e.event, Event::PeerDown { node, .. } if node.id == id_of(2))
    });
    assert!(down, "node 0 never saw the crashed node down");
    assert!(sim.node(0).unwrap().knows_alive(&id_of(1)));
}

#[test]
fn the_same_calls_give_the_same_events() {
    let run = || {
        let mut sim = Sim::builder().nodes(5).seed(9).build();
        sim.run_for(s(5));
        sim.send(3, "x");
        sim.kill(4);
        sim.run_for(s(10));
        sim.events().to_vec()
    };
    let a = run();
    assert!(a.len() > 10);
    assert_eq!(a, run());
}

#[test]
fn a_node_added_later_joins_and_an_injected_message_reaches_its_target() {
    let mut sim = Sim::builder().nodes(2).spare(1).build();
    sim.run_for(s(3));
    let n = sim.add_node().expect("a spare slot");
    assert_eq!(n, 2);
    assert_eq!(sim.add_node(), None, "only one spare slot");
    sim.run_for(s(1));
    assert!(!sim.converged(), "joined before it asked");
    sim.join(n, 1);
    let deadline = sim.now() + s(30);
    assert!(sim.run_until_true(deadline, Duration::from_millis(200), Sim::converged));
    assert_eq!(sim.up(), [0, 1, 2]);
    // A chat injected on node 0's connection with node 1 is shown by 1
    // (signed with node 0's key, which anyone can derive in the simulator).
    let id = gossip_chat::MsgId {
        origin: sim.node(0).unwrap().key(),
        seq: 1,
    };
    let key = gossip_chat::Identity::new(addr_of(0), 1, "").key;
    let chat = gossip_chat::Message::Chat(gossip_chat::Chat::signed(
        &key,
        id,
        "n0".into(),
        "forged".into(),
        0,
    ));
    assert!(sim.inject(0, 1, chat.clone()));
    assert!(sim.chats(1).contains(&"forged".to_string()));
    assert!(!sim.inject(5, 1, chat), "no such connection");
}
