//! Real `chat` processes among hostile peers: idle connections held on the
//! port, a peer that stops reading, a flood of invented members. Under
//! each, the honest nodes keep exchanging messages with no loss and the
//! attacked node's resident memory stays under its bound (see
//! README.md, "Hostile peers and history repair").

mod common;

use common::*;
use gossip_chat::{Id, MemberState, MemberUpdate, Message, NodeKey};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Resident memory a `chat` process may reach under these tests, in KiB.
/// Documented in README.md, "Hostile peers and history repair".
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

/// 64 silent connections reopened as soon as the node closes one: every
/// accepting slot stays taken, yet a newcomer whose hello follows its
/// connection gets in at once (the oldest silent one makes room), well
/// before any handshake timeout (3 s) could free a slot.
#[test]
fn a_newcomer_gets_in_while_idle_connections_keep_being_reopened() {
    let mut nodes = mesh("reopen", 2, &[]);
    let target = nodes[0].addr;
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let (full_tx, full_rx) = crossbeam_channel::bounded::<()>(1);
    let attacker = std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        let mut opened = 0u64;
        let tick = crossbeam_channel::tick(Duration::from_millis(20));
        loop {
            // Drop what the node closed, then top up to 64.
            held.retain(|s| {
                let mut b = [0u8; 256];
                match std::io::Read::read(&mut &*s, &mut b) {
                    Ok(0) => false,
                    Ok(_) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                }
            });
            while held.len() < 64 {
                let Ok(s) = TcpStream::connect(target) else {
                    break;
                };
                s.set_nonblocking(true).unwrap();
                held.push(s);
                opened += 1;
            }
            if opened > 2 * 64 {
                // The node is closing silent connections as new ones come.
                let _ = full_tx.try_send(());
            }
            crossbeam_channel::select! {
                recv(stop_rx) -> _ => return opened,
                recv(tick) -> _ => {}
            }
        }
    });
    full_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the node never closed a silent connection");
    let asked = clock();
    let newcomer = Chat::start("reopen2", &[&nodes[0]]);
    let addr = nodes[0].addr_str();
    newcomer.wait_for(
        "peer_up of the attacked node",
        Duration::from_millis(2500),
        |e| e["event"] == "peer_up" && e["addr"] == addr.as_str(),
    );
    eprintln!("newcomer in after {:?}", asked.elapsed());
    nodes.push(newcomer);
    everyone_chats(&mut nodes, "during", 10);
    drop(stop_tx);
    let opened = attacker.join().expect("attacker");
    eprintln!("{opened} connections opened by the attacker");
}

