//! Criterion benches of the core: one node step, a big membership merge,
//! and the codec.
//!
//! `cargo bench --bench core`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gossip_chat::wire;
use gossip_chat::{
    Authenticity, Chat, Checked, Config, ConnId, Graft, Hello, Id, Input, Instant, MemberState,
    MemberUpdate, Message, MsgId, Node, NodeKey, Output, Proof, Verified, PROTOCOL_VERSION,
};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 7000))
}

/// The key of node `i` in its first life (ids from addresses, as
/// `Identity::new` gives them).
fn key(i: u32) -> NodeKey {
    NodeKey {
        id: Id::of_addr(addr(i)),
        incarnation: 1,
    }
}

/// Node `i`'s signature over its state in its first life at version 0
/// (with the key `Identity::new` derives from its address).
fn proof(i: u32, name: &str, left: bool) -> Proof {
    let me = gossip_chat::Identity::new(addr(i), 1, name);
    Proof::sign(&me.key, key(i), 0, addr(i), name, left)
}

fn hello(i: u32) -> Message {
    let name = format!("n{i}");
    Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        node: key(i),
        addr: addr(i),
        proof: proof(i, &name, false),
        name: name.into(),
        member_version: 0,
        degree: 8,
        members_hash: 0,
        chat_hash: 0,
        chat_mark: 0,
        beacon: None,
        bridge: false,
        shortcut: false,
    })
}

/// A node with `n` handshaken neighbours on connections 1..=n.
fn node_with_neighbours(cfg: Config, n: u32) -> Node {
    let mut node = Node::new(
        cfg,
        gossip_chat::Identity::new(addr(0), 1, "n0"),
        1,
        Instant::ZERO,
    )
    .unwrap();
    let mut out = Vec::new();
    for i in 1..=n {
        let conn = ConnId(i as u64);
        node.handle(
            Instant::ZERO,
            Input::Connected {
                conn,
                dialed: None,
                peer: None,
            },
            &mut out,
        );
        node.handle(
            Instant::ZERO,
            Input::Message {
                conn,
                msg: hello(i),
            },
            &mut out,
        );
    }
    assert_eq!(node.neighbours().count(), n as usize);
    node
}

/// Message `seq` of node `origin`, signed by its author's key (as
/// `Identity::new` derives it from the address).
fn chat(origin: u32, seq: u64, text_len: usize) -> Chat {
    signed_by(&author(origin), seq, text_len)
}

/// Node `origin`'s identity in its first life.
fn author(origin: u32) -> gossip_chat::Identity {
    gossip_chat::Identity::new(addr(origin), 1, "alice")
}

fn signed_by(author: &gossip_chat::Identity, seq: u64, text_len: usize) -> Chat {
    Chat::signed(
        &author.key,
        MsgId {
            origin: NodeKey {
                id: author.id(),
                incarnation: author.incarnation,
            },
            seq,
        },
        "alice".into(),
        "x".repeat(text_len).into(),
        1_700_000_000_000,
    )
}

/// Neighbour 1 sends `m`.
fn relay(node: &mut Node, m: Chat, out: &mut Vec<Output>) {
    relay_message(node, Message::Chat(m), out);
}

/// Neighbour 1 sends `msg`.
fn relay_message(node: &mut Node, msg: Message, out: &mut Vec<Output>) {
    node.handle(
        Instant::ZERO,
        Input::Message {
            conn: ConnId(1),
            msg,
        },
        out,
    );
}

/// Says yes to every chat and entry: a node that checks no signature, the
/// baseline of a relayed chat's step before chats were signed.
#[derive(Debug)]
struct TrustAll;

impl Authenticity for TrustAll {
    fn authentic(&self, _: &Chat) -> bool {
        true
    }

    fn proven(&self, _: &MemberUpdate) -> bool {
        true
    }
}

/// A node with nine neighbours, every link on the broadcast tree, that
/// judges signatures with `judge` (its own verification: `None`) and has
/// relayed `alice`'s first chat to the eight others.
fn relaying_node(judge: Option<Arc<dyn Authenticity>>, alice: &gossip_chat::Identity) -> Node {
    let cfg = Config {
        max_connections: 9,
        ..Config::lan()
    };
    let mut node = node_with_neighbours(cfg, 9);
    if let Some(judge) = judge {
        node.set_authenticity(judge);
    }
    let mut out = Vec::with_capacity(64);
    // A node takes the links of members that dial it with neighbours of
    // their own off the broadcast tree (they announce ids only, in
    // batches): each neighbour puts its link back on it.
    for i in 1..=9 {
        node.handle(
            Instant::ZERO,
            Input::Message {
                conn: ConnId(i),
                msg: Message::Graft(Graft::ids(Vec::new())),
            },
            &mut out,
        );
    }
    out.clear();
    // The path measured: delivered, and sent over the eight other links.
    relay(&mut node, signed_by(alice, 1, 100), &mut out);
    let sent = out
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Send {
                    msg: Message::Chat(_),
                    ..
                }
            )
        })
        .count();
    assert_eq!((sent, out.len()), (8, 9), "{out:?}");
    assert_eq!(node.stats().forged, 0);
    node
}

/// Times `Node::handle` for a new chat from a neighbour, signed by
/// `alice` in the untimed setup, at a node that judges with `judge`;
/// returns the node.
fn relay_signed(
    c: &mut Criterion,
    name: &str,
    judge: Option<Arc<dyn Authenticity>>,
    alice: &gossip_chat::Identity,
) -> Node {
    let mut node = relaying_node(judge, alice);
    let mut out = Vec::with_capacity(64);
    let mut seq = 1u64;
    c.bench_function(name, |b| {
        b.iter_batched(
            || {
                seq += 1;
                signed_by(alice, seq, 100)
            },
            |m| {
                relay(&mut node, m, &mut out);
                debug_assert_eq!(out.len(), 9);
                black_box(&out);
                out.clear();
            },
            BatchSize::SmallInput,
        )
    });
    node
}

