//! The wire format, pinned: the encoded bytes of every message kind are
//! snapshotted, so any change to the format shows up in review.

use gossip_chat::wire::{self, FrameReader, WireError};
use gossip_chat::{
    Accusation, Beacon, Busy, ByeReason, Chat, Digest, Graft, Hello, History, Id, MemberState,
    MemberUpdate, Message, MsgId, NodeKey, Proof, Sync, PROTOCOL_VERSION,
};
use std::fmt::Write as _;
use std::net::SocketAddr;

/// Node `last`'s id: fixed bytes that stand out in the hex (`a1`..`a7`,
/// then `last`).
fn id(last: u8) -> Id {
    Id([0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, last])
}

/// Where node `last` listens.
fn addr(last: u8) -> SocketAddr {
    ([10, 0, 0, last], 7000).into()
}

fn key(last: u8, incarnation: u64) -> NodeKey {
    NodeKey {
        id: id(last),
        incarnation,
    }
}

/// A member's claim about itself, signed by a fixed key (deterministic,
/// like the chat's below). The key is not the one the member's id names,
/// so the proof does not verify: the codec does not care, it carries the
/// 32 key bytes and the 64 signature bytes as they are.
fn proof(node: NodeKey, version: u32, addr: SocketAddr, name: &str, left: bool) -> Proof {
    let signer = ed25519_dalek::SigningKey::from_bytes(&[0x9f; 32]);
    Proof::sign(&signer, node, version, addr, name, left)
}

/// The entry of `node` at `version` in `state`, with its proof (the
/// departure for `Left`, the alive claim otherwise).
fn entry(
    node: NodeKey,
    version: u32,
    state: MemberState,
    name: &str,
    age_secs: u32,
    accuser: Option<Id>,
) -> MemberUpdate {
    let addr = addr(node.id.0[7]);
    // The accuser signs with a fixed key of its own, as the member does.
    let accuser = accuser.map(|a| {
        let signer = ed25519_dalek::SigningKey::from_bytes(&[a.0[7]; 32]);
        Accusation::sign(&signer, node, version)
    });
    MemberUpdate {
        node,
        addr,
        state,
        name: name.into(),
        version,
        age_secs,
        accuser,
        proof: proof(node, version, addr, name, state == MemberState::Left),
    }
}

fn hello() -> Hello {
    let node = key(1, 1_700_000_000_000);
    Hello {
        version: PROTOCOL_VERSION,
        node,
        addr: addr(1),
        name: "alice".into(),
        member_version: 4,
        proof: proof(node, 4, addr(1), "alice", false),
        degree: 3,
        members_hash: 0x0123_4567_89ab_cdef,
        chat_hash: 42,
        chat_mark: 7_140_000_000,
        beacon: None,
        bridge: false,
        shortcut: false,
    }
}

/// A chat signed by a fixed key (ed25519 signatures are deterministic, so
/// the bytes are too). The key is not the one `id(2)` names, so the chat is
/// not `authentic()`: the codec does not care, it carries the 32 key bytes
/// and the 64 signature bytes as they are, after the time.
fn chat() -> Chat {
    let signer = ed25519_dalek::SigningKey::from_bytes(&[0x5e; 32]);
    let id = MsgId {
        origin: key(2, 7),
        seq: 300,
    };
    Chat::signed(
        &signer,
        id,
        "bob".into(),
        "hello, world".into(),
        1_700_000_000_123,
    )
}

