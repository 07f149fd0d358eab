//! Signatures checked ahead of the node, on other threads.
//!
//! Verifying an ed25519 signature costs tens of microseconds, many times
//! what the rest of a node's step for a relayed chat does. An adapter that
//! reads each connection on a thread of its own can verify there, in
//! parallel, every chat and member entry a message carries
//! ([`Verified::of`]), and hand the answers to the node with the message:
//! the node, on its single thread, then only looks them up ([`Checked`]).
//!
//! A lookup says yes only for an item equal to one verified in everything
//! its signature covers, signature and key included (a chat whole, a
//! member entry's claim), so a valid signature lends nothing to other
//! content; anything not found is verified on the spot. The answers are
//! therefore those of [`Chat::authentic`] and [`MemberUpdate::proven`],
//! only cheaper on the node's thread.

use crate::message::{Chat, MemberState, MemberUpdate, Message, NodeKey, Proof};
use crate::Authenticity;
use ed25519_dalek::Signature;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Most chats of one message verified ahead: a bound only. A node checks
/// every chat new to it, and a batch of history holds chats its receiver
/// lacks, so each is worth verifying ahead; a frame of the default size
/// holds fewer than this.
pub const MAX_CHATS_AHEAD: usize = 16 * 1024;

/// Most member entries of one message verified ahead. A node checks an
/// entry only if it is news (see `Node::proven`): a gossip delta (at most
/// 64 entries) is mostly news and verified ahead whole, while a whole view
/// or a repair of digest buckets is mostly entries the receiver holds
/// already, which verifying would only cost its reader. Of a longer list
/// the node checks the rest itself, news only.
pub const MAX_ENTRIES_AHEAD: usize = 64;

/// The chats and member entries of one message whose signatures held: at
/// most [`MAX_CHATS_AHEAD`] and [`MAX_ENTRIES_AHEAD`], in about 160 bytes
/// each (they share their texts and names with the message).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    /// Sorted by signature.
    chats: Vec<Chat>,
    /// Sorted by signature.
    claims: Vec<Claim>,
}

/// What a member entry's proof covers, with the proof: exactly what
/// [`MemberUpdate::proven`] reads, so that two entries with the same claim
/// get the same answer (an accusation and the alive entry it names share
/// one).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Claim {
    node: NodeKey,
    version: u32,
    addr: SocketAddr,
    name: Arc<str>,
    left: bool,
    proof: Proof,
}

impl Claim {
    fn of(u: &MemberUpdate) -> Claim {
        Claim {
            node: u.node,
            version: u.version,
            addr: u.addr,
            name: u.name.clone(),
            left: u.state == MemberState::Left,
            proof: u.proof,
        }
    }

    /// Whether `u` makes this claim (compared without a copy).
    fn made_by(&self, u: &MemberUpdate) -> bool {
        self.node == u.node
            && self.version == u.version
            && self.addr == u.addr
            && self.name == u.name
            && self.left == (u.state == MemberState::Left)
            && self.proof == u.proof
    }
}

/// The order items are kept in: by signature.
fn by_sig(a: &Signature, b: &Signature) -> Ordering {
    (a.r_bytes(), a.s_bytes()).cmp(&(b.r_bytes(), b.s_bytes()))
}

impl Verified {
    /// Verifies the signatures `msg` carries (its chats', and its member
    /// entries' own proofs, up to the bounds above) and keeps the items
    /// whose signatures hold. One ed25519 check per item: meant for a
    /// thread other than the node's.
    pub fn of(msg: &Message) -> Verified {
        Verified::of_at_most(msg, MAX_CHATS_AHEAD, MAX_ENTRIES_AHEAD)
    }

    /// [`Verified::of`], looking at the first `chats` chats and `entries`
    /// entries at most.
    fn of_at_most(msg: &Message, chats: usize, entries: usize) -> Verified {
        let (all_chats, all_entries) = Verified::signed(msg);
        let chats: Vec<Chat> = all_chats
            .iter()
            .take(chats)
            .filter(|c| c.authentic())
            .cloned()
            .collect();
        let claims: Vec<Claim> = all_entries
            .iter()
            .take(entries)
            .filter(|u| u.proven())
            .map(Claim::of)
            .collect();
        let mut v = Verified { chats, claims };
        v.chats.sort_unstable_by(|a, b| by_sig(&a.sig, &b.sig));
        v.chats.dedup();
        v.claims
            .sort_unstable_by(|a, b| by_sig(&a.proof.sig, &b.proof.sig));
        v.claims.dedup();
        v
    }

