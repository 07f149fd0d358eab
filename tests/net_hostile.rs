//! Real `chat` processes among hostile peers: idle connections held on the
//! port, a peer that stops reading, a flood of invented members. Under
//! each, the honest nodes keep exchanging messages with no loss and the
//! attacked node's resident memory stays under its bound (see
//! `tests/HOSTILE.md`).

mod common;

use common::*;
use gossip_chat::{MemberState, MemberUpdate, Message, NodeKey};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Resident memory a `chat` process may reach under these tests, in KiB.
/// Documented in `tests/HOSTILE.md`.
const RSS_BOUND_KIB: u64 = 64 * 1024;

/// Each node of `nodes` sends `per_node` short messages; every node must
/// deliver every one of them exactly once, in per-sender order.
fn everyone_chats(nodes: &mut [Chat], tag: &str, per_node: usize) {
    let sent: Vec<Vec<String>> = nodes
        .iter_mut()
        .map(|n| {
            let t = texts(&format!("{tag} from {}", n.name), per_node, 40);
            for line in &t {
                n.line(line);
            }
            t
        })
        .collect();
    for n in nodes.iter() {
        for (from, t) in nodes.iter().zip(&sent) {
            n.wait_chats(from, t, DELIVERY);
        }
    }
    for n in nodes.iter() {
        for (from, t) in nodes.iter().zip(&sent) {
            n.assert_delivered_exactly(from, t);
        }
    }
}

fn assert_rss_bounded(node: &Chat, when: &str) -> u64 {
    let rss = node.rss_kib();
    eprintln!("{}: VmRSS {rss} KiB {when}", node.name);
    assert!(
        rss < RSS_BOUND_KIB,
        "{}: VmRSS {rss} KiB {when}, bound {RSS_BOUND_KIB} KiB",
        node.name
    );
    rss
}

#[test]
fn two_hundred_idle_connections_do_not_stop_a_node_serving_its_peers() {
    let mut nodes = mesh("idle", 3, &[]);
    let before = nodes[0].rss_kib();
    eprintln!("idle0: VmRSS {before} KiB before the attack");

    // 200 connections held open on the first node's port: half say
    // nothing, half send only part of a frame.
    let opened = clock();
    let mut held: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut s = TcpStream::connect(nodes[0].addr).expect("connect");
            if i % 2 == 1 {
                s.write_all(&[0, 0, 0, 100, 1, 2, 3]).unwrap();
            }
            s
        })
        .collect();

    // The group keeps chatting while they are held...
    everyone_chats(&mut nodes, "during", 20);
    assert_rss_bounded(&nodes[0], "with 200 connections held");

    // ...a newcomer gets in through the attacked node (at the latest once
    // the idle connections have timed out)...
    let newcomer = Chat::start("idle3", &[&nodes[0]]);
    newcomer.wait_peers(&[&nodes[0], &nodes[1], &nodes[2]]);
    nodes.push(newcomer);

    // ...and every held connection is closed by the handshake timeout
    // (3 s) or at once when the handshaking slots are full.
    for (i, s) in held.iter_mut().enumerate() {
        let left = Duration::from_secs(10).saturating_sub(opened.elapsed());
        assert!(
            closed_within(s, left),
            "held connection {i} still open {:?} after it was opened",
            opened.elapsed()
        );
    }
    eprintln!(
        "all 200 held connections closed after {:?}",
        opened.elapsed()
    );
    everyone_chats(&mut nodes, "after", 10);
    assert_rss_bounded(&nodes[0], "after the attack");
}

