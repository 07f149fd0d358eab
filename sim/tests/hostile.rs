//! Hostile peers: lies and floods stay bounded and honest members keep
//! talking.

use gossip_chat::{
    Accusation, Config, ConnId, Duration, Event, Id, Identity, Input, Instant, MemberState,
    MemberUpdate, Message, Node, NodeKey, Output, Proof,
};
use gossip_sim::addr::{addr_of, id_of, slot_of_id};
use gossip_sim::builder::{Sim, SimBuilder};
use gossip_sim::scenario::InitialJoin;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::OnceLock;

fn invented(i: u32) -> SocketAddr {
    SocketAddr::from(([192, 168, (i >> 8) as u8, i as u8], 9000))
}

/// How many invented members the tests below name at most.
const GHOSTS: u32 = 1000;

/// The identity of invented member `i`: a key pair the hostile peer holds
/// (derived from the invented address, as no simulated node's is), so it
/// can sign the member's entry. Nothing listens at the address.
fn ghost_identity(i: u32) -> Identity {
    Identity::new(invented(i), 1, format!("ghost{i}"))
}

/// The id of invented member `i`: no simulated node's.
fn invented_id(i: u32) -> Id {
    Id::of_addr(invented(i))
}

fn is_invented(id: Id) -> bool {
    static IDS: OnceLock<BTreeSet<Id>> = OnceLock::new();
    IDS.get_or_init(|| (0..GHOSTS).map(invented_id).collect())
        .contains(&id)
}

/// An invented member, alive in a peer list, its entry signed with its own
/// key (the hostile peer made the key up, so it can): only what a member
/// did not sign is dropped, so invented members still get in.
fn ghost(i: u32) -> MemberUpdate {
    assert!(i < GHOSTS);
    let g = ghost_identity(i);
    let node = NodeKey {
        id: g.id(),
        incarnation: g.incarnation,
    };
    MemberUpdate {
        node,
        addr: g.addr,
        state: MemberState::Alive,
        name: g.name.as_str().into(),
        version: 0,
        age_secs: 0,
        accuser: None,
        proof: Proof::sign(&g.key, node, 0, g.addr, &g.name, false),
    }
}

/// The hello of simulated slot `i` in its first life, signed with the
/// slot's key.
fn hello(i: u32) -> gossip_chat::Hello {
    let node = NodeKey {
        id: id_of(i),
        incarnation: 1,
    };
    let name = format!("n{i}");
    let key = Identity::new(addr_of(i), 1, name.as_str()).key;
    gossip_chat::Hello {
        version: gossip_chat::PROTOCOL_VERSION,
        node,
        addr: addr_of(i),
        proof: Proof::sign(&key, node, 0, addr_of(i), &name, false),
        name: name.into(),
        member_version: 0,
        degree: 0,
        members_hash: 0,
        chat_hash: 0,
        chat_mark: 0,
        beacon: None,
        bridge: false,
        shortcut: false,
    }
}

/// `n` nodes on a LAN (5 ms links) built from `cfg`.
fn lan(n: u32, cfg: Config, seed: u64) -> SimBuilder {
    Sim::builder()
        .nodes(n)
        .config(cfg)
        .latency(Duration::from_millis(5))
        .seed(seed)
}

/// Runs until `n` nodes are up and everyone knows everyone.
fn converge(sim: &mut Sim, n: usize, limit: Duration) {
    let deadline = sim.now() + limit;
    let done = sim.run_until_true(deadline, Duration::from_millis(10), |sim| {
        sim.up().len() == n && sim.converged()
    });
    assert!(done, "the cluster never converged");
}

fn node(sim: &Sim, i: u32) -> &Node {
    sim.node(i).expect("the node is running")
}