    /// The chats and the member entries (each with its member's proof)
    /// that `msg` carries. A new kind of message must be placed here.
    fn signed(msg: &Message) -> (&[Chat], Cow<'_, [MemberUpdate]>) {
        let none = Cow::Borrowed(&[][..]);
        match msg {
            Message::Chat(c) => (std::slice::from_ref(c), none),
            Message::History(h) => (&h.chats, none),
            Message::Join(h) | Message::Hello(h) => (&[], Cow::Owned(vec![h.entry()])),
            Message::Leave(u) => (&[], Cow::Borrowed(std::slice::from_ref(u))),
            Message::PeerList { members, .. } | Message::RosterPart { members, .. } => {
                (&[], Cow::Borrowed(members))
            }
            Message::Ping(_)
            | Message::Pong(_)
            | Message::ProbeReq { .. }
            | Message::ProbeAck { .. }
            | Message::ProbeNack { .. }
            | Message::ProbePong { .. }
            | Message::Heartbeat(_)
            | Message::Busy(_)
            | Message::Bye(_)
            | Message::Sync(_)
            | Message::Digest(_)
            | Message::Prune
            | Message::Listen(_)
            | Message::Graft(_)
            | Message::IHave(_)
            | Message::Buckets(_)
            | Message::Prints { .. }
            | Message::Want(_)
            | Message::Beacon(_) => (&[], none),
        }
    }

    /// Items kept.
    pub fn len(&self) -> usize {
        self.chats.len() + self.claims.len()
    }

    /// Whether no item was kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `c`, whole, is a chat kept.
    fn holds_chat(&self, c: &Chat) -> bool {
        self.chats
            .binary_search_by(|k| by_sig(&k.sig, &c.sig))
            .is_ok_and(|i| self.chats.get(i) == Some(c))
    }

    /// Whether `u` makes a claim kept.
    fn holds_entry(&self, u: &MemberUpdate) -> bool {
        self.claims
            .binary_search_by(|k| by_sig(&k.proof.sig, &u.proof.sig))
            .is_ok_and(|i| self.claims.get(i).is_some_and(|k| k.made_by(u)))
    }
}

/// An [`Authenticity`] that answers from what was verified ahead for the
/// message being handled ([`Checked::hold`]) and verifies anything else
/// itself. A driver shares it with its node
/// (`Node::set_authenticity`) and holds each message's [`Verified`]
/// while the node handles that message: only the node's thread locks it,
/// so the lock is never contended.
///
/// Other questions of the trait (accusations) keep its verifying defaults.
#[derive(Debug, Default)]
pub struct Checked {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The items of the message being handled.
    held: Verified,
    /// Signatures verified here, for want of an item held.
    verified_here: u64,
}

/// The items of one message, held until this drops.
#[must_use = "the items are dropped with the hold"]
#[derive(Debug)]
pub struct Hold<'a>(&'a Checked);

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.0.lock().held = Verified::default();
    }
}

impl Checked {
    /// Answers from `verified` (in place of any items held before) until
    /// the returned hold drops: hold a message's items while the node
    /// handles that message, so at most one message's items are held.
    pub fn hold(&self, verified: Verified) -> Hold<'_> {
        self.lock().held = verified;
        Hold(self)
    }

    /// Items held now.
    pub fn held(&self) -> usize {
        self.lock().held.len()
    }

    /// Signatures this judge has verified itself, for want of an item held:
    /// the verification left on the node's thread.
    pub fn verified_here(&self) -> u64 {
        self.lock().verified_here
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `held` says yes; if not, counts one verification here.
    fn answered(&self, held: impl FnOnce(&Verified) -> bool) -> bool {
        let mut state = self.lock();
        let yes = held(&state.held);
        if !yes {
            state.verified_here += 1;
        }
        yes
    }
}

impl Authenticity for Checked {
    fn authentic(&self, chat: &Chat) -> bool {
        self.answered(|v| v.holds_chat(chat)) || chat.authentic()
    }

