//! The TCP adapter's library API, in process: nodes started with
//! `gossip_chat_net::start` on 127.0.0.1 talk over real sockets.

mod common;

use gossip_chat::{DownReason, Event};
use gossip_chat_net::{self as net, NetConfig, NodeHandle};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(10);

fn node(name: &str) -> NodeHandle {
    logs();
    net::start(NetConfig::new("127.0.0.1:0".parse().unwrap(), name)).expect("start node")
}

/// Logs to the test output when `RUST_LOG` is set.
fn logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// The first event matching `pred`, or a panic after `WITHIN`.
fn wait(n: &NodeHandle, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = crossbeam_channel::after(WITHIN);
    let events = n.events().expect("started with net::start");
    loop {
        crossbeam_channel::select! {
            recv(events) -> ev => {
                let ev = ev.unwrap_or_else(|_| panic!("{what}: node stopped"));
                if pred(&ev) {
                    return ev;
                }
            }
            recv(deadline) -> _ => panic!("no {what} within {WITHIN:?}"),
        }
    }
}

/// Polls `cond` every 20 ms until it holds, or panics after `WITHIN`.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = crossbeam_channel::after(WITHIN);
    while !cond() {
        crossbeam_channel::select! {
            recv(deadline) -> _ => panic!("{what}: not within {WITHIN:?}"),
            recv(crossbeam_channel::after(Duration::from_millis(20))) -> _ => {}
        }
    }
}

#[test]
fn two_nodes_chat_and_a_shutdown_is_a_leave() {
    let a = node("alice");
    let b = node("bob");
    b.join(a.addr());
    wait(
        &a,
        "peer_up bob",
        |e| matches!(e, Event::PeerUp { name, .. } if &**name == "bob"),
    );
    wait(
        &b,
        "peer_up alice",
        |e| matches!(e, Event::PeerUp { name, .. } if &**name == "alice"),
    );
    b.send("hi alice");
    let got = wait(&a, "chat", |e| matches!(e, Event::Chat { .. }));
    let Event::Chat { id, text, .. } = got.clone() else {
        unreachable!()
    };
    assert_eq!(&*text, "hi alice");
    let Event::Chat { addr, .. } = &got else {
        unreachable!()
    };
    assert_eq!(*addr, Some(b.addr()));
    // Members are known by the id of their key, which the handshake proved.
    assert_eq!(id.origin.id, b.member_id());
    // Own messages come back too.
    wait(
        &b,
        "own chat",
        |e| matches!(e, Event::Chat { text, .. } if &**text == "hi alice"),
    );
    assert_eq!(a.peers().len(), 1);

    eventually("both linked", || {
        a.peers().iter().all(|p| p.neighbour) && b.peers().iter().all(|p| p.neighbour)
    });
    let (b_addr, b_id) = (b.addr(), b.member_id());
    b.shutdown();
    let down = wait(&a, "peer_down", |e| matches!(e, Event::PeerDown { .. }));
    let Event::PeerDown {
        node, addr, reason, ..
    } = down
    else {
        unreachable!()
    };
    assert_eq!(addr, b_addr);
    assert_eq!(node.id, b_id);
    assert_eq!(reason, DownReason::Left);
    assert!(a.peers().is_empty());
}

#[test]
fn two_nodes_dialling_each_other_at_once_keep_one_connection() {
    let a = node("a");
    let b = node("b");
    a.join(b.addr());
    b.join(a.addr());
    eventually("one connection each way", || {
        let (sa, sb) = (a.table_sizes().unwrap(), b.table_sizes().unwrap());
        sa.neighbours == 1 && sb.neighbours == 1 && sa.connections == 1 && sb.connections == 1
    });
    a.send("still fine");
    wait(
        &b,
        "chat",
        |e| matches!(e, Event::Chat { text, .. } if &**text == "still fine"),
    );
}

#[test]
fn a_node_restarted_on_another_port_with_its_key_stays_the_same_member() {
    let a = node("a");
    let identity = net::NodeIdentity::generate();
    let start_b = || {
        let mut cfg = NetConfig::new("127.0.0.1:0".parse().unwrap(), "b");
        cfg.identity = Some(identity.clone());
        cfg.join = vec![a.addr()];
        net::start(cfg).expect("start b")
    };
    let b = start_b();
    let (id, first_addr) = (b.member_id(), b.addr());
    assert_eq!(id, gossip_chat::Id::of_key(&identity.id().0));
    let up = wait(&a, "peer_up b", |e| matches!(e, Event::PeerUp { .. }));
    let Event::PeerUp {
        node: first, addr, ..
    } = up
    else {
        unreachable!()
    };
    assert_eq!((first.id, addr), (id, first_addr));
    b.shutdown();
    wait(
        &a,
        "b left",
        |e| matches!(e, Event::PeerDown { node, .. } if node.id == id),
    );

    let b = start_b();
    assert_eq!(b.member_id(), id);
    assert_ne!(b.addr(), first_addr, "port 0 picked the same port again");
    let up = wait(
        &a,
        "b back",
        |e| matches!(e, Event::PeerUp { node, .. } if node.id == id),
    );
    let Event::PeerUp { node, addr, .. } = up else {
        unreachable!()
    };
    assert_eq!(addr, b.addr());
    assert!(node.incarnation > first.incarnation);
    let peers = a.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!((peers[0].node, peers[0].addr), (node, b.addr()));
}