#[test]
fn a_peer_list_of_invented_addresses_neither_evicts_members_nor_keeps_the_node_dialling() {
    let cfg = Config {
        max_members: 300,
        ..Config::lan()
    };
    let mut sim = lan(4, cfg.clone(), 31).join(InitialJoin::Chain).build();
    converge(&mut sim, 4, Duration::from_secs(5));
    let lies: Vec<MemberUpdate> = (0..1000).map(ghost).collect();
    assert!(sim.inject(
        1,
        0,
        Message::PeerList {
            full: false,
            members: lies
        }
    ));
    // Real members are still known, the table is within its bound.
    for i in 0..4 {
        let sizes = node(&sim, i).table_sizes();
        assert!(sizes.members <= cfg.max_members, "node {i}: {sizes:?}");
    }
    for j in 1..4 {
        assert!(node(&sim, 0).knows_alive(&id_of(j)));
    }
    // At most two dials per heartbeat, and each ghost is given up after a
    // few failed dials with backoff: ten minutes clear them all.
    sim.run_for(Duration::from_secs(600));
    // Chat still flows, and every real member is still in every roster.
    assert!(sim.converged());
    sim.send(3, "still here");
    sim.run_for(Duration::from_secs(1));
    for i in 0..4 {
        assert_eq!(sim.chats(i), ["still here"], "node {i}");
        assert_eq!(
            node(&sim, i).neighbours().count(),
            3,
            "node {i} lost a neighbour"
        );
    }
    // The ghosts were given up on, so dialling them has stopped growing.
    let ghosts_in_roster = node(&sim, 0)
        .roster()
        .filter(|(k, _)| is_invented(k.id))
        .count();
    assert_eq!(
        ghosts_in_roster, 0,
        "{ghosts_in_roster} ghosts still listed alive"
    );
}

#[test]
fn connections_that_never_say_hello_are_closed_and_bounded() {
    let cfg = Config::lan();
    let mut node = Node::new(
        cfg.clone(),
        gossip_chat::Identity::new(addr_of(0), 1, "n0"),
        1,
        Instant::ZERO,
    )
    .unwrap();
    let mut out = Vec::new();
    for c in 0..(cfg.max_handshaking as u64 + 10) {
        node.handle(
            Instant::ZERO,
            Input::Connected {
                conn: ConnId(c),
                dialed: None,
                peer: None,
            },
            &mut out,
        );
    }
    let closes: Vec<ConnId> = out
        .drain(..)
        .filter_map(|o| match o {
            Output::Close { conn } => Some(conn),
            _ => None,
        })
        .collect();
    // At one instant the waiting ones are all young: each connection over
    // the limit is told when to come back, and closed.
    let busy = cfg.max_handshaking as u64..cfg.max_handshaking as u64 + 10;
    assert_eq!(
        closes,
        busy.clone().map(ConnId).collect::<Vec<_>>(),
        "each connection over the handshake limit is turned away"
    );
    assert_eq!(node.table_sizes().connections, cfg.max_handshaking);
    // Once the oldest has had a probe timeout to speak, a new connection
    // takes its slot.
    let late = ConnId(busy.end);
    node.handle(
        Instant::ZERO + cfg.probe_timeout,
        Input::Connected {
            conn: late,
            dialed: None,
            peer: None,
        },
        &mut out,
    );
    assert!(out.contains(&Output::Close { conn: ConnId(0) }), "{out:?}");
    assert!(!out.contains(&Output::Close { conn: late }), "{out:?}");
    out.clear();
    assert_eq!(node.table_sizes().connections, cfg.max_handshaking);
    let later = Instant::ZERO + cfg.handshake_timeout + cfg.ping_interval;
    let mut t = Instant::ZERO;
    while t < later {
        t = node.poll_timeout().unwrap();
        node.handle(t, Input::Timeout, &mut out);
    }
    assert_eq!(
        node.table_sizes().connections,
        0,
        "silent connections timed out"
    );
    assert_eq!(node.stats().handshake_timeouts, cfg.max_handshaking as u64);
}