    fn proven(&self, u: &MemberUpdate) -> bool {
        self.answered(|v| v.holds_entry(u)) || u.proven()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{addr_key, Hello, Id, MsgId};
    use crate::PROTOCOL_VERSION;

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 7000))
    }

    /// Message `seq` of the member at `addr(1)`, signed by it.
    fn chat(seq: u64, text: &str) -> Chat {
        let id = MsgId {
            origin: NodeKey {
                id: Id::of_addr(addr(1)),
                incarnation: 1,
            },
            seq,
        };
        Chat::signed(&addr_key(addr(1)), id, "alice".into(), text.into(), 7)
    }

    /// The member at `addr(i)`, alive in its first life, in its own word.
    fn entry(i: u8) -> MemberUpdate {
        let node = NodeKey {
            id: Id::of_addr(addr(i)),
            incarnation: 1,
        };
        let name = format!("n{i}");
        MemberUpdate {
            node,
            addr: addr(i),
            version: 0,
            state: MemberState::Alive,
            proof: Proof::sign(&addr_key(addr(i)), node, 0, addr(i), &name, false),
            name: name.into(),
            age_secs: 0,
            accuser: None,
        }
    }

    /// `sig` with one bit changed.
    fn forged_sig(sig: &Signature) -> Signature {
        let mut bytes = sig.to_bytes();
        bytes[0] ^= 1;
        Signature::from_bytes(&bytes)
    }

    fn forged(c: Chat) -> Chat {
        Chat {
            sig: forged_sig(&c.sig),
            ..c
        }
    }

    #[test]
    fn a_held_chat_is_taken_without_verifying_only_whole() {
        let c = chat(1, "hello");
        let checked = Checked::default();
        let _hold = checked.hold(Verified::of(&Message::Chat(c.clone())));
        assert_eq!(checked.held(), 1);
        assert!(checked.authentic(&c));
        assert_eq!(checked.verified_here(), 0, "answered from what was held");
        // The same signature over another text: its bytes are held, the
        // chat is not.
        let changed = Chat {
            text: "hello, all".into(),
            ..c.clone()
        };
        assert!(!checked.authentic(&changed));
        assert_eq!(checked.verified_here(), 1, "verified, and refused");
        // Another chat of the same author, not held: verified, and taken.
        assert!(checked.authentic(&chat(2, "hi")));
        assert_eq!(checked.verified_here(), 2);
    }

    #[test]
    fn a_forged_chat_is_not_held_and_is_refused() {
        let bad = forged(chat(1, "hello"));
        let v = Verified::of(&Message::Chat(bad.clone()));
        assert!(v.is_empty());
        let checked = Checked::default();
        let _hold = checked.hold(v);
        assert!(!checked.authentic(&bad));
        assert_eq!(checked.verified_here(), 1);
    }

    #[test]
    fn a_history_keeps_its_good_chats_only() {
        let (good, bad) = (chat(1, "one"), forged(chat(2, "two")));
        let msg = Message::History(crate::History {
            chats: vec![good.clone(), bad.clone(), good.clone()],
            baseline: None,
        });
        let checked = Checked::default();
        let _hold = checked.hold(Verified::of(&msg));
        assert_eq!(checked.held(), 1, "the good one, once");
        assert!(checked.authentic(&good));
        assert!(!checked.authentic(&bad));
        assert_eq!(checked.verified_here(), 1, "only the forgery");
    }

    #[test]
    fn a_peer_list_holds_only_the_entries_its_members_signed() {
        let mut bad = entry(3);
        bad.name = "eve".into();
        let msg = Message::PeerList {
            full: false,
            members: vec![entry(2), bad.clone()],
        };
        let checked = Checked::default();
        let _hold = checked.hold(Verified::of(&msg));
        assert_eq!(checked.held(), 1);
        assert!(checked.proven(&entry(2)));
        assert_eq!(checked.verified_here(), 0);
        // The forgery was not held, and the same proof over another name
        // is not taken from what was.
        assert!(!checked.proven(&bad));
        let renamed = MemberUpdate {
            name: "mallory".into(),
            ..entry(2)
        };
        assert!(!checked.proven(&renamed));
        assert_eq!(checked.verified_here(), 2);
    }

    #[test]
    fn an_entry_is_taken_from_what_was_held_only_with_the_same_claim() {
        let e = entry(2);
        let checked = Checked::default();
        let list = Message::PeerList {
            full: false,
            members: vec![e.clone()],
        };
        let _hold = checked.hold(Verified::of(&list));
        // Whatever the entry's proof does not cover may differ; everything
        // it covers, changed, is no longer the claim held (and, verified
        // here, fails).
        let unsigned: [fn(&mut MemberUpdate); 3] = [
            |u| u.state = MemberState::Suspect,
            |u| u.state = MemberState::Dead,
            |u| u.age_secs = 90,
        ];
        let signed: [fn(&mut MemberUpdate); 9] = [
            |u| u.node.id = Id::of_addr(addr(9)),
            |u| u.node.incarnation += 1,
            |u| u.addr.set_port(7001),
            |u| u.version += 1,
            |u| u.name = "eve".into(),
            |u| u.state = MemberState::Left,
            |u| u.proof.key = [7; 32],
            |u| u.proof.sig = forged_sig(&u.proof.sig),
            |u| u.proof = Proof::none(),
        ];
        for (i, change) in unsigned.iter().enumerate() {
            let mut u = e.clone();
            change(&mut u);
            assert!(checked.proven(&u), "unsigned change {i}");
            assert_eq!(checked.verified_here(), 0, "unsigned change {i}");
        }
        for (i, change) in signed.iter().enumerate() {
            let mut u = e.clone();
            change(&mut u);
            assert!(!checked.proven(&u), "signed change {i}");
            assert_eq!(checked.verified_here(), i as u64 + 1, "signed change {i}");
        }
    }

    #[test]
    fn a_hello_and_a_leave_hold_their_speakers_entry() {
        let e = entry(4);
        let hello = Hello {
            version: PROTOCOL_VERSION,
            node: e.node,
            addr: e.addr,
            name: e.name.clone(),
            member_version: e.version,
            proof: e.proof,
            degree: 1,
            members_hash: 0,
            chat_hash: 0,
            chat_mark: 0,
            beacon: None,
            bridge: false,
            shortcut: false,
        };
        let node = e.node;
        let left = MemberUpdate {
            state: MemberState::Left,
            proof: Proof::sign(&addr_key(addr(4)), node, 0, addr(4), "n4", true),
            ..e.clone()
        };
        for (msg, u) in [
            (Message::Hello(hello.clone()), hello.entry()),
            (Message::Join(hello.clone()), hello.entry()),
            (Message::Leave(Box::new(left.clone())), left),
        ] {
            let checked = Checked::default();
            let _hold = checked.hold(Verified::of(&msg));
            assert!(checked.proven(&u), "{}", msg.kind());
            assert_eq!(checked.verified_here(), 0, "{}", msg.kind());
        }
    }

    #[test]
    fn items_are_held_for_one_message_at_most() {
        let checked = Checked::default();
        let (one, two) = (chat(1, "one"), chat(2, "two"));
        let hold = checked.hold(Verified::of(&Message::Chat(one.clone())));
        // The next message's items replace the first's.
        let next = checked.hold(Verified::of(&Message::Chat(two.clone())));
        assert_eq!(checked.held(), 1);
        assert!(checked.authentic(&two));
        assert!(checked.authentic(&one));
        assert_eq!(checked.verified_here(), 1, "the first is no longer held");
        drop(next);
        assert_eq!(checked.held(), 0, "dropped with its hold");
        drop(hold);
        assert!(checked.authentic(&two));
        assert_eq!(checked.verified_here(), 2);
    }

    #[test]
    fn a_message_holds_at_most_so_many_items() {
        let msg = Message::PeerList {
            full: true,
            members: (1..=5).map(entry).collect(),
        };
        assert_eq!(Verified::of(&msg).len(), 5);
        assert_eq!(Verified::of_at_most(&msg, 2, 3).len(), 3);
        let history = Message::History(crate::History {
            chats: (1..=5).map(|s| chat(s, "x")).collect(),
            baseline: None,
        });
        assert_eq!(Verified::of_at_most(&history, 2, 3).len(), 2);
        // A long list is verified ahead in part: the node checks the rest.
        let long = Message::RosterPart {
            buckets: 1,
            members: (1..=MAX_ENTRIES_AHEAD as u8 + 1).map(entry).collect(),
        };
        let checked = Checked::default();
        let _hold = checked.hold(Verified::of(&long));
        assert_eq!(checked.held(), MAX_ENTRIES_AHEAD);
        let Message::RosterPart { members, .. } = &long else {
            unreachable!()
        };
        assert!(members.iter().all(|u| checked.proven(u)));
        assert_eq!(checked.verified_here(), 1, "the last one");
    }

    #[test]
    fn a_message_without_signatures_holds_nothing() {
        for msg in [Message::Ping(1), Message::Prune, Message::Want(vec![1])] {
            assert!(Verified::of(&msg).is_empty(), "{}", msg.kind());
        }
    }
}