/// One message of every kind.
fn every_kind() -> Vec<Message> {
    vec![
        Message::Join(hello()),
        Message::Hello(hello()),
        Message::PeerList {
            full: true,
            members: vec![
                entry(key(3, 2), 0, MemberState::Alive, "carol", 0, None),
                entry(key(4, 9), 2, MemberState::Dead, "dave", 90, None),
                entry(key(6, 1), 1, MemberState::Suspect, "erin", 0, Some(id(3))),
            ],
        },
        Message::Ping(7),
        Message::Pong(7),
        Message::ProbeReq {
            nonce: 9,
            target: id(6),
        },
        Message::ProbeAck {
            nonce: 9,
            target: id(6),
        },
        Message::Busy(Busy {
            retry_ms: 750,
            others: vec![addr(3), addr(5)],
        }),
        Message::Chat(chat()),
        Message::Leave(Box::new(entry(
            key(5, 1),
            3,
            MemberState::Left,
            "frank",
            0,
            None,
        ))),
        Message::Bye(ByeReason::Full),
        Message::Sync(Sync {
            members_hash: 1,
            chat_hash: 2,
            chat_mark: 3,
        }),
        Message::Digest(Digest {
            entries: vec![(key(2, 7), 300)],
            reply: true,
        }),
        Message::History(History {
            chats: vec![chat()],
            baseline: Some(vec![(key(2, 7), 299)]),
        }),
        Message::Prune,
        Message::Listen(false),
        Message::Graft(Graft {
            ids: vec![chat().id],
            replay_ms: 600,
        }),
        Message::IHave(vec![chat().id]),
        Message::Buckets(vec![7, 0, u32::MAX]),
        Message::RosterPart {
            buckets: 1 << 5,
            members: vec![entry(key(6, 1), 2, MemberState::Alive, "erin", 0, None)],
        },
        Message::Prints {
            buckets: 1 << 5,
            prints: vec![0xdead_beef],
        },
        Message::Want(vec![0xdead_beef]),
        Message::ProbeNack {
            nonce: 9,
            target: id(6),
        },
        Message::Heartbeat(7),
        Message::Beacon(Beacon {
            origin: key(2, 1),
            seq: 3,
            hops: 2,
            up: Some(id(3)),
            up_ms: 200,
            at_ms: 300,
        }),
        Message::ProbePong {
            nonce: 7,
            beacon: Some(Beacon::new(key(2, 1), 3)),
            chat: Some((6_800_000_091, 0x0123_4567_89ab_cdef)),
        },
        Message::ProbePong {
            nonce: 7,
            beacon: None,
            chat: None,
        },
    ]
}

#[test]
fn encoded_bytes_of_every_message_kind() {
    let mut text = String::new();
    for msg in every_kind() {
        let mut frame = Vec::new();
        wire::encode_frame(&msg, &mut frame);
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(text, "{:8} {:3}B {hex}", msg.kind(), frame.len()).unwrap();
    }
    insta::assert_snapshot!(text);
}

#[test]
fn every_message_kind_round_trips() {
    for msg in every_kind() {
        let mut frame = Vec::new();
        wire::encode_frame(&msg, &mut frame);
        assert_eq!(frame.len() - wire::LEN_PREFIX, wire::payload_len(&msg));
        let back = wire::decode_payload(&frame[wire::LEN_PREFIX..], 1 << 20).unwrap();
        assert_eq!(back, msg);
    }
}

#[test]
fn a_stream_split_anywhere_yields_the_same_frames() {
    let mut stream = Vec::new();
    for msg in every_kind() {
        wire::encode_frame(&msg, &mut stream);
    }
    for chunk in [1, 3, 7, 64, stream.len()] {
        let mut r = FrameReader::new(1 << 20);
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            r.extend(piece);
            while let Some(p) = r.next_frame().unwrap() {
                got.push(wire::decode_payload(p, 1 << 20).unwrap());
            }
        }
        assert_eq!(got, every_kind(), "chunk size {chunk}");
        assert_eq!(r.buffered(), 0);
    }
}

#[test]
fn an_oversized_length_prefix_is_refused_before_buffering() {
    let mut r = FrameReader::new(4096);
    r.extend(&5000u32.to_be_bytes());
    assert_eq!(
        r.next_frame(),
        Err(WireError::Oversized {
            len: 5000,
            max: 4096
        })
    );
}

#[test]
fn garbage_and_trailing_bytes_are_errors_not_panics() {
    assert!(matches!(
        wire::decode_payload(&[0xff, 0xff, 0xff], 4096),
        Err(WireError::Malformed(_))
    ));
    let mut payload = Vec::new();
    wire::encode_payload(&Message::Ping(1), &mut payload);
    payload.push(0);
    assert_eq!(
        wire::decode_payload(&payload, 4096),
        Err(WireError::Trailing(1))
    );
    assert!(wire::decode_payload(&[], 4096).is_err());
}