/// Invented members fill a small member table; a forged leave of a live
/// member is dropped (only the member can sign its departure), and a death
/// accusation naming the life the member signed is a suspicion, so the
/// member keeps its slot and its refutation lands in place instead of
/// being refused as a new name; and with the table under pressure the
/// node probes members and gives the invented ones up, freeing their
/// slots.
#[test]
fn a_full_table_of_invented_members_loses_no_real_member_and_drains() {
    let cfg = Config {
        max_members: 16,
        max_connections: 2,
        ..Config::lan()
    };
    let n = 8;
    let mut sim = lan(n, cfg.clone(), 9).join(InitialJoin::Chain).build();
    converge(&mut sim, n as usize, Duration::from_secs(10));
    sim.run_for(Duration::from_secs(5));
    let index = |id: Id| slot_of_id(&id, n as usize).unwrap();
    let neighbours: Vec<u32> = node(&sim, 0).neighbours().map(index).collect();
    let from = neighbours[0];
    // A member that node 0 only knows by hearsay: no heartbeat of its own
    // vouches for it.
    let accused = (1..n).find(|i| !neighbours.contains(i)).unwrap();
    let lies = |range: std::ops::Range<u32>| Message::PeerList {
        full: false,
        members: range.map(ghost).collect(),
    };
    assert!(sim.inject(from, 0, lies(0..40)));
    assert_eq!(node(&sim, 0).table_sizes().members, cfg.max_members);
    // A forged leave of the accused, signed by the sender (it cannot sign
    // for the accused): dropped and counted, the accused stays.
    let own = node(&sim, accused).own_entry();
    let forger = Identity::new(addr_of(from), 1, "").key;
    let forged = Message::PeerList {
        full: false,
        members: vec![MemberUpdate {
            state: MemberState::Left,
            name: "forged".into(),
            proof: Proof::sign(&forger, own.node, own.version, own.addr, "forged", true),
            ..own.clone()
        }],
    };
    let dropped = node(&sim, 0).stats().forged_state;
    assert!(sim.inject(from, 0, forged));
    assert!(node(&sim, 0).knows_alive(&id_of(accused)));
    assert_eq!(node(&sim, 0).stats().forged_state, dropped + 1);
    // A death of the accused with the proof of its life it signed (any
    // member may accuse, in its own name), then more invented names
    // pushing for its slot before its refutation can come back. A death
    // from another is a suspicion here: the accused stays in the roster.
    let death = Message::PeerList {
        full: false,
        members: vec![MemberUpdate {
            state: MemberState::Dead,
            accuser: Some(Accusation::sign(&forger, own.node, own.version)),
            ..own
        }],
    };
    let suspicions = node(&sim, 0)
        .members()
        .filter(|m| m.state == MemberState::Suspect)
        .count();
    assert!(sim.inject(from, 0, death));
    assert!(node(&sim, 0).knows_alive(&id_of(accused)));
    assert_eq!(
        node(&sim, 0)
            .members()
            .filter(|m| m.state == MemberState::Suspect)
            .count(),
        suspicions + 1
    );
    sim.run_for(Duration::from_millis(2));
    assert!(sim.inject(from, 0, lies(40..80)));
    // The refutation is back within a second; invented members are given
    // up only after several failed dials, well later.
    sim.run_for(Duration::from_secs(1));
    assert!(
        node(&sim, 0).knows_alive(&id_of(accused)),
        "node 0 lost the accused member"
    );
    assert!(node(&sim, accused).stats().refutations >= 1);
    // Every node is well connected, so only probing dials the invented
    // members: a few minutes on none is listed, every real member is.
    sim.run_for(Duration::from_secs(300));
    for i in 0..n {
        let ghosts = node(&sim, i)
            .roster()
            .filter(|(k, _)| is_invented(k.id))
            .count();
        assert_eq!(ghosts, 0, "node {i} still lists invented members");
    }
    assert!(sim.converged());
}

/// Silent connections holding every accepting slot neither block the
/// node's own dials nor a newcomer whose hello follows its connection.
#[test]
fn silent_connections_do_not_block_dials_or_a_prompt_newcomer() {
    let cfg = Config::lan();
    let me = addr_of(0);
    let mut node = Node::new(
        cfg.clone(),
        gossip_chat::Identity::new(me, 1, "n0"),
        1,
        Instant::ZERO,
    )
    .unwrap();
    let mut out = Vec::new();
    let now = Instant::from_millis(10);
    let accept = |node: &mut Node, out: &mut Vec<Output>, c: u64| {
        node.handle(
            now,
            Input::Connected {
                conn: ConnId(c),
                dialed: None,
                peer: None,
            },
            out,
        );
    };
    for c in 0..cfg.max_handshaking as u64 {
        accept(&mut node, &mut out, c);
    }
    // The node's own dial connects: it is not refused for lack of slots.
    let seed = addr_of(1);
    node.handle(now, Input::Join { addr: seed }, &mut out);
    assert!(out.contains(&Output::Connect { addr: seed }));
    out.clear();
    let dial = ConnId(1000);
    node.handle(
        now,
        Input::Connected {
            conn: dial,
            dialed: Some(seed),
            peer: Some(id_of(1)),
        },
        &mut out,
    );
    assert!(
        !out.contains(&Output::Close { conn: dial }),
        "own dial refused: {out:?}"
    );
    assert_eq!(node.table_sizes().accepting, cfg.max_handshaking);
    // A newcomer connects and says hello at once: once the silent ones
    // had a probe timeout to speak, it gets in, and the oldest silent
    // connection makes room.
    out.clear();
    let newcomer = ConnId(2000);
    let now = now + cfg.probe_timeout;
    node.handle(
        now,
        Input::Connected {
            conn: newcomer,
            dialed: None,
            peer: Some(id_of(2)),
        },
        &mut out,
    );
    assert_eq!(out.first(), Some(&Output::Close { conn: ConnId(0) }));
    node.handle(
        now,
        Input::Message {
            conn: newcomer,
            msg: Message::Hello(hello(2)),
        },
        &mut out,
    );
    assert!(
        node.neighbours().any(|a| a == id_of(2)),
        "newcomer not taken: {out:?}"
    );
    assert!(node.table_sizes().accepting <= cfg.max_handshaking);
}