/// A new chat from a neighbour, verified, delivered and passed on to the
/// eight other neighbours. Each is signed by its author in the untimed
/// setup (a chat whose seq was changed after signing would be a forgery,
/// dropped before anything else): what is timed is the node's step,
/// verification included.
///
/// Beside it, the same step with the chat verified ahead, as the TCP
/// adapter's reader threads do (`_prechecked`: the driver holds what the
/// reader verified, in its own decoded copy of the frame, in a [`Checked`]
/// while the node handles the chat), and with no verification at all
/// (`_trust_all`: the unsigned baseline); then what a reader pays per chat
/// (decoding it and verifying its signature) and the signature check
/// alone.
///
/// `cargo bench --bench core -- relayed`
fn bench_relay(c: &mut Criterion) {
    let alice = author(1);
    let mut out = Vec::with_capacity(64);

    let node = relay_signed(c, "node_handle_chat_relayed_to_8", None, &alice);
    assert_eq!(node.stats().forged, 0);

    let checked = Arc::new(Checked::default());
    let mut node = relaying_node(Some(checked.clone()), &alice);
    let mut seq = 1u64;
    c.bench_function("node_handle_chat_relayed_to_8_prechecked", |b| {
        b.iter_batched(
            || {
                seq += 1;
                let msg = Message::Chat(signed_by(&alice, seq, 100));
                // The reader's own copy, decoded from the frame.
                let mut frame = Vec::new();
                wire::encode_payload(&msg, &mut frame);
                let copy = wire::decode_payload(&frame, 1 << 20).unwrap();
                (msg, Verified::of(&copy))
            },
            |(msg, verified)| {
                let _hold = checked.hold(verified);
                relay_message(&mut node, msg, &mut out);
                debug_assert_eq!(out.len(), 9);
                black_box(&out);
                out.clear();
            },
            BatchSize::SmallInput,
        )
    });
    assert_eq!(node.stats().forged, 0);
    // The first chat, before the hold, was verified by the node; none since.
    assert_eq!(checked.verified_here(), 1, "every chat was verified ahead");

    relay_signed(
        c,
        "node_handle_chat_relayed_to_8_trust_all",
        Some(Arc::new(TrustAll)),
        &alice,
    );

    let one = signed_by(&alice, 2, 100);
    let mut frame = Vec::new();
    wire::encode_frame(&Message::Chat(one.clone()), &mut frame);
    c.bench_function("reader_decode_and_verify_relayed_chat", |b| {
        b.iter(|| {
            let msg = wire::decode_payload(black_box(&frame[wire::LEN_PREFIX..]), 1 << 20);
            let msg = msg.unwrap();
            let verified = Verified::of(&msg);
            debug_assert_eq!(verified.len(), 1);
            black_box((msg, verified))
        })
    });
    c.bench_function("relayed_chat_authentic", |b| {
        b.iter(|| black_box(&one).authentic())
    });
}

/// `n` new members, each entry signed by its member in the untimed setup:
/// what is timed is the merge, each entry's check included.
fn member_list(n: u32) -> Vec<MemberUpdate> {
    (1..=n)
        .map(|i| {
            let name = format!("node-{i}");
            MemberUpdate {
                node: key(1000 + i),
                addr: addr(1000 + i),
                state: MemberState::Alive,
                proof: proof(1000 + i, &name, false),
                name: name.into(),
                version: 0,
                age_secs: 0,
                accuser: None,
            }
        })
        .collect()
}

fn bench_merge(c: &mut Criterion) {
    let list = member_list(1000);
    c.bench_function("merge_1000_member_list_new", |b| {
        b.iter_batched(
            || (node_with_neighbours(Config::lan(), 8), list.clone()),
            |(mut node, members)| {
                let mut out = Vec::new();
                node.handle(
                    Instant::ZERO,
                    Input::Message {
                        conn: ConnId(1),
                        msg: Message::PeerList {
                            full: false,
                            members,
                        },
                    },
                    &mut out,
                );
                black_box(out);
                node
            },
            BatchSize::LargeInput,
        )
    });
    let mut known = node_with_neighbours(Config::lan(), 8);
    let mut out = Vec::new();
    known.handle(
        Instant::ZERO,
        Input::Message {
            conn: ConnId(1),
            msg: Message::PeerList {
                full: false,
                members: list.clone(),
            },
        },
        &mut out,
    );
    // Every entry was its member's: all of them are in the table.
    assert_eq!(known.stats().forged_state, 0);
    assert_eq!(known.members().count(), 1000 + 8);
    c.bench_function("merge_1000_member_list_known", |b| {
        b.iter_batched(
            || list.clone(),
            |members| {
                out.clear();
                known.handle(
                    Instant::ZERO,
                    Input::Message {
                        conn: ConnId(1),
                        msg: Message::PeerList {
                            full: false,
                            members,
                        },
                    },
                    &mut out,
                );
            },
            BatchSize::LargeInput,
        )
    });
}

fn bench_codec(c: &mut Criterion) {
    let msg = Message::Chat(chat(1, 12345, 100));
    let mut buf = Vec::with_capacity(256);
    c.bench_function("codec_chat_100b_encode_decode", |b| {
        b.iter(|| {
            buf.clear();
            wire::encode_frame(black_box(&msg), &mut buf);
            let back = wire::decode_payload(&buf[wire::LEN_PREFIX..], 1 << 20).unwrap();
            black_box(back)
        })
    });
}

criterion_group!(benches, bench_relay, bench_merge, bench_codec);
criterion_main!(benches);