#[test]
fn a_hello_naming_another_id_than_the_handshake_proved_is_refused() {
    use gossip_chat::Message;
    let a = node("a");
    let victim = net::NodeIdentity::generate().id().member_id();
    let hello = common::hello_as(victim, "127.0.0.1:1".parse().unwrap(), "impostor");
    let mut raw = common::RawPeer::new().send(a.addr(), &[Message::Hello(hello)]);
    assert!(
        common::closed_within(&mut raw, WITHIN),
        "the impostor's connection still open after {WITHIN:?}"
    );
    eventually("the impostor counted", || {
        a.stats().is_some_and(|s| s.impostors == 1)
    });
    assert!(a.peers().is_empty());
    assert!(a.members().is_empty());
}

#[test]
fn a_port_in_use_is_a_bind_error() {
    let a = node("a");
    let err = net::start(NetConfig::new(a.addr(), "b")).unwrap_err();
    assert!(matches!(err, net::StartError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&a.addr().to_string()));
}

/// A peer that handshakes with `a` and keeps talking (so it never looks
/// dead) but never reads; it claims an address where nobody listens. Its
/// id, and the sender that stops its pings and the thread that sends them.
fn stuck_peer(
    a: &net::NodeHandle,
) -> (
    gossip_chat::Id,
    crossbeam_channel::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    use gossip_chat::Message;
    use std::io::Write;
    let stuck_addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let peer = common::RawPeer::new();
    let stuck_id = peer.id;
    // It asks for chat to be pushed over its link (a graft), whatever
    // place on the tree `a` gave the link: its queue is to fill.
    let mut raw = peer.send(
        a.addr(),
        &[
            Message::Hello(peer.hello(stuck_addr, "stuck")),
            Message::Graft(gossip_chat::Graft::ids(Vec::new())),
        ],
    );
    wait(
        a,
        "peer_up stuck",
        |e| matches!(e, Event::PeerUp { node, addr, .. } if node.id == stuck_id && *addr == stuck_addr),
    );
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let pinger = std::thread::spawn(move || {
        let tick = crossbeam_channel::tick(Duration::from_millis(100));
        let mut n = 0u32;
        loop {
            crossbeam_channel::select! {
                recv(stop_rx) -> _ => return,
                recv(tick) -> _ => {
                    // Its ping keeps its link speaking, and the graft again
                    // keeps its link on the tree at `a`'s end whatever
                    // reshaped it meanwhile.
                    let mut f = Vec::new();
                    n += 1;
                    gossip_chat::wire::encode_frame(&Message::Ping(n), &mut f);
                    gossip_chat::wire::encode_frame(
                        &Message::Graft(gossip_chat::Graft::ids(Vec::new())),
                        &mut f,
                    );
                    if raw.write_all(&f).is_err() {
                        return;
                    }
                }
            }
        }
    });
    (stuck_id, stop_tx, pinger)
}

#[test]
fn a_peer_that_stops_reading_is_disconnected_without_blocking_the_node() {
    let mut cfg = NetConfig::new("127.0.0.1:0".parse().unwrap(), "a");
    cfg.send_queue = 16;
    cfg.write_timeout = Duration::from_secs(60);
    let a = net::start(cfg).unwrap();
    let b = node("b");
    b.join(a.addr());
    wait(&a, "peer_up b", |e| matches!(e, Event::PeerUp { .. }));
    let (stuck_id, stop_tx, pinger) = stuck_peer(&a);

    // Far more than the socket buffers hold: the stuck peer's queue fills.
    let big = "x".repeat(4000);
    for _ in 0..4000 {
        a.send(big.clone());
    }
    a.send("last");
    wait(
        &b,
        "last",
        |e| matches!(e, Event::Chat { text, .. } if &**text == "last"),
    );
    wait(
        &a,
        "stuck peer dropped",
        |e| matches!(e, Event::PeerDown { node, .. } if node.id == stuck_id),
    );
    drop(stop_tx);
    pinger.join().unwrap();
}