#[test]
fn a_peer_that_stops_reading_is_dropped_without_stalling_the_others() {
    let mut nodes = mesh("slow", 3, &[]);
    // A peer that handshakes with the first node and keeps pinging it (so
    // it never looks dead) but never reads. It claims an address where
    // nobody listens.
    let stuck_addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let mut stuck = raw_peer(nodes[0].addr, &[Message::Hello(hello(stuck_addr, "stuck"))]);
    nodes[0].wait_for("peer_up of the stuck peer", DELIVERY, |e| {
        e["event"] == "peer_up" && e["addr"] == "127.0.0.1:1"
    });
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let pinger = std::thread::spawn(move || {
        let tick = crossbeam_channel::tick(Duration::from_millis(100));
        let mut n = 0u32;
        loop {
            crossbeam_channel::select! {
                recv(stop_rx) -> _ => return,
                recv(tick) -> _ => {
                    n += 1;
                    if stuck.write_all(&frame(&Message::Ping(n))).is_err() {
                        return;
                    }
                }
            }
        }
    });

    // The second node floods far more than the socket buffers hold; the
    // first relays it to the third and to the stuck peer.
    let started = clock();
    let flood = texts("flood", 3000, 2000);
    let writer = nodes[1].lines_in_background(flood.clone());
    // The first node's own messages go out meanwhile.
    let own = texts("own", 20, 40);
    for t in &own {
        nodes[0].line(t);
    }
    for n in nodes.iter() {
        n.wait_chats(&nodes[1], &flood, Duration::from_secs(30));
        eprintln!("{}: flood delivered after {:?}", n.name, started.elapsed());
        n.wait_chats(&nodes[0], &own, Duration::from_secs(30));
        eprintln!("{}: own delivered after {:?}", n.name, started.elapsed());
    }
    let down = nodes[0].wait_for("the stuck peer dropped", Duration::from_secs(20), |e| {
        e["event"] == "peer_down" && e["addr"] == "127.0.0.1:1"
    });
    eprintln!(
        "stuck peer dropped after {:?} ({})",
        started.elapsed(),
        down["reason"]
    );
    for n in nodes.iter() {
        n.assert_delivered_exactly(&nodes[1], &flood);
        n.assert_delivered_exactly(&nodes[0], &own);
    }
    assert_rss_bounded(&nodes[0], "after relaying the flood past a stuck peer");
    nodes[1].give_stdin(writer);
    drop(stop_tx);
    pinger.join().unwrap();
    everyone_chats(&mut nodes, "after", 10);
}

#[test]
fn a_flood_of_invented_peers_leaves_memory_bounded_and_members_connected() {
    let mut nodes = mesh("liar", 3, &[]);
    let before = nodes[0].rss_kib();
    eprintln!("liar0: VmRSS {before} KiB before the attack");
    // 1000 members nobody can reach: loopback addresses where nothing
    // listens (outside 127.0.0.1, so no other test's node can be hit).
    let invented: Vec<MemberUpdate> = (0..1000u32)
        .map(|i| MemberUpdate {
            node: NodeKey {
                addr: SocketAddr::from(([127, 1, (i / 250) as u8, (i % 250 + 1) as u8], 9)),
                incarnation: 1,
            },
            state: MemberState::Alive,
            name: format!("ghost{i}").into(),
        })
        .collect();
    let liar_addr: SocketAddr = "127.0.0.1:2".parse().unwrap();
    let mut liar = raw_peer(
        nodes[0].addr,
        &[
            Message::Hello(hello(liar_addr, "liar")),
            Message::PeerList {
                full: true,
                members: invented,
            },
        ],
    );
    // The ghosts reach the roster (v1 cannot tell them from real members)...
    let last_ghost = "127.1.3.250:9";
    for n in nodes.iter() {
        n.wait_for("the last invented member", DELIVERY, |e| {
            e["event"] == "peer_up" && e["addr"] == last_ghost
        });
    }
    // ...but the real members stay linked and keep chatting.
    everyone_chats(&mut nodes, "among ghosts", 20);
    for i in 0..nodes.len() {
        let (before, rest) = nodes.split_at_mut(i);
        let (me, after) = rest.split_first_mut().unwrap();
        let others: Vec<&Chat> = before.iter().chain(after.iter()).collect();
        me.wait_neighbours(&others, DELIVERY);
    }
    for n in &nodes {
        assert_rss_bounded(n, "with 1000 invented members");
    }
    let _ = liar.write_all(&frame(&Message::Ping(1)));
    drop(liar);
}