#[test]
fn a_forged_leave_for_another_node_is_refused() {
    let mut sim = lan(3, Config::lan(), 32).build();
    converge(&mut sim, 3, Duration::from_secs(5));
    // Node 2's entry as its peers hold it, its departure signed by node 1
    // (the sender cannot sign for node 2): refused on node 1's connection
    // before the signature is even looked at.
    let own = node(&sim, 2).own_entry();
    let forger = Identity::new(addr_of(1), 1, "").key;
    let victim = MemberUpdate {
        state: MemberState::Left,
        proof: Proof::sign(&forger, own.node, own.version, own.addr, &own.name, true),
        ..own
    };
    assert!(sim.inject(1, 0, Message::Leave(Box::new(victim))));
    sim.run_for(Duration::from_secs(1));
    assert!(node(&sim, 0).knows_alive(&id_of(2)));
    assert!(node(&sim, 0).stats().unexpected >= 1);
}

#[test]
fn a_peer_list_over_the_limit_is_cut_and_counted() {
    let cfg = Config {
        max_peer_list: 50,
        ..Config::lan()
    };
    let mut node = Node::new(
        cfg.clone(),
        gossip_chat::Identity::new(addr_of(0), 1, "n0"),
        1,
        Instant::ZERO,
    )
    .unwrap();
    let mut out = Vec::new();
    node.handle(
        Instant::ZERO,
        Input::Connected {
            conn: ConnId(1),
            dialed: None,
            peer: Some(id_of(1)),
        },
        &mut out,
    );
    node.handle(
        Instant::ZERO,
        Input::Message {
            conn: ConnId(1),
            msg: Message::Hello(hello(1)),
        },
        &mut out,
    );
    let lies: Vec<MemberUpdate> = (0..80).map(ghost).collect();
    node.handle(
        Instant::from_millis(1),
        Input::Message {
            conn: ConnId(1),
            msg: Message::PeerList {
                full: true,
                members: lies,
            },
        },
        &mut out,
    );
    assert_eq!(node.stats().peer_list_truncated, 30);
    // The sender plus the 50 entries kept.
    assert_eq!(node.table_sizes().members, 51);
    assert!(node.knows_alive(&id_of(1)));
    assert!(!node.knows_alive(&invented_id(79)));
}