/// The send queues together hold at most `send_queue_bytes`: past it the
/// peer whose queue holds the most is cut as stuck (counted), not the
/// peer being sent to, and the peers that read get everything. The flood
/// is relayed: this node's own sends wait while its queues are half full.
#[test]
fn the_send_budget_cuts_the_peer_that_holds_the_most_bytes() {
    let board = net::SnapshotBoard::new();
    let mut cfg = NetConfig::new("127.0.0.1:0".parse().unwrap(), "a");
    // Far more messages than the flood: only the bytes can bound it. The
    // budget is raised to two frames.
    cfg.send_queue = 1 << 20;
    cfg.send_queue_bytes = 1;
    cfg.write_timeout = Duration::from_secs(60);
    cfg.snapshots = Some(board.clone());
    let a = net::start(cfg).unwrap();
    // The stuck peer's address (port 1) refuses every dial: b and c would
    // accuse it at their first probe of it, and on a loaded machine the
    // flood might not fill its queue before it is removed as dead. They
    // probe nobody here.
    let quiet = |name: &str| {
        let mut cfg = NetConfig::new("127.0.0.1:0".parse().unwrap(), name);
        cfg.node.probe_interval = gossip_chat::Duration::from_secs(600);
        net::start(cfg).expect("start node")
    };
    let (b, c) = (quiet("b"), quiet("c"));
    for n in [&b, &c] {
        n.join(a.addr());
    }
    eventually("a linked to b and c", || {
        a.peers().iter().filter(|p| p.neighbour).count() == 2
    });
    let (stuck_id, stop_tx, pinger) = stuck_peer(&a);

    // 16 MB from b, eight times a's budget, relayed by a.
    let big = "x".repeat(4000);
    for _ in 0..4000 {
        b.send(big.clone());
    }
    b.send("last");
    for n in [&a, &c] {
        let chats = std::cell::Cell::new(0);
        wait(n, "every chat", |e| {
            chats.set(chats.get() + usize::from(matches!(e, Event::Chat { .. })));
            matches!(e, Event::Chat { text, .. } if &**text == "last")
        });
        assert_eq!(chats.get(), 4001, "a reading node lost chats");
    }

    // The stuck peer is cut once it holds the most. A reading peer may be
    // cut too on a loaded machine (two frames are little to hold), and
    // comes back: it is linked again below.
    let cut = || {
        board
            .latest()
            .is_some_and(|s| s.adapter.slow_peers_dropped >= 1)
            && !a
                .peers()
                .iter()
                .any(|p| p.node.id == stuck_id && p.neighbour)
    };
    let deadline = crossbeam_channel::after(WITHIN);
    while !cut() {
        crossbeam_channel::select! {
            recv(deadline) -> _ => {
                // What the node saw: its links, counters and queues.
                let s = board.latest();
                panic!(
                    "the stuck peer was not cut for its queue within {WITHIN:?}: adapter {:?}, queued {:?}, peers {:?}, stats {:?}",
                    s.as_ref().map(|s| &s.adapter),
                    s.as_ref().map(|s| (s.send_queued, s.send_queue_max)),
                    a.peers(),
                    s.as_ref().map(|s| &s.stats),
                );
            }
            recv(crossbeam_channel::after(Duration::from_millis(20))) -> _ => {}
        }
    }
    eventually("a linked to b and c again", || {
        let peers = a.peers();
        [&b, &c]
            .iter()
            .all(|n| peers.iter().any(|p| p.addr == n.addr() && p.neighbour))
    });
    drop(stop_tx);
    pinger.join().unwrap();
}

#[test]
fn a_peers_chats_are_verified_on_its_reader_thread_not_on_the_driver() {
    logs();
    let board = net::SnapshotBoard::new();
    let mut cfg = NetConfig::new("127.0.0.1:0".parse().unwrap(), "alice");
    cfg.snapshots = Some(board.clone());
    let a = net::start(cfg).expect("start node");
    let b = node("bob");
    b.join(a.addr());
    wait(
        &a,
        "peer_up bob",
        |e| matches!(e, Event::PeerUp { name, .. } if &**name == "bob"),
    );
    const CHATS: u64 = 40;
    for i in 0..CHATS {
        b.send(format!("chat {i}"));
    }
    for _ in 0..CHATS {
        wait(
            &a,
            "bob's chat",
            |e| matches!(e, Event::Chat { addr, .. } if *addr == Some(b.addr())),
        );
    }
    // Snapshots come at most every 200 ms: wait for one taken after the
    // last chat (and alice's own hello).
    eventually("a snapshot with every chat delivered", || {
        board.latest().is_some_and(|s| s.stats.delivered >= CHATS)
    });
    let snap = board.latest().expect("a snapshot");
    assert_eq!(snap.stats.forged, 0);
    // Every chat and the hello came with its signature verified by the
    // connection's reader; the driver checks only what no message brought
    // (an accusation it makes itself, were bob slow to answer).
    assert!(
        snap.adapter.signatures_on_driver < CHATS / 4,
        "the driver verified {} signatures for {CHATS} chats",
        snap.adapter.signatures_on_driver
    );
}