#[test]
fn a_peer_that_stops_reading_is_dropped_without_stalling_the_others() {
    let mut nodes = mesh("slow", 3, &[]);
    // A peer that handshakes with the first node and keeps pinging it (so
    // it never looks dead) but never reads. It claims an address where
    // nobody listens.
    let stuck_addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let mut stuck = raw_member(nodes[0].addr, stuck_addr, "stuck", &[]);
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

    // The second node floods far more than the socket buffers hold (6 MB),
    // in one burst of three times `max_holdback`; the first relays it to the
    // third and to the stuck peer. A hole early in the burst must wait for
    // repair, not be given up because the hold-back is full.
    let started = clock();
    let flood = texts("flood", 3000, 2000);
    // The first node's own messages go out meanwhile.
    let own = texts("own", 20, 40);
    for t in &own {
        nodes[0].line(t);
    }
    let writer = nodes[1].lines_in_background(flood.clone());
    for n in nodes.iter() {
        n.wait_chats(&nodes[1], &flood, Duration::from_secs(60));
    }
    nodes[1].give_stdin(writer);
    for n in nodes.iter() {
        n.wait_chats(&nodes[0], &own, Duration::from_secs(30));
    }
    eprintln!(
        "flood and own messages delivered everywhere after {:?}",
        started.elapsed()
    );
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
    // listens (outside 127.0.0.1, so no other test's node can be hit),
    // under ids no key stands behind.
    let invented: Vec<MemberUpdate> = (0..1000u32)
        .map(|i| {
            let addr = SocketAddr::from(([127, 1, (i / 250) as u8, (i % 250 + 1) as u8], 9));
            (i, addr)
        })
        .map(|(i, addr)| MemberUpdate {
            node: keyless(addr),
            addr,
            state: MemberState::Alive,
            name: format!("ghost{i}").into(),
            version: 0,
            age_secs: 0,
            accuser: None,
        })
        .collect();
    let liar_addr: SocketAddr = "127.0.0.1:2".parse().unwrap();
    let mut liar = raw_member(
        nodes[0].addr,
        liar_addr,
        "liar",
        &[Message::PeerList {
            full: true,
            members: invented,
        }],
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
    wait_mesh(&mut nodes, DELIVERY);
    for n in &nodes {
        assert_rss_bounded(n, "with 1000 invented members");
    }
    let _ = liar.write_all(&frame(&Message::Ping(1)));
    drop(liar);
}

/// The life of an invented member, one no key stands behind: its id is
/// made from the address it claims.
fn keyless(addr: SocketAddr) -> NodeKey {
    NodeKey {
        id: Id::of_addr(addr),
        incarnation: 1,
    }
}

/// Sender `o` (from 1) of the `net`-th group of forged chats: a member no
/// node knows, so its chats show its id as their origin.
fn forged_origin(net: u8, o: u32) -> NodeKey {
    keyless(SocketAddr::from(([127, 2, net, o as u8], 9)))
}

/// Chats of `origins` invented senders, `seqs` each, every text `len` bytes,
/// as frames.
fn forged_chats(
    net: u8,
    origins: u32,
    seqs: std::ops::RangeInclusive<u64>,
    len: usize,
) -> Vec<Vec<u8>> {
    let text: std::sync::Arc<str> = "y".repeat(len).into();
    (0..origins)
        .map(|o| {
            let origin = forged_origin(net, o + 1);
            let mut bytes = Vec::new();
            for seq in seqs.clone() {
                let chat = gossip_chat::Chat {
                    id: gossip_chat::MsgId { origin, seq },
                    name: "spam".into(),
                    text: text.clone(),
                    sent_ms: 0,
                };
                bytes.extend(frame(&Message::Chat(chat)));
            }
            bytes
        })
        .collect()
}

/// A peer sends two rounds of 10 000 in-order chats of `len` bytes from
/// invented senders (each round alone fills the default history of 10 000
/// messages) to the first of two nodes, while the two chat. Both deliver
/// everything; memory stops growing once the history is full.
fn history_flood(len: usize) {
    let mut nodes = mesh("spam", 2, &[]);
    let mut rss = Vec::new();
    let mut spammers = Vec::new();
    for round in 0..2u8 {
        // A connection of its own per round: the spammer does not ping,
        // so a connection silent for 2 s counts as dead.
        let spammer_addr = SocketAddr::from(([127, 0, 0, 1], 30 + u16::from(round)));
        let mut spammer = raw_member(nodes[0].addr, spammer_addr, "spammer", &[]);
        let frames = forged_chats(round, 10, 1..=1000, len);
        let writer = std::thread::spawn(move || {
            for bytes in frames {
                spammer.write_all(&bytes).expect("spam");
            }
            spammer
        });
        everyone_chats(&mut nodes, &format!("during{round}"), 10);
        spammers.push(writer.join().expect("spam writer"));
        for o in 1..=10 {
            let origin = forged_origin(round, o).id.to_string();
            for n in &nodes {
                n.wait_for("every forged chat", Duration::from_secs(30), |e| {
                    e["event"] == "chat" && e["origin"] == origin.as_str() && e["seq"] == 1000
                });
            }
        }
        rss.push(assert_rss_bounded(
            &nodes[0],
            &format!("after {}0 000 chats of {len} bytes", round + 1),
        ));
        assert_rss_bounded(&nodes[1], "after relaying them");
    }
    // Once the history is full, more chats do not take more memory.
    assert!(
        rss[1] < rss[0] + 8 * 1024,
        "VmRSS grew from {} to {} KiB with a full history",
        rss[0],
        rss[1]
    );
    everyone_chats(&mut nodes, "after", 10);
    drop(spammers);
}

#[test]
fn a_flood_of_chats_fills_the_history_only_up_to_its_bound() {
    history_flood(1900);
}

/// The same with texts of the largest size: the history then holds ~45 MiB.
/// A neighbour that falls behind such a flood (its queue fills, the link is
/// dropped and re-dialled) catches up by repair at about 250 of these a
/// second, which can take longer than the test waits on a busy machine.
#[test]
#[ignore = "slow: 80 MB of chats through two debug nodes; run with --include-ignored"]
fn a_flood_of_maximum_size_chats_fills_the_history_only_up_to_its_bound() {
    history_flood(4096);
}

/// Chats that cannot be delivered yet (their first seq never comes) are
/// held back up to `max_holdback` (1000) over all senders; the rest wait in
/// the bounded history only. Before that bound was node-wide, 20 senders of
/// 1000 such chats of 4 KiB took a node past 90 MiB (215 MiB with 50).
#[test]
fn a_flood_of_chats_that_cannot_be_delivered_stays_under_the_memory_bound() {
    let mut nodes = mesh("held", 2, &[]);
    let peaks: Vec<RssPeak> = nodes.iter().map(|n| RssPeak::watch(n.child.id())).collect();
    let spammer_addr: SocketAddr = "127.0.0.1:3".parse().unwrap();
    let mut spammer = raw_member(nodes[0].addr, spammer_addr, "spammer", &[]);
    // Seq 1 never comes: 30 senders with 1000 messages each to hold back.
    for bytes in forged_chats(9, 30, 2..=1001, 4000) {
        spammer.write_all(&bytes).expect("spam");
    }
    // The node answers a ping sent after the flood once it has handled it.
    spammer.write_all(&frame(&Message::Ping(7))).unwrap();
    wait_for_message(&mut spammer, "the pong", Duration::from_secs(60), |m| {
        *m == Message::Pong(7)
    });
    everyone_chats(&mut nodes, "after", 10);
    for (n, peak) in nodes.iter().zip(peaks) {
        let peak = peak.stop();
        eprintln!("{}: VmRSS peak {peak} KiB", n.name);
        assert!(
            peak < RSS_BOUND_KIB,
            "{}: VmRSS peaked at {peak} KiB with 30 000 chats of 4 KiB held back, bound {RSS_BOUND_KIB} KiB",
            n.name
        );
    }
    drop(spammer);
}

#[test]
fn a_text_over_the_limit_is_refused_from_a_peer_and_from_the_user() {
    let mut nodes = mesh("long", 2, &[]);
    let peer_addr: SocketAddr = "127.0.0.1:4".parse().unwrap();
    let origin = |ip: [u8; 4]| keyless(SocketAddr::from((ip, 9)));
    let chat = |ip: [u8; 4], len: usize| {
        Message::Chat(gossip_chat::Chat {
            id: gossip_chat::MsgId {
                origin: origin(ip),
                seq: 1,
            },
            name: "x".into(),
            text: "z".repeat(len).into(),
            sent_ms: 0,
        })
    };
    // One byte over the default limit (4096), then a marker on the same
    // connection: once the marker is delivered, the long one was handled.
    let peer = raw_member(
        nodes[0].addr,
        peer_addr,
        "verbose",
        &[chat([127, 3, 0, 1], 4097), chat([127, 3, 0, 2], 10)],
    );
    // Neither sender is a member: their chats show their ids as origin.
    let (long, marker) = (
        origin([127, 3, 0, 1]).id.to_string(),
        origin([127, 3, 0, 2]).id.to_string(),
    );
    for n in &nodes {
        n.wait_for("the marker", DELIVERY, |e| {
            e["event"] == "chat" && e["origin"] == marker.as_str() && e["member"] == marker.as_str()
        });
        assert!(
            !n.seen().iter().any(|e| e["member"] == long.as_str()),
            "{}: delivered a text over the limit",
            n.name
        );
    }
    // The user is told why a long line was not sent.
    let mark = nodes[1].mark();
    nodes[1].line(&"w".repeat(4097));
    let refused = nodes[1].wait_since(mark, "refused", DELIVERY, |e| e["event"] == "refused");
    assert_eq!(refused["reason"], "text_too_long");
    assert_eq!(refused["max"], 4096);
    everyone_chats(&mut nodes, "after", 5);
    drop(peer);
}

#[test]
fn a_flood_of_large_frames_stays_under_the_memory_bound() {
    let mut nodes = mesh("big", 2, &[]);
    // Peer lists of 9000 members (800 KB a frame, under the 1 MiB frame
    // limit), sent far faster than a node can merge them.
    let members: Vec<MemberUpdate> = (0..9000u32)
        .map(|i| SocketAddr::from(([127, 4, (i / 250) as u8, (i % 250 + 1) as u8], 9)))
        .map(|addr| MemberUpdate {
            node: keyless(addr),
            addr,
            state: MemberState::Dead,
            name: "n".repeat(80).into(),
            version: 0,
            age_secs: 0,
            accuser: None,
        })
        .collect();
    let list = frame(&Message::PeerList {
        full: true,
        members,
    });
    let frame_kib = list.len() as u64 / 1024;
    let peak = RssPeak::watch(nodes[0].child.id());
    let mut peer = raw_member(nodes[0].addr, "127.0.0.1:5".parse().unwrap(), "big", &[]);
    let writer = std::thread::spawn(move || {
        let mut written = 0usize;
        for _ in 0..300 {
            // 240 MB in all; the node may drop the link when it declares
            // the silent peer dead.
            if peer.write_all(&list).is_err() {
                break;
            }
            written += 1;
        }
        written
    });
    everyone_chats(&mut nodes, "during", 10);
    let written = writer.join().expect("frame writer");
    everyone_chats(&mut nodes, "after", 10);
    let peak = peak.stop();
    eprintln!("big0: VmRSS peak {peak} KiB under a flood of {written} frames of {frame_kib} KiB");
    // The flood must be larger than the bound itself, or holding every
    // frame would pass too.
    assert!(
        written as u64 * frame_kib > 2 * RSS_BOUND_KIB,
        "only {written} frames of {frame_kib} KiB went in: the flood proves nothing"
    );
    assert!(
        peak < RSS_BOUND_KIB,
        "VmRSS peaked at {peak} KiB, bound {RSS_BOUND_KIB} KiB"
    );
}