/// Member state only the member can sign: a later life or version, another
/// address, even news about the receiving node itself, signed by the peer
/// that sends it (or under the member's public key with the peer's
/// signature) is dropped and counted before it changes anything: the
/// member is not taken to have moved on, the receiver does not refute.
#[test]
fn member_state_the_member_did_not_sign_is_dropped_and_counted() {
    let mut sim = lan(3, Config::lan(), 33).build();
    converge(&mut sim, 3, Duration::from_secs(5));
    let forger = Identity::new(addr_of(1), 1, "").key;
    let forge = |mut u: MemberUpdate, under_its_key: bool| {
        u.proof = Proof::sign(
            &forger,
            u.node,
            u.version,
            u.addr,
            &u.name,
            u.state == MemberState::Left,
        );
        if under_its_key {
            u.proof.key = Identity::new(u.addr, 1, "").key.verifying_key().to_bytes();
        }
        u
    };
    let two = node(&sim, 2).own_entry();
    let zero = node(&sim, 0).own_entry();
    let forged = vec![
        // A later life of node 2.
        forge(
            MemberUpdate {
                node: NodeKey {
                    incarnation: two.node.incarnation + 1,
                    ..two.node
                },
                ..two.clone()
            },
            false,
        ),
        // A later version of its life.
        forge(
            MemberUpdate {
                version: two.version + 5,
                ..two.clone()
            },
            true,
        ),
        // Another address, a version on.
        forge(
            MemberUpdate {
                version: two.version + 1,
                addr: addr_of(1),
                ..two.clone()
            },
            false,
        ),
        // Node 0's own life at a later version, told to node 0.
        forge(
            MemberUpdate {
                version: zero.version + 1,
                ..zero.clone()
            },
            true,
        ),
    ];
    let dropped = node(&sim, 0).stats().forged_state;
    assert!(sim.inject(
        1,
        0,
        Message::PeerList {
            full: false,
            members: forged,
        }
    ));
    assert_eq!(node(&sim, 0).stats().forged_state, dropped + 4);
    sim.run_for(Duration::from_secs(2));
    let held = node(&sim, 0)
        .members()
        .find(|m| m.node.id == id_of(2))
        .expect("node 0 still holds node 2");
    assert_eq!(
        (held.node, held.version, held.addr, held.state),
        (two.node, two.version, two.addr, MemberState::Alive)
    );
    assert_eq!(node(&sim, 0).version(), zero.version);
    assert_eq!(node(&sim, 0).stats().refutations, 0);
    assert_eq!(node(&sim, 2).stats().refutations, 0);
    assert!(sim.converged());
}

/// One member accuses another, in its own name, of being dead at every
/// version it refutes to, as fast as it likes: no honest node ever shows
/// the accused down (a death from another is a suspicion, which the
/// accused refutes), and the accused, past `accuser_allowance` refuted
/// accusations, counts the accuser's for nothing.
#[test]
fn a_member_that_keeps_accusing_the_living_removes_no_one_and_stops_counting() {
    // More members than neighbours: most know the accused by hearsay only,
    // so they take the accusations (a neighbour that hears from the
    // accused passes them to it instead).
    let cfg = Config::lan();
    let n = 24;
    let mut sim = lan(n, cfg.clone(), 11).join(InitialJoin::Chain).build();
    converge(&mut sim, n as usize, Duration::from_secs(10));
    sim.run_for(Duration::from_secs(3));
    let (accuser, accused) = (1, 5);
    let key = Identity::new(addr_of(accuser), 1, "").key;
    let rounds = 3 * cfg.accuser_allowance;
    for _ in 0..rounds {
        let own = node(&sim, accused).own_entry();
        let death = Message::PeerList {
            full: false,
            members: vec![MemberUpdate {
                state: MemberState::Dead,
                accuser: Some(Accusation::sign(&key, own.node, own.version)),
                ..own
            }],
        };
        for to in (0..n).filter(|i| ![accuser, accused].contains(i)) {
            sim.inject(accuser, to, death.clone());
        }
        sim.run_for(Duration::from_millis(50));
    }
    sim.run_for(cfg.suspect_timeout.saturating_mul(2));
    let downs = sim
        .events()
        .iter()
        .filter(|e| matches!(&e.event, Event::PeerDown { node, .. } if node.id == id_of(accused)))
        .count();
    let refuted: Vec<String> = sim
        .events()
        .iter()
        .filter(|e| e.node == accused && matches!(e.event, Event::Refuted { .. }))
        .map(|e| format!("{:?}", e.at))
        .collect();
    assert_eq!(
        downs, 0,
        "the accused was shown down; refuted at {refuted:?}"
    );
    assert!(node(&sim, accused).stats().refutations >= u64::from(cfg.accuser_allowance));
    // The accused alone knows each accusation false: it holds the accuser
    // to them, and stops counting its accusations of others.
    assert!(
        node(&sim, accused).stats().accusers_limited >= 1,
        "the accused never stopped counting its accuser"
    );
    for i in (0..n).filter(|i| *i != accused) {
        assert!(node(&sim, i).knows_alive(&id_of(accused)), "n{i}");
    }
}
